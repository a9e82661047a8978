/* Overlapping-window attention with HaloNet relative-position bias, one window-head at a time.
 *
 * The arithmetic of fusionlab.models.blocks.OverlapWindowAttention (literal definition) for
 * float32 channels-last maps: for query (x, y) of a ws x ws window and key (i, j) of the
 * enclosing ow x ow window (zero-padded map, pad p),
 *
 *     logit = qs.k + qs.rel_h[i - p - x + ow - 1] + qs.rel_w[j - p - y + ow - 1],   qs = q * scale
 *     out   = softmax over the ow*ow keys of logit, times v
 *
 * Everything of one window-head (64 x 144 logits for ws = 8, ow = 12) stays in L1/L2: queries
 * are kept transposed (channel-major), so every inner loop runs over the ws*ws queries of the
 * window and vectorises; keys and values are read in place from the padded map. The softmax
 * exponential is Cephes' expf polynomial (relative error ~1e-7), branch-free on 16-float
 * vectors (vecmath.h); the kernel of the networks' setting (ws 8, ow 12, d 16) scales its
 * queries by log2(e) as well and takes 2^x (exp2_nonpos16: 4 operations fewer per vector).
 *
 * Two entry points:
 * - window_attention_f32, the attention core on given q and zero-padded k|v maps. Strides are
 *   in elements; channels are contiguous. q: (B, gh*ws, gw*ws, nh*d); kv: (B, gh*ws + 2p,
 *   gw*ws + 2p, 2*nh*d) with keys in channels [0, nh*d) and values after them; out: (B,
 *   gh*ws, gw*ws, nh*d). Tasks are window-heads numbered ((b*gh + gy)*gw + gx)*nh + h.
 * - window_attention_layer_f32, the whole layer on one image (LayerNorm and q/k/v projection
 *   of a tile of windows into a per-thread buffer, the core, output projection and residual:
 *   rows.h); tasks are tiles.
 * Several threads may call with the same counter *next: each takes the next tasks until all
 * are done (dynamic scheduling: a thread that loses its core to another process delays
 * nobody, unlike a static split).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rows.h"

/* exp(s[j][r] - m[r]) in place for rows j < rows, and their column sums added to sum[r]. */
static inline void softmax_exp(float *restrict s, const float *restrict m, float *restrict sum, int n, int rows) {
    int32_t two_k[n];  /* 2^k as float bits (type punned: compiled with -fno-strict-aliasing) */
    const float *restrict two_k_f = (const float *)two_k;
    for (int j = 0; j < rows; ++j) {
        float *restrict row = s + (int64_t)j * n;
        for (int r = 0; r < n; ++r) {  /* its own loop: a clamp beside the int conversion stops gcc 12 vectorising */
            const float x = row[r] - m[r];
            row[r] = x < -87.0f ? -87.0f : x;
        }
        for (int r = 0; r < n; ++r) {
            const float x = row[r];
            /* nearest integer of x log2(e) <= 0 (truncation of v - 0.5 rounds a non-positive v) */
            const int32_t ki = (int32_t)(x * FL_LOG2E - 0.5f);
            row[r] = exp_poly(exp_reduce(x, (float)ki));
            two_k[r] = exp2_bits(ki);
        }
        for (int r = 0; r < n; ++r) {
            const float e = row[r] * two_k_f[r];
            row[r] = e;
            sum[r] += e;
        }
    }
}

