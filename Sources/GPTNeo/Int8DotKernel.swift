import CInt8Dot
import Foundation

// Products with int8 weights as integer dot products, as llama.cpp multiplies Q8_0 weights by Q8_0
// activations and ONNX Runtime's dynamically quantized MatMulInteger does: each activation row is
// quantized to int8 per block of 32 consecutive k with one float scale per block, a pure function of
// that row (so a row's result never depends on the other rows or on how a prompt was chunked); each
// block's dot product with a weight column is an exact int32 (VPDPBUSD where the CPU has AVX-VNNI,
// else VPMADDUBSW + VPMADDWD); the blocks are summed in float by one FMA chain in block order, × the
// column's weight scale, + bias. The arithmetic, the weight layout and the tiles are in
// Sources/CInt8Dot/int8dot.h; this file quantizes the rows, picks the instruction set and splits the
// columns over threads.
//
// Why integers: widening int8 weights to floats costs two instructions per 8 weights on the vector
// ports before the FMA itself, so int8 ran no faster than float32 once compute-bound (many streams);
// an integer dot product does the multiply and the first additions of 32 weights in the same ports.

// MARK: - Instruction set

/// The int8 kernel codes, slowest first; a CPU that runs one runs those before it.
enum Int8Kernel: String, CaseIterable, Sendable {
    case portable, avx2, vnni

    var code: gptneo_int8_kernel {
        switch self {
        case .portable: GPTNEO_INT8_PORTABLE
        case .avx2: GPTNEO_INT8_AVX2
        case .vnni: GPTNEO_INT8_VNNI
        }
    }

    /// The fastest code this build has and this CPU runs.
    static let best: Int8Kernel = switch gptneo_int8_best_kernel() {
    case GPTNEO_INT8_VNNI: .vnni
    case GPTNEO_INT8_AVX2: .avx2
    default: .portable
    }

    /// Whether this build and CPU can run it (every code gives the same bits, so any of them will do).
    var isAvailable: Bool { Int8Kernel.allCases.firstIndex(of: self)! <= Int8Kernel.allCases.firstIndex(of: Int8Kernel.best)! }

    /// The code every int8 product uses, decided once per process: the best, unless the environment
    /// variable GPTNEO_INT8_KERNEL=portable|avx2|vnni names another (to time one against another).
    /// Naming one this CPU cannot run stops the process with the reason rather than with SIGILL.
    static let inUse: Int8Kernel = {
        guard let name = ProcessInfo.processInfo.environment["GPTNEO_INT8_KERNEL"], !name.isEmpty else { return best }
        guard let kernel = Int8Kernel(rawValue: name) else {
            fatalError("GPTNEO_INT8_KERNEL=\(name): expected one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard kernel.isAvailable else { fatalError("GPTNEO_INT8_KERNEL=\(name): this build or CPU runs at most \(best.rawValue)") }
        return kernel
    }()
}

// MARK: - Product

/// Panels handed to a thread at a time (as the float kernel's groups: they stay in L2 across row tiles).
private let int8PanelGroup = 6

/// y = x · Wᵀ + bias for int8 W: x (M, K), bias (N) or nil, y (M, N), row-major.
func int8MatMul(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: WeightMatrix,
                _ bias: UnsafePointer<Float>?, M: Int, threads: Int, kernel: Int8Kernel = .inUse) {
    precondition(kernel.isAvailable, "int8 kernel \(kernel.rawValue) on a CPU that runs at most \(Int8Kernel.best.rawValue)")
    guard case .int8Panels(let panels, let scales) = weight.storage else { preconditionFailure("int8MatMul of \(weight.format) weights") }
    let (N, K, K4) = (weight.outputs, weight.inputs, weight.paddedInputs)
    let blocks = (K + Int(GPTNEO_INT8_BLOCK) - 1) / Int(GPTNEO_INT8_BLOCK)
    let scratch = activationScratch.take(bytes: M * K4 + M * blocks * MemoryLayout<Float>.size)
    defer { activationScratch.give(scratch) }
    let xs = scratch.start.bindMemory(to: Float.self, capacity: M * blocks)
    let xq = (scratch.start + M * blocks * MemoryLayout<Float>.size).bindMemory(to: Int8.self, capacity: M * K4)

    let rowParts = M * K < (1 << 16) ? 1 : min(M, threads)
    parallelFor(rowParts, threads: threads) { part in
        for m in (M * part / rowParts)..<(M * (part + 1) / rowParts) {
            quantizeActivationRow(x + m * K, K: K, K4: K4, into: xq + m * K4, scales: xs + m * blocks, for: kernel)
        }
    }
    let groups = (weight.panelCount + int8PanelGroup - 1) / int8PanelGroup
    let parts = M * N * K < (1 << 17) ? 1 : min(groups, threads * 4)
    // Any split of the column groups gives the same numbers; several parts per thread balance load
    // on a machine shared with other work.
    parallelFor(parts, threads: threads) { part in
        let first = groups * part / parts * int8PanelGroup
        let last = min(weight.panelCount, groups * (part + 1) / parts * int8PanelGroup)
        gptneo_int8_multiply_panels(kernel.code, y, M, N, xq, xs, K4, blocks, panels, scales, bias, first, last)
    }
}

/// One activation row x (K) quantized for `kernel` into q (K4) and scales (⌈K/32⌉), as int8dot.h
/// defines it. Compiled here, in the module built for the target CPU, so it runs the AVX2 code.
func quantizeActivationRow(_ x: UnsafePointer<Float>, K: Int, K4: Int, into q: UnsafeMutablePointer<Int8>,
                           scales: UnsafeMutablePointer<Float>, for kernel: Int8Kernel) {
    gptneo_int8_quantize_row(kernel.code, x, K, K4, q, scales)
}

// MARK: - Scratch for quantized activations

/// Buffers for the quantized rows, reused across calls so a decode step allocates nothing; a pool
/// rather than one buffer because separate engines (generation, task heads) may multiply at once.
private final class ScratchPool: @unchecked Sendable {
    struct Buffer { let start: UnsafeMutableRawPointer; let capacity: Int }
    private let lock = NSLock()
    private var free: [Buffer] = []

    func take(bytes: Int) -> Buffer {
        lock.lock()
        let reused = free.popLast()
        lock.unlock()
        if let reused, reused.capacity >= bytes { return reused }
        if let reused { reused.start.deallocate() }
        let capacity = max(bytes, 4096)
        return Buffer(start: .allocate(byteCount: capacity, alignment: 64), capacity: capacity)
    }

    func give(_ buffer: Buffer) {
        lock.lock()
        free.append(buffer)
        lock.unlock()
    }
}

private let activationScratch = ScratchPool()
