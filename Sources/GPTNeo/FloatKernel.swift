import CFloat512
import Foundation

// Float products (float32, float16, bfloat16 weights) on CPUs with AVX-512F: the same panels and the same
// FMA chain per output element as the AVX2 tiles in MatMul.swift, in 512-bit registers (Sources/CFloat512/float512.h). Where the product
// is compute-bound (several rows per weight) a 512-bit FMA does twice the work of a 256-bit one. Where the
// weight stream from memory limits it (a decode step of 2-8 sequences), one tile of all rows walking one
// panel at a time, prefetching the next, streams better than the AVX2 tiles, whose remainder rows walk
// several panels: a decode step of 7 sequences 21 % shorter, of 8 10 %, of 2-6 within 2 % (alternated in
// one run at ~50 GB/s). One row of 16-bit weights takes that tile too, where widening 16 weights is one
// instruction instead of two: a decode step of one sequence 5 % shorter in bfloat16, 2-3 % in float16
// (alternated in one run at ~50 GB/s). One row of float32 weights keeps the AVX2 tile over six panels
// (OneRowTile.swift), tuned for streaming, which the 512-bit tile did not beat (4 % slower at ~50 GB/s,
// 3-5 % faster at ~80).

/// The codes float products and attention (AttentionWideKernels.swift) run on, slowest first.
@_spi(Benchmarks) public enum FloatKernel: String, KernelCode {
    case avx2, avx512

    /// Rows from which float products of weights in `format` take the AVX-512 code where the CPU has it.
    static func wideMinimumRows(_ format: WeightFormat) -> Int { format == .float32 ? 2 : 1 }

    /// AVX-512F if this CPU and OS run it.
    public static let best: FloatKernel = gptneo_cpu_has_avx512f() != 0 ? .avx512 : .avx2

    static let environmentVariable = "GPTNEO_FLOAT_KERNEL"

    /// The code every float product uses, decided once per process.
    public static let inUse = chosen()
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
    let pairBytes = widePairBytes(rows: M)
    forEachPanelRange(panelCount, inGroupsOf: 2, work: M * N * K, threads: threads) { range in
        gptneo_f512_multiply_panels(format, y, x, weights, bias, M, K, N, range.lowerBound, range.upperBound, pairBytes)
    }
}

/// The most bytes of a pair of panels that the row tiles of a product of more than 64 rows walk together
/// (`widePairBytes`); benchmarks set it to compare sizes in one process (EngineBenchmark `pairbytes`).
@_spi(Benchmarks) nonisolated(unsafe) public var wideManyRowsPairBytes = 512 << 10

/// The most bytes of a pair of panels that row tiles walk together before the pair is split into blocks
/// of k (float512.h). Up to 64 rows (decode steps, weights streamed from memory), a quarter of a 1 MiB
/// L2, which then also holds the next pair's prefetch and the rows' x (for a decode batch of 32 rows, the
/// 125M model's c_proj: 196 KB of each, against 384 KB of each in one block, over L2 with the pair);
/// past 32 rows, proportionally less, so that the rows' x over a block stays within about a quarter too
/// (64 rows: c_proj in 3 blocks, 262 KB of x and 131 KB of the pair each, where 2 blocks held 393 and
/// 196 KB). Decode steps of 64 sequences at 64 positions (`EngineBenchmark contexts`), 4 passes
/// alternated: 1.13-1.21× the tokens/s of 2 blocks (48 sequences, 3 blocks against 2: 0.94-1.18×);
/// served, 64 streams × 64 tokens, 4 rounds alternated: 1.00-1.14× (median 1.06). The blocks carry each
/// chain's partial sum through y, so the bits are the same.
/// With more rows (prefill), half, so that the 125M model's c_proj (a 384 KB pair) runs unsplit: its
/// 512-row product unsplit ran 14-29 % faster than in two blocks in a C harness (4 runs of 9 alternated
/// rounds), and a 512-token forward 1-3.5 % faster (medians of the ratios of 12, 24 and 24 pairs
/// alternated in one process; the 1.3B model's forward, whose c_proj goes from 4 blocks to 2, 0.9 %, 8
/// pairs).
func widePairBytes(rows: Int) -> Int { rows <= 64 ? (256 << 10) * 32 / max(rows, 32) : wideManyRowsPairBytes }
