/* The two conv-heavy branches of an X-Restormer block, row by row: the gated FFN and the
 * channel attention. Both start with
 *
 *     t = DWConv3x3(W_in LN(x) [+ b_in]) [+ b_dw]
 *
 * (fusionlab.models.blocks: GatedDconvFFN after a LayerNorm2d; ChannelAttention's q, k, v)
 * on one float32 channels-last image x (H, W, C). torch runs these as LayerNorm, GEMM and
 * depth-wise convolution passes over strips, each a short memory-bound sweep at the student's
 * widths (C = 16..128). Here one output row needs the projected rows above and below it, kept
 * in a 3-row ring buffer in planes of 16 channels (the conv reads each plane sequentially),
 * and the conv, gate and output projection run on 32-pixel segments of the row that stay in
 * the L1 cache. Then
 *
 * - gated_ffn_f32: out = [x +] W_out (GELU(a) * b) [+ b_out] with (a, b) the halves of t;
 *   GELU is the erf form of torch's F.gelu, erf by a rational approximation (erf16);
 * - channel_attention_stats_f32: with (q, k, v) the thirds of t, the Gram matrix q^T k and
 *   the squared norms of q and k summed over all pixels (float per task, double in total),
 *   and v written out; kernels.channel_attention builds the mix M from these;
 * - linear_rows_f32: out = [res +] v M [+ b], the channel attention's second pass.
 *
 * Vectors are 16 floats (GCC/Clang vector extensions, vecmath.h), so C and the widths of t
 * must be multiples of 16 (the Python side checks). Weights are passed transposed/reordered:
 * w_in_t (C, T) with T the width of t, w_dw (9, T) tap-major (ky*3+kx), w_out_t (h, C).
 * Bias and LayerNorm pointers may be NULL. gated_ffn_f32 and channel_attention_stats_f32
 * share their output rows between threads by rows.h's sched_row (next: the counter array of
 * fusionlab.native.run_shared); linear_rows_f32 takes chunks of rows_per_task rows from the
 * counter next[0]. The row steps are in rows.h.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rows.h"

/* erf(x) = x P(x^2) / Q(x^2) on x clamped to [-4, 4] (|erf| is 1 within 1.6e-8 beyond),
   P of degree 6 and Q of degree 4 in x^2: a rational least-squares fit to erf on [0, 4]
   (iteratively reweighted towards minimax; fusionlab's own coefficients). Max |error| 4.2e-7
   in float32 over [-6, 6] against double erf - the Abramowitz & Stegun 7.1.26 form it replaces
   (torch's vectorised CPU erf) measured 6.6e-7 there - in 22 operations instead of 32: no
   exponential. */
static inline v16 erf16(v16 x)
{
    x = min16(max16(x, (v16){0} - 4.0f), (v16){0} + 4.0f);
    const v16 t = x * x;
    v16 p = t * 1.921269003e-08f - 1.990350312e-06f;
    p = p * t + 1.555925318e-04f;
    p = p * t + 4.295837036e-03f;
    p = p * t + 5.244337309e-02f;
    p = p * t + 2.140102731e-01f;
    p = p * t + 1.128378685e+00f;
    v16 q = t * 1.098664246e-03f + 1.555719181e-02f;
    q = q * t + 1.208276640e-01f;
    q = q * t + 5.229893813e-01f;
    q = q * t + 1.0f;
    return x * p * recip16(q);
}

/* GELU(a) * b with GELU(a) = 0.5 a (1 + erf(a / sqrt 2)) (torch's F.gelu, erf form) */
static inline v16 gelu_gate16(v16 a, v16 b)
{
#ifdef FUSIONLAB_SKIP_GELU_ERF  /* a measurement switch (rows.h) */
    return a * b;
#else
    return 0.5f * a * (1.0f + erf16(a * 0.70710678118654752f)) * b;
#endif
}

