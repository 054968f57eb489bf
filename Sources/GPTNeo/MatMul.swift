import CFloat512
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
// 12 FMAs); the last M mod 6 rows as 1 row × up to 6 panels (a decode step of one sequence: a tile of
// its own, OneRowTile.swift), 2 rows × 3 panels, or 3, 4, 5 rows × 1 panel
// (fewer panels where a column range ends).
//
// Measured (EngineBenchmark kernels): with the weights in cache the 6-row tile runs at ~97 % of the
// core's FMA peak even at M = 512, so the loop needs no k blocking or packing of x; what it loses is
// the wait for weights from memory, which the batched-decode shapes (M = 6…64, each weight used by a
// few tiles) must stream from DRAM. Hence the spread prefetch in `multiplyPanels`, and the remainder
// tile (several panels, several streams) before the 6-row tiles (one stream each) of a unit: that order
// took 14-18 % off the 12 blocks' and LM head's products at M = 7 and 13, 3-4 % at 8, 14 and 32 (2
// threads, both orders alternated in one process). Splitting the 3-5 left-over rows or the first 6 rows
// into 2 × 3 tiles to lead with more streams cost more (7-30 %) than it gained.

typealias PanelRow = SIMD16<Float>

/// The most rows of one tile.
private let tileRows = 6

/// y = x · Wᵀ + bias: x (M, K), W (N, K), bias (N) or nil, y (M, N), row-major.
/// The one entry point for products with a weight. Parallel over column ranges on `threads`. Float
/// products (but one row of float32 weights) run on the AVX-512 code where the CPU has it (FloatKernel.swift); `kernel`
/// picks the code for tests, which check both against the same definition.
@_spi(Benchmarks) public func matMul(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: WeightMatrix,
                                     _ bias: FloatTensor?, M: Int, threads: Int, kernel: FloatKernel = .inUse) {
    let (N, K) = (weight.outputs, weight.inputs)
    guard M > 0, N > 0 else { return }
    precondition(bias == nil || bias!.count == N, "bias of \(bias!.count) for \(N) outputs")
    let biasPointer = bias?.pointer
    if case .int8Panels = weight.storage { return int8MatMul(y, x, weight, biasPointer, M: M, threads: threads) }
    if M >= FloatKernel.wideMinimumRows(weight.format) && kernel == .avx512 {
        precondition(kernel.isAvailable, "AVX-512 kernel on a CPU without AVX-512F")
        return wideMatMul(y, x, weight, biasPointer, M: M, threads: threads)
    }
    let unit = unitPanels(remainingRows: M % tileRows, format: weight.format)
    forEachPanelRange(weight.panelCount, inGroupsOf: unit, work: M * N * K, threads: threads) { panels in
        switch weight.storage {
        case .float32Panels(let weights):
            multiplyPanels(Float32Panel.self, y, x, weights, biasPointer, rows: M, panels: panels, unit: unit, K: K, N: N)
        case .float16Panels(let weights):
            multiplyPanels(Float16Panel.self, y, x, weights, biasPointer, rows: M, panels: panels, unit: unit, K: K, N: N)
        case .bfloat16Panels(let weights):
            multiplyPanels(BFloat16Panel.self, y, x, weights, biasPointer, rows: M, panels: panels, unit: unit, K: K, N: N)
        case .int8Panels:
            preconditionFailure("int8 weights are multiplied by int8MatMul")
        }
    }
}

/// Runs `body` on ranges of whole groups of `group` panels (the last group may be short), in parallel on
/// `threads`: several ranges per thread, which balances load on a machine shared with other work, and one
/// range in all when the product is too small to be worth waking the threads. Any split gives the same
/// numbers: each output column is computed whole by whichever range holds it.
///
/// The ranges shrink as they are handed out (guided scheduling): each thread's first takes 8/15 of its
/// share, then 4/15, 2/15 and 1/15. A region ends when its last range does, so the threads finish within
/// about one of the last, small ranges of each other instead of an eighth of the product. The wait
/// matters most where the weights stream from memory: one thread alone draws less bandwidth than two.
/// With the engine's AVX-512 8-row tile over 40 matrices of 9.4 MB, a barrier after each (C harness, 2
/// threads, 11 alternated rounds, 3 runs): medians 36.4 / 39.5 / 39.2 GB/s against 35.8 / 38.1 / 37.4
/// for equal eighths. In the engine the gain is within the host's noise: decode steps with the two
/// splits alternated in one process (3 runs of 16 pairs of 3 steps), guided over equal per pair, median
/// of each run: 8 streams 0.99 / 0.97 / 0.98, 32 streams 0.95 / 0.93 / 1.01; 1 and 64 streams
/// 0.97-1.02. One row splits its 768-column products into 8 groups of 6 panels, too few to split finer.
func forEachPanelRange(_ panelCount: Int, inGroupsOf group: Int, work: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let groups = (panelCount + group - 1) / group
    guard work >= (1 << 17), groups > 1, threads > 1 else { return body(0..<panelCount) }
    let parts = threads * guidedWeights.count
    let total = threads * guidedWeights.reduce(0, +)
    // Weight before part p: whole rounds of every thread's part of each size, then this round's.
    func before(_ part: Int) -> Int {
        let (round, thread) = part.quotientAndRemainder(dividingBy: threads)
        return threads * guidedWeights[..<round].reduce(0, +) + thread * (round < guidedWeights.count ? guidedWeights[round] : 0)
    }
    parallelFor(parts, threads: threads) { part in
        let lower = groups * before(part) / total, upper = groups * before(part + 1) / total
        if lower < upper { body(lower * group..<min(panelCount, upper * group)) }
    }
}

