#ifndef CFLOAT512_H
#define CFLOAT512_H

#include <stddef.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

// float32, float16 and bfloat16 weight panels (Sources/GPTNeo/MatMul.swift: k-major panels of 16 output
// columns, one panel row = 16 weights = one 512-bit register once widened) multiplied with AVX-512F, for
// CPUs that have it; chosen at run time, since the build targets AVX2. 16-bit rows are widened exactly, as
// in the AVX2 tiles (VCVTPH2PS; bfloat16 zero-extended and shifted into a float's upper half). Each 512-bit FMA does the work of two AVX2 ones, and the 32 registers hold
// tiles of up to 8 rows × 2 panels (16 accumulators).
//
// The arithmetic is the AVX2 kernel's exactly: y[m, n] = one FMA chain over k = 0 … K-1 starting from 0,
// acc = fma(x[m, k], w[n, k], acc), then + bias[n] (one rounded add). A lane of a 512-bit FMA rounds as a
// lane of a 256-bit one, so both paths give the same bits for every element, whatever tile computes it.
// A chain split into blocks of k (very long K) is still that chain: its float32 partial sum is stored in
// y and loaded back unchanged, and the bias added after the last block only.

/// Whether this CPU and OS run AVX-512F: CPUID leaf 7 EBX bit 16, and the OS saving the AVX-512 state
/// (XCR0 bits 1, 2 and 5-7).
static inline int gptneo_cpu_has_avx512f(void) {
#if defined(__x86_64__)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return 0;
    unsigned xcr0, xcr0High;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0High) : "c"(0));
    if ((xcr0 & 0xE6) != 0xE6 || __get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    return (ebx >> 16) & 1;
#else
    return 0;
#endif
}

#if defined(__x86_64__)

#define GPTNEO_F512_ROWS 8
#define GPTNEO_F512_TARGET __attribute__((target("avx512f"), always_inline)) static inline

/// Stored weight formats (the element of a panel row).
#define GPTNEO_F512_FLOAT32 0
#define GPTNEO_F512_FLOAT16 1
#define GPTNEO_F512_BFLOAT16 2

/// Panel row `k` of the panel at `panel` (elements of format F) as 16 floats.
GPTNEO_F512_TARGET __m512 gptneo_f512_row(const int F, const void *panel, long k) {
    if (F == GPTNEO_F512_FLOAT32) return _mm512_loadu_ps((const float *)panel + k * 16);
    __m256i halves = _mm256_loadu_si256((const __m256i *)((const unsigned short *)panel + k * 16));
    if (F == GPTNEO_F512_FLOAT16) return _mm512_cvtph_ps(halves);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}

