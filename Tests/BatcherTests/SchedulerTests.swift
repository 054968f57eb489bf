import XCTest
@testable import Batcher

/// The scheduler's bookkeeping on the fake model: chunking, echo alignment, choices, stops, finishes.
final class SchedulerTests: XCTestCase {
    private func makeBatcher(
        runner: FakeRunner = FakeRunner(), configure: (inout BatcherConfiguration) -> Void = { _ in }
    ) -> Batcher {
        var configuration = BatcherConfiguration()
        configuration.prefillChunkTokens = 16
        configuration.maxPrefillTokensPerStep = 32
        configure(&configuration)
        return Batcher(runner: runner, decoding: FakeText(), configuration: configuration)
    }

    private func prompt(_ length: Int, salt: Int = 0) -> [Int] {
        (0..<length).map { ($0 * 7 + salt * 13 + 3) % 60 }
    }

    private func reference(_ prompt: [Int], topCount: Int) -> [TokenLogprob?] {
        [nil] + (1..<prompt.count).map { i in
            FakeRunner.logits(FakeRunner.prefixHash(Array(prompt[..<i]))).withUnsafeBufferPointer {
                tokenLogprob(tokenID: prompt[i], logits: $0, topCount: topCount)
            }
        }
    }

    /// Ended requests' cache memory is kept up to the KV budget while requests follow one another, and
    /// given back once, after the batcher has been idle for the configured delay.
    func testCacheMemoryIsKeptWhileBusyAndGivenBackOnceIdle() async throws {
        let runner = FakeRunner()
        let batcher = makeBatcher(runner: runner) {
            $0.kvCacheBudgetBytes = 1_234_567
            $0.idleBeforeReleasingCacheMemory = .seconds(1)
        }
        XCTAssertEqual(runner.keptMemoryLimits, [1_234_567])
        XCTAssertEqual(runner.memoryReleases, 0, "nothing to give back before any work")
        for salt in 0..<3 {
            _ = try await collect(batcher.submit(request(prompt(5, salt: salt)) { $0.maxTokens = 3 }))
        }
        XCTAssertEqual(runner.memoryReleases, 0, "requests one after another keep the memory")
        let deadline = Date(timeIntervalSinceNow: 10)
        while runner.memoryReleases == 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertEqual(runner.memoryReleases, 1)
        try await Task.sleep(for: .milliseconds(1500))
        XCTAssertEqual(runner.memoryReleases, 1, "no second release without work in between")
        _ = try await collect(batcher.submit(request(prompt(4)) { $0.maxTokens = 2 }))
        while runner.memoryReleases == 1 && Date() < deadline + 5 { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertEqual(runner.memoryReleases, 2, "work again, then idle again: released again")
        XCTAssertEqual(runner.keptMemoryLimits, [1_234_567])
        await batcher.shutdown(gracePeriod: .seconds(1))
    }

    /// Requests arriving at an idle batcher within the admission window share its first step; without
    /// a window the first one runs alone.
    func testABurstAtAnIdleBatcherSharesItsFirstStep() async throws {
        for (window, expectedFirstCall) in [(Duration.milliseconds(1000), [5, 6, 7]), (.zero, [5])] {
            let runner = FakeRunner()
            let batcher = makeBatcher(runner: runner) { $0.admissionWindow = window }
            var streams: [AsyncThrowingStream<GenerationEvent, Error>] = []
            for (salt, length) in [5, 6, 7].enumerated() {
                if salt > 0 { try await Task.sleep(for: .milliseconds(100)) }
                streams.append(try batcher.submit(request(prompt(length, salt: salt)) { $0.maxTokens = 2 }))
            }
            for (salt, stream) in streams.enumerated() {
                let result = try await collect(stream)
                XCTAssertEqual(result.only.tokens, FakeRunner.greedy(prompt: prompt([5, 6, 7][salt], salt: salt), count: 2))
            }
            XCTAssertEqual(runner.calls.first, expectedFirstCall, "window \(window)")
            await batcher.shutdown(gracePeriod: .seconds(1))
        }
    }

    /// The window only gathers a burst at an idle batcher: a request arriving while others decode
    /// joins the next step.
    func testTheWindowDoesNotDelayArrivalsWhileBusy() async throws {
        let runner = FakeRunner(stepDelay: 0.0125)
        let batcher = makeBatcher(runner: runner) { $0.admissionWindow = .seconds(2) }
        let started = ContinuousClock.now
        _ = try await collect(batcher.submit(request(prompt(5)) { $0.maxTokens = 3 }))
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .milliseconds(1950),
                                    "a lone request at an idle batcher waits out the window")
        // 240 steps of 12.5 ms after its own window: busy from about 2 s to 5 s from now.
        let long = try batcher.submit(request(prompt(5, salt: 1)) { $0.maxTokens = 240 })
        try await Task.sleep(for: .milliseconds(2500))
        let joined = ContinuousClock.now
        _ = try await collect(batcher.submit(request(prompt(6, salt: 2)) { $0.maxTokens = 2 }))
        XCTAssertLessThan(ContinuousClock.now - joined, .seconds(1), "no window while the batcher is busy")
        _ = try await collect(long)
        await batcher.shutdown(gracePeriod: .seconds(1))
    }

