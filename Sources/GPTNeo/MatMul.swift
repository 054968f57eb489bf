import CPrefetch
import Foundation

// Linear layers: y = x · Wᵀ (+ bias), W (N, K) stored by `WeightMatrix` as k-major panels of 16
// output columns. int8 weights take integer dot products instead (Int8DotKernel.swift).
//
// One kernel for decode, batched decode and prefill: an outer-product tile of R rows × P panels keeps
// R·P accumulators of 16 columns (two AVX2 registers each, at most 12 of the 16 registers); each k
// step broadcasts x[r, k] and multiplies it into panel row k with one FMA per register. So every
// output element y[m, n] is one FMA chain over k = 0, 1, …, K-1 starting from 0, then + bias[n]: the
// same arithmetic whatever tile shape, row count, chunking or thread computes it. A row's result never
// depends on the other rows (batch invariance), nor a prompt's on how it was split.
//
// Tiles: 6 rows × 1 panel for the bulk of the rows (12 accumulators, 6 broadcasts and 2 loads per
// 12 FMAs); the last M mod 6 rows as 1 row × 6 panels (a decode step of one sequence: 12 independent
// FMA chains over six address-ordered weight streams), 2 × 2, or 3, 4, 5 rows × 1 panel.

typealias PanelRow = SIMD16<Float>

/// The most rows of one tile.
private let tileRows = 6
/// Panels handed to a thread at a time, and walked together by every row tile (they stay in L2
/// between the bulk rows and the remainder rows).
private let panelGroup = 6

/// y = x · Wᵀ + bias: x (M, K), W (N, K), bias (N) or nil, y (M, N), row-major.
/// The one entry point for products with a weight. Parallel over column groups on `threads`.
@_spi(Benchmarks) public func matMul(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: WeightMatrix,
                                     _ bias: FloatTensor?, M: Int, threads: Int) {
    let (N, K) = (weight.outputs, weight.inputs)
    guard M > 0, N > 0 else { return }
    precondition(bias == nil || bias!.count == N, "bias of \(bias!.count) for \(N) outputs")
    let biasPointer = bias?.pointer
    if case .int8Panels = weight.storage { return int8MatMul(y, x, weight, biasPointer, M: M, threads: threads) }
    let groups = (weight.panelCount + panelGroup - 1) / panelGroup
    let parts = M * N * K < (1 << 17) ? 1 : min(groups, threads * 4)
    // Any split of the column groups gives the same numbers; several parts per thread balance load
    // on a machine shared with other work.
    parallelFor(parts, threads: threads) { part in
        for group in (groups * part / parts)..<(groups * (part + 1) / parts) {
            let first = group * panelGroup
            let last = min(weight.panelCount, first + panelGroup)
            switch weight.storage {
            case .float32Panels(let panels):
                multiplyPanels(Float32Panel.self, y, x, panels, biasPointer, nil, rows: M, panels: first..<last, K: K, N: N)
            case .float16Panels(let panels):
                multiplyPanels(Float16Panel.self, y, x, panels, biasPointer, nil, rows: M, panels: first..<last, K: K, N: N)
            case .bfloat16Panels(let panels):
                multiplyPanels(BFloat16Panel.self, y, x, panels, biasPointer, nil, rows: M, panels: first..<last, K: K, N: N)
            case .int8Panels:
                preconditionFailure("int8 weights are multiplied by int8MatMul")
            }
        }
    }
}

/// All M rows against panels `panels`: full 6-row tiles one panel at a time, then the remaining rows.
private func multiplyPanels<Element: PanelElement>(_ element: Element.Type, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                                   _ weights: UnsafePointer<Element.Stored>, _ bias: UnsafePointer<Float>?,
                                                   _ scales: UnsafePointer<Float>?, rows M: Int, panels: Range<Int>, K: Int, N: Int) {
    let bulkRows = M / tileRows * tileRows
    for panel in panels {
        var m = 0
        // The first row tile also prefetches the next panel: one tile reads a single address-ordered
        // stream, too slow to keep the FMAs fed from memory on its own.
        let next = panel + 1 < panels.upperBound ? panel + 1 : panel
        while m < bulkRows {
            if m == 0 {
                tile(Tile<R6, P1>.self, element, y, x, weights, bias, scales, m: m, panel: panel, K: K, N: N,
                     prefetch: UnsafeRawPointer(weights + next * K * panelWidth))
            } else {
                tile(Tile<R6, P1>.self, element, y, x, weights, bias, scales, m: m, panel: panel, K: K, N: N, prefetch: nil)
            }
            m += tileRows
        }
    }
    let remaining = M - bulkRows
    guard remaining > 0 else { return }
    // Panels per tile: as many accumulators as fit beside the broadcasts and panel loads in 16
    // registers without spilling (checked in the disassembly).
    let step = remaining == 1 ? 6 : remaining == 2 ? 2 : 1
    var panel = panels.lowerBound
    while panel < panels.upperBound {
        let count = min(step, panels.upperBound - panel)
        remainderTile(element, y, x, weights, bias, scales, rows: remaining, panelCount: count, m: bulkRows, panel: panel, K: K, N: N)
        panel += count
    }
}

