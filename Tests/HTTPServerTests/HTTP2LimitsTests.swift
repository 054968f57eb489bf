import Foundation
import HTTPServer
import XCTest

/// HTTP/2 limits and flood defences, driven with raw frames.
final class HTTP2LimitsTests: XCTestCase {
    private let ok: HTTPHandler = { _ in text(200, "ok") }

    /// The server's SETTINGS frame, as (identifier, value) pairs.
    private func serverSettings(_ client: TestClient) throws -> [UInt16: UInt32] {
        guard let frame = try client.readFrame(where: { $0.type == TestFrame.settings && $0.flags & TestFrame.ack == 0 }) else { return [:] }
        var settings: [UInt16: UInt32] = [:]
        for offset in stride(from: 0, to: frame.payload.count, by: 6) {
            let entry = frame.payload[offset..<offset + 6].map { UInt32($0) }
            settings[UInt16(entry[0] << 8 | entry[1])] = entry[2] << 24 | entry[3] << 16 | entry[4] << 8 | entry[5]
        }
        return settings
    }

    /// Records the answers the server gives on its own.
    private func answering(_ configuration: HTTPServerConfiguration = testConfiguration()) -> (HTTPServerConfiguration, Probe) {
        var configuration = configuration
        let answers = Probe()
        configuration.onServerAnswer = { answers.record("\($0.status)") }
        return (configuration, answers)
    }

    func testSettingsAdvertiseTheConfiguredStreamAndHeaderLimits() throws {
        var configuration = testConfiguration()
        configuration.maxConcurrentStreams = 7
        try withServer(configuration, handler: ok) { _, port in
            let client = try TestClient(port: port)
            try client.startHTTP2()
            let settings = try serverSettings(client)
            XCTAssertEqual(settings[0x3], 7, "SETTINGS_MAX_CONCURRENT_STREAMS")
            XCTAssertEqual(settings[0x6], 16 * 1024, "SETTINGS_MAX_HEADER_LIST_SIZE")
        }
    }

    /// An HPACK bomb: one 4000-byte field put in the dynamic table, then referenced ten times in
    /// a 4 kB block that decodes to 40 kB. The decoded size meets the 16 KiB cap: 431, no handler.
    func testHeaderListOverTheCapIs431EvenWhenCompressed() throws {
        let (configuration, answers) = answering()
        let calls = Probe()
        try withServer(configuration, handler: { _ in calls.record("handler"); return text(200, "ok") }) { _, port in
            let client = try TestClient(port: port)
            try client.startHTTP2()
            var block: [UInt8] = [0x82, 0x86, 0x84, 0x01, 9] + Array("localhost".utf8)  // GET, http, /, :authority
            // Literal with incremental indexing, new name "x-big", a 4000-byte value (7-bit prefix integer).
            block += [0x40, 5] + Array("x-big".utf8) + [0x7F, 0xA1, 0x1E] + [UInt8](repeating: 0x62, count: 4000)
            block += [UInt8](repeating: 0xBE, count: 10)  // indexed field 62: the entry just added
            try client.send(TestFrame(type: TestFrame.headers, flags: TestFrame.endHeaders | TestFrame.endStream, stream: 1, payload: block))
            XCTAssertNotNil(try client.readFrame { $0.type == TestFrame.headers && $0.stream == 1 })
            XCTAssertTrue(answers.wait { $0 == ["431"] })
            XCTAssertEqual(calls.recorded, [])
        }
    }

    /// CVE-2024-27316 and kin: a header block that never ends, sent as endless CONTINUATION
    /// frames, is cut after a few frames instead of being buffered.
    func testContinuationFloodClosesTheConnection() throws {
        try withServer(handler: ok) { _, port in
            let client = try TestClient(port: port)
            try client.startHTTP2()
            let field: [UInt8] = [0x00, 0x01, 0x61, 0x01, 0x62]  // "a: b", literal without indexing
            var flood = TestFrame(type: TestFrame.headers, flags: 0, stream: 1, payload: [0x82, 0x86, 0x84]).encoded()
            for _ in 0..<50 { flood += TestFrame(type: 9, flags: 0, stream: 1, payload: field).encoded() }
            try? client.send(flood)
            XCTAssertTrue(client.waitForClose(timeout: 5))
        }
    }

