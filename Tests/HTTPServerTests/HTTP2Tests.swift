import Foundation
import HTTPServer
import XCTest

/// HTTP/2 over loopback: curl by prior knowledge (h2c), and raw frames for flow control, resets
/// and floods.
final class HTTP2Tests: XCTestCase {
    private let echo: HTTPHandler = { request in
        text(200, "\(request.method) \(request.path) \(request.body.count) \(request.protocolVersion) \(request.headers["host"] ?? "-")")
    }

    func testPriorKnowledgeServesGetAndPostWithBody() throws {
        try withServer(handler: echo) { _, port in
            var result = try curlH2C(port, "/healthz", ["-w", " %{http_version}"])
            XCTAssertEqual(result.code, 0, result.errors)
            XCTAssertEqual(result.output, "GET /healthz 0 HTTP/2 127.0.0.1:\(port) 2")
            result = try curlH2C(port, "/post", ["-d", String(repeating: "x", count: 100_000)])
            XCTAssertEqual(result.output, "POST /post 100000 HTTP/2 127.0.0.1:\(port)", result.errors)
            // The same server still speaks HTTP/1.1 to a client that does.
            result = try runCommand(["curl", "-sS", "--http1.1", "http://127.0.0.1:\(port)/one"])
            XCTAssertEqual(result.output, "GET /one 0 HTTP/1.1 127.0.0.1:\(port)", result.errors)
        }
    }

    func testBodyOverTheLimitIs413() throws {
        var configuration = testConfiguration()
        configuration.maxBodyBytes = 1000
        try withServer(configuration, handler: echo) { _, port in
            let result = try curlH2C(port, "/post", ["-d", String(repeating: "x", count: 5000), "-o", "/dev/null", "-w", "%{response_code}"])
            XCTAssertEqual(result.output, "413", result.errors)
        }
    }

