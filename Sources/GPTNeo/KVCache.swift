import CMalloc
import Foundation

// MARK: - KV cache

/// One sequence's keys and values for every layer: global layers keep every position up to
/// `capacity`, local layers a ring buffer of exactly `windowSize` entries (position p lives in slot
/// p mod windowSize), because a local layer never looks further back than its window.
///
/// Memory follows use: slots live in blocks of `blockSlots` positions taken from a shared pool as
/// positions arrive (never zero-filled; only written slots are read), and go back to the pool when
/// the cache is released, so a request for 2048 tokens that stops after 20 holds one block per layer.
///
/// A block is laid out head by head, (heads, slotsPerBlock, headDim): attention for one head reads
/// its keys and values as runs of contiguous memory (a block's slots at a time), not 64 floats out of
/// every C-float row.
public final class KVCache: @unchecked Sendable {
    /// Positions already stored (the next token's position).
    public internal(set) var count: Int = 0
    /// The most positions this cache can hold.
    public let capacity: Int
    let hiddenSize: Int
    let numHeads: Int
    let windowSize: Int
    let kinds: [GPTNeoConfig.AttentionKind]
    /// Per layer: number of slots (capacity for global, the window for local layers).
    let slots: [Int]
    /// Per layer: slots per block (the whole ring for a local layer shorter than a block).
    let slotsPerBlock: [Int]
    /// Per layer: key and value blocks of (heads, slotsPerBlock, headDim), allocated in order as slots
    /// are used; layer l's block b at `l * blocksPerLayer + b`. Raw tables rather than arrays of arrays,
    /// so that the attention loop reads them with no retain, release or exclusivity check.
    private let keyBlocks: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    private let valueBlocks: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    /// Table entries per layer: the most blocks any layer can need.
    private let blocksPerLayer: Int
    /// Per layer: blocks taken from the pool so far.
    private var blocksInUse: [Int]

    /// Positions per block of a global layer: 32 × 768 floats = 96 KiB for the 125M model, 8 KiB per head.
    static let blockSlots = 32

    public init(config: GPTNeoConfig, capacity: Int) {
        precondition(capacity >= 0, "negative KV cache capacity")
        self.capacity = capacity
        hiddenSize = config.hiddenSize
        numHeads = config.numHeads
        windowSize = config.windowSize
        kinds = config.attentionLayers
        slots = config.attentionLayers.map { Self.slotCount(kind: $0, window: config.windowSize, capacity: capacity) }
        slotsPerBlock = slots.map { max(1, min(Self.blockSlots, $0)) }
        blocksPerLayer = slots.map(Self.blockCount(slots:)).max() ?? 0
        let entries = max(1, blocksPerLayer * config.attentionLayers.count)
        keyBlocks = .allocate(capacity: entries)
        valueBlocks = .allocate(capacity: entries)
        blocksInUse = Array(repeating: 0, count: config.attentionLayers.count)
    }

    deinit {
        for layer in kinds.indices {
            let floats = slotsPerBlock[layer] * hiddenSize
            for block in 0..<blocksInUse[layer] {
                KVBlockPool.shared.give(keyBlocks[layer * blocksPerLayer + block], floats: floats)
                KVBlockPool.shared.give(valueBlocks[layer * blocksPerLayer + block], floats: floats)
            }
        }
        keyBlocks.deallocate()
        valueBlocks.deallocate()
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
        kinds.indices.reduce(0) { $0 + 2 * blocksInUse[$1] * slotsPerBlock[$1] * hiddenSize * MemoryLayout<Float>.size }
    }

    /// Slots a layer holds (the ring buffer's length for local layers).
    public func slotCount(layer: Int) -> Int { slots[layer] }

    /// Makes room for positions up to `end` (≤ capacity) in every layer.
    func reserve(positions end: Int) {
        precondition(end <= capacity, "reserving \(end) positions in a cache of \(capacity)")
        for layer in kinds.indices {
            let needed = Self.blockCount(slots: min(slots[layer], end))
            let floats = slotsPerBlock[layer] * hiddenSize
            while blocksInUse[layer] < needed {
                keyBlocks[layer * blocksPerLayer + blocksInUse[layer]] = KVBlockPool.shared.take(floats: floats)
                valueBlocks[layer * blocksPerLayer + blocksInUse[layer]] = KVBlockPool.shared.take(floats: floats)
                blocksInUse[layer] += 1
            }
        }
    }

    /// A copy holding the same positions (for `n > 1` choices sharing one prefilled prompt).
    public func copy(capacity: Int) -> KVCache {
        precondition(capacity >= count, "a KV cache copy needs room for the \(count) stored positions")
        var config = GPTNeoConfig.placeholder
        config.hiddenSize = hiddenSize; config.numHeads = numHeads; config.windowSize = windowSize
        config.attentionLayers = kinds; config.numLayers = kinds.count
        let copy = KVCache(config: config, capacity: capacity)
        copy.reserve(positions: count)
        for layer in kinds.indices {
            // Global: slots 0..<count. Local: the used part of the ring (slot = position mod window in
            // both); positions 0..<stored fill exactly those slots.
            let stored = min(slots[layer], count)
            for head in 0..<numHeads {
                let (source, destination) = (self.stored(layer: layer, head: head), copy.stored(layer: layer, head: head))
                var position = 0
                while position < stored {
                    // Another capacity may give other block lengths: the shorter of the two runs.
                    let run = source.run(from: position, to: stored), target = destination.run(from: position, to: stored)
                    let count = min(run.count, target.count)
                    target.keys.update(from: run.keys, count: count * source.headDim)
                    target.values.update(from: run.values, count: count * source.headDim)
                    position += count
                }
            }
        }
        copy.count = count
        return copy
    }

