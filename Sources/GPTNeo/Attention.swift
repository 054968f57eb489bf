import Foundation
import Synchronization

// GPTNeoSelfAttention._attn of modeling_gpt_neo.py for one sequence, one head: scores q·k with NO
// 1/sqrt(head_dim) scaling (GPT-Neo's quirk), masked causally (local layers: the current position and
// the previous window_size - 1), softmax in fp32, then the probability-weighted sum of values.
// Masked positions get finfo.min in transformers, so exp() makes them exactly 0: skipping them is the
// same computation. Keys are visited in ascending position, so a query's result does not depend on
// how the sequence was split into chunks or batched.
//
// Memory: one head's keys and values are read as contiguous runs, from the cache's blocks (laid out
// head by head, KVCache.swift) and from the chunk's own rows rearranged head by head first, so a
// query streams 256-byte vectors one after another instead of picking them out of C-float rows.

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

/// The chunk's keys or values of every item, head by head: an item's (length, C) rows of `rows` become
/// (heads, length, headDim) at the same place of `heads`, so that head h of the item is the contiguous
/// `headDim × length` floats at `(firstRow * C + h * length * headDim)`. A one-row chunk is already in
/// that order and is left where it is (`chunkHeads` reads it from `rows`).
func gatherChunkHeads(items: UnsafeBufferPointer<AttentionItem>, rows: UnsafePointer<Float>, heads: UnsafeMutablePointer<Float>,
                      C: Int, numHeads: Int) {
    let headDim = C / numHeads
    for item in items where item.length > 1 {
        let base = item.firstRow * C
        for t in 0..<item.length {
            for head in 0..<numHeads {
                (heads + base + (head * item.length + t) * headDim).update(from: rows + base + t * C + head * headDim, count: headDim)
            }
        }
    }
}

/// Head `head` of an item's chunk keys or values, (length, headDim), as `gatherChunkHeads` placed them.
@inline(__always) func chunkHeads(item: AttentionItem, head: Int, rows: UnsafePointer<Float>, heads: UnsafePointer<Float>,
                                  C: Int, headDim: Int) -> UnsafePointer<Float> {
    (item.length > 1 ? heads : rows) + item.firstRow * C + head * item.length * headDim
}

// MARK: - Work split

/// One layer's attention for a forward call, split into tasks of one head and at most `rowsPerTask`
/// query rows of one item, which the threads take one at a time as they come free: a thread never
/// waits while another works through a long prefill, and a task's result does not depend on which
/// thread ran it. Keeps its bookkeeping between calls, so a decode step allocates nothing.
final class AttentionTasks {
    static let rowsPerTask = 32
    /// Per item, one past its last task.
    private var taskEnds: [Int] = []
    private let nextTask = Atomic<Int>(0)

    /// Attends every item's chunk rows for `layer`, then stores their keys and values in the caches.
    /// q, k, v, out: stacked (rows, C) buffers.
    func run(_ items: [AttentionItem], layer: Int, kind: GPTNeoConfig.AttentionKind, config: GPTNeoConfig, scratch: Scratch,
             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let (heads, headDim, window, C) = (config.numHeads, config.headDim, config.windowSize, config.hiddenSize)
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
            gatherChunkHeads(items: items, rows: k, heads: keyHeads, C: C, numHeads: heads)
            gatherChunkHeads(items: items, rows: v, heads: valueHeads, C: C, numHeads: heads)
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
                        attendHead(item: item, head: head, queryRows: firstRow..<min(item.length, firstRow + Self.rowsPerTask),
                                   layer: layer, kind: kind, window: window, q: q,
                                   chunkKeys: chunkHeads(item: item, head: head, rows: k, heads: keyHeads, C: C, headDim: headDim),
                                   chunkValues: chunkHeads(item: item, head: head, rows: v, heads: valueHeads, C: C, headDim: headDim),
                                   out: out, scores: scores, C: C, headDim: headDim)
                    }
                }
            }
            for item in items {
                for head in 0..<heads {
                    storeChunk(item: item, layer: layer, head: head,
                               chunkKeys: chunkHeads(item: item, head: head, rows: k, heads: keyHeads, C: C, headDim: headDim),
                               chunkValues: chunkHeads(item: item, head: head, rows: v, heads: valueHeads, C: C, headDim: headDim))
                }
            }
        }
    }
}

