#ifndef CATTENTION512_H
#define CATTENTION512_H

#if defined(__x86_64__)
#include <immintrin.h>

// The attention kernels (Sources/GPTNeo/AttentionKernels.swift: one query, or four at a time) with
// AVX-512F, for CPUs that have it; chosen at run time with the float products (FloatKernel.swift), since the
// build targets AVX2. Every value gets the AVX2 kernels' arithmetic exactly, only more independent values
// share a register:
// - a score query · key is eight FMA chains, lane l over the elements l, l + 8, l + 16, … of head_dim,
//   summed ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)). Here one 512-bit register holds the eight
//   chains of two queries with one key (the queries' blocks side by side, the key's block broadcast to
//   both halves) or of one query with two keys, and the same tree of adds reduces 16 scores (4 keys × 4
//   queries, or 16 keys) at once.
// - an output element of the probability-weighted values is one FMA chain over its query's keys in
//   ascending position, from 0. Here 16 columns share a register, and four queries read each value once;
//   a key outside a query's own range is skipped (no FMA), not multiplied by its zero probability.

#define GPTNEO_A512_INLINE __attribute__((target("avx512f"), always_inline)) static inline

/// Most floats of one head that the score kernel's packed queries hold.
#define GPTNEO_A512_MAX_HEAD_DIM 256

/// Eight floats at `p`, in both halves of a register.
GPTNEO_A512_INLINE __m512 gptneo_a512_both_halves(const float *p) {
    return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(p))));
}

/// Eight floats at `low` in the lower half of a register, eight at `high` in the upper.
GPTNEO_A512_INLINE __m512 gptneo_a512_side_by_side(const float *low, const float *high) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(low))),
                                               _mm256_castps_pd(_mm256_loadu_ps(high)), 1));
}

/// The first step of the sum tree for two registers of two chains each: lanes (a.low + a.high of each
/// 8-lane half), as four sums of four per 128-bit lane: (a's first, a's second, b's first, b's second).
GPTNEO_A512_INLINE __m512 gptneo_a512_halves(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
}

/// The second step, per 128-bit lane: (x0 + x2, x1 + x3, y0 + y2, y1 + y3).
GPTNEO_A512_INLINE __m512 gptneo_a512_quarters(__m512 x, __m512 y) {
    return _mm512_add_ps(_mm512_shuffle_ps(x, y, 0x44), _mm512_shuffle_ps(x, y, 0xEE));
}

/// The last step, per 128-bit lane: (x0 + x1, x2 + x3, y0 + y1, y2 + y3).
GPTNEO_A512_INLINE __m512 gptneo_a512_pairs(__m512 x, __m512 y) {
    return _mm512_add_ps(_mm512_shuffle_ps(x, y, 0x88), _mm512_shuffle_ps(x, y, 0xDD));
}

/// The sum tree of eight registers of two chains each (chains c0…c15 in register order, two per register),
/// then its first `count` of the 16 sums stored in chain order: the tree leaves lane 4·r + m with chain
/// r + 4·m.
GPTNEO_A512_INLINE void gptneo_a512_store_sums(float *sums, long count, __m512 a0, __m512 a1, __m512 a2, __m512 a3,
                                              __m512 a4, __m512 a5, __m512 a6, __m512 a7) {
    const __m512 tree = gptneo_a512_pairs(gptneo_a512_quarters(gptneo_a512_halves(a0, a1), gptneo_a512_halves(a2, a3)),
                                          gptneo_a512_quarters(gptneo_a512_halves(a4, a5), gptneo_a512_halves(a6, a7)));
    const __m512i chainOrder = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_mask_storeu_ps(sums, (__mmask16)((1u << count) - 1), _mm512_permutexvar_ps(chainOrder, tree));
}

/// Prefetches the cache lines of `count` floats from `address`.
GPTNEO_A512_INLINE void gptneo_a512_prefetch(const float *address, long count) {
    for (long offset = 0; offset < count; offset += 16) _mm_prefetch((const char *)(address + offset), _MM_HINT_T0);
}

