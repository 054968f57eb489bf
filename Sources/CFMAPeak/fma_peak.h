#ifndef CFMAPEAK_H
#define CFMAPEAK_H

#if defined(__x86_64__)
#include <immintrin.h>

// One core's 512-bit FMA rate from registers, the peak `EngineBenchmark kernels` reads the AVX-512 tiles
// (Sources/CFloat512) against. A C function, as the build targets AVX2 and Swift cannot compile a function
// for another target; the caller runs it only where the CPU has AVX-512F (FloatKernel.best).
//
// 12 independent chains acc = acc · scale + offset, as fmaPeak's AVX2 ones (more than FMA latency × FMA
// units, so the units never wait for a result), `steps` FMAs each: 12 · 16 · 2 flops per step. Returns the
// chains' sum, so none can be dropped.
__attribute__((target("avx512f"))) static inline float gptneo_fma512_chains(long steps, float seed) {
    enum { chains = 12 };
    __m512 acc[chains];
    _Pragma("clang loop unroll(full)")
    for (int c = 0; c < chains; c++) acc[c] = _mm512_set1_ps(seed * (float)c);
    const __m512 scale = _mm512_set1_ps(1 - seed * 1e-6f), offset = _mm512_set1_ps(seed);
    for (long step = 0; step < steps; step++) {
        _Pragma("clang loop unroll(full)")
        for (int c = 0; c < chains; c++) acc[c] = _mm512_fmadd_ps(acc[c], scale, offset);
    }
    __m512 sum = acc[0];
    _Pragma("clang loop unroll(full)")
    for (int c = 1; c < chains; c++) sum = _mm512_add_ps(sum, acc[c]);
    return _mm512_reduce_add_ps(sum);
}
#endif

#endif
