/* Fusion metrics on one image at a time, in one pass per row: the arithmetic of
 * fusionlab.metrics (vif.py, ssim.py, qabf.py, statistics.py, information.py, correlation.py)
 * without torch's many full-image intermediate maps.
 *
 * Images are contiguous row-major (h, w) maps; "refs then dist" blocks are nref + 1 maps
 * back to back. Every function returns 0, or -1 when a buffer cannot be allocated (the
 * caller then runs its torch code). Results agree with the torch code to round-off (each
 * Python wrapper's docstring gives the measured tolerance): the same formulas in the same
 * precision, only the summation order differs (and FMA contraction, see native.CFLAGS).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vecmath.h"

/* ------------------------------------------------------------------ sum of log10 of many terms
 * sum_i log10(t_i) = log10(prod_i t_i): one log10 per image instead of one per pixel. The
 * running product is renormalised (frexp: exact) before it can overflow or underflow, so any
 * positive finite terms are fine; terms outside [2^-64, 2^64] (and NaN/inf/<= 0) take their
 * own log10. Error: one rounding per multiplication, ~1e-11 of the product at 480x640
 * (i.e. ~5e-12 absolute on the sum of logs). */
typedef struct {
    double prod, logsum;
    int64_t exp2;
} logsum_t;

static inline void ls_init(logsum_t *a) { a->prod = 1.0; a->logsum = 0.0; a->exp2 = 0; }

static inline void ls_add(logsum_t *a, double t) {
    if (t >= 0x1p-64 && t <= 0x1p64) {
        a->prod *= t;
        if (a->prod > 0x1p400 || a->prod < 0x1p-400) {  /* ls_add_many relies on this bound */
            int e;
            a->prod = frexp(a->prod, &e);
            a->exp2 += e;
        }
    } else {
        a->logsum += log10(t);
    }
}

static inline double ls_value(const logsum_t *a) {
    return a->logsum + log10(a->prod) + (double)a->exp2 * 0.30102999566398119521;  /* log10(2) */
}

/* ------------------------------------------------------------------ VIF (vifp_mscale) */
#define VIF_EPS 1e-10

/* 1-D factor of MATLAB fspecial('gaussian', n, n / 5): the 2-D window is its outer product
 * (no entry of these windows is below fspecial's eps threshold, so nothing is zeroed). */
static void vif_window(int n, double *g) {
    const double sigma = n / 5.0, c = (n - 1) / 2.0;
    double s = 0;
    for (int i = 0; i < n; ++i) {
        const double r = i - c;
        g[i] = exp(-(r * r) / (2 * sigma * sigma));
        s += g[i];
    }
    for (int i = 0; i < n; ++i) g[i] /= s;
}

/* valid-mode filtering of one (h, w) map with the separable window g (n taps), keeping every
 * second row and column: dst is ((h - n + 2) / 2, (w - n + 2) / 2). col: w doubles. */
static void filter_down2(const double *restrict src, int64_t h, int64_t w, const double *restrict g, int n,
                         double *restrict dst, double *restrict col) {
    const int64_t oh = (h - n + 2) / 2, ow = (w - n + 2) / 2;
    for (int64_t io = 0; io < oh; ++io) {
        const double *restrict base = src + 2 * io * w;
        for (int64_t c = 0; c < w; ++c) col[c] = 0;
        for (int t = 0; t < n; ++t) {
            const double gt = g[t];
            const double *restrict row = base + (int64_t)t * w;
            for (int64_t c = 0; c < w; ++c) col[c] += gt * row[c];
        }
        double *restrict out = dst + io * ow;
        for (int64_t jo = 0; jo < ow; ++jo) {
            const double *restrict cc = col + 2 * jo;
            double s = 0;
            for (int t = 0; t < n; ++t) s += g[t] * cc[t];
            out[jo] = s;
        }
    }
}

/* GCC/clang vector extensions (4 doubles; split or widened by the compiler for the target):
 * a block of columns keeps its accumulators in registers through all taps. Unaligned loads and
 * stores go through v4du (alignment 8). */
