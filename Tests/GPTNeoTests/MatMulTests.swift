import Foundation
import XCTest
@_spi(Benchmarks) @testable import GPTNeo

/// Deterministic values in [-1, 1].
func randomMatrix(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int32(truncatingIfNeeded: state >> 33)) / Float(Int32.max)
    }
}

/// y = x · Wᵀ + bias through the kernel.
func product(_ x: [Float], _ weight: WeightMatrix, _ bias: FloatTensor?, M: Int, threads: Int = 2,
             kernel: FloatKernel = .inUse) -> [Float] {
    var y = [Float](repeating: .nan, count: M * weight.outputs)
    y.withUnsafeMutableBufferPointer { out in matMul(out.baseAddress!, x, weight, bias, M: M, threads: threads, kernel: kernel) }
    return y
}

/// The matmul kernel directly.
final class MatMulTests: XCTestCase {

    /// The documented arithmetic, written out plainly over the stored weights: one fused multiply-add
    /// chain over k ascending from 0 of the widened stored values, then + bias; for int8 weights the
    /// integer dot-product definition (Int8DotKernelTests).
    func documentedProduct(_ x: [Float], _ weight: WeightMatrix, _ bias: [Float]?, M: Int) -> [Float] {
        if weight.format == .int8 { return int8Reference(x, weight, bias, M: M) }
        let (N, K) = (weight.outputs, weight.inputs)
        var y = [Float](repeating: 0, count: M * N)
        var row = [Float](repeating: 0, count: K)
        for n in 0..<N {
            _ = row.withUnsafeMutableBufferPointer { weight.storedRow(n, into: $0.baseAddress!) }
            for m in 0..<M {
                var sum: Float = 0
                for k in 0..<K { sum = sum.addingProduct(x[m * K + k], row[k]) }
                y[m * N + n] = bias.map { sum + $0[n] } ?? sum
            }
        }
        return y
    }

    /// In every storage format, every element of every row count 1…64 is exactly its definition, so a
    /// row never depends on the other rows, the tile that computed it or the thread count; with K and N
    /// not multiples of any tile size, and N large enough to use every thread: the 19 panels of (129, 300)
    /// split into column ranges whose last unit of panels is a partial one for most M mod 6, and
    /// (1100, 170) has panels larger than L1 and 11 panels, so the remainder tiles end over 5 or 2.
    func testEveryRowCountComputesTheFMAChainExactly() {
        everyRowCountComputesTheFMAChainExactly(kernel: .avx2)
    }

    /// The same with the AVX-512 code for float products (but one row of float32), on CPUs that have it.
    func testEveryRowCountComputesTheFMAChainExactlyWithAVX512() throws {
        try XCTSkipUnless(FloatKernel.best == .avx512, "this CPU has no AVX-512F: the AVX-512 kernel cannot run here")
        everyRowCountComputesTheFMAChainExactly(kernel: .avx512)
    }

    func everyRowCountComputesTheFMAChainExactly(kernel: FloatKernel) {
        for format in WeightFormat.allCases {
            for (K, N, withBias) in [(64, 64, true), (37, 11, true), (5, 200, false), (129, 300, true), (1100, 170, false), (768, 1000, true)] {
                let w = randomMatrix(N * K, seed: 1), biasValues = randomMatrix(N, seed: 2)
                let weight = WeightMatrix(FloatTensor(shape: [N, K], values: w), format: format, threads: 2)
                let bias = withBias ? FloatTensor(shape: [N], values: biasValues) : nil
                let x = randomMatrix(64 * K, seed: 3)
                let expected = documentedProduct(x, weight, withBias ? biasValues : nil, M: 64)
                for M in 1...64 where K * N < 200_000 || [1, 2, 3, 5, 6, 7, 8, 13, 64].contains(M) {
                    let y = product(Array(x.prefix(M * K)), weight, bias, M: M, threads: M % 3 + 1, kernel: kernel)
                    assertBitwiseEqual(y, Array(expected.prefix(M * N)), "\(kernel) \(format) K \(K) N \(N) M \(M)")
                }
            }
        }
    }

