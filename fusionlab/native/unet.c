/* The two ends of FusionNet's U-Net, float32, zero padding 1, row tasks from a counter:
 *
 *     conv3x3_from1_f32:  (H, W) one channel    -> (H, W, N) channels-last, N a multiple of 16
 *                         (the patch embedding: out = conv(x) [+ b])
 *     conv3x3_to1_f32:    (H, W, N) channels-last -> (H, W) one channel, N a multiple of 16
 *                         (the output convolution: out = conv(x) [+ b])
 *
 * torch's oneDNN runs both at 6-11 GFLOP/s on 2 cores (one channel on one side gives its
 * blocked kernels nothing to vectorise over), and the patch embedding comes out NCHW, so the
 * blocks after it copy it to channels-last: 2 x (3.8 + 2.6) ms and 12-16 ms per 480x640
 * forward. Here every output vector is 16 channels of one pixel (from1), or the 9 taps x N
 * channels of one pixel, 8 pixels at a time, reduced by shuffle trees (to1). Summation
 * order differs from oneDNN's: results agree within float32 rounding (~1e-6). */
#include <stdint.h>

#include "rows.h"

/* weights w_t (9, N): tap (i, j) = row 3 i + j, the N output channels contiguous */
int conv3x3_from1_f32(const float *x, float *out, int64_t H, int64_t W, int N, const float *w_t,
                      const float *bias, int64_t rows_per_task, int64_t *next)
{
    if (N % 16 || N > 256) return -1;
    const int nv = N / 16;
    int64_t r0, r1;
    while (next_rows(next, rows_per_task, H, &r0, &r1))
        for (int64_t r = r0; r < r1; ++r) {
            float *orow = out + r * W * N;
            for (int o = 0; o < nv; ++o) {
                v16 w[9];
                for (int k = 0; k < 9; ++k) w[k] = LOADU(w_t + k * N + o * 16);
                const v16 b = bias ? LOADU(bias + o * 16) : (v16){0};
                for (int64_t c = 0; c < W; ++c) {
                    v16 a = b;
                    for (int i = 0; i < 3; ++i) {
                        const int64_t y = r + i - 1;
                        if (y < 0 || y >= H) continue;
                        const float *xr = x + y * W;
                        if (c > 0) a += xr[c - 1] * w[3 * i];
                        a += xr[c] * w[3 * i + 1];
                        if (c + 1 < W) a += xr[c + 1] * w[3 * i + 2];
                    }
                    STOREU(orow + c * N + o * 16, a);
                }
            }
        }
    return 0;
}

/* the sum over the 9 taps x N channels of pixel (r, c)'s neighbourhood, as a vector whose
   lanes sum to the output (zero padding: taps outside the image are skipped) */
static inline v16 to1_pixel(const float *x, int64_t H, int64_t W, int N, const float *w, int64_t r, int64_t c)
{
    const int nv = N / 16;
    v16 a = {0}, b = {0};  /* two chains: the FMA latency, not its throughput, bounds one */
    for (int i = 0; i < 3; ++i) {
        const int64_t y = r + i - 1;
        if (y < 0 || y >= H) continue;
        for (int j = 0; j < 3; ++j) {
            const int64_t xc = c + j - 1;
            if (xc < 0 || xc >= W) continue;
            const float *px = x + (y * W + xc) * N, *wk = w + (3 * i + j) * N;
            for (int o = 0; o < nv; ++o) {
                if (o & 1) b += LOADU(px + o * 16) * LOADU(wk + o * 16);
                else a += LOADU(px + o * 16) * LOADU(wk + o * 16);
            }
        }
    }
    return a + b;
}

/* 8 interior pixels (r, c..c+7), 1 <= c, c + 8 <= W - 1: the taps' sums as 8 vectors, each
   weight vector loaded once for the 8 pixels (8 independent FMA chains); rows[i] is image
   row r + i - 1 or NULL outside the image */
static inline void to1_pixels8(const float *const rows[3], int N, const float *w, int64_t c, v16 acc[8])
{
    const int nv = N / 16;
    for (int q = 0; q < 8; ++q) acc[q] = (v16){0};
    for (int i = 0; i < 3; ++i) {
        if (!rows[i]) continue;
        for (int j = 0; j < 3; ++j) {
            const float *px = rows[i] + (c + j - 1) * N, *wk = w + (3 * i + j) * N;
            for (int o = 0; o < nv; ++o) {
                const v16 wv = LOADU(wk + o * 16);
                for (int q = 0; q < 8; ++q) acc[q] += LOADU(px + q * N + o * 16) * wv;
            }
        }
    }
}

/* weights w (9, N): tap (i, j) = row 3 i + j; out (H, W) */
int conv3x3_to1_f32(const float *x, float *out, int64_t H, int64_t W, int N, const float *w, float bias,
                    int64_t rows_per_task, int64_t *next)
{
    if (N % 16) return -1;
    int64_t r0, r1;
    while (next_rows(next, rows_per_task, H, &r0, &r1))
        for (int64_t r = r0; r < r1; ++r) {
            float *orow = out + r * W;
            const float *rows[3];
            for (int i = 0; i < 3; ++i) rows[i] = r + i - 1 >= 0 && r + i - 1 < H ? x + (r + i - 1) * W * N : NULL;
            int64_t c = 0;
            if (W > 0) {  /* column 0 has no left neighbour */
                orow[0] = hsum(to1_pixel(x, H, W, N, w, r, 0)) + bias;
                c = 1;
            }
            for (; c + 8 <= W - 1; c += 8) {
                v16 acc[8];
                to1_pixels8(rows, N, w, c, acc);
                const v16 lo = hsum4(acc[0], acc[1], acc[2], acc[3]), hi = hsum4(acc[4], acc[5], acc[6], acc[7]);
                for (int q = 0; q < 4; ++q) {
                    orow[c + q] = lo[4 * q] + bias;
                    orow[c + 4 + q] = hi[4 * q] + bias;
                }
            }
            for (; c < W; ++c)
                orow[c] = hsum(to1_pixel(x, H, W, N, w, r, c)) + bias;
        }
    return 0;
}
