import Foundation
import XCTest
@testable import GPTNeo

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
}
