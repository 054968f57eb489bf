import Foundation

// MARK: - KV cache

/// One sequence's keys and values for every layer: global layers keep every position up to
/// `capacity`, local layers a ring buffer of exactly `windowSize` entries (position p lives in slot
/// p mod windowSize), because a local layer never looks further back than its window.
///
/// Memory follows use: slots live in blocks of `blockSlots` positions taken from a shared pool as
/// positions arrive (never zero-filled; only written slots are read), and go back to the pool when
/// the cache is released, so a request for 2048 tokens that stops after 20 holds one block per layer.
public final class KVCache: @unchecked Sendable {
    /// Positions already stored (the next token's position).
    public internal(set) var count: Int = 0
    /// The most positions this cache can hold.
    public let capacity: Int
    let hiddenSize: Int
    let windowSize: Int
    let kinds: [GPTNeoConfig.AttentionKind]
    /// Per layer: number of slots (capacity for global, the window for local layers).
    let slots: [Int]
    /// Per layer: slots per block (the whole ring for a local layer shorter than a block).
    let slotsPerBlock: [Int]
    /// Per layer: key and value blocks of (slotsPerBlock, C), allocated in order as slots are used.
    private(set) var keyBlocks: [[UnsafeMutablePointer<Float>]]
    private(set) var valueBlocks: [[UnsafeMutablePointer<Float>]]

    /// Positions per block of a global layer: 32 × 768 floats = 96 KiB for the 125M model.
    static let blockSlots = 32

    public init(config: GPTNeoConfig, capacity: Int) {
        precondition(capacity >= 0, "negative KV cache capacity")
        self.capacity = capacity
        hiddenSize = config.hiddenSize
        windowSize = config.windowSize
        kinds = config.attentionLayers
        slots = config.attentionLayers.map { Self.slotCount(kind: $0, window: config.windowSize, capacity: capacity) }
        slotsPerBlock = slots.map { max(1, min(Self.blockSlots, $0)) }
        keyBlocks = Array(repeating: [], count: config.attentionLayers.count)
        valueBlocks = keyBlocks
    }

    deinit {
        for layer in kinds.indices {
            let floats = slotsPerBlock[layer] * hiddenSize
            for block in keyBlocks[layer] + valueBlocks[layer] { KVBlockPool.shared.give(block, floats: floats) }
        }
    }

    private static func slotCount(kind: GPTNeoConfig.AttentionKind, window: Int, capacity: Int) -> Int {
        kind == .global ? capacity : min(window, capacity)
    }

    private static func blockCount(slots: Int) -> Int {
        slots <= blockSlots ? (slots > 0 ? 1 : 0) : (slots + blockSlots - 1) / blockSlots
    }

    /// The most bytes a cache of `capacity` positions takes (what the batcher's admission reserves).
    public static func byteSize(config: GPTNeoConfig, capacity: Int) -> Int {
        config.attentionLayers.reduce(0) { total, kind in
            let slots = slotCount(kind: kind, window: config.windowSize, capacity: capacity)
            let perBlock = max(1, min(blockSlots, slots))
            return total + 2 * blockCount(slots: slots) * perBlock * config.hiddenSize * MemoryLayout<Float>.size
        }
    }

    /// Bytes this cache holds now.
    public var byteSize: Int {
        kinds.indices.reduce(0) { $0 + 2 * keyBlocks[$1].count * slotsPerBlock[$1] * hiddenSize * MemoryLayout<Float>.size }
    }

    /// Slots a layer holds (the ring buffer's length for local layers).
    public func slotCount(layer: Int) -> Int { slots[layer] }

    /// Makes room for positions up to `end` (≤ capacity) in every layer.
    func reserve(positions end: Int) {
        precondition(end <= capacity, "reserving \(end) positions in a cache of \(capacity)")
        for layer in kinds.indices {
            let needed = Self.blockCount(slots: min(slots[layer], end))
            let floats = slotsPerBlock[layer] * hiddenSize
            while keyBlocks[layer].count < needed {
                keyBlocks[layer].append(KVBlockPool.shared.take(floats: floats))
                valueBlocks[layer].append(KVBlockPool.shared.take(floats: floats))
            }
        }
    }

