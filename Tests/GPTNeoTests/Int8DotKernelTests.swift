import CInt8Dot
import Foundation
import XCTest
@_spi(Benchmarks) @testable import GPTNeo

// The int8 kernel (Int8DotKernel.swift, Sources/CInt8Dot/int8dot.h) against its definition written out
// plainly: activations quantized per block of 32 k, exact integer block sums, one FMA chain over blocks.

/// k per activation scale, as the kernel's definition states it.
let int8ActivationBlock = 32

/// One activation row quantized by the definition: per block of 32 k, scale = max|x| / 127 and
/// q = x · (127 / max|x|) rounded to nearest even (an all-zero block: scale 0, q 0).
func quantizeActivations(_ row: ArraySlice<Float>) -> (q: [Int], scales: [Float]) {
    let values = Array(row)
    var q: [Int] = [], scales: [Float] = []
    for start in stride(from: 0, to: values.count, by: int8ActivationBlock) {
        let block = values[start..<min(values.count, start + int8ActivationBlock)]
        let largest = block.map(abs).max()!
        let inverse: Float = largest > 0 ? 127 / largest : 0
        scales.append(largest / 127)
        q += block.map { Int(($0 * inverse).rounded(.toNearestOrEven)) }
    }
    return (q, scales)
}

/// y = x · Wᵀ + bias for int8 W by the definition: for each block b, the exact integer sum S_b of
/// xq · wq; acc = fma(Float(S_b), xscale_b, acc) in block order from 0; y = acc · wscale[n] + bias[n].
func int8Reference(_ x: [Float], _ weight: WeightMatrix, _ bias: [Float]?, M: Int) -> [Float] {
    let (N, K) = (weight.outputs, weight.inputs)
    let rows = (0..<M).map { quantizeActivations(x[($0 * K)..<(($0 + 1) * K)]) }
    var y = [Float](repeating: 0, count: M * N)
    var wq = [Float](repeating: 0, count: K)
    for n in 0..<N {
        let scale = wq.withUnsafeMutableBufferPointer { weight.storedRow(n, into: $0.baseAddress!) }
        for m in 0..<M {
            var acc: Float = 0
            for (b, start) in stride(from: 0, to: K, by: int8ActivationBlock).enumerated() {
                var sum = 0
                for k in start..<min(K, start + int8ActivationBlock) { sum += rows[m].q[k] * Int(wq[k]) }
                acc = acc.addingProduct(Float(sum), rows[m].scales[b])
            }
            let scaled = acc * scale
            y[m * N + n] = bias.map { scaled + $0[n] } ?? scaled
        }
    }
    return y
}

final class Int8DotKernelTests: XCTestCase {

    /// Every row count 1…64 is bitwise the definition (and so independent of the other rows, tiles and
    /// threads) is tested for every format in MatMulTests; here the quantized activations themselves.
    func testActivationRowsQuantizeAsDefined() {
        let K = 75, K4 = 76
        var x = randomMatrix(K, seed: 21)
        for k in 32..<64 { x[k] = 0 }  // an all-zero block
        x[70] = .nan
        var q = [Int8](repeating: 99, count: K4), scales = [Float](repeating: .nan, count: 3)
        quantizeActivationRow(x, K: K, K4: K4, into: &q, scales: &scales, for: .avx2)
        XCTAssertEqual(q[75], 0, "padding past K is zero")
        XCTAssertEqual(scales[1], 0, "an all-zero block")
        let clean = quantizeActivations(x[0..<64])
        XCTAssertEqual(q[0..<64].map(Int.init), clean.q)
        XCTAssertEqual(Array(scales[0..<2]), clean.scales)
        for k in 0..<64 where scales[k / 32] > 0 {
            XCTAssertLessThanOrEqual(abs(x[k] - Float(q[k]) * scales[k / 32]), scales[k / 32] / 2 * 1.0001, "k \(k)")
        }
        XCTAssertEqual(q[0..<32].map { abs(Int($0)) }.max(), 127, "the largest magnitude maps to ±127")
        XCTAssertTrue(q.allSatisfy { $0 >= -127 && $0 <= 127 }, "never -128, even for a NaN input: \(q)")
        // The AVX-VNNI code reads them as unsigned bytes offset by 128; the scales are the same.
        var offset = [Int8](repeating: 99, count: K4), offsetScales = [Float](repeating: .nan, count: 3)
        quantizeActivationRow(x, K: K, K4: K4, into: &offset, scales: &offsetScales, for: .vnni)
        XCTAssertEqual(offset.map { Int(UInt8(bitPattern: $0)) }, q.map { Int($0) + 128 })
        XCTAssertEqual(offsetScales.map(\.bitPattern), scales.map(\.bitPattern))
    }

