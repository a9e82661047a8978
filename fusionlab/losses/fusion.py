"""Unsupervised fusion losses (teacher stage and the L_base term of distillation).

There is no ground-truth fused image, so every loss compares the fused image with the two
sources: keep the brighter of the two (intensity max), keep the stronger edge of the two
(gradient max), stay structurally similar to both (SSIM), keep the visible colours (YCbCr
colour) and stay close to both on average (consistency).

All functional losses take

* ``fused``: ``(B, 1, H, W)`` fused luma (or ``(B, 3, H, W)`` RGB) in [0, 1],
* ``ir``: ``(B, 1, H, W)`` in [0, 1],
* ``vi``: ``(B, 1|3, H, W)`` in [0, 1] (RGB or luma),

and return one value per sample, shape ``(B,)``, so that per-sample weights (one row of
the degradation weight table per sample) can be applied; :class:`FusionLoss` combines them.

Losses are computed against *clean* sources when training is degradation-aware (the
network sees degraded inputs; see :func:`fusionlab.data.degrade_batch`), as in Text-IF.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import kornia
import torch
import torch.nn as nn

from ..color import merge_luma, split_luma, to_luma
from ..errors import ConfigError, InvalidTensorError
from ..registry import Registry

#: name -> ``fn(fused, ir, vi, **options) -> (B,)``; each loss is registered where it is defined,
#: in the order the components are logged (register your own with ``@LOSSES.register("name")``)
LOSSES = Registry("fusion loss")

#: The paper's fixed (non-text) weights; also used for L_base during distillation.
DEFAULT_WEIGHTS: dict[str, float] = {"int": 24.0, "ssim": 40.0, "grad": 48.0, "color": 12.0, "consistency": 0.0}

#: Per-degradation weights of the public reference code (intensity-max / consistency /
#: gradient / ssim / colour). A text-guided teacher looks up its row from the degradation
#: named by the caption. Note the reference's "default" row puts 40 on *consistency* and 2
#: on SSIM, while the paper's non-text weights put 40 on SSIM: both are kept as published.
DEGRADATION_WEIGHTS: dict[str, dict[str, float]] = {
    "normal": {"int": 24, "consistency": 40, "grad": 48, "ssim": 2, "color": 12},
    "low_light": {"int": 48, "consistency": 20, "grad": 48, "ssim": 2, "color": 12},
    "over_exposure": {"int": 32, "consistency": 60, "grad": 48, "ssim": 2, "color": 12},
    "ir_low_contrast": {"int": 40, "consistency": 40, "grad": 48, "ssim": 2, "color": 12},
    "ir_noise": {"int": 32, "consistency": 60, "grad": 48, "ssim": 2, "color": 12},
    "motion_blur": {"int": 32, "consistency": 40, "grad": 72, "ssim": 2, "color": 12},
    "sensor_artifact": {"int": 24, "consistency": 80, "grad": 96, "ssim": 2, "color": 12},
    "high_noise": {"int": 32, "consistency": 80, "grad": 72, "ssim": 2, "color": 12},
}


def _check(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor) -> None:
    for name, t in (("fused", fused), ("ir", ir), ("vi", vi)):
        if t.ndim != 4 or t.shape[1] not in (1, 3):
            raise InvalidTensorError(f"{name}: expected (B, 1|3, H, W), got shape {tuple(t.shape)}")
    if not (fused.shape[0] == ir.shape[0] == vi.shape[0]) or not (fused.shape[-2:] == ir.shape[-2:] == vi.shape[-2:]):
        raise InvalidTensorError(
            f"fused {tuple(fused.shape)}, ir {tuple(ir.shape)} and vi {tuple(vi.shape)} must share batch and size")


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(1)


@LOSSES.register("int")
def intensity_max_loss(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """L_int = ``| F - max(IR, VI_Y) |_1`` per sample -> ``(B,)``.

    Keeps warm targets (bright in IR) and bright visible regions. Zero when the fused
    image equals the pixel-wise maximum of the sources.
    """
    _check(fused, ir, vi)
    return _per_sample((to_luma(fused) - torch.maximum(ir, to_luma(vi))).abs())


def sobel_abs(x: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` -> ``(B, 1, 2, H, W)`` absolute Sobel responses (x, y), un-normalised
    3x3 kernels and replicate padding as in the reference code (kornia.filters.spatial_gradient)."""
    return kornia.filters.spatial_gradient(x, mode="sobel", order=1, normalized=False).abs()