// MARK: - One head

/// Attention of one head for the chunk rows `queryRows` of one item, for one layer.
/// q, out: stacked (rows, C) buffers; chunkKeys, chunkValues: this head's (length, headDim) chunk
/// (`chunkHeads`); scores: scratch of at least start+length floats.
func attendHead(item: AttentionItem, head: Int, queryRows: Range<Int>, layer: Int, kind: GPTNeoConfig.AttentionKind, window: Int,
                q: UnsafePointer<Float>, chunkKeys: UnsafePointer<Float>, chunkValues: UnsafePointer<Float>,
                out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, C: Int, headDim: Int) {
    let stored = item.cache.stored(layer: layer, head: head)
    let headOffset = head * headDim

    // Positions j ..< j + count with contiguous keys and values: from the chunk when j >= start,
    // else a run of the cache's slots; never crossing `end`.
    @inline(__always) func run(from j: Int, to end: Int) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int) {
        if j >= item.start {
            let offset = (j - item.start) * headDim
            return (chunkKeys + offset, chunkValues + offset, end - j)
        }
        let cached = stored.run(from: j, to: min(end, item.start))
        return (UnsafePointer(cached.keys), UnsafePointer(cached.values), cached.count)
    }

    for t in queryRows {
        let position = item.start + t
        let first = kind == .global ? 0 : max(0, position - window + 1)
        let keyCount = position - first + 1
        let query = q + (item.firstRow + t) * C + headOffset

        var j = first
        while j <= position {
            let keys = run(from: j, to: position + 1)
            dotProducts(query, keys: keys.keys, count: keys.count, headDim: headDim, into: scores + (j - first))
            j += keys.count
        }

        // Softmax in fp32: exp lane-wise (vectorized), the sum in ascending position.
        var maxScore = -Float.infinity
        for i in 0..<keyCount { maxScore = max(maxScore, scores[i]) }
        expShiftedInPlace(scores, count: keyCount, shift: maxScore)
        var total: Float = 0
        for i in 0..<keyCount { total += scores[i] }
        for i in 0..<keyCount { scores[i] = scores[i] / total }

        // Weighted sum of values with the normalized probabilities, like softmax(...) @ v: every
        // output element accumulates its keys in ascending position, one FMA each.
        let output = out + (item.firstRow + t) * C + headOffset
        if headDim % 64 == 0 {
            // 64 output values at a time in eight registers (head_dim is 64 or 128 in every GPT-Neo).
            for group in stride(from: 0, to: headDim, by: 64) {
                var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
                var a4 = Vector(), a5 = Vector(), a6 = Vector(), a7 = Vector()
                var j = first
                while j <= position {
                    let values = run(from: j, to: position + 1)
                    let probabilities = scores + (j - first)
                    for i in 0..<values.count {
                        let p = Vector(repeating: probabilities[i])
                        let value = values.values + i * headDim + group
                        a0 = a0.addingProduct(p, loadVector(value)); a1 = a1.addingProduct(p, loadVector(value + 8))
                        a2 = a2.addingProduct(p, loadVector(value + 16)); a3 = a3.addingProduct(p, loadVector(value + 24))
                        a4 = a4.addingProduct(p, loadVector(value + 32)); a5 = a5.addingProduct(p, loadVector(value + 40))
                        a6 = a6.addingProduct(p, loadVector(value + 48)); a7 = a7.addingProduct(p, loadVector(value + 56))
                    }
                    j += values.count
                }
                let o = output + group
                storeVector(a0, o); storeVector(a1, o + 8); storeVector(a2, o + 16); storeVector(a3, o + 24)
                storeVector(a4, o + 32); storeVector(a5, o + 40); storeVector(a6, o + 48); storeVector(a7, o + 56)
            }
            continue
        }
        // Any other head size: the same accumulation (ascending keys, one FMA each) through memory.
        output.update(repeating: 0, count: headDim)
        j = first
        while j <= position {
            let values = run(from: j, to: position + 1)
            for i in 0..<values.count {
                accumulate(output, scores[j - first + i], values.values + i * headDim, count: headDim)
            }
            j += values.count
        }
    }
}

