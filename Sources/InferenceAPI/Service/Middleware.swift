import Foundation
import HTTPServer
import Logging

// MARK: - Middleware around every answer of the API's router (outermost first)

/// Echoes the request id (the client's `X-Request-Id` or the server's) on every answer.
struct RequestIDMiddleware: HTTPMiddleware {
    func handle(_ request: HTTPRequest, match: RouteMatch, next: RouteHandler) async -> HTTPResponse {
        var response = await next(request, match)
        response.headers.replaceOrAdd(name: "X-Request-Id", value: request.requestID)
        return response
    }
}

/// Counts answers by route pattern, method and status, times them (a stream until its last byte), and
/// logs server errors with their request id.
struct MetricsMiddleware: HTTPMiddleware {
    let metrics: APIMetrics
    let logger: Logger

    func handle(_ request: HTTPRequest, match: RouteMatch, next: RouteHandler) async -> HTTPResponse {
        let started = ContinuousClock.now
        var response = await next(request, match)
        if response.status >= 500 && response.status != 503, case .bytes(let body) = response.body {
            logger.error("\(request.method) \(quotedPrefix(request.path, limit: 100)) failed", metadata: [
                "status": "\(response.status)", "request_id": "\(request.requestID)", "body": "\(String(decoding: body.prefix(500), as: UTF8.self))",
            ])
        }
        // Bounded labels whatever clients send: a route pattern, not a path.
        let endpoint = match.pattern.map { $0.replacingOccurrences(of: "...}", with: "}") } ?? "other"
        metrics.requests.increment([endpoint, Self.methodLabel(request.method), String(response.status)])
        // The server sets the protocol (one of three values): a bounded label.
        metrics.requestsByProtocol.increment([request.protocolVersion])
        switch response.body {
        case .bytes:
            metrics.requestDuration.observe((ContinuousClock.now - started).seconds, [endpoint])
        case .stream(let produce):
            let metrics = self.metrics
            response.body = .stream { writer in
                defer { metrics.requestDuration.observe((ContinuousClock.now - started).seconds, [endpoint]) }
                try await produce(writer)
            }
        }
        return response
    }

    static func methodLabel(_ method: String) -> String {
        ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"].contains(method) ? method : "other"
    }
}

/// With API keys configured, the protected routes need `Authorization: Bearer KEY`. Unmatched paths
/// under `/v1` are protected too, so that a 404 does not tell a caller without a key which routes exist.
struct AuthenticationMiddleware: HTTPMiddleware {
    /// Shared with the service, which replaces them when keys are rotated.
    let keys: Locked<[[UInt8]]>
    let protectedPatterns: Set<String>

    func handle(_ request: HTTPRequest, match: RouteMatch, next: RouteHandler) async -> HTTPResponse {
        let protected = match.pattern.map(protectedPatterns.contains) ?? (request.path == "/v1" || request.path.hasPrefix("/v1/"))
        let keys = self.keys.withLock { $0 }
        guard !protected || keys.isEmpty || authorized(request, keys: keys) else { return APIError.unauthorized.response }
        return await next(request, match)
    }

    private func authorized(_ request: HTTPRequest, keys: [[UInt8]]) -> Bool {
        guard let header = request.headers["Authorization"] else { return false }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let presented = Array(parts[1].trimmingCharacters(in: .whitespaces).utf8)
        // Check every key without stopping early, so timing says nothing about which matched.
        var matched = false
        for key in keys { matched = constantTimeEquals(presented, key) || matched }
        return matched
    }
}

/// Equality whose running time depends only on the lengths, not on where the bytes differ.
func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    let length = max(a.count, b.count)
    for i in 0..<length {
        let x = i < a.count ? a[i] : 0
        let y = i < b.count ? b[i] : 0
        difference |= x ^ y
    }
    return difference == 0
}
