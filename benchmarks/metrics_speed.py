"""Speed of fusionlab's batched torch metrics vs a plain per-image NumPy/SciPy evaluator.

The NumPy/SciPy code below is written the way fusion papers' evaluators are (one image at
a time, ``scipy.signal.convolve2d`` for VIF and Qabf, ``scipy.ndimage.uniform_filter``
for SSIM, a 2-D histogram for MI), implementing the same "cddfuse" formulas. Both paths
run in one process on the same images, interleaved, and the best time of each is kept
(timings on a shared machine are noisy; the ratio measured side by side is what counts).

    python benchmarks/metrics_speed.py                 # 16 MSRS pairs at 480x640, 2 threads
    python benchmarks/metrics_speed.py --pairs 4 --repeats 1 --breakdown

Prints both timings, the speed-up and the largest difference between the two paths.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.signal import convolve2d

REPO = Path(__file__).resolve().parents[1]
from fusionlab.metrics.evaluate import METRIC_NAMES as NAMES  # noqa: E402  (the 12 default metrics)


# ----------------------------------------------------------------------------- NumPy reference
def np_en(f):
    p = np.bincount(np.round(f).astype(np.uint8).ravel(), minlength=256) / f.size
    p = p[p > 0]
    return -np.sum(p * np.log2(p))


def np_sd(f):
    return np.std(f)


def np_sf(f):
    return np.sqrt(np.mean((f[:, 1:] - f[:, :-1]) ** 2) + np.mean((f[1:, :] - f[:-1, :]) ** 2))


def np_ag(f):
    gy, gx = np.gradient(f)
    return np.mean(np.sqrt((gx ** 2 + gy ** 2) / 2))


def np_mi_pair(x, y):
    joint, _, _ = np.histogram2d(x.ravel(), y.ravel(), bins=256, range=[[-0.5, 255.5], [-0.5, 255.5]])
    p = joint / joint.sum()
    px, py = p.sum(1), p.sum(0)
    nz = p > 0
    return np.sum(p[nz] * np.log(p[nz] / np.outer(px, py)[nz]))


def np_mi(f, a, b):
    return np_mi_pair(f, a) + np_mi_pair(f, b)


def np_corr(x, y):
    x, y = x - x.mean(), y - y.mean()
    return np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y))


def np_scd(f, a, b):
    return np_corr(a, f - b) + np_corr(b, f - a)


def np_cc(f, a, b):
    return (np_corr(a, f) + np_corr(b, f)) / 2


def np_mse(f, a, b):
    return (np.mean((a - f) ** 2) + np.mean((b - f) ** 2)) / 2


def np_psnr(f, a, b):
    return 10 * np.log10(np.max(f) ** 2 / np_mse(f, a, b))


def np_vif_single(ref, dist, sigma_n_sq=2.0, eps=1e-10):
    num = den = 0.0
    for scale in range(4):
        n = 2 ** (4 - scale) + 1
        sd = n / 5.0
        r = np.arange(n) - (n - 1) / 2
        win = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sd * sd))
        win /= win.sum()
        if scale > 0:
            ref = convolve2d(ref, win, mode="valid")[::2, ::2]
            dist = convolve2d(dist, win, mode="valid")[::2, ::2]
        mu1, mu2 = convolve2d(ref, win, mode="valid"), convolve2d(dist, win, mode="valid")
        s1 = convolve2d(ref * ref, win, mode="valid") - mu1 * mu1
        s2 = convolve2d(dist * dist, win, mode="valid") - mu2 * mu2
        s12 = convolve2d(ref * dist, win, mode="valid") - mu1 * mu2
        s1[s1 < 0] = 0
        s2[s2 < 0] = 0
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        g[s1 < eps] = 0
        sv[s1 < eps] = s2[s1 < eps]
        s1[s1 < eps] = 0
        g[s2 < eps] = 0
        sv[s2 < eps] = 0
        sv[g < 0] = s2[g < 0]
        g[g < 0] = 0
        sv[sv <= eps] = eps
        num += np.sum(np.log10(1 + g * g * s1 / (sv + sigma_n_sq)))
        den += np.sum(np.log10(1 + s1 / sigma_n_sq))
    v = num / den
    return 1.0 if np.isnan(v) else v


def np_vif(f, a, b):
    return np_vif_single(a, f) + np_vif_single(b, f)


def np_edges(img):
    sx = convolve2d(img, np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32), mode="same")
    sy = convolve2d(img, np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float32), mode="same")
    g = np.sqrt(sx * sx + sy * sy)
    a = np.full_like(img, np.pi / 2)
    nz = sx != 0
    a[nz] = np.arctan(sy[nz] / sx[nz])
    return g, a


def np_q(g_s, a_s, g_f, a_f):
    rel = np.zeros_like(g_s)
    m = g_s > g_f
    rel[m] = g_f[m] / g_s[m]
    m = g_s == g_f
    rel[m] = g_f[m]
    m = g_s < g_f
    rel[m] = g_s[m] / g_f[m]
    ang = 1 - np.abs(a_s - a_f) / (np.pi / 2)
    return 0.9994 / (1 + np.exp(-15 * (rel - 0.5))) * 0.9879 / (1 + np.exp(-22 * (ang - 0.8)))


def np_qabf(f, a, b):
    (ga, aa), (gb, ab), (gf, af) = np_edges(a), np_edges(b), np_edges(f)
    return np.sum(np_q(ga, aa, gf, af) * ga + np_q(gb, ab, gf, af) * gb) / np.sum(ga + gb)


def np_ssim_single(x, y, data_range=2.0, win=7):
    x, y = x.astype(np.float64), y.astype(np.float64)
    ux, uy = uniform_filter(x, win), uniform_filter(y, win)
    uxx, uyy, uxy = uniform_filter(x * x, win), uniform_filter(y * y, win), uniform_filter(x * y, win)
    cn = win * win / (win * win - 1)
    vx, vy, vxy = cn * (uxx - ux * ux), cn * (uyy - uy * uy), cn * (uxy - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    p = (win - 1) // 2
    return s[p:-p, p:-p].mean()


def np_ssim(f, a, b):
    return np_ssim_single(f, a) + np_ssim_single(f, b)


NP_METRICS = {"EN": lambda f, a, b: np_en(f), "SD": lambda f, a, b: np_sd(f), "SF": lambda f, a, b: np_sf(f),
              "AG": lambda f, a, b: np_ag(f), "MI": np_mi, "SCD": np_scd, "VIF": np_vif, "Qabf": np_qabf,
              "SSIM": np_ssim, "MSE": np_mse, "CC": np_cc, "PSNR": np_psnr}


def numpy_suite(irs, vis, fuseds):
    """Per-image loop, as paper evaluators run -> {name: [value per image]}."""
    out = {n: [] for n in NAMES}
    for a, b, f in zip(irs, vis, fuseds):
        for n in NAMES:
            out[n].append(float(NP_METRICS[n](f, a, b)))
    return out


# ----------------------------------------------------------------------------- driver
def load(data: Path, n: int, fusion: str):
    import torch

    from fusionlab.metrics import read_gray

    stems = sorted(p.stem for p in (data / "ir").iterdir() if p.suffix == ".png")[:n]
    if len(stems) < n:
        sys.exit(f"metrics_speed: only {len(stems)} pairs in {data}, asked for {n}")
    ir = torch.cat([read_gray(data / "ir" / f"{s}.png") for s in stems])
    vi = torch.cat([read_gray(data / "vi" / f"{s}.png") for s in stems])
    fused = torch.maximum(ir, vi) if fusion == "max" else torch.round((ir + vi) / 2)
    return ir, vi, fused


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(os.environ.get("FUSIONLAB_SHARED", REPO.parent / "shared"))
    ap.add_argument("--data", type=Path, default=shared / "data" / "msrs" / "test", help="folder with ir/ and vi/")
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="worker threads of compute_metrics (default 2)")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved timing rounds; best kept")
    ap.add_argument("--fusion", choices=("mean", "max"), default="mean", help="synthetic fused image")
    ap.add_argument("--breakdown", action="store_true", help="also time each torch metric alone")
    args = ap.parse_args(argv)

    import torch

    from fusionlab.metrics import compute_metrics

    torch.set_num_threads(args.threads)
    ir, vi, fused = load(args.data, args.pairs, args.fusion)
    b, _, h, w = ir.shape
    irs, vis, fus = ([t[i, 0].numpy() for i in range(b)] for t in (ir, vi, fused))
    print(f"{b} pairs of {w}x{h} from {args.data}, {args.fusion} fusion, torch {torch.__version__} "
          f"with {torch.get_num_threads()} threads, numpy {np.__version__}")

    compute_metrics(ir[:1], vi[:1], fused[:1])  # warm-up (FFT plans, allocator)
    t_np, t_torch, c_np, c_torch = [], [], [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        ref = numpy_suite(irs, vis, fus)
        t_np.append(time.perf_counter() - t0)
        c_np.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        got = compute_metrics(ir, vi, fused)
        t_torch.append(time.perf_counter() - t0)
        c_torch.append(time.process_time() - c0)
    best_np, best_torch = min(t_np), min(t_torch)

    print(f"\n{'metric':6s} {'max abs diff':>13s} {'max rel diff':>13s}")
    worst_abs = worst_rel = 0.0
    for n in NAMES:
        a = np.asarray(ref[n], dtype=np.float64)
        g = got[n].cpu().numpy()
        both = np.isfinite(a) & np.isfinite(g)
        if not np.array_equal(np.isfinite(a), np.isfinite(g)):
            print(f"{n:6s} NaN pattern differs: numpy {a} torch {g}")
        d = np.abs(a[both] - g[both])
        r = d / np.maximum(np.abs(a[both]), 1e-12)
        mabs, mrel = (float(d.max()), float(r.max())) if d.size else (0.0, 0.0)
        worst_abs, worst_rel = max(worst_abs, mabs), max(worst_rel, mrel)
        print(f"{n:6s} {mabs:13.3e} {mrel:13.3e}")
    print(f"\nNumPy/SciPy per image : {best_np:8.3f} s  ({best_np / b * 1000:7.1f} ms/pair)  runs: "
          + ", ".join(f"{t:.2f}" for t in t_np))
    print(f"fusionlab torch batch : {best_torch:8.3f} s  ({best_torch / b * 1000:7.1f} ms/pair)  runs: "
          + ", ".join(f"{t:.2f}" for t in t_torch))
    print(f"speed-up              : {best_np / best_torch:8.1f} x   (max abs diff {worst_abs:.2e}, "
          f"max rel diff {worst_rel:.2e})")
    # CPU seconds (all threads): the work ratio, independent of how busy the machine is
    print(f"CPU time              : NumPy {min(c_np):.2f} s, torch {min(c_torch):.2f} s "
          f"-> {min(c_np) / min(c_torch):.1f} x less work")
    if os.getloadavg()[0] > os.cpu_count():
        print(f"note: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; other processes "
              "share the cores, so wall times and the speed-up are pessimistic")

    if args.breakdown:
        print("\ntorch time per metric alone (ms per pair, wall / CPU; includes input checks):")
        for n in NAMES:
            ts, cs = [], []
            for _ in range(max(2, args.repeats)):
                t0, c0 = time.perf_counter(), time.process_time()
                compute_metrics(ir, vi, fused, [n])
                ts.append(time.perf_counter() - t0)
                cs.append(time.process_time() - c0)
            print(f"  {n:6s} {min(ts) / b * 1000:7.2f} / {min(cs) / b * 1000:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
