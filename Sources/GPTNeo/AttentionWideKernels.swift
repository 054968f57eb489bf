import CAttention512
import Foundation

// The attention kernels on CPUs with AVX-512F, chosen with the float products (FloatKernel.swift): the
// same arithmetic for every score and every output element as the AVX2 kernels in AttentionKernels.swift,
// with twice the values per register (Sources/CAttention512): the prefill's scores and weighted values
// for four queries at a time, and a decode query's scores, whose sum tree then reduces 16 keys per
// register instead of one. A 512-token prefill of the 125M model spends ~13 % of its time scoring keys
// and weighting values.

extension FloatKernel {
    /// Whether attention with heads of `headDim` floats runs the AVX-512 kernels: head_dim a multiple of
    /// 64 (64 or 128 in every GPT-Neo) and small enough for the packed queries.
    func attendsWide(headDim: Int) -> Bool {
        self == .avx512 && headDim % 64 == 0 && headDim <= Int(GPTNEO_A512_MAX_HEAD_DIM)
    }
}

/// scores[j - keys.lowerBound] = query · key(j) for j in `keys`, as the one-query `scoreKeys`.
func wideScoreKeys(_ query: UnsafePointer<Float>, _ keysAndValues: HeadKeysAndValues, _ keys: Range<Int>,
                   into scores: UnsafeMutablePointer<Float>, prefetch: Bool) {
    let headDim = keysAndValues.headDim
    forEachKeyRun(keysAndValues, keys, prefetch: prefetch) { run, count, offset, prefetchBase, prefetchCount in
        gptneo_attention512_score_keys_one(query, run, count, headDim, scores + offset, prefetchBase, prefetchCount)
    }
}

/// scores[(j - keys.lowerBound) * 4 + r] = query_r · key(j) for j in `keys`, as the four-query `scoreKeys`.
func wideScoreKeys(_ query0: UnsafePointer<Float>, _ query1: UnsafePointer<Float>, _ query2: UnsafePointer<Float>,
                   _ query3: UnsafePointer<Float>, _ keysAndValues: HeadKeysAndValues, _ keys: Range<Int>,
                   into scores: UnsafeMutablePointer<Float>, prefetch: Bool) {
    let headDim = keysAndValues.headDim
    forEachKeyRun(keysAndValues, keys, prefetch: prefetch) { run, count, offset, prefetchBase, prefetchCount in
        gptneo_attention512_score_keys(query0, query1, query2, query3, run, count, headDim,
                                       scores + offset * attentionQueryGroup, prefetchBase, prefetchCount)
    }
}

/// The outputs of `rowCount` (1…4) query rows, as `weightedValues` gives each of them alone: row r's
/// (headDim) = Σ probabilities[(j - keys.lowerBound) * 4 + r] × value(j) over j in its own keys
/// `rows.first[r] ..< rows.end[r]` (positions, within `keys`), ascending. Each value is read once for
/// all rows. With `prefetch`, each run's pass prefetches the next run.
func wideWeightedValues(_ rows: gptneo_attention512_rows, rowCount: Int, _ keysAndValues: HeadKeysAndValues,
                        _ keys: Range<Int>, probabilities: UnsafePointer<Float>, prefetch: Bool) {
    let headDim = keysAndValues.headDim
    for column in stride(from: 0, to: headDim, by: 64) {
        var j = keys.lowerBound
        var run = keysAndValues.run(from: j, to: keys.upperBound)
        while true {
            let after = j + run.count
            let upcoming = after < keys.upperBound ? keysAndValues.run(from: after, to: keys.upperBound) : run
            // Own keys counted from the run's first.
            var runRows = rows
            runRows.first = (rows.first.0 - j, rows.first.1 - j, rows.first.2 - j, rows.first.3 - j)
            runRows.end = (rows.end.0 - j, rows.end.1 - j, rows.end.2 - j, rows.end.3 - j)
            gptneo_attention512_weighted_values(Int32(rowCount), runRows, column, j == keys.lowerBound ? 0 : 1, run.values, run.count,
                                                headDim, probabilities + (j - keys.lowerBound) * attentionQueryGroup,
                                                upcoming.values, prefetch && after < keys.upperBound ? upcoming.count : 0)
            if after == keys.upperBound { break }
            (j, run) = (after, upcoming)
        }
    }
}