/* One thread's 3-row ring of t = W_in LN(x) [+ b_in] (rows in planes of 16 channels, so the
   conv reads each plane sequentially), a zero row (the conv's zero padding) and `extra` floats
   of scratch, in one allocation on cache-line boundaries (rows.h alloc_lines; T is a multiple
   of 16, so every row and the scratch start on one too); its output rows come from rows.h
   sched_row. */
typedef struct {
    const float *x, *ln_w, *ln_b, *w_in_t, *b_in;
    int64_t H, W;
    int C, T;
    float eps;
    float *ring, *scratch;
    const float *zeros;
    void *base;  /* what to free */
    row_sched sched;
} ring_t;

/* 0 when out of memory (nothing to free) */
static int ring_start(ring_t *r, const float *x, int64_t H, int64_t W, int C, int T, const float *ln_w,
                      const float *ln_b, float eps, const float *w_in_t, const float *b_in, int64_t extra,
                      int64_t *next)
{
    *r = (ring_t){.x = x, .ln_w = ln_w, .ln_b = ln_b, .w_in_t = w_in_t, .b_in = b_in, .H = H, .W = W, .C = C,
                  .T = T, .eps = eps};
    r->ring = alloc_lines((size_t)(4 * W * T + extra), &r->base);
    if (!r->ring) return 0;
    r->zeros = r->ring + 3 * W * T;
    memset(r->ring + 3 * W * T, 0, sizeof(float) * (size_t)(W * T));
    r->scratch = r->ring + 4 * W * T;
    sched_start(&r->sched, next, H);
    return 1;
}

/* This thread's next output row into *y (0 when none is left), with rows[0..2] pointing at its
   rows y-1, y, y+1 of t: all three projected when the row does not follow the previous one,
   else only the new one (y + 1 going down, y - 1 going up). */
static int ring_next(ring_t *r, int64_t *y, const float *rows[3])
{
    int fresh, dir;
    if (!sched_row(&r->sched, y, &fresh, &dir)) return 0;
    const int64_t H = r->H, W = r->W, T = r->T;
    for (int64_t k = fresh ? *y - 1 : *y + dir; k <= (fresh ? *y + 1 : *y + dir); ++k)
        if (k >= 0 && k < H)
            project_in(r->x + k * W * r->C, r->ring + (k % 3) * W * T, W, r->C, (int)T, r->ln_w, r->ln_b, r->eps,
                       r->w_in_t, r->b_in, 16 * W);
    for (int dy = 0; dy < 3; ++dy) {
        const int64_t yy = *y + dy - 1;
        rows[dy] = (yy >= 0 && yy < H) ? r->ring + (yy % 3) * W * T : r->zeros;
    }
    return 1;
}

/* 3x3 depth-wise conv of pixels [p0, p1) of a row from its three rows of t, each in planes of
   16 channels (project_in's plane = 16 W) -> dw (p1 - p0, T). Per plane the 9 tap weights stay
   in registers and so do the three input columns around the pixel: moving one pixel right
   loads one new column (3 vectors, not 9), read sequentially along the planes. */
