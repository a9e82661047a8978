/* Float32 exp pieces shared by the native kernels: Cephes' expf (relative error ~1e-7, the
 * polynomial torch's vectorised CPU exp uses), split so each caller picks the rounding of
 * k = round(x / ln 2) that vectorises in its loop and builds 2^k from its bits:
 *
 *     exp(x) = exp_poly(exp_reduce(x, k)) * 2^k,   2^k = the float whose bits are exp2_bits(k)
 *
 * static inline: every kernel file compiles alone (fusionlab.native hashes this header into
 * each library's name, so a change here rebuilds them all). */
#ifndef FUSIONLAB_VECMATH_H
#define FUSIONLAB_VECMATH_H

#include <stdint.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define FL_LOG2E 1.44269504088896341f

/* r = x - k ln 2, in two steps (Cody-Waite) so r keeps its low bits */
static inline float exp_reduce(float x, float k)
{
    const float r = x - k * 0.693359375f;
    return r + k * 2.12194440e-4f;
}

/* exp(r) for |r| <= ~0.35 */
static inline float exp_poly(float r)
{
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * r * r + r + 1.0f;
}

/* bits of the float 2^k, -126 <= k <= 127 */
static inline int32_t exp2_bits(int32_t k)
{
    return (k + 127) << 23;
}

/* 16-float vectors (GCC/Clang vector extensions: AVX-512, 2x AVX2 or 4x NEON registers) and
   the pieces above on them */
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));  /* unaligned loads/stores */
typedef int32_t v16i __attribute__((vector_size(64)));

#define LOADU(p) (*(const v16u *)(p))
#define STOREU(p, v) (*(v16u *)(p) = (v))

/* lane permutations with constant indices: of one vector, or of two (indices 16-31 pick b) */
#if defined(__clang__)
#define SHUFFLE1(a, ...) __builtin_shufflevector(a, a, __VA_ARGS__)
#define SHUFFLE2(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUFFLE1(a, ...) __builtin_shuffle(a, (v16i){__VA_ARGS__})
#define SHUFFLE2(a, b, ...) __builtin_shuffle(a, b, (v16i){__VA_ARGS__})
#endif

/* m[16] (row i = m[i]) transposed in place: 4 steps of 16 two-vector permutations, each
   swapping blocks of 8, 4, 2, 1 lanes between rows i and i + 8, 4, 2, 1 */
static inline void transpose16(v16 m[16])
{
#define TRANSPOSE_STEP(d, LO, HI)                                                                  \
    for (int i = 0; i < 16; ++i)                                                                   \
        if (!(i & d)) {                                                                            \
            const v16 a = m[i], b = m[i + d];                                                      \
            m[i] = SHUFFLE2(a, b, LO);                                                             \
            m[i + d] = SHUFFLE2(a, b, HI);                                                         \
        }
#define LO8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define HI8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define LO4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define HI4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define LO2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define HI2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define LO1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define HI1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
    TRANSPOSE_STEP(8, LO8, HI8)
    TRANSPOSE_STEP(4, LO4, HI4)
    TRANSPOSE_STEP(2, LO2, HI2)
    TRANSPOSE_STEP(1, LO1, HI1)
#undef TRANSPOSE_STEP
#undef LO8
#undef HI8
#undef LO4
#undef HI4
#undef LO2
#undef HI2
#undef LO1
#undef HI1
}

/* lanes of a where mask is set, else of b (mask: a vector comparison's -1 / 0 lanes) */
static inline v16 select16(v16i mask, v16 a, v16 b)
{
    return (v16)((mask & (v16i)a) | (~mask & (v16i)b));
}

/* min of two vectors, lane by lane */
static inline v16 min16(v16 a, v16 b)
{
#if defined(__AVX512F__)
    return (v16)_mm512_min_ps((__m512)a, (__m512)b);
#else
    return select16(a < b, a, b);
#endif
}

/* max of two vectors, lane by lane */
static inline v16 max16(v16 a, v16 b)
{
#if defined(__AVX512F__)
    return (v16)_mm512_max_ps((__m512)a, (__m512)b);
#else
    return select16(a > b, a, b);
#endif
}

/* 2^x for x <= 0, 16 lanes: 2^f 2^k with k the nearest integer of x and f = x - k in
   [-0.5, 0.5] (exact), 2^f by a degree-6 polynomial (relative error 7.9e-8, like Cephes' exp
   above, in 4 fewer operations: no multiplication by log2(e) and no two-step reduction).
   AVX-512 rounds with vrndscaleps and multiplies by 2^k with vscalefps (below -126 the result
   becomes subnormal, then zero); elsewhere x is clamped at -126 and 2^k built from its bits.
   Callers that scale their logits by log2(e) beforehand get exp of the unscaled ones. */
static inline v16 exp2_nonpos16(v16 x)
{
#if defined(__AVX512F__)
    const v16 kf = (v16)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    const v16 lo = x - x - 126.0f;
    x = select16(x < lo, lo, x);
    const v16i ki = __builtin_convertvector(x - 0.5f, v16i);  /* truncation of v - 0.5 rounds a non-positive v */
    const v16 kf = __builtin_convertvector(ki, v16);
#endif
    const v16 f = x - kf;
    v16 p = f * 1.5345811e-4f + 1.3399931e-3f;
    p = p * f + 9.6184891e-3f;
    p = p * f + 5.5503286e-2f;
    p = p * f + 2.4022646e-1f;
    p = p * f + 6.9314718e-1f;
    p = p * f + 1.0f;
#if defined(__AVX512F__)
    return (v16)_mm512_scalef_ps((__m512)p, (__m512)kf);
#else
    return p * (v16)((ki + 127) << 23);
#endif
}

/* 1 / d: AVX-512's 14-bit reciprocal and one Newton step (relative error ~1e-7, like the
   division it replaces, at a tenth of its cost), else the division */
static inline v16 recip16(v16 d)
{
#if defined(__AVX512F__)
    const v16 r = (v16)_mm512_rcp14_ps((__m512)d);
    return r * (2.0f - d * r);
#else
    return 1.0f / d;
#endif
}

#endif
