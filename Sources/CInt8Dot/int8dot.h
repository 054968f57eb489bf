#ifndef CINT8DOT_H
#define CINT8DOT_H

#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

// The int8 × int8 matrix product of int8 weights (Sources/GPTNeo/Int8DotKernel.swift): activations
// quantized per block of 32 consecutive k, weights per output channel, integer dot products per block.
//
//   y[m, n] = fl(fl(Σ_b fl(float(S[m, n, b]) · xscale[m, b])) · wscale[n]) + bias[n]
//
// where S[m, n, b] = Σ_{k in block b} xq[m, k] · wq[n, k] is an exact int32 (|S| ≤ 32·127·127 < 2²⁴, so
// float(S) is exact too) and the sum over blocks is one FMA chain in block order starting from 0:
// acc = fma(float(S_b), xscale_b, acc). Every tile, row count and thread computes exactly this, so a
// row's result never depends on the other rows.
//
// Four codes compute it and give the same bits: AVX2, AVX-VNNI (both in int8kernel.inc, which this
// header compiles once for each), AVX512-VNNI (512-bit tiles for 8 rows or more in int8wide.inc, and
// int8kernel.inc's ymm tiles once more, EVEX-encoded, for fewer) and portable C for builds without
// AVX2. The build targets AVX2; the VNNI codes are compiled beside it by target attribute and chosen
// at run time, when the CPU has them (Int8DotKernel.swift decides once per process).
//
// Weight layout: panels of 16 output columns; in a panel, for each group of 4 consecutive k, the 16
// columns × 4 bytes (column j's bytes k..k+3 at 4j): one 32-byte load holds 8 columns × 4 k, the
// operand of the 4-byte dot products (VPMADDUBSW + VPMADDWD, or VPDPBUSD) against a 4-byte broadcast
// of the activation row. K is padded with zeros to a multiple of 4 (K4) in both the weights and the
// quantized activations. Activations are never -128, so |x| ≤ 127 and VPSIGNB's negation is exact.

#pragma STDC FP_CONTRACT OFF

/// k per activation scale.
#define GPTNEO_INT8_BLOCK 32
/// How far ahead (in k) a remainder tile prefetches its weight streams: 2 KB.
#define GPTNEO_INT8_PREFETCH 128
/// Output columns per panel.
#define GPTNEO_INT8_PANEL 16
/// Most blocks per row for which the VNNI codes keep a panel's 128·Σw on the stack (K ≤ 16384:
/// 32 KB per panel, 64 KB for the 512-bit tiles' two, little beside a thread's stack; every GPT-Neo
/// size fits).
#define GPTNEO_INT8_OFFSET_BLOCKS 512

/// The instruction sets the int8 kernel has code for.
typedef enum {
    GPTNEO_INT8_PORTABLE = 0,  ///< plain C (a build without AVX2)
    GPTNEO_INT8_AVX2 = 1,      ///< VPMADDUBSW + VPMADDWD + VPADDD
    GPTNEO_INT8_VNNI = 2,      ///< AVX-VNNI: VPDPBUSD (ymm, VEX-encoded)
    GPTNEO_INT8_VNNI512 = 3,   ///< AVX512-VNNI: VPDPBUSD on zmm for 8 rows or more, on ymm (EVEX-encoded) for fewer
} gptneo_int8_kernel;

/// Rows from which the AVX512-VNNI code takes its 512-bit tiles (int8wide.inc). Fewer rows are limited
/// by how fast the weights stream in, not by the dot products: the 4-row ymm tiles, tuned for that, stay.
#define GPTNEO_INT8_WIDE_ROWS 8
/// The 512-bit tiles' most rows (≤ 8) and panels (≤ 3). Measured on one core (Zen 5, 768 inputs, from
/// L2 and from memory, M = 8…512): 6 × 2, 5 × 2 and 4 × 3 within noise of each other and ~4 % above
/// 4 × 2; 8 × 1 10-15 % below (more broadcasts per product); 8 × 2 spills registers.
#define GPTNEO_INT8_WIDE_TILE_ROWS 6
#define GPTNEO_INT8_WIDE_TILE_PANELS 2

