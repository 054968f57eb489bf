import Foundation

// GPTNeoForCausalLM.forward of modeling_gpt_neo.py, for many sequences at once:
//   h = wte[token] + wpe[position]
//   per block: h += out_proj(attn(ln_1(h))) ; h += c_proj(gelu_new(c_fc(ln_2(h))))
//   logits = ln_f(h) · wteᵀ
//
// Batch invariance: every item's rows are computed exactly as if the item were alone. Per-row kernels
// (LayerNorm, GELU, residual) and attention never mix rows, and the one matmul kernel computes each
// output element by the same FMA chain whatever the other rows are (MatMul.swift). So all items' rows
// are stacked into one product per weight, and even the chunking is invisible: a prompt fed whole or
// token by token gives the same bits (tested).

// MARK: - Forward interface

/// Which rows of a forward item the caller wants back.
public enum OutputRows: Sendable, Equatable { case none, last, all }

/// One sequence's share of a batched forward pass: `tokens` are appended to `cache` at positions
/// `cache.count ..< cache.count + tokens.count`.
public struct ForwardItem {
    public var cache: KVCache
    public var tokens: [Int]
    /// Rows whose final hidden states (after `ln_f`) are returned.
    public var hiddenRows: OutputRows
    /// Rows whose LM-head logits are returned.
    public var logitRows: OutputRows
    /// The caller needs of the last row's logits only the index of the first largest (a greedy step with
    /// nothing else to report): the engine may then return that index in `argmax` instead of the logits.
    public var argmaxOnly: Bool
    public init(cache: KVCache, tokens: [Int], hiddenRows: OutputRows = .none, logitRows: OutputRows = .last,
                argmaxOnly: Bool = false) {
        self.cache = cache; self.tokens = tokens; self.hiddenRows = hiddenRows; self.logitRows = logitRows
        self.argmaxOnly = argmaxOnly
    }
}

/// What one item got back; arrays are row-major (rows × hiddenSize, rows × vocabSize).
public struct ForwardOutput: Sendable {
    public var hidden: [Float]
    public var logits: [Float]
    /// For an `argmaxOnly` item, the first index of the largest of its last row's logits when the
    /// engine found it without computing them all (then `logits` is empty); else empty.
    public var argmax: [Int] = []
}

extension OutputRows {
    /// The chunk rows selected among `length`.
    func rows(length: Int) -> Range<Int> {
        switch self {
        case .none: return 0..<0
        case .last: return length == 0 ? 0..<0 : (length - 1)..<length
        case .all: return 0..<length
        }
    }
}

// MARK: - Engine

/// The forward pass with its scratch memory. Not thread-safe: one scheduling loop owns it.
/// Batch invariance: an item's outputs are bitwise the same whatever other items share the call.
public final class GPTNeoEngine {
    public let model: GPTNeoModel
    /// Threads for every parallel loop of a forward pass.
    public let threads: Int
    let scratch: Scratch
    /// Reused by every call (cleared, capacity kept), so that a decode step allocates no bookkeeping.
    private var seenCaches = Set<ObjectIdentifier>()
    private var placed: [AttentionItem] = []
    private var attentionItems: [AttentionItem] = []
    private let attention = AttentionTasks()

    public init(model: GPTNeoModel, threads: Int = availableCPUCount()) {
        precondition(threads >= 1, "threads must be at least 1")
        self.model = model
        self.threads = threads
        scratch = Scratch(workers: threads)
    }

    /// A cache sized for this model.
    public func makeCache(capacity: Int) -> KVCache { KVCache(config: model.config, capacity: capacity) }

