"""The metrics' C kernels (``fusionlab/native/metrics.c``), one image at a time.

Each function here returns what the torch code of its metric would reduce to (sums,
histograms, per-scale terms), or None where the C code does not apply: ``FUSIONLAB_NATIVE=0``,
no C compiler, a tensor that is not float32/float64 on the CPU (CUDA and half precision keep
the torch code). The metric modules call them first and fall back to their torch code on None.

Why C: the torch code is dozens of whole-image ops per metric, each sweeping ~2.5 MB float64
maps through memory; the C code makes one pass over row bands (VIF: the 8 local moments of
every scale in one separable-filter pass and ``sum log10`` taken as the log of a running
product, one log10 call per image instead of 1.2 M). Agreement with the torch code, measured
on MSRS pairs and synthetic images with flat regions (tests/metrics/test_metrics_native.py):
float64 metrics within 1e-12 relative (only the summation order differs), Qabf within 1e-7
(float32 maps, like the reference; libm's atanf/expf and torch's vectorised ones differ by an ulp).
"""
from __future__ import annotations

import ctypes

import torch

from .. import native

_P, _I64, _F64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double

_SIGNATURES = {
    "fl_vif_terms": ([_P, _I64, _I64, _I64, _F64, _P, _P], ctypes.c_int),
    "fl_ssim_uniform": ([_P, _P, _I64, _I64, _I64, _I64, _F64, _F64, _F64, _P], ctypes.c_int),
    "fl_qabf": ([_P, _I64, _I64, _P], ctypes.c_int),
    "fl_histogram": ([_P, _I64, _P], None),
    "fl_joint_histograms": ([_P, _P, _P, _I64, _P], None),
    "fl_centered_moments": ([_P, _P, _P, _I64, _P], None),
    "fl_image_stats": ([_P, _I64, _I64, _P], ctypes.c_int),
    "fl_squared_errors": ([_P, _P, _P, _I64, _P], None),
}


def _function(symbol: str):
    args, res = _SIGNATURES[symbol]
    return native.function("metrics", symbol, args, res)  # looked up once, then cached there


def _kernel(symbol: str, *xs: torch.Tensor):
    """The C function ``symbol`` if it applies to tensors ``xs``, else None."""
    if not native.enabled():
        return None
    if any(x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) for x in xs):
        return None
    return _function(symbol)


def _f64(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64).contiguous()


def _ptr(x: torch.Tensor, index: int = 0) -> int:
    """Address of ``x[index]`` (first-dim index) of a contiguous tensor."""
    return x.data_ptr() + index * x.stride(0) * x.element_size()


def _per_image(fn, b: int, *args) -> bool:
    """Call the C function ``fn`` once per image ``i < b``: tensor arguments are passed as
    the address of their image ``i`` (:func:`_ptr`), the others as they are. False if a call
    reported an error (a non-zero return; functions without a result return None)."""
    for i in range(b):
        if fn(*(_ptr(a, i) if isinstance(a, torch.Tensor) else a for a in args)):
            return False
    return True


def vif_terms(refs: torch.Tensor, dist: torch.Tensor, sigma_n_sq: float):
    """``refs (B, R, H, W)``, ``dist (B, 1, H, W)`` -> per-scale ``(num, den)``, each
    ``(B, R, 4)`` float64 (as :func:`.vif._vif_terms`), or None. H, W >= 41."""
    fn = _kernel("fl_vif_terms", refs, dist)
    if fn is None:
        return None
    x = _f64(torch.cat([refs, dist], 1))
    b, r = refs.shape[:2]
    h, w = x.shape[-2:]
    num = torch.empty(b, r, 4, dtype=torch.float64)
    den = torch.empty(b, r, 4, dtype=torch.float64)
    if not _per_image(fn, b, x, r, h, w, float(sigma_n_sq), num, den):
        return None
    return num, den


