#ifndef CWIDENING_H
#define CWIDENING_H

#include <stdint.h>

// Eight 16-bit weights widened to eight floats, for the matmul kernel's panel loads. Written with
// clang's vector conversions rather than intrinsics so that any target compiles them; with the F16C and
// AVX2 the build selects, each is one instruction or two: VCVTPH2PS (float16), VPMOVZXWD + VPSLLD
// (bfloat16: the upper half of a float). Swift's own SIMD conversions between these types compile to
// library calls on 128-bit halves. (int8 weights take integer dot products instead: CInt8Dot.)

typedef float gptneo_float8 __attribute__((ext_vector_type(8)));
typedef _Float16 gptneo_half8 __attribute__((ext_vector_type(8)));
typedef uint16_t gptneo_uint16x8 __attribute__((ext_vector_type(8)));
typedef uint32_t gptneo_uint32x8 __attribute__((ext_vector_type(8)));

static inline gptneo_float8 widenFloat16x8(const void *source) {
    gptneo_half8 halves;
    __builtin_memcpy(&halves, source, sizeof halves);
    return __builtin_convertvector(halves, gptneo_float8);
}

static inline gptneo_float8 widenBFloat16x8(const void *source) {
    gptneo_uint16x8 halves;
    __builtin_memcpy(&halves, source, sizeof halves);
    gptneo_uint32x8 bits = __builtin_convertvector(halves, gptneo_uint32x8) << 16;
    gptneo_float8 floats;
    __builtin_memcpy(&floats, &bits, sizeof floats);
    return floats;
}

#endif
