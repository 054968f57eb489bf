import Foundation
import Logging

// CONTRACT (written before the implementation): the public surface the API codes against.
// The HTTP server's implementer owns this file and may split it; changing a signature needs a note.

/// Header fields in arrival order; names compare case-insensitively.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []
    public init() {}
    public init(dictionaryLiteral elements: (String, String)...) { for (n, v) in elements { add(name: n, value: v) } }
    public mutating func add(name: String, value: String) { fields.append((name, value)) }
    /// Replaces every field of that name.
    public mutating func replaceOrAdd(name: String, value: String) {
        fields.removeAll { $0.name.lowercased() == name.lowercased() }
        add(name: name, value: value)
    }
    /// The first value of that name.
    public subscript(name: String) -> String? { fields.first { $0.name.lowercased() == name.lowercased() }?.value }
    public func values(for name: String) -> [String] { fields.filter { $0.name.lowercased() == name.lowercased() }.map(\.value) }
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }
}

public struct HTTPRequest: Sendable {
    /// Method token as sent (`GET`, `POST`, ...).
    public var method: String
    /// Request target as sent (`/v1/completions?x=1`).
    public var target: String
    /// `target` without the query.
    public var path: String
    public var query: String?
    public var headers: HTTPHeaders
    /// The whole body (the server enforces the size limit before the handler runs).
    public var body: [UInt8]
    /// `X-Request-Id` from the client, or one the server generated.
    public var requestID: String
    public init(method: String, target: String, headers: HTTPHeaders, body: [UInt8], requestID: String) {
        self.method = method; self.target = target; self.headers = headers; self.body = body; self.requestID = requestID
        if let q = target.firstIndex(of: "?") { path = String(target[..<q]); query = String(target[target.index(after: q)...]) }
        else { path = target; query = nil }
    }
}

/// Writes one piece of a streamed response body and flushes it to the client. Suspends while the
/// client is slow (back-pressure); throws once the client has gone.
public protocol HTTPBodyWriter: Sendable {
    func write(_ bytes: [UInt8]) async throws
}

public enum HTTPResponseBody: Sendable {
    case bytes([UInt8])
    /// Sent chunked. The closure runs in a task that the server cancels when the client goes away.
    case stream(@Sendable (any HTTPBodyWriter) async throws -> Void)
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: HTTPResponseBody
    public init(status: Int, headers: HTTPHeaders = [:], body: HTTPResponseBody = .bytes([])) {
        self.status = status; self.headers = headers; self.body = body
    }
}

public typealias HTTPHandler = @Sendable (HTTPRequest) async -> HTTPResponse

/// Routes by exact path and method; unknown paths get 404, wrong methods 405 with `Allow`, and
/// `HEAD` is served by the `GET` handler without its body. Error bodies are short JSON.
public struct HTTPRouter: Sendable {
    public init() {}
    public mutating func add(_ method: String, _ path: String, _ handler: @escaping HTTPHandler) { fatalError("not implemented") }
    /// Lets the application shape the 404/405 answers (e.g. in OpenAI's error format).
    public var makeErrorResponse: @Sendable (_ status: Int, _ message: String) -> HTTPResponse = { status, message in
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: .bytes(Array("{\"error\":\"\(message)\"}".utf8)))
    }
    public func handler() -> HTTPHandler { fatalError("not implemented") }
}

public struct HTTPServerConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 binds an ephemeral port; `HTTPServer.start()` returns the one bound.
    public var port: Int = 8000
    public var backlog: Int32 = 512
    public var maxRequestLineBytes = 8 * 1024
    public var maxHeaderBytes = 16 * 1024
    public var maxHeaderCount = 100
    public var maxBodyBytes = 1 << 20
    public var headTimeout: Duration = .seconds(10)
    public var idleTimeout: Duration = .seconds(60)
    public var bodyTimeout: Duration = .seconds(30)
    public var maxConnections = 1024
    /// How long in-flight requests may run after shutdown begins.
    public var shutdownGracePeriod: Duration = .seconds(30)
    public init() {}
}

public final class HTTPServer: Sendable {
    public init(configuration: HTTPServerConfiguration, logger: Logger, handler: @escaping HTTPHandler) { fatalError("not implemented") }
    /// Binds and starts accepting; returns the bound port. Throws a clear error (port in use...).
    public func start() throws -> Int { fatalError("not implemented") }
    /// Stops accepting, lets in-flight requests finish within the grace period, closes idle
    /// connections; returns when everything is closed.
    public func shutdown() async { fatalError("not implemented") }
}
