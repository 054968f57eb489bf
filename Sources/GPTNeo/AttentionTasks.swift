import Foundation
import Synchronization

// One layer's attention for a forward call: the chunk's keys and values rearranged head by head, the
// (item, head, query rows) tasks spread over the threads, then the chunk stored in the caches.

// MARK: - One sequence's chunk

/// Where one item's chunk sits in the engine's stacked buffers, and its cache.
struct AttentionItem {
    let cache: KVCache
    /// First row of the item in the stacked (rows, C) buffers.
    let firstRow: Int
    /// Rows (tokens) in this chunk.
    let length: Int
    /// Position of the chunk's first token (= cache.count before this forward).
    let start: Int
}

// MARK: - Work split

/// Tasks of one head and at most `rowsPerTask` query rows of one item, which the threads take one at
/// a time as they come free: a thread never idles while another works through a long prefill or a
/// long context, and a task's result does not depend on which thread ran it. Keeps its bookkeeping
/// between calls, so a decode step allocates nothing.
final class AttentionTasks {
    static let rowsPerTask = 32
    /// Per item, one past its last task.
    private var taskEnds: [Int] = []
    private let nextTask = Atomic<Int>(0)

    /// Attends every item's chunk rows for `layer`, then stores their keys and values in the caches.
    /// qkv: the stacked (rows, 3C) [q | k | v] projections; out: (rows, C).
    func run(_ items: [AttentionItem], layer: Int, kind: GPTNeoConfig.AttentionKind, config: GPTNeoConfig, scratch: Scratch,
             qkv: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let (heads, headDim, window, C) = (config.numHeads, config.headDim, config.windowSize, config.hiddenSize)
        let (q, k, v, stride) = (qkv, qkv + C, qkv + 2 * C, 3 * C)
        guard !items.isEmpty else { return }
        taskEnds.removeAll(keepingCapacity: true)
        var tasks = 0, work = 0
        for item in items {
            tasks += heads * ((item.length + Self.rowsPerTask - 1) / Self.rowsPerTask)
            taskEnds.append(tasks)
            work += item.length * min(item.start + item.length, kind == .global ? Int.max : window)
        }
        let workers = work * heads * headDim < (1 << 16) ? 1 : min(scratch.workers, tasks)
        let (keyHeads, valueHeads) = (scratch.keyHeads, scratch.valueHeads)
        let (scoresBase, scoresPerWorker) = (scratch.scores, scratch.scoresPerWorker)
        nextTask.store(0, ordering: .relaxed)
        items.withUnsafeBufferPointer { items in
            gatherChunkHeads(items: items, rows: k, rowStride: stride, heads: keyHeads, C: C, numHeads: heads)
            gatherChunkHeads(items: items, rows: v, rowStride: stride, heads: valueHeads, C: C, numHeads: heads)
            @inline(__always) func keysAndValues(_ item: AttentionItem, head: Int) -> HeadKeysAndValues {
                HeadKeysAndValues(stored: item.cache.stored(layer: layer, head: head), start: item.start, headDim: headDim,
                                  chunkKeys: chunkHeads(item: item, head: head, rows: k, rowStride: stride, heads: keyHeads, C: C, headDim: headDim),
                                  chunkValues: chunkHeads(item: item, head: head, rows: v, rowStride: stride, heads: valueHeads, C: C, headDim: headDim))
            }
            taskEnds.withUnsafeBufferPointer { taskEnds in
                parallelFor(workers, threads: workers) { worker in
                    let scores = scoresBase + worker * scoresPerWorker
                    while case let task = nextTask.wrappingAdd(1, ordering: .relaxed).oldValue, task < tasks {
                        // The item holding `task`: the first whose tasks end after it.
                        var (low, high) = (0, taskEnds.count - 1)
                        while low < high {
                            let middle = (low + high) / 2
                            if taskEnds[middle] > task { high = middle } else { low = middle + 1 }
                        }
                        let item = items[low]
                        let local = task - (low == 0 ? 0 : taskEnds[low - 1])
                        let head = local % heads
                        // Last row blocks first: they see the most keys, so the long tasks start early.
                        let blocks = (item.length + Self.rowsPerTask - 1) / Self.rowsPerTask
                        let firstRow = (blocks - 1 - local / heads) * Self.rowsPerTask
                        attendHead(keysAndValues(item, head: head), queryRows: firstRow..<min(item.length, firstRow + Self.rowsPerTask),
                                   item: item, head: head, kind: kind, window: window, q: q, queryStride: stride, out: out,
                                   scores: scores, C: C)
                    }
                }
            }
            for item in items {
                for head in 0..<heads { storeChunk(keysAndValues(item, head: head), item: item, layer: layer) }
            }
        }
    }
}

// MARK: - The chunk head by head

/// The chunk's keys or values of every item, head by head: an item's `length` rows of C floats in
/// `rows` (one every `rowStride` floats) become (heads, length, headDim) in `heads`, so that head h of
/// the item is the contiguous `length × headDim` floats at `firstRow * C + h * length * headDim`. A
/// one-row chunk is already in that order and is left where it is (`chunkHeads` reads it from `rows`).
func gatherChunkHeads(items: UnsafeBufferPointer<AttentionItem>, rows: UnsafePointer<Float>, rowStride: Int,
                      heads: UnsafeMutablePointer<Float>, C: Int, numHeads: Int) {
    let headDim = C / numHeads
    for item in items where item.length > 1 {
        for t in 0..<item.length {
            let row = rows + (item.firstRow + t) * rowStride
            for head in 0..<numHeads {
                (heads + item.firstRow * C + (head * item.length + t) * headDim).update(from: row + head * headDim, count: headDim)
            }
        }
    }
}

/// Head `head` of an item's chunk keys or values, (length, headDim), where `gatherChunkHeads` put it.
@inline(__always) func chunkHeads(item: AttentionItem, head: Int, rows: UnsafePointer<Float>, rowStride: Int,
                                  heads: UnsafePointer<Float>, C: Int, headDim: Int) -> UnsafePointer<Float> {
    item.length > 1 ? heads + item.firstRow * C + head * item.length * headDim : rows + item.firstRow * rowStride + head * headDim
}

// MARK: - Into the cache

/// Stores one head of the chunk's keys and values in the cache (after every query of the chunk has
/// read the old entries): global layers every position, local layers only the last `window`
/// positions, which are all a later query can see.
func storeChunk(_ keysAndValues: HeadKeysAndValues, item: AttentionItem, layer: Int) {
    let stored = keysAndValues.stored
    let end = item.start + item.length
    var position = max(item.start, end - item.cache.slotCount(layer: layer))
    while position < end {
        let run = stored.run(from: position, to: end)
        let offset = (position - item.start) * stored.headDim
        run.keys.update(from: keysAndValues.chunkKeys + offset, count: run.count * stored.headDim)
        run.values.update(from: keysAndValues.chunkValues + offset, count: run.count * stored.headDim)
        position += run.count
    }
}