    func testSettingsFrameWithTooManyEntriesClosesTheConnection() throws {
        try withServer(handler: ok) { _, port in
            let client = try TestClient(port: port)
            try client.startHTTP2(settings: (0..<100).map { _ in (0x3, 100) })
            XCTAssertTrue(client.waitForClose(timeout: 5))
        }
    }

    func testStalledRequestBodyIs408() throws {
        var configuration = testConfiguration()
        configuration.bodyTimeout = .milliseconds(300)
        let (withAnswers, answers) = answering(configuration)
        try withServer(withAnswers, handler: ok) { _, port in
            let client = try TestClient(port: port)
            try client.startHTTP2()
            var request = client.requestFrame(stream: 1, path: "/upload")
            request.flags = TestFrame.endHeaders  // a body follows, and never comes
            try client.send(request, TestFrame(type: TestFrame.data, flags: 0, stream: 1, payload: [1, 2, 3]))
            XCTAssertNotNil(try client.readFrame { $0.type == TestFrame.headers && $0.stream == 1 })
            XCTAssertEqual(answers.recorded, ["408"])
            // The answer ends our side; the unwanted rest of the upload is stopped with NO_ERROR.
            let reset = try client.readFrame { $0.type == TestFrame.rstStream && $0.stream == 1 }
            XCTAssertEqual(reset?.errorCode, 0)
        }
    }

    func testIdleConnectionGetsGoAwayAndCloses() throws {
        var configuration = testConfiguration()
        configuration.idleTimeout = .milliseconds(300)
        try withServer(configuration, handler: ok) { _, port in
            let client = try TestClient(port: port)
            try client.startHTTP2()
            try client.send(client.requestFrame(stream: 1, path: "/"))
            XCTAssertNotNil(try client.readFrame { $0.type == TestFrame.data && $0.stream == 1 })
            let goAway = try client.readFrame(timeout: 3) { $0.type == TestFrame.goAway }
            XCTAssertEqual(goAway?.errorCode, 0)
            XCTAssertTrue(client.waitForClose())
        }
    }

    /// A stream past the concurrency cap is refused (RST_STREAM REFUSED_STREAM or a connection
    /// error), never started: the handler runs for as many as the cap at most.
    func testStreamsBeyondTheConcurrencyLimitDoNotRun() throws {
        var configuration = testConfiguration()
        configuration.maxConcurrentStreams = 4
        let running = Probe()
        let release = Probe()
        let handler: HTTPHandler = { _ in
            running.record("run")
            while !release.recorded.contains("go") && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
            return text(200, "ok")
        }
        try withServer(configuration, handler: handler) { _, port in
            let client = try TestClient(port: port)
            try client.startHTTP2()
            _ = try serverSettings(client)
            try client.send(TestFrame(type: TestFrame.settings, flags: TestFrame.ack, stream: 0, payload: []))
            Thread.sleep(forTimeInterval: 0.1)
            for stream in stride(from: UInt32(1), through: 11, by: 2) { try client.send(client.requestFrame(stream: stream, path: "/")) }
            // nghttp2 makes exceeding an acknowledged limit a connection error (RFC 9113 §5.1.2 allows either).
            XCTAssertNotNil(try client.readFrame { $0.type == TestFrame.rstStream || $0.type == TestFrame.goAway })
            XCTAssertTrue(running.wait { $0.count >= 4 })
            Thread.sleep(forTimeInterval: 0.2)
            XCTAssertEqual(running.recorded.count, 4)
            release.record("go")
        }
    }
}
