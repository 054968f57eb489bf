import Foundation

// MARK: - Router

/// Routes by method and path pattern: literal segments, `{name}` for one segment, and a last
/// `{name...}` for the rest of the path. Unknown paths get 404, wrong methods 405 with `Allow`, and
/// `HEAD` is served by the `GET` handler (the server sends the head without the body). Middleware
/// wraps every answer, 404 and 405 included; the first added is the outermost.
public struct HTTPRouter: Sendable {
    /// One pattern and its handlers by method.
    private struct Entry: Sendable {
        var pattern: String
        var segments: [Substring]
        var handlers: [String: RouteHandler]
    }

    private var entries: [Entry] = []
    private var middleware: [any HTTPMiddleware] = []

    public init() {}

    /// Registers `handler` for `method` on `pattern` (no query). A later registration of the same pair
    /// replaces the earlier one.
    public mutating func add(_ method: String, _ pattern: String, route handler: @escaping RouteHandler) {
        if let index = entries.firstIndex(where: { $0.pattern == pattern }) {
            entries[index].handlers[method] = handler
        } else {
            entries.append(Entry(pattern: pattern, segments: Self.segments(pattern), handlers: [method: handler]))
        }
    }

    /// Registers a handler that needs nothing from the match.
    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping HTTPHandler) {
        add(method, pattern, route: { request, _ in await handler(request) })
    }

    /// Adds `middleware` inside those added before it.
    public mutating func use(_ middleware: any HTTPMiddleware) {
        self.middleware.append(middleware)
    }

    /// Every registered (method, pattern), in registration order.
    public var routes: [(method: String, pattern: String)] {
        entries.flatMap { entry in entry.handlers.keys.sorted().map { (method: $0, pattern: entry.pattern) } }
    }

    /// Lets the application shape the 404/405 answers (e.g. in OpenAI's error format).
    public var makeErrorResponse: @Sendable (_ status: Int, _ message: String) -> HTTPResponse = { status, message in
        HTTPResponse.jsonError(status: status, message: message)
    }

    /// The handler that dispatches to the registered routes through the middleware.
    public func handler() -> HTTPHandler {
        let entries = self.entries
        let makeError = makeErrorResponse
        let chain = middleware.reversed().reduce({ request, match in
            await Self.respond(request, match: match, entries: entries, makeError: makeError)
        } as RouteHandler) { next, middleware in
            { request, match in await middleware.handle(request, match: match, next: next) }
        }
        return { request in
            await chain(request, Self.match(request.path, in: entries))
        }
    }

    // MARK: Matching

    private static func segments(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: false)
    }

    /// Literal routes win over patterns with parameters, so `/v1/models` is never read as `{model}`.
    private static func match(_ path: String, in entries: [Entry]) -> RouteMatch {
        let segments = Self.segments(path)
        var best: (entry: Entry, parameters: [String: String])?
        for entry in entries {
            guard let parameters = bind(entry.segments, to: segments) else { continue }
            if parameters.isEmpty { best = (entry, parameters); break }
            if best == nil { best = (entry, parameters) }
        }
        guard let (entry, parameters) = best else { return RouteMatch(pattern: nil) }
        var allowed = Set(entry.handlers.keys)
        if allowed.contains("GET") { allowed.insert("HEAD") }
        return RouteMatch(pattern: entry.pattern, allowedMethods: allowed.sorted(), parameters: parameters)
    }

    private static func bind(_ pattern: [Substring], to path: [Substring]) -> [String: String]? {
        var parameters: [String: String] = [:]
        for (index, segment) in pattern.enumerated() {
            guard segment.hasPrefix("{"), segment.hasSuffix("}") else {
                guard index < path.count, path[index] == segment else { return nil }
                continue
            }
            var name = segment.dropFirst().dropLast()
            if name.hasSuffix("...") {
                guard index == pattern.count - 1, index < path.count else { return nil }
                name = name.dropLast(3)
                let rest = path[index...].joined(separator: "/")
                guard !rest.isEmpty else { return nil }
                parameters[String(name)] = rest.removingPercentEncoding ?? rest
                return parameters
            }
            guard index < path.count, !path[index].isEmpty else { return nil }
            parameters[String(name)] = path[index].removingPercentEncoding ?? String(path[index])
        }
        return pattern.count == path.count ? parameters : nil
    }

    // MARK: Answering

    private static func respond(_ request: HTTPRequest, match: RouteMatch, entries: [Entry],
                                makeError: @Sendable (Int, String) -> HTTPResponse) async -> HTTPResponse {
        let shownPath = request.path.count <= 100 ? request.path : String(request.path.prefix(100)) + "…"
        guard let pattern = match.pattern, let entry = entries.first(where: { $0.pattern == pattern }) else {
            return makeError(404, "no route for \(shownPath)")
        }
        if let handler = entry.handlers[request.method] ?? (request.method == "HEAD" ? entry.handlers["GET"] : nil) {
            return await handler(request, match)
        }
        var response = makeError(405, "method \(request.method.prefix(20)) not allowed on \(shownPath)")
        response.headers.replaceOrAdd(name: "Allow", value: match.allowedMethods.joined(separator: ", "))
        return response
    }
}