/// One activation row quantized: q[0..<K4] (zero past K), scales[0..<⌈K/32⌉]. Per block:
/// scale = max|x| / 127, q = x · (127 / max|x|) rounded to nearest even (0 for an all-zero block),
/// within ±127 (NaN → 0; a NaN is not a block's largest magnitude).
/// For `kernel` GPTNEO_INT8_VNNI and GPTNEO_INT8_VNNI512 each byte holds q + 128 as an unsigned byte (q with its top bit
/// flipped), the operand VPDPBUSD takes; for the others q itself.
static inline void gptneo_int8_quantize_row(gptneo_int8_kernel kernel, const float *x, long K, long K4, int8_t *q, float *scales) {
    const uint8_t offset = kernel == GPTNEO_INT8_VNNI || kernel == GPTNEO_INT8_VNNI512 ? 0x80 : 0;
    for (long k0 = 0, b = 0; k0 < K; k0 += GPTNEO_INT8_BLOCK, b++) {
        long k1 = k0 + GPTNEO_INT8_BLOCK < K ? k0 + GPTNEO_INT8_BLOCK : K;
#if defined(__AVX2__) && defined(__FMA__)
        // A whole block in registers: the same operations, eight lanes at a time.
        if (k1 - k0 == GPTNEO_INT8_BLOCK) {
            __m256 values[4], largest = _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                values[i] = _mm256_loadu_ps(x + k0 + 8 * i);
                // MAXPS returns its second operand when either is NaN: a NaN never becomes the largest.
                largest = _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), values[i]), largest);
            }
            __m128 half = _mm_max_ps(_mm256_castps256_ps128(largest), _mm256_extractf128_ps(largest, 1));
            half = _mm_max_ps(half, _mm_movehl_ps(half, half));
            half = _mm_max_ss(half, _mm_movehdup_ps(half));
            float blockLargest = _mm_cvtss_f32(half);
            scales[b] = blockLargest / 127.0f;
            const __m256 inverse = _mm256_set1_ps(blockLargest > 0 ? 127.0f / blockLargest : 0.0f);
            __m256i integers[4];
            for (int i = 0; i < 4; i++) {
                __m256 rounded = _mm256_round_ps(_mm256_mul_ps(values[i], inverse), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                __m256 clamped = _mm256_min_ps(_mm256_max_ps(rounded, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
                clamped = _mm256_and_ps(clamped, _mm256_cmp_ps(rounded, rounded, _CMP_ORD_Q));
                integers[i] = _mm256_cvtps_epi32(clamped);
            }
            // The packs interleave 128-bit lanes: bytes arrive in 4-byte groups 0,2,4,6,1,3,5,7.
            __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(integers[0], integers[1]), _mm256_packs_epi32(integers[2], integers[3]));
            bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(q + k0), _mm256_xor_si256(bytes, _mm256_set1_epi8((char)offset)));
            continue;
        }
#endif
        float largest = 0;
        for (long k = k0; k < k1; k++) {
            float magnitude = __builtin_fabsf(x[k]);
            largest = magnitude > largest ? magnitude : largest;
        }
        float inverse = largest > 0 ? 127.0f / largest : 0.0f;
        scales[b] = largest / 127.0f;
        for (long k = k0; k < k1; k++) {
            float value = __builtin_rintf(x[k] * inverse);
            // Within ±127 (also for a non-finite input): -128 would break AVX2's sign trick.
            value = value > 127.0f ? 127.0f : value < -127.0f ? -127.0f : value == value ? value : 0.0f;
            q[k] = (int8_t)((uint8_t)(int8_t)value ^ offset);
        }
    }
    for (long k = K; k < K4; k++) q[k] = (int8_t)offset;
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

/// Whether this CPU and OS run AVX-VNNI: CPUID leaf 7 subleaf 1 EAX bit 4, and AVX state saved by
/// the OS (CPUID.1:ECX OSXSAVE and AVX, XCR0 bits 1 and 2).
static inline int gptneo_int8_cpu_has_avx_vnni(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE) || !(ecx & bit_AVX)) return 0;
    unsigned xcr0, xcr0High;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0High) : "c"(0));
    if ((xcr0 & 6) != 6 || __get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    return (eax >> 4) & 1;
#else
    return 0;
#endif
}

/// Whether this CPU has the AVX-512 subsets the AVX512-VNNI code uses beside AVX512F: CPUID leaf 7
/// EBX bits 30 (BW) and 31 (VL), ECX bit 11 (VNNI). That the CPU has AVX512F and the OS saves the
/// AVX-512 state is gptneo_cpu_has_avx512f's check (Sources/CFloat512/float512.h); the code needs both.
static inline int gptneo_int8_cpu_has_avx512_vnni_subsets(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned eax, ebx, ecx, edx;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    return (ebx >> 30) == 3 && ((ecx >> 11) & 1);
#else
    return 0;
#endif
}

