import CFloat512
import Foundation

// Float products (float32, float16, bfloat16 weights) on CPUs with AVX-512F: the same panels and the same
// FMA chain per output element as the AVX2 tiles in MatMul.swift, in 512-bit registers (Sources/CFloat512/float512.h). Where the product
// is compute-bound (several rows per weight) a 512-bit FMA does twice the work of a 256-bit one; for a few
// rows the weight stream from memory limits both, and the AVX2 path with its tuned prefetch stays.

/// The code float products run on.
@_spi(Benchmarks) public enum FloatKernel: String, CaseIterable, Sendable {
    case avx2, avx512

    /// Rows from which float products take the AVX-512 code where the CPU has it.
    static let wideMinimumRows = 8

    /// AVX-512F if this CPU and OS run it.
    public static let best: FloatKernel = gptneo_cpu_has_avx512f() != 0 ? .avx512 : .avx2

    /// `best`, unless the environment variable GPTNEO_FLOAT_KERNEL=avx2|avx512 names another (to time one
    /// against the other, or to test the AVX2 tiles on a CPU with AVX-512).
    public static let inUse: FloatKernel = {
        guard let name = ProcessInfo.processInfo.environment["GPTNEO_FLOAT_KERNEL"], !name.isEmpty else { return best }
        guard let kernel = FloatKernel(rawValue: name) else {
            fatalError("GPTNEO_FLOAT_KERNEL=\(name): expected one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard kernel == .avx2 || best == .avx512 else { fatalError("GPTNEO_FLOAT_KERNEL=\(name): this CPU has no AVX-512F") }
        return kernel
    }()
}

/// y = x · Wᵀ + bias for float32, float16 or bfloat16 panels with AVX-512F, parallel over pairs of panels.
func wideMatMul(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: WeightMatrix,
                _ bias: UnsafePointer<Float>?, M: Int, threads: Int) {
    let (N, K, panelCount) = (weight.outputs, weight.inputs, weight.panelCount)
    let (format, weights): (Int32, UnsafeRawPointer) = switch weight.storage {
    case .float32Panels(let panels): (GPTNEO_F512_FLOAT32, UnsafeRawPointer(panels))
    case .float16Panels(let panels): (GPTNEO_F512_FLOAT16, UnsafeRawPointer(panels))
    case .bfloat16Panels(let panels): (GPTNEO_F512_BFLOAT16, UnsafeRawPointer(panels))
    case .int8Panels: preconditionFailure("int8 weights are multiplied by int8MatMul")
    }
    let pairs = (panelCount + 1) / 2
    let parts = M * N * K < (1 << 17) ? 1 : min(pairs, threads * 4)
    // Any split of the pairs gives the same numbers; several parts per thread balance load on a machine
    // shared with other work.
    parallelFor(parts, threads: threads) { part in
        let first = pairs * part / parts * 2
        let last = min(panelCount, pairs * (part + 1) / parts * 2)
        gptneo_f512_multiply_panels(format, y, x, weights, bias, M, K, N, first, last)
    }
}
