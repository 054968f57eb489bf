// MARK: - Request

/// A complete request as handed to a handler: head and whole body.
public struct HTTPRequest: Sendable {
    /// Method token as sent (`GET`, `POST`, ...).
    public var method: String
    /// Request target in origin form (`/v1/completions?x=1`); an absolute-form target is reduced to it.
    public var target: String
    /// `target` without the query.
    public var path: String
    /// What follows the first `?` of the target, if any.
    public var query: String?
    public var headers: HTTPHeaders
    /// The whole body (the server enforces the size limit before the handler runs).
    public var body: [UInt8]
    /// `X-Request-Id` from the client, or one the server generated.
    public var requestID: String
    /// The protocol the request came over: `HTTP/1.0`, `HTTP/1.1` or `HTTP/2` (for metrics and logs;
    /// handlers behave the same whatever it is).
    public var protocolVersion: String

    public init(
        method: String, target: String, headers: HTTPHeaders, body: [UInt8], requestID: String,
        protocolVersion: String = "HTTP/1.1"
    ) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.requestID = requestID
        self.protocolVersion = protocolVersion
        if let question = target.firstIndex(of: "?") {
            path = String(target[..<question])
            query = String(target[target.index(after: question)...])
        } else {
            path = target
            query = nil
        }
    }
}