/// Relative sizes of one thread's ranges, in the order they are handed out.
private let guidedWeights = [8, 4, 2, 1]

// MARK: - Kernel codes

/// A family of kernel codes computing the same bits, listed slowest first.
protocol KernelCode: RawRepresentable<String>, CaseIterable, Equatable, Sendable where AllCases == [Self] {
    /// The fastest code this build has and this CPU runs.
    static var best: Self { get }
    /// The environment variable that names another code, to time one against another.
    static var environmentVariable: String { get }
    /// Whether this build and CPU can run it; by default, where a CPU that runs one code runs those
    /// before it, every code up to `best`.
    var isAvailable: Bool { get }
}

extension KernelCode {
    var isAvailable: Bool { Self.allCases.firstIndex(of: self)! <= Self.allCases.firstIndex(of: Self.best)! }

    /// `best`, unless the environment variable names another code. Naming one this CPU cannot run stops
    /// the process with the reason rather than with SIGILL.
    static func chosen() -> Self {
        let variable = environmentVariable
        guard let name = ProcessInfo.processInfo.environment[variable], !name.isEmpty else { return best }
        guard let kernel = Self(rawValue: name) else {
            fatalError("\(variable)=\(name): expected one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard kernel.isAvailable else { fatalError("\(variable)=\(name): this build or CPU does not run it (its fastest code: \(best.rawValue))") }
        return kernel
    }
}

// MARK: - Float tiles

/// Panels walked together by every row tile: those of the tile for the M mod 6 remaining rows, whose
/// shape keeps at least 8 FMA chains in flight (2 FMA units × 4 cycles of latency) without spilling
/// registers (checked in the disassembly). For float16 the compiler hoists the converting loads
/// (VCVTPH2PS) of all three panels of a 2 × 3 tile and spills accumulators, so 2 × 2 there.
private func unitPanels(remainingRows: Int, format: WeightFormat) -> Int {
    switch remainingRows {
    case 1: return 6  // walked by `oneRowTiles`, for float16 as two 1 × 3 tiles (OneRowTile.swift)
    case 2: return format == .float16 ? 2 : 3
    default: return 1
    }
}

/// All M rows against `panels`, `unit` panels at a time: first the remaining rows over the whole unit,
/// which read it from memory in `unit` address-ordered streams (three or six: the hardware prefetcher
/// follows each), then the full 6-row tiles one panel at a time while the unit is still in cache. The
/// tiles of one unit together prefetch the next unit, spread evenly: one address-ordered stream per
/// tile cannot keep the FMAs fed from memory, and prefetching the next unit all in the first tile would
/// ask that tile for more bandwidth than a core gets while the others ask for none.
private func multiplyPanels<Element: PanelElement>(_ element: Element.Type, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                                   _ weights: UnsafePointer<Element.Stored>, _ bias: UnsafePointer<Float>?,
                                                   rows M: Int, panels: Range<Int>, unit: Int, K: Int, N: Int) {
    let bulkTiles = M / tileRows
    let remaining = M - bulkTiles * tileRows
    let panelRowBytes = panelWidth * MemoryLayout<Element.Stored>.stride
    var first = panels.lowerBound
    while first < panels.upperBound {
        let count = min(unit, panels.upperBound - first)
        let nextCount = min(unit, panels.upperBound - first - count)
        let tiles = count * bulkTiles + (remaining > 0 ? 1 : 0)
        // Bytes of the next unit each tile prefetches per k step; above one line per step (a lone
        // remainder tile over several panels) the hardware prefetcher, seeing several streams, does it.
        // Rounding up may prefetch a little past the next unit, even past the allocation: harmless,
        // a prefetch never faults.
        let stride = (nextCount * panelRowBytes + tiles - 1) / tiles
        var prefetch = stride > 0 && stride <= 64 ? Prefetch(next: UnsafeRawPointer(weights + (first + count) * K * panelWidth), stride: stride) : nil
        if remaining > 0 {
            remainderTile(element, y, x, weights, bias, rows: remaining, panelCount: count, m: bulkTiles * tileRows,
                          panel: first, K: K, N: N, prefetch: prefetch)
            prefetch?.next += K * stride
        }
        for panel in first..<(first + count) {
            for bulkTile in 0..<bulkTiles {
                tile(Tile<R6, P1>.self, element, y, x, weights, bias, m: bulkTile * tileRows, panel: panel, K: K, N: N, prefetch: prefetch)
                prefetch?.next += K * stride
            }
        }
        first += count
    }
}

/// Where a tile prefetches: `stride` bytes further per k step from `next`.
struct Prefetch {
    var next: UnsafeRawPointer
    let stride: Int
}

/// The tile shapes used for fewer than 6 rows, over `panelCount` ≤ unitPanels(rows) panels.
private func remainderTile<Element: PanelElement>(_ element: Element.Type, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                                  _ w: UnsafePointer<Element.Stored>, _ bias: UnsafePointer<Float>?,
                                                  rows: Int, panelCount: Int, m: Int, panel: Int, K: Int, N: Int,
                                                  prefetch: Prefetch?) {
    func run<Shape: TileShape>(_ shape: Shape.Type) { tile(shape, element, y, x, w, bias, m: m, panel: panel, K: K, N: N, prefetch: prefetch) }
    switch (rows, panelCount) {
    case (5, _): run(Tile<R5, P1>.self)
    case (4, _): run(Tile<R4, P1>.self)
    case (3, _): run(Tile<R3, P1>.self)
    case (2, 3): run(Tile<R2, P3>.self)
    case (2, 2): run(Tile<R2, P2>.self)
    case (2, _): run(Tile<R2, P1>.self)
    default: oneRowTiles(element, y, x, w, bias, panelCount: panelCount, m: m, panel: panel, K: K, N: N, prefetch: prefetch)
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

// MARK: - Panel elements
// What a storage type contributes to the kernel: how to read panel row k as 16 Floats. A compact type
// (16-bit) is another conforming type, converting in registers; everything else is shared.

protocol PanelElement {
    associatedtype Stored
    /// The 16 weights of one panel row, starting `offset` elements into `panel`.
    static func row(_ panel: UnsafePointer<Stored>, _ offset: Int) -> PanelRow
    /// The same 16 weights in the lane order cheapest to widen into, the same for every row: an
    /// accumulator over such rows holds its 16 columns in that order, and `columns(fromLanes:)`
    /// restores theirs. Each lane is still one column's FMA chain, so the numbers do not change.
    static func laneRow(_ panel: UnsafePointer<Stored>, _ offset: Int) -> PanelRow
    /// An accumulator of `laneRow`s in column order.
    static func columns(fromLanes lanes: PanelRow) -> PanelRow
    /// Elements ahead of panel row k that a 1-row tile prefetches in each of its streams (0: none).
    static var singleRowLookahead: Int { get }
    /// The most panels of one 1-row tile (OneRowTile.swift).
    static var oneRowPanels: Int { get }
}

extension PanelElement {
    @inline(__always) static func laneRow(_ panel: UnsafePointer<Stored>, _ offset: Int) -> PanelRow { row(panel, offset) }
    @inline(__always) static func columns(fromLanes lanes: PanelRow) -> PanelRow { lanes }
}

enum Float32Panel: PanelElement {
    static var singleRowLookahead: Int { 0 }
    static var oneRowPanels: Int { 6 }
    @inline(__always) static func row(_ panel: UnsafePointer<Float>, _ offset: Int) -> PanelRow {
        UnsafeRawPointer(panel + offset).loadUnaligned(as: PanelRow.self)
    }
}

// MARK: - Micro-kernel

/// y[m..<m+R, panel..<panel+P] = x[m..<m+R, :] · panels + bias, with R·P ≤ 6 accumulators of 16
/// columns: accumulator s holds row s / P, panel s % P.
private func tile<Shape: TileShape, Element: PanelElement>(_ shape: Shape.Type, _ element: Element.Type,
                                                           _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                                           _ weights: UnsafePointer<Element.Stored>, _ bias: UnsafePointer<Float>?,
                                                           m: Int, panel: Int, K: Int, N: Int, prefetch: Prefetch?) {
    let (R, P) = (Shape.rows, Shape.panels)
    let S = R * P
    let (x0, x1, x2, x3, x4, x5) = sixStarts(x + m * K, count: R, stride: K)
    let panelFloats = K * panelWidth
    let (w0, w1, w2, w3, w4, w5) = sixStarts(weights + panel * panelFloats, count: P, stride: panelFloats)
    var a0 = PanelRow(), a1 = PanelRow(), a2 = PanelRow(), a3 = PanelRow(), a4 = PanelRow(), a5 = PanelRow()
    /// Accumulator s += b · v.
    @inline(__always) func accumulate(_ s: Int, _ b: PanelRow, _ v: PanelRow) {
        switch s {
        case 0: a0 = a0.addingProduct(b, v)
        case 1: a1 = a1.addingProduct(b, v)
        case 2: a2 = a2.addingProduct(b, v)
        case 3: a3 = a3.addingProduct(b, v)
        case 4: a4 = a4.addingProduct(b, v)
        default: a5 = a5.addingProduct(b, v)
        }
    }
    var k = 0
    while k < K {
        let offset = k &* panelWidth
        if let prefetch { prefetchForRead(prefetch.next + k &* prefetch.stride) }
        let b0 = PanelRow(repeating: x0[k]), b1 = PanelRow(repeating: x1[k]), b2 = PanelRow(repeating: x2[k])
        let b3 = PanelRow(repeating: x3[k]), b4 = PanelRow(repeating: x4[k]), b5 = PanelRow(repeating: x5[k])
        // Panel by panel, each panel row used by every row as soon as it is loaded: one panel row live
        // at a time, which leaves the registers to the accumulators and broadcasts.
        @inline(__always) func multiply(panel p: Int, _ v: PanelRow) {
            accumulate(p, b0, v)
            if R > 1 { accumulate(P + p, b1, v) }
            if R > 2 { accumulate(2 * P + p, b2, v) }
            if R > 3 { accumulate(3 * P + p, b3, v) }
            if R > 4 { accumulate(4 * P + p, b4, v) }
            if R > 5 { accumulate(5 * P + p, b5, v) }
        }
        multiply(panel: 0, Element.row(w0, offset))
        if P > 1 { multiply(panel: 1, Element.row(w1, offset)) }
        if P > 2 { multiply(panel: 2, Element.row(w2, offset)) }
        if P > 3 { multiply(panel: 3, Element.row(w3, offset)) }
        if P > 4 { multiply(panel: 4, Element.row(w4, offset)) }
        if P > 5 { multiply(panel: 5, Element.row(w5, offset)) }
        k += 1
    }
    store(a0, y, bias, row: m, panel: panel, N: N)
    if S > 1 { store(a1, y, bias, row: m + 1 / P, panel: panel + 1 % P, N: N) }
    if S > 2 { store(a2, y, bias, row: m + 2 / P, panel: panel + 2 % P, N: N) }
    if S > 3 { store(a3, y, bias, row: m + 3 / P, panel: panel + 3 % P, N: N) }
    if S > 4 { store(a4, y, bias, row: m + 4 / P, panel: panel + 4 % P, N: N) }
    if S > 5 { store(a5, y, bias, row: m + 5 / P, panel: panel + 5 % P, N: N) }
}

/// The starts of six rows of x or six panels, `stride` elements apart: those past `count` alias the
/// first, never read for a used accumulator (the tiles unroll six, whatever their shape).
@inline(__always) func sixStarts<T>(_ first: UnsafePointer<T>, count: Int, stride: Int)
    -> (UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>) {
    (first, count > 1 ? first + stride : first, count > 2 ? first + 2 * stride : first,
     count > 3 ? first + 3 * stride : first, count > 4 ? first + 4 * stride : first, count > 5 ? first + 5 * stride : first)
}

/// Writes one accumulator (+ bias) to y[row, 16·panel ..< min(N, 16·panel + 16)].
@inline(__always) func store(_ accumulator: PanelRow, _ y: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>?,
                                     row: Int, panel: Int, N: Int) {
    let n0 = panel * panelWidth
    let out = y + row * N + n0
    if n0 + panelWidth <= N {
        var value = accumulator
        if let bias { value += UnsafeRawPointer(bias + n0).loadUnaligned(as: PanelRow.self) }
        UnsafeMutableRawPointer(out).storeBytes(of: value, as: PanelRow.self)
    } else {
        for j in 0..<(N - n0) { out[j] = bias.map { accumulator[j] + $0[n0 + j] } ?? accumulator[j] }
    }
}
