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
        // The VNNI codes read them as unsigned bytes offset by 128; the scales are the same.
        for kernel in [Int8Kernel.vnni, .avx512vnni] {
            var offset = [Int8](repeating: 99, count: K4), offsetScales = [Float](repeating: .nan, count: 3)
            quantizeActivationRow(x, K: K, K4: K4, into: &offset, scales: &offsetScales, for: kernel)
            XCTAssertEqual(offset.map { Int(UInt8(bitPattern: $0)) }, q.map { Int($0) + 128 }, "\(kernel)")
            XCTAssertEqual(offsetScales.map(\.bitPattern), scales.map(\.bitPattern), "\(kernel)")
        }
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

    /// Each instruction set's code alone computes the definition's bits, for every tile shape: every row
    /// count 1…64 (the ymm codes' 4-row tiles and remainders; the AVX512-VNNI code's ymm tiles below 8
    /// rows and its 512-bit tiles, whole and split, from 8), K = 301 (a partial 4-k group and a partial
    /// block), 198 columns (13 panels, the last partial: column ranges of whole pairs of panels and of one
    /// panel), with and without bias, at 1 and 2 threads; rows of exactly GPTNEO_INT8_OFFSET_BLOCKS blocks
    /// and longer (the longest the 512-bit tiles take, and past it); extreme operands (±127 · ±127
    /// everywhere) included. So the code chosen at run time cannot change a result.
    func assertKernelComputesTheDefinition(_ kernel: Int8Kernel, file: StaticString = #filePath, line: UInt = #line) throws {
        guard kernel.isAvailable else {
            throw XCTSkip("this CPU (or build) has no \(kernel.rawValue) code to run (its fastest: \(Int8Kernel.best.rawValue))")
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
        /// The first M rows of x through the kernel against the first M rows of the definition's `expected`.
        func check(_ x: [Float], _ weight: WeightMatrix, _ bias: [Float]?, rowCounts: [Int], threads: [Int], expected: [Float], _ what: String) {
            let (K, N) = (weight.inputs, weight.outputs)
            for M in rowCounts {
                for threadCount in threads {
                    assertBitwiseEqual(run(Array(x.prefix(M * K)), weight, bias, M: M, threads: threadCount), Array(expected.prefix(M * N)),
                                       "\(kernel.rawValue) \(what) M \(M) threads \(threadCount)", file: file, line: line)
                }
            }
        }
        let (K, N) = (301, 198)
        let weight = WeightMatrix(FloatTensor(shape: [N, K], values: randomMatrix(N * K, seed: 31)), format: .int8, threads: 2)
        let bias = randomMatrix(N, seed: 32), x = randomMatrix(64 * K, seed: 33)
        check(x, weight, bias, rowCounts: Array(1...64), threads: [1, 2], expected: int8Reference(x, weight, bias, M: 64), "K \(K) N \(N)")
        check(x, weight, nil, rowCounts: Array(1...64), threads: [2], expected: int8Reference(x, weight, nil, M: 64), "K \(K) N \(N) without bias")
        // Rows of GPTNEO_INT8_OFFSET_BLOCKS blocks (the AVX-VNNI codes keep −128·Σw on the stack up to it)
        // and longer.
        for longK in [Int(GPTNEO_INT8_OFFSET_BLOCKS) * int8ActivationBlock - 6, Int(GPTNEO_INT8_OFFSET_BLOCKS) * int8ActivationBlock + 40] {
            let long = WeightMatrix(FloatTensor(shape: [20, longK], values: randomMatrix(20 * longK, seed: 34)), format: .int8, threads: 2)
            let longRows = randomMatrix(9 * longK, seed: 35)
            check(longRows, long, nil, rowCounts: [5, 9], threads: [2], expected: int8Reference(longRows, long, nil, M: 9), "K \(longK)")
        }
        let signs: [Float] = (0..<K).map { $0 % 3 == 0 ? -1 : 1 }
        let extreme = WeightMatrix(FloatTensor(shape: [N, K], values: (0..<(N * K)).map { signs[$0 % K] * ($0 / K % 2 == 0 ? 1 : -1) }),
                                   format: .int8, threads: 1)
        let extremeRows = Array(Array(repeating: signs, count: 13).joined())
        check(extremeRows, extreme, nil, rowCounts: [1, 5, 8, 13], threads: [1], expected: int8Reference(extremeRows, extreme, nil, M: 13), "extremes")
    }

    func testAVX512VNNICodeComputesTheDefinition() throws { try assertKernelComputesTheDefinition(.avx512vnni) }

    func testAVXVNNICodeComputesTheDefinition() throws { try assertKernelComputesTheDefinition(.vnni) }

    func testAVX2CodeComputesTheDefinition() throws { try assertKernelComputesTheDefinition(.avx2) }

    func testPortableCodeComputesTheDefinition() throws { try assertKernelComputesTheDefinition(.portable) }

    /// The process uses the fastest code this machine runs (unless GPTNEO_INT8_KERNEL names another), and
    /// each VNNI code is available exactly where /proc/cpuinfo lists its instructions: the AVX512-VNNI
    /// code where it lists them, whether or not it lists AVX-VNNI.
    func testTheFastestAvailableCodeIsUsed() throws {
        if ProcessInfo.processInfo.environment["GPTNEO_INT8_KERNEL"] == nil { XCTAssertEqual(Int8Kernel.inUse, Int8Kernel.best) }
        XCTAssertTrue(Int8Kernel.best.isAvailable && Int8Kernel.portable.isAvailable)
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard let flagLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            throw XCTSkip("no /proc/cpuinfo flags to compare with")
        }
        let flags = Set(flagLine.split(separator: " ").map(String.init))
        let hasAVX512VNNI = flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512_vnni"])
        XCTAssertEqual(Int8Kernel.avx512vnni.isAvailable, hasAVX512VNNI, "/proc/cpuinfo: avx512f, bw, vl, vnni \(hasAVX512VNNI)")
        XCTAssertEqual(Int8Kernel.vnni.isAvailable, flags.contains("avx_vnni"), "/proc/cpuinfo: avx_vnni \(flags.contains("avx_vnni"))")
        if hasAVX512VNNI {
            XCTAssertEqual(Int8Kernel.best, .avx512vnni)
        } else if flags.contains("avx_vnni") {
            XCTAssertEqual(Int8Kernel.best, .vnni)
        }
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
