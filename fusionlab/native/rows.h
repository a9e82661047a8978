/* Per-pixel row steps shared by the native kernels (restormer.c, window_attention.c) on
 * float32 channels-last rows, C a multiple of 16:
 *
 *     project_in:  t = LN(x) W_in^T [+ b_in]          x (n, C)   -> t (n, T)
 *     project_out: out = [x +] g W_out^T [+ b_out]    g (n, h)   -> out (n, C)
 *
 * LayerNorm is torch's (biased variance, eps inside the root); weights come transposed
 * (w_in_t (C, T), w_out_t (h, C)); bias and LayerNorm pointers may be NULL. Register blocks of
 * pixels x output vectors, so each weight load and each broadcast pixel value feeds several
 * FMAs. static inline: every kernel file compiles alone. */
#ifndef FUSIONLAB_ROWS_H
#define FUSIONLAB_ROWS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "vecmath.h"

/* Measurement switches, never set in the library fusionlab builds: with them the arithmetic
   the architecture needs beside its multiply-adds is skipped (wrong outputs, same FLOPs), so
   benchmarks/nonfma_share.py can time how much of a forward it costs.
   FUSIONLAB_SKIP_LAYERNORM_STATS: LayerNorm keeps its affine step (x w + b), not its mean and
   variance; FUSIONLAB_SKIP_GELU_ERF (restormer.c): GELU(a) * b becomes a * b;
   FUSIONLAB_SKIP_SOFTMAX_EXP (window_attention.c, the networks' setting): exp becomes a clamp. */
#ifdef FUSIONLAB_SKIP_LAYERNORM_STATS
enum { SKIP_LAYERNORM_STATS = 1 };
#else
enum { SKIP_LAYERNORM_STATS = 0 };
#endif

/* n floats starting on a 64-byte boundary (*base is what to free). malloc aligns to 16 bytes
   only, so 3 of 4 scratch buffers put every 16-float vector across two cache lines: each load
   and store then touches two lines (the FFN's depth-wise conv took 105 instead of 59 cycles
   per pixel at 32 channels; the buffer's address, and with it the time, changed from call to
   call). */
static inline float *alloc_lines(size_t n, void **base)
{
    char *p = malloc(sizeof(float) * n + 64);
    *base = p;
    return p ? (float *)(p + (64 - (uintptr_t)p % 64) % 64) : NULL;
}

