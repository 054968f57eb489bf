import XCTest
@testable import InferenceAPI

/// Answers the HTTP server gives on its own (before the router) count in /metrics like routed ones.
final class ServerAnswerMetricsTests: XCTestCase {
    func testBodyTooLargeIsCountedUnderItsRoute() async throws {
        let running = try await RunningServer.start(for: self, maxBodyBytes: 64)
        let body = #"{"prompt":""# + String(repeating: "x", count: 200) + #""}"#
        let refused = try await running.client.send("POST", "/v1/completions", json: body)
        XCTAssertEqual(refused.status, 413, refused.text)

        let scrape = try await running.client.send("GET", "/metrics")
        XCTAssertEqual(scrape.status, 200)
        let line = scrape.text.split(separator: "\n").first {
            $0.hasPrefix("gptneo_http_requests_total{") && $0.contains(#"endpoint="/v1/completions""#) && $0.contains(#"status="413""#)
        }
        XCTAssertNotNil(line, "no 413 for /v1/completions in:\n\(scrape.text.prefix(2000))")
        try await running.assertAlive()
    }
}
