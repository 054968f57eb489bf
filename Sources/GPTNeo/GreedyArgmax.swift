import CInt8Dot
import Foundation

// The index of a row's largest logit without reading all of a float32 LM head.
//
// A greedy step needs only the first index of the largest logit, yet one stream's step reads the whole
// LM head for it (154 MB of the 125M model's 501 MB, in float32). An int8 copy of the head (a quarter of
// the bytes; `ArgmaxGuide`) gives every logit approximately through the int8 kernel (Int8DotKernel.swift),
// and a proven bound on each approximation's error narrows the argmax to a few panels, whose logits are
// then computed exactly by the float32 kernel itself: the same FMA chains as the full product, so the
// same bits, and the same first largest index.
//
// The bound. Logit n is l_n, the float32 kernel's FMA chain over k of x_k·w_nk (MatMul.swift); write
// L_n = Σ x_k·w_nk exactly. The int8 kernel quantizes x per block of 32 (x̂ = s_b·q: ‖x‖, ‖x̂‖ and ‖x − x̂‖ are
// computed from the kernel's own quantization of the row) and multiplies by the weights' ŵ_n = s_n·q_n;
// its a_n is Â_n = Σ x̂_k·ŵ_nk up to its own float chain over the B blocks and the final × s_n. Then, with
// e_n = w_n − ŵ_n and Cauchy-Schwarz:
//   |l_n − L_n| ≤ γ_K·‖x‖·‖w_n‖                       (K FMAs, u = 2⁻²⁴, γ_j = ju/(1 − ju))
//   |L_n − Â_n| ≤ ‖x‖·‖e_n‖ + ‖x − x̂‖·‖ŵ_n‖
//   |Â_n − a_n| ≤ γ_{B+2}·‖x̂‖·‖ŵ_n‖                   (B FMAs and one product)
// so |l_n − a_n| ≤ B_n := ‖x‖·E_n + (‖x − x̂‖ + γ_{B+2}·‖x̂‖)·Ŵ_n + γ_K·‖x‖·W_n + 2⁻¹⁰⁰, with the row norms
// E_n = ‖e_n‖, Ŵ_n = ‖ŵ_n‖, W_n = ‖w_n‖ computed at load and rounded up (the 2⁻¹⁰⁰ covers underflow). With L = max_m (a_m − B_m), every n with a_n + B_n < L has l_n < L ≤ l_m for the m
// reaching L: it can neither be the largest nor tie with it. The rest are the candidates.
//
// The bound is applied in Float arithmetic, widened to cover its own rounding: the coefficients are
// rounded up and widened by 2⁻¹⁰ (the sum of four non-negative products then stays above B_n·(1 + 2⁻¹¹)),
// and 2⁻¹²·|a_n| is added, so that rounding a_n ± B″_n (at most 2⁻²⁴·(|a_n| + B″_n)) stays within what
// was added: fl(a_m − B″_m) ≤ a_m − B_m, hence L″ ≤ L, and a_n + B_n ≥ L implies fl(a_n + B″_n) ≥ L″.
// Non-finite inputs or approximations, or too many candidate panels, leave the row undecided: the caller
// computes it in full.

/// An int8 copy of a float32 matrix and the row norms that bound its error (see above).
final class ArgmaxGuide: @unchecked Sendable {
    let approximation: WeightMatrix
    /// Per row n: ‖w_n − ŵ_n‖, ‖ŵ_n‖, ‖w_n‖, each rounded up; 3·N floats, row after row.
    let rowNorms: UnsafeMutablePointer<Float>

