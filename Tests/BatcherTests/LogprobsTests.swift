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

    /// The lane-wise exponentials stay within a few ulps of a Double computation over a whole GPT-2
    /// vocabulary row, including entries far below the maximum (whose exponentials underflow to 0).
    func testVocabularyRowAgreesWithDoubleReference() {
        var random = SplitMix64(seed: 99)
        let logits: [Float] = (0..<50257).map { index in
            let unit = Float(random.next() % 1_000_000) / 1_000_000
            return index % 97 == 0 ? -200 + unit : unit * 30 - 10
        }
        let maximum = Double(logits.max()!)
        let logSum = log(logits.reduce(0.0) { $0 + exp(Double($1) - maximum) })
        var worst: Float = 0
        logits.withUnsafeBufferPointer { row in
            for token in stride(from: 0, to: row.count, by: 113) {
                let got = tokenLogprob(tokenID: token, logits: row, topCount: 0).logprob
                let want = Float(Double(row[token]) - maximum - logSum)
                worst = max(worst, abs(got - want) / max(1, abs(want)))
            }
        }
        XCTAssertLessThan(worst, 4 * Float.ulpOfOne, "relative error \(worst)")
    }
}
