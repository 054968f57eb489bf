// MARK: - Middleware

/// What routing found for a request, as middleware and handlers see it.
public struct RouteMatch: Sendable {
    /// The matched route's pattern (`/v1/models/{model}`); nil when no route matched the path (a 404).
    public var pattern: String?
    /// The methods the matched pattern accepts (`HEAD` included with `GET`); empty for a 404.
    public var allowedMethods: [String]
    /// The values of the pattern's `{name}` segments, percent-decoded.
    public var parameters: [String: String]

    public init(pattern: String?, allowedMethods: [String] = [], parameters: [String: String] = [:]) {
        self.pattern = pattern; self.allowedMethods = allowedMethods; self.parameters = parameters
    }
}

/// A route's handler: the request and what routing found.
public typealias RouteHandler = @Sendable (HTTPRequest, RouteMatch) async -> HTTPResponse

/// Code around every answer of a router, its 404 and 405 answers included (as Hummingbird's
/// `RouterMiddleware`): authentication, metrics, request ids. Calls `next` to go on inward, or
/// answers itself to stop there.
public protocol HTTPMiddleware: Sendable {
    func handle(_ request: HTTPRequest, match: RouteMatch, next: RouteHandler) async -> HTTPResponse
}