#if defined(__AVX2__) && defined(__FMA__)

// Loops over rows and registers unrolled, so that the accumulator arrays live in registers.
#define GPTNEO_UNROLL _Pragma("clang loop unroll(full)")

#define GPTNEO_INT8_NAME(name) gptneo_int8_##name##_avx2
#define GPTNEO_INT8_TARGET "avx2,fma"
#define GPTNEO_INT8_VNNI 0
#include "int8kernel.inc"
#undef GPTNEO_INT8_NAME
#undef GPTNEO_INT8_TARGET
#undef GPTNEO_INT8_VNNI

#define GPTNEO_INT8_NAME(name) gptneo_int8_##name##_vnni
#define GPTNEO_INT8_TARGET "avx2,fma,avxvnni"
#define GPTNEO_INT8_VNNI 1
#define GPTNEO_INT8_DPBUSD _mm256_dpbusd_avx_epi32
#include "int8kernel.inc"
#undef GPTNEO_INT8_NAME
#undef GPTNEO_INT8_TARGET
#undef GPTNEO_INT8_DPBUSD

// The same ymm tiles for CPUs with AVX512-VNNI, which may lack the VEX form (AVX-VNNI).
#define GPTNEO_INT8_WIDE_TARGET "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"
#define GPTNEO_INT8_NAME(name) gptneo_int8_##name##_vnni_evex
#define GPTNEO_INT8_TARGET GPTNEO_INT8_WIDE_TARGET
#define GPTNEO_INT8_DPBUSD _mm256_dpbusd_epi32
#include "int8kernel.inc"
#undef GPTNEO_INT8_NAME
#undef GPTNEO_INT8_TARGET
#undef GPTNEO_INT8_VNNI
#undef GPTNEO_INT8_DPBUSD

#include "int8wide.inc"

/// Whether this build has `kernel`'s code (the CPU may lack its instructions).
static inline int gptneo_int8_kernel_built(gptneo_int8_kernel kernel) { (void)kernel; return 1; }

#else

static inline int gptneo_int8_kernel_built(gptneo_int8_kernel kernel) { return kernel == GPTNEO_INT8_PORTABLE; }

#endif

/// The same arithmetic without AVX2: exact integer sums, the same FMA chain over blocks.
static inline void gptneo_int8_tile_portable(
    const int R, const int P, float *y, long N, const int8_t *xq, const float *xs, long K4, long blocks,
    const int8_t *w, const float *wscale, const float *bias, long m, long panel, const int8_t *prefetch, const int32_t *offsets) {
    (void)prefetch;
    (void)offsets;
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


/// All M rows of y against panels [first, last) with `kernel`'s code, which must be one this build
/// has and this CPU runs (Int8Kernel.isAvailable): every kernel gives the same bits.
/// xq (M, K4) and xs (M, blocks) are the quantized activations, w the panels, wscale and bias per output.
static inline void gptneo_int8_multiply_panels(gptneo_int8_kernel kernel, float *y, long M, long N, const int8_t *xq, const float *xs,
                                               long K4, long blocks, const int8_t *w, const float *wscale, const float *bias,
                                               long first, long last) {
#if defined(__AVX2__) && defined(__FMA__)
    if (kernel == GPTNEO_INT8_VNNI512) {
        // Rows longer than the stack's blocks of −128·Σw (K > 16384) take the ymm tiles, which add them up inline.
        if (M >= GPTNEO_INT8_WIDE_ROWS && blocks <= GPTNEO_INT8_OFFSET_BLOCKS) return gptneo_int8_wide_panels(y, M, N, xq, xs, K4, blocks, w, wscale, bias, first, last);
        return gptneo_int8_multiply_panels_vnni_evex(y, M, N, xq, xs, K4, blocks, w, wscale, bias, first, last);
    }
    if (kernel == GPTNEO_INT8_VNNI) return gptneo_int8_multiply_panels_vnni(y, M, N, xq, xs, K4, blocks, w, wscale, bias, first, last);
    if (kernel == GPTNEO_INT8_AVX2) return gptneo_int8_multiply_panels_avx2(y, M, N, xq, xs, K4, blocks, w, wscale, bias, first, last);
#endif
    for (long panel = first; panel < last; panel++) gptneo_int8_tile_portable(M, 1, y, N, xq, xs, K4, blocks, w, wscale, bias, 0, panel, 0, 0);
}

#endif
