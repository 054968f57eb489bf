import Foundation
import HTTPServer
import XCTest

/// `Upgrade: h2c` on a cleartext HTTP/1.1 connection: granted requests continue as HTTP/2
/// stream 1; anything short of a well-formed upgrade is served as HTTP/1.1.
final class HTTP2UpgradeTests: XCTestCase {
    private let echo: HTTPHandler = { request in
        text(200, "\(request.method) \(request.path) \(request.body.count) \(request.protocolVersion) \(request.headers["upgrade"] ?? "-")")
    }

    private func curl(_ port: Int, _ path: String, _ extra: [String]) throws -> (code: Int32, output: String, errors: String) {
        try runCommand(["curl", "-sS", "-v", "--max-time", "10"] + extra + ["-w", " %{http_version}", "http://127.0.0.1:\(port)\(path)"])
    }

    func testCurlUpgradesGetAndPostToHTTP2() throws {
        try withServer(handler: echo) { _, port in
            var result = try curl(port, "/healthz", ["--http2"])
            XCTAssertEqual(result.output, "GET /healthz 0 HTTP/2 - 2", result.errors)
            XCTAssertTrue(result.errors.contains("HTTP/1.1 101 Switching Protocols"), result.errors)
            result = try curl(port, "/post", ["--http2", "-d", "hello"])
            XCTAssertEqual(result.output, "POST /post 5 HTTP/2 - 2", result.errors)
            // A larger body comes after `100 Continue`, still within the request before the switch.
            result = try curl(port, "/post", ["--http2", "-d", String(repeating: "x", count: 100_000)])
            XCTAssertEqual(result.output, "POST /post 100000 HTTP/2 - 2", result.errors)
            result = try curl(port, "/head", ["--http2", "-I"])
            XCTAssertTrue(result.output.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), result.output + result.errors)
            XCTAssertTrue(result.output.contains("\r\n\r\nHTTP/2 200"), result.output)
            XCTAssertTrue(result.output.hasSuffix(" 2"), result.output)
        }
    }

    /// A missing, malformed or repeated HTTP2-Settings field, or a Connection field that does
    /// not name it, leaves the request on HTTP/1.1.
    func testIncompleteUpgradeIsServedAsHTTP11() throws {
        let upgrade = ["-H", "Upgrade: h2c"]
        let cases: [[String]] = [
            ["-H", "Connection: Upgrade, HTTP2-Settings"],
            ["-H", "Connection: Upgrade, HTTP2-Settings", "-H", "HTTP2-Settings: AAMAAABk!"],
            ["-H", "Connection: Upgrade, HTTP2-Settings", "-H", "HTTP2-Settings: AAMAAAB"],
            ["-H", "Connection: Upgrade, HTTP2-Settings", "-H", "HTTP2-Settings: AAMAAABk", "-H", "HTTP2-Settings: AAMAAABk"],
            ["-H", "Connection: Upgrade", "-H", "HTTP2-Settings: AAMAAABk"],
        ]
        try withServer(handler: echo) { _, port in
            for extra in cases {
                let result = try curl(port, "/one", ["--http1.1"] + upgrade + extra)
                XCTAssertEqual(result.output, "GET /one 0 HTTP/1.1 h2c 1.1", "\(extra): \(result.errors)")
            }
        }
    }

    /// Settings nghttp2 rejects (ENABLE_PUSH = 2) are a connection error after the 101, as in a SETTINGS frame.
    func testInvalidSettingsValueEndsTheConnectionWithGoAway() throws {
        try withServer(handler: echo) { _, port in
            let client = try TestClient(port: port)
            try client.send(Array("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAIAAAAC\r\n\r\n".utf8))
            let switching = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
            XCTAssertEqual(String(decoding: try client.readExactly(switching.utf8.count, timeout: 5), as: UTF8.self), switching)
            let goAway = try client.readFrame { $0.type == TestFrame.goAway }
            XCTAssertEqual(goAway?.errorCode, 1)  // PROTOCOL_ERROR
        }
    }
}
