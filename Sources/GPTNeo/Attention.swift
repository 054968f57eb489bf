import Foundation

// GPTNeoSelfAttention._attn of modeling_gpt_neo.py for one sequence, one head: scores q·k with NO
// 1/sqrt(head_dim) scaling (GPT-Neo's quirk), masked causally (local layers: the current position and
// the previous window_size - 1), softmax in fp32, then the probability-weighted sum of values.
// Masked positions get finfo.min in transformers, so exp() makes them exactly 0: skipping them is the
// same computation. Keys are visited in ascending position, so a query's result does not depend on
// how the sequence was split into chunks or batched.

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

/// Attention of one head over one item's chunk, for one layer.
/// q, k, v, out: stacked (rows, C) buffers; the item's rows are firstRow..<firstRow+length.
/// scores: scratch of at least start+length floats.
func attendHead(item: AttentionItem, head: Int, layer: Int, kind: GPTNeoConfig.AttentionKind, window: Int,
                q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, C: Int, headDim: Int) {
    let stored = item.cache.rows(layer: layer)
    let headOffset = head * headDim
    let fullVectors = headDim / vectorWidth
    let tail = headDim - fullVectors * vectorWidth

    // Position j's key/value row: from this chunk when j >= start, else from the cache's slot.
    @inline(__always) func keyRow(_ j: Int) -> UnsafePointer<Float> {
        j >= item.start ? k + (item.firstRow + j - item.start) * C : stored.key(j)
    }
    @inline(__always) func valueRow(_ j: Int) -> UnsafePointer<Float> {
        j >= item.start ? v + (item.firstRow + j - item.start) * C : stored.value(j)
    }

    for t in 0..<item.length {
        let position = item.start + t
        let first = kind == .global ? 0 : max(0, position - window + 1)
        let keyCount = position - first + 1
        let query = q + (item.firstRow + t) * C + headOffset

        // Scores q·k, four keys at a time for independent FMA chains; each key's score is the same
        // SIMD8 accumulation + fixed horizontal sum whichever group it falls in.
        @inline(__always) func finishScore(_ accumulator: Vector, _ key: UnsafePointer<Float>) -> Float {
            var accumulator = accumulator
            if tail > 0 {
                let offset = fullVectors * vectorWidth
                accumulator = accumulator.addingProduct(loadPartial(query + offset, tail), loadPartial(key + offset, tail))
            }
            return horizontalSum(accumulator)
        }
        var j = first
        while j + 4 <= position + 1 {
            let k0 = keyRow(j) + headOffset, k1 = keyRow(j + 1) + headOffset
            let k2 = keyRow(j + 2) + headOffset, k3 = keyRow(j + 3) + headOffset
            var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
            for block in 0..<fullVectors {
                let offset = block * vectorWidth
                let queryVector = loadVector(query + offset)
                a0 = a0.addingProduct(queryVector, loadVector(k0 + offset))
                a1 = a1.addingProduct(queryVector, loadVector(k1 + offset))
                a2 = a2.addingProduct(queryVector, loadVector(k2 + offset))
                a3 = a3.addingProduct(queryVector, loadVector(k3 + offset))
            }
            scores[j - first] = finishScore(a0, k0)
            scores[j - first + 1] = finishScore(a1, k1)
            scores[j - first + 2] = finishScore(a2, k2)
            scores[j - first + 3] = finishScore(a3, k3)
            j += 4
        }
        while j <= position {
            let key = keyRow(j) + headOffset
            var accumulator = Vector()
            for block in 0..<fullVectors {
                accumulator = accumulator.addingProduct(loadVector(query + block * vectorWidth), loadVector(key + block * vectorWidth))
            }
            scores[j - first] = finishScore(accumulator, key)
            j += 1
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
                for i in 0..<keyCount {
                    let p = Vector(repeating: scores[i])
                    let value = valueRow(first + i) + headOffset + group
                    a0 = a0.addingProduct(p, loadVector(value)); a1 = a1.addingProduct(p, loadVector(value + 8))
                    a2 = a2.addingProduct(p, loadVector(value + 16)); a3 = a3.addingProduct(p, loadVector(value + 24))
                    a4 = a4.addingProduct(p, loadVector(value + 32)); a5 = a5.addingProduct(p, loadVector(value + 40))
                    a6 = a6.addingProduct(p, loadVector(value + 48)); a7 = a7.addingProduct(p, loadVector(value + 56))
                }
                let o = output + group
                storeVector(a0, o); storeVector(a1, o + 8); storeVector(a2, o + 16); storeVector(a3, o + 24)
                storeVector(a4, o + 32); storeVector(a5, o + 40); storeVector(a6, o + 48); storeVector(a7, o + 56)
            }
            continue
        }
        // Any other head size: the same accumulation (ascending keys, one FMA each) through memory.
        output.update(repeating: 0, count: headDim)
        for i in 0..<keyCount {
            let probability = Vector(repeating: scores[i])
            let value = valueRow(first + i) + headOffset
            for block in 0..<fullVectors {
                let offset = block * vectorWidth
                storeVector(loadVector(output + offset).addingProduct(probability, loadVector(value + offset)), output + offset)
            }
            if tail > 0 {
                let offset = fullVectors * vectorWidth
                storePartial(loadPartial(output + offset, tail).addingProduct(probability, loadPartial(value + offset, tail)), output + offset, tail)
            }
        }
    }
}

/// Stores the chunk's keys and values in the cache (after every query of the chunk has read the old
/// entries): global layers every position, local layers only the last `window` positions, which are
/// all a later query can see.
func storeChunk(item: AttentionItem, layer: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, C: Int) {
    let cache = item.cache
    let slots = cache.slotCount(layer: layer)
    let firstStored = max(item.start, item.start + item.length - slots)
    for position in firstStored..<(item.start + item.length) {
        let row = item.firstRow + position - item.start
        let slot = cache.slot(layer: layer, position: position)
        cache.keyRow(layer: layer, slot: slot).update(from: k + row * C, count: C)
        cache.valueRow(layer: layer, slot: slot).update(from: v + row * C, count: C)
    }
}
