import GPTNeo
import XCTest
@testable import Batcher

/// The promise: a request's tokens, text and logprobs are the same, to the bit, alone or among others.
final class BatchInvarianceTests: XCTestCase {
    /// 20 prompts of 1 to 3 × window (24) tokens, and two of 50 and 80 tokens prefilled in chunks of 36
    /// alongside other items' decode steps and chunks.
    private func prompts() -> [[Int]] {
        var random = SplitMix64(seed: 31)
        let window = TinyModel.model.config.windowSize
        let lengths = (0..<20).map { 1 + $0 * (3 * window - 1) / 19 } + [50, 80]
        return lengths.map { length in (0..<length).map { _ in Int(random.next() % 50256) } }
    }

    private func parameters(_ index: Int) -> (inout GenerationParameters) -> Void {
        { p in
            p.maxTokens = 12 + index % 5
            p.logprobs = 3
            if index % 2 == 1 { p.temperature = 0.9; p.topP = 0.95; p.seed = UInt64(100 + index) }
            if index % 4 == 2 { p.n = 2; p.temperature = 1; p.seed = 5 }
            if index % 5 == 3 { p.echo = true }
        }
    }

    private func summary(_ completion: Completion) -> [ChoiceResult] {
        completion.choices.keys.sorted().map { completion.choices[$0]! }
    }

    func testConcurrentStaggeredRequestsEqualTheirSoloRuns() async throws {
        let prompts = prompts()
        let configure: (inout BatcherConfiguration) -> Void = { $0.prefillChunkTokens = 36; $0.maxPrefillTokensPerStep = 72 }

        // Alone: one request at a time.
        let solo = TinyModel.batcher(configure)
        var alone: [Completion] = []
        for (index, prompt) in prompts.enumerated() {
            alone.append(try await collect(solo.submit(request(prompt, configure: parameters(index)))))
        }
        await solo.shutdown(gracePeriod: .zero)

        // Together: all submitted within a few milliseconds of each other, in a shuffled order.
        let shared = TinyModel.batcher(configure)
        var random = SplitMix64(seed: 8)
        let order = prompts.indices.shuffled(using: &random)
        let together = try await withThrowingTaskGroup(of: (Int, Completion).self) { group in
            for (rank, index) in order.enumerated() {
                let stream = try shared.submit(request(prompts[index], configure: parameters(index)))
                group.addTask { (index, try await collect(stream)) }
                if rank % 3 == 0 { try await Task.sleep(nanoseconds: 3_000_000) }
            }
            var results = [Int: Completion]()
            for try await (index, completion) in group { results[index] = completion }
            return results
        }
        let statistics = shared.statistics
        await shared.shutdown(gracePeriod: .zero)
        print("batch invariance: \(statistics.steps) shared steps for \(statistics.generatedTokens) tokens")

        var mismatches = 0
        for index in prompts.indices {
            let a = summary(alone[index]), b = summary(together[index]!)
            if a != b || alone[index].promptLogprobs != together[index]!.promptLogprobs {
                mismatches += 1
                XCTFail("prompt \(index) (\(prompts[index].count) tokens): alone \(a.map(\.tokens)) vs together \(b.map(\.tokens)); "
                        + "logprobs \(firstMismatches(a.flatMap(\.logprobs).map(\.logprob), b.flatMap(\.logprobs).map(\.logprob)))")
            }
        }
        XCTAssertEqual(mismatches, 0)
        // The runs really overlapped: far fewer steps than tokens.
        XCTAssertLessThan(statistics.steps, statistics.generatedTokens / 2)
    }
}
