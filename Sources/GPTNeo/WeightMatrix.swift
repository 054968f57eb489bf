import Foundation

// The one type for weight matrices: every product with a weight (the linear layers, the LM head)
// and the token-embedding lookup go through it, so how a matrix is stored is decided here alone.
//
// Layout: W (N, K) is repacked once at load into ⌈N/16⌉ panels of 16 output columns, each panel
// k-major — panel p holds W[16p + j, k] at p·16K + 16k + j (columns past N are zero). The matmul
// kernel then reads one 64-byte line per k per panel, in address order, and broadcasts activations
// against it (see MatMul.swift). The 16-bit formats (WeightStorage.swift) keep the same layout with
// narrower elements (a panel row is then 32 bytes). int8 interleaves 4 consecutive k per column
// instead, the operand of the integer dot products (Int8DotKernel.swift): panel p holds W[16p + j, k]
// at p·16K4 + 16·4⌊k/4⌋ + 4j + k mod 4, with K padded with zeros to K4, a multiple of 4.

/// Output columns per panel: two AVX2 registers of 8 floats.
let panelWidth = 16

/// A weight matrix W (N, K) in PyTorch's (out, in) layout: N outputs, K inputs.
public final class WeightMatrix: @unchecked Sendable {
    /// Outputs (rows of W).
    public let outputs: Int
    /// Inputs (columns of W).
    public let inputs: Int
    /// ⌈outputs / 16⌉.
    let panelCount: Int
    /// Consecutive k stored side by side per column in a panel: 4 for int8, else 1.
    let kGroup: Int
    /// Inputs padded to a multiple of `kGroup`: a panel holds 16 · paddedInputs elements.
    let paddedInputs: Int

    /// The format the weights are stored in.
    public let format: WeightFormat

    enum Storage {
        /// panelCount × (K, 16) elements each (int8: (K4, 16) in groups of 4 k), 64-byte aligned.
        case float32Panels(UnsafeMutablePointer<Float>)
        case float16Panels(UnsafeMutablePointer<UInt16>)
        case bfloat16Panels(UnsafeMutablePointer<UInt16>)
        /// Integers q and one scale per output (panelCount × 16 floats, 0 past N): W[n, k] ≈ q · scale[n].
        case int8Panels(UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>)
    }
    let storage: Storage
    private let allocation: UnsafeMutableRawPointer

    /// Repacks a checkpoint tensor of shape (N, K) into `format`, splitting the work over `threads`. An
    /// empty tensor (the reader's placeholder for a missing one, before `finish()` reports it) gives an
    /// empty matrix.
    public convenience init(_ tensor: FloatTensor, format: WeightFormat = .float32, threads: Int) {
        self.init(stacking: [tensor], format: format, threads: threads)
    }

