import CPrefetch
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
    private let memory: WeightBuffer

    /// Repacks a tensor of shape (N, K) into `format`, splitting the work over `threads`; `hugePages`
    /// asks for transparent huge pages (WeightBuffer.swift).
    public convenience init(_ tensor: FloatTensor, format: WeightFormat = .float32, threads: Int, hugePages: Bool = false) {
        self.init(stacking: [tensor.elements], format: format, threads: threads, hugePages: hugePages)
    }

    /// One matrix of the tensors' rows one after another: (N₁ + N₂ + …, K) from tensors (Nᵢ, K), so that
    /// projections of the same input (q, k, v) run as one product. Each output column keeps its own
    /// FMA chain, so the stacked product computes exactly the numbers of the separate ones.
    public convenience init(stacking tensors: [FloatTensor], format: WeightFormat = .float32, threads: Int, hugePages: Bool = false) {
        self.init(stacking: tensors.map(\.elements), format: format, threads: threads, hugePages: hugePages)
    }

    /// A checkpoint tensor of shape (N, K), read in place in its stored dtype.
    convenience init(_ source: TensorElements, format: WeightFormat, threads: Int, hugePages: Bool = false) {
        self.init(stacking: [source], format: format, threads: threads, hugePages: hugePages)
    }

    /// Repacks checkpoint tensors (Nᵢ, K), read in place in their stored dtype, stacked into one matrix
    /// (N₁ + N₂ + …, K) in `format`, splitting the work over `threads`; then releases the file's pages.
    /// Any empty tensor (the reader's placeholder for a missing one, before `finish()` reports it) gives
    /// an empty matrix.
    init(stacking sources: [TensorElements], format: WeightFormat, threads: Int, hugePages: Bool = false) {
        precondition(!sources.isEmpty, "nothing to stack")
        for source in sources {
            precondition(source.shape.count == 2 || source.count == 0, "a weight matrix needs a 2-D tensor, got shape \(source.shape)")
        }
        let complete = sources.allSatisfy { $0.shape.count == 2 && $0.count > 0 }
        let K = complete ? sources[0].shape[1] : 0
        precondition(sources.allSatisfy { !complete || $0.shape[1] == K }, "stacked tensors differ in inputs: \(sources.map(\.shape))")
        let N = complete ? sources.reduce(0) { $0 + $1.shape[0] } : 0
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
        memory = WeightBuffer(byteCount: panelBytes + scaleBytes, threads: threads, hugePages: hugePages)
        let allocation = memory.start
        switch format {
        case .float32: storage = .float32Panels(allocation.bindMemory(to: Float.self, capacity: elements))
        case .float16: storage = .float16Panels(allocation.bindMemory(to: UInt16.self, capacity: elements))
        case .bfloat16: storage = .bfloat16Panels(allocation.bindMemory(to: UInt16.self, capacity: elements))
        case .int8:
            let scales = (allocation + panelBytes).bindMemory(to: Float.self, capacity: panelCount * panelWidth)
            scales.initialize(repeating: 0, count: panelCount * panelWidth)
            storage = .int8Panels(allocation.bindMemory(to: Int8.self, capacity: elements), scales: scales)
        }
        fillPanels(from: complete ? sources : [], threads: threads)
        for source in sources { source.releasePages() }
    }

    deinit { memory.deallocate() }

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

// MARK: - Repacking

extension WeightMatrix {
    /// Writes every panel from the stacked `sources`, panels split over `threads`. A 16-bit tensor kept
    /// in its own dtype is copied bit for bit; anything else is widened to floats 16 rows at a time
    /// (exact) and narrowed or quantized from there by `writePanel`, so no float32 copy of a tensor exists.
    fileprivate func fillPanels(from sources: [TensorElements], threads: Int) {
        let K = inputs
        // Stacked row n is row n − starts[s] of sources[s], for starts[s] ≤ n < starts[s + 1].
        var starts = [0]
        for source in sources { starts.append(starts.last! + source.shape[0]) }
        func locate(_ n: Int) -> (source: Int, row: Int) {
            var s = 0
            while starts[s + 1] <= n { s += 1 }
            return (s, n - starts[s])
        }
        let sameBits: [UnsafePointer<UInt16>?] = sources.map { source in
            switch storage {
            case .float16Panels: return source.sixteenBitElements(ifStoredAs: .f16)
            case .bfloat16Panels: return source.sixteenBitElements(ifStoredAs: .bf16)
            case .float32Panels, .int8Panels: return nil
            }
        }
        let sameFloats: [UnsafePointer<Float>?] = sources.map { source in
            if case .int8Panels = storage { nil } else { source.float32Elements() }
        }
        let parts = panelCount * K * panelWidth < (1 << 18) ? 1 : max(1, min(threads, panelCount))
        parallelFor(parts, threads: threads) { part in
            // 16 rows of floats: 640 KB at K = 10240, within the L2 cache the panel is written from.
            let rows = UnsafeMutablePointer<Float>.allocate(capacity: max(1, panelWidth * K))
            // 16 k × 16 columns of the widest element, for `transposeFullPanel`.
            let block = UnsafeMutableRawPointer.allocate(byteCount: 16 * panelWidth * MemoryLayout<Float>.stride, alignment: 64)
            defer {
                streamFence()
                rows.deallocate()
                block.deallocate()
            }
            for panel in (panelCount * part / parts)..<(panelCount * (part + 1) / parts) {
                let first = panel * panelWidth, columns = min(panelWidth, outputs - first)
                let (source, row) = locate(first)
                if let bits = sameBits[source], locate(first + columns - 1).source == source {
                    copyPanel(panel, rows: bits + row * K, block: block)
                    continue
                }
                if let floats = sameFloats[source], columns == panelWidth, locate(first + columns - 1).source == source {
                    let panelRows = floats + row * K
                    switch storage {
                    case .float32Panels(let out): transposeFullPanel(panelRows, panel: panel, into: out, block: block) { $0 }
                    case .float16Panels(let out): transposeFullPanel(panelRows, panel: panel, into: out, block: block, float16Bits)
                    case .bfloat16Panels(let out): transposeFullPanel(panelRows, panel: panel, into: out, block: block, bfloat16Bits)
                    case .int8Panels: preconditionFailure("int8 panels group k by 4")
                    }
                    continue
                }
                for j in 0..<columns {
                    let (s, r) = locate(first + j)
                    sources[s].widenRows(r..<(r + 1), into: rows + j * K)
                }
                writePanel(panel, rows: rows)
            }
        }
    }

