import Foundation
import GPTNeo
@testable import Batcher

// MARK: - A fake model for the scheduler's bookkeeping
// Logits at a position are a hash of the whole prefix, so any mix-up of caches, chunk offsets or
// positions changes the tokens. Small vocabulary, so tests run in microseconds per step.

final class FakeCache {
    nonisolated(unsafe) private static var live = 0
    private static let liveLock = NSLock()
    let capacity: Int
    /// Rolling hash of the prefix after each position.
    var prefixHashes: [UInt64] = []
    init(capacity: Int) {
        self.capacity = capacity
        FakeCache.liveLock.withLock { FakeCache.live += 1 }
    }
    deinit { FakeCache.liveLock.withLock { FakeCache.live -= 1 } }
    static var liveCount: Int { liveLock.withLock { live } }
}

struct FakeError: Error {}

final class FakeRunner: ModelRunner, @unchecked Sendable {
    static let vocabularySize = 64
    static let hiddenSize = 4
    static let eos = 63
    let limits = ModelLimits(vocabularySize: FakeRunner.vocabularySize,
                             contextLength: 256, endOfSequenceTokenID: FakeRunner.eos)
    /// Sleeps this long per forward call, so that requests overlap in time.
    let stepDelay: TimeInterval
    private let lock = NSLock()
    private var recordedCalls: [[Int]] = []
    /// Token counts of the items of every forward call so far.
    var calls: [[Int]] { lock.withLock { recordedCalls } }

    /// Whether items asking only for their argmax get it instead of their logits, as the engine may answer.
    let answersArgmaxOnly: Bool
    private var recordedArgmaxFlags: [[Bool]] = []
    /// `argmaxOnly` of the items of every forward call so far.
    var argmaxFlags: [[Bool]] { lock.withLock { recordedArgmaxFlags } }

    init(stepDelay: TimeInterval = 0, answersArgmaxOnly: Bool = false) {
        self.stepDelay = stepDelay
        self.answersArgmaxOnly = answersArgmaxOnly
    }

    private var recordedKeptLimits: [Int] = []
    private var recordedReleases = 0
    /// The limits `keepFreedCacheMemory` was given, in order.
    var keptMemoryLimits: [Int] { lock.withLock { recordedKeptLimits } }
    /// How often `releaseKeptCacheMemory` was called.
    var memoryReleases: Int { lock.withLock { recordedReleases } }
    func keepFreedCacheMemory(upTo bytes: Int) { lock.withLock { recordedKeptLimits.append(bytes) } }
    func releaseKeptCacheMemory() { lock.withLock { recordedReleases += 1 } }

    func cacheByteSize(capacity: Int) -> Int { capacity * 1000 }
    func makeCache(capacity: Int) -> FakeCache { FakeCache(capacity: capacity) }
    func copy(_ cache: FakeCache, capacity: Int) -> FakeCache {
        let copy = FakeCache(capacity: capacity)
        copy.prefixHashes = cache.prefixHashes
        return copy
    }

    func forward(_ items: [RunnerItem<FakeCache>]) throws -> [RunnerOutput] {
        if stepDelay > 0 { Thread.sleep(forTimeInterval: stepDelay) }
        lock.withLock {
            recordedCalls.append(items.map(\.tokens.count))
            recordedArgmaxFlags.append(items.map(\.argmaxOnly))
        }
        return try items.map { item in
            guard item.cache.prefixHashes.count + item.tokens.count <= item.cache.capacity else { throw FakeError() }
            var hashes: [UInt64] = []
            for token in item.tokens {
                hashes.append(FakeRunner.extend(item.cache.prefixHashes.last ?? FakeRunner.emptyHash, with: token))
                item.cache.prefixHashes.append(hashes[hashes.count - 1])
            }
            func rows(_ which: OutputRows) -> ArraySlice<UInt64> {
                switch which {
                case .none: return []
                case .last: return hashes.suffix(1)
                case .all: return hashes[...]
                }
            }
            let logits = rows(item.logitRows).flatMap(FakeRunner.logits)
            if answersArgmaxOnly && item.argmaxOnly && item.logitRows != .none {
                // The last row's first largest logit, and no logits: what the engine's guided path returns.
                let row = logits.suffix(FakeRunner.vocabularySize)
                let best = row.firstIndex(of: row.max()!)! - row.startIndex
                return RunnerOutput(hidden: rows(item.hiddenRows).flatMap(FakeRunner.hidden), logits: [], argmax: [best])
            }
            return RunnerOutput(hidden: rows(item.hiddenRows).flatMap(FakeRunner.hidden), logits: logits)
        }
    }

    // MARK: The fake model's math, also used directly by tests as the reference

    static let emptyHash: UInt64 = 0xCBF2_9CE4_8422_2325

    static func extend(_ hash: UInt64, with token: Int) -> UInt64 {
        var mixer = SplitMix64(seed: hash ^ (UInt64(token) &* 0x100_0000_01B3))
        return mixer.next()
    }

    static func prefixHash(_ tokens: [Int]) -> UInt64 {
        tokens.reduce(emptyHash) { extend($0, with: $1) }
    }

    /// Logits in [-4, 4), EOS kept low so that runs reach max_tokens unless a test forces EOS.
    static func logits(_ hash: UInt64) -> [Float] {
        var mixer = SplitMix64(seed: hash)
        return (0..<vocabularySize).map { token in
            let value = Float(mixer.next() >> 40) / Float(1 << 24) * 8 - 4
            return token == eos ? value - 20 : value
        }
    }

    static func hidden(_ hash: UInt64) -> [Float] {
        (0..<hiddenSize).map { Float((hash >> (16 * UInt64($0))) & 0xFFFF) }
    }

    /// Greedy continuation computed without the batcher.
    static func greedy(prompt: [Int], count: Int) -> [Int] {
        var tokens = prompt
        for _ in 0..<count {
            let row = logits(prefixHash(tokens))
            var best = 0
            for index in row.indices where row[index] > row[best] { best = index }
            tokens.append(best)
        }
        return Array(tokens.dropFirst(prompt.count))
    }
}

/// Token t is written as a letter for t < 52 ("a"…"z", "A"…"Z"), "\n" for 52, and "<t>" otherwise.
struct FakeText: TokenTextDecoding {
    struct Stream: TokenTextStream {
        mutating func append(_ id: Int) -> String { FakeText.text(id) }
        mutating func finish() -> String { "" }
    }
    func makeTextStream() -> any TokenTextStream { Stream() }
    static func text(_ id: Int) -> String {
        switch id {
        case 0..<26: return String(UnicodeScalar(UInt8(97 + id)))
        case 26..<52: return String(UnicodeScalar(UInt8(65 + id - 26)))
        case 52: return "\n"
        default: return "<\(id)>"
        }
    }
}
