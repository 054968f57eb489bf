#ifndef CINT8DOT_H
#define CINT8DOT_H

#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

// The int8 × int8 matrix product of int8 weights (Sources/GPTNeo/Int8DotKernel.swift): activations
// quantized per block of 32 consecutive k, weights per output channel, integer dot products per block.
//
//   y[m, n] = fl(fl(Σ_b fl(float(S[m, n, b]) · xscale[m, b])) · wscale[n]) + bias[n]
//
// where S[m, n, b] = Σ_{k in block b} xq[m, k] · wq[n, k] is an exact int32 (|S| ≤ 32·127·127 < 2²⁴, so
// float(S) is exact too) and the sum over blocks is one FMA chain in block order starting from 0:
// acc = fma(float(S_b), xscale_b, acc). Every tile, row count and thread computes exactly this, so a
// row's result never depends on the other rows. The AVX2 code and the portable code give the same bits.
//
// Weight layout: panels of 16 output columns; in a panel, for each group of 4 consecutive k, the 16
// columns × 4 bytes (column j's bytes k..k+3 at 4j): one 32-byte load holds 8 columns × 4 k, the
// operand of VPMADDUBSW + VPMADDWD against a 4-byte broadcast of the activation row. K is padded
// with zeros to a multiple of 4 (K4) in both the weights and the quantized activations.
//
// AVX2 has no signed × signed byte multiply: VPMADDUBSW takes |w| (unsigned) and x with w's sign
// (VPSIGNB). |w|, |x| ≤ 127 so a pair sum is at most 2 · 127 · 127 = 32258: no int16 saturation.

#pragma STDC FP_CONTRACT OFF

/// k per activation scale.
#define GPTNEO_INT8_BLOCK 32
/// How far ahead (in k) a remainder tile prefetches its weight streams: 2 KB.
#define GPTNEO_INT8_PREFETCH 128
/// Output columns per panel.
#define GPTNEO_INT8_PANEL 16

/// One activation row quantized: q[0..<K4] (zero past K), scales[0..<⌈K/32⌉]. Per block:
/// scale = max|x| / 127, q = x · (127 / max|x|) rounded to nearest even (0 for an all-zero block).
static inline void gptneo_int8_quantize_row(const float *x, long K, long K4, int8_t *q, float *scales) {
    for (long k0 = 0, b = 0; k0 < K; k0 += GPTNEO_INT8_BLOCK, b++) {
        long k1 = k0 + GPTNEO_INT8_BLOCK < K ? k0 + GPTNEO_INT8_BLOCK : K;
        float largest = 0;
        for (long k = k0; k < k1; k++) {
            float magnitude = __builtin_fabsf(x[k]);
            largest = magnitude > largest ? magnitude : largest;
        }
        float inverse = largest > 0 ? 127.0f / largest : 0.0f;
        scales[b] = largest / 127.0f;
        for (long k = k0; k < k1; k++) {
            float value = __builtin_rintf(x[k] * inverse);
            // Within ±127 (also for a non-finite input): -128 would break the sign trick.
            value = value > 127.0f ? 127.0f : value < -127.0f ? -127.0f : value == value ? value : 0.0f;
            q[k] = (int8_t)value;
        }
    }
    for (long k = K; k < K4; k++) q[k] = 0;
}

/// Offset of w[16p + j, k] in the panels of a matrix with K4 (padded) inputs.
static inline long gptneo_int8_offset(long panel, long j, long k, long K4) {
    return panel * K4 * GPTNEO_INT8_PANEL + (k / 4) * 4 * GPTNEO_INT8_PANEL + j * 4 + k % 4;
}

/// Writes one finished row of a panel: y[n0 + j] = acc[j] · wscale[j] + bias[j] for j < columns.
static inline void gptneo_int8_store(float *y, const float *acc, const float *wscale, const float *bias, long columns) {
    for (long j = 0; j < columns; j++) {
        float scaled = acc[j] * wscale[j];
        y[j] = bias ? scaled + bias[j] : scaled;
    }
}

#if defined(__AVX2__) && defined(__FMA__)

// Loops over rows and registers unrolled, so that the accumulator arrays live in registers.
#define GPTNEO_UNROLL _Pragma("clang loop unroll(full)")

