/* The two conv-heavy branches of an X-Restormer block, row by row: the gated FFN and the
 * first pass of the channel attention. Both start with
 *
 *     t = DWConv3x3(W_in LN(x) [+ b_in]) [+ b_dw]
 *
 * (fusionlab.models.blocks: GatedDconvFFN after a LayerNorm2d; ChannelAttention's q, k, v)
 * on one float32 channels-last image x (H, W, C). torch runs these as LayerNorm, GEMM and
 * depth-wise convolution passes over strips, each a short memory-bound sweep at the student's
 * widths (C = 16..64). Here one output row needs the projected rows above and below it, kept
 * in a 3-row ring buffer (a few hundred KB: stays in L2), and every pixel goes through all
 * steps while its data is in cache. Then
 *
 * - gated_ffn_f32: out = [x +] W_out (GELU(a) * b) [+ b_out] with (a, b) the halves of t;
 *   GELU is the erf form of torch's F.gelu, erf by Abramowitz & Stegun 7.1.26 (|error| <
 *   1.5e-7, the polynomial of torch's own vectorised CPU erf), exp by the Cephes polynomial;
 * - channel_attention_stats_f32: with (q, k, v) the thirds of t, the Gram matrix q^T k and
 *   the squared norms of q and k summed over all pixels (float per row, double in total),
 *   and v written out; kernels.channel_attention applies the attention from these;
 * - ln_linear_f32: only W_in LN(x) [+ b_in] (the window attention's q/k/v projection).
 *
 * Vectors are 16 floats (GCC/Clang vector extensions), so C and the widths of t must be
 * multiples of 16 (the Python side checks). Weights are passed transposed/reordered:
 * w_in_t (C, T) with T the width of t, w_dw (9, T) tap-major (ky*3+kx), w_out_t (h, C).
 * Bias and LayerNorm pointers may be NULL. Tasks are chunks of rows_per_task output rows;
 * threads share them through the counter *next.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vecmath.h"

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

#define LOADU(p) (*(const v16u *)(p))
#define STOREU(p, v) (*(v16u *)(p) = (v))

typedef int32_t v16i __attribute__((vector_size(64)));

/* sum of the 16 lanes by halving (4 dependent adds instead of 16) */
static inline float hsum(v16 v)
{
#if defined(__clang__)
#define SHUFFLE(v, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#else
#define SHUFFLE(v, ...) __builtin_shuffle(v, (v16i){__VA_ARGS__})
#endif
    v += SHUFFLE(v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    v += SHUFFLE(v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
    v += SHUFFLE(v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    v += SHUFFLE(v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
#undef SHUFFLE
    return v[0];
}

/* LayerNorm (torch's: biased variance, eps inside the root) of one pixel's C values, C a
   multiple of 16: mean and variance as two passes, like torch */
static inline void layer_norm(const float *restrict px, float *restrict xn, int C,
                              const float *restrict ln_w, const float *restrict ln_b, float eps)
{
    const int nv = C / 16;
    if (!ln_w) {
        for (int o = 0; o < nv; ++o) STOREU(xn + o * 16, LOADU(px + o * 16));
        return;
    }
    v16 acc = {0};
    for (int o = 0; o < nv; ++o) acc += LOADU(px + o * 16);
    const float mean = hsum(acc) / (float)C;
    v16 sq = {0};
    for (int o = 0; o < nv; ++o) {
        const v16 d = LOADU(px + o * 16) - mean;
        sq += d * d;
    }
    const float rstd = 1.0f / sqrtf(hsum(sq) / (float)C + eps);
    for (int o = 0; o < nv; ++o) {
        v16 y = (LOADU(px + o * 16) - mean) * rstd * LOADU(ln_w + o * 16);
        if (ln_b) y += LOADU(ln_b + o * 16);
        STOREU(xn + o * 16, y);
    }
}

/* NB output vectors of 4 pixels: 4 x NB accumulators in registers, so each weight load and
   each broadcast pixel value feeds several FMAs (NB is a constant after inlining) */
static inline __attribute__((always_inline)) void project_block(
    const float *restrict xn, int C, int T, int o, const int NB,
    const float *restrict w_in_t, const float *restrict b_in, float *restrict t)
{
    v16 a[4][4];
    for (int k = 0; k < NB; ++k) {
        const v16 bias = b_in ? LOADU(b_in + (o + k) * 16) : (v16){0};
        for (int q = 0; q < 4; ++q) a[q][k] = bias;
    }
    for (int c = 0; c < C; ++c) {
        v16 wv[4];
        for (int k = 0; k < NB; ++k) wv[k] = LOADU(w_in_t + (int64_t)c * T + (o + k) * 16);
        for (int q = 0; q < 4; ++q) {
            const float xq = xn[q * C + c];
            for (int k = 0; k < NB; ++k) a[q][k] += xq * wv[k];
        }
    }
    for (int q = 0; q < 4; ++q)
        for (int k = 0; k < NB; ++k) STOREU(t + q * T + (o + k) * 16, a[q][k]);
}

/* y = LN(x) W_in^T + b_in for one row of W pixels: x (W, C) -> t (W, T), 4 pixels at a time */
static void project_in(const float *restrict x, float *restrict t, int64_t W, int C, int T,
                       const float *restrict ln_w, const float *restrict ln_b, float eps,
                       const float *restrict w_in_t, const float *restrict b_in)
{
    const int nv = T / 16;
    float xn[4 * C];
    int64_t p = 0;
    for (; p + 4 <= W; p += 4) {
        for (int q = 0; q < 4; ++q) layer_norm(x + (p + q) * C, xn + q * C, C, ln_w, ln_b, eps);
        int o = 0;
        for (; o + 4 <= nv; o += 4) project_block(xn, C, T, o, 4, w_in_t, b_in, t + p * T);
        for (; o + 3 <= nv; o += 3) project_block(xn, C, T, o, 3, w_in_t, b_in, t + p * T);
        for (; o < nv; ++o) project_block(xn, C, T, o, 1, w_in_t, b_in, t + p * T);
    }
    for (; p < W; ++p) {
        layer_norm(x + p * C, xn, C, ln_w, ln_b, eps);
        for (int o = 0; o < nv; ++o) {
            v16 a = b_in ? LOADU(b_in + o * 16) : (v16){0};
            for (int c = 0; c < C; ++c) a += xn[c] * LOADU(w_in_t + (int64_t)c * T + o * 16);
            STOREU(t + p * T + o * 16, a);
        }
    }
}

/* out = [x +] gate W_out^T [+ b_out] for one row: gate (W, h) -> out (W, C), 4 pixels at a time */
static void project_out(const float *restrict gate, const float *restrict x, float *restrict out, int64_t W,
                        int C, int h, const float *restrict w_out_t, const float *restrict b_out, int residual)
{
    const int nv = C / 16;
    int64_t p = 0;
    for (; p + 4 <= W; p += 4) {
        const float *restrict g0 = gate + p * h, *restrict g1 = g0 + h, *restrict g2 = g1 + h, *restrict g3 = g2 + h;
        for (int o = 0; o < nv; ++o) {
            const v16 bias = b_out ? LOADU(b_out + o * 16) : (v16){0};
            v16 a0 = bias, a1 = bias, a2 = bias, a3 = bias;
            if (residual) {
                a0 += LOADU(x + (p + 0) * C + o * 16);
                a1 += LOADU(x + (p + 1) * C + o * 16);
                a2 += LOADU(x + (p + 2) * C + o * 16);
                a3 += LOADU(x + (p + 3) * C + o * 16);
            }
            for (int j = 0; j < h; ++j) {
                const v16 wv = LOADU(w_out_t + (int64_t)j * C + o * 16);
                a0 += g0[j] * wv;
                a1 += g1[j] * wv;
                a2 += g2[j] * wv;
                a3 += g3[j] * wv;
            }
            STOREU(out + (p + 0) * C + o * 16, a0);
            STOREU(out + (p + 1) * C + o * 16, a1);
            STOREU(out + (p + 2) * C + o * 16, a2);
            STOREU(out + (p + 3) * C + o * 16, a3);
        }
    }
    for (; p < W; ++p)
        for (int o = 0; o < nv; ++o) {
            v16 a = b_out ? LOADU(b_out + o * 16) : (v16){0};
            if (residual) a += LOADU(x + p * C + o * 16);
            for (int j = 0; j < h; ++j) a += gate[p * h + j] * LOADU(w_out_t + (int64_t)j * C + o * 16);
            STOREU(out + p * C + o * 16, a);
        }
}

/* Row y of t into dw (W, T): projects the rows it needs into the ring (all three at the
   first row of a chunk, else only row y+1), then the 3x3 depth-wise conv with zero padding
   (rows outside the image read the zero row; per 16 channels the 9 tap weights stay in
   registers along the row). */
static void conv_row(const float *restrict x, int64_t H, int64_t W, int C, int T, int64_t y, int first,
                     const float *ln_w, const float *ln_b, float eps, const float *w_in_t, const float *b_in,
                     const float *restrict w_dw, const float *restrict b_dw,
                     float *ring, const float *zeros, float *restrict dw)
{
    for (int64_t r = first ? y - 1 : y + 1; r <= y + 1; ++r)
        if (r >= 0 && r < H)
            project_in(x + r * W * C, ring + (r % 3) * W * T, W, C, T, ln_w, ln_b, eps, w_in_t, b_in);
    const float *rows[3];
    for (int dy = 0; dy < 3; ++dy) {
        const int64_t yy = y + dy - 1;
        rows[dy] = (yy >= 0 && yy < H) ? ring + (yy % 3) * W * T : zeros;
    }
    for (int o = 0; o < T / 16; ++o) {
        const int off = o * 16;
        v16 wt[9];
        for (int k = 0; k < 9; ++k) wt[k] = LOADU(w_dw + k * T + off);
        const v16 bias = b_dw ? LOADU(b_dw + off) : (v16){0};
        for (int64_t p = 0; p < W; ++p) {
            v16 a = bias;
            for (int dy = 0; dy < 3; ++dy) {
                const float *restrict r = rows[dy] + p * T + off;
                if (p > 0) a += wt[dy * 3] * LOADU(r - T);
                a += wt[dy * 3 + 1] * LOADU(r);
                if (p + 1 < W) a += wt[dy * 3 + 2] * LOADU(r + T);
            }
            STOREU(dw + p * T + off, a);
        }
    }
}

/* The next chunk [r0, r1) of the H rows from the shared counter; 0 when none is left. */
static int next_rows(int64_t *next, int64_t rows_per_task, int64_t H, int64_t *r0, int64_t *r1)
{
    *r0 = __atomic_fetch_add(next, rows_per_task, __ATOMIC_RELAXED);
    *r1 = *r0 + rows_per_task < H ? *r0 + rows_per_task : H;
    return *r0 < H;
}

/* One allocation per call: the 3-row ring of t, a zero row and `extra` more floats. */
static float *ring_alloc(int64_t W, int T, int64_t extra)
{
    float *ring = malloc(sizeof(float) * (size_t)(4 * W * T + extra));
    if (ring) memset(ring + 3 * W * T, 0, sizeof(float) * (size_t)(W * T));
    return ring;
}

int gated_ffn_f32(const float *x, float *out, int64_t H, int64_t W, int C, int h,
                  const float *ln_w, const float *ln_b, float eps,
                  const float *w_in_t, const float *b_in, const float *w_dw, const float *b_dw,
                  const float *w_out_t, const float *b_out, int residual,
                  int64_t rows_per_task, int64_t *next)
{
    const int h2 = 2 * h;
    float *ring = ring_alloc(W, h2, W * h2 + 3 * W * h);
    if (!ring) return -1;
    const float *zeros = ring + 3 * W * h2;
    float *dw = ring + 4 * W * h2;          /* (W, 2h) depth-wise conv output of the row */
    float *gate = dw + W * h2;              /* (W, h) GELU(a) * b */
    float *ebuf = gate + W * h;             /* (W, h) staging of erf's exp */
    float *abuf = ebuf + W * h;             /* (W, h) a / sqrt 2 magnitudes */
    int64_t r0, r1;
    while (next_rows(next, rows_per_task, H, &r0, &r1)) {
        for (int64_t y = r0; y < r1; ++y) {
            conv_row(x, H, W, C, h2, y, y == r0, ln_w, ln_b, eps, w_in_t, b_in, w_dw, b_dw, ring, zeros, dw);
            /* gate = GELU(a) * b with GELU(a) = 0.5 a (1 + erf(a / sqrt 2)), in three loops that
               gcc vectorises (a clamp beside a float->int conversion stops it): the clamped
               exponent, exp's polynomial and 2^k bits, then erf and the gate */
            const int64_t n = W * h;
            for (int64_t p = 0; p < W; ++p)
                for (int k = 0; k < h; ++k) {
                    const float a = dw[p * h2 + k] * 0.70710678118654752f;
                    abuf[p * h + k] = fabsf(a);
                    const float z = -a * a;
                    ebuf[p * h + k] = z < -87.0f ? -87.0f : z;
                }
            for (int64_t i = 0; i < n; ++i) {
                const float z = ebuf[i];
                const int32_t ki = (int32_t)(z * FL_LOG2E - 0.5f);  /* z <= 0: see window_attention.c */
                ebuf[i] = exp_poly(exp_reduce(z, (float)ki));
                ((int32_t *)gate)[i] = exp2_bits(ki);  /* 2^k as float bits (-fno-strict-aliasing) */
            }
            for (int64_t p = 0; p < W; ++p)
                for (int k = 0; k < h; ++k) {
                    const int64_t i = p * h + k;
                    const float e = ebuf[i] * gate[i];  /* exp(-(a/sqrt2)^2) */
                    const float ax = abuf[i];
                    const float t = 1.0f / (1.0f + 0.3275911f * ax);
                    const float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t
                                        + 0.254829592f) * t;
                    const float erf_abs = 1.0f - poly * e;
                    const float a = dw[p * h2 + k];
                    const float erf = a < 0.0f ? -erf_abs : erf_abs;
                    gate[i] = 0.5f * a * (1.0f + erf) * dw[p * h2 + h + k];
                }
            project_out(gate, x + y * W * C, out + y * W * C, W, C, h, w_out_t, b_out, residual);
        }
    }
    free(ring);
    return 0;
}

int channel_attention_stats_f32(const float *x, float *v_out, int64_t H, int64_t W, int C,
                                const float *ln_w, const float *ln_b, float eps,
                                const float *w_in_t, const float *b_in, const float *w_dw, const float *b_dw,
                                double *gram, double *q_sq, double *k_sq, int64_t rows_per_task, int64_t *next)
{
    const int T = 3 * C, nvc = C / 16;
    float *ring = ring_alloc(W, T, W * T + C * C + 2 * C);
    if (!ring) return -1;
    const float *zeros = ring + 3 * W * T;
    float *dw = ring + 4 * W * T;           /* (W, 3C): q | k | v of the row */
    float *g = dw + W * T;                  /* (C, C) this row's Gram matrix */
    float *qs = g + C * C, *ks = qs + C;    /* this row's squared norms */
    int64_t r0, r1;
    while (next_rows(next, rows_per_task, H, &r0, &r1)) {
        for (int64_t y = r0; y < r1; ++y) {
            conv_row(x, H, W, C, T, y, y == r0, ln_w, ln_b, eps, w_in_t, b_in, w_dw, b_dw, ring, zeros, dw);
            memset(g, 0, sizeof(float) * (size_t)(C * C + 2 * C));
            for (int64_t p = 0; p < W; ++p) {
                const float *restrict q = dw + p * T, *restrict k = q + C, *restrict v = k + C;
                for (int i = 0; i < C; ++i) {
                    const float qi = q[i];
                    for (int o = 0; o < nvc; ++o)
                        STOREU(g + i * C + o * 16, LOADU(g + i * C + o * 16) + qi * LOADU(k + o * 16));
                }
                for (int c = 0; c < C; ++c) {
                    qs[c] += q[c] * q[c];
                    ks[c] += k[c] * k[c];
                }
                float *restrict vo = v_out + (y * W + p) * C;
                for (int o = 0; o < nvc; ++o) STOREU(vo + o * 16, LOADU(v + o * 16));
            }
            /* a row's sums go into the shared totals under a spin lock (GCC builtins; C99 has
               no mutex): once per row, so the threads hardly ever wait */
            static volatile char lock = 0;
            while (__atomic_test_and_set(&lock, __ATOMIC_ACQUIRE)) {}
            for (int i = 0; i < C * C; ++i) gram[i] += g[i];
            for (int c = 0; c < C; ++c) {
                q_sq[c] += qs[c];
                k_sq[c] += ks[c];
            }
            __atomic_clear(&lock, __ATOMIC_RELEASE);
        }
    }
    free(ring);
    return 0;
}

int ln_linear_f32(const float *x, float *out, int64_t H, int64_t W, int C, int T,
                  const float *ln_w, const float *ln_b, float eps, const float *w_t, const float *b,
                  int64_t rows_per_task, int64_t *next)
{
    int64_t r0, r1;
    while (next_rows(next, rows_per_task, H, &r0, &r1)) {
        for (int64_t r = r0; r < r1; ++r)
            project_in(x + r * W * C, out + r * W * T, W, C, T, ln_w, ln_b, eps, w_t, b);
    }
    return 0;
}