/* Any window size: plain loops. */
static void attend(
    const float *restrict q, int64_t qsh, int64_t qsw,
    const float *restrict kv, int64_t ksh, int64_t ksw,
    float *restrict out, int64_t osh, int64_t osw,
    const float *restrict rel_h, const float *restrict rel_w, float scale,
    const int ws, const int ow, const int p, const int d, const int inner,
    float *restrict qt, float *restrict bh, float *restrict bw, float *restrict s,
    float *restrict m, float *restrict sum, float *restrict acc)
{
    const int L = ws * ws, S = ow * ow;
    /* queries, scaled, channel-major: qt[c][x*ws + y] */
    for (int x = 0; x < ws; ++x)
        for (int y = 0; y < ws; ++y) {
            const float *restrict src = q + x * qsh + y * qsw;
            for (int c = 0; c < d; ++c) qt[c * L + x * ws + y] = src[c] * scale;
        }
    /* relative logits: bh[i][x*ws + y] = qs . rel_h[i - p - x + ow - 1], bw[j][...] likewise with y */
    memset(bh, 0, sizeof(float) * ow * L);
    memset(bw, 0, sizeof(float) * ow * L);
    for (int i = 0; i < ow; ++i)
        for (int c = 0; c < d; ++c)
            for (int x = 0; x < ws; ++x) {
                const float w = rel_h[(i - p - x + ow - 1) * d + c];
                for (int y = 0; y < ws; ++y) bh[i * L + x * ws + y] += w * qt[c * L + x * ws + y];
            }
    for (int j = 0; j < ow; ++j)
        for (int c = 0; c < d; ++c) {
            float w[256];  /* ws <= 256 */
            for (int y = 0; y < ws; ++y) w[y] = rel_w[(j - p - y + ow - 1) * d + c];
            for (int x = 0; x < ws; ++x)
                for (int y = 0; y < ws; ++y) bw[j * L + x * ws + y] += w[y] * qt[c * L + x * ws + y];
        }
    /* logits s[key][query] and their running max */
    for (int r = 0; r < L; ++r) { m[r] = -INFINITY; sum[r] = 0.0f; }
    for (int i = 0; i < ow; ++i)
        for (int j = 0; j < ow; ++j) {
            const float *restrict k = kv + i * ksh + j * ksw;
            float *restrict row = s + (int64_t)(i * ow + j) * L;
            float *restrict a = acc;
            for (int r = 0; r < L; ++r) a[r] = bh[i * L + r] + bw[j * L + r];
            for (int c = 0; c < d; ++c) {
                const float kc = k[c];
                for (int r = 0; r < L; ++r) a[r] += kc * qt[c * L + r];
            }
            for (int r = 0; r < L; ++r) {
                row[r] = a[r];
                m[r] = a[r] > m[r] ? a[r] : m[r];
            }
        }
    softmax_exp(s, m, sum, L, S);
    for (int r = 0; r < L; ++r) sum[r] = 1.0f / sum[r];
    /* out[query][c] = sum_key p[key][query] v[key][c] / sum */
    for (int c = 0; c < d; ++c) {
        for (int r = 0; r < L; ++r) acc[r] = 0.0f;
        for (int i = 0; i < ow; ++i)
            for (int j = 0; j < ow; ++j) {
                const float vc = kv[i * ksh + j * ksw + inner + c];
                const float *restrict row = s + (int64_t)(i * ow + j) * L;
                for (int r = 0; r < L; ++r) acc[r] += vc * row[r];
            }
        for (int x = 0; x < ws; ++x)
            for (int y = 0; y < ws; ++y) out[x * osh + y * osw + c] = acc[x * ws + y] * sum[x * ws + y];
    }
}

/* The relative-position weights of ws = 8, ow = 12, d = 16 as 16-lane vectors (one query
 * vector = two window rows of 8): wh[r * 16 + c] = rel_h[r][c] in lanes 0-7 and rel_h[r-1][c]
 * in lanes 8-15 (r = 1..22), ww[j * 16 + c] = rel_w[j + 9 - y][c] in lanes y and y + 8
 * (j < 12, y < 8). Built once per layer call, not per window. */
enum { WH_ROWS = 23, WW_ROWS = 12 };

static void bias_tables_8_12_16(const float *restrict rel_h, const float *restrict rel_w, v16 *restrict wh, v16 *restrict ww)
{
    for (int r = 1; r < WH_ROWS; ++r)
        for (int c = 0; c < 16; ++c)
            for (int l = 0; l < 16; ++l) wh[r * 16 + c][l] = rel_h[(l < 8 ? r : r - 1) * 16 + c];
    for (int c = 0; c < 16; ++c) wh[c] = (v16){0};
    for (int j = 0; j < WW_ROWS; ++j)
        for (int c = 0; c < 16; ++c)
            for (int l = 0; l < 16; ++l) ww[j * 16 + c][l] = rel_w[(j + 9 - l % 8) * 16 + c];
}

