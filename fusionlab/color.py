"""Colour in one place: BT.601 luma, RGB <-> YCbCr (kornia), and the fusion convention.

The convention of every IR/VI fusion method here (and of the peer methods): the networks
and baselines fuse **luma only**; the visible image's chroma (CbCr) is put back afterwards::

    vi_y, cbcr = split_luma(vi)          # (B,1,H,W), (B,2,H,W) | None for a gray visible image
    fused_y = fuse(ir_y, vi_y)           # any luma fusion
    fused = merge_luma(fused_y, cbcr)    # (B,3,H,W) RGB, or (B,1,H,W) when VI is gray

:func:`colorize` does the last step from the visible image, :func:`fuse_in_luma` all three.
Images are float tensors in [0, 1], ``(*, C, H, W)`` with C = 1 (gray) or 3 (RGB).
"""
from __future__ import annotations

from typing import Callable

import kornia
import torch

from .errors import InvalidTensorError


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """RGB ``(*, 3, H, W)`` in [0, 1] -> YCbCr ``(*, 3, H, W)`` (Y in [0, 1], Cb/Cr centred at 0.5)."""
    return kornia.color.rgb_to_ycbcr(rgb)


# kornia < 0.9 inverts YCbCr with rounded coefficients (1.403, 0.714, 0.344, 1.773): a round
# trip drifts by up to 3e-4. kornia 0.9 has the exact inverse but needs Python >= 3.11, so on
# Python 3.10 (every kornia it can install) the same exact formula is applied here instead.
_KORNIA_EXACT_YCBCR = tuple(int(p) for p in kornia.__version__.split(".")[:2]) >= (0, 9)


def _exact_ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """kornia 0.9's ``ycbcr_to_rgb`` (the inverse of its ``rgb_to_ycbcr``), same operations."""
    y, cb, cr = ycbcr[..., 0, :, :], ycbcr[..., 1, :, :] - 0.5, ycbcr[..., 2, :, :] - 0.5
    r = y + 1.4025245442 * cr
    g = y - 0.7144034731 * cr - 0.3443401356 * cb
    b = y + 1.7730496454 * cb
    return torch.stack([r, g, b], -3)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """YCbCr ``(*, 3, H, W)`` -> RGB ``(*, 3, H, W)`` clamped to [0, 1] (the exact inverse of
    :func:`rgb_to_ycbcr` on every kornia version)."""
    if _KORNIA_EXACT_YCBCR:
        return kornia.color.ycbcr_to_rgb(ycbcr).clamp(0.0, 1.0)
    if ycbcr.ndim < 3 or ycbcr.shape[-3] != 3:  # kornia's own check, same message
        raise ValueError(f"Input size must have a shape of (*, 3, H, W). Got {ycbcr.shape}")
    return _exact_ycbcr_to_rgb(ycbcr).clamp(0.0, 1.0)


def _channels(img: torch.Tensor) -> int:
    c = img.shape[-3] if img.ndim >= 3 else 0
    if c not in (1, 3):
        raise InvalidTensorError(f"expected an image (*, 1|3, H, W), got shape {tuple(img.shape)}")
    return c


def to_luma(img: torch.Tensor) -> torch.Tensor:
    """``(*, 1|3, H, W)`` -> ``(*, 1, H, W)``: the BT.601 Y of RGB (0.299 R + 0.587 G + 0.114 B,
    as OpenCV's gray and kornia's YCbCr), gray unchanged."""
    return img if _channels(img) == 1 else kornia.color.rgb_to_y(img)


def split_luma(vi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Visible image -> ``(Y (*, 1, H, W), CbCr (*, 2, H, W))``; CbCr is None for a gray image."""
    if _channels(vi) == 1:
        return vi, None
    ycc = rgb_to_ycbcr(vi)
    return ycc[..., :1, :, :], ycc[..., 1:, :, :]


def merge_luma(y: torch.Tensor, cbcr: torch.Tensor | None) -> torch.Tensor:
    """Luma ``(*, 1, H, W)`` + the visible CbCr -> RGB clamped to [0, 1] (gray: ``y`` as is).

    ``y`` is not clamped first: the colour loss measures what clipping the RGB result costs."""
    return y if cbcr is None else ycbcr_to_rgb(torch.cat([y, cbcr.to(y.dtype)], dim=-3))


def colorize(fused_y: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` fused luma + ``(B, 1|3, H, W)`` visible -> the fused image with the
    visible colours: ``(B, 3, H, W)`` RGB (gray visible: ``(B, 1, H, W)``), in [0, 1]."""
    return merge_luma(fused_y.clamp(0.0, 1.0), split_luma(vi)[1])


def fuse_in_luma(fuse: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], ir: torch.Tensor,
                 vi: torch.Tensor) -> torch.Tensor:
    """Apply a luma fusion ``fuse(ir_y, vi_y) -> fused_y`` (``(B, 1, H, W)`` each) to an IR image
    and a gray or colour visible image; returns the fused image with the visible colours."""
    vi_y, cbcr = split_luma(vi)
    return merge_luma(fuse(to_luma(ir), vi_y).clamp(0.0, 1.0), cbcr)


__all__ = ["rgb_to_ycbcr", "ycbcr_to_rgb", "to_luma", "split_luma", "merge_luma", "colorize", "fuse_in_luma"]
