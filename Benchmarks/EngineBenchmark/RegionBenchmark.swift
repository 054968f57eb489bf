import Foundation
@_spi(Benchmarks) import GPTNeo

// The fixed cost of one parallel region (`parallelFor`): what the engine pays per parallel loop on top
// of the work, about 50 times per decode step of the 125M model (4 products per layer and the LM head;
// attention too once the context is long enough to split). Regions of empty iterations show the bookkeeping; regions of `threads × 4` iterations
// of ~20 µs of arithmetic each (a decode step's product of 768 × 768 is ~100 µs) show the cost of
// waking the workers, as the excess over the same iterations run serially divided by the threads.

func runRegionBenchmark(threads: Int) {
    let regions = 20_000
    var sink = [Float](repeating: 0, count: max(1, threads) * 4 * 16)
    /// ~20 µs of dependent arithmetic: a chain the compiler cannot shorten.
    @inline(never) func work(_ seed: Float) -> Float {
        var x = seed
        for _ in 0..<15_000 { x = x * 0.999_999 + 1e-7 }
        return x
    }
    for (iterations, loaded) in [(threads, false), (threads * 4, false), (threads * 4, true)] {
        let count = loaded ? regions / 40 : regions
        var wall: [Double] = [], cpu: [Double] = []
        for _ in 0..<5 {
            let clocks = CPUClocks()
            wall.append(sink.withUnsafeMutableBufferPointer { buffer in
                let pointer = UncheckedPointer(value: buffer.baseAddress!)
                return seconds {
                    for _ in 0..<count {
                        parallelFor(iterations, threads: threads) { i in
                            pointer.value[i * 16] = loaded ? work(pointer.value[i * 16]) : pointer.value[i * 16] + 1
                        }
                    }
                }
            })
            cpu.append(clocks.elapsed())
        }
        var line = "parallel region of \(iterations) \(loaded ? "~20 µs" : "empty") iterations on \(threads) threads: "
            + "\(format(median(wall) / Double(count) * 1e6, 2)) µs wall, \(format(median(cpu) / Double(count) * 1e6, 2)) µs CPU per region"
        if loaded {
            let serial = seconds { for i in 0..<(count * iterations) { sink[(i % iterations) * 16] = work(sink[(i % iterations) * 16]) } }
            let ideal = serial / Double(count) / Double(threads)
            line += "; ideal \(format(ideal * 1e6, 2)) µs (serial / threads)"
        }
        print(line)
    }
}

/// A pointer the benchmark's iterations write to, one cache line per iteration.
struct UncheckedPointer: @unchecked Sendable { let value: UnsafeMutablePointer<Float> }
