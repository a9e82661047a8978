"""SSIM (Wang et al. 2004) the two ways fusion papers compute it.

``SSIM(x, y) = mean over windows of (2 mx my + C1)(2 sxy + C2) / ((mx^2 + my^2 + C1)(sx^2 + sy^2 + C2))``
with ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, evaluated on every fully-inside window
("valid" mode). Fusion SSIM combines SSIM(F, IR) and SSIM(F, VI).

Why published SSIMs disagree (all switches of :class:`~.conventions.Convention`):

* ``window``: ``"uniform7"`` (scikit-image default: 7x7 box, sample covariance N-1) vs
  ``"gaussian11"`` (Wang's ``ssim.m``: 11x11 Gaussian, sigma 1.5, population covariance);
* ``data_range`` L: the CDDFuse evaluator calls ``skimage.metrics.structural_similarity``
  on float images without ``data_range``; old scikit-image then used L = 2 (the float
  dtype range -1..1) on 0..255 data, making C1, C2 negligible. That is the convention the
  CDDFuse tables carry (e.g. 0.95 for a mean fusion), and why their values are lower
  than with the correct L = 255 (1.53 for the same image). Newer scikit-image refuses
  float input without ``data_range``. The DTPF evaluator has its own version of the same
  accident: L = 255, but on integer images multiplied by 255 (0..65025), i.e. L = 1 on
  0..255 (``Convention.ssim_input_scale``; 0.938 for that mean fusion);
* ``reduce``: sum of the two (cddfuse; hence "SSIM" values above 1 in medical tables) or
  their mean (MATLAB toolkits).

Filtering runs in float64: with L = 2 the constants are ~1e-3, so float32 round-off in
the local variances would dominate flat regions.
"""
from __future__ import annotations

import torch

from . import _native
from ._common import box_sum_valid, check_images, gaussian_filter, row_bands
from .registry import register_metric

WINDOWS = ("uniform7", "gaussian11")


def _window_size(window: str) -> int:
    if window == "uniform7":
        return 7
    if window == "gaussian11":
        return 11
    from ..errors import ConfigError

    raise ConfigError(f"unknown SSIM window {window!r} (known: {', '.join(WINDOWS)})")


def _local_sums(maps: torch.Tensor, window: str) -> tuple[torch.Tensor, float]:
    """Window-weighted sums of ``maps`` and the total window weight ``W`` (49 or 1)."""
    k = _window_size(window)
    if window == "uniform7":
        # plain sums: for 8-bit data every partial sum is an integer < 2^53, so exact
        return box_sum_valid(maps, k), float(k * k)
    return gaussian_filter(k, 1.5, tuple(maps.shape[-2:]), str(maps.device))(maps), 1.0


def _ssim_maps(x: torch.Tensor, ys: torch.Tensor, window: str, data_range: float,
               sample_covariance: bool) -> torch.Tensor:
    """SSIM maps of one image ``x`` ``(B, 1, H, W)`` against ``R`` images ``ys`` ``(B, R, H, W)``.

    Written on window sums ``S`` with total weight ``W`` (means are ``S / W``), multiplied
    through by ``W^2``: with integer data all numerators below are exact integers in
    float64 (no ``E[x^2] - E[x]^2`` cancellation), and there are fewer passes over memory.
    """
    k = _window_size(window)
    r = ys.shape[1]
    x, ys = x.to(torch.float64), ys.to(torch.float64)
    s, wt = _local_sums(torch.cat([x, ys, x * x, ys * ys, x * ys], 1), window)
    sx, sy = s[:, :1], s[:, 1:r + 1]
    sxx, syy, sxy = s[:, r + 1:r + 2], s[:, r + 2:2 * r + 2], s[:, 2 * r + 2:]
    cn = k * k / (k * k - 1) if sample_covariance else 1.0
    c1 = (0.01 * data_range * wt) ** 2
    c2 = (0.03 * data_range * wt) ** 2
    p = sx * sy                       # W^2 mx my
    q = sx * sx + sy * sy             # W^2 (mx^2 + my^2)
    a1 = 2 * p + c1
    b1 = q + c1
    a2 = (wt * sxy - p).mul_(2 * cn).add_(c2)            # W^2 (2 cov + C2)
    b2 = (wt * (sxx + syy) - q).mul_(cn).add_(c2)        # W^2 (var_x + var_y + C2)
    return (a1 * a2).div_(b1 * b2)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: str = "uniform7", data_range: float = 2.0,
             sample_covariance: bool = True) -> torch.Tensor:
    """Per-window SSIM map (valid mode).

    Args:
        x, y: ``(B, 1, H, W)`` on 0..255.
        window: ``"uniform7"`` | ``"gaussian11"``. data_range: L (see module docstring).

    Returns:
        ``(B, 1, H-k+1, W-k+1)`` float64 with k = 7 or 11.
    """
    x, y = check_images(x, y, names=("x", "y"), min_size=_window_size(window))
    return _ssim_maps(x, y, window, data_range, sample_covariance)


