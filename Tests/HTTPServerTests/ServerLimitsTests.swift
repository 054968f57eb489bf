import Foundation
import HTTPServer
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The connection limits under hostile patterns: silent and idle connections, one greedy client
/// address, slow readers; and the answers the server gives on its own reaching the metrics hook.
final class ServerLimitsTests: XCTestCase {
    private let echo: HTTPHandler = { request in text(200, "\(request.method) \(request.path)") }
    private let get = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"

    /// A handler that holds `/busy` requests until the gate opens (once per request).
    private func holding(_ gate: Gate, _ probe: Probe) -> HTTPHandler {
        { request in
            if request.path == "/busy" {
                probe.record("busy")
                await gate.wait()
            }
            return text(200, request.path)
        }
    }

    // MARK: The global limit

    func testAtTheLimitTheLongestIdleConnectionMakesRoom() throws {
        var configuration = testConfiguration()
        configuration.maxConnections = 2
        configuration.maxConnectionsPerClient = 0
        try withServer(configuration, handler: echo) { server, port in
            let older = try TestClient(port: port), newer = try TestClient(port: port)
            for client in [older, newer] {
                try client.send(get)
                XCTAssertEqual(try client.readResponse().status, 200)
                usleep(20_000)  // distinct idle times
            }
            let third = try TestClient(port: port)
            try third.send(get)
            XCTAssertEqual(try third.readResponse().status, 200, "a newcomer is served by evicting an idle connection")
            XCTAssertTrue(older.waitForClose(), "the connection idle longest is the one closed")
            try newer.send(get)
            XCTAssertEqual(try newer.readResponse().status, 200, "the more recently idle connection is kept")
            XCTAssertTrue(Probe().wait { _ in server.connectionCount == 2 })
        }
    }

    func testWhenEveryConnectionIsBusyNewcomersGet503AndTheHookCountsThem() throws {
        var configuration = testConfiguration()
        configuration.maxConnections = 2
        configuration.maxConnectionsPerClient = 0
        let answers = Probe()
        configuration.onServerAnswer = { answers.record("\($0.status) \($0.method ?? "-") \($0.path ?? "-")") }
        let gate = Gate(), probe = Probe()
        try withServer(configuration, handler: holding(gate, probe)) { server, port in
            let busy = try (0..<2).map { _ in try TestClient(port: port) }
            for client in busy { try client.send("GET /busy HTTP/1.1\r\nHost: t\r\n\r\n") }
            XCTAssertTrue(probe.wait { $0.count == 2 })
            let refused = try TestClient(port: port)
            try refused.send(get)
            let response = try refused.readResponse()
            XCTAssertEqual(response.status, 503)
            XCTAssertEqual(response.headers["Connection"], "close")
            XCTAssertTrue(refused.waitForClose())
            XCTAssertTrue(answers.wait { $0 == ["503 - -"] }, "\(answers.recorded)")
            gate.open(); gate.open()
            for client in busy { XCTAssertEqual(try client.readResponse().status, 200, "busy connections are never evicted") }
            XCTAssertEqual(server.connectionCount, 2)
        }
    }

    func testSilentFloodDoesNotLockOutProbes() throws {
        // More silent connections than the limit (as an attacker would open), with a first-byte
        // timeout long enough not to help: eviction alone must keep probes answered.
        // Both ends of every connection live in this process: scale down where descriptors are few.
        let limit = min(1024, (raiseDescriptorLimit(to: 2 * 1040 + 256) - 256) / 2)
        let silentCount = limit + 16
        var configuration = testConfiguration()
        configuration.maxConnections = limit
        configuration.maxConnectionsPerClient = 0
        configuration.firstByteTimeout = .seconds(60)
        configuration.headTimeout = .seconds(60)
        configuration.backlog = 2048
        try withServer(configuration, handler: echo) { server, port in
            var silent: [TestClient] = []
            for _ in 0..<silentCount { silent.append(try TestClient(port: port)) }
            XCTAssertTrue(Probe().wait(timeout: 10) { _ in server.connectionCount == limit }, "\(server.connectionCount)")
            var slowest = 0.0
            for _ in 0..<20 {
                let started = Date()
                let probe = try TestClient(port: port)
                try probe.send(get)
                XCTAssertEqual(try probe.readResponse(timeout: 2).status, 200)
                slowest = max(slowest, Date().timeIntervalSince(started))
            }
            XCTAssertLessThan(slowest, 1, "a probe waited \(slowest) s")
            XCTAssertLessThanOrEqual(server.connectionCount, limit + 1)
            silent.forEach { $0.close() }
        }
    }

    // MARK: Silent connections

    func testSilentConnectionIsClosedAfterTheFirstByteTimeoutButATalkingOneIsNot() throws {
        var configuration = testConfiguration()
        configuration.firstByteTimeout = .milliseconds(200)
        configuration.headTimeout = .seconds(5)
        try withServer(configuration, handler: echo) { _, port in
            let silent = try TestClient(port: port), talking = try TestClient(port: port)
            try talking.send("GET / HTTP/1.1\r\n")
            let started = Date()
            XCTAssertTrue(silent.waitForClose(timeout: 2))
            XCTAssertLessThan(Date().timeIntervalSince(started), 1.5)
            try talking.send("Host: t\r\n\r\n")
            XCTAssertEqual(try talking.readResponse().status, 200, "a head under way runs on the head timeout")
        }
    }

    // MARK: Per-client cap

