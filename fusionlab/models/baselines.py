"""Classical fusion baselines: no training, no weights, the floor every network must beat.

Functional API on ``(B, 1, H, W)`` tensors in [0, 1] (IR and visible luma), returning the
fused ``(B, 1, H, W)`` in [0, 1]::

    from fusionlab.models.baselines import pixel_mean, pixel_max, visible_only, laplacian_fusion
    fused = laplacian_fusion(ir, vi_y, levels=4)

and the same as registered models (``create_model("laplacian")``, ...) with the fusionlab
calling convention ``model(ir, vi_y, text=None) -> fused``:

============  ==============================================================================
name          rule
============  ==============================================================================
pixel_mean    ``(ir + vi) / 2``
pixel_max     ``max(ir, vi)``
visible_only  ``vi`` (the "no fusion" reference: what the visible camera alone gives)
laplacian     Laplacian-pyramid fusion (Burt & Adelson 1983 style): both images decomposed
              with kornia's Gaussian/Laplacian pyramids; each detail coefficient taken from
              the source with the larger magnitude (max-abs), the coarsest (base) level
              averaged; reconstructed by ``pyrup`` + add, clamped to [0, 1]
============  ==============================================================================
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from ..errors import ConfigError, InvalidTensorError


def _check(ir: torch.Tensor, vi: torch.Tensor, what: str) -> None:
    from .net import check_luma_pair

    check_luma_pair(ir, vi, what)


def pixel_mean(ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """Per-pixel average ``(ir + vi) / 2``."""
    _check(ir, vi, "pixel_mean")
    return (ir + vi) / 2


def pixel_max(ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """Per-pixel maximum (keeps hot IR targets and bright visible detail alike)."""
    _check(ir, vi, "pixel_max")
    return torch.maximum(ir, vi)


def visible_only(ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """The visible image unchanged (``ir`` is only checked)."""
    _check(ir, vi, "visible_only")
    return vi.clone()


def laplacian_fusion(ir: torch.Tensor, vi: torch.Tensor, levels: int = 4) -> torch.Tensor:
    """Laplacian-pyramid fusion: max-abs detail, averaged base.

    Args:
        ir, vi: ``(B, 1, H, W)`` in [0, 1], any H, W (kornia reflect-pads to a power of two
            where needed; the result is cropped back).
        levels: pyramid levels including the base (``levels - 1`` detail levels); >= 1.
            ``levels=1`` is the pixel mean.

    Returns:
        ``(B, 1, H, W)`` in [0, 1].
    """
    from kornia.geometry.transform import build_laplacian_pyramid, pyrup

    _check(ir, vi, "laplacian_fusion")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ConfigError(f"laplacian_fusion: levels must be an integer >= 1, got {levels!r}")
    h, w = ir.shape[-2:]
    if min(h, w) < 2 ** levels:
        raise InvalidTensorError(f"laplacian_fusion: {w}x{h} image is too small for {levels} levels "
                                 f"(needs at least {2 ** levels} pixels per side)")
    if levels == 1:
        return (ir + vi) / 2
    pyr_ir = build_laplacian_pyramid(ir, levels)
    pyr_vi = build_laplacian_pyramid(vi, levels)
    details = [torch.where(a.abs() >= b.abs(), a, b) for a, b in zip(pyr_ir[:-1], pyr_vi[:-1])]
    x = (pyr_ir[-1] + pyr_vi[-1]) / 2
    for d in reversed(details):
        x = pyrup(x) + d
    return x[..., :h, :w].clamp(0.0, 1.0).contiguous()


class Baseline(nn.Module):
    """A parameter-free fusion rule behind the fusionlab calling convention.

    ``model(ir, vi_y, text=None) -> fused`` with ``(B, 1, H, W)`` tensors in [0, 1];
    ``text`` is ignored.
    """

    def __init__(self, name: str, fn: Callable[..., torch.Tensor], **options):
        super().__init__()
        self.name, self.fn, self.options = name, fn, options

    def forward(self, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        return self.fn(ir.float(), vi.float(), **self.options)

    def extra_repr(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"name={self.name!r}{opts}"


#: registry name -> (function, summary); registered in :data:`fusionlab.models.MODELS`
BASELINES: dict[str, tuple[Callable[..., torch.Tensor], str]] = {
    "pixel_mean": (pixel_mean, "per-pixel average of IR and visible luma"),
    "pixel_max": (pixel_max, "per-pixel maximum of IR and visible luma"),
    "visible_only": (visible_only, "the visible image alone (no fusion)"),
    "laplacian": (laplacian_fusion, "Laplacian pyramid, max-abs detail, averaged base (kornia pyramids)"),
}


def create_baseline(name: str, **options) -> Baseline:
    """Module for baseline ``name`` (options, e.g. ``levels=5`` for ``laplacian``, are checked)."""
    fn = BASELINES[name][0]
    allowed = {"levels"} if name == "laplacian" else set()
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"create_model({name!r}): unknown option(s) {unknown} (known: {', '.join(sorted(allowed)) or 'none'})")
    levels = options.get("levels", 1)
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ConfigError(f"create_model({name!r}): levels must be an integer >= 1, got {levels!r}")
    return Baseline(name, fn, **options)


__all__ = ["pixel_mean", "pixel_max", "visible_only", "laplacian_fusion", "Baseline", "BASELINES", "create_baseline"]
