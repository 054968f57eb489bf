import Foundation

// CONTRACT (written before the implementation): the public surface the batcher, the API and the
// task heads code against. The engine's implementer owns this file and may split it into
// Config.swift, KVCache.swift, Engine.swift...; changing a signature needs a note in the commit.

/// `config.json` of a GPT-Neo checkpoint, decoded completely (see `modeling_gpt_neo.py`'s `GPTNeoConfig`).
public struct GPTNeoConfig: Sendable, Equatable {
    public enum AttentionKind: String, Sendable, Equatable { case global, local }
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    /// `intermediate_size`, with null resolved to 4 × hidden.
    public var intermediateSize: Int
    public var maxPositionEmbeddings: Int
    public var windowSize: Int
    /// One entry per layer, expanded from `attention_types`.
    public var attentionLayers: [AttentionKind]
    public var layerNormEpsilon: Float
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    public var padTokenID: Int?
    /// Labels of a classification head, by index (from `id2label`); empty when absent.
    public var labels: [Int: String]
    /// `problem_type` (`single_label_classification`, `multi_label_classification`, `regression`) or nil.
    public var problemType: String?
}

/// Weights of a loaded checkpoint: immutable, shared by every request.
public final class GPTNeoModel: Sendable {
    public let config: GPTNeoConfig
    public let directory: URL
    /// Loads `config.json` and the safetensors weights of a Hugging Face checkpoint directory.
    public static func load(directory: URL) throws -> GPTNeoModel { fatalError("not implemented") }
    init(config: GPTNeoConfig, directory: URL) { self.config = config; self.directory = directory }
}

/// One sequence's keys and values for every layer: global layers keep every position up to
/// `capacity`, local layers a ring buffer of exactly `windowSize` entries.
public final class KVCache: @unchecked Sendable {
    /// Positions already stored (the next token's position).
    public var count: Int { fatalError("not implemented") }
    /// The most positions this cache can hold; allocated up front.
    public let capacity: Int
    public init(config: GPTNeoConfig, capacity: Int) { self.capacity = capacity; fatalError("not implemented") }
    /// Bytes a cache of `capacity` positions takes (the batcher's admission control uses this).
    public static func byteSize(config: GPTNeoConfig, capacity: Int) -> Int { fatalError("not implemented") }
    /// A copy holding the same positions (for `n > 1` choices sharing one prefilled prompt).
    public func copy(capacity: Int) -> KVCache { fatalError("not implemented") }
}

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
    public init(cache: KVCache, tokens: [Int], hiddenRows: OutputRows = .none, logitRows: OutputRows = .last) {
        self.cache = cache; self.tokens = tokens; self.hiddenRows = hiddenRows; self.logitRows = logitRows
    }
}

/// What one item got back; arrays are row-major (rows × hiddenSize, rows × vocabSize).
public struct ForwardOutput: Sendable {
    public var hidden: [Float]
    public var logits: [Float]
}

/// The forward pass with its scratch memory. Not thread-safe: one scheduling loop owns it.
/// Batch invariance: an item's outputs are bitwise the same whatever other items share the call.
public final class GPTNeoEngine {
    public let model: GPTNeoModel
    public init(model: GPTNeoModel) { self.model = model }
    /// Runs all items together. Throws `EngineError` for token ids outside the vocabulary or a cache
    /// that would overflow its capacity or `maxPositionEmbeddings`.
    public func forward(_ items: [ForwardItem]) throws -> [ForwardOutput] { fatalError("not implemented") }
}