    /// The guide for `weight` (float32), quantizing `source`, the tensor `weight` was made from.
    init(for weight: WeightMatrix, source: TensorElements, threads: Int, hugePages: Bool = false) {
        precondition(weight.format == .float32, "an argmax guide is for float32 weights")
        approximation = WeightMatrix(source, format: .int8, threads: threads, hugePages: hugePages)
        guard case .int8Panels(_, let scales) = approximation.storage else { preconditionFailure("an int8 copy") }
        let (N, K) = (weight.outputs, weight.inputs)
        rowNorms = .allocate(capacity: max(1, 3 * N))
        let norms = rowNorms
        // Row by row from the source, read in order (the panels hold a row's weights 64 bytes apart): each
        // weight as the float32 panels hold it, and as the int8 copy does, quantized again with its row's
        // scale by the function that quantized it (`int8Quantized`, WeightStorage.swift).
        let contiguous = source.float32Elements()
        let parts = N * K < (1 << 18) ? 1 : max(1, min(threads * 4, N))
        // Each a sum of K rounded squares (and e_k one FMA): within (1 + γ_{K+2}) of its value.
        let widening = 1 + 2 * Double(K + 2) * 0x1p-24
        parallelFor(parts, threads: threads) { part in
            let widened = UnsafeMutablePointer<Float>.allocate(capacity: max(1, K))
            defer { widened.deallocate() }
            for n in (N * part / parts)..<(N * (part + 1) / parts) {
                let row: UnsafePointer<Float>
                if let contiguous {
                    row = contiguous + n * K
                } else {
                    source.widenRows(n..<(n + 1), into: widened)
                    row = UnsafePointer(widened)
                }
                let (error, approximate, whole) = squaredNorms(row, K: K, scale: scales[n])
                norms[3 * n] = Float((Double(error) * widening).squareRoot()).nextUp
                norms[3 * n + 1] = Float((Double(approximate) * widening).squareRoot()).nextUp
                norms[3 * n + 2] = Float((Double(whole) * widening).squareRoot()).nextUp
            }
        }
        source.releasePages()
    }

    deinit { rowNorms.deallocate() }

    /// Bytes of the int8 copy, its scales and the norms.
    var byteSize: Int { approximation.byteSize + 3 * approximation.outputs * MemoryLayout<Float>.size }
}

/// Σ (w − ŵ)², Σ ŵ², Σ w² over a row w of K weights, ŵ = scale · q with q as `int8Quantized` rounds
/// w / scale (to nearest, ties away from zero, within ±127; 0 for a zero scale), 16 lanes at a time.
@inline(__always) private func squaredNorms(_ row: UnsafePointer<Float>, K: Int, scale: Float) -> (Float, Float, Float) {
    typealias Lanes = SIMD16<Float>
    var error = Lanes(), approximate = Lanes(), whole = Lanes()
    let scales = Lanes(repeating: scale)
    let limit = Lanes(repeating: 127)
    @inline(__always) func add(_ w: Lanes) {
        var q = scale > 0 ? (w / scales).rounded(.toNearestOrAwayFromZero) : Lanes()
        q = q.replacing(with: limit, where: q .> limit).replacing(with: -limit, where: q .< -limit)
        let quantized = q * scales
        let difference = w.addingProduct(-q, scales)  // one rounding
        error = error.addingProduct(difference, difference)
        approximate = approximate.addingProduct(quantized, quantized)
        whole = whole.addingProduct(w, w)
    }
    var k = 0
    while k + 16 <= K {
        add(UnsafeRawPointer(row + k).loadUnaligned(as: Lanes.self))
        k += 16
    }
    if k < K {
        var tail = Lanes()
        for i in 0..<(K - k) { tail[i] = row[k + i] }
        add(tail)
    }
    return (error.sum(), approximate.sum(), whole.sum())
}

/// k per activation scale of the int8 kernel.
private let int8Block = Int(GPTNEO_INT8_BLOCK)

/// The most candidate panels of one row, as a share of all panels, before the full row is cheaper.
private let greedyArgmaxMaximumPanelShare = 8

/// For each of the M rows of x (M, K), the index of the first largest logit of x · Wᵀ (`weight`, float32
/// panels), exactly as `firstIndex(of: max)` over `matMul`'s product would give it, or nil where that was
/// not decided (see above). `scratch` holds M × N floats, overwritten.
func greedyArgmax(_ x: UnsafePointer<Float>, _ weight: WeightMatrix, guide: ArgmaxGuide, M: Int,
                  scratch y: UnsafeMutablePointer<Float>, threads: Int) -> [Int?] {
    guard M > 0 else { return [] }
    guard case .float32Panels(let panels) = weight.storage else { preconditionFailure("greedyArgmax needs float32 panels") }
    matMul(y, x, guide.approximation, nil, M: M, threads: threads)
    let (N, K) = (weight.outputs, weight.inputs)
    var decided = [Int?](repeating: nil, count: M)
    decided.withUnsafeMutableBufferPointer { out in
        let out = out
        parallelFor(M, threads: threads) { m in
            out[m] = rowArgmax(row: m, x: x, y: y, panels: panels, rowNorms: guide.rowNorms, panelCount: weight.panelCount, K: K,
                                paddedK: guide.approximation.paddedInputs, N: N)
        }
    }
    return decided
}

