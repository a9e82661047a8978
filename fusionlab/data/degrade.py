"""Degradations of the Text-IF vocabulary, with labels, for degradation-aware training.

Each degradation acts on ONE modality and returns the degraded pair together with the
clean targets, so that losses can be computed against the clean images (as in Text-IF)
and captions can name the degradation (the ``oracle`` captioner).

Labels (``DEGRADATIONS``): ``normal``, ``low_light`` (VI darkened + gamma + shot noise),
``over_exposure`` (VI gain + clipping), ``ir_low_contrast`` (IR contrast squeezed towards
its mean), ``ir_noise`` (Gaussian + column-stripe noise on IR).

All functions take ``(B, C, H, W)`` float tensors in [0, 1] and an optional
``torch.Generator`` for reproducibility; outputs stay in [0, 1].
"""
from __future__ import annotations

from typing import Sequence

import kornia
import torch

from ..errors import ConfigError

DEGRADATIONS: tuple[str, ...] = ("normal", "low_light", "over_exposure", "ir_low_contrast", "ir_noise")


def _u(g: torch.Generator | None, b: int, lo: float, hi: float, device) -> torch.Tensor:
    return (lo + (hi - lo) * torch.rand(b, generator=g)).to(device).view(b, 1, 1, 1)


def low_light(vi: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Night-like VI: brightness x0.12-0.35, gamma 1.2-1.6, signal-dependent noise."""
    b = vi.shape[0]
    dark = kornia.enhance.adjust_gamma(vi, _u(g, b, 1.2, 1.6, vi.device).view(b)) * _u(g, b, 0.12, 0.35, vi.device)
    noise = torch.randn(vi.shape, generator=g).to(vi.device) * (0.01 + 0.05 * dark.sqrt()) * 0.3
    return (dark + noise).clamp(0, 1)


def over_exposure(vi: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Blown-out VI: gain 1.8-3.0 plus offset 0.05-0.2, clipped at 1 (highlights lose detail)."""
    b = vi.shape[0]
    return (vi * _u(g, b, 1.8, 3.0, vi.device) + _u(g, b, 0.05, 0.2, vi.device)).clamp(0, 1)


def ir_low_contrast(ir: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Flat IR: contrast around the image mean scaled by 0.15-0.4 (kornia.enhance.adjust_contrast-like)."""
    b = ir.shape[0]
    mean = ir.mean(dim=(1, 2, 3), keepdim=True)
    return ((ir - mean) * _u(g, b, 0.15, 0.4, ir.device) + mean).clamp(0, 1)


def ir_noise(ir: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Noisy IR: Gaussian noise sigma 0.05-0.12 plus fixed-pattern column stripes."""
    b, c, h, w = ir.shape
    sigma = _u(g, b, 0.05, 0.12, ir.device)
    noise = torch.randn(ir.shape, generator=g).to(ir.device) * sigma
    stripes = torch.randn(b, c, 1, w, generator=g).to(ir.device) * sigma * 0.5
    return (ir + noise + stripes).clamp(0, 1)


def degrade(ir: torch.Tensor, vi: torch.Tensor, label: str, g: torch.Generator | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply degradation ``label`` to a batch; returns ``(ir_degraded, vi_degraded)``.

    Args:
        ir: ``(B, 1, H, W)`` in [0, 1]. vi: ``(B, 1|3, H, W)`` in [0, 1].
        label: one of :data:`DEGRADATIONS`.
    """
    if label == "normal":
        return ir, vi
    if label == "low_light":
        return ir, low_light(vi, g)
    if label == "over_exposure":
        return ir, over_exposure(vi, g)
    if label == "ir_low_contrast":
        return ir_low_contrast(ir, g), vi
    if label == "ir_noise":
        return ir_noise(ir, g), vi
    raise ConfigError(f"unknown degradation {label!r} (known: {', '.join(DEGRADATIONS)})")


def degrade_batch(ir: torch.Tensor, vi: torch.Tensor, labels: Sequence[str] | None = None,
                  probs: dict[str, float] | None = None, g: torch.Generator | None = None) -> dict:
    """Degrade each sample of a batch with its own label.

    Args:
        ir, vi: clean ``(B, 1, H, W)`` / ``(B, 1|3, H, W)`` in [0, 1].
        labels: one label per sample; if None, drawn from ``probs`` (default: uniform over
            :data:`DEGRADATIONS`) with generator ``g``.

    Returns:
        dict ``ir``, ``vi`` (degraded), ``ir_clean``, ``vi_clean``, ``labels`` (list of str).
    """
    b = ir.shape[0]
    if labels is None:
        p = probs or {k: 1.0 for k in DEGRADATIONS}
        for k in p:
            if k not in DEGRADATIONS:
                raise ConfigError(f"unknown degradation {k!r} in probs (known: {', '.join(DEGRADATIONS)})")
        names = list(p)
        weights = torch.tensor([float(p[k]) for k in names])
        idx = torch.multinomial(weights / weights.sum(), b, replacement=True, generator=g)
        labels = [names[int(i)] for i in idx]
    if len(labels) != b:
        raise ConfigError(f"got {len(labels)} labels for a batch of {b}")
    out_ir, out_vi = ir.clone(), vi.clone()
    for i, lab in enumerate(labels):
        di, dv = degrade(ir[i:i + 1], vi[i:i + 1], lab, g)
        out_ir[i:i + 1], out_vi[i:i + 1] = di, dv
    return {"ir": out_ir, "vi": out_vi, "ir_clean": ir, "vi_clean": vi, "labels": list(labels)}


def degraded_items(pairs: Sequence[dict], labels: Sequence[str] | None = None, seed: int = 0) -> list[dict]:
    """Every pair under every degradation: items ``name`` (``<pair>/<label>``), ``ir``
    ``(1, 1, H, W)``, ``vi`` ``(1, C, H, W)`` (degraded, batched), ``label``, ``pair``.

    ``pairs``: dicts with ``ir`` ``(1, H, W)``, ``vi`` ``(C, H, W)`` in [0, 1] and ``name``. The
    draw of each (pair, label) is seeded by ``seed`` and its position, so every model sees
    exactly the same degraded inputs.
    """
    labels = list(labels or DEGRADATIONS)
    items = []
    for i, p in enumerate(pairs):
        for j, lab in enumerate(labels):
            g = torch.Generator().manual_seed(seed * 100_003 + i * 101 + j)
            ir, vi = degrade(p["ir"][None], p["vi"][None], lab, g)
            items.append({"name": f"{p['name']}/{lab}", "ir": ir, "vi": vi, "label": lab, "pair": p["name"]})
    return items
