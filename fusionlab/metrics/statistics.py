"""Image statistics: EN, SD, SF, AG (fused image only) and MSE, PSNR (fused vs sources).

All reductions run in float64 (summing 300k float32 squares loses digits), on
``(B, 1, H, W)`` tensors on 0..255, returning ``(B,)`` float64. CC lives in
:mod:`.correlation`, EN is re-exported from :mod:`.information`.
"""
from __future__ import annotations

import torch

from . import _native
from ._common import check_images
from .registry import register_metric
from .information import entropy

__all__ = ["entropy", "standard_deviation", "spatial_frequency", "average_gradient", "mse", "psnr"]


def _f64(x: torch.Tensor, name: str = "image") -> torch.Tensor:
    (x,) = check_images(x, names=(name,))
    return x.to(torch.float64)


def standard_deviation(x: torch.Tensor) -> torch.Tensor:
    """SD: population standard deviation (divide by H*W, like ``np.std`` and VIFB) -> ``(B,)``."""
    (x,) = check_images(x, names=("image",))
    if (st := _native.image_stats(x)) is not None:  # C, on the CPU: the same two passes
        return torch.sqrt(st[:, 0] / x[0].numel())
    x = _f64(x).flatten(1)
    return torch.sqrt(((x - x.mean(1, keepdim=True)) ** 2).mean(1))


def spatial_frequency(x: torch.Tensor, normalise: str = "differences") -> torch.Tensor:
    """SF = sqrt(RF^2 + CF^2) from first differences along rows (RF) and columns (CF).

    Args:
        x: ``(B, 1, H, W)``.
        normalise: ``"differences"`` (cddfuse: RF^2 = mean of the H(W-1) squared horizontal
            differences, CF^2 over (H-1)W) or ``"pixels"`` (MATLAB/VIFB: both sums divided
            by H*W, so values are slightly smaller, by ~0.1 % at 480x640).

    Returns:
        ``(B,)`` float64.
    """
    (x,) = check_images(x, names=("image",))
    h, w = x.shape[-2:]
    if (st := _native.image_stats(x)) is not None:  # C, on the CPU
        if normalise == "differences":
            return torch.sqrt(st[:, 1] / (h * (w - 1)) + st[:, 2] / ((h - 1) * w))
        return torch.sqrt((st[:, 1] + st[:, 2]) / (h * w))
    x = _f64(x)
    dx = (x[..., :, 1:] - x[..., :, :-1]) ** 2
    dy = (x[..., 1:, :] - x[..., :-1, :]) ** 2
    if normalise == "differences":
        return torch.sqrt(dx.flatten(1).mean(1) + dy.flatten(1).mean(1))
    n = x.shape[-1] * x.shape[-2]
    return torch.sqrt((dx.flatten(1).sum(1) + dy.flatten(1).sum(1)) / n)


def gradient_maps(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central-difference gradients ``(gx, gy)`` as ``np.gradient`` / MATLAB ``gradient``.

    Interior: ``(x[i+1] - x[i-1]) / 2``; first/last row and column: one-sided difference.
    (The CDDFuse evaluator uses these, not first differences.) ``(B, 1, H, W)`` each, float64.
    """
    x = _f64(x)
    gy, gx = torch.gradient(x, dim=(-2, -1))
    return gx, gy


def average_gradient(x: torch.Tensor, normalise: str = "pixels") -> torch.Tensor:
    """AG: average of ``sqrt((gx^2 + gy^2) / 2)`` with central-difference gradients.

    Args:
        normalise: ``"pixels"`` (cddfuse: mean over H*W) or ``"interior"`` (MATLAB/VIFB:
            sum divided by (H-1)(W-1), i.e. larger by H*W / ((H-1)(W-1)), +0.36 % at 480x640).

    Returns:
        ``(B,)`` float64.
    """
    (x,) = check_images(x, names=("image",))
    h, w = x.shape[-2:]
    if (st := _native.image_stats(x)) is not None:  # C, on the CPU
        s = st[:, 3]
    else:
        gx, gy = gradient_maps(x)
        s = torch.sqrt((gx ** 2 + gy ** 2) / 2).flatten(1).sum(1)
    return s / (h * w if normalise == "pixels" else (h - 1) * (w - 1))


def mse(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, unit_range: bool = False) -> torch.Tensor:
    """MSE = (mean((IR - F)^2) + mean((VI - F)^2)) / 2 -> ``(B,)``.

    On the 0..255 scale, or with ``unit_range`` on the images divided by 255 (the DTPF
    evaluator's MSE, smaller by 255^2 = 65025).
    """
    fused, ir, vi = check_images(fused, ir, vi, names=("fused", "ir", "vi"), min_size=1)
    if (se := _native.squared_errors(fused, ir, vi)) is not None:  # C, on the CPU
        n = fused[0].numel()
        m = (se[:, 0] / n + se[:, 1] / n) / 2
        return m / 255.0 ** 2 if unit_range else m
    f = fused.to(torch.float64)
    m = (((ir.to(torch.float64) - f) ** 2).flatten(1).mean(1)
         + ((vi.to(torch.float64) - f) ** 2).flatten(1).mean(1)) / 2
    return m / 255.0 ** 2 if unit_range else m


def psnr(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, peak: str | float = "fused_max",
         unit_range: bool = False) -> torch.Tensor:
    """PSNR = 10 log10(peak^2 / MSE) with :func:`mse` against both sources.

    Args:
        peak: ``"fused_max"`` (cddfuse: the fused image's own maximum, so a darker fused
            image gets a lower PSNR) or ``"255"`` / a number (MATLAB toolkits).
        unit_range: use the [0, 1]-scale MSE with this 0..255 peak, as the DTPF evaluator
            does (``20 log10(255 / sqrt(MSE))``): the true PSNR plus 20 log10(255) = 48.13 dB.

    Returns:
        ``(B,)`` float64; ``inf`` when F equals both sources.
    """
    m = mse(fused, ir, vi, unit_range)
    if peak == "fused_max":
        p = fused.flatten(1).amax(1).to(torch.float64)
    else:
        p = torch.full_like(m, float(peak))
    return 10 * torch.log10(p ** 2 / m)


# ----------------------------------------------------------------------------- registry (fusionlab.metrics.METRICS)
@register_metric("SD", column=1, bounds=(0, 127.5), subsets=("summary",))
def _sd(fused, ir, vi, convention):
    return standard_deviation(fused)


@register_metric("SF", column=2, bounds=(0, 255 * 2 ** 0.5), subsets=("summary",))
def _sf(fused, ir, vi, convention):
    return spatial_frequency(fused, convention.sf_normalise)


@register_metric("AG", column=3, bounds=(0, 255), subsets=("summary",))
def _ag(fused, ir, vi, convention):
    return average_gradient(fused, convention.ag_normalise)


@register_metric("MSE", column=9, lower_is_better=True, bounds=(0, 255 ** 2))
def _mse(fused, ir, vi, convention):
    return mse(fused, ir, vi, convention.mse_unit_range)


@register_metric("PSNR", column=11)
def _psnr(fused, ir, vi, convention):
    return psnr(fused, ir, vi, convention.psnr_peak, convention.mse_unit_range)