/* ws = 8, ow = 12, d = 16 (every network of fusionlab): the same steps with explicit vectors of
 * 16 floats (GCC/Clang vector extensions; lowered to AVX-512, AVX2 or NEON registers): 64
 * queries are 4 vectors, one value row is 1 vector, and the accumulators stay in registers.
 * Logits are in base 2 (queries scaled by scale * log2(e), so the relative logits too), the
 * relative logits come from the layer's lane tables by vector FMAs (the scalar loops they
 * replace took 13 % of the kernel), and the value pass accumulates channel-major (4 query
 * vectors x 4-6 channels per pass over the keys) and transposes back: a window-head 8.0 ->
 * 6.4 us (median, paired A/B on one core, 120x160 map, 2 heads). */

static void attend_8_12_16(
    const float *restrict q, int64_t qsh, int64_t qsw,
    const float *restrict kv, int64_t ksh, int64_t ksw,
    float *restrict out, int64_t osh, int64_t osw,
    const v16 *restrict wh, const v16 *restrict ww, float scale, const int inner,
    v16 *restrict qt, v16 *restrict bh, v16 *restrict bw, v16 *restrict s)
{
    enum { WS = 8, OW = 12, D = 16, NV = 4 };  /* NV vectors of 16 = 64 queries */
    /* queries, scaled, channel-major: qt[c * NV + b] holds channel c of queries 16b..16b+15
       (window rows 2b, 2b+1), one 16x16 transpose per vector */
    for (int b = 0; b < NV; ++b) {
        v16 m[16];
        for (int j = 0; j < 16; ++j) m[j] = LOADU(q + (2 * b + j / WS) * qsh + (j % WS) * qsw);
        transpose16(m);
        for (int c = 0; c < D; ++c) qt[c * NV + b] = m[c] * (scale * FL_LOG2E);
    }
    /* relative logits from the layer's lane tables (bias_tables_8_12_16): query vector b
       holds window rows 2b (lanes 0-7) and 2b+1 (lanes 8-15), so its rel_h rows are
       i + 9 - 2b and one less, table row wh[i + 9 - 2b]; its rel_w rows depend on the lane's
       column only, table row ww[j] */
    for (int b = 0; b < NV; ++b) {
        v16 a[OW];
        for (int i = 0; i < OW; ++i) a[i] = (v16){0};
        for (int c = 0; c < D; ++c) {
            const v16 qc = qt[c * NV + b];
            for (int i = 0; i < OW; ++i) a[i] += qc * wh[(i + OW - 3 - 2 * b) * D + c];
        }
        for (int i = 0; i < OW; ++i) bh[i * NV + b] = a[i];
    }
    for (int j0 = 0; j0 < OW; j0 += OW / 2) {
        v16 a[OW / 2][NV];
        for (int jj = 0; jj < OW / 2; ++jj)
            for (int b = 0; b < NV; ++b) a[jj][b] = (v16){0};
        for (int c = 0; c < D; ++c) {
            v16 qv[NV];
            for (int b = 0; b < NV; ++b) qv[b] = qt[c * NV + b];
            for (int jj = 0; jj < OW / 2; ++jj) {
                const v16 w = ww[(j0 + jj) * D + c];
                for (int b = 0; b < NV; ++b) a[jj][b] += qv[b] * w;
            }
        }
        for (int jj = 0; jj < OW / 2; ++jj)
            for (int b = 0; b < NV; ++b) bw[(j0 + jj) * NV + b] = a[jj][b];
    }
    /* logits s[key][query] (4 vectors of 16 queries per key) and their running max; 4 keys of
       a row at a time, so each query vector loaded feeds 4 FMAs (one per key) */
    v16 m[NV];
    for (int b = 0; b < NV; ++b) m[b] = (v16){0} - INFINITY;
    for (int i = 0; i < OW; ++i)
        for (int j0 = 0; j0 < OW; j0 += 4) {
            const float *restrict k = kv + i * ksh + j0 * ksw;
            v16 a[4][NV];
            for (int jj = 0; jj < 4; ++jj)
                for (int b = 0; b < NV; ++b) a[jj][b] = bh[i * NV + b] + bw[(j0 + jj) * NV + b];
            for (int c = 0; c < D; ++c) {
                v16 qv[NV];
                for (int b = 0; b < NV; ++b) qv[b] = qt[c * NV + b];
                for (int jj = 0; jj < 4; ++jj) {
                    const float kc = k[jj * ksw + c];
                    for (int b = 0; b < NV; ++b) a[jj][b] += kc * qv[b];
                }
            }
            for (int jj = 0; jj < 4; ++jj)
                for (int b = 0; b < NV; ++b) {
                    s[(i * OW + j0 + jj) * NV + b] = a[jj][b];
                    m[b] = max16(m[b], a[jj][b]);
                }
        }
    /* probabilities (unnormalised) in place, one pass, and their sums per query */
    v16 sum[NV];
    for (int b = 0; b < NV; ++b) sum[b] = (v16){0};
    for (int key = 0; key < OW * OW; ++key)
        for (int b = 0; b < NV; ++b) {
#ifdef FUSIONLAB_SKIP_SOFTMAX_EXP  /* a measurement switch (rows.h): positive, not exp */
            const v16 e = max16(s[key * NV + b] - m[b] + 8.0f, (v16){0} + 0.25f);
#else
            const v16 e = exp2_nonpos16(s[key * NV + b] - m[b]);
#endif
            s[key * NV + b] = e;
            sum[b] += e;
        }
    v16 inv[NV];
    for (int b = 0; b < NV; ++b) inv[b] = recip16(sum[b]);
    /* out[query][c] = sum over keys of p[key][query] v[key][c] / sum, channel-major first:
       CH channels x 4 query vectors of accumulators, so per key 4 probability vectors and CH
       broadcast values feed 4 CH FMAs; then 16x16 transposes back to pixel-major */
    v16 ot[D][NV];
#define PV_GROUP(C0, CH)                                                                          \
    {                                                                                             \
        v16 a[CH][NV];                                                                            \
        for (int cc = 0; cc < CH; ++cc)                                                           \
            for (int b = 0; b < NV; ++b) a[cc][b] = (v16){0};                                     \
        for (int i = 0; i < OW; ++i)                                                              \
            for (int j = 0; j < OW; ++j) {                                                        \
                const float *restrict v = kv + i * ksh + j * ksw + inner + (C0);                  \
                const v16 *restrict pr = s + (i * OW + j) * NV;                                   \
                for (int cc = 0; cc < CH; ++cc) {                                                 \
                    const float vc = v[cc];                                                       \
                    for (int b = 0; b < NV; ++b) a[cc][b] += vc * pr[b];                          \
                }                                                                                 \
            }                                                                                     \
        for (int cc = 0; cc < CH; ++cc)                                                           \
            for (int b = 0; b < NV; ++b) ot[(C0) + cc][b] = a[cc][b] * inv[b];                    \
    }
    PV_GROUP(0, 6)
    PV_GROUP(6, 6)
    PV_GROUP(12, 4)
#undef PV_GROUP
    for (int b = 0; b < NV; ++b) {
        v16 m16[16];
        for (int c = 0; c < D; ++c) m16[c] = ot[c][b];
        transpose16(m16);
        for (int r = 0; r < 16; ++r) {
            const int qi = 16 * b + r;
            STOREU(out + (qi / WS) * osh + (qi % WS) * osw, m16[r]);
        }
    }
}

