import XCTest
import HTTPServer

/// Requests the parser must accept, each also checked at every split offset.
final class ParserValidRequestTests: XCTestCase {
    static let validRequests: [String] = [
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /v1/models?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
        "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"prompt\":\"hi\"}\n",
        "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        "GET http://example.com:8000/p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.3\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Spaces: \t padded \t \r\nX-Latin: caf\u{E9}\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n000a\r\n0123456789\r\n0000\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    ]

    func testEveryValidRequestParsesTheSameAtEverySplit() {
        for request in Self.validRequests {
            let events = parse(request)
            XCTAssertNil(firstError(events), "rejected: \(request.debugDescription) → \(events)")
        }
    }

    func testParsesMethodTargetVersionAndHeadersInOrder() throws {
        let (head, body) = try XCTUnwrap(singleMessage(parse(Self.validRequests[1])))
        XCTAssertEqual(head.method, "GET")
        XCTAssertEqual(head.target, "/v1/models?x=1&y=2")
        XCTAssertEqual(head.version, .http11)
        XCTAssertEqual(head.headers.fields.map(\.name), ["Host", "User-Agent", "Accept"])
        XCTAssertEqual(head.headers["user-agent"], "curl/8.0")
        XCTAssertTrue(head.keepAlive)
        XCTAssertEqual(head.framing, .none)
        XCTAssertEqual(body, [])
    }

    func testReadsContentLengthBody() throws {
        let (head, body) = try XCTUnwrap(singleMessage(parse(Self.validRequests[2])))
        XCTAssertEqual(head.framing, .length(16))
        XCTAssertEqual(String(decoding: body, as: UTF8.self), "{\"prompt\":\"hi\"}\n")
    }

    func testDecodesChunkedBodyWithExtensionsAndDropsTrailers() throws {
        let (head, body) = try XCTUnwrap(singleMessage(parse(Self.validRequests[3])))
        XCTAssertEqual(head.framing, .chunked)
        XCTAssertEqual(String(decoding: body, as: UTF8.self), "hello world")
        XCTAssertNil(head.headers["X-Trailer"])
    }

    func testChunkSizesWithLeadingZerosAndUppercaseCoding() throws {
        let (_, body) = try XCTUnwrap(singleMessage(parse(Self.validRequests[14])))
        XCTAssertEqual(String(decoding: body, as: UTF8.self), "0123456789")
    }

    func testPipelinedRequestsComeOutInOrder() {
        let events = parse(Self.validRequests[4])
        let targets = events.compactMap { event -> String? in
            if case .message(let head, _) = event { return head.target }
            return nil
        }
        XCTAssertEqual(targets, ["/a", "/b"])
        guard case .message(let last, _) = events.last else { return XCTFail("\(events)") }
        XCTAssertFalse(last.keepAlive, "Connection: close ends keep-alive")
    }

    func testHTTP10ClosesUnlessKeepAliveAsked() throws {
        let (plain, _) = try XCTUnwrap(singleMessage(parse(Self.validRequests[5])))
        XCTAssertEqual(plain.version, .http10)
        XCTAssertFalse(plain.keepAlive)
        let (kept, _) = try XCTUnwrap(singleMessage(parse(Self.validRequests[6])))
        XCTAssertTrue(kept.keepAlive)
    }

    func testExpectContinueIsFlaggedWithTheHeadBeforeTheBody() {
        let events = parse(Self.validRequests[7])
        guard case .head(let head) = events.first else { return XCTFail("\(events)") }
        XCTAssertTrue(head.expectsContinue)
        var parser = HTTPRequestParser()
        let headOnly = parser.feed(Array("PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n".utf8))
        XCTAssertEqual(headOnly.count, 1, "the head is reported before any body byte: \(headOnly)")
        XCTAssertEqual(parser.phase, .body)
    }

    func testAbsoluteFormIsReducedToOriginForm() throws {
        let (head, _) = try XCTUnwrap(singleMessage(parse(Self.validRequests[8])))
        XCTAssertEqual(head.target, "/p?q=1")
    }

    func testAsteriskFormOnlyForOptions() throws {
        let (head, _) = try XCTUnwrap(singleMessage(parse(Self.validRequests[9])))
        XCTAssertEqual(head.target, "*")
        assertRejects("GET * HTTP/1.1\r\nHost: a\r\n\r\n", with: .invalidTarget)
    }

    func testIgnoresEmptyLinesBeforeRequestLine() {
        XCTAssertNotNil(singleMessage(parse(Self.validRequests[10])))
    }

    func testToleratesHTTP13RequestAsHTTP11() throws {
        let (head, _) = try XCTUnwrap(singleMessage(parse(Self.validRequests[11])))
        XCTAssertEqual(head.version, .http11)
    }

    func testAcceptsIdenticalRepeatedContentLength() throws {
        let (head, body) = try XCTUnwrap(singleMessage(parse(Self.validRequests[12])))
        XCTAssertEqual(head.framing, .length(2))
        XCTAssertEqual(body, Array("ok".utf8))
    }

    func testTrimsOptionalWhitespaceAndKeepsEmptyAndObsTextValues() throws {
        let (head, _) = try XCTUnwrap(singleMessage(parse(Self.validRequests[13])))
        XCTAssertEqual(head.headers["X-Empty"], "")
        XCTAssertEqual(head.headers["X-Spaces"], "padded")
        XCTAssertEqual(head.headers["X-Latin"], "caf\u{E9}")
    }

    func testPhaseFollowsTheMessage() {
        var parser = HTTPRequestParser()
        XCTAssertEqual(parser.phase, .idle)
        _ = parser.feed(Array("POST / HTTP/1.1\r\nHo".utf8))
        XCTAssertEqual(parser.phase, .head)
        _ = parser.feed(Array("st: a\r\nContent-Length: 4\r\n\r\nab".utf8))
        XCTAssertEqual(parser.phase, .body)
        _ = parser.feed(Array("cd".utf8))
        XCTAssertEqual(parser.phase, .idle)
        _ = parser.feed(Array("GET / HTTP/9.9\r\n".utf8))
        XCTAssertEqual(parser.phase, .failed)
    }
}