typedef double v4d __attribute__((vector_size(32)));
typedef double v4du __attribute__((vector_size(32), aligned(8)));
#define LOAD(p) (*(const v4du *)(p))
#define STORE(p, v) (*(v4du *)(p) = (v))
#define CB 4
typedef int64_t v4di __attribute__((vector_size(32)));
/* mask ? a : b for a comparison mask m (all bits set or clear per lane) */
#define SELECT(m, a, b) ((v4d)(((v4di)(a) & (m)) | ((v4di)(b) & ~(m))))

/* Vertical pass of one output row: col[m][c] = sum_t g[t] M_m[off + t w + c] for the product
 * maps M (mean of each image, E[x^2] of each, E[ref dist] per ref: 3 nref + 2 <= 8 maps). */
static inline __attribute__((always_inline)) void vif_vertical(const double *img, const int nref, int64_t hw,
                                                                int64_t w, int64_t off, const double *g, int n,
                                                                double *restrict col) {
    const int nm = 3 * nref + 2;
    const double *dist = img + nref * hw + off;
    int64_t c0 = 0;
    for (; c0 + CB <= w; c0 += CB) {
        v4d acc[8];
        for (int m = 0; m < nm; ++m) acc[m] = (v4d){0, 0, 0, 0};
        for (int t = 0; t < n; ++t) {
            const double gt = g[t];
            const v4d d = LOAD(dist + t * w + c0);
            for (int k = 0; k <= nref; ++k) {
                const v4d x = LOAD(img + k * hw + off + t * w + c0);
                acc[k] += gt * x;
                acc[nref + 1 + k] += gt * (x * x);
                if (k < nref) acc[2 * nref + 2 + k] += gt * (x * d);
            }
        }
        for (int m = 0; m < nm; ++m) STORE(col + m * w + c0, acc[m]);
    }
    for (int64_t c = c0; c < w; ++c) {  /* the last w % CB columns */
        double acc[8] = {0};
        for (int t = 0; t < n; ++t) {
            const double gt = g[t], d = dist[t * w + c];
            for (int k = 0; k <= nref; ++k) {
                const double x = img[k * hw + off + t * w + c];
                acc[k] += gt * x;
                acc[nref + 1 + k] += gt * (x * x);
                if (k < nref) acc[2 * nref + 2 + k] += gt * (x * d);
            }
        }
        for (int m = 0; m < nm; ++m) col[m * w + c] = acc[m];
    }
}

/* Horizontal pass, valid mode: out[j] = sum_t g[t] in[j + t] for j < ow (4 independent
 * accumulator chains: FMA latency, not throughput, would bound fewer). */
static inline void filter_row(const double *restrict in, int64_t ow, const double *restrict g, int n,
                              double *restrict out) {
    int64_t j0 = 0;
    for (; j0 + 4 * CB <= ow; j0 += 4 * CB) {
        v4d a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0;
        for (int t = 0; t < n; ++t) {
            const double gt = g[t];
            const double *p = in + j0 + t;
            a0 += gt * LOAD(p);
            a1 += gt * LOAD(p + CB);
            a2 += gt * LOAD(p + 2 * CB);
            a3 += gt * LOAD(p + 3 * CB);
        }
        STORE(out + j0, a0);
        STORE(out + j0 + CB, a1);
        STORE(out + j0 + 2 * CB, a2);
        STORE(out + j0 + 3 * CB, a3);
    }
    for (int64_t j = j0; j < ow; ++j) {
        double acc = 0;
        for (int t = 0; t < n; ++t) acc += g[t] * in[j + t];
        out[j] = acc;
    }
}

/* ls_add of n terms, CB at a time: a block whose terms are all in [2^-64, 2^64] is multiplied
 * together first (|log2| <= 512), so the running product sees one factor per block. */
static inline void ls_add_many(logsum_t *a, const double *restrict t, int64_t n) {
    int64_t j0 = 0;
    for (; j0 + CB <= n; j0 += CB) {
        int ok = 1;
        double p = 1;
        for (int l = 0; l < CB; ++l) ok &= (t[j0 + l] >= 0x1p-64) & (t[j0 + l] <= 0x1p64);
        if (!ok) {
            for (int l = 0; l < CB; ++l) ls_add(a, t[j0 + l]);
            continue;
        }
        for (int l = 0; l < CB; ++l) p *= t[j0 + l];
        a->prod *= p;  /* |log2 prod| <= 400 before, so <= 912 after: no overflow */
        if (a->prod > 0x1p400 || a->prod < 0x1p-400) {
            int e;
            a->prod = frexp(a->prod, &e);
            a->exp2 += e;
        }
    }
    for (int64_t j = j0; j < n; ++j) ls_add(a, t[j]);
}

