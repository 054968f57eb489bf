import XCTest
@testable import Batcher

/// The real engine and tokenizer on the committed tiny checkpoint, against transformers.
final class EndToEndTests: XCTestCase {
    /// Engine logits agree with HF's to 1e-4; a log-softmax adds at most a few ulps on top.
    let logprobTolerance: Float = 2e-4

    private func assertClose(_ actual: TokenLogprob, _ expected: Fixtures.Scored, _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.tokenID, expected.token, what, file: file, line: line)
        XCTAssertEqual(actual.logprob, expected.logprob, accuracy: logprobTolerance, "\(what): logprob", file: file, line: line)
        XCTAssertEqual(actual.top.map(\.tokenID), expected.top_ids, "\(what): top ids", file: file, line: line)
        for (got, want) in zip(actual.top.map(\.logprob), expected.top_logprobs) {
            XCTAssertEqual(got, want, accuracy: logprobTolerance, "\(what): top logprobs", file: file, line: line)
        }
    }

    func testGreedyTextAndLogprobsEqualTransformers() async throws {
        let batcher = TinyModel.batcher { $0.prefillChunkTokens = 8 }
        let expected = Fixtures.expected
        for (index, reference) in expected.generations.enumerated() {
            let result = try await collect(batcher.submit(request(reference.prompt) {
                $0.maxTokens = reference.max_tokens; $0.repetitionPenalty = reference.repetition_penalty
                $0.logprobs = expected.top; $0.echo = true
            }))
            let shown = reference.finish_reason == "stop" ? Array(reference.continuation.dropLast()) : reference.continuation
            XCTAssertEqual(result.only.tokens, shown, "generation \(index): \(firstMismatches(result.only.tokens, shown))")
            XCTAssertEqual(result.only.text, reference.text, "generation \(index)")
            XCTAssertEqual(result.only.finishReason?.rawValue, reference.finish_reason)
            XCTAssertEqual(result.usage?.completion, reference.continuation.count)
            XCTAssertNil(result.promptLogprobs.first ?? nil, "the first prompt token has no logprob")
            XCTAssertEqual(result.promptLogprobs.count, reference.prompt.count)
            for (position, pair) in zip(result.promptLogprobs.dropFirst(), reference.prompt_logprobs).enumerated() {
                guard let actual = pair.0 else { XCTFail("prompt token \(position + 1) has no logprob"); continue }
                assertClose(actual, pair.1, "generation \(index), prompt token \(position + 1)")
            }
            XCTAssertEqual(result.only.logprobs.count, reference.completion_logprobs.count)
            for (position, pair) in zip(result.only.logprobs, reference.completion_logprobs).enumerated() {
                assertClose(pair.0, pair.1, "generation \(index), completion token \(position)")
            }
        }
        await batcher.shutdown(gracePeriod: .zero)
    }

    /// The engine fixture's 64-token continuations (EOS not stopping), all three requests at once.
    func testConcurrentGreedyContinuationsEqualTransformersGenerate() async throws {
        try await assertGreedyContinuations(TinyModel.batcher { $0.prefillChunkTokens = 4 })
    }

    /// The same in float32, where greedy steps find each token through the LM head's int8 guide.
    func testGreedyContinuationsThroughTheArgmaxGuideEqualTransformersGenerate() async throws {
        try await assertGreedyContinuations(TinyModel.batcher(model: TinyModel.float32Model) { $0.prefillChunkTokens = 4 })
    }

    private func assertGreedyContinuations(_ batcher: Batcher) async throws {
        let generations = Fixtures.engineExpected.generations
        XCTAssertEqual(generations.count, 3)
        let streams = try generations.map { reference in
            try batcher.submit(request(reference.prompt) { $0.maxTokens = reference.continuation.count; $0.ignoreEOS = true })
        }
        for (index, stream) in streams.enumerated() {
            let tokens = try await collect(stream).only.tokens
            let expected = generations[index].continuation
            XCTAssertEqual(tokens, expected, "generation \(index): \(firstMismatches(tokens, expected))")
        }
        await batcher.shutdown(gracePeriod: .zero)
    }

    func testStopStringsSpanningTokensMatchPythonsFind() async throws {
        let batcher = TinyModel.batcher()
        XCTAssertFalse(Fixtures.expected.stops.isEmpty)
        for reference in Fixtures.expected.stops {
            let result = try await collect(batcher.submit(request(reference.prompt) {
                $0.maxTokens = reference.max_tokens; $0.stop = [reference.stop]
            }))
            XCTAssertEqual(result.only.text, reference.text, "stop \(reference.stop.debugDescription)")
            XCTAssertEqual(result.only.finishReason, .stop)
            XCTAssertEqual(result.usage?.completion, reference.completion_tokens)
        }
        await batcher.shutdown(gracePeriod: .zero)
    }

    func testFinishReasons() async throws {
        let batcher = TinyModel.batcher()
        let prompt = Fixtures.expected.generations[1].prompt
        let length = try await collect(batcher.submit(request(prompt) { $0.maxTokens = 5 }))
        XCTAssertEqual(length.only.finishReason, .length)
        XCTAssertEqual(length.only.tokens.count, 5)
        // Forcing EOS as the first choice: the choice stops, and EOS is not part of the output.
        let eos = try await collect(batcher.submit(request(prompt) { $0.maxTokens = 5; $0.logitBias = [TinyModel.eos: 100] }))
        XCTAssertEqual(eos.only.finishReason, .stop)
        XCTAssertEqual(eos.only.tokens, [])
        XCTAssertEqual(eos.only.text, "")
        let ignored = try await collect(batcher.submit(request(prompt) {
            $0.maxTokens = 2; $0.logitBias = [TinyModel.eos: 100]; $0.ignoreEOS = true
        }))
        XCTAssertEqual(ignored.only.tokens, [TinyModel.eos, TinyModel.eos])
        XCTAssertEqual(ignored.only.text, "<|endoftext|><|endoftext|>")
        XCTAssertEqual(ignored.only.finishReason, .length)
        await batcher.shutdown(gracePeriod: .zero)
    }

    func testThreeChoicesFromOnePrefill() async throws {
        let batcher = TinyModel.batcher()
        let prompt = Fixtures.expected.generations[3].prompt
        let three = try await collect(batcher.submit(request(prompt) {
            $0.n = 3; $0.temperature = 1; $0.seed = 77; $0.maxTokens = 10; $0.logprobs = 2
        }))
        let one = try await collect(batcher.submit(request(prompt) { $0.temperature = 1; $0.seed = 77; $0.maxTokens = 10; $0.logprobs = 2 }))
        XCTAssertEqual(three.choices.count, 3)
        XCTAssertEqual(three.choices[0], one.only, "choice 0 equals the same seed with n = 1")
        XCTAssertEqual(Set(three.choices.values.map(\.tokens)).count, 3, "the three choices differ")
        XCTAssertEqual(three.usage?.completion, 30)
        XCTAssertEqual(three.usage?.prompt, prompt.count)
        await batcher.shutdown(gracePeriod: .zero)
    }

    /// Hidden states through the batcher (chunks of 16, so the 40- and 100-token cases span several)
    /// equal transformers' to the engine's tolerance, submitted all at once.
    func testEncodeReturnsTransformersHiddenStatesOfEveryPosition() async throws {
        let batcher = TinyModel.batcher { $0.prefillChunkTokens = 16 }
        let cases = Fixtures.engineExpected.cases
        let results = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
            for (index, reference) in cases.enumerated() {
                group.addTask { (index, try await batcher.encode(tokens: reference.tokens)) }
            }
            var results = [Int: [Float]]()
            for try await (index, hidden) in group { results[index] = hidden }
            return results
        }
        for (index, reference) in cases.enumerated() {
            let hidden = results[index] ?? []
            XCTAssertEqual(hidden.count, reference.hidden.count, "case \(index)")
            let deltas = zip(hidden, reference.hidden).map { abs($0 - $1) }
            let worst = deltas.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1e-4, "case \(index) (\(reference.tokens.count) tokens): worst |delta| \(worst) "
                                     + "at \(deltas.firstIndex(of: worst) ?? -1)")
        }
        await batcher.shutdown(gracePeriod: .zero)
    }

    func testCancellingHalfOf200RequestsLeavesNoCacheInUse() async throws {
        let batcher = TinyModel.batcher { $0.maxRunningSequences = 32; $0.prefillChunkTokens = 16 }
        try await runCancellationStress(batcher, requests: 200, vocabulary: 50256, maxTokens: 12, timeout: 240)
        await batcher.shutdown(gracePeriod: .zero)
    }
}