    /// One matrix of the tensors' rows one after another: (N₁ + N₂ + …, K) from tensors (Nᵢ, K), so that
    /// projections of the same input (q, k, v) run as one product. Each output column keeps its own
    /// FMA chain, so the stacked product computes exactly the numbers of the separate ones. Any empty
    /// tensor (a missing one) gives an empty matrix.
    public init(stacking tensors: [FloatTensor], format: WeightFormat = .float32, threads: Int) {
        precondition(!tensors.isEmpty, "nothing to stack")
        for tensor in tensors {
            precondition(tensor.shape.count == 2 || tensor.count == 0, "a weight matrix needs a 2-D tensor, got shape \(tensor.shape)")
        }
        let complete = tensors.allSatisfy { $0.shape.count == 2 && $0.count > 0 }
        let K = complete ? tensors[0].shape[1] : 0
        precondition(tensors.allSatisfy { !complete || $0.shape[1] == K }, "stacked tensors differ in inputs: \(tensors.map(\.shape))")
        // Row n of the stacked matrix, wherever it lives.
        let rows: [UnsafePointer<Float>] = complete ? tensors.flatMap { tensor in
            (0..<tensor.shape[0]).map { tensor.pointer + $0 * K }
        } : []
        let N = rows.count
        outputs = N
        inputs = K
        self.format = format
        panelCount = (N + panelWidth - 1) / panelWidth
        kGroup = format == .int8 ? 4 : 1
        paddedInputs = (K + kGroup - 1) / kGroup * kGroup
        let elements = panelCount * paddedInputs * panelWidth
        let scaleBytes = format == .int8 ? panelCount * panelWidth * MemoryLayout<Float>.size : 0
        // The scales follow the panels, at a 64-byte boundary.
        let panelBytes = (elements * format.elementBytes + 63) / 64 * 64
        allocation = UnsafeMutableRawPointer.allocate(byteCount: max(64, panelBytes + scaleBytes), alignment: 64)
        switch format {
        case .float32:
            let panels = allocation.bindMemory(to: Float.self, capacity: elements)
            repack(rows, K: K, kGroup: 1, into: panels, threads: threads) { value, _ in value }
            storage = .float32Panels(panels)
        case .float16:
            let panels = allocation.bindMemory(to: UInt16.self, capacity: elements)
            repack(rows, K: K, kGroup: 1, into: panels, threads: threads) { value, _ in float16Bits(value) }
            storage = .float16Panels(panels)
        case .bfloat16:
            let panels = allocation.bindMemory(to: UInt16.self, capacity: elements)
            repack(rows, K: K, kGroup: 1, into: panels, threads: threads) { value, _ in bfloat16Bits(value) }
            storage = .bfloat16Panels(panels)
        case .int8:
            let scales = (allocation + panelBytes).bindMemory(to: Float.self, capacity: panelCount * panelWidth)
            scales.initialize(repeating: 0, count: panelCount * panelWidth)
            let parts = N * K < (1 << 18) ? 1 : max(1, threads)
            parallelFor(parts, threads: threads) { part in
                for n in (N * part / parts)..<(N * (part + 1) / parts) { scales[n] = int8Scale(rows[n], count: K) }
            }
            let panels = allocation.bindMemory(to: Int8.self, capacity: elements)
            repack(rows, K: K, kGroup: 4, into: panels, threads: threads) { value, n in int8Quantized(value, scale: scales[n]) }
            storage = .int8Panels(panels, scales: scales)
        }
        for tensor in tensors { releaseFilePages(tensor.buffer) }
    }

    deinit { allocation.deallocate() }

    /// Row n of W (an embedding lookup), as the kernel computes with it: out[k] = W[n, k] for k in 0..<K
    /// (for int8, q · scale).
    func copyRow(_ n: Int, into out: UnsafeMutablePointer<Float>) {
        let scale = storedRow(n, into: out)
        if format == .int8 { for k in 0..<inputs { out[k] *= scale } }
    }

    /// Row n of W as stored, widened to floats (for int8 the integers q), and the row's int8 scale (1 in
    /// other formats).
    func storedRow(_ n: Int, into out: UnsafeMutablePointer<Float>) -> Float {
        precondition(n >= 0 && n < outputs, "row \(n) outside a matrix of \(outputs) rows")
        let (panel, column) = (n / panelWidth, n % panelWidth)
        let position = { k in panelOffset(panel: panel, column: column, k: k, paddedK: self.paddedInputs, kGroup: self.kGroup) }
        switch storage {
        case .float32Panels(let panels):
            for k in 0..<inputs { out[k] = panels[position(k)] }
        case .float16Panels(let panels):
            for k in 0..<inputs { out[k] = Float(Float16(bitPattern: panels[position(k)])) }
        case .bfloat16Panels(let panels):
            for k in 0..<inputs { out[k] = Float(bitPattern: UInt32(panels[position(k)]) << 16) }
        case .int8Panels(let panels, let scales):
            for k in 0..<inputs { out[k] = Float(panels[position(k)]) }
            return scales[n]
        }
        return 1
    }