/* One scale: local moments of every ref and dist with window g (valid mode), then the
 * per-pixel information terms, accumulated into num[r], den[r]. img: nref + 1 maps (refs,
 * then dist) of (h, w). buf: (3 nref + 2) * 2 * w doubles + 2 * w. */
static inline __attribute__((always_inline)) void vif_scale_n(const double *img, const int nref, int64_t h,
                                                               int64_t w, const double *restrict g, int n,
                                                               double sigma_n_sq, logsum_t *num, logsum_t *den,
                                                               double *buf) {
    const int64_t oh = h - n + 1, ow = w - n + 1, hw = h * w;
    const int nm = 3 * nref + 2;
    double *col = buf, *mom = buf + (int64_t)nm * w, *tn = mom + (int64_t)nm * w, *td = tn + w;
    for (int64_t i = 0; i < oh; ++i) {
        vif_vertical(img, nref, hw, w, i * w, g, n, col);
        for (int m = 0; m < nm; ++m) filter_row(col + (int64_t)m * w, ow, g, n, mom + (int64_t)m * w);
        const double *restrict mu_d = mom + (int64_t)nref * w, *restrict e_dd = mom + (int64_t)(2 * nref + 1) * w;
        for (int r = 0; r < nref; ++r) {
            const double *restrict mu_r = mom + (int64_t)r * w, *restrict e_rr = mom + (int64_t)(nref + 1 + r) * w;
            const double *restrict e_rd = mom + (int64_t)(2 * nref + 2 + r) * w;
            int64_t j = 0;
            for (; j + CB <= ow; j += CB) {  /* _vif_pixel_terms on CB pixels, as factors 1 + a */
                const v4d mr = LOAD(mu_r + j), md = LOAD(mu_d + j), zero = {0, 0, 0, 0}, one = zero + 1.0;
                v4d s1 = LOAD(e_rr + j) - mr * mr, s2 = LOAD(e_dd + j) - md * md;
                const v4d s12 = LOAD(e_rd + j) - mr * md;
                s1 = SELECT(s1 < 0, zero, s1);
                s2 = SELECT(s2 < 0, zero, s2);
                const v4d gain = s12 / (s1 + VIF_EPS);
                v4d sv = s2 - gain * s12;
                sv = SELECT(sv < VIF_EPS, zero + VIF_EPS, sv);
                const v4di keep = (s1 >= VIF_EPS) & (s2 >= VIF_EPS) & (gain >= 0);
                STORE(tn + j, SELECT(keep, 1 + gain * gain * s1 / (sv + sigma_n_sq), one));
                STORE(td + j, 1 + SELECT(s1 < VIF_EPS, zero, s1) / sigma_n_sq);
            }
            for (; j < ow; ++j) {  /* the same, one pixel */
                double s1 = e_rr[j] - mu_r[j] * mu_r[j];
                double s2 = e_dd[j] - mu_d[j] * mu_d[j];
                const double s12 = e_rd[j] - mu_r[j] * mu_d[j];
                s1 = s1 < 0 ? 0 : s1;
                s2 = s2 < 0 ? 0 : s2;
                const double gain = s12 / (s1 + VIF_EPS);
                double sv = s2 - gain * s12;
                sv = sv < VIF_EPS ? VIF_EPS : sv;
                const int keep = (s1 >= VIF_EPS) & (s2 >= VIF_EPS) & (gain >= 0);
                tn[j] = keep ? 1 + gain * gain * s1 / (sv + sigma_n_sq) : 1.0;
                td[j] = 1 + (s1 < VIF_EPS ? 0 : s1) / sigma_n_sq;
            }
            ls_add_many(&num[r], tn, ow);
            ls_add_many(&den[r], td, ow);
        }
    }
}

static void vif_scale(const double *img, int nref, int64_t h, int64_t w, const double *g, int n, double sigma_n_sq,
                      logsum_t *num, logsum_t *den, double *buf) {
    if (nref == 2)  /* fusion VIF: both sources against F (constant nref: unrolled, in registers) */
        vif_scale_n(img, 2, h, w, g, n, sigma_n_sq, num, den, buf);
    else
        vif_scale_n(img, 1, h, w, g, n, sigma_n_sq, num, den, buf);
}

