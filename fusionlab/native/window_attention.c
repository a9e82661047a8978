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
 * vectors (vecmath.h).
 *
 * Two entry points:
 * - window_attention_f32, the attention core on given q and zero-padded k|v maps. Strides are
 *   in elements; channels are contiguous. q: (B, gh*ws, gw*ws, nh*d); kv: (B, gh*ws + 2p,
 *   gw*ws + 2p, 2*nh*d) with keys in channels [0, nh*d) and values after them; out: (B,
 *   gh*ws, gw*ws, nh*d). Tasks are window-heads numbered ((b*gh + gy)*gw + gx)*nh + h.
 * - window_attention_layer_f32, the whole layer on one image (LayerNorm and q/k/v projection
 *   of a band of window rows into per-thread buffers, the core, output projection and
 *   residual: rows.h); tasks are bands.
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

/* ws = 8, ow = 12, d = 16 (every network of fusionlab): the same steps with explicit vectors of
 * 16 floats (GCC/Clang vector extensions; lowered to AVX-512, AVX2 or NEON registers): 64
 * queries are 4 vectors, one value row is 1 vector, and the accumulators stay in registers. */

static void attend_8_12_16(
    const float *restrict q, int64_t qsh, int64_t qsw,
    const float *restrict kv, int64_t ksh, int64_t ksw,
    float *restrict out, int64_t osh, int64_t osw,
    const float *restrict rel_h, const float *restrict rel_w, float scale, const int inner,
    v16 *restrict qt, v16 *restrict bh, v16 *restrict bw, v16 *restrict s)
{
    enum { WS = 8, OW = 12, P = 2, D = 16, NV = 4 };  /* NV vectors of 16 = 64 queries */
    float *qf = (float *)qt;
    /* queries, scaled, channel-major: qt[c * NV + b] holds channel c of queries 16b..16b+15
       (window rows 2b, 2b+1), one 16x16 transpose per vector */
    for (int b = 0; b < NV; ++b) {
        v16 m[16];
        for (int j = 0; j < 16; ++j) m[j] = LOADU(q + (2 * b + j / WS) * qsh + (j % WS) * qsw);
        transpose16(m);
        for (int c = 0; c < D; ++c) qt[c * NV + b] = m[c] * scale;
    }
    float *bhf = (float *)bh, *bwf = (float *)bw;
    for (int i = 0; i < OW; ++i) {
        float t[64] = {0};
        for (int c = 0; c < D; ++c)
            for (int x = 0; x < WS; ++x) {
                const float w = rel_h[(i - P - x + OW - 1) * D + c];
                for (int y = 0; y < WS; ++y) t[x * WS + y] += w * qf[c * 64 + x * WS + y];
            }
        for (int r = 0; r < 64; ++r) bhf[i * 64 + r] = t[r];
    }
    for (int j = 0; j < OW; ++j) {
        float t[64] = {0};
        for (int c = 0; c < D; ++c) {
            float w[WS];
            for (int y = 0; y < WS; ++y) w[y] = rel_w[(j - P - y + OW - 1) * D + c];
            for (int x = 0; x < WS; ++x)
                for (int y = 0; y < WS; ++y) t[x * WS + y] += w[y] * qf[c * 64 + x * WS + y];
        }
        for (int r = 0; r < 64; ++r) bwf[j * 64 + r] = t[r];
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
            const v16 e = exp_nonpos16(s[key * NV + b] - m[b]);
            s[key * NV + b] = e;
            sum[b] += e;
        }
    float inv[64];
    for (int b = 0; b < NV; ++b) STOREU(inv + b * 16, 1.0f / sum[b]);
    /* out[query] = sum over keys of p[key][query] v[key] / sum: 16 queries per pass over the
       keys, one value vector (16 channels) loaded per key for 16 FMAs */
    for (int r0 = 0; r0 < 64; r0 += 16) {
        v16 a[16];
        for (int rr = 0; rr < 16; ++rr) a[rr] = (v16){0};
        for (int key = 0; key < OW * OW; ++key) {
            const v16 v = LOADU(kv + (key / OW) * ksh + (key % OW) * ksw + inner);
            const float *restrict prob = (const float *)s + key * 64 + r0;
            for (int rr = 0; rr < 16; ++rr) a[rr] += prob[rr] * v;
        }
        for (int rr = 0; rr < 16; ++rr) {
            const int r = r0 + rr;
            STOREU(out + (r / WS) * osh + (r % WS) * osw, a[rr] * inv[r]);
        }
    }
}

/* One window-head: the specialised kernel in the networks' setting, else the plain loops
   (their scratch on the stack: callers check it fits, see window_fits). */
static void attend_head(
    const float *q, int64_t qsh, int64_t qsw, const float *kv, int64_t ksh, int64_t ksw,
    float *out, int64_t osh, int64_t osw, const float *rel_h, const float *rel_w, float scale,
    int ws, int ow, int p, int d, int inner)
{
    if (ws == 8 && ow == 12 && d == 16 && p == 2) {
        v16 qt[16 * 4], bh[12 * 4], bw[12 * 4], s[144 * 4];
        attend_8_12_16(q, qsh, qsw, kv, ksh, ksw, out, osh, osw, rel_h, rel_w, scale, inner, qt, bh, bw, s);
    } else {
        const int L = ws * ws, S = ow * ow;
        float qt[d * L], bh[ow * L], bw[ow * L], s[S * L], m[L], sum[L], acc[L];
        attend(q, qsh, qsw, kv, ksh, ksw, out, osh, osw, rel_h, rel_w, scale, ws, ow, p, d, inner,
               qt, bh, bw, s, m, sum, acc);
    }
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
                        rel_h, rel_w, scale, ws, ow, p, d, inner);
        }
    }
    return 0;
}