    /// Runs all items together. Throws `EngineError` for token ids outside the vocabulary or a cache
    /// that would overflow its capacity or `maxPositionEmbeddings`; nothing is changed then.
    public func forward(_ items: [ForwardItem]) throws -> [ForwardOutput] {
        try validate(items)
        // Parked workers start waking now, while this thread embeds the tokens: the first region then
        // finds them spinning.
        if threads > 1 { WorkerPool.shared(threads: threads).prepare() }
        let config = model.config
        let C = config.hiddenSize

        for item in items { item.cache.reserve(positions: item.cache.count + item.tokens.count) }
        // Every item's rows stacked in item order. Emptied again on the way out: a cache whose request
        // has ended must not outlive it here until the next call.
        defer {
            placed.removeAll(keepingCapacity: true)
            attentionItems.removeAll(keepingCapacity: true)
        }
        var totalRows = 0
        for item in items {
            let placement = AttentionItem(cache: item.cache, firstRow: totalRows, length: item.tokens.count, start: item.cache.count)
            placed.append(placement)
            if placement.length > 0 { attentionItems.append(placement) }
            totalRows += item.tokens.count
        }
        scratch.reserve(rows: totalRows, config: config)

        let buffers = scratch
        let weights = model.weights
        // h = wte[token] + wpe[position]  (rows, C)
        for (index, item) in items.enumerated() {
            let placement = placed[index]
            for (t, token) in item.tokens.enumerated() {
                let out = buffers.hidden + (placement.firstRow + t) * C
                weights.tokenEmbedding.copyRow(token, into: out)
                addInPlace(out, weights.positionEmbedding.pointer + (placement.start + t) * C, count: C)
            }
        }

        // y = x · Wᵀ + b for every row.
        let threads = self.threads
        func linear(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: WeightMatrix, _ b: FloatTensor?) {
            matMul(y, x, w, b, M: totalRows, threads: threads)
        }

        let I = config.intermediateSize
        let eps = config.layerNormEpsilon
        // Each residual add is fused into the LayerNorm that reads its sum (the last one's into ln_f,
        // which only some rows need, so that one stays separate).
        // The element-wise and per-row passes between products split their rows over the threads when
        // there are enough of them (a prefill chunk, a large decode batch). On one thread, GELU and
        // LayerNorm held ~3 % of a 128-token chunk's perf samples while the other thread waited; split, a
        // 512-token prefill in such chunks took 0.92× the time (EngineBenchmark forward, alternated).
        func rowsInParallel(elementsPerRow: Int, _ body: (_ offset: Int, _ rows: Int) -> Void) {
            forEachRowRange(rows: totalRows, elementsPerRow: elementsPerRow, threads: threads) { range in
                body(range.lowerBound, range.count)
            }
        }
        /// hidden += projected, then normed = LayerNorm(hidden) with `weight` and `bias`.
        func addProjectedThenNormalize(_ weight: FloatTensor, _ bias: FloatTensor) {
            rowsInParallel(elementsPerRow: C) { r, rows in
                addThenLayerNorm(buffers.normed + r * C, buffers.hidden + r * C, adding: buffers.projected + r * C,
                                 weight.pointer, bias.pointer, eps: eps, rows: rows, C: C)
            }
        }
        if let first = weights.blocks.first {
            rowsInParallel(elementsPerRow: C) { r, rows in
                layerNorm(buffers.normed + r * C, buffers.hidden + r * C, first.attnNormWeight.pointer, first.attnNormBias.pointer,
                          eps: eps, rows: rows, C: C)
            }
        }
        for (layer, block) in weights.blocks.enumerated() {
            linear(buffers.qkv, buffers.normed, block.wqkv, nil)
            attention.run(attentionItems, layer: layer, kind: block.kind, config: config, scratch: buffers,
                          qkv: buffers.qkv, out: buffers.attended)
            linear(buffers.projected, buffers.attended, block.wo, block.bo)
            addProjectedThenNormalize(block.ffnNormWeight, block.ffnNormBias)

            linear(buffers.inner, buffers.normed, block.ffnUp, block.ffnUpBias)
            rowsInParallel(elementsPerRow: I) { r, rows in geluNewInPlace(buffers.inner + r * I, rows: rows, N: I) }
            linear(buffers.projected, buffers.inner, block.ffnDown, block.ffnDownBias)
            if layer + 1 < weights.blocks.count {
                let next = weights.blocks[layer + 1]
                addProjectedThenNormalize(next.attnNormWeight, next.attnNormBias)
            } else {
                addInPlace(buffers.hidden, buffers.projected, count: totalRows * C)
            }
        }
        for item in items { item.cache.count += item.tokens.count }

        return finalOutputs(items, placed: placed)
    }

    // MARK: Validation

    private func validate(_ items: [ForwardItem]) throws {
        let config = model.config
        seenCaches.removeAll(keepingCapacity: true)
        for item in items {
            precondition(seenCaches.insert(ObjectIdentifier(item.cache)).inserted, "the same KVCache appears twice in one forward call")
            let cache = item.cache
            guard cache.kinds == config.attentionLayers, cache.hiddenSize == config.hiddenSize,
                  cache.numHeads == config.numHeads, cache.windowSize == config.windowSize else {
                throw EngineError.cacheMismatch(reason: "made for \(cache.kinds.count) layers of width \(cache.hiddenSize), "
                                                + "\(cache.numHeads) heads, window \(cache.windowSize)")
            }
            for token in item.tokens where token < 0 || token >= config.vocabSize {
                throw EngineError.tokenOutOfVocabulary(token: token, vocabSize: config.vocabSize)
            }
            let end = cache.count + item.tokens.count
            guard end <= config.maxPositionEmbeddings else {
                throw EngineError.contextTooLong(requested: end, limit: config.maxPositionEmbeddings)
            }
            guard end <= cache.capacity else { throw EngineError.cacheCapacityExceeded(requested: end, capacity: cache.capacity) }
        }
    }
}