/* Per-scale VIF numerator/denominator sums (log10 units) of nref references against one
 * distorted image, as fusionlab.metrics.vif._vif_terms: x holds nref + 1 maps (refs, then
 * dist) of (h, w); num, den: nref * 4 (ref-major). Needs h, w >= 41. */
int fl_vif_terms(const double *x, int64_t nref, int64_t h, int64_t w, double sigma_n_sq, double *num,
                 double *den) {
    static const int windows[4] = {17, 9, 5, 3};
    if (nref < 1 || nref > 2) return -1;
    const int nm = 3 * (int)nref + 2;
    double *buf = malloc(sizeof(double) * ((size_t)(2 * nm + 2) * (size_t)w));
    double *levels[2] = {NULL, NULL};  /* ping-pong storage of the downsampled images */
    if (!buf) return -1;
    const double *cur = x;
    int64_t ch = h, cw = w;
    int status = 0;
    for (int s = 0; s < 4; ++s) {
        double g[17];
        const int n = windows[s];
        vif_window(n, g);
        if (s > 0) {  /* Gaussian low-pass with this scale's window, every second sample */
            const int64_t nh = (ch - n + 2) / 2, nw = (cw - n + 2) / 2;
            double *dst = levels[s & 1];
            if (!dst) {
                dst = levels[s & 1] = malloc(sizeof(double) * (size_t)((nref + 1) * nh * nw));
                if (!dst) { status = -1; break; }
            }
            for (int64_t k = 0; k <= nref; ++k) filter_down2(cur + k * ch * cw, ch, cw, g, n, dst + k * nh * nw, buf);
            cur = dst;
            ch = nh;
            cw = nw;
        }
        logsum_t ln[2], ld[2];
        for (int r = 0; r < nref; ++r) { ls_init(&ln[r]); ls_init(&ld[r]); }
        vif_scale(cur, (int)nref, ch, cw, g, n, sigma_n_sq, ln, ld, buf);
        for (int r = 0; r < nref; ++r) {
            num[r * 4 + s] = ls_value(&ln[r]);
            den[r * 4 + s] = ls_value(&ld[r]);
        }
    }
    free(levels[0]);
    free(levels[1]);
    free(buf);
    return status;
}

