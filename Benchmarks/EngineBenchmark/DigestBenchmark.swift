import Foundation
import GPTNeo

// A fingerprint of the engine's outputs (mode `digest`): hidden states and logits of long prefills,
// chunked prefills and batched decode steps of streams at mixed contexts, hashed bit for bit. Two
// builds that print the same digests computed the same bits: a refactoring of a kernel that must not
// change any value (a new memory layout, another loop order over the same FMA chains) is checked
// against the build before it on a real-sized model, beyond the test fixtures' small shapes.

/// FNV-1a over the bit patterns.
private struct Digest {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ floats: [Float]) {
        for float in floats {
            value = (value ^ UInt64(float.bitPattern)) &* 0x100_0000_01b3
        }
    }
    var hex: String { String(value, radix: 16) }
}

func runDigestBenchmark(_ model: GPTNeoModel, threads: Int, tokens: (Int, Int) -> [Int]) throws {
    let engine = GPTNeoEngine(model: model, threads: threads)
    let long = min(model.config.maxPositionEmbeddings, 1100)

    var whole = Digest()
    let out = try engine.forward([ForwardItem(cache: engine.makeCache(capacity: long), tokens: tokens(long, 21), hiddenRows: .all)])[0]
    whole.add(out.hidden); whole.add(out.logits)
    print("digest \(long)-token prefill: \(whole.hex)")

    // The same prompt in chunks of 128 and then decode steps, beside companions at other contexts.
    var mixed = Digest()
    let probe = engine.makeCache(capacity: long)
    let companions = try [3, 40, 300, 700].map { length in
        let cache = engine.makeCache(capacity: length + 64)
        _ = try engine.forward([ForwardItem(cache: cache, tokens: tokens(length, length), logitRows: .none)])
        return cache
    }
    let prompt = tokens(long, 21)
    var next = [Int](repeating: 50256, count: companions.count)
    while probe.count < long {
        let end = min(long, probe.count < long - 24 ? probe.count + 128 : probe.count + 1)
        var items = [ForwardItem(cache: probe, tokens: Array(prompt[probe.count..<end]), hiddenRows: .all, logitRows: .last)]
        if end - probe.count == 1 {
            items += companions.indices.map { ForwardItem(cache: companions[$0], tokens: [next[$0]], hiddenRows: .last) }
        }
        let outputs = try engine.forward(items)
        for (index, output) in outputs.enumerated() {
            mixed.add(output.hidden); mixed.add(output.logits)
            if index > 0 { next[index - 1] = output.logits.indices.max { output.logits[$0] < output.logits[$1] }! }
        }
    }
    print("digest chunked prefill and batched decode: \(mixed.hex)")

    // Decode steps of every stream count up to 18 and a few larger: each row count takes its own tiling.
    var batched = Digest()
    for streams in Array(1...18) + [31, 32, 33, 64] {
        let caches = try (0..<streams).map { stream in
            let cache = engine.makeCache(capacity: 8)
            _ = try engine.forward([ForwardItem(cache: cache, tokens: tokens(3 + stream % 4, stream), logitRows: .none)])
            return cache
        }
        let outputs = try engine.forward(caches.indices.map { ForwardItem(cache: caches[$0], tokens: [$0 * 31], hiddenRows: .last) })
        for output in outputs { batched.add(output.hidden); batched.add(output.logits) }
    }
    print("digest decode steps of 1…18, 31, 32, 33, 64 streams: \(batched.hex)")
}
