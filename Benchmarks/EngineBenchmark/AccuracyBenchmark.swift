import Foundation
import GPTNeo

// int8 (and 16-bit) weights against float32 on a trained model: perplexity of held-out text and greedy
// continuations. Input: the JSON of make_accuracy_tokens.py ({"blocks": [[id]], "prompts": [[id]]}).

struct AccuracyTokens: Decodable {
    var blocks: [[Int]]
    var prompts: [[Int]]
}

/// Perplexity over every predicted token of `blocks` (each block scored as its own sequence), as the
/// training script's kjv_eval scores it.
private func perplexity(_ engine: GPTNeoEngine, blocks: [[Int]]) throws -> Double {
    let V = engine.model.config.vocabSize
    var total = 0.0, count = 0
    for block in blocks {
        let cache = engine.makeCache(capacity: block.count)
        let logits = try engine.forward([ForwardItem(cache: cache, tokens: block, logitRows: .all)])[0].logits
        for row in 0..<(block.count - 1) {
            let values = logits[(row * V)..<((row + 1) * V)]
            let largest = Double(values.max()!)
            let logSum = largest + log(values.reduce(0.0) { $0 + exp(Double($1) - largest) })
            total += logSum - Double(values[values.startIndex + block[row + 1]])
            count += 1
        }
    }
    return exp(total / Double(count))
}

/// The logits of every position of `block`, (block.count, V).
private func logits(_ engine: GPTNeoEngine, block: [Int]) throws -> [Float] {
    let cache = engine.makeCache(capacity: block.count)
    return try engine.forward([ForwardItem(cache: cache, tokens: block, logitRows: .all)])[0].logits
}

/// `newTokens` greedy tokens after each prompt (first maximum on ties).
private func greedy(_ engine: GPTNeoEngine, prompts: [[Int]], newTokens: Int) throws -> [[Int]] {
    try prompts.map { prompt in
        let cache = engine.makeCache(capacity: prompt.count + newTokens)
        var next = prompt, generated: [Int] = []
        for _ in 0..<newTokens {
            let logits = try engine.forward([ForwardItem(cache: cache, tokens: next)])[0].logits
            let best = logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) }!
            generated.append(best)
            next = [best]
        }
        return generated
    }
}

func runAccuracyBenchmark(directory: URL, tokensFile: URL, threads: Int) throws {
    let tokens = try JSONDecoder().decode(AccuracyTokens.self, from: Data(contentsOf: tokensFile))
    let newTokens = 32
    let modes: [(String, WeightSettings)] = [("float32", WeightSettings(dtype: .float32)), ("float16", WeightSettings(dtype: .float16)),
                                             ("bfloat16", WeightSettings(dtype: .bfloat16)), ("int8", WeightSettings(quantization: .int8))]
    var reference: (perplexity: Double, greedy: [[Int]], logits: [Float])?
    print("accuracy: \(tokens.blocks.count) held-out blocks (\(tokens.blocks.reduce(0) { $0 + $1.count - 1 }) predicted tokens), "
          + "\(tokens.prompts.count) prompts × \(newTokens) greedy tokens")
    for (name, settings) in modes {
        let engine = GPTNeoEngine(model: try GPTNeoModel.load(directory: directory, threads: threads, settings: settings), threads: threads)
        let value = try perplexity(engine, blocks: tokens.blocks)
        let continuations = try greedy(engine, prompts: tokens.prompts, newTokens: newTokens)
        let firstLogits = try logits(engine, block: tokens.blocks[0])
        let base = reference ?? (value, continuations, firstLogits)
        reference = base
        let logitDifference = zip(firstLogits, base.logits).map { abs($0 - $1) }.max() ?? 0
        let logitRMS = (base.logits.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(base.logits.count)).squareRoot()
        let same = zip(continuations, base.greedy).reduce(0) { sum, pair in sum + zip(pair.0, pair.1).filter { $0 == $1 }.count }
        let identical = zip(continuations, base.greedy).filter { $0 == $1 }.count
        print("\(name): perplexity \(format(value, 4)) (\(format((value / base.perplexity - 1) * 100, 4)) % vs float32); "
              + "greedy tokens identical to float32 at the same position \(same)/\(newTokens * tokens.prompts.count) "
              + "(\(format(Double(same) / Double(newTokens * tokens.prompts.count) * 100, 1)) %), whole continuations \(identical)/\(tokens.prompts.count); "
              + "max |Δ logit| vs float32 over the first block \(format(Double(logitDifference), 4)) (float32 logits' rms \(format(logitRMS, 2)))")
    }
}
