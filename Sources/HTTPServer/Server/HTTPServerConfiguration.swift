import Logging

// MARK: - Configuration

/// Everything an operator may tune; defaults follow the issue (and nginx where it is silent).
public struct HTTPServerConfiguration: Sendable {
    /// Numeric IPv4/IPv6 address or host name: `127.0.0.1`, `0.0.0.0`, `::1`, `::`, `localhost`.
    public var host: String = "127.0.0.1"
    /// 0 binds an ephemeral port; `HTTPServer.start()` returns the one bound.
    public var port: Int = 8000
    public var backlog: Int32 = 512
    /// Request line, CRLF excluded; beyond: 414.
    public var maxRequestLineBytes = 8 * 1024
    /// All header lines with their CRLFs (trailers included); beyond: 431.
    public var maxHeaderBytes = 16 * 1024
    /// Header fields (trailers included); beyond: 431.
    public var maxHeaderCount = 100
    /// Decoded request body; beyond: 413.
    public var maxBodyBytes = 1 << 20
    /// From a connection's first byte of a request (or its accept) to the end of the head; then 408.
    public var headTimeout: Duration = .seconds(10)
    /// A keep-alive connection waiting for its next request is closed after this.
    public var idleTimeout: Duration = .seconds(60)
    /// Longest pause between two reads of a request body; then 408.
    public var bodyTimeout: Duration = .seconds(30)
    /// Longest time a response may wait on a client that reads nothing; then the connection closes.
    public var writeTimeout: Duration = .seconds(60)
    /// Connections served at once; beyond: accepted, answered 503, closed.
    public var maxConnections = 1024
    /// How long in-flight requests may run after shutdown begins.
    public var shutdownGracePeriod: Duration = .seconds(30)
    /// Bytes of a streamed response that may wait unsent before `HTTPBodyWriter.write` suspends.
    public var maxPendingStreamBytes = 64 * 1024
    /// The level of the one access-log line written per request.
    public var accessLogLevel: Logger.Level = .info
    /// Shapes the answers the server gives on its own (400, 408, 413, 414, 431, 503, 505), e.g. in
    /// OpenAI's error format. Only a `.bytes` body is used; the connection closes after them.
    public var makeErrorResponse: @Sendable (_ status: Int, _ message: String) -> HTTPResponse = { status, message in
        HTTPResponse.jsonError(status: status, message: message)
    }

    public init() {}

    /// Checks every value is usable; the server refuses to start otherwise.
    func validate() throws {
        func require(_ condition: Bool, _ problem: String) throws {
            if !condition { throw HTTPServerError.invalidConfiguration(problem) }
        }
        try require((0...65535).contains(port), "port \(port) is not in 0...65535")
        try require(backlog > 0, "backlog must be positive (is \(backlog))")
        try require(maxRequestLineBytes > 0, "maxRequestLineBytes must be positive (is \(maxRequestLineBytes))")
        try require(maxHeaderBytes > 0, "maxHeaderBytes must be positive (is \(maxHeaderBytes))")
        try require(maxHeaderCount > 0, "maxHeaderCount must be positive (is \(maxHeaderCount))")
        try require(maxBodyBytes >= 0, "maxBodyBytes must not be negative (is \(maxBodyBytes))")
        try require(maxConnections > 0, "maxConnections must be positive (is \(maxConnections))")
        try require(maxPendingStreamBytes > 0, "maxPendingStreamBytes must be positive (is \(maxPendingStreamBytes))")
        for (name, value) in [("headTimeout", headTimeout), ("idleTimeout", idleTimeout), ("bodyTimeout", bodyTimeout),
                              ("writeTimeout", writeTimeout)] {
            try require(value > .zero, "\(name) must be positive (is \(value))")
        }
        try require(shutdownGracePeriod >= .zero, "shutdownGracePeriod must not be negative (is \(shutdownGracePeriod))")
    }

    var parserLimits: HTTPParserLimits {
        var limits = HTTPParserLimits()
        limits.maxRequestLineBytes = maxRequestLineBytes
        limits.maxHeaderBytes = maxHeaderBytes
        limits.maxHeaderCount = maxHeaderCount
        limits.maxBodyBytes = maxBodyBytes
        return limits
    }

    /// How often deadlines are checked: a quarter of the shortest timeout, between 10 ms and 1 s.
    var sweepInterval: Duration {
        let shortest = [headTimeout, idleTimeout, bodyTimeout, writeTimeout].min()!
        return min(max(shortest / 4, .milliseconds(10)), .seconds(1))
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
