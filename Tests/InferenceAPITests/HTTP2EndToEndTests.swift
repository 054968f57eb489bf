import Foundation
import XCTest

/// The API over HTTP/2 (h2c by prior knowledge, driven by curl): the handlers do not notice the
/// protocol, streamed completions arrive as SSE events and end with [DONE].
final class HTTP2EndToEndTests: XCTestCase {
    private func curlH2C(_ port: Int, _ path: String, _ extra: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["curl", "-sS", "-N", "--max-time", "20", "--http2-prior-knowledge"] + extra + ["http://127.0.0.1:\(port)\(path)"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "curl failed")
        return String(decoding: data, as: UTF8.self)
    }

    func testCompletionsAndStreamsOverH2C() async throws {
        let running = try await RunningServer.start(for: self)
        let port = running.client.port
        let plain = try curlH2C(port, "/v1/completions", ["-H", "Content-Type: application/json", "-d", #"{"prompt":"Hello","max_tokens":3}"#])
        XCTAssertTrue(plain.contains(#""object":"text_completion""#), plain)
        // Greedy: a sampled token can be a partial UTF-8 sequence, whose text waits for the next one (one
        // event for two tokens), so the count below would depend on the draw.
        let stream = try curlH2C(port, "/v1/completions", ["-H", "Content-Type: application/json",
                                                          "-d", #"{"prompt":"Hello","max_tokens":4,"temperature":0,"stream":true}"#])
        let events = stream.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        XCTAssertTrue(events.allSatisfy { $0.hasPrefix("data: ") }, stream)
        XCTAssertEqual(events.last, "data: [DONE]")
        XCTAssertEqual(events.count, 4 + 2, "one event per token, the finish event and [DONE]: \(events)")
        let metrics = try curlH2C(port, "/metrics", [])
        XCTAssertTrue(metrics.contains("gptneo_http_requests_total"), metrics)
        XCTAssertTrue(metrics.contains("gptneo_running_sequences 0"), metrics)
        XCTAssertTrue(metrics.contains(#"gptneo_http_requests_by_protocol_total{protocol="HTTP/2"} 2"#), metrics)
    }

    // MARK: Cancellation by the client

    /// Long enough that a generation still runs when the client resets it after the first event.
    private static let longStream = #"{"prompt":"Hello","max_tokens":480,"stream":true}"#

    /// Polls /metrics until no sequence runs, then reads it once more after a pause in which a
    /// generation that had run to its end would have been counted as finished.
    private func metricsOnceIdle(_ running: RunningServer) async throws -> String {
        for _ in 0..<200 {
            if try await running.client.send("GET", "/metrics").text.contains("gptneo_running_sequences 0") { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        try await Task.sleep(for: .milliseconds(200))
        return try await running.client.send("GET", "/metrics").text
    }

    /// Sends `count` streamed completions on streams 1, 3, ... and waits for each one's first event.
    private static func startLongStreams(_ client: H2CFrameClient, count: Int) throws {
        let streams = (0..<count).map { UInt32(2 * $0 + 1) }
        for stream in streams { try client.request(stream: stream, method: "POST", path: "/v1/completions", json: Self.longStream) }
        var waiting = Set(streams)
        while !waiting.isEmpty {
            guard let event = client.readFrame(where: { $0.type == H2CFrameClient.data && waiting.contains($0.stream) }) else {
                return XCTFail("no event arrived on streams \(waiting.sorted())")
            }
            XCTAssertTrue(event.text.hasPrefix("data: {"), event.text)
            waiting.remove(event.stream)
        }
    }

    func testRSTStreamCancelsTheGenerationAndFreesItsSlot() async throws {
        let running = try await RunningServer.start(for: self)
        let port = running.client.port
        let client = try await offPool { try H2CFrameClient(port: port) }
        try await offPool {
            try Self.startLongStreams(client, count: 1)
            try client.resetStream(1)
        }
        let metrics = try await metricsOnceIdle(running)
        XCTAssertTrue(metrics.contains("gptneo_running_sequences 0"), metrics)
        XCTAssertFalse(metrics.contains("gptneo_completion_choices_total{finish_reason="), "the generation ran to its end: \(metrics)")
        // The connection outlives the reset stream: a new stream on it is answered.
        let health = try await offPool {
            try client.request(stream: 3, method: "GET", path: "/healthz")
            return client.readFrame { $0.type == H2CFrameClient.headers && $0.stream == 3 }
        }
        XCTAssertNotNil(health, "the connection did not answer after the reset")
        try await running.assertAlive()
    }

    func testGOAWAYFromTheClientCancelsAllItsGenerations() async throws {
        let running = try await RunningServer.start(for: self)
        let port = running.client.port
        let client = try await offPool { try H2CFrameClient(port: port) }
        let resets = try await offPool {
            try Self.startLongStreams(client, count: 2)
            try client.goAway()
            var resets: Set<UInt32> = []
            while resets.count < 2, let reset = client.readFrame(where: { $0.type == H2CFrameClient.rstStream }) {
                resets.insert(reset.stream)
            }
            return resets
        }
        XCTAssertEqual(resets, [1, 3], "each open stream is reset once the client has gone away")
        let metrics = try await metricsOnceIdle(running)
        XCTAssertTrue(metrics.contains("gptneo_running_sequences 0"), metrics)
        XCTAssertFalse(metrics.contains("gptneo_completion_choices_total{finish_reason="), "a generation ran to its end: \(metrics)")
        try await running.assertAlive()
    }
}