/// y[m..<m+R, panels p..<p+P] for R rows × P panels: R·2P int32 accumulators of 8 columns per block,
/// folded into float accumulators at the end of each block. R and P are constants after inlining.
/// `prefetch` (or null): P streams of panel rows to fetch into cache alongside those of the tile.
static inline __attribute__((always_inline)) void gptneo_int8_tile(
    const int R, const int P, float *y, long N, const int8_t *xq, const float *xs, long K4, long blocks,
    const int8_t *w, const float *wscale, const float *bias, long m, long panel, const int8_t *prefetch) {
    __m256 acc[6][8];
    GPTNEO_UNROLL for (int r = 0; r < R; r++) GPTNEO_UNROLL for (int s = 0; s < 2 * P; s++) acc[r][s] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    const int8_t *panels = w + panel * K4 * GPTNEO_INT8_PANEL;
    const int8_t *rows = xq + m * K4;
    for (long b = 0; b < blocks; b++) {
        long k0 = b * GPTNEO_INT8_BLOCK;
        long k1 = k0 + GPTNEO_INT8_BLOCK < K4 ? k0 + GPTNEO_INT8_BLOCK : K4;
        __m256i sums[6][8];
        GPTNEO_UNROLL for (int r = 0; r < R; r++) GPTNEO_UNROLL for (int s = 0; s < 2 * P; s++) sums[r][s] = _mm256_setzero_si256();
        for (long k = k0; k < k1; k += 4) {
            __m256i weights[8], magnitudes[8];
            if (prefetch) GPTNEO_UNROLL for (int p = 0; p < P; p++) __builtin_prefetch(prefetch + p * K4 * GPTNEO_INT8_PANEL + k * GPTNEO_INT8_PANEL, 0, 3);
            GPTNEO_UNROLL for (int s = 0; s < 2 * P; s++) {
                weights[s] = _mm256_loadu_si256((const __m256i *)(panels + (s / 2) * K4 * GPTNEO_INT8_PANEL + k * GPTNEO_INT8_PANEL + (s % 2) * 32));
                magnitudes[s] = _mm256_abs_epi8(weights[s]);
            }
            GPTNEO_UNROLL for (int r = 0; r < R; r++) {
                int32_t four;
                memcpy(&four, rows + r * K4 + k, 4);
                const __m256i x = _mm256_set1_epi32(four);
                GPTNEO_UNROLL for (int s = 0; s < 2 * P; s++) {
                    __m256i pairs = _mm256_maddubs_epi16(magnitudes[s], _mm256_sign_epi8(x, weights[s]));
                    sums[r][s] = _mm256_add_epi32(sums[r][s], _mm256_madd_epi16(pairs, ones));
                }
            }
        }
        GPTNEO_UNROLL for (int r = 0; r < R; r++) {
            const __m256 scale = _mm256_set1_ps(xs[(m + r) * blocks + b]);
            GPTNEO_UNROLL for (int s = 0; s < 2 * P; s++) acc[r][s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r][s]), scale, acc[r][s]);
        }
    }
    GPTNEO_UNROLL for (int r = 0; r < R; r++) {
        GPTNEO_UNROLL for (int p = 0; p < P; p++) {
            long n0 = (panel + p) * GPTNEO_INT8_PANEL;
            float *out = y + (m + r) * N + n0;
            const float *b = bias ? bias + n0 : 0;
            if (n0 + GPTNEO_INT8_PANEL <= N) {
                GPTNEO_UNROLL for (int h = 0; h < 2; h++) {
                    __m256 scaled = _mm256_mul_ps(acc[r][2 * p + h], _mm256_loadu_ps(wscale + n0 + 8 * h));
                    if (b) scaled = _mm256_add_ps(scaled, _mm256_loadu_ps(b + 8 * h));
                    _mm256_storeu_ps(out + 8 * h, scaled);
                }
            } else {
                float values[16];
                _mm256_storeu_ps(values, acc[r][2 * p]);
                _mm256_storeu_ps(values + 8, acc[r][2 * p + 1]);
                gptneo_int8_store(out, values, wscale + n0, b, N - n0);
            }
        }
    }
}

#else

