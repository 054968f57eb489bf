import Foundation
@_spi(Benchmarks) import GPTNeo

// Mode `greedy`: decode steps that need only the argmax (`ForwardItem.argmaxOnly`) against the same steps
// returning full logits, alternated step by step in one process, on copies of the same streams. The tokens
// must agree at every step (the argmax path is exact); the run stops if they do not.

/// The greedy token of an output: its argmax where the engine gave one, else the first index of the largest
/// logit of its last row.
func greedyToken(_ output: ForwardOutput, vocabularySize V: Int) -> Int {
    if let token = output.argmax.first { return token }
    let row = output.logits[(output.logits.count - V)...]
    return row.firstIndex(of: row.max()!)! - row.startIndex
}

func runGreedyBenchmark(_ engine: GPTNeoEngine, streamCounts: [Int], steps: Int) throws {
    // Variants: 0 and 1 full logits (the same path twice: how far alternated steps of one path drift),
    // 2 argmax only.
    let names = ["full logits", "full logits again", "argmax only"]
    let variants = names.indices
    let V = engine.model.config.vocabSize
    let tokenOf = { greedyToken($0, vocabularySize: V) }
    for streams in streamCounts {
        let caches = variants.map { _ in (0..<streams).map { _ in engine.makeCache(capacity: 32 + steps + 2) } }
        var next = [[Int]](repeating: [], count: variants.count)
        for variant in variants {
            let outputs = try engine.forward(caches[variant].enumerated().map { stream, cache in
                ForwardItem(cache: cache, tokens: (0..<16).map { (stream * 7919 + $0 * 104_729) % V })
            })
            next[variant] = outputs.map(tokenOf)
        }
        var times = [[Double]](repeating: [], count: variants.count)
        var decided = 0
        for step in 0...steps {
            for order in variants {
                let variant = (step + order) % variants.count
                var outputs: [ForwardOutput] = []
                let wall = try seconds {
                    outputs = try engine.forward(caches[variant].indices.map {
                        ForwardItem(cache: caches[variant][$0], tokens: [next[variant][$0]], argmaxOnly: variant == 2)
                    })
                }
                if step > 0 { times[variant].append(wall) }  // step 0: warm-up
                if variant == 2 { decided += outputs.filter { !$0.argmax.isEmpty }.count }
                next[variant] = outputs.map(tokenOf)
            }
            guard next[0] == next[1], next[1] == next[2] else { fatalError("greedy: tokens differ at step \(step) with \(streams) streams") }
        }
        let medians = times.map { median($0) * 1000 }
        let ratios = (1..<variants.count).map { variant in median(zip(times[0], times[variant]).map { $0 / $1 }) }
        print("greedy \(streams) stream(s), ms/step: " + names.indices.map { "\(names[$0]) \(format(medians[$0], 2))" }.joined(separator: ", ")
              + "; speed over full logits, median of \(steps) alternated steps: full again \(format(ratios[0], 3))×, argmax only "
              + "\(format(ratios[1], 3))×; \(decided) of \(streams * (steps + 1)) argmax rows decided by the bound; tokens identical")
    }
}
