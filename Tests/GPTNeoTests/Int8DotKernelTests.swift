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
        gptneo_int8_quantize_row(x, K, K4, &q, &scales)
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
