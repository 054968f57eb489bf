// MARK: - Router

/// Routes by exact path and method; unknown paths get 404, wrong methods 405 with `Allow`, and
/// `HEAD` is served by the `GET` handler (the server sends the head without the body). Error
/// bodies are short JSON.
public struct HTTPRouter: Sendable {
    /// path → method → handler.
    private var routes: [String: [String: HTTPHandler]] = [:]

    public init() {}

    /// Registers `handler` for `method` on the exact `path` (no query). A later registration of
    /// the same pair replaces the earlier one.
    public mutating func add(_ method: String, _ path: String, _ handler: @escaping HTTPHandler) {
        routes[path, default: [:]][method] = handler
    }

    /// Lets the application shape the 404/405 answers (e.g. in OpenAI's error format).
    public var makeErrorResponse: @Sendable (_ status: Int, _ message: String) -> HTTPResponse = { status, message in
        HTTPResponse.jsonError(status: status, message: message)
    }

    /// The handler that dispatches to the registered routes.
    public func handler() -> HTTPHandler {
        let routes = self.routes
        let makeError = makeErrorResponse
        return { request in
            guard let methods = routes[request.path] else {
                return makeError(404, "no route for \(request.path)")
            }
            if let handler = methods[request.method] ?? (request.method == "HEAD" ? methods["GET"] : nil) {
                return await handler(request)
            }
            var allowed = Set(methods.keys)
            if allowed.contains("GET") { allowed.insert("HEAD") }
            let allow = allowed.sorted().joined(separator: ", ")
            var response = makeError(405, "method \(request.method) not allowed on \(request.path)")
            response.headers.replaceOrAdd(name: "Allow", value: allow)
            return response
        }
    }
}
