import CActivation512
import Foundation

// Element-wise and per-row kernels. Each works one row at a time in a fixed order, and the last
// partial SIMD vector of a row goes through the same vector arithmetic (zero-padded), so a value
// depends only on its own row: never on how many rows share the call (batch invariance).

// MARK: - SIMD helpers

typealias Vector = SIMD8<Float>
let vectorWidth = 8

@inline(__always) func loadVector(_ p: UnsafePointer<Float>) -> Vector {
    UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
}

@inline(__always) func storeVector(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
}

/// The first `count` (< 8) elements, the rest zero.
@inline(__always) func loadPartial(_ p: UnsafePointer<Float>, _ count: Int) -> Vector {
    var v = Vector(repeating: 0)
    for i in 0..<count { v[i] = p[i] }
    return v
}

@inline(__always) func storePartial(_ v: Vector, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    for i in 0..<count { p[i] = v[i] }
}

/// Horizontal sum in one fixed order: halves, then quarters, then the last pair.
@inline(__always) func horizontalSum(_ v: Vector) -> Float {
    let four = v.lowHalf + v.highHalf
    let two = four.lowHalf + four.highHalf
    return two[0] + two[1]
}

/// Lane-wise clamp; written with masks because the generic `clamped` is not inlined.
@inline(__always) func clamp(_ v: Vector, _ low: Float, _ high: Float) -> Vector {
    let lowVector = Vector(repeating: low), highVector = Vector(repeating: high)
    return v.replacing(with: lowVector, where: v .< lowVector).replacing(with: highVector, where: v .> highVector)
}

// MARK: - LayerNorm

/// out = (x - mean) / sqrt(var + eps) * weight + bias, per row; biased variance like torch.
/// x, out are (rows, C); weight, bias are (C). `out` may equal `x`.
func layerNorm(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
               _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, eps: Float, rows: Int, C: Int) {
    normalizeRows(out, x, adding: nil, weight, bias, eps: eps, rows: rows, C: C)
}

/// x += residual, then out = LayerNorm(x), row by row (the residual add before a pre-LayerNorm block):
/// each row is normalized while it is still in L1, one pass over the (rows, C) stream fewer than
/// `addInPlace` then `layerNorm`, with the same bits. x, residual, out are (rows, C); `out` ≠ `x`.
func addThenLayerNorm(_ out: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, adding residual: UnsafePointer<Float>,
                      _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, eps: Float, rows: Int, C: Int) {
    normalizeRows(out, x, adding: residual, weight, bias, eps: eps, rows: rows, C: C)
}

/// The one LayerNorm body; with `residual`, the mean's pass first adds it into x (same arithmetic as
/// `addInPlace`: a lane-wise add, tails zero-padded).
@inline(__always) private func normalizeRows(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, adding residual: UnsafePointer<Float>?,
                                             _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, eps: Float, rows: Int, C: Int) {
    let full = C / vectorWidth * vectorWidth
    let tail = C - full
    let inverseC = 1 / Float(C)
    for r in 0..<rows {
        let row = x + r * C
        let outRow = out + r * C
        var sum = Vector(repeating: 0)
        var c = 0
        if let residual {
            let sumRow = UnsafeMutablePointer(mutating: row), residualRow = residual + r * C
            while c < full {
                let h = loadVector(row + c) + loadVector(residualRow + c)
                storeVector(h, sumRow + c)
                sum += h
                c += vectorWidth
            }
            if tail > 0 {
                let h = loadPartial(row + full, tail) + loadPartial(residualRow + full, tail)
                storePartial(h, sumRow + full, tail)
                sum += h
            }
        } else {
            while c < full { sum += loadVector(row + c); c += vectorWidth }
            if tail > 0 { sum += loadPartial(row + full, tail) }
        }
        let mean = horizontalSum(sum) * inverseC
        let meanVector = Vector(repeating: mean)
        var squares = Vector(repeating: 0)
        c = 0
        while c < full { let d = loadVector(row + c) - meanVector; squares = squares.addingProduct(d, d); c += vectorWidth }
        if tail > 0 {
            var d = loadPartial(row + full, tail) - meanVector
            for i in tail..<vectorWidth { d[i] = 0 }
            squares = squares.addingProduct(d, d)
        }
        let variance = horizontalSum(squares) * inverseC
        let scale = Vector(repeating: 1 / (variance + eps).squareRoot())
        c = 0
        while c < full {
            let normalized = (loadVector(row + c) - meanVector) * scale
            storeVector(normalized * loadVector(weight + c) + loadVector(bias + c), outRow + c)
            c += vectorWidth
        }
        if tail > 0 {
            let normalized = (loadPartial(row + full, tail) - meanVector) * scale
            storePartial(normalized * loadPartial(weight + full, tail) + loadPartial(bias + full, tail), outRow + full, tail)
        }
    }
}