/* sum of the 16 lanes by halving (4 dependent adds instead of 16) */
static inline float hsum(v16 v)
{
    v += SHUFFLE1(v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    v += SHUFFLE1(v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
    v += SHUFFLE1(v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    v += SHUFFLE1(v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    return v[0];
}

/* LayerNorm (torch's: biased variance, eps inside the root) of one pixel's C values, C a
   multiple of 16: mean and variance as two passes, like torch */
static inline void layer_norm(const float *restrict px, float *restrict xn, int C,
                              const float *restrict ln_w, const float *restrict ln_b, float eps)
{
    const int nv = C / 16;
    if (SKIP_LAYERNORM_STATS) {  /* the measurement switch: the affine step only */
        for (int o = 0; o < nv; ++o) {
            v16 y = LOADU(px + o * 16);
            if (ln_w) y *= LOADU(ln_w + o * 16);
            if (ln_b) y += LOADU(ln_b + o * 16);
            STOREU(xn + o * 16, y);
        }
        return;
    }
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

/* the lane sums of a, b, c, d in lanes 0, 4, 8, 12 (a transposing tree: 8 shuffles and 6 adds
   for four sums, instead of 4 shuffles and 4 adds for each) */
static inline v16 hsum4(v16 a, v16 b, v16 c, v16 d)
{
    const v16 ab = SHUFFLE2(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
                   + SHUFFLE2(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    const v16 cd = SHUFFLE2(c, d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
                   + SHUFFLE2(c, d, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    v16 s = SHUFFLE2(ab, cd, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27)
            + SHUFFLE2(ab, cd, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    s += SHUFFLE1(s, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    s += SHUFFLE1(s, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    return s;
}

/* layer_norm of 4 G pixels (rows of px, C apart; G = 1 or 4) into xn (4 G, C): the same two
   passes, each group of 4 pixels' sums reduced together (hsum4), the G groups' chains step by
   step side by side. One group's chain (sums, shuffle trees, root, division: ~150 cycles) is
   longer than the projection of its 4 pixels at 16-32 channels, so one group at a time left
   the FMA units waiting (G = 4 measured 0.72-0.94x the time of project_in's rows at 16-32
   channels, 0.97-1.03x at 64). The roots and divisions are one vector for all 4 G pixels. */
static inline __attribute__((always_inline)) void layer_norm_groups(
    const float *restrict px, float *restrict xn, int C, const int G,
    const float *restrict ln_w, const float *restrict ln_b, float eps)
{
    const int nv = C / 16, n = 4 * G;
    if (!ln_w || SKIP_LAYERNORM_STATS) {
        for (int q = 0; q < n; ++q) layer_norm(px + q * C, xn + q * C, C, ln_w, ln_b, eps);
        return;
    }
    const float inv_c = 1.0f / (float)C;
    v16 acc[16], mean[4], sq[4];
    for (int q = 0; q < n; ++q) {
        acc[q] = LOADU(px + q * C);
        for (int o = 1; o < nv; ++o) acc[q] += LOADU(px + q * C + o * 16);
    }
    for (int g = 0; g < G; ++g) mean[g] = hsum4(acc[4 * g], acc[4 * g + 1], acc[4 * g + 2], acc[4 * g + 3]) * inv_c;
    for (int q = 0; q < n; ++q) {
        const float m = mean[q / 4][4 * (q % 4)];
        acc[q] = (v16){0};
        for (int o = 0; o < nv; ++o) {
            const v16 d = LOADU(px + q * C + o * 16) - m;
            acc[q] += d * d;
        }
    }
    for (int g = 0; g < 4; ++g)
        sq[g] = g < G ? hsum4(acc[4 * g], acc[4 * g + 1], acc[4 * g + 2], acc[4 * g + 3]) : sq[0];
    /* hsum4 leaves each sum in all 4 lanes of its quad, so lane 4 j + g of this blend holds
       pixel 4 g + j's */
    const v16 sq01 = SHUFFLE2(sq[0], sq[1], 0, 17, 2, 19, 4, 21, 6, 23, 8, 25, 10, 27, 12, 29, 14, 31);
    const v16 sq23 = SHUFFLE2(sq[2], sq[3], 0, 17, 2, 19, 4, 21, 6, 23, 8, 25, 10, 27, 12, 29, 14, 31);
    v16 var = SHUFFLE2(sq01, sq23, 0, 1, 18, 19, 4, 5, 22, 23, 8, 9, 26, 27, 12, 13, 30, 31) * inv_c + eps;
    for (int l = 0; l < 16; ++l) var[l] = sqrtf(var[l]);  /* one vsqrtps */
    const v16 rstd = 1.0f / var;
    for (int q = 0; q < n; ++q) {
        const float m = mean[q / 4][4 * (q % 4)], r = rstd[4 * (q % 4) + q / 4];
        for (int o = 0; o < nv; ++o) {
            v16 y = (LOADU(px + q * C + o * 16) - m) * r * LOADU(ln_w + o * 16);
            if (ln_b) y += LOADU(ln_b + o * 16);
            STOREU(xn + q * C + o * 16, y);
        }
    }
}

/* NB output vectors of 4 pixels: 4 x NB accumulators in registers, so each weight load and
   each broadcast pixel value feeds several FMAs (NB is a constant after inlining); output
   vector o of pixel q goes to t + q * ps + o * vs */
static inline __attribute__((always_inline)) void project_block(
    const float *restrict xn, int C, int T, int o, const int NB,
    const float *restrict w_in_t, const float *restrict b_in, float *restrict t, int64_t ps, int64_t vs)
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
        for (int k = 0; k < NB; ++k) STOREU(t + q * ps + (o + k) * vs, a[q][k]);
}

/* the T outputs of 4 LayerNormed pixels xn (4, C) in blocks of 3-4 vectors (12-16
   accumulators) where they tile T; a block of 1 has only 4 FMA chains and runs at the FMA
   latency, not its throughput */
static inline __attribute__((always_inline)) void project_pixels4(
    const float *restrict xn, int C, int T, const float *restrict w_in_t, const float *restrict b_in,
    float *restrict t, int64_t ps, int64_t vs)
{
    const int nv = T / 16;
    int o = 0;
    if (nv % 4 != 0 && nv % 3 == 0)
        for (; o < nv; o += 3) project_block(xn, C, T, o, 3, w_in_t, b_in, t, ps, vs);
    for (; o + 4 <= nv; o += 4) project_block(xn, C, T, o, 4, w_in_t, b_in, t, ps, vs);
    for (; o + 2 <= nv; o += 2) project_block(xn, C, T, o, 2, w_in_t, b_in, t, ps, vs);
    for (; o < nv; ++o) project_block(xn, C, T, o, 1, w_in_t, b_in, t, ps, vs);
}

/* y = LN(x) W_in^T + b_in for one row of W pixels, LayerNorm 16 pixels at a time and the
   projection 4 at a time: x (W, C) -> t (W, T) (plane = 0), or with plane > 0 in planes of 16
   channels, pixel p's channels 16 o.. at t + o * plane + 16 p (a 3x3 conv over the planes
   then reads each one sequentially) */
static void project_in(const float *restrict x, float *restrict t, int64_t W, int C, int T,
                       const float *restrict ln_w, const float *restrict ln_b, float eps,
                       const float *restrict w_in_t, const float *restrict b_in, int64_t plane)
{
    const int nv = T / 16;
    const int64_t ps = plane ? 16 : T, vs = plane ? plane : 16;
    float xn[16 * C] __attribute__((aligned(64)));  /* whole cache lines, like alloc_lines */
    int64_t p = 0;
    for (; p + 16 <= W; p += 16) {
        layer_norm_groups(x + p * C, xn, C, 4, ln_w, ln_b, eps);
        for (int g = 0; g < 4; ++g) project_pixels4(xn + 4 * g * C, C, T, w_in_t, b_in, t + (p + 4 * g) * ps, ps, vs);
    }
    for (; p + 4 <= W; p += 4) {
        layer_norm_groups(x + p * C, xn, C, 1, ln_w, ln_b, eps);
        project_pixels4(xn, C, T, w_in_t, b_in, t + p * ps, ps, vs);
    }
    for (; p < W; ++p) {
        layer_norm(x + p * C, xn, C, ln_w, ln_b, eps);
        for (int o = 0; o < nv; ++o) {
            v16 a = b_in ? LOADU(b_in + o * 16) : (v16){0};
            for (int c = 0; c < C; ++c) a += xn[c] * LOADU(w_in_t + (int64_t)c * T + o * 16);
            STOREU(t + p * ps + o * vs, a);
        }
    }
}

/* PB pixels x NB output vectors of out = [x +] gate W_out^T [+ b_out], accumulators in
   registers (PB, NB constants after inlining: enough independent FMA chains to hide latency) */
static inline __attribute__((always_inline)) void project_out_block(
    const float *restrict gate, const float *restrict x, float *restrict out, int C, int h, int o,
    const int PB, const int NB, const float *restrict w_out_t, const float *restrict b_out, int residual)
{
    v16 a[8][4];
    for (int k = 0; k < NB; ++k) {
        const v16 bias = b_out ? LOADU(b_out + (o + k) * 16) : (v16){0};
        for (int q = 0; q < PB; ++q) a[q][k] = residual ? bias + LOADU(x + q * C + (o + k) * 16) : bias;
    }
    for (int j = 0; j < h; ++j) {
        v16 wv[4];
        for (int k = 0; k < NB; ++k) wv[k] = LOADU(w_out_t + (int64_t)j * C + (o + k) * 16);
        for (int q = 0; q < PB; ++q) {
            const float g = gate[q * h + j];
            for (int k = 0; k < NB; ++k) a[q][k] += g * wv[k];
        }
    }
    for (int q = 0; q < PB; ++q)
        for (int k = 0; k < NB; ++k) STOREU(out + q * C + (o + k) * 16, a[q][k]);
}

/* out = [x +] gate W_out^T [+ b_out] for n pixels: gate (n, h) -> out (n, C) */
static void project_out(const float *restrict gate, const float *restrict x, float *restrict out, int64_t n,
                        int C, int h, const float *restrict w_out_t, const float *restrict b_out, int residual)
{
    const int nv = C / 16;
    int64_t p = 0;
#define BLOCKS(PB, NB)                                                                                     \
    for (; p + PB <= n; p += PB)                                                                           \
        for (int o = 0; o + NB <= nv; o += NB)                                                             \
            project_out_block(gate + p * h, x + p * C, out + p * C, C, h, o, PB, NB, w_out_t, b_out, residual);
    if (nv % 4 == 0) { BLOCKS(4, 4) }
    else if (nv % 3 == 0) { BLOCKS(4, 3) }
    else if (nv % 2 == 0) { BLOCKS(8, 2) }
    else { BLOCKS(8, 1) }
    BLOCKS(1, 1)
#undef BLOCKS
}

/* The next chunk [r0, r1) of the H rows from the shared counter; 0 when none is left. */
static inline int next_rows(int64_t *next, int64_t rows_per_task, int64_t H, int64_t *r0, int64_t *r1)
{
    *r0 = __atomic_fetch_add(next, rows_per_task, __ATOMIC_RELAXED);
    *r1 = *r0 + rows_per_task < H ? *r0 + rows_per_task : H;
    return *r0 < H;
}

/* Row scheduling of the ring kernels (restormer.c). The caller's counter array: next[0]
   counts threads as they arrive, next[1] is how many share the call (n), next[2 + b] band b's
   claim word - rows taken from its top (low 32 bits) and from its bottom (high 32 bits). Band
   b holds rows [b H / n, (b + 1) H / n). Thread k works down band k a row at a time, then up
   the band with the most rows left, from its bottom: each thread's rows stay contiguous, so
   its 3-row ring is filled anew (2 extra projected rows) only when it changes band, and the
   threads finish within a row of each other, also when one of them lost its core for a while.
   (Chunks of 32 rows from one counter filled the ring anew every chunk, 6 % more projection,
   and left the last chunk to one thread: ~2 ms of a 25 ms FFN call on 2 threads.) */
typedef struct {
    int64_t *next, H, n, band, up, prev;
} row_sched;

static inline void sched_start(row_sched *s, int64_t *next, int64_t H)
{
    s->next = next;
    s->H = H;
    s->n = next[1] > 0 ? next[1] : 1;
    s->band = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED) % s->n;
    s->up = 0;
    s->prev = -2;
}

static inline int64_t band_rows(const row_sched *s, int64_t b) { return (b + 1) * s->H / s->n - b * s->H / s->n; }

/* The next row into *y (returns 0 when none is left), *dir its direction (+1 down, -1 up) and
   *fresh 1 unless it follows this thread's previous row in that direction. */
static inline int sched_row(row_sched *s, int64_t *y, int *fresh, int *dir)
{
    const int64_t lo = 0xffffffff;
    for (;;) {
        int64_t *w = s->next + 2 + s->band, old = __atomic_load_n(w, __ATOMIC_RELAXED);
        const int64_t b0 = s->band * s->H / s->n, len = band_rows(s, s->band);
        while ((old & lo) + (old >> 32) < len)
            if (__atomic_compare_exchange_n(w, &old, old + (s->up ? lo + 1 : 1), 0, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED)) {
                *dir = s->up ? -1 : 1;
                *y = s->up ? b0 + len - 1 - (old >> 32) : b0 + (old & lo);
                *fresh = *y != s->prev + *dir;
                s->prev = *y;
                return 1;
            }
        int64_t best = -1, most = 0;
        for (int64_t b = 0; b < s->n; ++b) {
            const int64_t v = __atomic_load_n(s->next + 2 + b, __ATOMIC_RELAXED);
            const int64_t left = band_rows(s, b) - (v & lo) - (v >> 32);
            if (left > most) most = left, best = b;
        }
        if (best < 0) return 0;
        s->band = best;
        s->up = 1;
    }
}

/* 1 where the 16-float vectors live in registers (AVX-512: 32 of them), else 0: with AVX2's
   16 ymm or NEON's 32 q registers a block of 16 vector accumulators spills to memory and the
   kernels run slower than torch, so fusionlab.native.load keeps the torch code there. Every
   library built on these row steps exports it. */
int fusionlab_native_usable(void)
{
#if defined(__AVX512F__)
    return 1;
#else
    return 0;
#endif
}

#endif