/// y[m ..< m+R, panels p, p+1 (P of them)] for R ≤ 8 rows, P ≤ 2 panels, over k = k0 ..< k1: from 0 if k0
/// is 0, else continuing the chains' partial sums that y holds; + bias once k1 is K. Prefetches `stride`
/// bytes of `next` per k step (what the pair computes next, spread over its row tiles) when `next` is
/// set.
GPTNEO_F512_TARGET void gptneo_f512_tile(const int F, const int R, const int P, const int blocked, float *y, const float *x,
                                         const void *w, const float *bias, long m, long panel, long K, long N, long k0,
                                         long k1, const char *next, long stride) {
    // Unblocked (a constant once inlined), the loop is the plain one over 0 ..< K: the decode steps'
    // products (8-64 rows, weights from memory) lost 1-5 % to the general bounds.
    if (!blocked) { k0 = 0; k1 = K; }
    __m512 acc[GPTNEO_F512_ROWS][2];
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < GPTNEO_F512_ROWS; r++) {
        for (int p = 0; p < 2; p++) {
            const long n0 = (panel + p) * 16;
            const __mmask16 mask = n0 + 16 <= N ? (__mmask16)0xFFFF : (__mmask16)((1u << (N - n0)) - 1);
            acc[r][p] = k0 > 0 && r < R && p < P ? _mm512_maskz_loadu_ps(mask, y + (m + r) * N + n0) : _mm512_setzero_ps();
        }
    }
    const long size = F == GPTNEO_F512_FLOAT32 ? 4 : 2;
    const char *w0 = (const char *)w + panel * K * 16 * size;
    const char *w1 = P > 1 ? w0 + K * 16 * size : w0;
    const float *x0 = x + m * K;
    for (long k = k0; k < k1; k++) {
        if (next) _mm_prefetch(next + (k - k0) * stride, _MM_HINT_T0);
        __m512 v0 = gptneo_f512_row(F, w0, k);
        __m512 v1 = P > 1 ? gptneo_f512_row(F, w1, k) : v0;
        _Pragma("clang loop unroll(full)")
        for (int r = 0; r < GPTNEO_F512_ROWS; r++) {
            if (r < R) {
                __m512 b = _mm512_set1_ps(x0[r * K + k]);
                acc[r][0] = _mm512_fmadd_ps(b, v0, acc[r][0]);
                if (P > 1) acc[r][1] = _mm512_fmadd_ps(b, v1, acc[r][1]);
            }
        }
    }
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < GPTNEO_F512_ROWS; r++) {
        if (r >= R) continue;
        for (int p = 0; p < P; p++) {
            long n0 = (panel + p) * 16;
            float *out = y + (m + r) * N + n0;
            __mmask16 mask = n0 + 16 <= N ? (__mmask16)0xFFFF : (__mmask16)((1u << (N - n0)) - 1);
            __m512 value = acc[r][p];
            if (bias && k1 == K) value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask, bias + n0));
            _mm512_mask_storeu_ps(out, mask, value);
        }
    }
}

/// The rows' tile for R = 1 … 8 left-over rows, each its own unrolled copy.
GPTNEO_F512_TARGET void gptneo_f512_tile_rows(const int F, const int blocked, int R, int P, float *y, const float *x, const void *w,
                                              const float *bias, long m, long panel, long K, long N, long k0, long k1,
                                              const char *next, long stride) {
#define GPTNEO_F512_CASE(r) case r: \
        if (P > 1) gptneo_f512_tile(F, r, 2, blocked, y, x, w, bias, m, panel, K, N, k0, k1, next, stride); \
        else gptneo_f512_tile(F, r, 1, blocked, y, x, w, bias, m, panel, K, N, k0, k1, next, stride); \
        break;
    switch (R) {
        GPTNEO_F512_CASE(1) GPTNEO_F512_CASE(2) GPTNEO_F512_CASE(3) GPTNEO_F512_CASE(4)
        GPTNEO_F512_CASE(5) GPTNEO_F512_CASE(6) GPTNEO_F512_CASE(7) default: GPTNEO_F512_CASE(8)
    }
#undef GPTNEO_F512_CASE
}

