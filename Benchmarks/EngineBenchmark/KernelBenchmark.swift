import CFMAPeak
import COpenBLAS
import Foundation
@_spi(Benchmarks) import GPTNeo

// GFLOP/s of y = x · Wᵀ + b on the 125M model's shapes, for the engine's kernel (weights in the format
// GPTNEO_DTYPE / GPTNEO_QUANTIZATION select, float32 by default), the baseline kernel it replaced, and OpenBLAS sgemm (its own threads, the same count) as the machine's ceiling anchor.
// The three run interleaved, repetition by repetition, so noise from other work hits all of them.
// GFLOP/s are per CPU-second (user + system time of the process): on a machine shared with other work,
// wall time counts the time other processes held the cores, CPU time does not. With one thread this
// is the per-core rate; with more, OpenBLAS's spinning workers would count against sgemm.

/// (K, N) of one transformer block's products: q, k, v, out_proj, c_fc, c_proj.
let blockShapes = [(768, 768), (768, 768), (768, 768), (768, 768), (768, 3072), (3072, 768)]
let lmHeadShape = (768, 50257)
/// The 12 blocks of the 125M model, each with its own weights: 340 MB, far more than the caches, so
/// every call streams its weights from memory as in the engine (one block's 28 MB stays in L3).
let modelBlockShapes = Array([[(Int, Int)]](repeating: blockShapes, count: 12).joined())

struct KernelTimes { var baseline: [Double] = [], engine: [Double] = [], sgemm: [Double] = [] }

func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int32(truncatingIfNeeded: state >> 33)) / Float(Int32.max) * 0.05
    }
}

/// CPU seconds per call of each kernel over `shapes` with M rows: the median of `repetitions`, each
/// the mean of `calls` calls.
func timeKernels(shapes: [(Int, Int)], M: Int, format: WeightFormat, threads: Int, repetitions: Int,
                 calls: Int) -> (baseline: Double, engine: Double, sgemm: Double) {
    let weights = shapes.enumerated().map { index, shape in
        FloatTensor(shape: [shape.1, shape.0], values: randomFloats(shape.0 * shape.1, seed: UInt64(index + 1)))
    }
    let matrices = weights.map { WeightMatrix($0, format: format, threads: threads) }
    let biases = shapes.map { FloatTensor(shape: [$0.1], values: randomFloats($0.1, seed: 99)) }
    let maxK = shapes.map(\.0).max()!, maxN = shapes.map(\.1).max()!
    let x = randomFloats(M * maxK, seed: 7)
    var y = [Float](repeating: 0, count: M * maxN)
    openblas_set_num_threads(Int32(threads))
    var times = KernelTimes()
    for repetition in 0...repetitions {
        x.withUnsafeBufferPointer { xs in
            y.withUnsafeMutableBufferPointer { ys in
                let (x, y) = (xs.baseAddress!, ys.baseAddress!)
                let baseline = cpuTime(calls) {
                    for (i, (K, N)) in shapes.enumerated() { baselineMatMul(y, x, weights[i].pointer, biases[i].pointer, M: M, K: K, N: N, threads: threads) }
                }
                let engine = cpuTime(calls) {
                    for i in shapes.indices { matMul(y, x, matrices[i], biases[i], M: M, threads: threads) }
                }
                let sgemm = cpuTime(calls) {
                    for (i, (K, N)) in shapes.enumerated() {
                        // Bias first, then y += x · Wᵀ (beta 1): the same work as the kernels.
                        for m in 0..<M { (y + m * N).update(from: biases[i].pointer, count: N) }
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(M), Int32(N), Int32(K),
                                    1, x, Int32(K), weights[i].pointer, Int32(K), 1, y, Int32(N))
                    }
                }
                if repetition > 0 {  // the first is warm-up
                    times.baseline.append(baseline); times.engine.append(engine); times.sgemm.append(sgemm)
                }
            }
        }
    }
    return (median(times.baseline), median(times.engine), median(times.sgemm))
}

/// CPU seconds one call of `body` takes, the mean of `calls`.
func cpuTime(_ calls: Int, _ body: () -> Void) -> Double {
    let clocks = CPUClocks()
    for _ in 0..<calls { body() }
    return clocks.elapsed() / Double(calls)
}

/// GFLOP/s per CPU-second of one core doing nothing but FMAs from registers: `chains(steps)` runs `steps`
/// FMAs on each of 12 independent chains of `lanes` floats (enough to hide the FMA latency on both FMA
/// units), the most any kernel of that width can reach. It returns the chains' sum, checked to be finite.
func fmaPeak(lanes: Int, _ chains: (Int) -> Float) -> Double {
    let steps = 20_000_000
    var sum: Float = 0
    let time = cpuTime(1) { sum = chains(steps) }
    precondition(sum.isFinite)
    return Double(steps * 12 * lanes * 2) / time / 1e9
}

