import Foundation
import HTTPServer
import XCTest

/// HTTPS over loopback with certificates made in the test by `openssl`, driven by `curl` and by
/// the test client over OpenSSL.
final class TLSTests: XCTestCase {
    private let echo: HTTPHandler = { request in text(200, "\(request.method) \(request.path) \(request.body.count)") }

    private func tlsConfiguration(_ pair: (certificate: String, key: String)) -> HTTPServerConfiguration {
        var configuration = testConfiguration()
        configuration.tls = TLSConfiguration(certificateChainFile: pair.certificate, privateKeyFile: pair.key)
        return configuration
    }

    /// `curl` against `https://localhost:port/path` trusting `ca`; extra arguments first.
    private func curl(_ port: Int, _ path: String, ca: String, _ extra: [String] = []) throws -> (code: Int32, output: String, errors: String) {
        try runCommand(["curl", "-sS", "--max-time", "10", "--cacert", ca, "--resolve", "localhost:\(port):127.0.0.1"] + extra
                       + ["https://localhost:\(port)\(path)"])
    }

    func testCurlOverHTTPSWithHTTP11AndALPN() throws {
        let pair = try makeCertificate(in: temporaryDirectory(self), name: "server", commonName: "localhost")
        try withServer(tlsConfiguration(pair), handler: echo) { _, port in
            var result = try curl(port, "/plain", ca: pair.certificate)
            XCTAssertEqual(result.code, 0, result.errors)
            XCTAssertEqual(result.output, "GET /plain 0")
            result = try curl(port, "/post", ca: pair.certificate, ["--http1.1", "-d", "12345"])
            XCTAssertEqual(result.output, "POST /post 5", result.errors)
            // curl offers h2 and http/1.1 through ALPN; the server prefers h2, and serves http/1.1 to a client offering only that.
            result = try curl(port, "/alpn", ca: pair.certificate, ["--http2", "-w", " %{http_version} %{response_code}"])
            XCTAssertEqual(result.output, "GET /alpn 0 2 200", result.errors)
            result = try curl(port, "/h2-post", ca: pair.certificate, ["--http2", "-d", String(repeating: "y", count: 70_000), "-w", " %{http_version}"])
            XCTAssertEqual(result.output, "POST /h2-post 70000 2", result.errors)
            result = try curl(port, "/alpn", ca: pair.certificate, ["--http1.1", "-w", " %{http_version}"])
            XCTAssertEqual(result.output, "GET /alpn 0 1.1", result.errors)
            // Upgrade: h2c belongs to cleartext connections: over TLS the request stays HTTP/1.1.
            result = try curl(port, "/upgrade", ca: pair.certificate, ["--http1.1", "-H", "Connection: Upgrade, HTTP2-Settings", "-H", "Upgrade: h2c",
                                                                     "-H", "HTTP2-Settings: AAMAAABk", "-w", " %{http_version} %{response_code}"])
            XCTAssertEqual(result.output, "GET /upgrade 0 1.1 200", result.errors)
        }
    }

    func testKeepAliveAndPipeliningOverTLS() throws {
        let pair = try makeCertificate(in: temporaryDirectory(self), name: "server", commonName: "localhost")
        try withServer(tlsConfiguration(pair), handler: echo) { server, port in
            let client = try TestClient.tls(port: port, trusting: pair.certificate)
            try client.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\nPOST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz")
            XCTAssertEqual(try client.readResponse().bodyText, "GET /a 0")
            XCTAssertEqual(try client.readResponse().bodyText, "POST /b 3")
            let large = String(repeating: "z", count: 200_000)
            try client.send("POST /large HTTP/1.1\r\nHost: t\r\nContent-Length: \(large.utf8.count)\r\n\r\n\(large)")
            XCTAssertEqual(try client.readResponse().bodyText, "POST /large 200000")
            try client.send("GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(try client.readResponse().bodyText, "GET /last 0")
            XCTAssertTrue(client.waitForClose(), "close_notify and FIN after the last answer")
            XCTAssertTrue(Probe().wait { _ in server.connectionCount == 0 })
        }
    }

    func testStreamedResponseOverTLSToASlowReaderArrivesWhole() throws {
        // Several MB to a 16 KiB receive buffer: the server's writes keep meeting WANT_WRITE.
        let pair = try makeCertificate(in: temporaryDirectory(self), name: "server", commonName: "localhost")
        @Sendable func event(_ index: Int) -> [UInt8] { Array("event \(index)\n".utf8) + [UInt8](repeating: UInt8(index % 26) + 0x61, count: 10_000) }
        let count = 400
        let handler: HTTPHandler = { _ in
            HTTPResponse(status: 200, body: .stream { writer in
                for index in 0..<count { try await writer.write(event(index)) }
            })
        }
        try withServer(tlsConfiguration(pair), handler: handler) { _, port in
            let result = try curl(port, "/stream", ca: pair.certificate)
            XCTAssertEqual(result.code, 0, result.errors)
            XCTAssertEqual(result.output.utf8.count, (0..<count).reduce(0) { $0 + event($1).count })
            let client = try TestClient.tls(port: port, trusting: pair.certificate, receiveBufferBytes: 16 * 1024)
            try client.send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try client.readHead().status, 200)
            for index in 0..<count {
                guard let chunk = try client.readChunk() else { return XCTFail("stream ended at \(index)") }
                guard chunk == event(index) else { return XCTFail("event \(index) differs") }
            }
            XCTAssertNil(try client.readChunk())
        }
    }