    /// A copy holding the same positions (for `n > 1` choices sharing one prefilled prompt).
    public func copy(capacity: Int) -> KVCache {
        precondition(capacity >= count, "a KV cache copy needs room for the \(count) stored positions")
        var config = GPTNeoConfig.placeholder
        config.hiddenSize = hiddenSize; config.windowSize = windowSize; config.attentionLayers = kinds
        config.numLayers = kinds.count
        let copy = KVCache(config: config, capacity: capacity)
        copy.reserve(positions: count)
        for layer in kinds.indices {
            // Global: slots 0..<count. Local: the used part of the ring (slot = position mod window in both).
            for slot in 0..<min(slots[layer], count) {
                copy.keyRow(layer: layer, slot: slot).update(from: keyRow(layer: layer, slot: slot), count: hiddenSize)
                copy.valueRow(layer: layer, slot: slot).update(from: valueRow(layer: layer, slot: slot), count: hiddenSize)
            }
        }
        copy.count = count
        return copy
    }

    /// Forgets every position (the blocks stay with the cache for reuse).
    public func reset() { count = 0 }

    // MARK: Slots

    /// The slot of `position` in `layer`.
    @inline(__always) func slot(layer: Int, position: Int) -> Int {
        kinds[layer] == .global ? position : position % slots[layer]
    }

    /// One layer's stored rows by position, looked up once per attention call rather than per key.
    struct LayerRows {
        let keyBlocks: [UnsafeMutablePointer<Float>]
        let valueBlocks: [UnsafeMutablePointer<Float>]
        let slotsPerBlock: Int
        /// The ring's length for a local layer, 0 for a global one.
        let ringSlots: Int
        let hiddenSize: Int

        @inline(__always) private func offset(_ position: Int) -> (block: Int, row: Int) {
            let slot = ringSlots > 0 ? position % ringSlots : position
            return (slot / slotsPerBlock, (slot % slotsPerBlock) * hiddenSize)
        }
        @inline(__always) func key(_ position: Int) -> UnsafePointer<Float> {
            let (block, row) = offset(position)
            return UnsafePointer(keyBlocks[block] + row)
        }
        @inline(__always) func value(_ position: Int) -> UnsafePointer<Float> {
            let (block, row) = offset(position)
            return UnsafePointer(valueBlocks[block] + row)
        }
    }

    func rows(layer: Int) -> LayerRows {
        LayerRows(keyBlocks: keyBlocks[layer], valueBlocks: valueBlocks[layer], slotsPerBlock: slotsPerBlock[layer],
                  ringSlots: kinds[layer] == .global ? 0 : slots[layer], hiddenSize: hiddenSize)
    }

    @inline(__always) func keyRow(layer: Int, slot: Int) -> UnsafeMutablePointer<Float> {
        let perBlock = slotsPerBlock[layer]
        return keyBlocks[layer][slot / perBlock] + (slot % perBlock) * hiddenSize
    }

    @inline(__always) func valueRow(layer: Int, slot: Int) -> UnsafeMutablePointer<Float> {
        let perBlock = slotsPerBlock[layer]
        return valueBlocks[layer][slot / perBlock] + (slot % perBlock) * hiddenSize
    }
}

// MARK: - Block pool

/// Freed KV blocks, by size, for the next cache: no allocation or page faults for a new request while
/// earlier ones have ended. Keeps at most `retainedBytesLimit`; beyond that, blocks are freed.
final class KVBlockPool: @unchecked Sendable {
    static let shared = KVBlockPool()
    static let retainedBytesLimit = 64 << 20

    private let lock = NSLock()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var retainedBytes = 0

    func take(floats: Int) -> UnsafeMutablePointer<Float> {
        lock.lock()
        if let block = free[floats]?.popLast() {
            retainedBytes -= floats * MemoryLayout<Float>.size
            lock.unlock()
            return block
        }
        lock.unlock()
        return .allocate(capacity: floats)
    }

    func give(_ block: UnsafeMutablePointer<Float>, floats: Int) {
        let bytes = floats * MemoryLayout<Float>.size
        lock.lock()
        if retainedBytes + bytes <= Self.retainedBytesLimit {
            free[floats, default: []].append(block)
            retainedBytes += bytes
            lock.unlock()
        } else {
            lock.unlock()
            block.deallocate()
        }
    }
}

extension GPTNeoConfig {
    /// A shape-only configuration for internal copies; never used to load or run a model.
    static var placeholder: GPTNeoConfig {
        GPTNeoConfig(vocabSize: 1, hiddenSize: 1, numLayers: 0, numHeads: 1, intermediateSize: 4, maxPositionEmbeddings: 1,
                     windowSize: 1, attentionLayers: [], layerNormEpsilon: 1e-5, activation: .geluNew,
                     bosTokenID: nil, eosTokenID: nil, padTokenID: nil, labels: [:], problemType: nil,
                     tieWordEmbeddings: true)
    }
}