    /// Where K is so long that a pair of panels outgrows `widePairBytes` (a quarter of L2 up to 32 rows,
    /// proportionally less up to 64, half beyond), the AVX-512 code walks k in blocks, carrying each
    /// chain's partial sum through y: still exactly the one chain from k = 0 and the bias added once.
    /// K = 4100 and 8200 split into 1 to 9 blocks by format and row count (1 row of 16-bit weights and 8
    /// rows walk one panel at a time), some with a shorter last one; N leaves a partial last panel; the
    /// row counts give several row tiles and a partial last one, each thread count a different column
    /// split. Past 64 rows, every block size gives the same bits, down to blocks of a few hundred k and up
    /// to none.
    func testKBlockedProductsComputeTheFMAChainExactly() throws {
        try XCTSkipUnless(FloatKernel.best == .avx512, "this CPU has no AVX-512F: the AVX-512 kernel cannot run here")
        let manyRowsPairBytes = wideManyRowsPairBytes
        defer { wideManyRowsPairBytes = manyRowsPairBytes }
        for format in WeightFormat.allCases where format != .int8 {
            for (K, N) in [(4100, 40), (8200, 21)] {
                let weight = WeightMatrix(FloatTensor(shape: [N, K], values: randomMatrix(N * K, seed: 8)), format: format, threads: 2)
                let biasValues = randomMatrix(N, seed: 9)
                let x = randomMatrix(80 * K, seed: 10)
                let expected = documentedProduct(x, weight, biasValues, M: 80)
                for M in [1, 8, 17, 24, 45, 64, 65, 80] {
                    for pairBytes in M > 64 ? [manyRowsPairBytes, 48 << 10, 8 << 20] : [manyRowsPairBytes] {
                        wideManyRowsPairBytes = pairBytes
                        let y = product(Array(x.prefix(M * K)), weight, FloatTensor(shape: [N], values: biasValues), M: M,
                                        threads: M % 3 + 1, kernel: .avx512)
                        assertBitwiseEqual(y, Array(expected.prefix(M * N)), "\(format) K \(K) N \(N) M \(M)\(M > 64 ? " pairs of \(pairBytes) bytes" : "")")
                    }
                }
            }
        }
    }

    /// And the FMA chain is the product: close to a Double reference.
    func testMatchesDoubleReference() {
        let (M, K, N) = (9, 200, 70)
        let x = randomMatrix(M * K, seed: 4), w = randomMatrix(N * K, seed: 5), bias = randomMatrix(N, seed: 6)
        var reference = [Float](repeating: 0, count: M * N)
        for m in 0..<M { for n in 0..<N {
            var sum = 0.0
            for k in 0..<K { sum += Double(x[m * K + k]) * Double(w[n * K + k]) }
            reference[m * N + n] = Float(sum + Double(bias[n]))
        } }
        let weight = WeightMatrix(FloatTensor(shape: [N, K], values: w), threads: 1)
        assertClose(product(x, weight, FloatTensor(shape: [N], values: bias), M: M), reference, tolerance: 1e-4, "kernel vs Double")
    }

    /// The embedding lookup reads rows back out of the panel layout.
    func testCopyRowReturnsTheOriginalRow() {
        let (N, K) = (37, 9)
        let w = randomMatrix(N * K, seed: 7)
        let weight = WeightMatrix(FloatTensor(shape: [N, K], values: w), threads: 1)
        for n in [0, 15, 16, 36] {
            var row = [Float](repeating: .nan, count: K)
            row.withUnsafeMutableBufferPointer { weight.copyRow(n, into: $0.baseAddress!) }
            assertBitwiseEqual(row, Array(w[(n * K)..<((n + 1) * K)]), "row \(n)")
        }
    }

    /// The shrinking ranges cover every panel exactly once, start on whole groups, and shrink as they are
    /// handed out; a small product or one thread takes one range.
    func testPanelRangesCoverEveryPanelOnceInWholeGroups() {
        for threads in [1, 2, 3, 4, 8] {
            for (panelCount, group) in [(1, 2), (3, 2), (7, 6), (8, 1), (48, 6), (48, 2), (144, 6), (192, 2), (3142, 6), (3142, 2), (5, 8)] {
                let lock = NSLock()
                var ranges: [Range<Int>] = []
                forEachPanelRange(panelCount, inGroupsOf: group, work: 1 << 20, threads: threads) { range in
                    lock.withLock { ranges.append(range) }
                }
                ranges.sort { $0.lowerBound < $1.lowerBound }
                let context = "\(panelCount) panels in groups of \(group), \(threads) threads: \(ranges)"
                XCTAssertEqual(ranges.first?.lowerBound, 0, context)
                XCTAssertEqual(ranges.last?.upperBound, panelCount, context)
                for (range, next) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(range.upperBound, next.lowerBound, context) }
                XCTAssert(ranges.allSatisfy { !$0.isEmpty && $0.lowerBound % group == 0 }, context)
                XCTAssertLessThanOrEqual(ranges.count, threads == 1 ? 1 : threads * 4, context)
                if threads == 2 && panelCount >= 144 {
                    // Each thread's first range holds 8/15 of its share, its last 1/15.
                    let sizes = ranges.map(\.count)
                    XCTAssertEqual(sizes.count, 8, context)
                    XCTAssertGreaterThanOrEqual(min(sizes[0], sizes[1]), 4 * max(sizes[6], sizes[7]), context)
                }
            }
        }
        var calls = 0
        forEachPanelRange(3142, inGroupsOf: 6, work: 1 << 16, threads: 2) { range in
            calls += 1
            XCTAssertEqual(range, 0..<3142)
        }
        XCTAssertEqual(calls, 1, "a product under 2^17 multiply-adds runs as one range")
    }
}