    /// Bytes of the stored weights (and int8 scales).
    public var byteSize: Int {
        panelCount * paddedInputs * panelWidth * format.elementBytes + (format == .int8 ? panelCount * panelWidth * MemoryLayout<Float>.size : 0)
    }
}

/// Where W[16·panel + column, k] is stored, in panels of 16 · paddedK elements with `kGroup`
/// consecutive k side by side per column.
@inline(__always) func panelOffset(panel: Int, column: Int, k: Int, paddedK: Int, kGroup: Int) -> Int {
    panel * paddedK * panelWidth + (k / kGroup) * kGroup * panelWidth + column * kGroup + k % kGroup
}

/// Writes W (N, K), given as its N rows, as k-major panels of 16 columns (zero past N and past K),
/// `kGroup` consecutive k side by side per column, each element through `convert` (value, output row
/// n), panels split over `threads`. Each panel is written in address order, reading its 16 rows side by side.
@inline(__always)
private func repack<Stored>(_ rows: [UnsafePointer<Float>], K: Int, kGroup: Int, into panels: UnsafeMutablePointer<Stored>,
                            threads: Int, _ convert: (Float, Int) -> Stored) {
    let N = rows.count
    let panelCount = (N + panelWidth - 1) / panelWidth
    let paddedK = (K + kGroup - 1) / kGroup * kGroup
    let zero = convert(0, 0)
    let parts = panelCount * paddedK * panelWidth < (1 << 18) ? 1 : max(1, min(threads, panelCount))
    rows.withUnsafeBufferPointer { rows in
        parallelFor(parts, threads: threads) { part in
            for panel in (panelCount * part / parts)..<(panelCount * (part + 1) / parts) {
                let columns = min(panelWidth, N - panel * panelWidth)
                let first = panel * panelWidth
                // panelOffset's order: groups of k, columns, k within the group.
                var out = panels + panel * paddedK * panelWidth
                for group in stride(from: 0, to: paddedK, by: kGroup) {
                    for j in 0..<panelWidth {
                        for k in group..<(group + kGroup) {
                            out.initialize(to: j < columns && k < K ? convert(rows[first + j][k], first + j) : zero)
                            out += 1
                        }
                    }
                }
            }
        }
    }
}

// MARK: - Resident memory

/// Drops the pages of a memory-mapped checkpoint tensor from this process's resident set once it has
/// been repacked: otherwise the process holds every weight twice (the panels and the mapped file).
/// The pages stay in the page cache, so a later read (a task head reading the checkpoint) costs no
/// I/O. Only file mappings are touched (MADV_DONTNEED would zero an anonymous copy).
private func releaseFilePages(_ buffer: UnsafeBufferPointer<Float>) {
    #if os(Linux)
    guard let base = buffer.baseAddress, buffer.count > 0 else { return }
    let start = UInt(bitPattern: base)
    let end = start + UInt(buffer.count * MemoryLayout<Float>.size)
    guard isFileMapping(start..<end) else { return }
    let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
    let first = (start + page - 1) / page * page, last = end / page * page
    guard last > first, let address = UnsafeMutableRawPointer(bitPattern: first) else { return }
    _ = madvise(address, Int(last - first), Int32(MADV_DONTNEED))
    #endif
}

/// Whether `range` lies inside one mapping of a file, per /proc/self/maps
/// ("start-end perms offset dev inode path").
private func isFileMapping(_ range: Range<UInt>) -> Bool {
    guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return false }
    for line in maps.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 6, fields[4] != "0", fields[5].hasPrefix("/") else { continue }
        let bounds = fields[0].split(separator: "-").compactMap { UInt($0, radix: 16) }
        if bounds.count == 2, bounds[0] <= range.lowerBound, range.upperBound <= bounds[1] { return true }
    }
    return false
}
