import XCTest
import HTTPServer

/// Every rule of RFC 9110/9112 the parser enforces, with the exact error and status.
final class ParserRejectionTests: XCTestCase {
    // MARK: Limits

    func testRequestLineAtTheLimitPassesOneByteOverIs414() {
        var limits = HTTPParserLimits()
        limits.maxRequestLineBytes = 40
        let fits = "GET /" + String(repeating: "a", count: 40 - 14) + " HTTP/1.1"
        XCTAssertEqual(fits.utf8.count, 40)
        XCTAssertNotNil(singleMessage(parse(fits + "\r\nHost: a\r\n\r\n", limits: limits)))
        let over = "GET /" + String(repeating: "a", count: 41 - 14) + " HTTP/1.1"
        assertRejects(over + "\r\nHost: a\r\n\r\n", with: .requestLineTooLong, status: 414, limits: limits)
    }

    func testEndlessRequestLineIsCutOffWithoutItsEnd() {
        var limits = HTTPParserLimits()
        limits.maxRequestLineBytes = 100
        var parser = HTTPRequestParser(limits: limits)
        let events = parser.feed(Array(("GET /" + String(repeating: "a", count: 200)).utf8))
        XCTAssertEqual(events, [.error(.requestLineTooLong)])
    }

    func testHeaderBlockOverTheLimitIs431() {
        var limits = HTTPParserLimits()
        limits.maxHeaderBytes = 64
        let fits = "Host: a\r\nX: " + String(repeating: "b", count: 64 - 9 - 5 - 2) + "\r\n"  // 64 bytes of lines
        XCTAssertEqual(fits.utf8.count, 62)
        XCTAssertNotNil(singleMessage(parse("GET / HTTP/1.1\r\n" + fits + "\r\n", limits: limits)))
        let over = "Host: a\r\nX: " + String(repeating: "b", count: 60) + "\r\n"
        assertRejects("GET / HTTP/1.1\r\n" + over + "\r\n", with: .headerBlockTooLarge, status: 431, limits: limits)
    }

    func testMoreThanMaxHeaderCountIs431() {
        var limits = HTTPParserLimits()
        limits.maxHeaderCount = 5
        let four = (1...4).map { "X-\($0): v\r\n" }.joined()
        XCTAssertNotNil(singleMessage(parse("GET / HTTP/1.1\r\nHost: a\r\n" + four + "\r\n", limits: limits)))
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\n" + four + "X-5: v\r\n\r\n", with: .tooManyHeaders, status: 431, limits: limits)
    }

