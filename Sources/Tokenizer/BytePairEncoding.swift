// MARK: - Byte-pair encoding by merge rank

/// Two adjacent token ids: the key of the merge table.
struct BytePair: Hashable, Sendable {
    var left: Int32
    var right: Int32
}

/// What a merge produces and how early it was learned (lower rank merges first).
struct Merge: Equatable, Sendable {
    var rank: Int32
    var result: Int32
}

/// Where BPE looks up the merge of two adjacent ids: the compact table of a loaded vocabulary, or a
/// dictionary still being built (deriving merges from tiktoken ranks).
protocol MergeLookup {
    func merge(of pair: BytePair) -> Merge?
}

extension Dictionary: MergeLookup where Key == BytePair, Value == Merge {
    @inline(__always)
    func merge(of pair: BytePair) -> Merge? { self[pair] }
}

/// The merges grouped by left id, each group sorted by right id (compressed sparse rows): 12 bytes a merge
/// and 4 an id, 0.8 MB for GPT-2's 50,000 merges, where a dictionary (a power-of-two capacity at most
/// three quarters full: 131,072 slots of 16 bytes) holds 2 MB for the life of the server. A lookup is a
/// binary search in the left id's group, no hashing.
struct MergeTable: MergeLookup, Sendable {
    /// The merges with left id l are at rowStarts[l]..<rowStarts[l + 1].
    private let rowStarts: [Int32]
    private let rights: [Int32]
    private let merges: [Merge]

    /// Placed group by group straight from the dictionary (a counting sort), each group then sorted by
    /// right id: no copy of the whole table is made, which loading would leave behind as free heap.
    init(_ table: [BytePair: Merge]) {
        // A negative id never occurs in a piece, so such a merge could never apply.
        let largestLeft = table.keys.reduce(Int32(-1)) { max($0, $1.left) }
        var rowStarts = [Int32](repeating: 0, count: Int(largestLeft) + 2)
        for pair in table.keys where pair.left >= 0 { rowStarts[Int(pair.left) + 1] += 1 }
        for row in rowStarts.indices.dropFirst() { rowStarts[row] += rowStarts[row - 1] }
        var nextSlot = rowStarts
        var rights = [Int32](repeating: 0, count: Int(rowStarts[rowStarts.count - 1]))
        var merges = [Merge](repeating: Merge(rank: 0, result: 0), count: rights.count)
        for (pair, merge) in table where pair.left >= 0 {
            let slot = Int(nextSlot[Int(pair.left)])
            nextSlot[Int(pair.left)] += 1
            rights[slot] = pair.right
            merges[slot] = merge
        }
        for row in 0..<(rowStarts.count - 1) {
            let group = Int(rowStarts[row])..<Int(rowStarts[row + 1])
            guard group.count > 1 else { continue }
            let sorted = group.map { (rights[$0], merges[$0]) }.sorted { $0.0 < $1.0 }
            for (offset, entry) in sorted.enumerated() {
                rights[group.lowerBound + offset] = entry.0
                merges[group.lowerBound + offset] = entry.1
            }
        }
        self.rowStarts = rowStarts
        self.rights = rights
        self.merges = merges
    }

    var count: Int { merges.count }

    @inline(__always)
    func merge(of pair: BytePair) -> Merge? {
        let left = Int(pair.left)
        guard left >= 0, left + 1 < rowStarts.count else { return nil }
        var low = Int(rowStarts[left]), high = Int(rowStarts[left + 1])
        while low < high {
            let middle = (low + high) >> 1
            let right = rights[middle]
            if right == pair.right { return merges[middle] }
            if right < pair.right { low = middle + 1 } else { high = middle }
        }
        return nil
    }

    /// Every merge, keyed by its pair.
    var dictionary: [BytePair: Merge] {
        var table: [BytePair: Merge] = [:]
        table.reserveCapacity(merges.count)
        for left in 0..<(rowStarts.count - 1) {
            for index in Int(rowStarts[left])..<Int(rowStarts[left + 1]) {
                table[BytePair(left: Int32(left), right: rights[index])] = merges[index]
            }
        }
        return table
    }
}

