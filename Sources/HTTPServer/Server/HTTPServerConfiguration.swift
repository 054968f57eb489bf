import Logging

// MARK: - Configuration

/// Everything an operator may tune; defaults follow the issue (and nginx where it is silent).
public struct HTTPServerConfiguration: Sendable {
    /// Numeric IPv4/IPv6 address or host name: `127.0.0.1`, `0.0.0.0`, `::1`, `::`, `localhost`.
    public var host: String = "127.0.0.1"
    /// 0 binds an ephemeral port; `HTTPServer.start()` returns the one bound.
    public var port: Int = 8000
    /// HTTPS with this certificate and key; nil serves plain HTTP.
    public var tls: TLSConfiguration?
    public var backlog: Int32 = 512
    /// Request line, CRLF excluded; beyond: 414.
    public var maxRequestLineBytes = 8 * 1024
    /// All header lines with their CRLFs (trailers included); beyond: 431.
    public var maxHeaderBytes = 16 * 1024
    /// Header fields (trailers included); beyond: 431.
    public var maxHeaderCount = 100
    /// Decoded request body; beyond: 413.
    public var maxBodyBytes = 1 << 20
    /// From the first byte of a request to the end of its head; then 408.
    public var headTimeout: Duration = .seconds(10)
    /// A new connection that sends nothing for this long is closed: silent connections would
    /// otherwise hold slots meant for clients that talk.
    public var firstByteTimeout: Duration = .seconds(5)
    /// A keep-alive connection waiting for its next request is closed after this.
    public var idleTimeout: Duration = .seconds(60)
    /// Longest pause between two reads of a request body; then 408.
    public var bodyTimeout: Duration = .seconds(30)
    /// The window over which a waiting response's send rate is measured: while bytes wait for the
    /// client, it must accept at least `minSendBytes` (and at least one byte) per window, or the
    /// connection closes. A client reading a trickle would otherwise pin its response for ever.
    public var writeTimeout: Duration = .seconds(60)
    /// See `writeTimeout`. The default, 32 KiB a minute, only cuts clients slower than a modem.
    public var minSendBytes = 32 * 1024
    /// Connections served at once. At the limit, the connection idle longest (waiting for its first
    /// or next request) is closed to make room; when none is idle, the newcomer is answered 503.
    public var maxConnections = 1024
    /// Connections from one client address at once (0: no cap; behind a proxy every client shares
    /// its address). Beyond, that address's idle connection is closed to make room, else 503.
    public var maxConnectionsPerClient = 256
    /// How long in-flight requests may run after shutdown begins.
    public var shutdownGracePeriod: Duration = .seconds(30)
    /// HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    public var maxConcurrentStreams = 100
    /// Bytes of a streamed response that may wait unsent before `HTTPBodyWriter.write` suspends.
    public var maxPendingStreamBytes = 64 * 1024
    /// The level of the one access-log line written per request.
    public var accessLogLevel: Logger.Level = .info
    /// Shapes the answers the server gives on its own (400, 408, 413, 414, 431, 503, 505), e.g. in
    /// OpenAI's error format. Only a `.bytes` body is used; the connection closes after them.
    public var makeErrorResponse: @Sendable (_ status: Int, _ message: String) -> HTTPResponse = { status, message in
        HTTPResponse.jsonError(status: status, message: message)
    }
    /// Told of every answer the server gives on its own, for metrics.
    public var onServerAnswer: (@Sendable (ServerAnswer) -> Void)?

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
        try require(maxConnectionsPerClient >= 0, "maxConnectionsPerClient must not be negative (is \(maxConnectionsPerClient))")
        try require(minSendBytes >= 0, "minSendBytes must not be negative (is \(minSendBytes))")
        try require((1...Int(Int32.max)).contains(maxConcurrentStreams), "maxConcurrentStreams must be positive (is \(maxConcurrentStreams))")
        try require(maxPendingStreamBytes > 0, "maxPendingStreamBytes must be positive (is \(maxPendingStreamBytes))")
        for (name, value) in [("headTimeout", headTimeout), ("firstByteTimeout", firstByteTimeout), ("idleTimeout", idleTimeout),
                              ("bodyTimeout", bodyTimeout), ("writeTimeout", writeTimeout)] {
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
        let shortest = [headTimeout, firstByteTimeout, idleTimeout, bodyTimeout, writeTimeout].min()!
        return min(max(shortest / 4, .milliseconds(10)), .seconds(1))
    }
}

/// An answer the server gave without calling the handler: a malformed or over-limit request
/// (400, 408, 413, 414, 415, 417, 431, 505) or a connection refused at the limit (503).
public struct ServerAnswer: Sendable, Equatable {
    public var status: Int
    /// Method and path, when the request line was read.
    public var method: String?
    public var path: String?

    public init(status: Int, method: String? = nil, path: String? = nil) {
        self.status = status
        self.method = method
        self.path = path
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
