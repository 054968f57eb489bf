import Foundation
import HTTPServer
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Signals, write timeouts, shutdown edge cases.
final class ServerLifecycleTests: XCTestCase {
    func testSignalTriggersGracefulShutdown() throws {
        // SIGUSR1 stands in for SIGTERM so that the test process keeps its own SIGTERM handling.
        let server = HTTPServer(configuration: testConfiguration(), logger: quietLogger(), handler: { _ in text(200, "ok") })
        let port = try server.start()
        let received = Box<Int32>()
        // Ignored up front: a signal sent before the watcher is installed must not kill the test run.
        signal(SIGUSR1, SIG_IGN)
        Task { received.value = await server.runUntilSignalled([SIGUSR1]) }
        let client = try TestClient(port: port)
        try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try client.readResponse().status, 200)
        // The signal source is installed asynchronously: repeat the signal until it is seen.
        let deadline = Date().addingTimeInterval(3)
        while received.value == nil && Date() < deadline {
            kill(getpid(), SIGUSR1)
            usleep(20_000)
        }
        XCTAssertEqual(received.value, SIGUSR1)
        XCTAssertTrue(client.waitForClose(), "idle connection closed by the signalled shutdown")
        XCTAssertThrowsError(try TestClient(port: port), "no longer accepting after the signal")
    }

    func testClientThatReadsNothingIsDroppedAfterTheWriteTimeout() throws {
        var configuration = testConfiguration()
        configuration.writeTimeout = .milliseconds(300)
        let probe = Probe()
        let piece = [UInt8](repeating: 0x61, count: 64 * 1024)
        let handler: HTTPHandler = { _ in
            HTTPResponse(status: 200, body: .stream { writer in
                do {
                    for _ in 0..<10_000 { try await writer.write(piece) }
                    probe.record("finished")
                } catch {
                    probe.record("stopped")
                    throw error
                }
            })
        }
        try withServer(configuration, handler: handler) { server, port in
            let client = try TestClient(port: port, receiveBufferBytes: 16 * 1024)
            try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertTrue(probe.wait(timeout: 3) { $0 == ["stopped"] }, "writer not released: \(probe.recorded)")
            XCTAssertTrue(Probe().wait { _ in server.connectionCount == 0 })
        }
    }

    func testShutdownBeforeStartAndTwiceIsHarmless() throws {
        let idle = HTTPServer(configuration: testConfiguration(), logger: quietLogger(), handler: { _ in text(200, "") })
        blocking { await idle.shutdown() }
        let server = HTTPServer(configuration: testConfiguration(), logger: quietLogger(), handler: { _ in text(200, "") })
        _ = try server.start()
        blocking {
            async let first: Void = server.shutdown()
            async let second: Void = server.shutdown()
            _ = await (first, second)
        }
        XCTAssertEqual(server.connectionCount, 0)
    }

    func testBusyKeepAliveConnectionIsNeverTakenForIdleByTheDeadlineSweep() throws {
        // A fast sweep (a quarter of the 40 ms write timeout) races with requests finishing:
        // a deadline check must never see a connection's last activity as "in the future".
        var configuration = testConfiguration()
        configuration.writeTimeout = .milliseconds(40)
        try withServer(configuration, handler: { _ in text(200, "ok") }) { _, port in
            let client = try TestClient(port: port)
            let started = Date()
            var served = 0
            while Date().timeIntervalSince(started) < 1 {
                try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                XCTAssertEqual(try client.readResponse().status, 200, "after \(served) requests")
                served += 1
            }
            XCTAssertGreaterThan(served, 20, "enough requests to cross many sweeps")
        }
    }

    func testOutOfRangeConfigurationIsATypedErrorAtStart() {
        var cases: [(String, (inout HTTPServerConfiguration) -> Void)] = []
        cases.append(("port", { $0.port = 70000 }))
        cases.append(("maxConnections", { $0.maxConnections = 0 }))
        cases.append(("maxBodyBytes", { $0.maxBodyBytes = -1 }))
        cases.append(("headTimeout", { $0.headTimeout = .zero }))
        cases.append(("idleTimeout", { $0.idleTimeout = .seconds(-1) }))
        cases.append(("shutdownGracePeriod", { $0.shutdownGracePeriod = .seconds(-1) }))
        for (field, change) in cases {
            var configuration = testConfiguration()
            change(&configuration)
            let server = HTTPServer(configuration: configuration, logger: quietLogger(), handler: { _ in text(200, "") })
            XCTAssertThrowsError(try server.start(), field) { error in
                guard case HTTPServerError.invalidConfiguration(let problem) = error else { return XCTFail("\(field): \(error)") }
                XCTAssertTrue(problem.contains(field), "\(field): \(problem)")
            }
        }
    }
}