static void dw_segment(const float *const rows[3], int64_t W, int T, int64_t p0, int64_t p1,
                       const float *restrict w_dw, const float *restrict b_dw, float *restrict dw)
{
    for (int o = 0; o < T; o += 16) {
        const float *restrict r0 = rows[0] + o * W, *restrict r1 = rows[1] + o * W, *restrict r2 = rows[2] + o * W;
        v16 w0 = LOADU(w_dw + o), w1 = LOADU(w_dw + T + o), w2 = LOADU(w_dw + 2 * T + o);
        v16 w3 = LOADU(w_dw + 3 * T + o), w4 = LOADU(w_dw + 4 * T + o), w5 = LOADU(w_dw + 5 * T + o);
        v16 w6 = LOADU(w_dw + 6 * T + o), w7 = LOADU(w_dw + 7 * T + o), w8 = LOADU(w_dw + 8 * T + o);
        const v16 bias = b_dw ? LOADU(b_dw + o) : (v16){0};
        const v16 zero = {0};
        /* columns p - 1 (a) and p (b) of the three rows; zero beyond the image */
        int64_t at = (p0 - 1) * 16;
        v16 a0 = p0 > 0 ? LOADU(r0 + at) : zero, a1 = p0 > 0 ? LOADU(r1 + at) : zero, a2 = p0 > 0 ? LOADU(r2 + at) : zero;
        at += 16;
        v16 b0 = LOADU(r0 + at), b1 = LOADU(r1 + at), b2 = LOADU(r2 + at);
        for (int64_t p = p0; p < p1; ++p) {
            at += 16;
            const int inside = p + 1 < W;
            const v16 c0 = inside ? LOADU(r0 + at) : zero, c1 = inside ? LOADU(r1 + at) : zero,
                      c2 = inside ? LOADU(r2 + at) : zero;
            v16 s = bias + w0 * a0 + w3 * a1 + w6 * a2;
            s += w1 * b0 + w4 * b1 + w7 * b2;
            s += w2 * c0 + w5 * c1 + w8 * c2;
            STOREU(dw + (p - p0) * T + o, s);
            a0 = b0, a1 = b1, a2 = b2;
            b0 = c0, b1 = c1, b2 = c2;
        }
    }
}

/* pixels per segment after the row's projection: the segment's conv output and gate (<= 32 KB
   at T = 256) stay in the L1 cache between the steps instead of streaming whole rows through L2 */
#define SEGMENT 32

int gated_ffn_f32(const float *x, float *out, int64_t H, int64_t W, int C, int h,
                  const float *ln_w, const float *ln_b, float eps,
                  const float *w_in_t, const float *b_in, const float *w_dw, const float *b_dw,
                  const float *w_out_t, const float *b_out, int residual, int64_t *next)
{
    const int h2 = 2 * h;
    ring_t r;
    if (!ring_start(&r, x, H, W, C, h2, ln_w, ln_b, eps, w_in_t, b_in, SEGMENT * (h2 + h), next)) return -1;
    float *dw = r.scratch;                  /* (SEGMENT, 2h) depth-wise conv output: a | b */
    float *gate = dw + SEGMENT * h2;        /* (SEGMENT, h) GELU(a) * b */
    int64_t y;
    const float *rows[3];
    while (ring_next(&r, &y, rows)) {
        for (int64_t p0 = 0; p0 < W; p0 += SEGMENT) {
            const int64_t n = W - p0 < SEGMENT ? W - p0 : SEGMENT;
            dw_segment(rows, W, h2, p0, p0 + n, w_dw, b_dw, dw);
            for (int64_t p = 0; p < n; ++p)
                for (int o = 0; o < h; o += 16)
                    STOREU(gate + p * h + o, gelu_gate16(LOADU(dw + p * h2 + o), LOADU(dw + p * h2 + h + o)));
            const int64_t at = (y * W + p0) * C;
            project_out(gate, x + at, out + at, n, C, h, w_out_t, b_out, residual);
        }
    }
    free(r.base);
    return 0;
}

/* RB rows x NB vectors (columns k0*16 ...) of the Gram matrix q^T k of n pixels (q, k rows of t
   with stride T), in registers over the pixels, then added to g (C, C) */
static inline __attribute__((always_inline)) void gram_block(
    const float *restrict t, int64_t n, int T, int C, int i0, int k0, const int RB, const int NB, float *restrict g)
{
    v16 a[16][4];
    for (int r = 0; r < RB; ++r)
        for (int k = 0; k < NB; ++k) a[r][k] = (v16){0};
    for (int64_t p = 0; p < n; ++p) {
        const float *restrict q = t + p * T, *restrict kk = q + C + k0 * 16;
        v16 kv[4];
        for (int k = 0; k < NB; ++k) kv[k] = LOADU(kk + k * 16);
        for (int r = 0; r < RB; ++r) {
            const float qi = q[i0 + r];
            for (int k = 0; k < NB; ++k) a[r][k] += qi * kv[k];
        }
    }
    for (int r = 0; r < RB; ++r)
        for (int k = 0; k < NB; ++k) {
            float *restrict dst = g + (i0 + r) * C + (k0 + k) * 16;
            STOREU(dst, LOADU(dst) + a[r][k]);
        }
}