@LOSSES.register("grad")
def gradient_max_loss(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """L_grad = ``| |Sobel F| - max(|Sobel IR|, |Sobel VI_Y|) |_1`` per direction, summed
    over x and y, per sample -> ``(B,)``. Zero when the fused image has, at every pixel, the
    stronger of the two source edges (e.g. F = IR = VI)."""
    _check(fused, ir, vi)
    gf, gi, gv = sobel_abs(to_luma(fused)), sobel_abs(ir), sobel_abs(to_luma(vi))
    return 2.0 * _per_sample((gf - torch.maximum(gi, gv)).abs())  # x2: sum of the two directions' means


def _ssim_per_sample(a: torch.Tensor, b: torch.Tensor, window: int) -> torch.Tensor:
    # the window shrinks for tiny crops (it must fit); 'valid' padding avoids border artefacts
    w = max(3, min(window, a.shape[-2], a.shape[-1]))
    w -= (w + 1) % 2  # odd
    return _per_sample(kornia.metrics.ssim(a, b, window_size=w, max_val=1.0, padding="valid"))


@LOSSES.register("ssim")
def ssim_loss(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, window: int = 11) -> torch.Tensor:
    """L_ssim = ``(1 - SSIM(F, IR)) + (1 - SSIM(F, VI_Y))`` per sample -> ``(B,)``, in [0, 4].

    Gaussian window (sigma 1.5, kornia.metrics.ssim), ``window`` pixels wide, shrunk to
    fit small crops. Zero only when F = IR = VI_Y.
    """
    _check(fused, ir, vi)
    f = to_luma(fused)
    return (1.0 - _ssim_per_sample(f, ir, window)) + (1.0 - _ssim_per_sample(f, to_luma(vi), window))


@LOSSES.register("color")
def color_loss(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """L_color = ``|Cb_F - Cb_VI|_1 + |Cr_F - Cr_VI|_1`` per sample -> ``(B,)``.

    ``fused`` may be RGB ``(B, 3, H, W)`` or luma ``(B, 1, H, W)``. A luma output is
    recombined with the visible CbCr and converted to RGB (clamped to [0, 1]) as
    :func:`fusionlab.models.fuse_pair` does; the loss then measures the colour shift caused
    by clipping out-of-gamut pixels, i.e. it penalises a luma that the visible colours cannot
    carry. Zero for a gray visible image and when F = VI.
    """
    _check(fused, ir, vi)
    if vi.shape[1] == 1:
        return fused.new_zeros(fused.shape[0]) + 0.0 * fused.flatten(1).sum(1)  # keep the graph
    _, vi_cbcr = split_luma(vi)
    rgb = merge_luma(fused, vi_cbcr) if fused.shape[1] == 1 else fused
    _, f_cbcr = split_luma(rgb)
    return 2.0 * _per_sample((f_cbcr - vi_cbcr).abs())  # x2: Cb term + Cr term


@LOSSES.register("consistency")
def consistency_loss(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, ir_weight: float = 1.0) -> torch.Tensor:
    """L_consistency = ``(|F - VI_Y|_1 + ir_weight * |F - IR|_1) / 2`` per sample -> ``(B,)``
    (the reference code's intensity-consistency term). Zero when F = IR = VI_Y."""
    _check(fused, ir, vi)
    f = to_luma(fused)
    return 0.5 * (_per_sample((f - to_luma(vi)).abs()) + ir_weight * _per_sample((f - ir).abs()))


#: the built-in loss components, in the order they are logged
LOSS_NAMES: tuple[str, ...] = tuple(LOSSES.registered())


def resolve_weights(weights: str | Mapping[str, float] | Mapping[str, Mapping[str, float]] = "fixed",
                    losses: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Build the per-label weight table used by :class:`FusionLoss`.

    Args:
        weights: ``"fixed"`` (the paper's non-text weights for every sample),
            ``"degradation"`` (:data:`DEGRADATION_WEIGHTS`, one row per degradation label),
            a flat ``{loss: weight}`` dict (fixed) or a ``{label: {loss: weight}}`` table
            (must contain ``"normal"``, used for labels it does not list).
        losses: keep only these components (the loss-component ablation); the others get
            weight 0. ``None`` keeps all.

    Returns:
        ``{label: {loss: weight}}`` with every registered loss present (:data:`LOSSES`).
    """
    names = LOSSES.registered()
    if isinstance(weights, str):
        if weights == "fixed":
            table = {"normal": dict(DEFAULT_WEIGHTS)}
        elif weights == "degradation":
            table = {k: dict(v) for k, v in DEGRADATION_WEIGHTS.items()}
        else:
            raise ConfigError(f"loss weights {weights!r}: expected 'fixed', 'degradation' or a dict")
    elif isinstance(weights, Mapping) and weights and all(isinstance(v, Mapping) for v in weights.values()):
        table = {str(k): dict(v) for k, v in weights.items()}
        if "normal" not in table:
            raise ConfigError(f"loss weight table {sorted(table)} needs a 'normal' row")
    elif isinstance(weights, Mapping):
        table = {"normal": dict(weights)}
    else:
        raise ConfigError(f"loss weights {weights!r}: expected 'fixed', 'degradation' or a dict")
    if losses is not None:
        if isinstance(losses, str):
            losses = [losses]
        bad = [k for k in losses if k not in LOSSES]
        if bad:
            raise ConfigError(f"unknown loss {bad[0]!r} (known: {', '.join(names)})")
        if not losses:
            raise ConfigError("losses: at least one loss component is needed")
    out = {}
    for label, row in table.items():
        bad = [k for k in row if k not in LOSSES]
        if bad:
            raise ConfigError(f"loss weights[{label!r}]: unknown loss {bad[0]!r} (known: {', '.join(names)})")
        full = {}
        for k in names:
            try:
                w = float(row.get(k, 0.0))
            except (TypeError, ValueError):
                raise ConfigError(f"loss weights[{label!r}][{k!r}] = {row.get(k)!r} is not a number") from None
            if not w >= 0:
                raise ConfigError(f"loss weights[{label!r}][{k!r}] = {w} must be >= 0")
            full[k] = w if losses is None or k in losses else 0.0
        out[label] = full
    return out


class FusionLoss(nn.Module):
    """Weighted sum of the fusion losses with per-sample (per-degradation) weights.

    Args:
        weights: see :func:`resolve_weights` (``"fixed"``, ``"degradation"`` or a dict).
        losses: subset of :data:`LOSSES` to keep (ablation); ``None`` = all.
        ssim_window: SSIM Gaussian window size (the ``window`` option of ``ssim``).
        options: keyword options per loss, ``{name: {option: value}}`` (e.g.
            ``{"consistency": {"ir_weight": 0.5}}``).

    Forward:
        ``fused (B,1|3,H,W)``, ``ir (B,1,H,W)``, ``vi (B,1|3,H,W)`` in [0, 1] (clean sources),
        ``labels``: optional list of B degradation labels selecting the weight rows
        (unknown labels and ``None`` use the ``normal`` row).

    Returns:
        ``(total, parts)``: the scalar loss (batch mean of the weighted per-sample sums) and
        a dict of detached weighted batch means per component (for logging).
    """

    def __init__(self, weights: str | Mapping = "fixed", losses: Sequence[str] | None = None, ssim_window: int = 11,
                 options: Mapping[str, Mapping] | None = None):
        super().__init__()
        self.table = resolve_weights(weights, losses)
        self.options = {"ssim": {"window": int(ssim_window)}}
        for name, opts in (options or {}).items():
            LOSSES.get(name)  # ConfigError naming the known losses
            self.options[name] = {**self.options.get(name, {}), **opts}
        # components with a non-zero weight in some row: the others are not even computed
        self.active = [k for k in LOSSES.registered() if any(row[k] > 0 for row in self.table.values())]
        if not self.active:
            raise ConfigError("all fusion loss weights are zero: nothing to train")

    def weight_matrix(self, labels: Sequence[str] | None, batch: int, device) -> torch.Tensor:
        """``(B, len(active))`` weights for a batch."""
        labels = list(labels) if labels is not None else ["normal"] * batch
        if len(labels) != batch:
            raise InvalidTensorError(f"got {len(labels)} labels for a batch of {batch}")
        rows = [self.table.get(lab, self.table["normal"]) for lab in labels]
        return torch.tensor([[r[k] for k in self.active] for r in rows], dtype=torch.float32, device=device)

    def forward(self, fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor,
                labels: Sequence[str] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        fused, ir, vi = fused.float(), ir.float(), vi.float()  # losses in fp32 even under autocast
        per = torch.stack([LOSSES.get(k)(fused, ir, vi, **self.options.get(k, {})) for k in self.active], 1)  # (B, K)
        weighted = per * self.weight_matrix(labels, fused.shape[0], fused.device)
        parts = {k: float(v) for k, v in zip(self.active, weighted.detach().mean(0))}
        return weighted.sum(1).mean(), parts