def ssim_uniform_sums(x: torch.Tensor, ys: torch.Tensor, k: int, c1: float, c2: float, cn: float):
    """Sum of the SSIM map (uniform ``k x k`` window, valid mode, formula of
    :func:`.ssim._ssim_maps`) of ``x (B, 1, H, W)`` against each of ``ys (B, R, H, W)`` ->
    ``(B, R)`` float64, or None."""
    fn = _kernel("fl_ssim_uniform", x, ys)
    if fn is None:
        return None
    x, ys = _f64(x), _f64(ys)
    b, r, h, w = ys.shape
    out = torch.empty(b, r, dtype=torch.float64)
    if not _per_image(fn, b, x, ys, r, h, w, k, float(c1), float(c2), float(cn), out):
        return None
    return out


def qabf(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor):
    """Qabf ``(B,)`` float64 from float32 maps (as :func:`.qabf.qabf`), or None."""
    fn = _kernel("fl_qabf", fused, ir, vi)
    if fn is None:
        return None
    x = torch.cat([fused, ir, vi], 1).to(torch.float32).contiguous()
    b, _, h, w = x.shape
    sums = torch.empty(b, 2, dtype=torch.float64)
    if not _per_image(fn, b, x, h, w, sums):
        return None
    return sums[:, 0] / sums[:, 1]


def histogram(x: torch.Tensor):
    """``(B, 1, H, W)`` -> ``(B, 256)`` int64 grey-level counts (as :func:`.information.histogram`), or None."""
    fn = _kernel("fl_histogram", x)
    if fn is None:
        return None
    x = _f64(x)
    b = x.shape[0]
    n = x[0].numel()
    out = torch.zeros(b, 256, dtype=torch.int64)
    _per_image(fn, b, x, n, out)
    return out


def joint_histograms(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor):
    """``(2B, 256, 256)`` int64: the (F, IR) joint histograms of the batch, then the (F, VI)
    ones (the layout of :func:`.information.fusion_mi`), or None."""
    fn = _kernel("fl_joint_histograms", fused, ir, vi)
    if fn is None:
        return None
    f, a, v = _f64(fused), _f64(ir), _f64(vi)
    b = f.shape[0]
    n = f[0].numel()
    pairs = torch.zeros(b, 2, 256, 256, dtype=torch.int64)
    _per_image(fn, b, f, a, v, n, pairs)
    return pairs.transpose(0, 1).reshape(2 * b, 256, 256)


def pearson(x: torch.Tensor, y: torch.Tensor, minus: torch.Tensor | None = None):
    """Pearson correlation of ``x`` and ``y - minus`` (``minus`` optional), ``(B,)`` float64
    (as :func:`.correlation.pearson`: NaN where either is constant), or None."""
    fn = _kernel("fl_centered_moments", x, y, *(() if minus is None else (minus,)))
    if fn is None:
        return None
    x, y = _f64(x), _f64(y)
    z = None if minus is None else _f64(minus)
    b = x.shape[0]
    n = x[0].numel()
    m = torch.empty(b, 3, dtype=torch.float64)
    _per_image(fn, b, x, y, z, n, m)
    return m[:, 0] / torch.sqrt(m[:, 1] * m[:, 2])


def image_stats(x: torch.Tensor):
    """``(B, 1, H, W)`` (H, W >= 2) -> ``(B, 5)`` float64: sum of squared deviations from
    the mean, sums of squared horizontal / vertical first differences, sum of
    ``sqrt((gx^2 + gy^2) / 2)`` (np.gradient), max. Or None."""
    fn = _kernel("fl_image_stats", x)
    if fn is None:
        return None
    x = _f64(x)
    b, _, h, w = x.shape
    out = torch.empty(b, 5, dtype=torch.float64)
    if not _per_image(fn, b, x, h, w, out):
        return None
    return out


def squared_errors(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor):
    """``(B, 2)`` float64: ``sum (IR - F)^2`` and ``sum (VI - F)^2`` per image, or None."""
    fn = _kernel("fl_squared_errors", fused, ir, vi)
    if fn is None:
        return None
    f, a, v = _f64(fused), _f64(ir), _f64(vi)
    b = f.shape[0]
    n = f[0].numel()
    out = torch.empty(b, 2, dtype=torch.float64)
    _per_image(fn, b, f, a, v, n, out)
    return out