/// The merge table and the BPE loop over one pre-tokenized piece.
struct BytePairEncoder: Sendable {
    let merges: MergeTable

    init(merges: [BytePair: Merge]) { self.merges = MergeTable(merges) }

    /// Merges `ids` (the piece's single-byte token ids, in order) by rank until no adjacent pair has a merge.
    ///
    /// Like HF `tokenizers`, this takes the lowest-ranked pair first and, among equal pairs, the leftmost;
    /// that gives the same result as GPT-2's original loop (merge every occurrence of the best pair left to
    /// right). A min-heap of (rank, position) with stale entries skipped keeps long pieces O(n log n)
    /// rather than quadratic, so a megabyte-long "word" is not a denial of service.
    func encode(_ ids: [Int32]) -> [Int32] {
        Self.encode(ids, merges: merges)
    }

    /// The same over a table that is still being built (deriving merges from tiktoken ranks), without
    /// copying it.
    static func encode<Lookup: MergeLookup>(_ ids: [Int32], merges: Lookup) -> [Int32] {
        let count = ids.count
        if count < 2 { return ids }
        var symbols = ids                       // id at each original position; -1 once merged away
        var next = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for position in 0..<count { buffer[position] = Int32(position + 1) }
            buffer[count - 1] = -1
            initialized = count
        }
        var previous = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for position in 0..<count { buffer[position] = Int32(position - 1) }
            initialized = count
        }
        var heap = MinHeap()
        heap.reserve(count)
        for position in 0..<(count - 1) {
            if let merge = merges.merge(of: BytePair(left: symbols[position], right: symbols[position + 1])) {
                heap.push(rank: merge.rank, position: Int32(position))
            }
        }
        while let (rank, position32) = heap.pop() {
            let position = Int(position32)
            let left = symbols[position]
            let rightPosition = Int(next[position])
            // Stale entry: this position was merged away, or its pair changed since it was pushed.
            guard left >= 0, rightPosition >= 0 else { continue }
            guard let merge = merges.merge(of: BytePair(left: left, right: symbols[rightPosition])), merge.rank == rank
            else { continue }
            symbols[position] = merge.result
            symbols[rightPosition] = -1
            let after = next[rightPosition]
            next[position] = after
            if after >= 0 { previous[Int(after)] = Int32(position) }
            let before = previous[position]
            if before >= 0, let leftMerge = merges.merge(of: BytePair(left: symbols[Int(before)], right: merge.result)) {
                heap.push(rank: leftMerge.rank, position: before)
            }
            if after >= 0, let rightMerge = merges.merge(of: BytePair(left: merge.result, right: symbols[Int(after)])) {
                heap.push(rank: rightMerge.rank, position: Int32(position))
            }
        }
        var result: [Int32] = []
        result.reserveCapacity(count)
        var position = 0
        while position >= 0 {
            result.append(symbols[position])
            position = Int(next[position])
        }
        return result
    }
}

// MARK: - Heap

/// A binary min-heap of (rank, position) packed into one UInt64 so that comparing keys orders by rank,
/// then by position (leftmost first).
struct MinHeap {
    private var keys: [UInt64] = []

    mutating func reserve(_ capacity: Int) { keys.reserveCapacity(capacity) }

    mutating func push(rank: Int32, position: Int32) {
        keys.append(UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: position)))
        var child = keys.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if keys[parent] <= keys[child] { break }
            keys.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> (rank: Int32, position: Int32)? {
        guard let top = keys.first else { return nil }
        let last = keys.removeLast()
        if !keys.isEmpty {
            keys[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                if left >= keys.count { break }
                var smallest = left
                if left + 1 < keys.count, keys[left + 1] < keys[left] { smallest = left + 1 }
                if keys[parent] <= keys[smallest] { break }
                keys.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (Int32(bitPattern: UInt32(top >> 32)), Int32(bitPattern: UInt32(top & 0xFFFF_FFFF)))
    }
}
