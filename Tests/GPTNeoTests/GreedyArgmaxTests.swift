import Foundation
import XCTest
@_spi(Benchmarks) @testable import GPTNeo

/// The greedy argmax through the LM head's int8 guide (GreedyArgmax.swift): whenever it decides a row, its
/// answer is the first index of the largest logit of the full float32 product.
final class GreedyArgmaxTests: XCTestCase {
    /// Values in [-1, 1) from a hash rather than `randomMatrix`'s LCG: every LCG stream is the same cycle
    /// shifted, so activations drawn from it can repeat stretches of a weight matrix's rows.
    private func hashedValues(_ count: Int, seed: UInt64) -> [Float] {
        (0..<count).map { index in
            var z = (seed &* 0x9E37_79B9_7F4A_7C15) &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / Float(1 << 23) - 1
        }
    }

    private func guided(_ values: [Float], N: Int, K: Int) -> (WeightMatrix, ArgmaxGuide) {
        let tensor = FloatTensor(shape: [N, K], values: values)
        let weight = WeightMatrix(tensor, threads: 2)
        return (weight, ArgmaxGuide(for: weight, source: tensor.elements, threads: 2))
    }

    private func decisions(_ x: [Float], _ weight: WeightMatrix, _ guide: ArgmaxGuide, M: Int) -> [Int?] {
        var scratch = [Float](repeating: .nan, count: M * weight.outputs)
        return scratch.withUnsafeMutableBufferPointer { greedyArgmax(x, weight, guide: guide, M: M, scratch: $0.baseAddress!, threads: 2) }
    }

    private func fullArgmaxes(_ x: [Float], _ weight: WeightMatrix, M: Int) -> [Int] {
        let y = product(x, weight, nil, M: M)
        return (0..<M).map { m in
            let row = y[(m * weight.outputs)..<((m + 1) * weight.outputs)]
            return row.firstIndex(of: row.max()!)! - row.startIndex
        }
    }

    func testDecidedRowsAreTheFullProductsArgmax() {
        for (N, K) in [(4000, 64), (4000, 100), (4001, 768)] {
            let (weight, guide) = guided(randomMatrix(N * K, seed: UInt64(N + K)).map { $0 * 0.05 }, N: N, K: K)
            var (rows, decidedRows) = (0, 0)
            for M in [1, 2, 3, 7, 8, 9, 17] {
                // Rows at very different scales, down to products in the subnormal range.
                for scale: Float in [1, 300, 1e-3, 1e-18] {
                    let x = hashedValues(M * K, seed: UInt64(M * 31 + K)).map { $0 * scale }
                    let decided = decisions(x, weight, guide, M: M)
                    let expected = fullArgmaxes(x, weight, M: M)
                    for m in 0..<M where decided[m] != nil {
                        XCTAssertEqual(decided[m], expected[m], "N \(N), K \(K), M \(M), scale \(scale), row \(m)")
                    }
                    rows += M
                    decidedRows += decided.compactMap { $0 }.count
                }
            }
            // Uniform random weights and activations leave a few dozen candidates per row here, near the
            // limit of a matrix of 250 panels (a vocabulary of 50257 has 3141); most rows are still decided.
            XCTAssertGreaterThan(decidedRows * 4, rows * 3, "rows decided: \(decidedRows) of \(rows), N \(N), K \(K)")
        }
    }

    /// A row with a clear winner is decided, whatever its scale.
    func testAClearWinnerIsDecided() {
        let (N, K) = (4000, 768)
        var values = randomMatrix(N * K, seed: 21).map { $0 * 0.05 }
        let x = hashedValues(K, seed: 22)
        for k in 0..<K { values[1234 * K + k] = x[k] * 0.01 }
        let (weight, guide) = guided(values, N: N, K: K)
        for scale: Float in [1, 1e-3, 1e3] {
            XCTAssertEqual(decisions(x.map { $0 * scale }, weight, guide, M: 1)[0], 1234, "scale \(scale)")
        }
    }

