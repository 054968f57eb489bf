import Foundation
import HTTPServer
import XCTest

/// Routing by pattern, 404/405 with `Allow`, HEAD through GET, middleware around every answer.
final class RouterTests: XCTestCase {
    private func makeRouter() -> HTTPRouter {
        var router = HTTPRouter()
        router.add("GET", "/v1/models") { _ in text(200, "models") }
        router.add("POST", "/v1/completions") { request in text(200, "completed \(request.body.count)") }
        router.add("GET", "/v1/completions") { _ in text(200, "get completions") }
        return router
    }

    private func request(_ method: String, _ target: String) -> HTTPRequest {
        HTTPRequest(method: method, target: target, headers: ["Host": "t"], body: [], requestID: "r")
    }

    func testRoutesByExactPathAndMethodIgnoringTheQuery() async {
        let handler = makeRouter().handler()
        let response = await handler(request("GET", "/v1/models?limit=3"))
        XCTAssertEqual(response.status, 200)
        guard case .bytes(let body) = response.body else { return XCTFail() }
        XCTAssertEqual(String(decoding: body, as: UTF8.self), "models")
        let trailing = await handler(request("GET", "/v1/models/"))
        XCTAssertEqual(trailing.status, 404, "paths match exactly")
    }

    func testUnknownPathIs404WithJSONBody() async {
        let response = await makeRouter().handler()(request("GET", "/nope"))
        XCTAssertEqual(response.status, 404)
        XCTAssertEqual(response.headers["Content-Type"], "application/json")
        guard case .bytes(let body) = response.body else { return XCTFail() }
        XCTAssertEqual(String(decoding: body, as: UTF8.self), "{\"error\":\"no route for /nope\"}")
    }

    func testWrongMethodIs405WithAllow() async {
        let models = await makeRouter().handler()(request("DELETE", "/v1/models"))
        XCTAssertEqual(models.status, 405)
        XCTAssertEqual(models.headers["Allow"], "GET, HEAD")
        let completions = await makeRouter().handler()(request("PUT", "/v1/completions"))
        XCTAssertEqual(completions.headers["Allow"], "GET, HEAD, POST")
    }

    func testHeadIsServedByGet() async {
        let response = await makeRouter().handler()(request("HEAD", "/v1/models"))
        XCTAssertEqual(response.status, 200)
    }

    func testErrorHookShapesTheAnswers() async {
        var router = makeRouter()
        router.makeErrorResponse = { status, message in text(status, "custom \(status): \(message)") }
        let response = await router.handler()(request("PATCH", "/v1/models"))
        guard case .bytes(let body) = response.body else { return XCTFail() }
        XCTAssertEqual(String(decoding: body, as: UTF8.self), "custom 405: method PATCH not allowed on /v1/models")
        XCTAssertEqual(response.headers["Allow"], "GET, HEAD")
    }

    func testHeadOverTheWireSendsTheLengthButNoBody() throws {
        try withServer(handler: makeRouter().handler()) { _, port in
            let client = try TestClient(port: port)
            try client.send("HEAD /v1/models HTTP/1.1\r\nHost: t\r\n\r\n")
            let head = try client.readResponse(bodyless: true)
            XCTAssertEqual(head.headers["Content-Length"], "6")
            // The next response must start right away: no stray body bytes in between.
            try client.send("GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try client.readResponse().bodyText, "models")
            try client.send("DELETE /v1/models HTTP/1.1\r\nHost: t\r\n\r\n")
            let refused = try client.readResponse()
            XCTAssertEqual(refused.status, 405)
            XCTAssertEqual(refused.headers["Allow"], "GET, HEAD")
        }
    }

    func testPatternsBindSegmentsAndLiteralsWin() async {
        var router = makeRouter()
        router.add("GET", "/v1/models/{model}", route: { _, match in text(200, "model \(match.parameters["model"] ?? "?")") })
        router.add("GET", "/files/{path...}", route: { _, match in text(200, "file \(match.parameters["path"] ?? "?")") })
        let handler = router.handler()
        for (path, expected) in [("/v1/models/tiny%20one", "model tiny one"), ("/v1/models", "models"), ("/files/a/b%2Fc", "file a/b/c")] {
            let response = await handler(request("GET", path))
            guard case .bytes(let body) = response.body else { return XCTFail() }
            XCTAssertEqual(String(decoding: body, as: UTF8.self), expected, path)
        }
        for path in ["/v1/models/", "/v1/models/a/b", "/files", "/files/"] {
            let status = await handler(request("GET", path)).status
            XCTAssertEqual(status, 404, path)
        }
        XCTAssertEqual(router.routes.map { "\($0.method) \($0.pattern)" },
                       ["GET /v1/models", "GET /v1/completions", "POST /v1/completions", "GET /v1/models/{model}", "GET /files/{path...}"])
    }

    /// Records what it saw and tags the answer, so that order and coverage show.
    private struct Tagging: HTTPMiddleware {
        let tag: String
        let seen: Seen
        func handle(_ request: HTTPRequest, match: RouteMatch, next: RouteHandler) async -> HTTPResponse {
            seen.append("\(tag):\(match.pattern ?? "none")")
            var response = await next(request, match)
            response.headers.add(name: "X-Tag", value: tag)
            return response
        }
    }

    private final class Seen: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [String] = []
        func append(_ value: String) { lock.withLock { values.append(value) } }
        var all: [String] { lock.withLock { values } }
    }

    func testMiddlewareWrapsEveryAnswerOutermostFirst() async {
        var router = makeRouter()
        let seen = Seen()
        router.use(Tagging(tag: "outer", seen: seen))
        router.use(Tagging(tag: "inner", seen: seen))
        let handler = router.handler()
        let found = await handler(request("GET", "/v1/models"))
        let missing = await handler(request("GET", "/nope"))
        let wrong = await handler(request("DELETE", "/v1/models"))
        XCTAssertEqual(seen.all, ["outer:/v1/models", "inner:/v1/models", "outer:none", "inner:none", "outer:/v1/models", "inner:/v1/models"])
        for response in [found, missing, wrong] {
            XCTAssertEqual(response.headers.values(for: "X-Tag"), ["inner", "outer"], "the inner middleware sees the answer first")
        }
        XCTAssertEqual([found.status, missing.status, wrong.status], [200, 404, 405])
    }
}
