import XCTest
@testable import Batcher

/// 200 concurrent requests, half cancelled at random times: nothing hangs and no cache stays behind.
final class CancellationStressTests: XCTestCase {
    func testCancellingHalfOf200LeavesNoCacheInUse() async throws {
        let runner = FakeRunner(stepDelay: 0.0005)
        var configuration = BatcherConfiguration()
        configuration.prefillChunkTokens = 16
        configuration.maxRunningSequences = 32
        let batcher = Batcher(runner: runner, decoding: FakeText(), configuration: configuration)
        try await runCancellationStress(batcher, requests: 200, vocabulary: FakeRunner.vocabularySize - 1, maxTokens: 24,
                                        timeout: 60)
        await eventually("every fake cache is freed") { FakeCache.liveCount == 0 }
        await batcher.shutdown(gracePeriod: .zero)
    }
}

/// Submits `requests` requests at once (prompts of 1 to 40 tokens, a few with n = 2), cancels every
/// other one after a random delay, and checks: everything ends within `timeout`, uncancelled requests
/// complete in full, and the batcher ends with an empty queue, no running sequence and no KV bytes.
func runCancellationStress(_ batcher: Batcher, requests: Int, vocabulary: Int, maxTokens: Int, timeout: Double,
                           file: StaticString = #filePath, line: UInt = #line) async throws {
    struct Outcome: Sendable {
        var cancelled: Bool
        var completedTokens: Int?
        var error: String?
    }
    var random = SplitMix64(seed: 2024)
    var plans: [(prompt: [Int], n: Int, cancelAfterMicroseconds: UInt64?)] = []
    for index in 0..<requests {
        let length = Int(random.next() % 40) + 1
        let prompt = (0..<length).map { _ in Int(random.next() % UInt64(vocabulary)) }
        plans.append((prompt, index % 7 == 0 ? 2 : 1, index % 2 == 0 ? random.next() % 300_000 : nil))
    }
    let fixedPlans = plans
    let outcomes = try await withTimeout(timeout) {
        await withTaskGroup(of: Outcome.self) { group in
            for plan in fixedPlans {
                group.addTask {
                    let work = Task {
                        try await collect(batcher.submit(request(plan.prompt) {
                            $0.maxTokens = maxTokens; $0.n = plan.n; $0.temperature = 1; $0.seed = 1
                        }))
                    }
                    if let delay = plan.cancelAfterMicroseconds {
                        try? await Task.sleep(nanoseconds: delay * 1000)
                        work.cancel()
                    }
                    switch await work.result {
                    case let .success(completion):
                        let complete = completion.usage != nil && completion.choices.count == plan.n
                            && completion.choices.values.allSatisfy { $0.finishReason != nil }
                        return Outcome(cancelled: plan.cancelAfterMicroseconds != nil,
                                       completedTokens: complete ? completion.usage?.completion : nil)
                    case let .failure(error):
                        return Outcome(cancelled: plan.cancelAfterMicroseconds != nil, error: String(describing: error))
                    }
                }
            }
            var outcomes: [Outcome] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
    }
    let uncancelled = outcomes.filter { !$0.cancelled }
    XCTAssertEqual(uncancelled.count, requests / 2, file: file, line: line)
    for outcome in uncancelled {
        XCTAssertNil(outcome.error, file: file, line: line)
        XCTAssertNotNil(outcome.completedTokens, "an uncancelled request ended early", file: file, line: line)
    }
    let cancelledEarly = outcomes.filter { $0.cancelled && $0.completedTokens == nil }.count
    print("cancellation stress: \(cancelledEarly) of \(requests / 2) cancelled requests stopped before the end")
    let deadline = Date().addingTimeInterval(10)
    while true {
        let statistics = batcher.statistics
        if statistics.kvCacheBytesInUse == 0 && statistics.runningSequences == 0 && statistics.queuedRequests == 0 { break }
        if Date() > deadline {
            XCTFail("memory still in use after the stress: \(statistics)", file: file, line: line)
            break
        }
        try await Task.sleep(nanoseconds: 5_000_000)
    }
}