    func testTiesAndNearTiesGoWhereTheFullProductPutsThem() {
        let (N, K) = (1000, 96)
        var values = randomMatrix(N * K, seed: 5).map { $0 * 0.05 }
        let x = hashedValues(K, seed: 6)
        // Rows 200 and 700 equal and far ahead of the others: a tie the first index wins.
        for k in 0..<K { values[200 * K + k] = x[k] * 0.2; values[700 * K + k] = x[k] * 0.2 }
        // Rows 300 and 301 the same but for one weight's last bit; 301 a hair ahead or behind.
        for k in 0..<K { values[300 * K + k] = x[k] * 0.2; values[301 * K + k] = x[k] * 0.2 }
        values[301 * K + 7] = values[301 * K + 7].nextUp
        let (weight, guide) = guided(values, N: N, K: K)
        let decided = decisions(x, weight, guide, M: 1)
        XCTAssertNotNil(decided[0])
        XCTAssertEqual(decided[0], fullArgmaxes(x, weight, M: 1)[0])
        XCTAssertTrue([200, 301].contains(decided[0]!), "\(String(describing: decided[0]))")

        // The same with the tie alone.
        values[301 * K + 7] = values[300 * K + 7]
        values[300 * K + 0] *= 0.5
        values[301 * K + 0] *= 0.5
        let (tied, tiedGuide) = guided(values, N: N, K: K)
        XCTAssertEqual(decisions(x, tied, tiedGuide, M: 1)[0], 200)
        XCTAssertEqual(fullArgmaxes(x, tied, M: 1)[0], 200)
    }

    func testRowsTheBoundCannotDecideAreLeftToTheFullProduct() {
        let (N, K) = (1000, 64)
        let (weight, guide) = guided(randomMatrix(N * K, seed: 9), N: N, K: K)
        var x = hashedValues(2 * K, seed: 10)
        x[3] = .nan
        x[K + 5] = .infinity
        XCTAssertEqual(decisions(x, weight, guide, M: 2).map { $0 == nil }, [true, true])
        // Every row the same: every panel holds a candidate.
        let row = randomMatrix(K, seed: 11)
        let (same, sameGuide) = guided((0..<N).flatMap { _ in row }, N: N, K: K)
        XCTAssertNil(decisions(hashedValues(K, seed: 12), same, sameGuide, M: 1)[0])
    }

    /// The engine answers `argmaxOnly` items with the argmax of the logits it would otherwise return, in
    /// batches mixing them with items that take their logits and with a prompt's chunk.
    func testArgmaxOnlyItemsGetTheirLogitsArgmax() throws {
        let model = try GPTNeoModel.load(directory: tinyCheckpoint, settings: WeightSettings(dtype: .float32))
        XCTAssertNotNil(model.weights.lmHeadGuide)
        let engine = GPTNeoEngine(model: model, threads: 2)
        let V = model.config.vocabSize
        let streams = 5
        let guided = (0..<streams).map { _ in engine.makeCache(capacity: 64) }
        let plain = (0..<streams).map { _ in engine.makeCache(capacity: 64) }
        var next = (0..<streams).map { [($0 * 977) % V, ($0 * 131 + 7) % V, 464] }
        var decidedRows = 0
        for step in 0..<12 {
            let asking = (0..<streams).map { ($0 + step) % 3 != 0 }
            let withGuide = try engine.forward((0..<streams).map {
                ForwardItem(cache: guided[$0], tokens: next[$0], argmaxOnly: asking[$0])
            })
            let withoutGuide = try engine.forward((0..<streams).map { ForwardItem(cache: plain[$0], tokens: next[$0]) })
            for s in 0..<streams {
                let logits = withoutGuide[s].logits
                let expected = argmax(logits[(logits.count - V)...])
                if let answer = withGuide[s].argmax.first {
                    XCTAssertTrue(asking[s])
                    XCTAssertTrue(withGuide[s].logits.isEmpty)
                    XCTAssertEqual(answer, expected, "step \(step), stream \(s)")
                    decidedRows += 1
                } else {
                    assertBitwiseEqual(withGuide[s].logits, logits, "step \(step), stream \(s)")
                }
                next[s] = [expected]
            }
        }
        XCTAssertGreaterThan(decidedRows, 30, "the guide decides most rows of the tiny model")
    }
}