/* ------------------------------------------------------------------ SSIM, uniform k x k window */
static inline __attribute__((always_inline)) int ssim_uniform_n(const double *x, const double *ys, const int nref,
                                                                  int64_t h, int64_t w, int64_t k, double c1,
                                                                  double c2, double cn, double *out) {
    const int64_t oh = h - k + 1, ow = w - k + 1, hw = h * w;
    const int nm = 2 + 3 * nref;  /* x, x^2, then per ref: y, y^2, x y */
    double *col = malloc(sizeof(double) * (size_t)(nm * w + nm * ow));
    if (!col) return -1;
    double *win = col + nm * w;
    const double wt = (double)(k * k);
    for (int r = 0; r < nref; ++r) out[r] = 0;
    for (int64_t i = 0; i < oh; ++i) {
        int64_t c0 = 0;
        for (; c0 + CB <= w; c0 += CB) {  /* vertical k-row sums of the nm product maps */
            v4d acc[8];
            for (int m = 0; m < nm; ++m) acc[m] = (v4d){0, 0, 0, 0};
            for (int64_t t = 0; t < k; ++t) {
                const v4d xv = LOAD(x + (i + t) * w + c0);
                acc[0] += xv;
                acc[1] += xv * xv;
                for (int r = 0; r < nref; ++r) {
                    const v4d yv = LOAD(ys + r * hw + (i + t) * w + c0);
                    acc[2 + 3 * r] += yv;
                    acc[3 + 3 * r] += yv * yv;
                    acc[4 + 3 * r] += xv * yv;
                }
            }
            for (int m = 0; m < nm; ++m) STORE(col + m * w + c0, acc[m]);
        }
        for (int64_t c = c0; c < w; ++c) {
            double acc[8] = {0};
            for (int64_t t = 0; t < k; ++t) {
                const double xv = x[(i + t) * w + c];
                acc[0] += xv;
                acc[1] += xv * xv;
                for (int r = 0; r < nref; ++r) {
                    const double yv = ys[r * hw + (i + t) * w + c];
                    acc[2 + 3 * r] += yv;
                    acc[3 + 3 * r] += yv * yv;
                    acc[4 + 3 * r] += xv * yv;
                }
            }
            for (int m = 0; m < nm; ++m) col[m * w + c] = acc[m];
        }
        for (int m = 0; m < nm; ++m) {  /* horizontal k-column sums */
            const double *restrict cm = col + m * w;
            double *restrict wm = win + m * ow;
            int64_t j = 0;
            for (; j + 2 * CB <= ow; j += 2 * CB) {
                v4d a0 = {0, 0, 0, 0}, a1 = a0;
                for (int64_t t = 0; t < k; ++t) {
                    a0 += LOAD(cm + j + t);
                    a1 += LOAD(cm + j + CB + t);
                }
                STORE(wm + j, a0);
                STORE(wm + j + CB, a1);
            }
            for (; j < ow; ++j) {
                double a0 = 0;
                for (int64_t t = 0; t < k; ++t) a0 += cm[j + t];
                wm[j] = a0;
            }
        }
        for (int r = 0; r < nref; ++r) {
            const double *restrict sx = win, *restrict sxx = win + ow;
            const double *restrict sy = win + (2 + 3 * r) * ow, *restrict syy = sy + ow, *restrict sxy = syy + ow;
            v4d acc = {0, 0, 0, 0};
            int64_t j = 0;
            for (; j + CB <= ow; j += CB) {
                const v4d vx = LOAD(sx + j), vy = LOAD(sy + j);
                const v4d p = vx * vy, q = vx * vx + vy * vy;
                const v4d a1 = 2 * p + c1, b1 = q + c1;
                const v4d a2 = (wt * LOAD(sxy + j) - p) * (2 * cn) + c2;
                const v4d b2 = (wt * (LOAD(sxx + j) + LOAD(syy + j)) - q) * cn + c2;
                acc += (a1 * a2) / (b1 * b2);
            }
            double sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
            for (; j < ow; ++j) {
                const double p = sx[j] * sy[j], q = sx[j] * sx[j] + sy[j] * sy[j];
                const double a1 = 2 * p + c1, b1 = q + c1;
                const double a2 = (wt * sxy[j] - p) * (2 * cn) + c2;
                const double b2 = (wt * (sxx[j] + syy[j]) - q) * cn + c2;
                sum += (a1 * a2) / (b1 * b2);
            }
            out[r] += sum;
        }
    }
    free(col);
    return 0;
}

/* Sum over the valid windows of the SSIM map of x against each of nref (1 or 2) images ys
 * (nref maps of (h, w)), written on window sums like ssim._ssim_maps: with S the window sums,
 *   p = Sx Sy, q = Sx^2 + Sy^2, map = (2p + c1)(cn 2 (wt Sxy - p) + c2) / ((q + c1)(cn (wt (Sxx + Syy) - q) + c2))
 * Window sums are plain sums (exact for 8-bit data, as box_sum_valid). out: nref sums. */
int fl_ssim_uniform(const double *x, const double *ys, int64_t nref, int64_t h, int64_t w, int64_t k, double c1,
                    double c2, double cn, double *out) {
    if (nref == 2) return ssim_uniform_n(x, ys, 2, h, w, k, c1, c2, cn, out);
    if (nref == 1) return ssim_uniform_n(x, ys, 1, h, w, k, c1, c2, cn, out);
    return -1;
}

/* ------------------------------------------------------------------ Qabf (float32 maps)
 * x: fused, ir, vi float32 maps of (h, w). Sobel with zero padding as conv2 'same', edge
 * strength and orientation, both sources' preservation, as qabf.qabf. out[0] = sum over both
 * sources of Q g_src (float32 products summed in double), out[1] = sum of g_src. */
#define HALF_PI 1.57079632679489661923  /* math.pi / 2 */
#define TG 0.9994f
#define KG -15.0f
#define DG 0.5f
#define TA 0.9879f
#define KA -22.0f
#define DA 0.8f


/* Branch-free float32 atan and exp (Cephes' polynomials, ~1 ulp: torch's vectorised ones are
 * within 1 ulp too), so the compiler vectorises the loops that call them. */