    func testGreedyMatchesTheModelComputedDirectly() async throws {
        let batcher = makeBatcher()
        for length in [1, 5, 16, 17, 70] {
            let result = try await collect(batcher.submit(request(prompt(length)) { $0.maxTokens = 10 }))
            let expected = FakeRunner.greedy(prompt: prompt(length), count: 10)
            XCTAssertEqual(result.only.tokens, expected, "prompt of \(length): \(firstMismatches(result.only.tokens, expected))")
            XCTAssertEqual(result.only.text, expected.map(FakeText.text).joined())
            XCTAssertEqual(result.only.finishReason, .length)
            XCTAssertEqual(result.usage?.prompt, length)
            XCTAssertEqual(result.usage?.completion, 10)
            XCTAssertEqual(result.eventsAfterUsage, 0)
        }
        await batcher.shutdown(gracePeriod: .seconds(1))
    }

    /// Alone, a prompt takes as many whole chunks per step as the budget holds: chunk boundaries stay at
    /// multiples of the chunk length, and a budget that is not a multiple of it is not exceeded.
    func testALonePromptTakesWholeChunksUpToTheBudget() async throws {
        for (budget, length, expected) in [(32, 40, [[32], [8], [1]]), (40, 70, [[32], [32], [6], [1]]),
                                           (8, 40, [[16], [16], [8], [1]]), (512, 40, [[40], [1]])] {
            let runner = FakeRunner()
            let batcher = makeBatcher(runner: runner) { $0.maxPrefillTokensPerStep = budget }
            let result = try await collect(batcher.submit(request(prompt(length)) { $0.maxTokens = 2 }))
            XCTAssertEqual(runner.calls, expected, "budget \(budget), prompt of \(length)")
            XCTAssertEqual(result.only.tokens, FakeRunner.greedy(prompt: prompt(length), count: 2))
            await batcher.shutdown(gracePeriod: .seconds(1))
        }
    }

    func testEchoLogprobsScoreEachPromptTokenFromThePreviousRow() async throws {
        let batcher = makeBatcher()
        let prompt = prompt(40)
        let result = try await collect(batcher.submit(request(prompt) { $0.maxTokens = 3; $0.echo = true; $0.logprobs = 3 }))
        XCTAssertEqual(result.promptTokens, prompt)
        let expected = reference(prompt, topCount: 3)
        XCTAssertEqual(result.promptLogprobs.count, prompt.count)
        XCTAssertEqual(result.promptLogprobs, expected, "first mismatch at \(zip(result.promptLogprobs, expected).enumerated().first { $1.0 != $1.1 }?.offset ?? -1)")
        let generated = result.only.tokens
        let completionExpected = (0..<3).map { i in
            FakeRunner.logits(FakeRunner.prefixHash(prompt + generated[..<i])).withUnsafeBufferPointer {
                tokenLogprob(tokenID: generated[i], logits: $0, topCount: 3)
            }
        }
        XCTAssertEqual(result.only.logprobs, completionExpected)
        await batcher.shutdown(gracePeriod: .seconds(1))
    }

    func testEchoWithoutLogprobsAndMaxTokensZero() async throws {
        let batcher = makeBatcher()
        let result = try await collect(batcher.submit(request(prompt(20)) { $0.maxTokens = 0; $0.echo = true }))
        XCTAssertEqual(result.promptTokens, prompt(20))
        XCTAssertEqual(result.promptLogprobs.count, 0)
        XCTAssertEqual(result.only.tokens, [])
        XCTAssertEqual(result.only.finishReason, .length)
        XCTAssertEqual(result.usage?.completion, 0)
        await batcher.shutdown(gracePeriod: .seconds(1))
    }

