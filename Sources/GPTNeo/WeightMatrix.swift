import Foundation

// The one type for weight matrices: every product with a weight (the linear layers, the LM head)
// and the token-embedding lookup go through it, so how a matrix is stored is decided here alone.
//
// Layout: W (N, K) is repacked once at load into ⌈N/16⌉ panels of 16 output columns, each panel
// k-major — panel p holds W[16p + j, k] at p·16K + 16k + j (columns past N are zero). The matmul
// kernel then reads one 64-byte line per k per panel, in address order, and broadcasts activations
// against it (see MatMul.swift). A compact storage type (16-bit, int8) is another `Storage` case with
// the same panel layout and its own panel-row load in the kernel.

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

    enum Storage {
        /// panelCount × (K, 16) floats, 64-byte aligned.
        case float32Panels(UnsafeMutablePointer<Float>)
    }
    let storage: Storage

    /// Repacks a checkpoint tensor of shape (N, K), splitting the work over `threads`. An empty tensor
    /// (the reader's placeholder for a missing one, before `finish()` reports it) gives an empty matrix.
    public init(_ tensor: FloatTensor, threads: Int) {
        precondition(tensor.shape.count == 2 || tensor.count == 0, "a weight matrix needs a 2-D tensor, got shape \(tensor.shape)")
        let (N, K) = tensor.shape.count == 2 ? (tensor.shape[0], tensor.shape[1]) : (0, 0)
        outputs = N
        inputs = K
        panelCount = (N + panelWidth - 1) / panelWidth
        let panelFloats = K * panelWidth
        let bytes = max(1, panelCount * panelFloats) * MemoryLayout<Float>.size
        let panels = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64).bindMemory(to: Float.self, capacity: bytes / 4)
        storage = .float32Panels(panels)
        let source = tensor.pointer
        let parts = panelCount * panelFloats < (1 << 18) ? 1 : max(1, min(threads, panelCount))
        let count = panelCount
        parallelFor(parts, threads: threads) { part in
            for panel in (count * part / parts)..<(count * (part + 1) / parts) {
                let out = panels + panel * panelFloats
                let columns = min(panelWidth, N - panel * panelWidth)
                let first = source + panel * panelWidth * K
                // Written in address order, reading the panel's rows side by side.
                for k in 0..<K {
                    for j in 0..<panelWidth { out[k * panelWidth + j] = j < columns ? first[j * K + k] : 0 }
                }
            }
        }
        releaseFilePages(tensor.buffer)
    }

    deinit {
        switch storage {
        case .float32Panels(let panels): UnsafeMutableRawPointer(panels).deallocate()
        }
    }

    /// Row n of W (an embedding lookup): out[k] = W[n, k] for k in 0..<K.
    func copyRow(_ n: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(n >= 0 && n < outputs, "row \(n) outside a matrix of \(outputs) rows")
        switch storage {
        case .float32Panels(let panels):
            let column = panels + (n / panelWidth) * inputs * panelWidth + n % panelWidth
            for k in 0..<inputs { out[k] = column[k * panelWidth] }
        }
    }

    /// Bytes of the stored weights.
    public var byteSize: Int { panelCount * inputs * panelWidth * MemoryLayout<Float>.size }
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