    /// Whole blocks are quantized eight lanes at a time and partial ones one value at a time: both as
    /// defined, over magnitudes from 1e-30 to 1e30 and rounding ties, and a NaN in a whole block is 0
    /// without changing the others.
    func testWholeAndPartialBlocksQuantizeAsDefined() {
        let K = 32 * 40 + 20, K4 = K
        var x = randomMatrix(K, seed: 22)
        for k in 0..<K { x[k] *= Float(pow(10.0, Double(k / 32 % 13 * 5 - 30))) }
        for k in 64..<96 { x[k] = Float(k - 80) + 0.5 }  // with 127 the largest, x · 1: every value a tie
        x[64] = 127
        var q = [Int8](repeating: 99, count: K4), scales = [Float](repeating: .nan, count: 41)
        quantizeActivationRow(x, K: K, K4: K4, into: &q, scales: &scales, for: .avx2)
        let expected = quantizeActivations(x[0..<K])
        XCTAssertEqual(q.map(Int.init), expected.q)
        XCTAssertEqual(scales.map(\.bitPattern), expected.scales.map(\.bitPattern))

        var withNaN = x
        withNaN[40] = .nan
        var clean = x
        clean[40] = 0
        quantizeActivationRow(withNaN, K: K, K4: K4, into: &q, scales: &scales, for: .avx2)
        let cleanExpected = quantizeActivations(clean[0..<K])
        XCTAssertEqual(q.map(Int.init), cleanExpected.q, "a NaN quantizes to 0 and is not the block's largest")
        XCTAssertEqual(scales.map(\.bitPattern), cleanExpected.scales.map(\.bitPattern))
    }

    /// The extremes: every product +127 · 127 (pairs of 32258, the most VPMADDUBSW adds without int16
    /// saturation) or −127 · 127, summed exactly.
    func testExtremeValuesDoNotSaturate() {
        let (N, K) = (16, 64)
        let signs: [Float] = (0..<K).map { $0 % 3 == 0 ? -1 : 1 }
        var w = [Float](repeating: 0, count: N * K)
        for n in 0..<N { for k in 0..<K { w[n * K + k] = n % 2 == 0 ? signs[k] : -signs[k] } }
        let weight = WeightMatrix(FloatTensor(shape: [N, K], values: w), format: .int8, threads: 1)
        let y = product(signs.map { $0 * 2 }, weight, nil, M: 1)
        // x quantizes to ±127 with scale 2/127, w to ±127 with scale 1/127: y = ±K · 2 exactly.
        for n in 0..<N { XCTAssertEqual(y[n], n % 2 == 0 ? Float(2 * K) : -Float(2 * K), "column \(n)") }
        assertBitwiseEqual(y, int8Reference(signs.map { $0 * 2 }, weight, nil, M: 1), "reference")
    }

    /// Each instruction set's code alone computes the definition's bits, for every tile shape (row
    /// counts 1…9 and 33 cover the 4-row tiles and every remainder, 70 columns a partial panel,
    /// K = 301 a partial 4-k group and a partial block, and one row length longer than
    /// GPTNEO_INT8_OFFSET_BLOCKS), with and without bias, at 1 and 2 threads;
    /// extreme operands (±127 · ±127 everywhere) included. So the code chosen at run time cannot
    /// change a result.
    func assertKernelComputesTheDefinition(_ kernel: Int8Kernel, file: StaticString = #filePath, line: UInt = #line) throws {
        guard kernel.isAvailable else {
            throw XCTSkip("this CPU (or build) has no \(kernel.rawValue) code to run: it runs at most \(Int8Kernel.best.rawValue)")
        }
        func run(_ x: [Float], _ weight: WeightMatrix, _ bias: [Float]?, M: Int, threads: Int) -> [Float] {
            var y = [Float](repeating: .nan, count: M * weight.outputs)
            y.withUnsafeMutableBufferPointer { out in
                x.withUnsafeBufferPointer { input in
                    if let bias {
                        bias.withUnsafeBufferPointer { int8MatMul(out.baseAddress!, input.baseAddress!, weight, $0.baseAddress!, M: M, threads: threads, kernel: kernel) }
                    } else {
                        int8MatMul(out.baseAddress!, input.baseAddress!, weight, nil, M: M, threads: threads, kernel: kernel)
                    }
                }
            }
            return y
        }
        let (K, N) = (301, 70)
        let weight = WeightMatrix(FloatTensor(shape: [N, K], values: randomMatrix(N * K, seed: 31)), format: .int8, threads: 2)
        let bias = randomMatrix(N, seed: 32), x = randomMatrix(33 * K, seed: 33)
        for M in [1, 2, 3, 4, 5, 6, 7, 8, 9, 33] {
            let rows = Array(x.prefix(M * K))
            for threads in [1, 2] {
                assertBitwiseEqual(run(rows, weight, bias, M: M, threads: threads), int8Reference(rows, weight, bias, M: M),
                                   "\(kernel.rawValue) M \(M) threads \(threads)", file: file, line: line)
            }
            assertBitwiseEqual(run(rows, weight, nil, M: M, threads: 2), int8Reference(rows, weight, nil, M: M),
                               "\(kernel.rawValue) M \(M) without bias", file: file, line: line)
        }
        // Rows longer than the blocks the AVX-VNNI code keeps on the stack (GPTNEO_INT8_OFFSET_BLOCKS).
        let longK = Int(GPTNEO_INT8_OFFSET_BLOCKS) * int8ActivationBlock + 40
        let long = WeightMatrix(FloatTensor(shape: [20, longK], values: randomMatrix(20 * longK, seed: 34)), format: .int8, threads: 2)
        let longRows = randomMatrix(5 * longK, seed: 35)
        assertBitwiseEqual(run(longRows, long, nil, M: 5, threads: 2), int8Reference(longRows, long, nil, M: 5),
                           "\(kernel.rawValue) K \(longK)", file: file, line: line)
        let signs: [Float] = (0..<K).map { $0 % 3 == 0 ? -1 : 1 }
        let extreme = WeightMatrix(FloatTensor(shape: [N, K], values: (0..<(N * K)).map { signs[$0 % K] * ($0 / K % 2 == 0 ? 1 : -1) }),
                                   format: .int8, threads: 1)
        for M in [1, 5] {
            let rows = Array(Array(repeating: signs, count: M).joined())
            assertBitwiseEqual(run(rows, extreme, nil, M: M, threads: 1), int8Reference(rows, extreme, nil, M: M),
                               "\(kernel.rawValue) extremes M \(M)", file: file, line: line)
        }
    }