    /// Forgets every position (the blocks stay with the cache for reuse).
    public func reset() { count = 0 }

    // MARK: One head's slots

    /// One (layer, head)'s stored keys and values, found by position as runs of consecutive slots
    /// that lie one after another in memory.
    struct StoredHead {
        let keyBlocks: UnsafePointer<UnsafeMutablePointer<Float>>
        let valueBlocks: UnsafePointer<UnsafeMutablePointer<Float>>
        let slotsPerBlock: Int
        /// The ring's length for a local layer, 0 for a global one.
        let ringSlots: Int
        /// Floats from a block's start to this head's first slot.
        let headOffset: Int
        let headDim: Int

        /// The keys and values of positions `position ..< position + count`, the longest such run
        /// below `end` that is contiguous: it ends at `end`, a block's end or the ring's end.
        @inline(__always) func run(from position: Int, to end: Int)
            -> (keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>, count: Int) {
            let slot = ringSlots > 0 ? position % ringSlots : position
            let (block, inBlock) = slot.quotientAndRemainder(dividingBy: slotsPerBlock)
            var count = min(end - position, slotsPerBlock - inBlock)
            if ringSlots > 0 { count = min(count, ringSlots - slot) }
            let offset = headOffset + inBlock * headDim
            return (keyBlocks[block] + offset, valueBlocks[block] + offset, count)
        }
    }

    func stored(layer: Int, head: Int) -> StoredHead {
        let headDim = hiddenSize / numHeads
        return StoredHead(keyBlocks: keyBlocks + layer * blocksPerLayer, valueBlocks: valueBlocks + layer * blocksPerLayer,
                          slotsPerBlock: slotsPerBlock[layer], ringSlots: kinds[layer] == .global ? 0 : slots[layer],
                          headOffset: head * slotsPerBlock[layer] * headDim, headDim: headDim)
    }
}

// MARK: - Block pool

/// Freed KV blocks, by size, for the next cache: no allocation or page faults for a new request while
/// earlier ones have ended. Keeps at most `keptBytesLimit` (`KVCache.keptFreedBlockBytes`); beyond
/// that, blocks are freed.
final class KVBlockPool: @unchecked Sendable {
    static let shared = KVBlockPool()
    /// The limit when no owner has set one, and what `KVCache.releaseKeptFreedBlocks()` keeps.
    static let defaultKeptBytes = 64 << 20

    private let lock = NSLock()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var kept = 0
    private var limit = KVBlockPool.defaultKeptBytes

    /// Bytes of the blocks kept now.
    var keptBytes: Int { lock.withLock { kept } }

    var keptBytesLimit: Int {
        get { lock.withLock { limit } }
        set {
            lock.withLock { limit = max(0, newValue) }
            trim(keeping: newValue)
        }
    }

    func take(floats: Int) -> UnsafeMutablePointer<Float> {
        lock.lock()
        if let block = free[floats]?.popLast() {
            kept -= floats * MemoryLayout<Float>.size
            lock.unlock()
            return block
        }
        lock.unlock()
        return .allocate(capacity: floats)
    }

    func give(_ block: UnsafeMutablePointer<Float>, floats: Int) {
        let bytes = floats * MemoryLayout<Float>.size
        lock.lock()
        if kept + bytes <= limit {
            free[floats, default: []].append(block)
            kept += bytes
            lock.unlock()
        } else {
            lock.unlock()
            block.deallocate()
        }
    }

    /// Frees kept blocks until at most `bytes` remain, then hands the freed heap memory back to the
    /// system: blocks of a few hundred KB live in malloc's heaps, which keep freed memory resident.
    func trim(keeping bytes: Int) {
        var freed: [UnsafeMutablePointer<Float>] = []
        lock.withLock {
            for size in free.keys {
                while kept > bytes, let block = free[size]?.popLast() {
                    freed.append(block)
                    kept -= size * MemoryLayout<Float>.size
                }
            }
        }
        guard !freed.isEmpty else { return }
        for block in freed { block.deallocate() }
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }
}

extension KVCache {
    /// Bytes of blocks that ended caches leave for later ones, process-wide (64 MiB unless set). A server
    /// sets its KV budget here: blocks then go from request to request without page faults, where
    /// freeing them and faulting fresh pages in took 10-15 thousand faults per timed run of 32-64
    /// streams. Blocks in use and kept never exceed the most ever in use at once. Lowering it frees
    /// the excess.
    public static var keptFreedBlockBytes: Int {
        get { KVBlockPool.shared.keptBytesLimit }
        set { KVBlockPool.shared.keptBytesLimit = newValue }
    }

    /// Frees the kept blocks beyond the default 64 MiB, for an idle server to give its peak back.
    public static func releaseKeptFreedBlocks() {
        KVBlockPool.shared.trim(keeping: KVBlockPool.defaultKeptBytes)
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