/// scores[i * 4 + r] = query_r · key_i for `count` keys stored one after another (count × headDim floats;
/// headDim a multiple of 8, at most GPTNEO_A512_MAX_HEAD_DIM), four keys at a time. Prefetches
/// `prefetchCount` vectors of headDim floats from `prefetch`.
__attribute__((target("avx512f"))) static inline void
gptneo_attention512_score_keys(const float *query0, const float *query1, const float *query2, const float *query3,
                               const float *keys, long count, long headDim, float *scores,
                               const float *prefetch, long prefetchCount) {
    const long blocks = headDim / 8;
    // Block b of queries (0, 1) and of queries (2, 3), side by side.
    __m512 queries01[GPTNEO_A512_MAX_HEAD_DIM / 8], queries23[GPTNEO_A512_MAX_HEAD_DIM / 8];
    for (long b = 0; b < blocks; b++) {
        queries01[b] = gptneo_a512_side_by_side(query0 + 8 * b, query1 + 8 * b);
        queries23[b] = gptneo_a512_side_by_side(query2 + 8 * b, query3 + 8 * b);
    }
    for (long i = 0; i < count; i += 4) {
        const long n = count - i < 4 ? count - i : 4;
        // Keys past the end repeat the last one (computed, never stored).
        const float *k0 = keys + i * headDim;
        const float *k1 = n > 1 ? k0 + headDim : k0;
        const float *k2 = n > 2 ? k1 + headDim : k1;
        const float *k3 = n > 3 ? k2 + headDim : k2;
        if (i < prefetchCount) gptneo_a512_prefetch(prefetch + i * headDim, (prefetchCount - i < 4 ? prefetchCount - i : 4) * headDim);
        // a<k><p>: key k with queries (2p, 2p + 1).
        __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        for (long b = 0; b < blocks; b++) {
            const __m512 q01 = queries01[b], q23 = queries23[b];
            __m512 key = gptneo_a512_both_halves(k0 + 8 * b);
            a00 = _mm512_fmadd_ps(q01, key, a00); a01 = _mm512_fmadd_ps(q23, key, a01);
            key = gptneo_a512_both_halves(k1 + 8 * b);
            a10 = _mm512_fmadd_ps(q01, key, a10); a11 = _mm512_fmadd_ps(q23, key, a11);
            key = gptneo_a512_both_halves(k2 + 8 * b);
            a20 = _mm512_fmadd_ps(q01, key, a20); a21 = _mm512_fmadd_ps(q23, key, a21);
            key = gptneo_a512_both_halves(k3 + 8 * b);
            a30 = _mm512_fmadd_ps(q01, key, a30); a31 = _mm512_fmadd_ps(q23, key, a31);
        }
        // halves: per 128-bit lane r, key k's four sums with query r; quarters: keys (0, 1) and (2, 3).
        gptneo_a512_store_sums(scores + i * 4, 4 * n, a00, a01, a10, a11, a20, a21, a30, a31);
    }
}

