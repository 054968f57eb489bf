import XCTest
@testable import InferenceAPI

/// A prompt may fill the whole context when nothing is generated (scoring with `echo`); one token more
/// than the context, in the prompt or in `max_tokens`, is refused.
final class ContextBoundaryTests: XCTestCase {
    private func body(promptTokens: Int, maxTokens: Int) -> String {
        let ids = Array(repeating: "50", count: promptTokens).joined(separator: ",")
        return #"{"prompt":[\#(ids)],"max_tokens":\#(maxTokens),"echo":true,"logprobs":1}"#
    }

    func testPromptFillingTheContextIsScoredAndOneMoreIsRefused() async throws {
        let running = try await RunningServer.start(for: self, maxBodyBytes: 1 << 20)
        let models = try await running.client.send("GET", "/v1/models")
        let context = try XCTUnwrap(models.text.firstMatch(of: /"max_model_len":(\d+)/).flatMap { Int($0.1) })
        let cases: [(prompt: Int, maxTokens: Int, status: Int)] = [
            (context, 0, 200), (context - 1, 1, 200), (context, 1, 400), (context + 1, 0, 400),
        ]
        for (prompt, maxTokens, status) in cases {
            let reply = try await running.client.send("POST", "/v1/completions", json: body(promptTokens: prompt, maxTokens: maxTokens))
            XCTAssertEqual(reply.status, status, "prompt \(prompt) + max_tokens \(maxTokens): \(reply.text.prefix(300))")
            if status == 400 { XCTAssertTrue(reply.text.contains("context_length_exceeded"), reply.text) }
        }
        try await running.assertAlive()
    }
}
