#ifndef CACTIVATION512_H
#define CACTIVATION512_H

#if defined(__x86_64__)
#include <immintrin.h>

// GPT-Neo's activation, gelu_new, with AVX-512F for CPUs that have it; chosen at run time with the float
// products (FloatKernel.swift), since the build targets AVX2. Every value gets the arithmetic of the Swift
// code in Sources/GPTNeo/Kernels.swift (geluNewInPlace, tanhApproximation) exactly: the same operations in
// the same order, each multiply and add rounded on its own (Swift fuses none, and neither do separate
// intrinsics), lane by lane, so 16 lanes give the bits 8 do. The constants are the Swift code's Float
// literals, which Swift reads through an 80-bit float on x86: the long double literals below take the same
// path. KernelTests compares the two codes over a sweep of all float bit patterns.

#define GPTNEO_G512_INLINE __attribute__((target("avx512f"), always_inline)) static inline

/// Swift's `Vector(repeating: literal)`: the literal through an 80-bit float to a float.
#define GPTNEO_G512_CONSTANT(literal) _mm512_set1_ps((float)(literal##L))

/// tanhApproximation: a rational function on x clamped to ±7.905…, x itself where |x| < 0.0004.
GPTNEO_G512_INLINE __m512 gptneo_g512_tanh(__m512 input) {
#pragma clang fp contract(off)
    const __m512 low = GPTNEO_G512_CONSTANT(-7.90531110763549805), high = GPTNEO_G512_CONSTANT(7.90531110763549805);
    // clamp: below low → low, then above high → high (a NaN stays).
    __m512 x = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(input, low, _CMP_LT_OQ), input, low);
    x = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, high, _CMP_GT_OQ), x, high);
    const __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_add_ps(_mm512_mul_ps(GPTNEO_G512_CONSTANT(-2.76076847742355e-16), x2), GPTNEO_G512_CONSTANT(2.00018790482477e-13));
    p = _mm512_add_ps(_mm512_mul_ps(p, x2), GPTNEO_G512_CONSTANT(-8.60467152213735e-11));
    p = _mm512_add_ps(_mm512_mul_ps(p, x2), GPTNEO_G512_CONSTANT(5.12229709037114e-08));
    p = _mm512_add_ps(_mm512_mul_ps(p, x2), GPTNEO_G512_CONSTANT(1.48572235717979e-05));
    p = _mm512_add_ps(_mm512_mul_ps(p, x2), GPTNEO_G512_CONSTANT(6.37261928875436e-04));
    p = _mm512_add_ps(_mm512_mul_ps(p, x2), GPTNEO_G512_CONSTANT(4.89352455891786e-03));
    p = _mm512_mul_ps(p, x);
    __m512 q = GPTNEO_G512_CONSTANT(1.19825839466702e-06);
    q = _mm512_add_ps(_mm512_mul_ps(q, x2), GPTNEO_G512_CONSTANT(1.18534705686654e-04));
    q = _mm512_add_ps(_mm512_mul_ps(q, x2), GPTNEO_G512_CONSTANT(2.26843463243900e-03));
    q = _mm512_add_ps(_mm512_mul_ps(q, x2), GPTNEO_G512_CONSTANT(4.89352518554385e-03));
    const __m512 result = _mm512_div_ps(p, q);
    const __mmask16 small = _mm512_cmp_ps_mask(input, GPTNEO_G512_CONSTANT(0.0004), _CMP_LT_OQ)
        & _mm512_cmp_ps_mask(input, GPTNEO_G512_CONSTANT(-0.0004), _CMP_GT_OQ);
    return _mm512_mask_blend_ps(small, result, input);
}

/// gelu_new(v) = 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))), grouped as the Swift code groups it.
GPTNEO_G512_INLINE __m512 gptneo_g512_gelu_new(__m512 v, __m512 sqrtTwoOverPi) {
#pragma clang fp contract(off)
    const __m512 cube = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
    const __m512 inner = _mm512_mul_ps(sqrtTwoOverPi, _mm512_add_ps(v, _mm512_mul_ps(GPTNEO_G512_CONSTANT(0.044715), cube)));
    return _mm512_mul_ps(_mm512_mul_ps(GPTNEO_G512_CONSTANT(0.5), v),
                         _mm512_add_ps(GPTNEO_G512_CONSTANT(1.0), gptneo_g512_tanh(inner)));
}

/// values[0 ..< count] = gelu_new(values[…]) in place, 16 at a time; `sqrtTwoOverPi` is the Swift code's
/// Float(√(2/π)), passed in so that both codes use one value.
__attribute__((target("avx512f"))) static inline void
gptneo_gelu_new512(float *values, long count, float sqrtTwoOverPi) {
    const __m512 scale = _mm512_set1_ps(sqrtTwoOverPi);
    long i = 0;
    for (; i + 16 <= count; i += 16) _mm512_storeu_ps(values + i, gptneo_g512_gelu_new(_mm512_loadu_ps(values + i), scale));
    if (i < count) {
        const __mmask16 mask = (__mmask16)((1u << (count - i)) - 1);
        _mm512_mask_storeu_ps(values + i, mask, gptneo_g512_gelu_new(_mm512_maskz_loadu_ps(mask, values + i), scale));
    }
}

#endif
#endif
