import Foundation

// MARK: - Cache of encoded pieces

/// Piece bytes -> token ids, shared by every task that uses the tokenizer.
///
/// English text repeats the same few thousand words, so most pieces are found here instead of re-running
/// BPE. A lock makes it safe from many tasks at once (the tokenizer is `Sendable`); the critical sections
/// are one dictionary lookup or insert. The cache is bounded: when it holds `capacity` pieces it is
/// emptied and refills, so an adversary sending endless distinct words cannot grow memory without limit.
final class WordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [[UInt8]: [Int32]] = [:]
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func lookup(_ piece: [UInt8]) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return entries[piece]
    }

    /// Longer pieces are not cached: they rarely repeat, and caching them would let a client fill memory
    /// with a few huge distinct "words" (capacity x piece length).
    static let maximumPieceLength = 128

    func insert(_ piece: [UInt8], _ ids: [Int32]) {
        guard capacity > 0, piece.count <= Self.maximumPieceLength else { return }
        lock.lock()
        defer { lock.unlock() }
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[piece] = ids
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return entries.count
    }

    func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        entries.removeAll()
    }
}
