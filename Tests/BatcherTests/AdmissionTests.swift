import XCTest
@testable import Batcher

/// Limits: validation at submit, the bounded queue, the memory budget, cancellation and shutdown.
final class AdmissionTests: XCTestCase {
    private func makeBatcher(runner: FakeRunner = FakeRunner(), configure: (inout BatcherConfiguration) -> Void = { _ in }) -> Batcher {
        var configuration = BatcherConfiguration()
        configuration.prefillChunkTokens = 16
        configure(&configuration)
        return Batcher(runner: runner, decoding: FakeText(), configuration: configuration)
    }

    private func assertThrows(_ expected: BatcherError, _ batcher: Batcher, _ request: GenerationRequest,
                              file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try batcher.submit(request), file: file, line: line) {
            XCTAssertEqual($0 as? BatcherError, expected, file: file, line: line)
        }
    }

    func testBadRequestsAreRejectedAtSubmit() async {
        let batcher = makeBatcher { $0.kvCacheBudgetBytes = 100_000 }
        assertThrows(.contextLengthExceeded(promptTokens: 200, maxTokens: 57, contextLength: 256), batcher,
                     request(Array(repeating: 1, count: 200)) { $0.maxTokens = 57 })
        XCTAssertEqual(BatcherError.contextLengthExceeded(promptTokens: 200, maxTokens: 57, contextLength: 256).description,
                       "this model's maximum context length is 256 tokens, but 200 prompt tokens and 57 completion tokens were requested")
        assertThrows(.contextLengthExceeded(promptTokens: 2, maxTokens: .max, contextLength: 256), batcher,
                     request([1, 2]) { $0.maxTokens = .max })
        assertThrows(.exceedsMemoryBudget(requiredBytes: 3 * 110_000, budgetBytes: 100_000), batcher,
                     request(Array(repeating: 1, count: 100)) { $0.maxTokens = 10; $0.n = 3 })
        assertThrows(.invalidRequest("the prompt must contain at least one token"), batcher, request([]))
        assertThrows(.invalidRequest("token id 64 is outside the vocabulary of 64"), batcher, request([1, 64]))
        assertThrows(.invalidRequest("token id -1 is outside the vocabulary of 64"), batcher, request([-1]))
        assertThrows(.invalidParameter(param: "temperature", message: "temperature must be between 0 and 2, got 2.5"), batcher, request([1]) { $0.temperature = 2.5 })
        assertThrows(.invalidParameter(param: "top_p", message: "top_p must be in (0, 1], got 0.0"), batcher, request([1]) { $0.topP = 0 })
        assertThrows(.invalidParameter(param: "logprobs", message: "logprobs must be between 0 and 20, got 21"), batcher, request([1]) { $0.logprobs = 21 })
        assertThrows(.invalidParameter(param: "n", message: "n must be between 1 and 128, got 0"), batcher, request([1]) { $0.n = 0 })
        assertThrows(.invalidParameter(param: "stop", message: "at most 4 stop strings, got 5"), batcher, request([1]) { $0.stop = ["a", "b", "c", "d", "e"] })
        assertThrows(.invalidParameter(param: "logit_bias", message: "logit_bias names token 99, outside the vocabulary of 64"), batcher, request([1]) { $0.logitBias = [99: 1] })
        assertThrows(.invalidParameter(param: "presence_penalty", message: "presence_penalty must be between -2 and 2, got 3.0"), batcher, request([1]) { $0.presencePenalty = 3 })
        assertThrows(.invalidParameter(param: "max_tokens", message: "max_tokens must be at least 0, got -1"), batcher, request([1]) { $0.maxTokens = -1 })
        await batcher.shutdown(gracePeriod: .zero)
    }

    func testFullQueueGivesOverloadImmediately() async throws {
        let runner = FakeRunner(stepDelay: 0.002)
        let batcher = makeBatcher(runner: runner) { $0.maxRunningSequences = 1; $0.maxQueuedRequests = 3 }
        var streams = [try batcher.submit(request([1, 2]) { $0.maxTokens = 200 })]
        await eventually("the first request runs") { batcher.statistics.runningSequences == 1 }
        for _ in 0..<3 { streams.append(try batcher.submit(request([3]) { $0.maxTokens = 5 })) }
        XCTAssertEqual(batcher.statistics.queuedRequests, 3)
        let start = ContinuousClock.now
        assertThrows(.overloaded, batcher, request([4]))
        XCTAssertLessThan(ContinuousClock.now - start, .milliseconds(500), "no waiting for a slot")
        streams.removeAll()  // dropping the streams cancels all four
        await eventually("cancelled work is gone") {
            let statistics = batcher.statistics
            return statistics.queuedRequests == 0 && statistics.runningSequences == 0 && statistics.kvCacheBytesInUse == 0
        }
        await batcher.shutdown(gracePeriod: .zero)
    }

    func testABurstThatFitsTheRunningBatchIsNotAnOverload() async throws {
        let batcher = makeBatcher(runner: FakeRunner(stepDelay: 0.002)) { $0.maxRunningSequences = 4; $0.maxQueuedRequests = 0 }
        var streams: [AsyncThrowingStream<GenerationEvent, Error>] = []
        for salt in 0..<4 { streams.append(try batcher.submit(request([salt]) { $0.maxTokens = 200 })) }
        assertThrows(.overloaded, batcher, request([9]))
        await eventually("all four run") { batcher.statistics.runningSequences == 4 }
        assertThrows(.overloaded, batcher, request([9]))
        streams.removeAll()
        await eventually("cancelled work is gone") { batcher.statistics.runningSequences == 0 }
        XCTAssertNoThrow(try batcher.submit(request([9])))
        await batcher.shutdown(gracePeriod: .zero)
    }

    func testAdmissionWaitsForKVMemory() async throws {
        let runner = FakeRunner(stepDelay: 0.001)
        // Each request reserves (4 + 20) * 1000 bytes; the budget holds two.
        let batcher = makeBatcher(runner: runner) { $0.kvCacheBudgetBytes = 50_000 }
        let results = try await withThrowingTaskGroup(of: [Int].self) { group in
            for salt in 0..<6 {
                group.addTask { try await collect(batcher.submit(request([salt, 1, 2, 3]) { $0.maxTokens = 20 })).only.tokens }
            }
            var peak = 0
            var results: [[Int]] = []
            for try await tokens in group {
                peak = max(peak, batcher.statistics.kvCacheBytesInUse)
                results.append(tokens)
            }
            XCTAssertLessThanOrEqual(peak, 48_000)
            return results
        }
        XCTAssertEqual(results.count, 6)
        XCTAssert(runner.calls.allSatisfy { $0.count <= 2 }, "never more than two sequences at once")
        XCTAssertEqual(batcher.statistics.kvCacheBytesInUse, 0)
        await batcher.shutdown(gracePeriod: .zero)
    }

    func testDroppingTheStreamCancelsAndFreesTheCache() async throws {
        let runner = FakeRunner(stepDelay: 0.001)
        let batcher = makeBatcher(runner: runner)
        // The stream lives only inside this call: leaving it drops the stream.
        func readThreeEvents() async throws {
            var received = 0
            for try await _ in try batcher.submit(request([1, 2, 3]) { $0.maxTokens = 250 }) {
                received += 1
                if received == 3 { break }
            }
        }
        try await readThreeEvents()
        await eventually("the cache is freed") { FakeCache.liveCount == 0 && batcher.statistics.kvCacheBytesInUse == 0 }
        XCTAssertLessThan(runner.calls.count, 200, "the request stopped early")
        await batcher.shutdown(gracePeriod: .zero)
    }

    func testCancellingAWaitingEncodeThrowsCancellation() async throws {
        let batcher = makeBatcher(runner: FakeRunner(stepDelay: 0.002)) { $0.maxRunningSequences = 1 }
        let blocker = try batcher.submit(request([1]) { $0.maxTokens = 200 })
        await eventually("the blocker runs") { batcher.statistics.runningSequences == 1 }
        let encode = Task { try await batcher.encode(tokens: [1, 2, 3]) }
        await eventually("the encode waits") { batcher.statistics.queuedRequests == 1 }
        encode.cancel()
        do {
            _ = try await encode.value
            XCTFail("a cancelled encode must throw")
        } catch {
            XCTAssert(error is CancellationError, "\(error)")
        }
        XCTAssertEqual(batcher.statistics.queuedRequests, 0)
        _ = blocker
        await batcher.shutdown(gracePeriod: .zero)
    }

    func testShutdownLetsRunningFinishAndFailsTheRest() async throws {
        let runner = FakeRunner(stepDelay: 0.001)
        let batcher = makeBatcher(runner: runner) { $0.maxRunningSequences = 1 }
        let running = try batcher.submit(request([1]) { $0.maxTokens = 20 })
        await eventually("the first request runs") { batcher.statistics.runningSequences == 1 }
        let waiting = try batcher.submit(request([2]))
        await batcher.shutdown(gracePeriod: .seconds(10))
        let finished = try await collect(running)
        XCTAssertEqual(finished.only.tokens.count, 20)
        do {
            _ = try await collect(waiting)
            XCTFail("a waiting request must fail at shutdown")
        } catch {
            XCTAssertEqual(error as? BatcherError, .shuttingDown)
        }
        XCTAssertThrowsError(try batcher.submit(request([3]))) { XCTAssertEqual($0 as? BatcherError, .shuttingDown) }
    }

    func testShutdownAfterGracePeriodCancelsRunning() async throws {
        let batcher = makeBatcher(runner: FakeRunner(stepDelay: 0.005))
        let running = try batcher.submit(request([1]) { $0.maxTokens = 250 })
        await eventually("it runs") { batcher.statistics.runningSequences == 1 }
        await batcher.shutdown(gracePeriod: .milliseconds(20))
        do {
            _ = try await collect(running)
            XCTFail("expected shuttingDown")
        } catch {
            XCTAssertEqual(error as? BatcherError, .shuttingDown)
        }
        XCTAssertEqual(batcher.statistics.kvCacheBytesInUse, 0)
    }
}
