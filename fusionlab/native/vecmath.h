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

#endif