/* One window-head: the specialised kernel in the networks' setting, else the plain loops
   (their scratch on the stack: callers check it fits, see window_fits). */
static void attend_head(
    const float *q, int64_t qsh, int64_t qsw, const float *kv, int64_t ksh, int64_t ksw,
    float *out, int64_t osh, int64_t osw, const float *rel_h, const float *rel_w, const v16 *tables,
    float scale, int ws, int ow, int p, int d, int inner)
{
    if (tables) {
        v16 qt[16 * 4], bh[12 * 4], bw[12 * 4], s[144 * 4];
        attend_8_12_16(q, qsh, qsw, kv, ksh, ksw, out, osh, osw, tables, tables + WH_ROWS * 16, scale, inner,
                       qt, bh, bw, s);
    } else {
        const int L = ws * ws, S = ow * ow;
        float qt[d * L], bh[ow * L], bw[ow * L], s[S * L], m[L], sum[L], acc[L];
        attend(q, qsh, qsw, kv, ksh, ksw, out, osh, osw, rel_h, rel_w, scale, ws, ow, p, d, inner,
               qt, bh, bw, s, m, sum, acc);
    }
}

/* The lane tables of the specialised kernel (bias_tables_8_12_16) into tables, or NULL where
   the plain loops run. */
static const v16 *head_tables(const float *rel_h, const float *rel_w, int ws, int ow, int p, int d, v16 *tables)
{
    if (!(ws == 8 && ow == 12 && d == 16 && p == 2)) return NULL;
    bias_tables_8_12_16(rel_h, rel_w, tables, tables + WH_ROWS * 16);
    return tables;
}