// MARK: - Residual and bias

/// x += y over `count` elements (row-independent: element-wise).
func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
    let full = count / vectorWidth * vectorWidth
    var i = 0
    while i < full { storeVector(loadVector(x + i) + loadVector(y + i), x + i); i += vectorWidth }
    while i < count { x[i] += y[i]; i += 1 }
}

/// y[r, n] += bias[n] for (rows, N).
func addBias(_ y: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, N: Int) {
    for r in 0..<rows { addInPlace(y + r * N, bias, count: N) }
}

// MARK: - gelu_new

/// Rational approximation of tanh (Eigen's `generic_fast_tanh_float`, minimax 13/6): within a few
/// ulp of tanhf over the float range; inputs are clamped where tanh rounds to ±1.
@inline(__always) func tanhApproximation(_ input: Vector) -> Vector {
    let bound: Float = 7.90531110763549805
    let x = clamp(input, -bound, bound)
    let x2 = x * x
    var p = Vector(repeating: -2.76076847742355e-16) * x2 + Vector(repeating: 2.00018790482477e-13)
    p = p * x2 + Vector(repeating: -8.60467152213735e-11)
    p = p * x2 + Vector(repeating: 5.12229709037114e-08)
    p = p * x2 + Vector(repeating: 1.48572235717979e-05)
    p = p * x2 + Vector(repeating: 6.37261928875436e-04)
    p = p * x2 + Vector(repeating: 4.89352455891786e-03)
    p = p * x
    var q = Vector(repeating: 1.19825839466702e-06)
    q = q * x2 + Vector(repeating: 1.18534705686654e-04)
    q = q * x2 + Vector(repeating: 2.26843463243900e-03)
    q = q * x2 + Vector(repeating: 4.89352518554385e-03)
    let result = p / q
    // Tiny inputs: tanh(x) = x to float precision (the rational form loses relative accuracy there).
    let small = (input .< Vector(repeating: 0.0004)) .& (input .> Vector(repeating: -0.0004))
    return result.replacing(with: input, where: small)
}

/// √(2/π) as gelu_new uses it.
let geluSqrtTwoOverPi = Float((2.0 / Double.pi).squareRoot())

/// gelu_new(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), in place over (rows, N), per row. The
/// arithmetic is lane-wise, so the AVX-512 code (Sources/CActivation512) gives the same bits 16 lanes at
/// a time: a pass over 512 × 3072 values took 0.72-0.84 ms on one thread against 1.59-2.37 (the pass was
/// 2.5 % of a 512-token prefill's samples).
func geluNewInPlace(_ x: UnsafeMutablePointer<Float>, rows: Int, N: Int, kernel: FloatKernel = .inUse) {
    if kernel == .avx512 {
        gptneo_gelu_new512(x, rows * N, geluSqrtTwoOverPi)
        return
    }
    let full = N / vectorWidth * vectorWidth
    let tail = N - full
    let sqrtTwoOverPi = Vector(repeating: geluSqrtTwoOverPi)
    @inline(__always) func gelu(_ v: Vector) -> Vector {
        let inner = sqrtTwoOverPi * (v + Vector(repeating: 0.044715) * (v * v * v))
        return Vector(repeating: 0.5) * v * (Vector(repeating: 1) + tanhApproximation(inner))
    }
    for r in 0..<rows {
        let row = x + r * N
        var c = 0
        while c < full { storeVector(gelu(loadVector(row + c)), row + c); c += vectorWidth }
        if tail > 0 { storePartial(gelu(loadPartial(row + full, tail)), row + full, tail) }
    }
}