static inline float atan_f32(float v) {
    const float x = fabsf(v);
    const int big = x > 2.414213562373095f, mid = x > 0.4142135623730950f;  /* tan(3 pi / 8), tan(pi / 8) */
    const float xr = big ? -1.0f / x : (mid ? (x - 1.0f) / (x + 1.0f) : x);
    const float y0 = big ? 1.57079632679489661923f : (mid ? 0.78539816339744830962f : 0.0f);
    const float z = xr * xr;
    const float y = y0 + ((((8.05374449538e-2f * z - 1.38776856032e-1f) * z + 1.99777106478e-1f) * z
                           - 3.33329491539e-1f) * z * xr + xr);
    return v < 0 ? -y : y;
}

static inline float exp_f32(float x) {  /* for x in [-87, 88] */
    const float kf = floorf(x * FL_LOG2E + 0.5f);
    union { int32_t i; float f; } two_k = {.i = exp2_bits((int32_t)kf)};
    return exp_poly(exp_reduce(x, kf)) * two_k.f;
}

/* No FMA contraction in this function: sqrt(sx^2 + sy^2) rounded twice, like torch; a fused
 * multiply-add changes g by an ulp, which for non-integer images moved Qabf by 7e-7. */
#if defined(__clang__)
#define NO_CONTRACT
#define NO_CONTRACT_BODY _Pragma("clang fp contract(off)")
#elif defined(__GNUC__)
#define NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#define NO_CONTRACT_BODY
#else
#define NO_CONTRACT
#define NO_CONTRACT_BODY
#endif

/* strength g and orientation a of row i of img (zero padding), via pad: 3 * (w + 2) floats */
NO_CONTRACT static void qabf_row(const float *restrict img, int64_t h, int64_t w, int64_t i, float *restrict g,
                                 float *restrict a, float *restrict pad) {
    NO_CONTRACT_BODY
    for (int r = 0; r < 3; ++r) {
        float *restrict pr = pad + r * (w + 2);
        const int64_t ii = i - 1 + r;
        if (ii < 0 || ii >= h) {
            for (int64_t c = 0; c < w + 2; ++c) pr[c] = 0.0f;
        } else {
            pr[0] = pr[w + 1] = 0.0f;
            memcpy(pr + 1, img + ii * w, sizeof(float) * (size_t)w);
        }
    }
    const float *restrict p0 = pad, *restrict p1 = pad + (w + 2), *restrict p2 = pad + 2 * (w + 2);
    for (int64_t c = 0; c < w; ++c) {
        /* _sobel: d = right - left, s = left + 2 mid + right (per row); gx = d0 + 2 d1 + d2, gy = s2 - s0 */
        const float d0 = p0[c + 2] - p0[c], d1 = p1[c + 2] - p1[c], d2 = p2[c + 2] - p2[c];
        const float s0 = p0[c] + 2 * p0[c + 1] + p0[c + 2], s2 = p2[c] + 2 * p2[c + 1] + p2[c + 2];
        const float sx = -(d0 + 2 * d1 + d2), sy = s2 - s0;
        g[c] = sqrtf(sx * sx + sy * sy);
        const float at = atan_f32(sy / sx);  /* sx = 0: inf or NaN, replaced below */
        a[c] = sx == 0.0f ? (float)HALF_PI : at;
    }
}

