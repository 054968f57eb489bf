import CFloat512
import CInt8Dot
import Foundation

// Products with int8 weights as integer dot products, as llama.cpp multiplies Q8_0 weights by Q8_0
// activations and ONNX Runtime's dynamically quantized MatMulInteger does: each activation row is
// quantized to int8 per block of 32 consecutive k with one float scale per block, a pure function of
// that row (so a row's result never depends on the other rows or on how a prompt was chunked); each
// block's dot product with a weight column is an exact int32 (VPDPBUSD where the CPU has AVX-VNNI or
// AVX512-VNNI, in 512-bit registers for 8 rows or more; else VPMADDUBSW + VPMADDWD); the blocks are
// summed in float by one FMA chain in block order, × the column's weight scale, + bias. The
// arithmetic, the weight layout and the tiles are in Sources/CInt8Dot/int8dot.h; this file quantizes
// the rows, picks the instruction set and splits the columns over threads.
//
// Why integers: widening int8 weights to floats costs two instructions per 8 weights on the vector
// ports before the FMA itself, so int8 ran no faster than float32 once compute-bound (many streams);
// an integer dot product does the multiply and the first additions of 32 weights in the same ports.

// MARK: - Instruction set

/// The int8 kernel codes, slowest first. A CPU may run a later one and not an earlier: AVX512-VNNI CPUs
/// without AVX-VNNI (the VEX form) are common, so each code's availability is its own CPUID check.
enum Int8Kernel: String, KernelCode {
    case portable, avx2, vnni, avx512vnni

    var code: gptneo_int8_kernel {
        switch self {
        case .portable: GPTNEO_INT8_PORTABLE
        case .avx2: GPTNEO_INT8_AVX2
        case .vnni: GPTNEO_INT8_VNNI
        case .avx512vnni: GPTNEO_INT8_VNNI512
        }
    }

    var isAvailable: Bool { Self.runnable.contains(self) }

    /// The codes this build and CPU run, found once: every product checks, and CPUID is slow (in a
    /// virtual machine, a trap to the hypervisor).
    private static let runnable = allCases.filter(\.runsHere)

    private var runsHere: Bool {
        guard gptneo_int8_kernel_built(code) != 0 else { return false }
        switch self {
        case .portable, .avx2: return true
        case .vnni: return gptneo_int8_cpu_has_avx_vnni() != 0
        case .avx512vnni: return gptneo_cpu_has_avx512f() != 0 && gptneo_int8_cpu_has_avx512_vnni_subsets() != 0
        }
    }

    /// The fastest code this build has and this CPU runs.
    static let best = allCases.last(where: \.isAvailable)!

    static let environmentVariable = "GPTNEO_INT8_KERNEL"

    /// The code every int8 product uses, decided once per process.
    static let inUse = chosen()
}

// MARK: - Product

/// Panels handed to a thread at a time (as the float kernel's groups: they stay in L2 across row tiles).
private let int8PanelGroup = 6

/// y = x · Wᵀ + bias for int8 W: x (M, K), bias (N) or nil, y (M, N), row-major.
func int8MatMul(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: WeightMatrix,
                _ bias: UnsafePointer<Float>?, M: Int, threads: Int, kernel: Int8Kernel = .inUse) {
    precondition(kernel.isAvailable, "int8 kernel \(kernel.rawValue) on a CPU (or build) that does not run it")
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
    forEachPanelRange(weight.panelCount, inGroupsOf: int8PanelGroup, work: M * N * K, threads: threads) { range in
        gptneo_int8_multiply_panels(kernel.code, y, M, N, xq, xs, K4, blocks, panels, scales, bias, range.lowerBound, range.upperBound)
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