/// y[:, 16·first ..< min(N, 16·last)] = x · panels + bias for all M rows: panels two at a time, every
/// row tile of a pair while it is in cache, and the pair's tiles together prefetching what comes next.
/// A single row tile (M ≤ 8: a decode step of up to 8 sequences, every weight read once from memory)
/// walks one panel at a time instead, prefetching the next panel line for line as it reads its own: a
/// pair's tile would have to prefetch two lines per step, which the hardware prefetcher, left alone
/// with the pair's two streams, did worse (8 sequences: 8-19 % longer steps, alternated in one run).
/// But one row walks the pair (only 16-bit weights come here with one row: FloatKernel.swift): a lone
/// panel is a single FMA chain, whose 4-cycle latency lets a core consume at most 16 weights of 2 bytes
/// per 4 cycles, ~30 GB/s, about what memory gives a core in its fast state (one sequence's decode step
/// 8-12 % shorter in float16 at 62-67 GB/s, the same at ~48, alternated in one run).
/// Where a pair of panels would fill more than `pairBytes` (FloatKernel.swift's `widePairBytes`), in blocks
/// of k that do not, each row tile carrying its chains' partial sums through y from block to block:
/// otherwise tiles re-read the pair from L3 (~10 % of the 1.3B c_proj's time at 512 rows, unblocked
/// against blocks of a quarter of L2; decode steps of 32 sequences 3 % longer for the 125M model, of 8
/// for the 1.3B, with blocks of half an L2 instead of a quarter; alternated in one run).
GPTNEO_F512_TARGET void gptneo_f512_panels(const int F, float *y, const float *x, const void *w, const float *bias,
                                           long M, long K, long N, long first, long last, long pairBytes) {
    const long size = F == GPTNEO_F512_FLOAT32 ? 4 : 2;
    const long rowBytes = 16 * size;
    const long rowTiles = (M + GPTNEO_F512_ROWS - 1) / GPTNEO_F512_ROWS;
    const long group = rowTiles == 1 && M > 1 ? 1 : 2;
    const long blocks = (group * K * rowBytes + pairBytes - 1) / pairBytes;
    const long blockSteps = (K + blocks - 1) / blocks;
    for (long panel = first; panel < last; panel += group) {
        const int P = last - panel >= group ? (int)group : 1;
        for (long k0 = 0; k0 < K; k0 += blockSteps) {
            const long k1 = K - k0 < blockSteps ? K : k0 + blockSteps;
            // Next: this group's next block, else the next group's first; nextK0 ..< nextK1 of nextPanels panels.
            const long nextPanel = k1 < K ? panel : panel + P;
            const long nextPanels = k1 < K ? P : last - nextPanel >= group ? group : last - nextPanel;
            const long nextK0 = k1 < K ? k1 : 0;
            const long nextK1 = nextK0 + blockSteps < K ? nextK0 + blockSteps : K;
            const long slice = (nextK1 - nextK0) * rowBytes;
            // Bytes of the next block per k step, shared out among this block's row tiles.
            const long stride = (nextPanels * slice + rowTiles * (k1 - k0) - 1) / (rowTiles * (k1 - k0));
            const char *nextFirst = (const char *)w + (nextPanel * K + nextK0) * rowBytes;
            for (long t = 0; t < rowTiles; t++) {
                const long m = t * GPTNEO_F512_ROWS;
                const long rows = M - m < GPTNEO_F512_ROWS ? M - m : GPTNEO_F512_ROWS;
                // The block's slice of the first panel, then of the second (K rows further on).
                const long offset = t * (k1 - k0) * stride;
                const char *next = nextPanels == 0 || stride > 64 ? NULL
                    : offset < slice ? nextFirst + offset : nextFirst + K * rowBytes + offset - slice;
                if (blocks > 1) gptneo_f512_tile_rows(F, 1, (int)rows, P, y, x, w, bias, m, panel, K, N, k0, k1, next, stride);
                else gptneo_f512_tile_rows(F, 0, (int)rows, P, y, x, w, bias, m, panel, K, N, 0, K, next, stride);
            }
        }
    }
}

/// gptneo_f512_panels for weights stored in `format` (GPTNEO_F512_FLOAT32, _FLOAT16 or _BFLOAT16), with a
/// pair of panels in blocks of k of at most `pairBytes` (FloatKernel.swift chooses it).
__attribute__((target("avx512f"))) static inline void
gptneo_f512_multiply_panels(int format, float *y, const float *x, const void *w, const float *bias,
                            long M, long K, long N, long first, long last, long pairBytes) {
    switch (format) {
    case GPTNEO_F512_FLOAT16: gptneo_f512_panels(GPTNEO_F512_FLOAT16, y, x, w, bias, M, K, N, first, last, pairBytes); break;
    case GPTNEO_F512_BFLOAT16: gptneo_f512_panels(GPTNEO_F512_BFLOAT16, y, x, w, bias, M, K, N, first, last, pairBytes); break;
    default: gptneo_f512_panels(GPTNEO_F512_FLOAT32, y, x, w, bias, M, K, N, first, last, pairBytes); break;
    }
}

#endif
#endif