    func testContentLengthOverTheBodyLimitIs413BeforeAnyBodyByte() {
        var limits = HTTPParserLimits()
        limits.maxBodyBytes = 10
        XCTAssertNotNil(singleMessage(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits)))
        assertRejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", with: .bodyTooLarge, status: 413, limits: limits)
    }

    func testChunkedBodyOverTheLimitIs413() {
        var limits = HTTPParserLimits()
        limits.maxBodyBytes = 10
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        XCTAssertNotNil(singleMessage(parse(head + "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n", limits: limits)))
        assertRejects(head + "5\r\n01234\r\n6\r\n", with: .bodyTooLarge, status: 413, limits: limits)
    }

    // MARK: Request line

    func testUnknownVersionsAre505() {
        assertRejects("GET / HTTP/2.0\r\nHost: a\r\n\r\n", with: .unsupportedVersion, status: 505)
        assertRejects("GET / HTTP/0.9\r\n\r\n", with: .unsupportedVersion, status: 505)
        assertRejects("GET / HTTP/3.1\r\n\r\n", with: .unsupportedVersion, status: 505)
    }

    func testMalformedVersionsAre400() {
        for version in ["HTTP/1", "http/1.1", "HTTP/1.10", "HTTP/a.b", "HTTX/1.1", "HTTP/1.1 "] {
            assertRejects("GET / \(version)\r\nHost: a\r\n\r\n", with: .malformedRequestLine)
        }
    }

    func testRequestLineNeedsExactlyTwoSingleSpaces() {
        assertRejects("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", with: .malformedRequestLine)
        assertRejects("GET /\r\nHost: a\r\n\r\n", with: .malformedRequestLine)
        assertRejects("GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n", with: .malformedRequestLine)
        assertRejects("GET / x HTTP/1.1\r\nHost: a\r\n\r\n", with: .malformedRequestLine)
    }

    func testInvalidMethodAndTarget() {
        assertRejects("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", with: .invalidMethod)
        assertRejects("GET /\u{7F} HTTP/1.1\r\nHost: a\r\n\r\n", with: .invalidTarget)
        assertRejects("GET /caf\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n", with: .invalidTarget)
        assertRejects("GET relative HTTP/1.1\r\nHost: a\r\n\r\n", with: .invalidTarget)
        assertRejects("GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", with: .invalidTarget)
    }

    // MARK: Line framing

    func testBareLFIsRejectedInTheHead() {
        assertRejects("GET / HTTP/1.1\nHost: a\r\n\r\n", with: .bareLF)
        assertRejects("GET / HTTP/1.1\r\nHost: a\n\r\n", with: .bareLF)
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\n\n", with: .bareLF)
        assertRejects("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", with: .bareLF)
    }

    func testBareCRInAFieldIsRejected() {
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", with: .bareCR)
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nX: ab\r\r\n\r\n", with: .bareCR)
    }

    // MARK: Header fields

    func testWhitespaceBeforeColonIsRejected() {
        assertRejects("GET / HTTP/1.1\r\nHost : a\r\n\r\n", with: .whitespaceBeforeColon)
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 0\r\n\r\n", with: .whitespaceBeforeColon)
    }

    func testObsFoldIsRejected() {
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", with: .obsFold)
        assertRejects("GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", with: .obsFold)
    }

    func testControlCharactersInValuesAreRejected() {
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", with: .invalidHeaderValue)
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{1B}b\r\n\r\n", with: .invalidHeaderValue)
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7F}\r\n\r\n", with: .invalidHeaderValue)
    }

    func testInvalidFieldNamesAreRejected() {
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", with: .invalidHeaderName)
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", with: .invalidHeaderName)
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", with: .invalidHeaderName)
    }

    func testHostIsRequiredOnceInHTTP11() {
        assertRejects("GET / HTTP/1.1\r\n\r\n", with: .missingHost)
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", with: .duplicateHost)
        assertRejects("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", with: .duplicateHost)
        XCTAssertNotNil(singleMessage(parse("GET / HTTP/1.0\r\n\r\n")))
    }

    func testHostMustBeAHostAndOptionalPort() {
        for bad in ["a b", "a/b", "user@host", "host:port", "host:123456", "[::1", "[]", "[::1]x", "a%2", "a%zz", "é.example"] {
            assertRejects("GET / HTTP/1.1\r\nHost: \(bad)\r\n\r\n", with: .invalidHost)
        }
        for good in ["", "a", "example.com:8080", "127.0.0.1", "[::1]:443", "[v1.fe80::a+en1]", "xn--bcher-kva.example", "a%20b", "host:"] {
            XCTAssertNotNil(singleMessage(parse("GET / HTTP/1.1\r\nHost: \(good)\r\n\r\n")), good)
        }
    }

    // MARK: Content coding and expectations

    func testCodedRequestBodiesAre415ButCodingWithoutBodyIsIgnored() {
        assertRejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc", with: .unsupportedContentEncoding, status: 415)
        assertRejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: identity, br\r\nTransfer-Encoding: chunked\r\n\r\n", with: .unsupportedContentEncoding, status: 415)
        XCTAssertNotNil(singleMessage(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: Identity\r\nContent-Length: 1\r\n\r\nx")))
        XCTAssertNotNil(singleMessage(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\n\r\n")))
    }

    func testExpectationsOtherThan100ContinueAre417() {
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nExpect: the-unexpected\r\n\r\n", with: .unsupportedExpectation, status: 417)
        assertRejects("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\nContent-Length: 1\r\n\r\nx", with: .unsupportedExpectation, status: 417)
        XCTAssertNotNil(singleMessage(parse("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx")))
        XCTAssertNotNil(singleMessage(parse("GET / HTTP/1.0\r\nExpect: the-unexpected\r\n\r\n")), "HTTP/1.0 ignores Expect")
    }

    // MARK: Body framing

    func testContentLengthWithTransferEncodingIsRejected() {
        assertRejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", with: .contentLengthWithTransferEncoding)
        assertRejects("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", with: .contentLengthWithTransferEncoding)
    }

    func testDifferingContentLengthsAreRejected() {
        assertRejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", with: .conflictingContentLength)
        assertRejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", with: .conflictingContentLength)
    }

    func testInvalidContentLengthsAreRejected() {
        for value in ["abc", "-1", "+5", "1 2", "0x10", "", "3,", "1234567890123456789", "١"] {
            assertRejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\n", with: .invalidContentLength)
        }
    }

    func testOnlyASingleFinalChunkedCodingIsAccepted() {
        for value in ["gzip", "gzip, chunked", "chunked, gzip", "chunked, chunked", "identity", ","] {
            assertRejects("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(value)\r\n\r\n", with: .unsupportedTransferEncoding)
        }
        assertRejects("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", with: .unsupportedTransferEncoding)
    }

    func testTransferEncodingInHTTP10IsRejected() {
        assertRejects("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", with: .transferEncodingInHTTP10)
    }

    // MARK: Chunked framing

    private let chunkedHead = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

    func testInvalidChunkSizesAreRejected() {
        assertRejects(chunkedHead + "xyz\r\n", with: .invalidChunkSize)
        assertRejects(chunkedHead + "\r\n", with: .invalidChunkSize)
        assertRejects(chunkedHead + "5x\r\nhello\r\n", with: .invalidChunkSize)
        assertRejects(chunkedHead + "-5\r\n", with: .invalidChunkSize)
    }

    func testChunkSizeDigitsAreCappedAndOverflowIsRejected() {
        assertRejects(chunkedHead + "00000000000000001\r\n", with: .invalidChunkSize)  // 17 digits
        assertRejects(chunkedHead + "FFFFFFFFFFFFFFFF\r\n", with: .invalidChunkSize)  // > Int.max
        assertRejects(chunkedHead + "7FFFFFFFFFFFFFFF\r\n", with: .bodyTooLarge, status: 413)
    }

    func testChunkDataMustBeFollowedByCRLF() {
        assertRejects(chunkedHead + "5\r\nhelloX\r\n", with: .missingChunkCRLF)
        assertRejects(chunkedHead + "5\r\nhello\rX", with: .missingChunkCRLF)
        assertRejects(chunkedHead + "5\r\nhello\n0\r\n\r\n", with: .bareLF)
    }

    func testBareLFInChunkedFramingIsRejected() {
        assertRejects(chunkedHead + "5\nhello\r\n", with: .bareLF)
        assertRejects(chunkedHead + "0\r\n\n", with: .bareLF)
        assertRejects(chunkedHead + "0\r\nX: t\n\r\n", with: .bareLF)
    }

    func testMalformedChunkExtensionsAndLongChunkLines() {
        assertRejects(chunkedHead + "5 x\r\nhello\r\n", with: .invalidChunkExtension)
        assertRejects(chunkedHead + "5;a=\u{1}\r\nhello\r\n", with: .invalidChunkExtension)
        assertRejects(chunkedHead + "5;a\rb\r\nhello\r\n", with: .bareCR)
        var limits = HTTPParserLimits()
        limits.maxChunkLineBytes = 16
        assertRejects(chunkedHead + "5;" + String(repeating: "e", count: 20) + "\r\n", with: .chunkLineTooLong, limits: limits)
    }

    func testTrailersAreValidatedLikeHeaders() {
        assertRejects(chunkedHead + "0\r\nX : t\r\n\r\n", with: .whitespaceBeforeColon)
        assertRejects(chunkedHead + "0\r\nX: t\r\n folded\r\n\r\n", with: .obsFold)
    }

    // MARK: After an error

    func testNothingIsParsedAfterAnError() {
        let events = parse("GET / HTTP/2.0\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(events, [.error(.unsupportedVersion)])
        let smuggled = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(smuggled, [.error(.contentLengthWithTransferEncoding)])
    }
}
