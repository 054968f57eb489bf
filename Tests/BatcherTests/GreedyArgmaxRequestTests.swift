import XCTest
@testable import Batcher

/// Which decode rows ask the engine for their argmax alone (`RunnerItem.argmaxOnly`), and that an answer
/// of just the argmax makes the same tokens as the logits would.
final class GreedyArgmaxRequestTests: XCTestCase {
    private func run(_ configure: (inout GenerationParameters) -> Void, prompt: [Int] = [3, 1, 4, 1, 5], maxTokens: Int = 6,
                     answersArgmaxOnly: Bool) async throws -> (tokens: [Int], flags: [[Bool]]) {
        let runner = FakeRunner(answersArgmaxOnly: answersArgmaxOnly)
        var configuration = BatcherConfiguration()
        configuration.prefillChunkTokens = 16
        let batcher = Batcher(runner: runner, decoding: FakeText(), configuration: configuration)
        let result = try await collect(batcher.submit(request(prompt) { $0.maxTokens = maxTokens; configure(&$0) }))
        await batcher.shutdown(gracePeriod: .zero)
        return (result.only.tokens, runner.argmaxFlags)
    }

    func testPlainGreedyDecodeRowsAskOnlyForTheArgmax() async throws {
        let (tokens, flags) = try await run({ _ in }, answersArgmaxOnly: true)
        XCTAssertEqual(tokens, FakeRunner.greedy(prompt: [3, 1, 4, 1, 5], count: 6))
        // The prompt's step needs its logits (the first token may take several choices); every decode step
        // after it asks for the argmax alone.
        XCTAssertEqual(flags.first, [false])
        XCTAssertEqual(flags.dropFirst().count, 5)
        XCTAssertTrue(flags.dropFirst().allSatisfy { $0 == [true] }, "\(flags)")
    }

    func testRowsThatNeedTheirLogitsAskForThem() async throws {
        let cases: [(String, (inout GenerationParameters) -> Void)] = [
            ("logprobs", { $0.logprobs = 0 }),
            ("repetition penalty", { $0.repetitionPenalty = 1.3 }),
            ("presence penalty", { $0.presencePenalty = 0.5 }),
            ("frequency penalty", { $0.frequencyPenalty = 0.5 }),
            ("logit bias", { $0.logitBias = [7: 2] }),
            ("temperature", { $0.temperature = 0.8; $0.seed = 11 }),
        ]
        for (name, configure) in cases {
            let answered = try await run(configure, answersArgmaxOnly: true)
            XCTAssertTrue(answered.flags.allSatisfy { $0.allSatisfy { !$0 } }, "\(name): \(answered.flags)")
            let reference = try await run(configure, answersArgmaxOnly: false)
            XCTAssertEqual(answered.tokens, reference.tokens, name)
        }
    }

    func testSeveralGreedyChoicesEachTakeTheArgmax() async throws {
        let (tokens, flags) = try await run({ $0.n = 2 }, answersArgmaxOnly: true)
        XCTAssertEqual(tokens.count, 6)
        XCTAssertTrue(flags.dropFirst().allSatisfy { !$0.isEmpty && $0.allSatisfy { $0 } }, "\(flags)")
    }
}
