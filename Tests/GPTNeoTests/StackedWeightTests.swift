import Foundation
import XCTest
@_spi(Benchmarks) @testable import GPTNeo

/// A matrix stacked from several tensors (the fused q, k, v projections) computes exactly the
/// separate products, in every storage format.
final class StackedWeightTests: XCTestCase {
    /// Output widths that are and are not whole panels of 16, so that stacked parts share panels.
    func testStackedProductIsTheSeparateProductsBitwise() {
        for format in WeightFormat.allCases {
            for (K, widths) in [(64, [64, 64, 64]), (36, [36, 36, 36]), (9, [5, 17, 1])] {
                let parts = widths.enumerated().map { index, N in
                    FloatTensor(shape: [N, K], values: randomMatrix(N * K, seed: UInt64(10 + index)))
                }
                let stacked = WeightMatrix(stacking: parts, format: format, threads: 2)
                XCTAssertEqual(stacked.outputs, widths.reduce(0, +))
                XCTAssertEqual(stacked.inputs, K)
                let separate = parts.map { WeightMatrix($0, format: format, threads: 1) }
                for M in [1, 2, 5, 6, 7, 13] {
                    let x = randomMatrix(M * K, seed: UInt64(M))
                    let fused = product(x, stacked, nil, M: M, threads: 3)
                    var first = 0
                    for (part, N) in zip(separate, widths) {
                        let alone = product(x, part, nil, M: M, threads: 1)
                        let columns = (0..<M).flatMap { m in fused[(m * stacked.outputs + first)..<(m * stacked.outputs + first + N)] }
                        assertBitwiseEqual(columns, alone, "\(format) K \(K) widths \(widths) M \(M) part at \(first)")
                        first += N
                    }
                }
            }
        }
    }

    func testStackedRowsReadBackAsTheirTensorsRows() {
        let (K, widths) = (7, [3, 20])
        let values = widths.map { randomMatrix($0 * K, seed: UInt64($0)) }
        let stacked = WeightMatrix(stacking: zip(widths, values).map { FloatTensor(shape: [$0, K], values: $1) }, threads: 1)
        let expected = values.flatMap { $0 }
        var row = [Float](repeating: .nan, count: K)
        for n in 0..<stacked.outputs {
            row.withUnsafeMutableBufferPointer { stacked.copyRow(n, into: $0.baseAddress!) }
            assertBitwiseEqual(row, Array(expected[(n * K)..<((n + 1) * K)]), "row \(n)")
        }
    }

    func testAMissingPartGivesAnEmptyMatrix() {
        let stacked = WeightMatrix(stacking: [FloatTensor(shape: [4, 3], values: randomMatrix(12, seed: 1)), FloatTensor(shape: [0], values: [])],
                                   threads: 1)
        XCTAssertEqual(stacked.outputs, 0)
        XCTAssertEqual(stacked.byteSize, 0)
    }
}
