import Foundation
import XCTest
@_spi(Benchmarks) @testable import GPTNeo

final class KernelTests: XCTestCase {
    func testTanhApproximationIsAccurate() {
        var worst: Float = 0
        var x: Float = -12
        while x <= 12 {
            let approx = tanhApproximation(Vector(repeating: x))[0]
            worst = max(worst, abs(approx - Foundation.tanh(x)))
            x += 0.0009765625 * 0.37
        }
        XCTAssertLessThan(worst, 5e-7, "max |tanh error| (a few ulp of 1)")
    }

    /// The AVX-512 gelu_new (Sources/CActivation512) gives the AVX2 Swift code's bits for every input: a
    /// sweep of all float bit patterns (both signs, zeros, subnormals, infinities, NaNs) in steps of 4099,
    /// a dense run over -12…12 (tanh's clamp at ±7.9 and the tiny-input cut at ±0.0004 inside), and the
    /// edges themselves; rows of a length that leaves partial vectors in both codes.
    func testGeluOnAVX512GivesTheSwiftCodesBits() throws {
        try XCTSkipUnless(FloatKernel.best == .avx512, "this CPU has no AVX-512F: the AVX-512 code cannot run here")
        var inputs: [Float] = stride(from: UInt64(0), through: UInt64(UInt32.max), by: 4099).map { Float(bitPattern: UInt32($0)) }
        inputs += stride(from: Float(-12), through: 12, by: 0.0001)
        for edge: Float in [0.0004, 7.9, 7.90531110763549805, 60, 1e-3, 1e-30, .leastNonzeroMagnitude, .greatestFiniteMagnitude, .infinity, 0] {
            inputs += [edge, -edge, edge.nextUp, edge.nextDown, -edge.nextUp, -edge.nextDown]
        }
        let N = 1000 + 13, rows = inputs.count / N
        inputs = Array(inputs.prefix(rows * N))
        var wide = inputs, narrow = inputs
        wide.withUnsafeMutableBufferPointer { geluNewInPlace($0.baseAddress!, rows: rows, N: N, kernel: .avx512) }
        narrow.withUnsafeMutableBufferPointer { geluNewInPlace($0.baseAddress!, rows: rows, N: N, kernel: .avx2) }
        var differing = 0
        for i in inputs.indices where wide[i].bitPattern != narrow[i].bitPattern && !(wide[i].isNaN && narrow[i].isNaN) {
            if differing < 5 { XCTFail("gelu_new(\(inputs[i]) = bits \(inputs[i].bitPattern)): AVX-512 \(wide[i]), AVX2 \(narrow[i])") }
            differing += 1
        }
        XCTAssertEqual(differing, 0, "of \(inputs.count) inputs")
        XCTAssertGreaterThan(wide.filter { $0 != 0 && !$0.isNaN }.count, inputs.count / 3, "the sweep reaches the function's interesting range")
    }

    func testExpApproximationIsAccurate() {
        var worst: Float = 0
        var x: Float = -87
        while x <= 0 {
            let approx = expApproximation(Vector(repeating: x))[0]
            let exact = Foundation.exp(x)
            worst = max(worst, abs(approx - exact) / exact)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 3e-7, "max relative exp error")
        XCTAssertEqual(expApproximation(Vector(repeating: -200))[0], 0)
        XCTAssertEqual(expApproximation(Vector(repeating: 0))[0], 1)
    }

    func testLayerNormMatchesDefinition() {
        let C = 13
        let x: [Float] = (0..<(2 * C)).map { Float($0 % 7) * 0.3 - 1 }
        let weight: [Float] = (0..<C).map { 1 + Float($0) * 0.01 }, bias: [Float] = (0..<C).map { Float($0) * -0.02 }
        var out = [Float](repeating: 0, count: 2 * C)
        out.withUnsafeMutableBufferPointer { layerNorm($0.baseAddress!, x, weight, bias, eps: 1e-5, rows: 2, C: C) }
        var reference: [Float] = []
        for r in 0..<2 {
            let row = x[(r * C)..<((r + 1) * C)].map(Double.init)
            let mean = row.reduce(0, +) / Double(C)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(C)
            reference += row.enumerated().map { Float(($1 - mean) / (variance + 1e-5).squareRoot() * Double(weight[$0]) + Double(bias[$0])) }
        }
        assertClose(out, reference, tolerance: 1e-6, "layerNorm")
    }

    /// The fused residual add gives the same bits, in the residual stream and the normalized rows, as
    /// `addInPlace` followed by `layerNorm` (with and without a partial last vector).
    func testAddThenLayerNormEqualsAddThenNormalize() {
        for C in [13, 16, 768] {
            let rows = 3
            let x: [Float] = (0..<(rows * C)).map { Float(($0 * 37) % 101) * 0.021 - 1 }
            let residual: [Float] = (0..<(rows * C)).map { Float(($0 * 53) % 89) * -0.017 + 0.7 }
            let weight: [Float] = (0..<C).map { 1 + Float($0 % 11) * 0.01 }, bias: [Float] = (0..<C).map { Float($0 % 5) * -0.02 }
            var separateSum = x, fusedSum = x
            var separate = [Float](repeating: 0, count: rows * C), fused = separate
            separateSum.withUnsafeMutableBufferPointer { sum in
                addInPlace(sum.baseAddress!, residual, count: rows * C)
                separate.withUnsafeMutableBufferPointer { layerNorm($0.baseAddress!, sum.baseAddress!, weight, bias, eps: 1e-5, rows: rows, C: C) }
            }
            fusedSum.withUnsafeMutableBufferPointer { sum in
                fused.withUnsafeMutableBufferPointer {
                    addThenLayerNorm($0.baseAddress!, sum.baseAddress!, adding: residual, weight, bias, eps: 1e-5, rows: rows, C: C)
                }
            }
            XCTAssertEqual(fusedSum.map(\.bitPattern), separateSum.map(\.bitPattern), "residual stream, C = \(C)")
            XCTAssertEqual(fused.map(\.bitPattern), separate.map(\.bitPattern), "normalized rows, C = \(C)")
        }
    }
}