int fl_qabf(const float *x, int64_t h, int64_t w, double *out) {
    const int64_t hw = h * w;
    float *buf = malloc(sizeof(float) * (size_t)(8 * w + 3 * (w + 2)));
    if (!buf) return -1;
    float *g = buf, *a = buf + 3 * w, *qw = buf + 6 * w, *pad = buf + 8 * w;
    const float half_pi = (float)HALF_PI;
    double num = 0, den = 0;
    for (int64_t i = 0; i < h; ++i) {
        for (int k = 0; k < 3; ++k) qabf_row(x + k * hw, h, w, i, g + k * w, a + k * w, pad);
        const float *restrict gf = g, *restrict af = a;
        for (int k = 1; k < 3; ++k) {
            const float *restrict gs = g + k * w, *restrict as = a + k * w;
            float *restrict q = qw + (k - 1) * w;
            for (int64_t c = 0; c < w; ++c) {  /* edge_preservation(...) * g_src */
                const float lo = gs[c] < gf[c] ? gs[c] : gf[c], hi = gs[c] < gf[c] ? gf[c] : gs[c];
                const float rel = gs[c] == gf[c] ? gf[c] : lo / hi;
                const float ang = 1 - fabsf(as[c] - af[c]) / half_pi;
                float eg = KG * (rel - DG), ea = KA * (ang - DA);
                eg = eg < -80.0f ? -80.0f : eg;
                ea = ea < -80.0f ? -80.0f : ea;
                const float qg = TG / (1 + exp_f32(eg)), qa = TA / (1 + exp_f32(ea));
                q[c] = qg * qa * gs[c];
            }
        }
        /* float32 products summed in float64, 4 chains */
        double n4[4] = {0, 0, 0, 0}, d4[4] = {0, 0, 0, 0};
        const float *restrict gsrc = g + w;
        int64_t c = 0;
        for (; c + 4 <= 2 * w; c += 4)
            for (int l = 0; l < 4; ++l) {
                n4[l] += (double)qw[c + l];
                d4[l] += (double)gsrc[c + l];
            }
        for (; c < 2 * w; ++c) {
            n4[0] += (double)qw[c];
            d4[0] += (double)gsrc[c];
        }
        num += (n4[0] + n4[1]) + (n4[2] + n4[3]);
        den += (d4[0] + d4[1]) + (d4[2] + d4[3]);
    }
    free(buf);
    out[0] = num;
    out[1] = den;
    return 0;
}

/* ------------------------------------------------------------------ simple statistics */
static inline int64_t grey_level(double v) {
    /* levels(): round half to even (the default rounding mode), clamped to 0..255 */
    const double r = nearbyint(v);
    return r < 0 ? 0 : (r > 255 ? 255 : (int64_t)r);
}

/* 256-bin grey-level histogram of an n-pixel image (adds to hist). */
void fl_histogram(const double *x, int64_t n, int64_t *hist) {
    for (int64_t i = 0; i < n; ++i) hist[grey_level(x[i])]++;
}

/* Joint histograms (F, IR) and (F, VI) of n pixels: joint[0][f * 256 + a], joint[1][f * 256 + b]
 * (2 * 65536 int64, added to). */
void fl_joint_histograms(const double *f, const double *a, const double *b, int64_t n, int64_t *joint) {
    for (int64_t i = 0; i < n; ++i) {
        const int64_t lf = grey_level(f[i]) * 256;
        joint[lf + grey_level(a[i])]++;
        joint[65536 + lf + grey_level(b[i])]++;
    }
}

/* Reductions below keep 4 vector accumulators (16 partial sums): fewer roundings than one
 * running sum and no add-latency chain. */
static inline double hsum(v4d a) { return (a[0] + a[1]) + (a[2] + a[3]); }

/* Centred second moments of u = x and v = y - z (z may be NULL: v = y), two passes like
 * correlation.pearson: out = [sum (u - mu)(v - mv), sum (u - mu)^2, sum (v - mv)^2]. */
void fl_centered_moments(const double *x, const double *y, const double *z, int64_t n, double *out) {
    const v4d zero = {0, 0, 0, 0};
    v4d su = zero, sv = zero;
    int64_t i = 0;
    for (; i + CB <= n; i += CB) {
        su += LOAD(x + i);
        sv += z ? LOAD(y + i) - LOAD(z + i) : LOAD(y + i);
    }
    double su_s = hsum(su), sv_s = hsum(sv);
    for (; i < n; ++i) {
        su_s += x[i];
        sv_s += z ? y[i] - z[i] : y[i];
    }
    const double mu = su_s / n, mv = sv_s / n;
    v4d suv = zero, suu = zero, svv = zero;
    for (i = 0; i + CB <= n; i += CB) {
        const v4d du = LOAD(x + i) - mu, dv = (z ? LOAD(y + i) - LOAD(z + i) : LOAD(y + i)) - mv;
        suv += du * dv;
        suu += du * du;
        svv += dv * dv;
    }
    double a = hsum(suv), b = hsum(suu), c = hsum(svv);
    for (; i < n; ++i) {
        const double du = x[i] - mu, dv = (z ? y[i] - z[i] : y[i]) - mv;
        a += du * dv;
        b += du * du;
        c += dv * dv;
    }
    out[0] = a;
    out[1] = b;
    out[2] = c;
}