/// Row `row`'s decision from its approximations in y (whose candidate panels it overwrites with their
/// exact logits).
private func rowArgmax(row: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, panels: UnsafePointer<Float>,
                       rowNorms: UnsafePointer<Float>, panelCount: Int, K: Int, paddedK: Int, N: Int) -> Int? {
    let xm = x + row * K
    let a = y + row * N
    // ‖x‖, ‖x̂‖ and ‖x − x̂‖, with x̂ as the int8 kernel quantizes x (its own code, decoded: the VNNI codes
    // store q + 128), in Double: each s_b·q exact.
    let K4 = paddedK, blocks = (K + int8Block - 1) / int8Block
    var squares = 0.0, quantizedSquares = 0.0, errorSquares = 0.0
    withUnsafeTemporaryAllocation(of: Int8.self, capacity: K4) { q in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: blocks) { scales in
            let kernel = Int8Kernel.inUse
            quantizeActivationRow(xm, K: K, K4: K4, into: q.baseAddress!, scales: scales.baseAddress!, for: kernel)
            let offset: UInt8 = kernel == .vnni || kernel == .avx512vnni ? 0x80 : 0
            for k in 0..<K {
                let value = Double(xm[k])
                let quantized = Double(scales[k / int8Block]) * Double(Int8(bitPattern: UInt8(bitPattern: q[k]) ^ offset))
                squares += value * value
                quantizedSquares += quantized * quantized
                errorSquares += (value - quantized) * (value - quantized)
            }
        }
    }
    let norm = squares.squareRoot(), quantizedNorm = quantizedSquares.squareRoot(), quantizationError = errorSquares.squareRoot()
    let unitRoundoff = 0x1p-24
    func gamma(_ count: Int) -> Double { Double(count) * unitRoundoff / (1 - Double(count) * unitRoundoff) }
    let widening = 1 + 0x1p-10
    let errorCoefficient = Float(norm * widening).nextUp
    let approximationCoefficient = Float((quantizationError + gamma(blocks + 2) * quantizedNorm) * widening).nextUp
    let wholeCoefficient = Float(gamma(K) * norm * widening).nextUp
    let floor: Float = 0x1p-100
    guard errorCoefficient.isFinite, approximationCoefficient.isFinite, wholeCoefficient.isFinite else { return nil }

    @inline(__always) func bound(_ n: Int) -> Float {
        errorCoefficient * rowNorms[3 * n] + approximationCoefficient * rowNorms[3 * n + 1]
            + wholeCoefficient * rowNorms[3 * n + 2] + floor + 0x1p-12 * abs(a[n])
    }
    // L″; `poison` turns NaN if any a_n or bound is not finite.
    var lower = -Float.infinity
    var poison: Float = 0
    for n in 0..<N {
        let (value, margin) = (a[n], bound(n))
        poison += (value + margin) * 0
        let low = value - margin
        if low > lower { lower = low }
    }
    guard poison == 0, lower.isFinite else { return nil }

    var candidates: [Int] = []
    var candidatePanels: [Int] = []
    for n in 0..<N where a[n] + bound(n) >= lower {
        candidates.append(n)
        let panel = n / panelWidth
        if candidatePanels.last != panel {
            candidatePanels.append(panel)
            if candidatePanels.count * greedyArgmaxMaximumPanelShare > panelCount { return nil }
        }
    }
    // The float32 kernel itself, one panel at a time: the same FMA chains as the full product.
    for panel in candidatePanels {
        oneRowTiles(Float32Panel.self, y, x, panels, nil, panelCount: 1, m: row, panel: panel, K: K, N: N, prefetch: nil)
    }
    var best = candidates[0]
    for n in candidates {
        guard a[n].isFinite else { return nil }
        if a[n] > a[best] { best = n }
    }
    return best
}
