import Foundation
import HTTPServer
import Logging
import XCTest

/// Connection behaviour over real loopback sockets: persistence, pipelining, bodies, errors.
final class ServerConnectionTests: XCTestCase {
    private let echo: HTTPHandler = { request in
        text(200, "\(request.method) \(request.target) \(request.body.count):" + String(decoding: request.body, as: UTF8.self))
    }

    func testKeepAliveReusesOneConnection() throws {
        try withServer(handler: echo) { server, port in
            let client = try TestClient(port: port)
            for index in 0..<3 {
                try client.send("GET /n\(index) HTTP/1.1\r\nHost: t\r\n\r\n")
                let response = try client.readResponse()
                XCTAssertEqual(response.status, 200)
                XCTAssertEqual(response.bodyText, "GET /n\(index) 0:")
                XCTAssertNil(response.headers["Connection"])
            }
            XCTAssertEqual(server.connectionCount, 1)
        }
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        // The first request is the slowest: answers must still come in request order.
        let handler: HTTPHandler = { request in
            let delay = ["/slow": 200, "/medium": 50][request.path] ?? 0
            try? await Task.sleep(for: .milliseconds(delay))
            return text(200, request.path)
        }
        try withServer(handler: handler) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /medium HTTP/1.1\r\nHost: t\r\n\r\nGET /fast HTTP/1.1\r\nHost: t\r\n\r\n")
            let bodies = try (0..<3).map { _ in try client.readResponse().bodyText }
            XCTAssertEqual(bodies, ["/slow", "/medium", "/fast"])
        }
    }

    func testChunkedUploadIsDecodedForTheHandler() throws {
        try withServer(handler: echo) { _, port in
            let client = try TestClient(port: port)
            try client.send("POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            usleep(50_000)
            try client.send("1;x=y\r\n \r\n5\r\nworld\r\n0\r\n\r\n")
            let response = try client.readResponse()
            XCTAssertEqual(response.bodyText, "POST /up 11:hello world")
        }
    }

    func testExpectContinueGetsAnInterimAnswerBeforeTheBody() throws {
        try withServer(handler: echo) { _, port in
            let client = try TestClient(port: port)
            try client.send("PUT /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
            let interim = try client.readResponse()
            XCTAssertEqual(interim.status, 100)
            try client.send("abc")
            XCTAssertEqual(try client.readResponse().bodyText, "PUT /x 3:abc")
        }
    }

    func testHTTP10ClosesAfterTheResponseUnlessKeepAliveAsked() throws {
        try withServer(handler: echo) { _, port in
            let plain = try TestClient(port: port)
            try plain.send("GET /a HTTP/1.0\r\n\r\n")
            let first = try plain.readResponse()
            XCTAssertEqual(first.headers["Connection"], "close")
            XCTAssertTrue(plain.waitForClose())

            let kept = try TestClient(port: port)
            try kept.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            XCTAssertEqual(try kept.readResponse().headers["Connection"], "keep-alive")
            try kept.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            XCTAssertEqual(try kept.readResponse().bodyText, "GET /b 0:")
        }
    }

    func testConnectionCloseIsHonoured() throws {
        try withServer(handler: echo) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(try client.readResponse().headers["Connection"], "close")
            XCTAssertTrue(client.waitForClose())
        }
    }

    func testRequestIdIsEchoedOrGenerated() throws {
        try withServer(handler: { text(200, $0.requestID) }) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET / HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123\r\n\r\n")
            let given = try client.readResponse()
            XCTAssertEqual(given.headers["X-Request-Id"], "abc-123")
            XCTAssertEqual(given.bodyText, "abc-123")
            try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            let generated = try client.readResponse()
            XCTAssertEqual(generated.headers["X-Request-Id"]?.count, 32)
            XCTAssertEqual(generated.headers["X-Request-Id"], generated.bodyText)
            XCTAssertNotNil(generated.headers["Date"])
        }
    }

    func testServerOwnsFramingFieldsAndDropsFieldsThatWouldBreakTheHead() throws {
        let handler: HTTPHandler = { _ in
            HTTPResponse(status: 200, headers: [
                "Content-Length": "999", "Connection": "close", "Transfer-Encoding": "gzip",
                "X-Injected": "a\r\nSet-Cookie: evil=1", "Bad Name": "x", "X-Fine": "yes",
            ], body: .bytes(Array("body".utf8)))
        }
        try withServer(handler: handler) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try client.readResponse()
            XCTAssertEqual(response.headers["Content-Length"], "4")
            XCTAssertNil(response.headers["Transfer-Encoding"])
            XCTAssertNil(response.headers["Connection"], "keep-alive is the server's decision")
            XCTAssertNil(response.headers["X-Injected"])
            XCTAssertNil(response.headers["Set-Cookie"])
            XCTAssertEqual(response.headers["X-Fine"], "yes")
            XCTAssertEqual(response.bodyText, "body")
            try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try client.readResponse().status, 200, "still in sync")
        }
    }

    func testNoContentAnswerHasNoBodyAndNoLength() throws {
        try withServer(handler: { _ in text(204, "ignored") }) { _, port in
            let client = try TestClient(port: port)
            try client.send("DELETE /x HTTP/1.1\r\nHost: t\r\n\r\nGET /y HTTP/1.1\r\nHost: t\r\n\r\n")
            let first = try client.readResponse()
            XCTAssertEqual(first.status, 204)
            XCTAssertNil(first.headers["Content-Length"])
            XCTAssertEqual(try client.readResponse().status, 204, "no stray body between the answers")
        }
    }

    func testStreamToHTTP10ClientEndsWithTheConnection() throws {
        let handler: HTTPHandler = { _ in
            HTTPResponse(status: 200, body: .stream { writer in
                try await writer.write(Array("one ".utf8))
                try await writer.write(Array("two".utf8))
            })
        }
        try withServer(handler: handler) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let response = try client.readResponse()
            XCTAssertNil(response.headers["Transfer-Encoding"], "no chunked coding for HTTP/1.0")
            XCTAssertEqual(response.headers["Connection"], "close")
            XCTAssertEqual(response.bodyText, "one two")
        }
    }

    // MARK: Errors

    func testParseErrorsAnswerShortJSONAndClose() throws {
        let cases: [(String, Int)] = [
            ("GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
            ("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
            ("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),
        ]
        try withServer(handler: echo) { _, port in
            for (request, status) in cases {
                let client = try TestClient(port: port)
                try client.send(request)
                let response = try client.readResponse()
                XCTAssertEqual(response.status, status, request.debugDescription)
                XCTAssertEqual(response.headers["Content-Type"], "application/json")
                XCTAssertTrue(response.bodyText.hasPrefix("{\"error\":\""), response.bodyText)
                XCTAssertEqual(response.headers["Connection"], "close")
                XCTAssertTrue(client.waitForClose(), "connection left open after \(status)")
            }
        }
    }

    func testLimitsAnswer413And414And431OverSockets() throws {
        var configuration = testConfiguration()
        configuration.maxBodyBytes = 1000
        configuration.maxRequestLineBytes = 100
        configuration.maxHeaderBytes = 200
        try withServer(configuration, handler: echo) { _, port in
            let big = try TestClient(port: port)
            try big.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + String(repeating: "x", count: 3000))
            XCTAssertEqual(try big.readResponse().status, 413)

            let chunked = try TestClient(port: port)
            try chunked.send("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + String(repeating: "x", count: 1000) + "\r\n1\r\n")
            XCTAssertEqual(try chunked.readResponse().status, 413)

            let longLine = try TestClient(port: port)
            try longLine.send("GET /" + String(repeating: "a", count: 200) + " HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try longLine.readResponse().status, 414)

            let headers = try TestClient(port: port)
            try headers.send("GET / HTTP/1.1\r\nHost: t\r\nX: " + String(repeating: "h", count: 300) + "\r\n\r\n")
            XCTAssertEqual(try headers.readResponse().status, 431)
        }
    }

    func testPipelinedRequestBeforeAnErrorIsAnsweredFirst() throws {
        try withServer(handler: echo) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET /ok HTTP/1.1\r\nHost: t\r\n\r\nGET /bad HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
            XCTAssertEqual(try client.readResponse().bodyText, "GET /ok 0:")
            XCTAssertEqual(try client.readResponse().status, 400)
            XCTAssertTrue(client.waitForClose())
        }
    }

    func testServerErrorHookShapesParserErrors() throws {
        var configuration = testConfiguration()
        configuration.makeErrorResponse = { status, message in
            HTTPResponse(status: status, headers: ["Content-Type": "application/json"],
                         body: .bytes(Array("{\"error\":{\"message\":\"\(message)\",\"type\":\"invalid_request_error\"}}".utf8)))
        }
        try withServer(configuration, handler: echo) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET / HTTP/1.1\r\n\r\n")
            let response = try client.readResponse()
            XCTAssertEqual(response.status, 400)
            XCTAssertEqual(response.bodyText, "{\"error\":{\"message\":\"missing Host header\",\"type\":\"invalid_request_error\"}}")
        }
    }

    // MARK: Listening

    func testListensOnIPv6Loopback() throws {
        var configuration = testConfiguration()
        configuration.host = "::1"
        let server = HTTPServer(configuration: configuration, logger: quietLogger(), handler: echo)
        let port: Int
        do { port = try server.start() } catch {
            throw XCTSkip("no IPv6 loopback here: \(error)")
        }
        defer { blocking { await server.shutdown() } }
        let client = try TestClient(port: port, host: "::1")
        try client.send("GET /v6 HTTP/1.1\r\nHost: [::1]\r\n\r\n")
        XCTAssertEqual(try client.readResponse().bodyText, "GET /v6 0:")
    }

    func testPortInUseIsAClearError() throws {
        try withServer(handler: echo) { _, port in
            var configuration = testConfiguration()
            configuration.port = port
            let second = HTTPServer(configuration: configuration, logger: quietLogger(), handler: echo)
            XCTAssertThrowsError(try second.start()) { error in
                guard case HTTPServerError.bindFailed(_, let failedPort, let reason) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(failedPort, port)
                XCTAssertTrue(reason.contains("in use"), reason)
            }
        }
    }

    func testRefusedRequestsAreLoggedAgainstTheirRequestLine() throws {
        let records = LogCapture()
        var logger = Logger(label: "access") { _ in records }
        logger.logLevel = .info
        var configuration = testConfiguration()
        configuration.maxBodyBytes = 10
        try withServer(configuration, logger: logger, handler: echo) { _, port in
            let client = try TestClient(port: port)
            try client.send("POST /v1/completions?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n")
            XCTAssertEqual(try client.readResponse().status, 413)
            let garbage = try TestClient(port: port)
            try garbage.send("\u{1}\u{2}\r\n")
            XCTAssertEqual(try garbage.readResponse().status, 400)
        }
        let statuses = records.entries.compactMap { entry in entry.metadata["status"].map { "\(entry.metadata["method"]!) \(entry.metadata["path"]!) \($0)" } }
        XCTAssertTrue(statuses.contains("POST /v1/completions 413"), "\(statuses)")
        XCTAssertTrue(statuses.contains("- - 400"), "unparseable request lines log as '-': \(statuses)")
    }

    func testAccessLogLineCarriesMethodPathStatusBytesDurationAndRequestId() throws {
        let records = LogCapture()
        var logger = Logger(label: "access") { _ in records }
        logger.logLevel = .info
        try withServer(logger: logger, handler: { _ in text(201, "12345") }) { _, port in
            let client = try TestClient(port: port)
            try client.send("POST /v1/x?q=1 HTTP/1.1\r\nHost: t\r\nX-Request-Id: rid-7\r\nContent-Length: 0\r\n\r\n")
            _ = try client.readResponse()
        }
        let line = try XCTUnwrap(records.entries.first { $0.metadata["request_id"] == "rid-7" }, "\(records.entries)")
        XCTAssertEqual(line.metadata["method"], "POST")
        XCTAssertEqual(line.metadata["path"], "/v1/x")
        XCTAssertEqual(line.metadata["status"], "201")
        XCTAssertEqual(line.metadata["bytes"], "5")
        XCTAssertNotNil(line.metadata["duration_ms"].flatMap { Double($0) })
        XCTAssertTrue(line.metadata["client"]?.hasPrefix("127.0.0.1:") == true, "\(line.metadata)")
    }
}

// MARK: - Log capture

final class LogCapture: LogHandler, @unchecked Sendable {
    struct Entry { var message: String; var metadata: [String: String] }
    private let lock = NSLock()
    private var stored: [Entry] = []
    var entries: [Entry] { lock.withLock { stored } }
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        lock.withLock { stored.append(Entry(message: "\(event.message)", metadata: merged.mapValues { "\($0)" })) }
    }
}
