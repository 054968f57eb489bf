import Foundation

// MARK: - KV cache

/// One sequence's keys and values for every layer: global layers keep every position up to
/// `capacity`, local layers a ring buffer of exactly `windowSize` entries (position p lives in slot
/// p mod windowSize), because a local layer never looks further back than its window.
public final class KVCache: @unchecked Sendable {
    /// Positions already stored (the next token's position).
    public internal(set) var count: Int = 0
    /// The most positions this cache can hold; allocated up front.
    public let capacity: Int
    let hiddenSize: Int
    let windowSize: Int
    let kinds: [GPTNeoConfig.AttentionKind]
    /// Per layer: (slots, C) keys then (slots, C) values in one allocation.
    private let storage: [UnsafeMutablePointer<Float>]
    /// Per layer: number of slots (capacity for global, the window for local layers).
    let slots: [Int]

    public init(config: GPTNeoConfig, capacity: Int) {
        precondition(capacity >= 0, "negative KV cache capacity")
        self.capacity = capacity
        hiddenSize = config.hiddenSize
        windowSize = config.windowSize
        kinds = config.attentionLayers
        slots = config.attentionLayers.map { Self.slotCount(kind: $0, window: config.windowSize, capacity: capacity) }
        storage = slots.map { count in
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, 2 * count * config.hiddenSize))
            pointer.initialize(repeating: 0, count: max(1, 2 * count * config.hiddenSize))
            return pointer
        }
    }

    deinit { for pointer in storage { pointer.deallocate() } }

    private static func slotCount(kind: GPTNeoConfig.AttentionKind, window: Int, capacity: Int) -> Int {
        kind == .global ? capacity : min(window, capacity)
    }

    /// Bytes a cache of `capacity` positions takes (the batcher's admission control uses this).
    public static func byteSize(config: GPTNeoConfig, capacity: Int) -> Int {
        config.attentionLayers.reduce(0) { total, kind in
            total + 2 * slotCount(kind: kind, window: config.windowSize, capacity: capacity) * config.hiddenSize * MemoryLayout<Float>.size
        }
    }

    /// Bytes this cache holds.
    public var byteSize: Int { slots.reduce(0) { $0 + 2 * $1 * hiddenSize * MemoryLayout<Float>.size } }

    /// Slots a layer holds (the ring buffer's length for local layers).
    public func slotCount(layer: Int) -> Int { slots[layer] }

    /// A copy holding the same positions (for `n > 1` choices sharing one prefilled prompt).
    public func copy(capacity: Int) -> KVCache {
        precondition(capacity >= count, "a KV cache copy needs room for the \(count) stored positions")
        let copy = KVCache(hiddenSize: hiddenSize, windowSize: windowSize, kinds: kinds, capacity: capacity)
        for layer in kinds.indices {
            // Global: positions 0..<count. Local: the whole ring (slot = position mod window in both).
            let used = kinds[layer] == .global ? count : min(slots[layer], copy.slots[layer])
            let C = hiddenSize
            copy.keys(layer).update(from: keys(layer), count: used * C)
            copy.values(layer).update(from: values(layer), count: used * C)
        }
        copy.count = count
        return copy
    }

    private convenience init(hiddenSize: Int, windowSize: Int, kinds: [GPTNeoConfig.AttentionKind], capacity: Int) {
        var config = GPTNeoConfig.placeholder
        config.hiddenSize = hiddenSize; config.windowSize = windowSize; config.attentionLayers = kinds
        config.numLayers = kinds.count
        self.init(config: config, capacity: capacity)
    }

    /// Forgets every position (the memory stays allocated for reuse).
    public func reset() { count = 0 }

    // MARK: Slots

    func keys(_ layer: Int) -> UnsafeMutablePointer<Float> { storage[layer] }
    func values(_ layer: Int) -> UnsafeMutablePointer<Float> { storage[layer] + slots[layer] * hiddenSize }

    /// The slot of `position` in `layer`.
    @inline(__always) func slot(layer: Int, position: Int) -> Int {
        kinds[layer] == .global ? position : position % slots[layer]
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