def _mean_ssim(x: torch.Tensor, ys: torch.Tensor, window: str, data_range: float,
               sample_covariance: bool) -> torch.Tensor:
    """Mean of the SSIM maps ``(B, R)``; the uniform window runs on row bands (cache-sized),
    the Gaussian one on whole images (its FFT filter is global)."""
    k = _window_size(window)
    n = (x.shape[-2] - k + 1) * (x.shape[-1] - k + 1)
    if window != "uniform7":
        return _ssim_maps(x, ys, window, data_range, sample_covariance).flatten(2).sum(2) / n
    wt = float(k * k)
    sums = _native.ssim_uniform_sums(x, ys, k, (0.01 * data_range * wt) ** 2, (0.03 * data_range * wt) ** 2,
                                     k * k / (k * k - 1) if sample_covariance else 1.0)
    if sums is not None:  # C, on the CPU: the same formula in one pass
        return sums / n
    both = torch.cat([x, ys], 1)
    total = 0
    for band in row_bands(both, k - 1):
        total = total + _ssim_maps(band[:, :1], band[:, 1:], window, data_range, sample_covariance).sum((2, 3))
    return total / n


def ssim(x: torch.Tensor, y: torch.Tensor, window: str = "uniform7", data_range: float = 2.0,
         sample_covariance: bool = True) -> torch.Tensor:
    """Mean SSIM of each pair -> ``(B,)`` float64; symmetric, 1 for identical images."""
    x, y = check_images(x, y, names=("x", "y"), min_size=_window_size(window))
    return _mean_ssim(x, y, window, data_range, sample_covariance)[:, 0]


def fusion_ssim(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, window: str = "uniform7",
                data_range: float = 2.0, sample_covariance: bool = True, reduce: str = "sum") -> torch.Tensor:
    """Fusion SSIM: SSIM(F, IR) and SSIM(F, VI) combined by ``reduce`` (``"sum"`` | ``"mean"``).

    Defaults are the cddfuse convention (7x7 uniform, sample covariance, L = 2, sum).

    Returns:
        ``(B,)`` float64.
    """
    fused, ir, vi = check_images(fused, ir, vi, names=("fused", "ir", "vi"), min_size=_window_size(window))
    s = _mean_ssim(fused, torch.cat([ir, vi], 1), window, data_range, sample_covariance)
    return s.sum(1) if reduce == "sum" else s.mean(1)


# ----------------------------------------------------------------------------- registry (fusionlab.metrics.METRICS)
@register_metric("SSIM", column=8, bounds=(-2, 2), min_side=7, subsets=("headline", "summary"))  # a sum of two
def _ssim(fused, ir, vi, convention):
    # SSIM(s x, s y; L) == SSIM(x, y; L / s): scaling the inputs only rescales the constants
    return fusion_ssim(fused, ir, vi, convention.ssim_window, convention.ssim_data_range / convention.ssim_input_scale,
                       convention.ssim_sample_covariance, convention.ssim_reduce)