    func testAVXVNNICodeComputesTheDefinition() throws { try assertKernelComputesTheDefinition(.vnni) }

    func testAVX2CodeComputesTheDefinition() throws { try assertKernelComputesTheDefinition(.avx2) }

    func testPortableCodeComputesTheDefinition() throws { try assertKernelComputesTheDefinition(.portable) }

    /// The process uses the fastest code this machine runs (unless GPTNEO_INT8_KERNEL names another), and
    /// on a CPU reporting AVX-VNNI that is the AVX-VNNI code.
    func testTheFastestAvailableCodeIsUsed() {
        if ProcessInfo.processInfo.environment["GPTNEO_INT8_KERNEL"] == nil { XCTAssertEqual(Int8Kernel.inUse, Int8Kernel.best) }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if cpuinfo.split(separator: "\n").contains(where: { $0.hasPrefix("flags") && $0.split(separator: " ").contains("avx_vnni") }) {
            XCTAssertEqual(Int8Kernel.best, .vnni, "/proc/cpuinfo lists avx_vnni")
        }
        XCTAssertTrue(Int8Kernel.best.isAvailable && Int8Kernel.portable.isAvailable)
    }

    /// The definition is the product of the quantized operands: close to it computed in Double.
    func testMatchesADoubleProductOfTheSameQuantizedOperands() {
        let (K, N) = (300, 70)
        let w = randomMatrix(N * K, seed: 12), bias = randomMatrix(N, seed: 13), x = randomMatrix(64 * K, seed: 14)
        let weight = WeightMatrix(FloatTensor(shape: [N, K], values: w), format: .int8, threads: 2)
        var reference = [Float](repeating: 0, count: 64 * N)
        var wq = [Float](repeating: 0, count: K)
        for n in 0..<N {
            let scale = wq.withUnsafeMutableBufferPointer { weight.storedRow(n, into: $0.baseAddress!) }
            for m in 0..<64 {
                let (xq, xs) = quantizeActivations(x[(m * K)..<((m + 1) * K)])
                var sum = 0.0
                for k in 0..<K { sum += Double(xq[k]) * Double(xs[k / int8ActivationBlock]) * Double(wq[k]) * Double(scale) }
                reference[m * N + n] = Float(sum + Double(bias[n]))
            }
        }
        for M in [1, 2, 5, 6, 7, 31, 64] {
            let y = product(Array(x.prefix(M * K)), weight, FloatTensor(shape: [N], values: bias), M: M)
            // Integer block sums are exact; 10 float roundings of partial sums of magnitude ≲ √K.
            assertClose(y, Array(reference.prefix(M * N)), tolerance: 2e-6 * Float(K).squareRoot(), "int8 M \(M)")
        }
    }

    /// And the quantized product approximates the float32 one: activation rounding adds a relative
    /// error of about 1/254 per block, like the weights' own.
    func testStaysCloseToTheFloatProduct() {
        let (M, K, N) = (8, 768, 64)
        let w = randomMatrix(N * K, seed: 15), x = randomMatrix(M * K, seed: 16)
        let exact = product(x, WeightMatrix(FloatTensor(shape: [N, K], values: w), threads: 1), nil, M: M)
        let quantized = product(x, WeightMatrix(FloatTensor(shape: [N, K], values: w), format: .int8, threads: 1), nil, M: M)
        let rms = (exact.reduce(0) { $0 + $1 * $1 } / Float(exact.count)).squareRoot()
        let worst = zip(exact, quantized).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 0.02 * rms, "worst |Δ| \(worst) against an rms of \(rms)")
    }
}