/* a window-head's scratch fits the stack (<= 1 MB) */
static int window_fits(int ws, int ow, int d)
{
    const int64_t L = (int64_t)ws * ws, S = (int64_t)ow * ow;
    return ws <= 256 && (S + d + 2 * ow + 3) * L <= 262144;
}

/* Returns 0, or -1 (nothing done) if a window-head's scratch would not fit the stack. */
int window_attention_f32(
    const float *q, int64_t qsb, int64_t qsh, int64_t qsw,
    const float *kv, int64_t ksb, int64_t ksh, int64_t ksw,
    float *out, int64_t osb, int64_t osh, int64_t osw,
    const float *rel_h, const float *rel_w, float scale,
    int64_t gh, int64_t gw, int ws, int ow, int p, int nh, int d,
    int64_t n_tasks, int64_t grain, int64_t *next)
{
    const int inner = nh * d;
    if (!window_fits(ws, ow, d)) return -1;
    v16 tables[(WH_ROWS + WW_ROWS) * 16];
    const v16 *tab = head_tables(rel_h, rel_w, ws, ow, p, d, tables);
    for (;;) {
        const int64_t begin = __atomic_fetch_add(next, grain, __ATOMIC_RELAXED);
        if (begin >= n_tasks) break;
        const int64_t end = begin + grain < n_tasks ? begin + grain : n_tasks;
        for (int64_t t = begin; t < end; ++t) {
            const int h = (int)(t % nh);
            int64_t w = t / nh;
            const int64_t gx = w % gw;
            w /= gw;
            const int64_t gy = w % gh;
            const int64_t b = w / gh;
            attend_head(q + b * qsb + gy * ws * qsh + gx * ws * qsw + h * d, qsh, qsw,
                        kv + b * ksb + gy * ws * ksh + gx * ws * ksw + h * d, ksh, ksw,
                        out + b * osb + gy * ws * osh + gx * ws * osw + h * d, osh, osw,
                        rel_h, rel_w, tab, scale, ws, ow, p, d, inner);
        }
    }
    return 0;
}

/* The whole layer, out = [x +] W_out attention(W_qkv LN(x) [+ b_qkv]) [+ b_out], on one
 * channels-last image x (H, W, C), C a multiple of 16 (rows.h), nh * d a multiple of 16.
 * Tasks are tiles of window_rows x window_cols windows: a tile projects the pixels its keys
 * reach (its own plus p on every side, so neighbouring tiles project their shared halo twice)
 * into one zero-padded q|k|v buffer (no copies: the core reads q and k|v from it with the
 * pixel stride 3 nh d), attends every window-head of the tile and projects the
 * result out, all in one thread's buffers sized to stay in the L2 cache (about a MB), so no
 * full-size q/k/v map exists and the threads meet only at the task counter. Returns 0, or -1
 * (nothing done: no memory, or a window too big for the stack). */
