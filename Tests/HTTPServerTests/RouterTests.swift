import HTTPServer
import XCTest

/// Exact-path routing, 404/405 with `Allow`, HEAD through GET.
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
}
