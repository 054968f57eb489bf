// MARK: - Byte-pair encoding by merge rank

/// Two adjacent token ids: the key of the merge table.
struct BytePair: Hashable, Sendable {
    var left: Int32
    var right: Int32
}

/// What a merge produces and how early it was learned (lower rank merges first).
struct Merge: Sendable {
    var rank: Int32
    var result: Int32
}

/// The merge table and the BPE loop over one pre-tokenized piece.
struct BytePairEncoder: Sendable {
    let merges: [BytePair: Merge]

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
    static func encode(_ ids: [Int32], merges: [BytePair: Merge]) -> [Int32] {
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
            if let merge = merges[BytePair(left: symbols[position], right: symbols[position + 1])] {
                heap.push(rank: merge.rank, position: Int32(position))
            }
        }
        while let (rank, position32) = heap.pop() {
            let position = Int(position32)
            let left = symbols[position]
            let rightPosition = Int(next[position])
            // Stale entry: this position was merged away, or its pair changed since it was pushed.
            guard left >= 0, rightPosition >= 0 else { continue }
            guard let merge = merges[BytePair(left: left, right: symbols[rightPosition])], merge.rank == rank
            else { continue }
            symbols[position] = merge.result
            symbols[rightPosition] = -1
            let after = next[rightPosition]
            next[position] = after
            if after >= 0 { previous[Int(after)] = Int32(position) }
            let before = previous[position]
            if before >= 0, let leftMerge = merges[BytePair(left: symbols[Int(before)], right: merge.result)] {
                heap.push(rank: leftMerge.rank, position: before)
            }
            if after >= 0, let rightMerge = merges[BytePair(left: merge.result, right: symbols[Int(after)])] {
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