int window_attention_layer_f32(
    const float *x, float *out, int64_t H, int64_t W, int C,
    const float *ln_w, const float *ln_b, float eps, const float *w_qkv_t, const float *b_qkv,
    const float *rel_h, const float *rel_w, float scale, int ws, int ow, int p, int nh, int d,
    const float *w_out_t, const float *b_out, int residual, int64_t window_rows, int64_t window_cols,
    int64_t *next)
{
    const int inner = nh * d, T = 3 * inner;
    if (!window_fits(ws, ow, d)) return -1;
    v16 tables[(WH_ROWS + WW_ROWS) * 16];
    const v16 *tab = head_tables(rel_h, rel_w, ws, ow, p, d, tables);
    const int64_t gh = (H + ws - 1) / ws, gw = (W + ws - 1) / ws;
    const int64_t bands = (gh + window_rows - 1) / window_rows, chunks = (gw + window_cols - 1) / window_cols;
    const int64_t R = window_rows * ws, Q = window_cols * ws;  /* query rows and columns of a tile */
    const int64_t qsh = Q * (int64_t)inner;                     /* attention output rows */
    const int64_t kw = Q + 2 * (int64_t)p, ksh = kw * T;        /* zero-padded q|k|v rows */
    void *base;  /* pixel rows are multiples of 16 floats: on cache lines like the buffer */
    float *buf = alloc_lines((size_t)((R + 2 * p) * ksh + R * qsh), &base);
    if (!buf) return -1;
    float *qkv = buf, *o = qkv + (R + 2 * p) * ksh;
    const size_t pixel_bytes = sizeof(float) * (size_t)T;
    for (;;) {
        const int64_t t = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
        if (t >= bands * chunks) break;
        const int64_t g0 = t / chunks * window_rows, g1 = g0 + window_rows < gh ? g0 + window_rows : gh;
        const int64_t c0 = t % chunks * window_cols, c1 = c0 + window_cols < gw ? c0 + window_cols : gw;
        const int64_t y0 = g0 * ws, y1 = g1 * ws < H ? g1 * ws : H, rows = (g1 - g0) * ws;
        const int64_t x0 = c0 * ws, x1 = c1 * ws < W ? c1 * ws : W, cols = (c1 - c0) * ws;
        const int64_t top = y0 - p, left = x0 - p;  /* image pixel of buffer pixel (0, 0) */
        const int64_t k0 = top > 0 ? top : 0, k1 = y0 + rows + p < H ? y0 + rows + p : H;
        const int64_t kx0 = left > 0 ? left : 0, kx1 = x0 + cols + p < W ? x0 + cols + p : W;
        /* zero q, k and v of the buffer pixels outside the image (the key windows' padding;
           the queries there belong to cropped outputs) */
        for (int64_t r = 0; r < rows + 2 * p; ++r) {
            float *kr = qkv + r * ksh;
            if (top + r < 0 || top + r >= H) {
                memset(kr, 0, pixel_bytes * (size_t)(cols + 2 * p));
            } else {
                memset(kr, 0, pixel_bytes * (size_t)(kx0 - left));
                memset(kr + (kx1 - left) * T, 0, pixel_bytes * (size_t)(cols + 2 * p - (kx1 - left)));
            }
        }
        /* q|k|v of every image pixel the tile's key windows reach, straight into the buffer */
        for (int64_t r = k0; r < k1; ++r)
            project_in(x + (r * W + kx0) * C, qkv + (r - top) * ksh + (kx0 - left) * T, kx1 - kx0, C, T, ln_w, ln_b,
                       eps, w_qkv_t, b_qkv, 0);
        for (int64_t gy = 0; gy < g1 - g0; ++gy)
            for (int64_t gx = 0; gx < c1 - c0; ++gx)
                for (int h = 0; h < nh; ++h) {
                    const float *window = qkv + gy * ws * ksh + gx * ws * T;  /* its key window's corner */
                    attend_head(window + p * ksh + p * T + h * d, ksh, T, window + inner + h * d, ksh, T,
                                o + gy * ws * qsh + gx * ws * inner + h * d, qsh, inner, rel_h, rel_w, tab, scale,
                                ws, ow, p, d, inner);
                }
        for (int64_t r = y0; r < y1; ++r)
            project_out(o + (r - y0) * qsh, x + (r * W + x0) * C, out + (r * W + x0) * C, x1 - x0, C, inner,
                        w_out_t, b_out, residual);
    }
    free(base);
    return 0;
}