/// scores[0 ..< n] = query · key_j for the n (1 … 16) keys stored one after another from `first`, each
/// register holding two keys' eight chains (the query's block in both halves); keys past n repeat the last
/// (computed, never stored). Prefetches the first `prefetchFloats` (at most 16 × headDim) from `prefetch`.
GPTNEO_A512_INLINE void gptneo_a512_score_sixteen_keys(const float *query, const float *first, long n, long headDim,
                                                       float *scores, const float *prefetch, long prefetchFloats) {
    // a[p]: keys (2p, 2p + 1).
    __m512 a[8];
    _Pragma("clang loop unroll(full)")
    for (int p = 0; p < 8; p++) a[p] = _mm512_setzero_ps();
    for (long b = 0; b < headDim / 8; b++) {
        const __m512 q = gptneo_a512_both_halves(query + 8 * b);
        // The prefetches spread over the blocks (eight lines each): a burst of them all would fill the
        // queue of outstanding misses and stall the loads.
        _Pragma("clang loop unroll(full)")
        for (int line = 0; line < 8; line++) {
            if (128 * b + 16 * line < prefetchFloats) _mm_prefetch((const char *)(prefetch + 128 * b + 16 * line), _MM_HINT_T0);
        }
        _Pragma("clang loop unroll(full)")
        for (int p = 0; p < 8; p++) {
            const float *k0 = first + (2 * p < n ? 2 * p : n - 1) * headDim + 8 * b;
            const float *k1 = first + (2 * p + 1 < n ? 2 * p + 1 : n - 1) * headDim + 8 * b;
            a[p] = _mm512_fmadd_ps(q, gptneo_a512_side_by_side(k0, k1), a[p]);
        }
    }
    // halves: per 128-bit lane r, key r's four sums (of keys 0…3, 4…7, …); quarters: keys r and 4 + r.
    gptneo_a512_store_sums(scores, n, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
}

/// scores[i] = query · key_i for `count` keys stored one after another (count × headDim floats; headDim a
/// multiple of 8), sixteen keys at a time. Prefetches `prefetchCount` vectors of headDim floats from `prefetch`.
GPTNEO_A512_INLINE void gptneo_a512_score_keys_one(const float *query, const float *keys, long count, long headDim,
                                                   float *scores, const float *prefetch, long prefetchCount) {
    for (long i = 0; i < count; i += 16) {
        const long prefetchFloats = i < prefetchCount ? (prefetchCount - i < 16 ? prefetchCount - i : 16) * headDim : 0;
        // A whole group's keys sit at constant offsets from its first (no per-key bounds).
        if (count - i >= 16) {
            gptneo_a512_score_sixteen_keys(query, keys + i * headDim, 16, headDim, scores + i, prefetch + i * headDim, prefetchFloats);
        } else {
            gptneo_a512_score_sixteen_keys(query, keys + i * headDim, count - i, headDim, scores + i, prefetch + i * headDim, prefetchFloats);
        }
    }
}

/// gptneo_a512_score_keys_one with GPT-Neo's head sizes as constants: the keys' offsets in the addresses.
__attribute__((target("avx512f"))) static inline void
gptneo_attention512_score_keys_one(const float *query, const float *keys, long count, long headDim, float *scores,
                                   const float *prefetch, long prefetchCount) {
    switch (headDim) {
    case 64: gptneo_a512_score_keys_one(query, keys, count, 64, scores, prefetch, prefetchCount); break;
    case 128: gptneo_a512_score_keys_one(query, keys, count, 128, scores, prefetch, prefetchCount); break;
    default: gptneo_a512_score_keys_one(query, keys, count, headDim, scores, prefetch, prefetchCount); break;
    }
}

/// Where in a run of keys each of four queries reads: its output (the 64 columns from `column` on) and
/// its own keys, first ..< end, counted from the run's first key.
typedef struct {
    float *outputs[4];
    long first[4];
    long end[4];
} gptneo_attention512_rows;

/// outputs[r][column ..< column + 64] (+)= Σ probabilities[i * 4 + r] × values[i][column ..< column + 64]
/// over the run's keys i in first[r] ..< end[r] ascending, for R rows, from 0 unless `continuing` (then
/// from the chains' partial sums in the outputs). Prefetches those columns of `prefetchCount` values.
GPTNEO_A512_INLINE void gptneo_a512_weighted_values(const int R, gptneo_attention512_rows rows, long column, int continuing,
                                                    const float *values, long count, long headDim,
                                                    const float *probabilities, const float *prefetch, long prefetchCount) {
    __m512 acc[4][4];
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 4; c++) {
            acc[r][c] = r < R && continuing ? _mm512_loadu_ps(rows.outputs[r] + column + 16 * c) : _mm512_setzero_ps();
        }
    }
    for (long i = 0; i < count; i++) {
        const float *value = values + i * headDim + column;
        if (i < prefetchCount) gptneo_a512_prefetch(prefetch + i * headDim + column, 64);
        const __m512 v0 = _mm512_loadu_ps(value), v1 = _mm512_loadu_ps(value + 16);
        const __m512 v2 = _mm512_loadu_ps(value + 32), v3 = _mm512_loadu_ps(value + 48);
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < 4; r++) {
            if (r < R && i >= rows.first[r] && i < rows.end[r]) {
                const __m512 p = _mm512_set1_ps(probabilities[i * 4 + r]);
                acc[r][0] = _mm512_fmadd_ps(p, v0, acc[r][0]); acc[r][1] = _mm512_fmadd_ps(p, v1, acc[r][1]);
                acc[r][2] = _mm512_fmadd_ps(p, v2, acc[r][2]); acc[r][3] = _mm512_fmadd_ps(p, v3, acc[r][3]);
            }
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < 4; r++) {
        if (r >= R) continue;
        for (int c = 0; c < 4; c++) _mm512_storeu_ps(rows.outputs[r] + column + 16 * c, acc[r][c]);
    }
}

/// gptneo_a512_weighted_values for `rowCount` = 1 … 4 rows, each its own unrolled copy.
__attribute__((target("avx512f"))) static inline void
gptneo_attention512_weighted_values(int rowCount, gptneo_attention512_rows rows, long column, int continuing,
                                    const float *values, long count, long headDim, const float *probabilities,
                                    const float *prefetch, long prefetchCount) {
    switch (rowCount) {
    case 1: gptneo_a512_weighted_values(1, rows, column, continuing, values, count, headDim, probabilities, prefetch, prefetchCount); break;
    case 2: gptneo_a512_weighted_values(2, rows, column, continuing, values, count, headDim, probabilities, prefetch, prefetchCount); break;
    case 3: gptneo_a512_weighted_values(3, rows, column, continuing, values, count, headDim, probabilities, prefetch, prefetchCount); break;
    default: gptneo_a512_weighted_values(4, rows, column, continuing, values, count, headDim, probabilities, prefetch, prefetchCount); break;
    }
}

#endif
#endif
