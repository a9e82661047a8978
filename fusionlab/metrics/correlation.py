"""Correlation measures: Pearson correlation, CC and SCD (sum of correlations of differences).

All computed in float64 on mean-centred images, so float32 and float64 inputs agree.
"""
from __future__ import annotations

import torch

from . import _native
from ._common import check_images
from .registry import register_metric


def pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each image pair over all pixels.

    ``r = sum((x - mx)(y - my)) / sqrt(sum((x - mx)^2) sum((y - my)^2))``; symmetric, in
    [-1, 1]; NaN when either image is constant (0/0), as NumPy gives.

    Args:
        x, y: ``(B, 1, H, W)``.

    Returns:
        ``(B,)`` float64.
    """
    x, y = check_images(x, y, names=("x", "y"), min_size=1)
    if (r := _native.pearson(x, y)) is not None:  # C, on the CPU: the same two passes
        return r
    x = x.to(torch.float64).flatten(1)
    y = y.to(torch.float64).flatten(1)
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    return (x * y).sum(1) / torch.sqrt((x * x).sum(1) * (y * y).sum(1))


def cc(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """CC = (corr(IR, F) + corr(VI, F)) / 2: linear agreement of F with each source.

    Returns:
        ``(B,)`` float64 in [-1, 1].
    """
    fused, ir, vi = check_images(fused, ir, vi, names=("fused", "ir", "vi"), min_size=1)
    return (pearson(ir, fused) + pearson(vi, fused)) / 2


def scd(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """SCD (Aslantas & Bendes 2015) = corr(F - VI, IR) + corr(F - IR, VI).

    ``F - VI`` is what the fused image added on top of the visible image; SCD asks how
    much of it came from the infrared image (and vice versa). In [-2, 2].

    **NaN when F equals a source**: ``F - VI = 0`` is constant, its correlation is 0/0.
    The reference evaluator (NumPy) returns NaN as well; reports show it as empty/``null``
    and the folder mean skips it. Substituting 0 would be a made-up number.

    Returns:
        ``(B,)`` float64.
    """
    fused, ir, vi = check_images(fused, ir, vi, names=("fused", "ir", "vi"), min_size=1)
    ra, rb = _native.pearson(ir, fused, vi), _native.pearson(vi, fused, ir)  # C: F - VI never stored
    if ra is not None and rb is not None:
        return ra + rb
    f, a, b = (t.to(torch.float64) for t in (fused, ir, vi))
    return pearson(a, f - b) + pearson(b, f - a)


# ----------------------------------------------------------------------------- registry (fusionlab.metrics.METRICS)
@register_metric("SCD", column=5, bounds=(-2, 2), subsets=("summary",))
def _scd(fused, ir, vi, convention):
    return scd(fused, ir, vi)


@register_metric("CC", column=10, bounds=(-1, 1))
def _cc(fused, ir, vi, convention):
    return cc(fused, ir, vi)
