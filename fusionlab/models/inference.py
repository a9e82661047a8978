"""Inference helpers: colour handling, sliding windows with overlap blending.

The network fuses luma only: ``model(ir, vi_y, text) -> fused_y``. :func:`fuse_pair` applies
the colour convention of :mod:`fusionlab.color`: an RGB visible image is split into Y and
CbCr, its Y is fused with the infrared image and its CbCr is put back (as all peer methods do).
"""
from __future__ import annotations

import os
from typing import Any, Callable

import torch
import torch.nn as nn

from ..errors import ConfigError, InvalidTensorError, ShapeMismatchError
from ..color import merge_luma, split_luma, to_luma


def _batched(x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4) or x.shape[-3] not in (1, 3):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidTensorError(f"fuse_pair: {what} must be a (B, 1|3, H, W) or (1|3, H, W) tensor, got {shape}")
    return x[None] if x.ndim == 3 else x


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def fuse_pair(model: nn.Module, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None = None,
              tile: int | None = None, overlap: int = 32) -> torch.Tensor:
    """Fuse an infrared and a visible image (gray or colour) with ``model``.

    Args:
        model: any fusion network following ``model(ir, vi_y, text) -> fused_y``.
        ir: ``(B, 1|3, H, W)`` or ``(1|3, H, W)`` in [0, 1] (3 channels are reduced to luma).
        vi: ``(B, 1|3, H, W)`` or ``(1|3, H, W)`` in [0, 1]; RGB keeps its colour (CbCr).
        text: ``(B, text_dim)`` embeddings or None.
        tile: if set, fuse ``tile x tile`` windows sliding with ``overlap`` pixels of overlap,
            blended with linear ramps (bounded memory for large images); None fuses at once.
        overlap: overlap of neighbouring tiles in pixels (ignored without ``tile``).

    Returns:
        fused image on ``ir``'s device, same batch-ness as the input, with ``vi``'s channel
        count: ``(B, 1, H, W)`` for gray, ``(B, 3, H, W)`` RGB for colour; values in [0, 1].
    """
    squeeze = ir.ndim == 3
    ir_b, vi_b = _batched(ir, "ir"), _batched(vi, "vi")
    if ir_b.shape[-2:] != vi_b.shape[-2:] or ir_b.shape[0] != vi_b.shape[0]:
        raise ShapeMismatchError(f"fuse_pair: ir {tuple(ir.shape)} and vi {tuple(vi.shape)} differ in size")
    out_device = ir.device
    dev = _model_device(model)
    ir_y = to_luma(ir_b.float()).to(dev)
    vi_y, cbcr = split_luma(vi_b.float().to(dev))
    if text is not None:
        text = text.to(dev)
    if tile:
        fused_y = sliding_window(model, ir_y, vi_y, text, tile=tile, overlap=overlap)
    else:
        fused_y = model(ir_y, vi_y, text)
    out = merge_luma(fused_y.clamp(0.0, 1.0), cbcr).to(out_device)
    return out[0] if squeeze else out


def _ramp(n: int, overlap: int, first: bool, last: bool, device) -> torch.Tensor:
    """1-D blending weights of one tile: linear ramps over the overlap on inner sides."""
    w = torch.ones(n, device=device)
    r = min(overlap, n // 2)
    if r > 0:
        ramp = (torch.arange(r, device=device, dtype=torch.float32) + 0.5) / r
        if not first:
            w[:r] = ramp
        if not last:
            w[n - r:] = ramp.flip(0)
    return w


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    s = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(s))


@torch.no_grad()
def sliding_window(model: nn.Module, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None = None,
                   tile: int = 256, overlap: int = 32) -> torch.Tensor:
    """Fuse ``(B, 1, H, W)`` luma inputs tile by tile and blend the overlaps.

    Each tile is weighted by the outer product of linear ramps (1 inside, falling to 0 over
    ``overlap`` pixels on sides that have a neighbour), so seams are invisible and image
    borders keep full weight. Returns ``(B, 1, H, W)``.
    """
    if tile < 8 or overlap < 0 or overlap >= tile:
        raise InvalidTensorError(f"sliding window: need tile >= 8 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    b, _, h, w = ir.shape
    stride = tile - overlap
    ys, xs = _starts(h, tile, stride), _starts(w, tile, stride)
    acc = torch.zeros(b, 1, h, w, device=ir.device)
    norm = torch.zeros(1, 1, h, w, device=ir.device)
    for y in ys:
        th = min(tile, h - y)
        wy = _ramp(th, overlap, y == ys[0], y == ys[-1], ir.device)
        for x in xs:
            tw = min(tile, w - x)
            wx = _ramp(tw, overlap, x == xs[0], x == xs[-1], ir.device)
            weight = (wy[:, None] * wx[None, :])[None, None]
            out = model(ir[..., y:y + th, x:x + tw], vi[..., y:y + th, x:x + tw], text)
            acc[..., y:y + th, x:x + tw] += out.float() * weight
            norm[..., y:y + th, x:x + tw] += weight
    return acc / norm.clamp_min(1e-8)


FusionFn = Callable[..., torch.Tensor]


def as_fusion_fn(method: Any) -> FusionFn:
    """Turn a method spec into ``fn(ir (1,1,H,W), vi (1,C,H,W), text=None) -> fused (1,C,H,W)`` in [0, 1].

    Accepted: a fusion ``nn.Module`` (colour via :func:`fuse_pair`; it gets ``text``); a
    checkpoint path (``.pt``) or a run folder (:func:`~.checkpoint.find_checkpoint`; loaded on
    first use); a callable ``(ir, vi) -> fused`` (``text`` is not passed to it).

    Raises:
        ConfigError: anything else. CheckpointError: no checkpoint at the path.
    """
    if isinstance(method, nn.Module):
        model = method.eval()
        return lambda ir, vi, text=None: fuse_pair(model, ir, vi, text=text)
    if isinstance(method, (str, os.PathLike)):
        from .checkpoint import find_checkpoint, load_checkpoint

        path = find_checkpoint(method)
        loaded: list[FusionFn] = []

        def from_checkpoint(ir, vi, text=None):
            if not loaded:
                loaded.append(as_fusion_fn(load_checkpoint(path, map_location="cpu")[0]))
            return loaded[0](ir, vi, text)

        return from_checkpoint
    if callable(method):
        return lambda ir, vi, text=None: method(ir, vi)
    raise ConfigError(f"cannot use {type(method).__name__} as a fusion method (give a model, a callable, "
                      "a checkpoint or a run folder)")
