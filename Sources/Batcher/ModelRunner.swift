@_spi(Benchmarks) import GPTNeo
import Tokenizer

// MARK: - What the scheduler needs from a model
// The scheduler is generic over this so that its bookkeeping (admission, chunking, cancellation,
// events) is tested fast against a fake model as well as end to end against the real engine.

/// The numbers of a model the batcher checks requests against.
struct ModelLimits: Sendable {
    var vocabularySize: Int
    var contextLength: Int
    var endOfSequenceTokenID: Int?
}

/// One sequence's share of a forward call (mirrors `ForwardItem`, generic over the cache type).
struct RunnerItem<Cache> {
    var cache: Cache
    var tokens: [Int]
    var hiddenRows: OutputRows
    var logitRows: OutputRows
    /// Only the last row's argmax is needed (a plain greedy step): see `ForwardItem.argmaxOnly`.
    var argmaxOnly = false
}

/// What one item got back (mirrors `ForwardOutput`): rows × hiddenSize, rows × vocabularySize, or for an
/// `argmaxOnly` item possibly the argmax instead of the logits.
struct RunnerOutput {
    var hidden: [Float]
    var logits: [Float]
    var argmax: [Int] = []
}

/// A forward pass over many sequences with per-sequence caches. Not thread-safe: the scheduling loop
/// is its only user. An item's output must not depend on the other items (batch invariance).
protocol ModelRunner: AnyObject, SendableMetatype {
    associatedtype Cache: AnyObject
    var limits: ModelLimits { get }
    /// Bytes `makeCache(capacity:)` allocates: what admission control reserves.
    func cacheByteSize(capacity: Int) -> Int
    func makeCache(capacity: Int) -> Cache
    func copy(_ cache: Cache, capacity: Int) -> Cache
    func forward(_ items: [RunnerItem<Cache>]) throws -> [RunnerOutput]
    /// Threads the work between forward passes (sampling) may spread over.
    var threads: Int { get }
    /// Runs body(i) for i in 0..<iterations on up to `threads` threads, returning when all are done.
    func parallelFor(_ iterations: Int, _ body: (Int) -> Void)
    /// Lets ended caches leave up to `bytes` of their memory for the next ones.
    func keepFreedCacheMemory(upTo bytes: Int)
    /// Gives the memory kept from ended caches back, beyond a small reserve (the batcher is idle).
    func releaseKeptCacheMemory()
}

extension ModelRunner {
    var threads: Int { 1 }
    func parallelFor(_ iterations: Int, _ body: (Int) -> Void) { for i in 0..<iterations { body(i) } }
    func keepFreedCacheMemory(upTo bytes: Int) {}
    func releaseKeptCacheMemory() {}
}

// MARK: - The real engine

final class EngineRunner: ModelRunner {
    let engine: GPTNeoEngine
    let config: GPTNeoConfig
    let limits: ModelLimits

    init(model: GPTNeoModel, endOfSequenceTokenID: Int?, threads: Int) {
        engine = GPTNeoEngine(model: model, threads: threads)
        config = model.config
        limits = ModelLimits(
            vocabularySize: config.vocabSize,
            contextLength: config.maxPositionEmbeddings,
            endOfSequenceTokenID: config.eosTokenID ?? endOfSequenceTokenID)
    }

    var threads: Int { engine.threads }
    func parallelFor(_ iterations: Int, _ body: (Int) -> Void) { GPTNeo.parallelFor(iterations, threads: engine.threads, body) }
    func keepFreedCacheMemory(upTo bytes: Int) { KVCache.keptFreedBlockBytes = bytes }
    func releaseKeptCacheMemory() { KVCache.releaseKeptFreedBlocks() }

    func cacheByteSize(capacity: Int) -> Int { KVCache.byteSize(config: config, capacity: capacity) }
    func makeCache(capacity: Int) -> KVCache { KVCache(config: config, capacity: capacity) }
    func copy(_ cache: KVCache, capacity: Int) -> KVCache { cache.copy(capacity: capacity) }

    func forward(_ items: [RunnerItem<KVCache>]) throws -> [RunnerOutput] {
        try engine.forward(items.map {
            ForwardItem(cache: $0.cache, tokens: $0.tokens, hiddenRows: $0.hiddenRows, logitRows: $0.logitRows, argmaxOnly: $0.argmaxOnly)
        }).map { RunnerOutput(hidden: $0.hidden, logits: $0.logits, argmax: $0.argmax) }
    }
}

// MARK: - Text

/// Streaming detokenization of one choice: pieces concatenate to the decoded text of all ids.
protocol TokenTextStream {
    mutating func append(_ id: Int) -> String
    mutating func finish() -> String
}

/// Makes one `TokenTextStream` per choice.
protocol TokenTextDecoding: Sendable {
    func makeTextStream() -> any TokenTextStream
}

extension IncrementalDecoder: TokenTextStream {}

extension GPT2Tokenizer: TokenTextDecoding {
    func makeTextStream() -> any TokenTextStream { makeIncrementalDecoder() }
}