/// scores[i] = query · keys[i] for `count` keys stored one after another, four keys at a time for
/// independent FMA chains; each key's score is the same SIMD8 accumulation + fixed horizontal sum
/// whichever group it falls in.
@inline(__always) private func dotProducts(_ query: UnsafePointer<Float>, keys: UnsafePointer<Float>, count: Int, headDim: Int,
                                           into scores: UnsafeMutablePointer<Float>) {
    let fullVectors = headDim / vectorWidth
    let tail = headDim - fullVectors * vectorWidth
    @inline(__always) func finishScore(_ accumulator: Vector, _ key: UnsafePointer<Float>) -> Float {
        var accumulator = accumulator
        if tail > 0 {
            let offset = fullVectors * vectorWidth
            accumulator = accumulator.addingProduct(loadPartial(query + offset, tail), loadPartial(key + offset, tail))
        }
        return horizontalSum(accumulator)
    }
    var i = 0
    while i + 4 <= count {
        let k0 = keys + i * headDim, k1 = k0 + headDim, k2 = k1 + headDim, k3 = k2 + headDim
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
        for block in 0..<fullVectors {
            let offset = block * vectorWidth
            let queryVector = loadVector(query + offset)
            a0 = a0.addingProduct(queryVector, loadVector(k0 + offset))
            a1 = a1.addingProduct(queryVector, loadVector(k1 + offset))
            a2 = a2.addingProduct(queryVector, loadVector(k2 + offset))
            a3 = a3.addingProduct(queryVector, loadVector(k3 + offset))
        }
        scores[i] = finishScore(a0, k0)
        scores[i + 1] = finishScore(a1, k1)
        scores[i + 2] = finishScore(a2, k2)
        scores[i + 3] = finishScore(a3, k3)
        i += 4
    }
    while i < count {
        let key = keys + i * headDim
        var accumulator = Vector()
        for block in 0..<fullVectors {
            accumulator = accumulator.addingProduct(loadVector(query + block * vectorWidth), loadVector(key + block * vectorWidth))
        }
        scores[i] = finishScore(accumulator, key)
        i += 1
    }
}

/// output += probability × value over `count` floats, one FMA per element (the tail zero-padded).
@inline(__always) private func accumulate(_ output: UnsafeMutablePointer<Float>, _ probability: Float, _ value: UnsafePointer<Float>,
                                          count: Int) {
    let p = Vector(repeating: probability)
    let full = count / vectorWidth * vectorWidth
    var c = 0
    while c < full { storeVector(loadVector(output + c).addingProduct(p, loadVector(value + c)), output + c); c += vectorWidth }
    if c < count { storePartial(loadPartial(output + c, count - c).addingProduct(p, loadPartial(value + c, count - c)), output + c, count - c) }
}

// MARK: - Into the cache

/// Stores one head of the chunk's keys and values in the cache (after every query of the chunk has
/// read the old entries): global layers every position, local layers only the last `window`
/// positions, which are all a later query can see.
func storeChunk(item: AttentionItem, layer: Int, head: Int, chunkKeys: UnsafePointer<Float>, chunkValues: UnsafePointer<Float>) {
    let stored = item.cache.stored(layer: layer, head: head)
    let end = item.start + item.length
    var position = max(item.start, end - item.cache.slotCount(layer: layer))
    while position < end {
        let run = stored.run(from: position, to: end)
        let offset = (position - item.start) * stored.headDim
        run.keys.update(from: chunkKeys + offset, count: run.count * stored.headDim)
        run.values.update(from: chunkValues + offset, count: run.count * stored.headDim)
        position += run.count
    }
}