    /// Each event reaches the client before the next is written: the handler waits for the test
    /// to have seen event n before it writes event n + 1, so a buffered event would stall it.
    func testStreamedResponseArrivesEventByEvent() throws {
        let seen = Probe()
        let handler: HTTPHandler = { _ in
            HTTPResponse(status: 200, headers: ["Content-Type": "text/event-stream"], body: .stream { writer in
                for index in 1...3 {
                    try await writer.write(Array("data: \(index)\n\n".utf8))
                    let deadline = Date().addingTimeInterval(5)
                    while !seen.recorded.contains("\(index)") {
                        guard Date() < deadline else { throw CancellationError() }  // the event was held back
                        try await Task.sleep(for: .milliseconds(5))
                    }
                }
            })
        }
        try withServer(handler: handler) { _, port in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["curl", "-sS", "-N", "--max-time", "10", "--http2-prior-knowledge", "http://127.0.0.1:\(port)/stream"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            var received = ""
            while true {
                let data = output.fileHandleForReading.availableData
                if data.isEmpty { break }
                received += String(decoding: data, as: UTF8.self)
                for index in 1...3 where received.contains("data: \(index)\n\n") { seen.record("\(index)") }
            }
            process.waitUntilExit()
            XCTAssertEqual(received, "data: 1\n\ndata: 2\n\ndata: 3\n\n")
            XCTAssertEqual(Set(seen.recorded), ["1", "2", "3"])
        }
    }

    /// A client that opens no flow-control window gets no body, and the producer is suspended
    /// once `maxPendingStreamBytes` wait: the server does not buffer without bound.
    func testZeroWindowSuspendsTheProducer() throws {
        let writes = Probe()
        let handler: HTTPHandler = { _ in
            HTTPResponse(status: 200, body: .stream { writer in
                for _ in 0..<1000 {
                    try await writer.write([UInt8](repeating: 0x61, count: 1024))
                    writes.record("w")
                }
            })
        }
        try withServer(handler: handler) { _, port in
            let client = try TestClient(port: port)
            try client.startHTTP2(settings: [(0x4, 0)])  // SETTINGS_INITIAL_WINDOW_SIZE 0
            try client.send(client.requestFrame(stream: 1, path: "/stream"))
            let head = try client.readFrame { $0.type == TestFrame.headers }
            XCTAssertEqual(head?.stream, 1)
            Thread.sleep(forTimeInterval: 0.5)
            let count = writes.recorded.count
            XCTAssertGreaterThan(count, 10)
            XCTAssertLessThanOrEqual(count, 64 + 1, "the producer ran ahead of the client's window")
            // Opening the stream's window lets the body flow again.
            try client.send(TestFrame(type: TestFrame.windowUpdate, flags: 0, stream: 1, payload: [0, 0x10, 0, 0]))
            XCTAssertTrue(writes.wait(timeout: 5) { $0.count > count })
        }
    }

    /// Streams a line every 10 ms until its writes fail or its task is cancelled, then records "cancelled".
    private func tickingUntilCancelled(_ events: Probe) -> HTTPHandler {
        { _ in
            HTTPResponse(status: 200, body: .stream { writer in
                do {
                    while true {
                        try await writer.write(Array("tick\n".utf8))
                        try await Task.sleep(for: .milliseconds(10))
                    }
                } catch {
                    events.record("cancelled")
                    throw error
                }
            })
        }
    }

    func testClientResetCancelsTheStreamsProducer() throws {
        let events = Probe()
        try withServer(handler: tickingUntilCancelled(events)) { _, port in
            let client = try TestClient(port: port)
            try client.startHTTP2()
            try client.send(client.requestFrame(stream: 1, path: "/stream"))
            XCTAssertNotNil(try client.readFrame { $0.type == TestFrame.data && $0.stream == 1 })
            try client.send(TestFrame(type: TestFrame.rstStream, flags: 0, stream: 1, payload: [0, 0, 0, 8]))  // CANCEL
            XCTAssertTrue(events.wait { $0.contains("cancelled") })
            // The connection itself goes on serving.
            try client.send(client.requestFrame(stream: 3, path: "/again"))
            XCTAssertNotNil(try client.readFrame { $0.type == TestFrame.headers && $0.stream == 3 })
        }
    }

    /// A client's GOAWAY resets its open streams (stopping their producers); a repeated GOAWAY
    /// adds no second reset (a flood of them must not multiply the server's output); then the
    /// connection ends.
    func testClientGoAwayResetsEachOpenStreamOnce() throws {
        let events = Probe()
        try withServer(handler: tickingUntilCancelled(events)) { _, port in
            let client = try TestClient(port: port)
            try client.startHTTP2()
            try client.send(client.requestFrame(stream: 1, path: "/stream"))
            XCTAssertNotNil(try client.readFrame { $0.type == TestFrame.data && $0.stream == 1 })
            let goAway = TestFrame(type: TestFrame.goAway, flags: 0, stream: 0, payload: [UInt8](repeating: 0, count: 8))
            try client.send(goAway, goAway, goAway)
            var resets = 0
            while let frame = try client.readFrame(where: { $0.type == TestFrame.rstStream }) {
                XCTAssertEqual(frame.stream, 1)
                XCTAssertEqual(frame.errorCode, 8, "CANCEL")
                resets += 1
            }
            XCTAssertEqual(resets, 1)
            XCTAssertTrue(events.wait { $0.contains("cancelled") })
            XCTAssertTrue(client.waitForClose())
        }
    }

    /// CVE-2023-44487: streams opened and reset at once, past the cap, end the connection with
    /// GOAWAY(ENHANCE_YOUR_CALM); another client is served meanwhile.
    func testRapidResetFloodGetsGoAwayWhileOthersAreServed() throws {
        try withServer(handler: echo) { _, port in
            let attacker = try TestClient(port: port)
            try attacker.startHTTP2()
            var stream: UInt32 = 1
            var flood: [UInt8] = []
            for _ in 0..<400 {
                flood += attacker.requestFrame(stream: stream, path: "/x").encoded()
                flood += TestFrame(type: TestFrame.rstStream, flags: 0, stream: stream, payload: [0, 0, 0, 8]).encoded()
                stream += 2
            }
            try? attacker.send(flood)
            let goAway = try attacker.readFrame(timeout: 5) { $0.type == TestFrame.goAway }
            XCTAssertEqual(goAway?.errorCode, 0xB, "expected ENHANCE_YOUR_CALM")
            XCTAssertTrue(attacker.waitForClose())
            let result = try curlH2C(port, "/healthz")
            XCTAssertEqual(result.output, "GET /healthz 0 HTTP/2 127.0.0.1:\(port)", result.errors)
        }
    }

    func testGracefulShutdownSendsGoAwayAndLetsStreamsFinish() throws {
        let release = Probe()
        let handler: HTTPHandler = { _ in
            while !release.recorded.contains("go") && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
            return text(200, "finished")
        }
        let server = HTTPServer(configuration: testConfiguration(), logger: quietLogger(), handler: handler)
        let port = try server.start()
        let client = try TestClient(port: port)
        try client.startHTTP2()
        try client.send(client.requestFrame(stream: 1, path: "/slow"))
        Thread.sleep(forTimeInterval: 0.2)
        let stopped = Probe()
        Task { await server.shutdown(); stopped.record("stopped") }
        let goAway = try client.readFrame { $0.type == TestFrame.goAway }
        XCTAssertEqual(goAway?.errorCode, 0)
        XCTAssertEqual(goAway.map { Array($0.payload[0..<4]) }, [0, 0, 0, 1], "last stream id")
        release.record("go")
        let data = try client.readFrame { $0.type == TestFrame.data && $0.stream == 1 }
        XCTAssertEqual(data.map { String(decoding: $0.payload, as: UTF8.self) }, "finished")
        XCTAssertTrue(client.waitForClose())
        XCTAssertTrue(stopped.wait { $0 == ["stopped"] })
    }

    func testGarbageAfterThePrefaceClosesOnlyThatConnection() throws {
        try withServer(handler: echo) { _, port in
            let client = try TestClient(port: port)
            try client.send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [UInt8](repeating: 0xFF, count: 64))
            XCTAssertTrue(client.waitForClose())
            let result = try curlH2C(port, "/ok")
            XCTAssertEqual(result.code, 0, result.errors)
        }
    }
}