/* Statistics of one (h, w) image: out = [sum (x - mean)^2, sum of squared horizontal first
 * differences, sum of squared vertical ones, sum of sqrt((gx^2 + gy^2) / 2) with np.gradient's
 * central differences (one-sided at the borders), max]. h, w >= 2. Returns -1 if out of memory. */
int fl_image_stats(const double *x, int64_t h, int64_t w, double *out) {
    const int64_t n = h * w;
    const v4d zero = {0, 0, 0, 0};
    double *ag = malloc(sizeof(double) * (size_t)w);
    if (!ag) return -1;
    v4d s4 = zero, m4 = zero + x[0];
    int64_t i = 0;
    for (; i + CB <= n; i += CB) {
        const v4d v = LOAD(x + i);
        s4 += v;
        m4 = SELECT(v > m4, v, m4);
    }
    double s = hsum(s4), mx = m4[0];
    for (int l = 1; l < 4; ++l) mx = m4[l] > mx ? m4[l] : mx;
    for (; i < n; ++i) {
        s += x[i];
        mx = x[i] > mx ? x[i] : mx;
    }
    const double mean = s / n;
    v4d ss4 = zero;
    for (i = 0; i + CB <= n; i += CB) {
        const v4d d = LOAD(x + i) - mean;
        ss4 += d * d;
    }
    double ss = hsum(ss4);
    for (; i < n; ++i) ss += (x[i] - mean) * (x[i] - mean);
    v4d dx4 = zero, dy4 = zero, ag4 = zero;
    double sdx = 0, sdy = 0, sag = 0;
    for (int64_t r = 0; r < h; ++r) {
        const double *restrict row = x + r * w;
        const double *restrict up = r > 0 ? row - w : row, *restrict dn = r + 1 < h ? row + w : row;
        const double ydiv = (r > 0 && r + 1 < h) ? 2.0 : 1.0;
        int64_t c = 0;
        for (; c + CB <= w - 1; c += CB) {
            const v4d d = LOAD(row + c + 1) - LOAD(row + c);
            dx4 += d * d;
        }
        for (; c < w - 1; ++c) sdx += (row[c + 1] - row[c]) * (row[c + 1] - row[c]);
        if (r + 1 < h) {
            for (c = 0; c + CB <= w; c += CB) {
                const v4d d = LOAD(row + c + w) - LOAD(row + c);
                dy4 += d * d;
            }
            for (; c < w; ++c) sdy += (row[c + w] - row[c]) * (row[c + w] - row[c]);
        }
        for (c = 1; c + 1 < w; ++c) {  /* interior columns (vectorised by the compiler) */
            const double gx = (row[c + 1] - row[c - 1]) / 2.0, gy = (dn[c] - up[c]) / ydiv;
            ag[c] = sqrt((gx * gx + gy * gy) / 2);
        }
        for (int64_t e = 0; e < 2; ++e) {  /* first and last column: one-sided differences */
            const int64_t cc = e ? w - 1 : 0;
            const double gx = e ? row[w - 1] - row[w - 2] : row[1] - row[0], gy = (dn[cc] - up[cc]) / ydiv;
            ag[cc] = sqrt((gx * gx + gy * gy) / 2);
        }
        for (c = 0; c + CB <= w; c += CB) ag4 += LOAD(ag + c);
        for (; c < w; ++c) sag += ag[c];
    }
    free(ag);
    out[0] = ss;
    out[1] = sdx + hsum(dx4);
    out[2] = sdy + hsum(dy4);
    out[3] = sag + hsum(ag4);
    out[4] = mx;
    return 0;
}

/* Sums of squared differences sum (a - f)^2 and sum (b - f)^2 of n pixels (MSE, PSNR). */
void fl_squared_errors(const double *f, const double *a, const double *b, int64_t n, double *out) {
    v4d sa = {0, 0, 0, 0}, sb = sa;
    int64_t i = 0;
    for (; i + CB <= n; i += CB) {
        const v4d fv = LOAD(f + i), da = LOAD(a + i) - fv, db = LOAD(b + i) - fv;
        sa += da * da;
        sb += db * db;
    }
    double ra = hsum(sa), rb = hsum(sb);
    for (; i < n; ++i) {
        ra += (a[i] - f[i]) * (a[i] - f[i]);
        rb += (b[i] - f[i]) * (b[i] - f[i]);
    }
    out[0] = ra;
    out[1] = rb;
}
