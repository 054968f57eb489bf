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

extension ServerLifecycleTests {
    func testSecondSignalDuringTheDrainClosesBusyConnectionsAtOnce() throws {
        var configuration = testConfiguration()
        configuration.shutdownGracePeriod = .seconds(30)
        let gate = Gate(), probe = Probe()
        let server = HTTPServer(configuration: configuration, logger: quietLogger()) { _ in
            probe.record("busy")
            await gate.wait()
            return text(200, "late")
        }
        let port = try server.start()
        signal(SIGUSR2, SIG_IGN)
        let returned = Box<Int32>()
        Task { returned.value = await server.runUntilSignalled([SIGUSR2]) }
        let busy = try TestClient(port: port)
        try busy.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertTrue(probe.wait { $0 == ["busy"] })
        usleep(100_000)  // lets the watcher install its signal source
        // The first signal is seen when the listener stops accepting; only then is the second sent.
        var draining = false
        for _ in 0..<20 where !draining {
            kill(getpid(), SIGUSR2)
            draining = Probe().wait(timeout: 0.5) { _ in (try? TestClient(port: port)) == nil }
        }
        XCTAssertTrue(draining, "the first signal started the drain")
        XCTAssertFalse(busy.waitForClose(timeout: 0.3), "a busy connection is given the grace period")
        XCTAssertNil(returned.value)
        let started = Date()
        kill(getpid(), SIGUSR2)
        XCTAssertTrue(busy.waitForClose(timeout: 3), "the second signal closes it")
        XCTAssertTrue(Probe().wait(timeout: 3) { _ in returned.value == SIGUSR2 })
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
        gate.open()
    }
}
