import Foundation
import HTTPServer
import XCTest

/// Streamed responses, client disconnects, back-pressure, timeouts and graceful shutdown.
final class ServerStreamingTests: XCTestCase {
    func testServerSentEventsArriveOneByOneBeforeTheNextIsProduced() throws {
        // The producer waits for the test to open a gate before each next event: if the server
        // buffered, the test would block on reading an event that is never flushed.
        let gates = (0..<3).map { _ in Gate() }
        let probe = Probe()
        let handler: HTTPHandler = { _ in
            HTTPResponse(status: 200, headers: ["Content-Type": "text/event-stream"], body: .stream { writer in
                for index in 0..<3 {
                    probe.record("produced \(index)")
                    try await writer.write(Array("data: event \(index)\n\n".utf8))
                    await gates[index].wait()
                }
            })
        }
        try withServer(handler: handler) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
            let head = try client.readHead()
            XCTAssertEqual(head.headers["Transfer-Encoding"], "chunked")
            XCTAssertEqual(head.headers["Content-Type"], "text/event-stream")
            for index in 0..<3 {
                let chunk = try XCTUnwrap(client.readChunk(timeout: 2))
                XCTAssertEqual(String(decoding: chunk, as: UTF8.self), "data: event \(index)\n\n")
                XCTAssertEqual(probe.recorded.count, index + 1, "event \(index) arrived before the next was produced")
                gates[index].open()
            }
            XCTAssertNil(try client.readChunk(), "the stream ends with the last chunk")
            try client.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try client.readHead().status, 200, "the connection stays usable after a stream")
            gates.forEach { $0.open() }
        }
    }

    func testClientDisconnectCancelsTheStream() throws {
        for abort in ["close", "reset"] {
            let probe = Probe()
            let handler: HTTPHandler = { _ in
                HTTPResponse(status: 200, headers: ["Content-Type": "text/event-stream"], body: .stream { writer in
                    do {
                        // Slow producer: it would run for 50 s if nobody stopped it.
                        for index in 0..<1000 {
                            try await writer.write(Array("data: \(index)\n\n".utf8))
                            try await Task.sleep(for: .milliseconds(50))
                        }
                        probe.record("finished")
                    } catch {
                        probe.record(error is CancellationError ? "cancelled" : "write failed")
                        throw error
                    }
                })
            }
            try withServer(handler: handler) { server, port in
                let client = try TestClient(port: port)
                try client.send("GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
                _ = try client.readHead()
                _ = try client.readChunk()
                if abort == "close" { client.close() } else { client.reset() }
                XCTAssertTrue(probe.wait { !$0.isEmpty }, "producer still running after the client left (\(abort))")
                XCTAssertNotEqual(probe.recorded.first, "finished")
                XCTAssertTrue(Probe().wait { _ in server.connectionCount == 0 }, "connection not released (\(abort))")
            }
        }
    }

    func testClientGoneIsNoticedWhileTheProducerIsSilent() throws {
        // No write would fail here: only watching the socket can notice the client leaving.
        for abort in ["close", "reset"] {
            let probe = Probe()
            let handler: HTTPHandler = { _ in
                HTTPResponse(status: 200, body: .stream { writer in
                    try await writer.write(Array("first".utf8))
                    do {
                        try await Task.sleep(for: .seconds(20))
                        probe.record("slept")
                    } catch {
                        probe.record("cancelled")
                    }
                })
            }
            try withServer(handler: handler) { _, port in
                let client = try TestClient(port: port)
                try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                _ = try client.readHead()
                _ = try client.readChunk()
                if abort == "close" { client.close() } else { client.reset() }
                XCTAssertTrue(probe.wait(timeout: 3) { $0 == ["cancelled"] }, "\(abort): producer not cancelled")
            }
        }
    }

    func testSlowReaderSuspendsTheWriterInsteadOfBuffering() throws {
        var configuration = testConfiguration()
        configuration.maxPendingStreamBytes = 64 * 1024
        let probe = Probe()
        let piece = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
        let pieces = 400  // 25 MiB: far more than socket buffers hold
        let handler: HTTPHandler = { _ in
            HTTPResponse(status: 200, body: .stream { writer in
                for _ in 0..<pieces {
                    try await writer.write(piece)
                    probe.record("w")
                }
            })
        }
        try withServer(configuration, handler: handler) { _, port in
            let client = try TestClient(port: port, receiveBufferBytes: 64 * 1024)
            try client.send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            usleep(500_000)
            // What may legitimately be in flight: the kernel's send buffer (up to tcp_wmem's
            // maximum), the client's receive buffer (doubled by the kernel) and our own pending cap.
            let kernelSendMax = (try? String(contentsOfFile: "/proc/sys/net/ipv4/tcp_wmem", encoding: .utf8))
                .flatMap { $0.split(whereSeparator: \.isWhitespace).last.flatMap { Int($0) } } ?? 4 << 20
            let inFlightBound = (kernelSendMax + 2 * 64 * 1024 + configuration.maxPendingStreamBytes) / piece.count + 2
            XCTAssertLessThan(inFlightBound, pieces, "the test needs more data than the buffers can hold")
            let writtenWhileStalled = probe.recorded.count
            XCTAssertLessThanOrEqual(writtenWhileStalled, inFlightBound, "the writer ran ahead of a client that reads nothing")
            let response = try client.readResponse(timeout: 10)
            XCTAssertEqual(response.body.count, pieces * piece.count)
        }
    }

    func testSlowlorisIsCutOffByTheHeadTimeoutWhileOthersAreServed() throws {
        var configuration = testConfiguration()
        configuration.headTimeout = .milliseconds(400)
        try withServer(configuration, handler: { _ in text(200, "ok") }) { _, port in
            let slow = try TestClient(port: port)
            let started = Date()
            try slow.send("GET / HTTP/1.1\r\n")
            var answered: TestResponse?
            var servedMeanwhile = false
            // One header byte every 50 ms: never finishes on its own.
            for byte in Array("X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8) {
                if let response = try? slow.readResponse(timeout: 0.05) { answered = response; break }
                try? slow.send([byte])
                if !servedMeanwhile && Date().timeIntervalSince(started) > 0.15 {
                    let normal = try TestClient(port: port)
                    try normal.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                    XCTAssertEqual(try normal.readResponse(timeout: 1).bodyText, "ok", "a normal client is served meanwhile")
                    servedMeanwhile = true
                }
            }
            XCTAssertTrue(servedMeanwhile, "the normal client was tried while the slow one was still sending")
            let response = try XCTUnwrap(answered, "the slow client was never cut off")
            XCTAssertEqual(response.status, 408)
            let elapsed = Date().timeIntervalSince(started)
            XCTAssertGreaterThanOrEqual(elapsed, 0.35)
            XCTAssertLessThan(elapsed, 1.5)
            XCTAssertTrue(slow.waitForClose())
        }
    }

    func testStalledBodyGets408AndIdleKeepAliveIsClosed() throws {
        var configuration = testConfiguration()
        configuration.bodyTimeout = .milliseconds(300)
        configuration.idleTimeout = .milliseconds(300)
        try withServer(configuration, handler: { _ in text(200, "ok") }) { _, port in
            let stalled = try TestClient(port: port)
            try stalled.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
            XCTAssertEqual(try stalled.readResponse(timeout: 2).status, 408)

            let idle = try TestClient(port: port)
            try idle.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            _ = try idle.readResponse()
            let started = Date()
            XCTAssertTrue(idle.waitForClose(timeout: 2))
            XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.2)
        }
    }

    func testGracefulShutdownLetsAnInFlightStreamFinishAndClosesIdleConnections() throws {
        let gate = Gate()
        let handler: HTTPHandler = { request in
            guard request.path == "/stream" else { return text(200, "ok") }
            return HTTPResponse(status: 200, body: .stream { writer in
                try await writer.write(Array("first".utf8))
                await gate.wait()
                for index in 0..<3 {
                    try await Task.sleep(for: .milliseconds(30))
                    try await writer.write(Array("more \(index)".utf8))
                }
            })
        }
        let server = HTTPServer(configuration: testConfiguration(), logger: quietLogger(), handler: handler)
        let port = try server.start()
        let idle = try TestClient(port: port)
        try idle.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try idle.readResponse()
        let streaming = try TestClient(port: port)
        try streaming.send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try streaming.readHead()
        XCTAssertEqual(try streaming.readChunk().map { String(decoding: $0, as: UTF8.self) }, "first")

        let stopped = Probe()
        Task {
            await server.shutdown()
            stopped.record("stopped")
        }
        XCTAssertTrue(idle.waitForClose(timeout: 2), "idle keep-alive connection closed at shutdown")
        XCTAssertThrowsError(try TestClient(port: port), "no longer accepting")
        XCTAssertTrue(stopped.recorded.isEmpty, "shutdown waits for the in-flight stream")
        gate.open()
        var rest: [String] = []
        while let chunk = try streaming.readChunk() { rest.append(String(decoding: chunk, as: UTF8.self)) }
        XCTAssertEqual(rest, ["more 0", "more 1", "more 2"])
        XCTAssertTrue(streaming.waitForClose(), "closed after the stream")
        XCTAssertTrue(stopped.wait { $0 == ["stopped"] }, "shutdown returns once everything is closed")
    }

    func testShutdownGracePeriodCutsOffAStreamThatWillNotEnd() throws {
        var configuration = testConfiguration()
        configuration.shutdownGracePeriod = .milliseconds(300)
        let probe = Probe()
        let handler: HTTPHandler = { _ in
            HTTPResponse(status: 200, body: .stream { writer in
                do {
                    while true {
                        try await writer.write(Array("tick".utf8))
                        try await Task.sleep(for: .milliseconds(20))
                    }
                } catch {
                    probe.record("stopped")
                    throw error
                }
            })
        }
        let server = HTTPServer(configuration: configuration, logger: quietLogger(), handler: handler)
        let port = try server.start()
        let client = try TestClient(port: port)
        try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try client.readHead()
        let started = Date()
        blocking { await server.shutdown() }
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(elapsed, 0.25)
        XCTAssertLessThan(elapsed, 2)
        XCTAssertTrue(probe.wait { $0 == ["stopped"] }, "the producer was cancelled")
    }
}
