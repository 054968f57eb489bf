import CAttention512
import CPrefetch
import Foundation

// GPTNeoSelfAttention._attn of modeling_gpt_neo.py for one sequence, one head: scores q·k with NO
// 1/sqrt(head_dim) scaling (GPT-Neo's quirk), masked causally (local layers: the current position and
// the previous window_size - 1), softmax in fp32, then the probability-weighted sum of values.
// Masked positions get finfo.min in transformers, so exp() makes them exactly 0: skipping them is the
// same computation. Keys are visited in ascending position, so a query's result does not depend on
// how the sequence was split into chunks or batched.
//
// Every score is one SIMD8 FMA chain over head_dim and one fixed horizontal-sum tree; every output
// element one FMA chain over the keys in ascending position. Decode rows are attended one at a time,
// prefill rows four at a time (each key loaded once for four queries, the four softmaxes side by side
// in SIMD lanes), with the same arithmetic for every value: a row's bits do not depend on its group.
// Where the float products run on AVX-512F (FloatKernel), the scores, and the groups' weighted values,
// take the same arithmetic in 512-bit registers (AttentionWideKernels.swift).
//
// Memory: one head's keys and values are read as contiguous runs, from the cache's blocks (laid out
// head by head, KVCache.swift) and from the chunk's rows rearranged head by head (AttentionTasks.swift),
// and each run's pass prefetches the next run: the blocks are scattered in memory, and 32 slots are
// too short a run for the hardware prefetcher to ramp up on its own.

/// Query rows attended together in prefill.
let attentionQueryGroup = 4

// MARK: - One head's keys and values

/// One head's keys and values by position for one item's forward: the cache's slots before the
/// chunk, the chunk's own rows from `start` on.
struct HeadKeysAndValues {
    let stored: KVCache.StoredHead
    /// The chunk's first position.
    let start: Int
    let headDim: Int
    /// The chunk's keys and values of this head, (length, headDim).
    let chunkKeys: UnsafePointer<Float>
    let chunkValues: UnsafePointer<Float>

    /// Positions j ..< j + count with contiguous keys and values, never crossing `end`.
    @inline(__always) func run(from j: Int, to end: Int) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int) {
        if j >= start {
            let offset = (j - start) * headDim
            return (chunkKeys + offset, chunkValues + offset, end - j)
        }
        let cached = stored.run(from: j, to: min(end, start))
        return (UnsafePointer(cached.keys), UnsafePointer(cached.values), cached.count)
    }
}

// MARK: - One head

/// Attention of one head for the chunk rows `queryRows` of one item, on `kernel`'s code (the same bits
/// on every code). q: stacked rows of queries, one every `queryStride` floats; out: stacked (rows, C);
/// scores: scratch of attentionQueryGroup × (start + length) floats.
func attendHead(_ keysAndValues: HeadKeysAndValues, queryRows: Range<Int>, item: AttentionItem, head: Int,
                kind: GPTNeoConfig.AttentionKind, window: Int, q: UnsafePointer<Float>, queryStride: Int,
                out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, C: Int, kernel: FloatKernel = .inUse) {
    let headDim = keysAndValues.headDim
    let wide = kernel.attendsWide(headDim: headDim)
    @inline(__always) func firstKey(_ position: Int) -> Int { kind == .global ? 0 : max(0, position - window + 1) }
    @inline(__always) func query(_ t: Int) -> UnsafePointer<Float> { q + (item.firstRow + t) * queryStride + head * headDim }
    @inline(__always) func output(_ t: Int) -> UnsafeMutablePointer<Float> { out + (item.firstRow + t) * C + head * headDim }
    // The first pass over the keys reads them from memory; later groups find them in cache.
    var cold = true
    var t = queryRows.lowerBound
    while t < queryRows.upperBound {
        let rows = min(attentionQueryGroup, queryRows.upperBound - t)
        let position = item.start + t
        // The next group's queries, rows of the stacked q, k, v written long before: their loads at the
        // start of the scores otherwise wait on memory.
        for next in (t + rows)..<min(t + rows + attentionQueryGroup, queryRows.upperBound) {
            var offset = 0
            while offset < headDim { prefetchForRead(query(next) + offset); offset += 16 }
        }
        if rows == 1 {
            let keys = firstKey(position)..<(position + 1)
            if wide {
                wideScoreKeys(query(t), keysAndValues, keys, into: scores, prefetch: cold)
            } else {
                scoreKeys(query(t), keysAndValues, keys, into: scores, prefetch: cold)
            }
            softmaxInPlace(scores, count: keys.count)
            // Reading the values, not the FMAs, bounds one query's weighted sum: in 512-bit registers it
            // measured no faster, so the AVX2 kernel serves every code.
            weightedValues(output(t), keysAndValues, keys, probabilities: scores, stride: 1, prefetch: cold)
        } else {
            // Scores of the union of the rows' keys, (keys, 4); each row's keys outside its own range
            // are set to -inf, which the softmax turns into exactly 0 (as transformers' mask does).
            let union = firstKey(position)..<(position + rows)
            // Lanes past `rows` repeat the last row (computed, never used).
            @inline(__always) func lane(_ index: Int) -> Int { min(index, rows - 1) }
            @inline(__always) func own(_ index: Int) -> Range<Int> { firstKey(position + lane(index))..<(position + lane(index) + 1) }
            if wide {
                wideScoreKeys(query(t + lane(0)), query(t + lane(1)), query(t + lane(2)), query(t + lane(3)), keysAndValues,
                              union, into: scores, prefetch: cold)
            } else {
                scoreKeys(query(t + lane(0)), query(t + lane(1)), query(t + lane(2)), query(t + lane(3)), keysAndValues,
                          union, into: scores, prefetch: cold)
            }
            for index in 0..<attentionQueryGroup {
                for j in union.lowerBound..<own(index).lowerBound { scores[(j - union.lowerBound) * attentionQueryGroup + index] = -.infinity }
                for j in own(index).upperBound..<union.upperBound { scores[(j - union.lowerBound) * attentionQueryGroup + index] = -.infinity }
            }
            softmaxInPlace(groupScores: scores, keyCount: union.count)
            if wide {
                var lanes = gptneo_attention512_rows()
                lanes.outputs = (output(t + lane(0)), output(t + lane(1)), output(t + lane(2)), output(t + lane(3)))
                lanes.first = (own(0).lowerBound, own(1).lowerBound, own(2).lowerBound, own(3).lowerBound)
                lanes.end = (own(0).upperBound, own(1).upperBound, own(2).upperBound, own(3).upperBound)
                wideWeightedValues(lanes, rowCount: rows, keysAndValues, union, probabilities: scores, prefetch: cold)
            } else {
                for lane in 0..<rows {
                    weightedValues(output(t + lane), keysAndValues, own(lane),
                                   probabilities: scores + (own(lane).lowerBound - union.lowerBound) * attentionQueryGroup + lane,
                                   stride: attentionQueryGroup, prefetch: cold && lane == 0)
                }
            }
        }
        t += rows
        cold = false
    }
}