    func testPerClientCapEvictsThatClientsIdleConnectionThenRefuses() throws {
        var configuration = testConfiguration()
        configuration.maxConnectionsPerClient = 2
        let gate = Gate(), probe = Probe()
        try withServer(configuration, handler: holding(gate, probe)) { server, port in
            let idle = try TestClient(port: port)
            try idle.send(get)
            XCTAssertEqual(try idle.readResponse().status, 200)
            let busy = try TestClient(port: port)
            try busy.send("GET /busy HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertTrue(probe.wait { $0.count == 1 })
            let third = try TestClient(port: port)
            try third.send("GET /busy HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertTrue(idle.waitForClose(), "the client's idle connection makes room")
            XCTAssertTrue(probe.wait { $0.count == 2 })
            let fourth = try TestClient(port: port)
            try fourth.send(get)
            XCTAssertEqual(try fourth.readResponse().status, 503, "both of its connections busy: the client is at its cap")
            let other = try TestClient(port: port, sourceAddress: "127.0.0.2")
            try other.send(get)
            XCTAssertEqual(try other.readResponse().status, 200, "another address is not affected")
            gate.open(); gate.open()
            XCTAssertEqual(try busy.readResponse().status, 200)
            XCTAssertEqual(try third.readResponse().status, 200)
            XCTAssertTrue(Probe().wait { _ in server.connectionCount <= 3 })
        }
    }

    // MARK: Slow readers

    /// Streams `total` bytes in 16 KiB pieces; records how the stream ended.
    private func streaming(_ total: Int, _ probe: Probe) -> HTTPHandler {
        let piece = [UInt8](repeating: 0x61, count: 16 * 1024)
        return { _ in
            HTTPResponse(status: 200, body: .stream { writer in
                do {
                    for _ in 0..<(total / piece.count) { try await writer.write(piece) }
                    probe.record("finished")
                } catch {
                    probe.record("stopped")
                    throw error
                }
            })
        }
    }

    /// A stream of `total` bytes to a client with a 16 KiB receive buffer, under a required rate
    /// of 64 KiB per 500 ms.
    private func withStreamToSmallBuffer(_ total: Int, _ probe: Probe, _ body: (HTTPServer, TestClient) throws -> Void) throws {
        var configuration = testConfiguration()
        configuration.writeTimeout = .milliseconds(500)
        configuration.minSendBytes = 64 * 1024
        try withServer(configuration, handler: streaming(total, probe)) { server, port in
            let client = try TestClient(port: port, receiveBufferBytes: 16 * 1024)
            try client.send(get)
            try body(server, client)
        }
    }

    func testClientReadingATrickleIsCutByTheMinimumSendRate() throws {
        // It reads all the time, so "some progress within the timeout" would keep it forever.
        let probe = Probe()
        try withStreamToSmallBuffer(64 << 20, probe) { server, client in
            let started = Date()
            var received = 0
            while probe.recorded.isEmpty && Date().timeIntervalSince(started) < 10 {
                received += client.readAvailable(upTo: 2048)
                usleep(100_000)  // ~20 KB/s, under the 128 KB/s required
            }
            XCTAssertEqual(probe.recorded, ["stopped"], "after \(received) bytes in \(Date().timeIntervalSince(started)) s")
            XCTAssertGreaterThan(received, 0)
            XCTAssertTrue(Probe().wait { _ in server.connectionCount == 0 })
        }
    }

    func testClientReadingFastEnoughIsNotCut() throws {
        // Far more than the kernel buffers, so that bytes wait on the client for every window.
        let probe = Probe()
        try withStreamToSmallBuffer(1 << 30, probe) { server, client in
            var received = 0
            let started = Date()
            while Date().timeIntervalSince(started) < 3 {
                received += client.readAvailable(upTo: 64 * 1024)
                usleep(10_000)  // each read empties the 16 KiB buffer: over 1 MB/s, 10x the required rate
            }
            XCTAssertEqual(probe.recorded, [], "cut after \(received) bytes")
            XCTAssertGreaterThan(received, 1 << 20)
            XCTAssertEqual(server.connectionCount, 1)
        }
    }

    // MARK: Answers the server gives on its own

    func testParseErrorsAndTimeoutsReachTheHookWithTheirRequestLine() throws {
        var configuration = testConfiguration()
        configuration.maxBodyBytes = 10
        configuration.headTimeout = .milliseconds(200)
        let answers = Probe()
        configuration.onServerAnswer = { answers.record("\($0.status) \($0.method ?? "-") \($0.path ?? "-")") }
        try withServer(configuration, handler: echo) { _, port in
            let exchanges: [(String, Int)] = [
                ("POST /v1/completions?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n", 413),
                ("GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
                ("POST /gz HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx", 415),
                ("GET /e HTTP/1.1\r\nHost: t\r\nExpect: the-unexpected\r\n\r\n", 417),
                ("\u{1}\r\n", 400),
                ("GET /slow HTTP/1.1\r\n", 408),
            ]
            for (request, status) in exchanges {
                let client = try TestClient(port: port)
                try client.send(request)
                let response = try client.readResponse()
                XCTAssertEqual(response.status, status, request)
                if status == 415 { XCTAssertEqual(response.headers["Accept-Encoding"], "identity") }
            }
            let expected = ["413 POST /v1/completions", "400 GET /x", "415 POST /gz", "417 GET /e", "400 - -", "408 GET /slow"]
            XCTAssertTrue(answers.wait { Set($0) == Set(expected) }, "\(answers.recorded)")
        }
    }
}

// MARK: - Helpers

/// Raises the soft descriptor limit towards `wanted` (never above the hard limit); returns it.
func raiseDescriptorLimit(to wanted: Int) -> Int {
    var limits = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits)
    if limits.rlim_cur < rlim_t(wanted) {
        limits.rlim_cur = min(rlim_t(wanted), limits.rlim_max)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits)
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits)
    }
    return Int(min(limits.rlim_cur, rlim_t(Int32.max)))
}
