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
        let stream = try curlH2C(port, "/v1/completions", ["-H", "Content-Type: application/json",
                                                          "-d", #"{"prompt":"Hello","max_tokens":4,"stream":true}"#])
        let events = stream.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        XCTAssertTrue(events.allSatisfy { $0.hasPrefix("data: ") }, stream)
        XCTAssertEqual(events.last, "data: [DONE]")
        XCTAssertEqual(events.count, 4 + 2, "one event per token, the finish event and [DONE]: \(events)")
        let metrics = try curlH2C(port, "/metrics", [])
        XCTAssertTrue(metrics.contains("gptneo_http_requests_total"), metrics)
        XCTAssertTrue(metrics.contains("gptneo_running_sequences 0"), metrics)
        XCTAssertTrue(metrics.contains(#"gptneo_http_requests_by_protocol_total{protocol="HTTP/2"} 2"#), metrics)
    }
}