/// The same arithmetic without AVX2: exact integer sums, the same FMA chain over blocks.
static inline void gptneo_int8_tile(
    const int R, const int P, float *y, long N, const int8_t *xq, const float *xs, long K4, long blocks,
    const int8_t *w, const float *wscale, const float *bias, long m, long panel, const int8_t *prefetch) {
    (void)prefetch;
    for (int r = 0; r < R; r++) {
        for (int p = 0; p < P; p++) {
            float acc[GPTNEO_INT8_PANEL] = {0};
            for (long b = 0; b < blocks; b++) {
                long k0 = b * GPTNEO_INT8_BLOCK;
                long k1 = k0 + GPTNEO_INT8_BLOCK < K4 ? k0 + GPTNEO_INT8_BLOCK : K4;
                for (long j = 0; j < GPTNEO_INT8_PANEL; j++) {
                    int32_t sum = 0;
                    for (long k = k0; k < k1; k++) sum += (int32_t)xq[(m + r) * K4 + k] * (int32_t)w[gptneo_int8_offset(panel + p, j, k, K4)];
                    acc[j] = __builtin_fmaf((float)sum, xs[(m + r) * blocks + b], acc[j]);
                }
            }
            long n0 = (panel + p) * GPTNEO_INT8_PANEL;
            long columns = N - n0 < GPTNEO_INT8_PANEL ? N - n0 : GPTNEO_INT8_PANEL;
            gptneo_int8_store(y + (m + r) * N + n0, acc, wscale + n0, bias ? bias + n0 : 0, columns);
        }
    }
}

#endif

/// All M rows of y against panels [first, last): 4-row tiles one panel at a time, then the remaining
/// rows against several panels at once (a decode step: 1 row × 4 panels, four weight streams).
/// xq (M, K4) and xs (M, blocks) are the quantized activations, w the panels, wscale and bias per output.
/// Tiles reading the weights from memory for the first time fetch ahead: the first row tile of a
/// panel fetches the next panel, a remainder tile its own streams 2 KB ahead (a decode step is
/// limited by how fast the weights stream in, which one row's few instructions per line do not hide).
static inline void gptneo_int8_multiply_panels(float *y, long M, long N, const int8_t *xq, const float *xs, long K4, long blocks,
                                               const int8_t *w, const float *wscale, const float *bias, long first, long last) {
    const long panelBytes = K4 * GPTNEO_INT8_PANEL;
    long bulk = M / 4 * 4;
    for (long panel = first; panel < last; panel++) {
        const int8_t *next = w + (panel + 1 < last ? panel + 1 : panel) * panelBytes;
        for (long m = 0; m < bulk; m += 4) gptneo_int8_tile(4, 1, y, N, xq, xs, K4, blocks, w, wscale, bias, m, panel, m == 0 ? next : 0);
    }
    long remaining = M - bulk;
    if (remaining == 0) return;
    long step = remaining == 1 ? 4 : remaining == 2 ? 2 : 1;
    for (long panel = first; panel < last; panel += step) {
        long count = last - panel < step ? last - panel : step;
        const int8_t *ahead = bulk == 0 ? w + panel * panelBytes + GPTNEO_INT8_PREFETCH * GPTNEO_INT8_PANEL : 0;
        switch (remaining * 8 + count) {
        case 3 * 8 + 1: gptneo_int8_tile(3, 1, y, N, xq, xs, K4, blocks, w, wscale, bias, bulk, panel, ahead); break;
        case 2 * 8 + 2: gptneo_int8_tile(2, 2, y, N, xq, xs, K4, blocks, w, wscale, bias, bulk, panel, ahead); break;
        case 2 * 8 + 1: gptneo_int8_tile(2, 1, y, N, xq, xs, K4, blocks, w, wscale, bias, bulk, panel, ahead); break;
        case 1 * 8 + 4: gptneo_int8_tile(1, 4, y, N, xq, xs, K4, blocks, w, wscale, bias, bulk, panel, ahead); break;
        case 1 * 8 + 3: gptneo_int8_tile(1, 3, y, N, xq, xs, K4, blocks, w, wscale, bias, bulk, panel, ahead); break;
        case 1 * 8 + 2: gptneo_int8_tile(1, 2, y, N, xq, xs, K4, blocks, w, wscale, bias, bulk, panel, ahead); break;
        default: gptneo_int8_tile(1, 1, y, N, xq, xs, K4, blocks, w, wscale, bias, bulk, panel, ahead); break;
        }
    }
}

#endif