    func testThreeChoicesSharePrefillAndChoiceZeroEqualsASingleRun() async throws {
        let runner = FakeRunner()
        let batcher = makeBatcher(runner: runner)
        let prompt = prompt(20)
        let three = try await collect(batcher.submit(request(prompt) { $0.n = 3; $0.temperature = 1; $0.seed = 9; $0.maxTokens = 12 }))
        XCTAssertEqual(runner.calls.flatMap { $0 }.filter { $0 > 1 }.reduce(0, +), prompt.count, "the prompt is prefilled once")
        let one = try await collect(batcher.submit(request(prompt) { $0.temperature = 1; $0.seed = 9; $0.maxTokens = 12 }))
        XCTAssertEqual(three.choices.count, 3)
        XCTAssertEqual(three.choices[0], one.only)
        XCTAssertNotEqual(three.choices[0]?.tokens, three.choices[1]?.tokens)
        XCTAssertNotEqual(three.choices[1]?.tokens, three.choices[2]?.tokens)
        XCTAssert(three.choices.values.allSatisfy { $0.tokens.count == 12 && $0.finishReason == .length })
        XCTAssertEqual(three.usage?.completion, 36)
        await batcher.shutdown(gracePeriod: .seconds(1))
    }

    func testStopStringSpanningTokensIsCut() async throws {
        let batcher = makeBatcher()
        let prompt = prompt(6)
        let greedy = FakeRunner.greedy(prompt: prompt, count: 30)
        let text = greedy.map(FakeText.text).joined()
        // The last character of token 10's text and the first of token 11's.
        let boundary = greedy[..<11].map(FakeText.text).joined().count
        let stop = String(Array(text)[(boundary - 1)...(boundary)])
        let expectedText = String(text[..<text.range(of: stop)!.lowerBound])
        let result = try await collect(batcher.submit(request(prompt) { $0.maxTokens = 30; $0.stop = ["zzzz", stop] }))
        XCTAssertEqual(result.only.text, expectedText)
        XCTAssertEqual(result.only.finishReason, .stop)
        await batcher.shutdown(gracePeriod: .seconds(1))
    }

    func testEndOfSequenceStopsUnlessIgnored() async throws {
        let batcher = makeBatcher()
        let stopped = try await collect(batcher.submit(request(prompt(4)) { $0.logitBias = [FakeRunner.eos: 100] }))
        XCTAssertEqual(stopped.only.tokens, [], "EOS is not reported as a token")
        XCTAssertEqual(stopped.only.finishReason, .stop)
        XCTAssertEqual(stopped.usage?.completion, 1)
        let ignored = try await collect(batcher.submit(request(prompt(4)) {
            $0.logitBias = [FakeRunner.eos: 100]; $0.ignoreEOS = true; $0.maxTokens = 3
        }))
        XCTAssertEqual(ignored.only.tokens, [FakeRunner.eos, FakeRunner.eos, FakeRunner.eos])
        XCTAssertEqual(ignored.only.finishReason, .length)
        await batcher.shutdown(gracePeriod: .seconds(1))
    }

    func testEncodeReturnsTheHiddenStateOfEveryPosition() async throws {
        let batcher = makeBatcher()
        let tokens = prompt(40)
        let hidden = try await batcher.encode(tokens: tokens)
        let expected = (1...tokens.count).flatMap { FakeRunner.hidden(FakeRunner.prefixHash(Array(tokens[..<$0]))) }
        XCTAssertEqual(hidden, expected)
        await batcher.shutdown(gracePeriod: .seconds(1))
    }

    func testLongPromptIsInterleavedWithRunningStreams() async throws {
        let runner = FakeRunner(stepDelay: 0.002)
        let batcher = makeBatcher(runner: runner)
        let shortPrompt = prompt(3)
        let running = Task { try await collect(batcher.submit(request(shortPrompt) { $0.maxTokens = 240 })) }
        await eventually("the first stream runs") { runner.calls.count >= 3 }
        let long = try await collect(batcher.submit(request(prompt(200, salt: 1)) { $0.maxTokens = 1 }))
        XCTAssertEqual(long.only.tokens.count, 1)
        let calls = runner.calls
        let chunkCalls = calls.filter { $0.contains(16) }
        XCTAssertEqual(chunkCalls.count, 12, "200 tokens in chunks of 16: \(calls)")
        XCTAssert(chunkCalls.allSatisfy { $0.contains(1) }, "every chunk step also decodes the running stream: \(chunkCalls)")
        let first = try await running.value
        XCTAssertEqual(first.only.tokens, FakeRunner.greedy(prompt: prompt(3), count: 240))
        await batcher.shutdown(gracePeriod: .seconds(1))
    }
}
