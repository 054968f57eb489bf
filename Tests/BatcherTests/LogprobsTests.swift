import XCTest
@testable import Batcher

final class LogprobsTests: XCTestCase {
    func testLogSoftmaxOfKnownRow() {
        let logits: [Float] = [1, 2, 3]
        let result = logits.withUnsafeBufferPointer { tokenLogprob(tokenID: 0, logits: $0, topCount: 2) }
        let logSum = log(exp(1.0) + exp(2.0) + exp(3.0))
        XCTAssertEqual(result.logprob, Float(1 - logSum))
        XCTAssertEqual(result.top.map(\.tokenID), [2, 1])
        XCTAssertEqual(result.top.map(\.logprob), [Float(3 - logSum), Float(2 - logSum)])
    }

    func testTopEntriesBreakTiesByLowerIndex() {
        let logits: [Float] = [1, 3, 2, 3, 3, -1]
        let top = logits.withUnsafeBufferPointer { topEntries($0, count: 4) }
        XCTAssertEqual(top.map(\.index), [1, 3, 4, 2])
        XCTAssertEqual(logits.withUnsafeBufferPointer { topEntries($0, count: 0) }.count, 0)
        XCTAssertEqual(logits.withUnsafeBufferPointer { topEntries($0, count: 10) }.map(\.index), [1, 3, 4, 2, 0, 5])
    }

    func testLargeLogitsDoNotOverflow() {
        let logits: [Float] = [1000, 999, -1000]
        let result = logits.withUnsafeBufferPointer { tokenLogprob(tokenID: 1, logits: $0, topCount: 1) }
        XCTAssertEqual(result.logprob, Float(-1 - log(1 + exp(-1.0))), accuracy: 1e-6)
        XCTAssert(result.top[0].logprob.isFinite)
    }
}