    func testTLS11AndPlaintextAndGarbageCloseOnlyTheirConnection() throws {
        let pair = try makeCertificate(in: temporaryDirectory(self), name: "server", commonName: "localhost")
        try withServer(tlsConfiguration(pair), handler: echo) { server, port in
            let good = try TestClient.tls(port: port, trusting: pair.certificate)
            let old = try curl(port, "/", ca: pair.certificate, ["--tlsv1.0", "--tls-max", "1.1"])
            XCTAssertEqual(old.code, 35, "TLS 1.1 is refused in the handshake: \(old.errors)")
            let plaintext = try TestClient(port: port)
            try plaintext.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertTrue(plaintext.waitForClose(), "plaintext HTTP on the TLS port: not a TLS hello")
            let garbage = try TestClient(port: port)
            try garbage.send([0x16, 0x03, 0x01, 0x00, 0x05] + [UInt8](repeating: 0xFF, count: 64))
            XCTAssertTrue(garbage.waitForClose(), "a malformed hello")
            try good.send("GET /still HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try good.readResponse().bodyText, "GET /still 0", "other connections are untouched")
            XCTAssertTrue(Probe().wait { _ in server.connectionCount == 1 })
        }
    }

    func testSilentTLSClientIsCutLikeASilentOne() throws {
        let pair = try makeCertificate(in: temporaryDirectory(self), name: "server", commonName: "localhost")
        var configuration = tlsConfiguration(pair)
        configuration.firstByteTimeout = .milliseconds(200)
        try withServer(configuration, handler: echo) { _, port in
            let stalled = try TestClient(port: port)
            try stalled.send([0x16, 0x03, 0x01])  // a hello that never completes
            XCTAssertTrue(stalled.waitForClose(timeout: 2))
        }
    }

    func testReloadServesTheNewPairToNewConnectionsWhileOldOnesKeepWorking() throws {
        let directory = try temporaryDirectory(self)
        let old = try makeCertificate(in: directory, name: "old", commonName: "old")
        let new = try makeCertificate(in: directory, name: "new", commonName: "new")
        let live = (certificate: directory.appendingPathComponent("live.crt").path, key: directory.appendingPathComponent("live.key").path)
        func install(_ pair: (certificate: String, key: String)) throws {
            for (from, to) in [(pair.certificate, live.certificate), (pair.key, live.key)] {
                try? FileManager.default.removeItem(atPath: to)
                try FileManager.default.copyItem(atPath: from, toPath: to)
            }
        }
        try install(old)
        try withServer(tlsConfiguration(live), handler: echo) { server, port in
            let before = try TestClient.tls(port: port, trusting: old.certificate)
            XCTAssertEqual(before.tls?.peerSubject, "/CN=old")
            try install(new)
            try server.reloadTLS()
            let after = try TestClient.tls(port: port, trusting: new.certificate)
            XCTAssertEqual(after.tls?.peerSubject, "/CN=new")
            try before.send("GET /old HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try before.readResponse().bodyText, "GET /old 0", "an open connection keeps its session")

            // A broken pair (the old certificate with the new key) keeps the current one.
            try FileManager.default.removeItem(atPath: live.key)
            try FileManager.default.copyItem(atPath: old.key, toPath: live.key)
            try FileManager.default.removeItem(atPath: live.certificate)
            try FileManager.default.copyItem(atPath: new.certificate, toPath: live.certificate)
            XCTAssertThrowsError(try server.reloadTLS()) { error in
                XCTAssertTrue("\(error)".contains("does not match"), "\(error)")
            }
            let still = try TestClient.tls(port: port, trusting: new.certificate)
            XCTAssertEqual(still.tls?.peerSubject, "/CN=new")
            try still.send("GET /new HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try still.readResponse().bodyText, "GET /new 0")
        }
    }

    func testUnusableFilesAreOneClearErrorAtStart() throws {
        let directory = try temporaryDirectory(self)
        let first = try makeCertificate(in: directory, name: "first", commonName: "first")
        let second = try makeCertificate(in: directory, name: "second", commonName: "second")
        let notPEM = directory.appendingPathComponent("garbage.crt").path
        try "not a certificate".write(toFile: notPEM, atomically: true, encoding: .utf8)
        let cases: [(String, String, String)] = [
            (directory.appendingPathComponent("missing.crt").path, first.key, "cannot read the TLS certificate file"),
            (first.certificate, directory.appendingPathComponent("missing.key").path, "cannot read the TLS private key file"),
            (notPEM, first.key, "cannot load the TLS certificate chain"),
            (first.certificate, second.key, "does not match"),
        ]
        for (certificate, key, expected) in cases {
            let server = HTTPServer(configuration: tlsConfiguration((certificate, key)), logger: quietLogger(), handler: echo)
            XCTAssertThrowsError(try server.start(), expected) { error in
                guard case HTTPServerError.tls(let problem) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(problem.contains(expected), problem)
                XCTAssertFalse(problem.contains("\n"), "one line: \(problem)")
            }
        }
    }
}