    /// Writes 16-bit panel `panel` from its rows as stored in the file, bit for bit.
    private func copyPanel(_ panel: Int, rows: UnsafePointer<UInt16>, block: UnsafeMutableRawPointer) {
        switch storage {
        case .float16Panels(let out), .bfloat16Panels(let out):
            #if _endian(little)
            if outputs - panel * panelWidth >= panelWidth {
                transposeFullPanel(rows, panel: panel, into: out, block: block) { $0 }
                return
            }
            #endif
            transposeRows(rows, panel: panel, into: out) { bits, _ in UInt16(littleEndian: bits) }
        case .float32Panels, .int8Panels:
            preconditionFailure("only 16-bit panels hold a file's bits")
        }
    }

    /// Writes panel `panel` from its rows of W as floats (row-major, K each): each weight narrowed to
    /// the stored format, or quantized with its row's scale.
    private func writePanel(_ panel: Int, rows: UnsafePointer<Float>) {
        switch storage {
        case .float32Panels(let out):
            transposeRows(rows, panel: panel, into: out) { value, _ in value }
        case .float16Panels(let out):
            transposeRows(rows, panel: panel, into: out) { value, _ in float16Bits(value) }
        case .bfloat16Panels(let out):
            transposeRows(rows, panel: panel, into: out) { value, _ in bfloat16Bits(value) }
        case .int8Panels(let out, let scales):
            let first = panel * panelWidth
            for j in 0..<min(panelWidth, outputs - first) { scales[first + j] = int8Scale(rows + j * inputs, count: inputs) }
            transposeRows(rows, panel: panel, into: out) { value, j in int8Quantized(value, scale: scales[first + j]) }
        }
    }

    /// Writes panel `panel` of a format with one k per group from its 16 rows in place (row j at
    /// rows + j·K), each element through `convert` (float32 kept or narrowed, 16-bit bits kept), as
    /// `transposeRows` does from a copy of the rows and with a test per element. Here blocks of 16 k are
    /// transposed into a buffer in the cache and written out as whole lines that bypass it (`streamLine`):
    /// an ordinary store would first read each line of the freshly faulted panels from memory. The float32
    /// repack of the 125M model took 0.17 CPU-s this way, 0.38 through `transposeRows` (perf, one load each).
    @inline(__always)
    private func transposeFullPanel<Source, Stored>(
        _ rows: UnsafePointer<Source>, panel: Int, into panels: UnsafeMutablePointer<Stored>, block: UnsafeMutableRawPointer,
        _ convert: (Source) -> Stored
    ) {
        precondition(kGroup == 1 && outputs - panel * panelWidth >= panelWidth, "a full panel of single k")
        let K = inputs
        let out = panels + panel * K * panelWidth
        let buffer = block.bindMemory(to: Stored.self, capacity: 16 * panelWidth)
        for blockStart in stride(from: 0, to: K, by: 16) {
            let count = min(16, K - blockStart)
            for j in 0..<panelWidth {
                let source = rows + j * K + blockStart
                // Four blocks ahead in each of the 16 rows: without it the loads from the mapped file were
                // where the loop stalled. A prefetch past the end of the data never faults.
                prefetchForRead(source + 4 * 16)
                for k in 0..<count { buffer[k * panelWidth + j] = convert(source[k]) }
            }
            let target = UnsafeMutableRawPointer(out + blockStart * panelWidth)
            let bytes = count * panelWidth * MemoryLayout<Stored>.stride
            if Int(bitPattern: target) % 64 == 0, bytes % 64 == 0 {
                for line in stride(from: 0, to: bytes, by: 64) { streamLine(target + line, block + line) }
            } else {
                target.copyMemory(from: block, byteCount: bytes)
            }
        }
    }

    /// Writes panel `panel` in `panelOffset`'s order (zero past N and past K) from its rows (row-major,
    /// K each: the panel's rows of a whole row-major W, or of a scratch copy of them), each element
    /// through `convert` (value, column j of the panel). Written in address order, reading the 16 rows
    /// side by side.
    @inline(__always)
    private func transposeRows<Source: AdditiveArithmetic, Stored>(
        _ rows: UnsafePointer<Source>, panel: Int, into panels: UnsafeMutablePointer<Stored>, _ convert: (Source, Int) -> Stored
    ) {
        let (K, kGroup, paddedK) = (inputs, kGroup, paddedInputs)
        let columns = min(panelWidth, outputs - panel * panelWidth)
        let zero = convert(.zero, 0)
        // panelOffset's order: groups of k, columns, k within the group.
        var out = panels + panel * paddedK * panelWidth
        for group in stride(from: 0, to: paddedK, by: kGroup) {
            for j in 0..<panelWidth {
                for k in group..<(group + kGroup) {
                    out.initialize(to: j < columns && k < K ? convert(rows[j * K + k], j) : zero)
                    out += 1
                }
            }
        }
    }
}