/* The whole layer, out = [x +] W_out attention(W_qkv LN(x) [+ b_qkv]) [+ b_out], on one
 * channels-last image x (H, W, C), C a multiple of 16 (rows.h), nh * d a multiple of 16.
 * Tasks are tiles of window_rows x window_cols windows: a tile projects the pixels its keys
 * reach (its own plus p on every side, so neighbouring tiles project their shared halo twice)
 * into zero-padded q and k|v buffers, attends every window-head of the tile and projects the
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
    const size_t qbytes = sizeof(float) * (size_t)inner, kvbytes = 2 * qbytes;
    if (!window_fits(ws, ow, d)) return -1;
    const int64_t gh = (H + ws - 1) / ws, gw = (W + ws - 1) / ws;
    const int64_t bands = (gh + window_rows - 1) / window_rows, chunks = (gw + window_cols - 1) / window_cols;
    const int64_t R = window_rows * ws, Q = window_cols * ws;  /* query rows and columns of a tile */
    const int64_t qsh = Q * (int64_t)inner;                     /* q and attention output rows */
    const int64_t kw = Q + 2 * (int64_t)p, ksh = kw * 2 * inner;  /* zero-padded k|v rows */
    float *buf = malloc(sizeof(float) * (size_t)(kw * T + 2 * R * qsh + (R + 2 * p) * ksh));
    if (!buf) return -1;
    float *row = buf, *q = row + kw * T, *o = q + R * qsh, *kv = o + R * qsh;
    for (;;) {
        const int64_t t = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
        if (t >= bands * chunks) break;
        const int64_t g0 = t / chunks * window_rows, g1 = g0 + window_rows < gh ? g0 + window_rows : gh;
        const int64_t c0 = t % chunks * window_cols, c1 = c0 + window_cols < gw ? c0 + window_cols : gw;
        const int64_t y0 = g0 * ws, y1 = g1 * ws < H ? g1 * ws : H, rows = (g1 - g0) * ws;
        const int64_t x0 = c0 * ws, x1 = c1 * ws < W ? c1 * ws : W, cols = (c1 - c0) * ws;
        const int64_t top = y0 - p, left = x0 - p;  /* image pixel of k|v buffer (0, 0) */
        const int64_t k0 = top > 0 ? top : 0, k1 = y0 + rows + p < H ? y0 + rows + p : H;
        const int64_t kx0 = left > 0 ? left : 0, kx1 = x0 + cols + p < W ? x0 + cols + p : W;
        /* zero: q beyond the image, k|v outside it */
        for (int64_t r = 0; r < rows; ++r)
            if (y0 + r >= H) memset(q + r * qsh, 0, qbytes * (size_t)cols);
            else if (x1 - x0 < cols) memset(q + r * qsh + (x1 - x0) * inner, 0, qbytes * (size_t)(cols - (x1 - x0)));
        for (int64_t r = 0; r < rows + 2 * p; ++r) {
            float *kr = kv + r * ksh;
            if (top + r < 0 || top + r >= H) {
                memset(kr, 0, kvbytes * (size_t)(cols + 2 * p));
            } else {
                memset(kr, 0, kvbytes * (size_t)(kx0 - left));
                memset(kr + (kx1 - left) * 2 * inner, 0, kvbytes * (size_t)(cols + 2 * p - (kx1 - left)));
            }
        }
        for (int64_t r = k0; r < k1; ++r) {
            project_in(x + (r * W + kx0) * C, row, kx1 - kx0, C, T, ln_w, ln_b, eps, w_qkv_t, b_qkv, 0);
            float *kr = kv + (r - top) * ksh + (kx0 - left) * 2 * inner;
            for (int64_t px = 0; px < kx1 - kx0; ++px) memcpy(kr + px * 2 * inner, row + px * T + inner, kvbytes);
            if (r >= y0 && r < y1)
                for (int64_t px = x0; px < x1; ++px)
                    memcpy(q + (r - y0) * qsh + (px - x0) * inner, row + (px - kx0) * T, qbytes);
        }
        for (int64_t gy = 0; gy < g1 - g0; ++gy)
            for (int64_t gx = 0; gx < c1 - c0; ++gx)
                for (int h = 0; h < nh; ++h) {
                    const int64_t at = gy * ws * qsh + gx * ws * inner + h * d;
                    attend_head(q + at, qsh, inner, kv + gy * ws * ksh + gx * ws * 2 * inner + h * d, ksh, 2 * inner,
                                o + at, qsh, inner, rel_h, rel_w, scale, ws, ow, p, d, inner);
                }
        for (int64_t r = y0; r < y1; ++r)
            project_out(o + (r - y0) * qsh, x + (r * W + x0) * C, out + (r * W + x0) * C, x1 - x0, C, inner,
                        w_out_t, b_out, residual);
    }
    free(buf);
    return 0;
}