/// The AVX2 chains of fmaPeak, in Swift's 8-lane vectors (the build's target).
@inline(never) func avx2FMAChains(steps: Int, seed: Float) -> Float {
    var chains = (0..<12).map { SIMD8<Float>(repeating: seed * Float($0)) }
    let (scale, offset) = (SIMD8<Float>(repeating: 1 - seed * 1e-6), SIMD8<Float>(repeating: seed))
    chains.withUnsafeMutableBufferPointer { c in
        var (a0, a1, a2, a3, a4, a5) = (c[0], c[1], c[2], c[3], c[4], c[5])
        var (a6, a7, a8, a9, a10, a11) = (c[6], c[7], c[8], c[9], c[10], c[11])
        for _ in 0..<steps {
            a0 = a0.addingProduct(scale, offset); a1 = a1.addingProduct(scale, offset); a2 = a2.addingProduct(scale, offset)
            a3 = a3.addingProduct(scale, offset); a4 = a4.addingProduct(scale, offset); a5 = a5.addingProduct(scale, offset)
            a6 = a6.addingProduct(scale, offset); a7 = a7.addingProduct(scale, offset); a8 = a8.addingProduct(scale, offset)
            a9 = a9.addingProduct(scale, offset); a10 = a10.addingProduct(scale, offset); a11 = a11.addingProduct(scale, offset)
        }
        (c[0], c[1], c[2], c[3], c[4], c[5]) = (a0, a1, a2, a3, a4, a5)
        (c[6], c[7], c[8], c[9], c[10], c[11]) = (a6, a7, a8, a9, a10, a11)
    }
    return chains.reduce(.zero, +).sum()
}

/// One core's FMA peaks, AVX2 and (where the CPU has it, as the engine's float kernel then uses it) AVX-512.
func fmaPeaksLine() -> String {
    func peak(lanes: Int, _ chains: (Int) -> Float) -> String {
        format(median((0..<5).map { _ in fmaPeak(lanes: lanes, chains) }))
    }
    var line = "one core's FMA peak, GFLOP/s per CPU-second (registers only): AVX2 \(peak(lanes: 8) { avx2FMAChains(steps: $0, seed: 0.5) })"
    if FloatKernel.best == .avx512 {
        line += ", AVX-512 \(peak(lanes: 16) { gptneo_fma512_chains($0, 0.5) })"
    }
    return line
}

func runKernelBenchmark(threads: Int, weightFormat: WeightFormat) {
    print(fmaPeaksLine())
    print("matmul GFLOP/s per CPU-second (median, \(threads) thread(s)): baseline = previous kernel, engine = panel kernel with \(weightFormat) weights, "
          + "sgemm = OpenBLAS with its \(String(cString: openblas_get_corename())) kernels (OPENBLAS_CORETYPE chooses others, e.g. SKYLAKEX)")
    print("| shape | M | baseline | engine | sgemm | engine / baseline | engine / sgemm | engine: weight GB/CPU-s |")
    print("|---|---|---|---|---|---|---|---|")
    // GPTNEO_ROWS=2,8,16 (comma-separated) replaces every shape's row counts.
    let rows = ProcessInfo.processInfo.environment["GPTNEO_ROWS"].map { $0.split(separator: ",").compactMap { Int($0) } }
    // One 576 KB matrix that stays in L2: the tiles' arithmetic alone, without the wait for memory.
    for (name, shapes, rowCounts) in [("in L2 (768 × 192)", [(768, 192)], [1, 8, 32]),
                                      ("block (6 products)", blockShapes, [1, 8, 32, 64, 512]),
                                      ("12 blocks (from memory)", modelBlockShapes, [1, 8, 32, 64]),
                                      ("LM head", [lmHeadShape], [1, 8, 32, 64])] {
        for M in rows ?? rowCounts {
            let flops = Double(shapes.reduce(0) { $0 + 2 * M * $1.0 * $1.1 })
            let calls = max(1, Int(2e8 / flops))  // about 2 ms of work per measurement
            let t = timeKernels(shapes: shapes, M: M, format: weightFormat, threads: threads, repetitions: M >= 512 ? 5 : 11, calls: calls)
            let (baseline, engine, sgemm) = (flops / t.baseline / 1e9, flops / t.engine / 1e9, flops / t.sgemm / 1e9)
            let weightBytes = Double(shapes.reduce(0) { $0 + weightFormat.elementBytes * $1.0 * $1.1 })
            print("| \(name) | \(M) | \(format(baseline)) | \(format(engine)) | \(format(sgemm)) | \(format(engine / baseline, 2))× "
                  + "| \(format(engine / sgemm, 2))× | \(format(weightBytes / t.engine / 1e9)) |")
        }
    }
}