// MARK: - exp

/// exp(x) lane-wise (Cephes' expf: range reduction by ln 2, degree-5 polynomial): within 2 ulp of
/// expf; 0 below -87.3 where expf is denormal or 0.
@inline(__always) func expApproximation(_ input: Vector) -> Vector {
    let x = clamp(input, -87.33654, 88.72283)
    let n = (x * Vector(repeating: 1.44269504088896341) + Vector(repeating: 0.5)).rounded(.down)
    var r = x - n * Vector(repeating: 0.693359375)
    r = r - n * Vector(repeating: -2.12194440e-4)
    let r2 = r * r
    var p = Vector(repeating: 1.9875691500e-4)
    p = p * r + Vector(repeating: 1.3981999507e-3)
    p = p * r + Vector(repeating: 8.3334519073e-3)
    p = p * r + Vector(repeating: 4.1665795894e-2)
    p = p * r + Vector(repeating: 1.6666665459e-1)
    p = p * r + Vector(repeating: 5.0000001201e-1)
    let y = p * r2 + r + Vector(repeating: 1)
    // 2^n through the exponent bits.
    // n is integral and small: adding 1.5·2^23 puts it in the low mantissa bits (cheaper than a
    // generic Float→Int32 conversion, which Swift does not vectorize).
    let magic = Vector(repeating: 12582912)
    let integer = unsafeBitCast(n + magic, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    let exponent = (integer &+ 127) &<< 23
    let result = y * unsafeBitCast(exponent, to: Vector.self)
    return result.replacing(with: 0, where: input .< Vector(repeating: -87.33654))
}

/// out[i] = exp((values[i] - shift) · scale) for i in 0..<count, with `expApproximation`; exactly 0
/// where the argument is below -87.3 (`out` may be `values`). The sampler's unnormalized probabilities
/// exp((logit - max) / T), eight lanes at a time (a Double `exp` per vocabulary entry costs as much as a
/// decode step's matmul at a few dozen streams).
public func expOfScaledDifference(_ values: UnsafePointer<Float>, count: Int, shift: Float, scale: Float,
                                  into out: UnsafeMutablePointer<Float>) {
    let (shiftVector, scaleVector) = (Vector(repeating: shift), Vector(repeating: scale))
    var i = 0
    while i + vectorWidth <= count {
        storeVector(expApproximation((loadVector(values + i) - shiftVector) * scaleVector), out + i)
        i += vectorWidth
    }
    if i < count { storePartial(expApproximation((loadPartial(values + i, count - i) - shiftVector) * scaleVector), out + i, count - i) }
}

/// Σ exp(values[i] - shift) for i in 0..<count: `expApproximation` eight lanes at a time, summed in
/// eight Double lanes (then the lanes in one fixed order). The log-softmax denominator of a logits row
/// in about a hundredth of the time of a Double `exp` per entry, within a few units in the last place.
public func sumOfExpDifferences(_ values: UnsafePointer<Float>, count: Int, shift: Float) -> Double {
    let shiftVector = Vector(repeating: shift)
    var lanes = SIMD8<Double>()
    var i = 0
    while i + vectorWidth <= count {
        lanes += SIMD8<Double>(expApproximation(loadVector(values + i) - shiftVector))
        i += vectorWidth
    }
    if i < count {
        // Padding lanes hold exp(-inf - shift) = 0.
        var tail = Vector(repeating: -.infinity)
        for j in i..<count { tail[j - i] = values[j] }
        lanes += SIMD8<Double>(expApproximation(tail - shiftVector))
    }
    return lanes.sum()
}
