import Foundation
import HTTPServer
import XCTest

/// Random pipelined request sequences, sent in random pieces: the server's answers must match,
/// one for one and in order, what the parser says the bytes contain (messages, then at most one
/// error, then a close), whatever the split.
final class ServerStressTests: XCTestCase {
    private struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    private static func request(_ random: inout SplitMix64, index: Int) -> String {
        let body = String(repeating: "b", count: Int.random(in: 0...40, using: &random))
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<30: return "GET /get\(index)?q=\(index) HTTP/1.1\r\nHost: t\r\nX-N: \(index)\r\n\r\n"
        case 30..<50: return "POST /len\(index) HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.count)\r\n\r\n\(body)"
        case 50..<65:
            let chunks = body.isEmpty ? "" : "\(String(body.count, radix: 16));x=1\r\n\(body)\r\n"
            return "POST /chunked\(index) HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\(chunks)0\r\n\r\n"
        case 65..<75: return "HEAD /head\(index) HTTP/1.1\r\nHost: t\r\n\r\n"
        case 75..<85: return "PUT /expect\(index) HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: \(body.count)\r\n\r\n\(body)"
        case 85..<88: return "GET /last\(index) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        case 88..<92: return "GET /bad\(index) HTTP/1.1\r\nHost : t\r\n\r\n"
        case 92..<94: return "POST /smuggle\(index) HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        case 94..<96: return "GET /v2 HTTP/2.0\r\nHost: t\r\n\r\n"
        default: return "\r\nGET /lead\(index) HTTP/1.1\r\nHost: t\r\n\r\n"
        }
    }

    /// What the answers must be: from the parser's reading of the same bytes.
    private static func expectedAnswers(_ bytes: [UInt8]) -> (answers: [(status: Int, body: String?, head: Bool)], closes: Bool) {
        var parser = HTTPRequestParser()
        var answers: [(Int, String?, Bool)] = []
        for event in parser.feed(bytes) {
            switch event {
            case .head: continue
            case .message(let head, let body):
                answers.append((200, "\(head.method) \(head.target) \(body.count)", head.method == "HEAD"))
                if !head.keepAlive { return (answers, true) }
            case .error(let error):
                answers.append((error.status, nil, false))
                return (answers, true)
            }
        }
        return (answers, false)
    }

    func testRandomPipelinesInRandomPiecesAreAnsweredExactlyAsParsed() throws {
        let echo: HTTPHandler = { request in text(200, "\(request.method) \(request.target) \(request.body.count)") }
        var random = SplitMix64(state: 0x5EED)
        try withServer(handler: echo) { server, port in
            var checked = 0, errors = 0, closes = 0
            for round in 0..<200 {
                let count = Int.random(in: 1...8, using: &random)
                let bytes = Array((0..<count).map { Self.request(&random, index: $0) }.joined().utf8)
                let (answers, expectClose) = Self.expectedAnswers(bytes)
                let client = try TestClient(port: port)
                var offset = 0
                while offset < bytes.count {
                    let length = min(bytes.count - offset, Int.random(in: 1...64, using: &random))
                    do { try client.send(Array(bytes[offset..<offset + length])) } catch { break }  // closed after an error
                    offset += length
                }
                for (position, answer) in answers.enumerated() {
                    var response = try client.readResponse(bodyless: answer.head)
                    while response.status == 100 { response = try client.readResponse(bodyless: answer.head) }
                    let context = "round \(round), answer \(position) of \(answers.count), input \(String(decoding: bytes, as: UTF8.self).debugDescription)"
                    XCTAssertEqual(response.status, answer.status, context)
                    if let body = answer.body, !answer.head { XCTAssertEqual(response.bodyText, body, context) }
                    if response.status != answer.status { return }
                    checked += 1
                    if answer.status != 200 { errors += 1 }
                }
                if expectClose {
                    XCTAssertTrue(client.waitForClose(), "round \(round): connection left open")
                    closes += 1
                }
            }
            // Every connection was closed by its client: none may be left lingering.
            XCTAssertTrue(Probe().wait(timeout: 1) { _ in server.connectionCount == 0 }, "\(server.connectionCount) connections left open")
            // The mix must really exercise answers, errors and closes.
            XCTAssertGreaterThan(checked, 400)
            XCTAssertGreaterThan(errors, 20)
            XCTAssertGreaterThan(closes, 40)
        }
    }
}
