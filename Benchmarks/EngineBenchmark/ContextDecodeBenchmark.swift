import Foundation
import GPTNeo

// Decode with long cached contexts, where attention (reading every stored key and value of every
// stream, each step) rather than the weights sets the speed. One stream is prefilled to the context
// length and its cache copied to the others: the same bytes per stream as real requests, without
// prefilling 64 × 1500 tokens first.

/// Greedy decode steps of every cache at once; wall and CPU seconds per step.
func timeDecode(_ engine: GPTNeoEngine, caches: [KVCache], steps: Int) throws -> (wall: Double, cpu: Double) {
    var next = [Int](repeating: 50256, count: caches.count)
    let clocks = CPUClocks()
    let wall = try seconds {
        for _ in 0..<steps {
            let outputs = try engine.forward(caches.indices.map { ForwardItem(cache: caches[$0], tokens: [next[$0]]) })
            for (i, output) in outputs.enumerated() {
                var best = 0
                output.logits.withUnsafeBufferPointer { row in for v in 1..<row.count where row[v] > row[best] { best = v } }
                next[i] = best
            }
        }
    }
    return (wall / Double(steps), clocks.elapsed() / Double(steps))
}

/// Decode tokens/s of `streamCounts` streams at each context length in `contexts`.
func runContextDecodeBenchmark(_ engine: GPTNeoEngine, contexts: [Int], streamCounts: [Int], steps: Int,
                               prompt: (Int) -> [Int]) throws {
    for context in contexts {
        let template = engine.makeCache(capacity: context + steps + 1)
        _ = try engine.forward([ForwardItem(cache: template, tokens: prompt(context), logitRows: .none)])
        for streams in streamCounts {
            let caches = (0..<streams).map { _ in template.copy(capacity: context + steps + 1) }
            _ = try timeDecode(engine, caches: caches, steps: 1)  // warm-up: scratch, KV blocks
            let (wall, cpu) = try timeDecode(engine, caches: caches, steps: steps)
            print("decode \(streams) streams at context \(context): \(format(wall * 1000)) ms/step wall, "
                  + "\(format(Double(streams) / wall)) tokens/s; CPU \(format(cpu * 1000)) ms/step, "
                  + "\(format(Double(streams) / cpu)) tokens per CPU-second")
        }
    }
}