/* the Gram matrix of n pixels in blocks of 16 accumulators: RB rows x NB vectors */
static void gram_sum(const float *restrict t, int64_t n, int T, int C, float *restrict g)
{
    const int nvc = C / 16;
#define BLOCKS(RB, NB)                                                                                     \
    for (int i = 0; i < C; i += RB)                                                                        \
        for (int k0 = 0; k0 < nvc; k0 += NB) gram_block(t, n, T, C, i, k0, RB, NB, g);
    if (nvc % 4 == 0) { BLOCKS(4, 4) }
    else if (nvc % 3 == 0) { BLOCKS(4, 3) }
    else if (nvc % 2 == 0) { BLOCKS(8, 2) }
    else { BLOCKS(16, 1) }
#undef BLOCKS
}

int channel_attention_stats_f32(const float *x, float *v_out, int64_t H, int64_t W, int C,
                                const float *ln_w, const float *ln_b, float eps,
                                const float *w_in_t, const float *b_in, const float *w_dw, const float *b_dw,
                                double *gram, double *q_sq, double *k_sq, int64_t *next)
{
    const int T = 3 * C, nvc = C / 16;
    ring_t r;
    if (!ring_start(&r, x, H, W, C, T, ln_w, ln_b, eps, w_in_t, b_in, SEGMENT * T + C * C + 2 * C, next)) return -1;
    float *dw = r.scratch;                  /* (SEGMENT, 3C): q | k | v of the segment */
    float *g = dw + SEGMENT * T;            /* (C, C) this row's Gram matrix */
    float *qs = g + C * C, *ks = qs + C;    /* this row's squared norms */
    int64_t y;
    const float *rows[3];
    while (ring_next(&r, &y, rows)) {
        memset(g, 0, sizeof(float) * (size_t)(C * C + 2 * C));
        for (int64_t p0 = 0; p0 < W; p0 += SEGMENT) {
            const int64_t n = W - p0 < SEGMENT ? W - p0 : SEGMENT;
            dw_segment(rows, W, T, p0, p0 + n, w_dw, b_dw, dw);
            gram_sum(dw, n, T, C, g);
            for (int o = 0; o < nvc; ++o) {
                v16 sq = {0}, sk = {0};
                for (int64_t p = 0; p < n; ++p) {
                    const v16 q = LOADU(dw + p * T + o * 16), k = LOADU(dw + p * T + C + o * 16);
                    sq += q * q;
                    sk += k * k;
                }
                STOREU(qs + o * 16, LOADU(qs + o * 16) + sq);
                STOREU(ks + o * 16, LOADU(ks + o * 16) + sk);
            }
            for (int64_t p = 0; p < n; ++p)  /* v out: vector copies (a memcpy call per pixel cost more) */
                for (int o = 0; o < nvc; ++o)
                    STOREU(v_out + (y * W + p0 + p) * C + o * 16, LOADU(dw + p * T + 2 * C + o * 16));
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
    free(r.base);
    return 0;
}

/* out = [res +] v M [+ b] for an (H, W) map of C channels, M given as m_t (C, C) (rows.h's
   project_out): the channel attention's second pass, its mix folded into one matrix. */
int linear_rows_f32(const float *v, const float *res, float *out, int64_t H, int64_t W, int C,
                    const float *m_t, const float *b, int64_t rows_per_task, int64_t *next)
{
    int64_t r0, r1;
    while (next_rows(next, rows_per_task, H, &r0, &r1))
        project_out(v + r0 * W * C, res ? res + r0 * W * C : NULL, out + r0 * W * C, (r1 - r0) * W, C, C, m_t, b,
                    res != NULL);
    return 0;
}