/// The tile shapes used for fewer than 6 rows.
private func remainderTile<Element: PanelElement>(_ element: Element.Type, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                                  _ w: UnsafePointer<Element.Stored>, _ bias: UnsafePointer<Float>?,
                                                  _ scales: UnsafePointer<Float>?, rows: Int, panelCount: Int, m: Int, panel: Int, K: Int, N: Int) {
    func run<Shape: TileShape>(_ shape: Shape.Type) { tile(shape, element, y, x, w, bias, scales, m: m, panel: panel, K: K, N: N, prefetch: nil) }
    switch (rows, panelCount) {
    case (5, _): run(Tile<R5, P1>.self)
    case (4, _): run(Tile<R4, P1>.self)
    case (3, _): run(Tile<R3, P1>.self)
    case (2, 2): run(Tile<R2, P2>.self)
    case (2, _): run(Tile<R2, P1>.self)
    case (1, 6): run(Tile<R1, P6>.self)
    case (1, 5): run(Tile<R1, P5>.self)
    case (1, 4): run(Tile<R1, P4>.self)
    case (1, 3): run(Tile<R1, P3>.self)
    case (1, 2): run(Tile<R1, P2>.self)
    default: run(Tile<R1, P1>.self)
    }
}

// MARK: - Tile shapes
// Types rather than arguments, so that each shape is its own specialization of `tile` with R and P
// constant (unused accumulators, loads and branches compiled away), whatever the inliner decides.

protocol Count { static var value: Int { get } }
enum R1: Count { static var value: Int { 1 } }
enum R2: Count { static var value: Int { 2 } }
enum R3: Count { static var value: Int { 3 } }
enum R4: Count { static var value: Int { 4 } }
enum R5: Count { static var value: Int { 5 } }
enum R6: Count { static var value: Int { 6 } }
typealias P1 = R1
typealias P2 = R2
typealias P3 = R3
typealias P4 = R4
typealias P5 = R5
typealias P6 = R6

protocol TileShape { static var rows: Int { get }; static var panels: Int { get } }
/// Rows × panels of one tile.
enum Tile<Rows: Count, Panels: Count>: TileShape {
    static var rows: Int { Rows.value }
    static var panels: Int { Panels.value }
}

// MARK: - Micro-kernel

@inline(__always) private func pick<T>(_ i: Int, _ v0: T, _ v1: T, _ v2: T, _ v3: T, _ v4: T, _ v5: T) -> T {
    switch i {
    case 0: return v0
    case 1: return v1
    case 2: return v2
    case 3: return v3
    case 4: return v4
    default: return v5
    }
}

// MARK: - Panel elements
// What a storage type contributes to the kernel: how to read panel row k as 16 Floats. A compact type
// (16-bit, int8) is another conforming type, converting in registers; everything else is shared.

protocol PanelElement {
    associatedtype Stored
    /// The 16 weights of one panel row, starting `offset` elements into `panel`.
    static func row(_ panel: UnsafePointer<Stored>, _ offset: Int) -> PanelRow
}

enum Float32Panel: PanelElement {
    @inline(__always) static func row(_ panel: UnsafePointer<Float>, _ offset: Int) -> PanelRow {
        UnsafeRawPointer(panel + offset).loadUnaligned(as: PanelRow.self)
    }
}

/// y[m..<m+R, panel..<panel+P] = x[m..<m+R, :] · panels + bias, with R·P ≤ 6 accumulators of 16
/// columns: accumulator s holds row s / P, panel s % P.
private func tile<Shape: TileShape, Element: PanelElement>(_ shape: Shape.Type, _ element: Element.Type,
                                                           _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                                           _ weights: UnsafePointer<Element.Stored>, _ bias: UnsafePointer<Float>?,
                                                           _ scales: UnsafePointer<Float>?, m: Int, panel: Int, K: Int, N: Int, prefetch: UnsafeRawPointer?) {
    let (R, P) = (Shape.rows, Shape.panels)
    let S = R * P
    // Rows and panels past R and P alias the first: never read for a used accumulator.
    let x0 = x + m * K
    let x1 = R > 1 ? x0 + K : x0, x2 = R > 2 ? x0 + 2 * K : x0, x3 = R > 3 ? x0 + 3 * K : x0
    let x4 = R > 4 ? x0 + 4 * K : x0, x5 = R > 5 ? x0 + 5 * K : x0
    let panelFloats = K * panelWidth
    let w0 = weights + panel * panelFloats
    let w1 = P > 1 ? w0 + panelFloats : w0, w2 = P > 2 ? w0 + 2 * panelFloats : w0
    let w3 = P > 3 ? w0 + 3 * panelFloats : w0, w4 = P > 4 ? w0 + 4 * panelFloats : w0
    let w5 = P > 5 ? w0 + 5 * panelFloats : w0
    var a0 = PanelRow(), a1 = PanelRow(), a2 = PanelRow(), a3 = PanelRow(), a4 = PanelRow(), a5 = PanelRow()
    var k = 0
    while k < K {
        let offset = k * panelWidth
        if let prefetch { prefetchForRead(prefetch + offset * MemoryLayout<Element.Stored>.stride) }
        let b0 = PanelRow(repeating: x0[k]), b1 = PanelRow(repeating: x1[k]), b2 = PanelRow(repeating: x2[k])
        let b3 = PanelRow(repeating: x3[k]), b4 = PanelRow(repeating: x4[k]), b5 = PanelRow(repeating: x5[k])
        let v0 = Element.row(w0, offset), v1 = Element.row(w1, offset), v2 = Element.row(w2, offset)
        let v3 = Element.row(w3, offset), v4 = Element.row(w4, offset), v5 = Element.row(w5, offset)
        a0 = a0.addingProduct(pick(0 / P, b0, b1, b2, b3, b4, b5), pick(0 % P, v0, v1, v2, v3, v4, v5))
        if S > 1 { a1 = a1.addingProduct(pick(1 / P, b0, b1, b2, b3, b4, b5), pick(1 % P, v0, v1, v2, v3, v4, v5)) }
        if S > 2 { a2 = a2.addingProduct(pick(2 / P, b0, b1, b2, b3, b4, b5), pick(2 % P, v0, v1, v2, v3, v4, v5)) }
        if S > 3 { a3 = a3.addingProduct(pick(3 / P, b0, b1, b2, b3, b4, b5), pick(3 % P, v0, v1, v2, v3, v4, v5)) }
        if S > 4 { a4 = a4.addingProduct(pick(4 / P, b0, b1, b2, b3, b4, b5), pick(4 % P, v0, v1, v2, v3, v4, v5)) }
        if S > 5 { a5 = a5.addingProduct(pick(5 / P, b0, b1, b2, b3, b4, b5), pick(5 % P, v0, v1, v2, v3, v4, v5)) }
        k += 1
    }
    store(a0, y, bias, scales, row: m, panel: panel, N: N)
    if S > 1 { store(a1, y, bias, scales, row: m + 1 / P, panel: panel + 1 % P, N: N) }
    if S > 2 { store(a2, y, bias, scales, row: m + 2 / P, panel: panel + 2 % P, N: N) }
    if S > 3 { store(a3, y, bias, scales, row: m + 3 / P, panel: panel + 3 % P, N: N) }
    if S > 4 { store(a4, y, bias, scales, row: m + 4 / P, panel: panel + 4 % P, N: N) }
    if S > 5 { store(a5, y, bias, scales, row: m + 5 / P, panel: panel + 5 % P, N: N) }
}

/// Writes one accumulator (× scale, + bias) to y[row, 16·panel ..< min(N, 16·panel + 16)]. Scales
/// (per output, padded to whole panels) are those of int8 weights.
@inline(__always) private func store(_ raw: PanelRow, _ y: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>?,
                                     _ scales: UnsafePointer<Float>?, row: Int, panel: Int, N: Int) {
    let n0 = panel * panelWidth
    let out = y + row * N + n0
    var accumulator = raw
    if let scales { accumulator *= UnsafeRawPointer(scales + n0).loadUnaligned(as: PanelRow.self) }
    if n0 + panelWidth <= N {
        var value = accumulator
        if let bias { value += UnsafeRawPointer(bias + n0).loadUnaligned(as: PanelRow.self) }
        UnsafeMutableRawPointer(out).storeBytes(of: value, as: PanelRow.self)
    } else {
        for j in 0..<(N - n0) { out[j] = bias.map { accumulator[j] + $0[n0 + j] } ?? accumulator[j] }
    }
}
