"""Distillation losses: L = a1 * L_base + a2 * L_feat + a3 * L_res.

* ``L_base``: the fusion losses of the student output with FIXED weights (the student has
  no text, so it cannot look up per-degradation weights).
* ``L_res``: ``|I_teacher - I_student|_1``, the student imitates the teacher's fused image.
* ``L_feat``: ``sum_l |Down_l(F_t^l) - F_s^l|_1`` over the feature levels, where ``Down_l``
  is a LEARNED 1x1 convolution mapping the teacher's channels to the student's. The
  adapters are ``nn.Module`` parameters of :class:`DistillLoss`; the trainer puts them in
  the optimizer (the public reference code forgot to, so its adapters stayed random).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, InvalidTensorError
from .fusion import FusionLoss

DISTILL_LOSS_NAMES: tuple[str, ...] = ("base", "feat", "res")
#: Reference-code distillation weights (base 1.0, feature 0.1, result 1.0).
DEFAULT_ALPHAS: dict[str, float] = {"base": 1.0, "feat": 0.1, "res": 1.0}


def result_loss(student_out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
    """L_res = mean ``|I_t - I_s|`` (scalar). ``(B, 1, H, W)`` tensors in [0, 1]; the teacher
    output is treated as a constant target."""
    if student_out.shape != teacher_out.shape:
        raise InvalidTensorError(f"student output {tuple(student_out.shape)} and teacher output "
                                 f"{tuple(teacher_out.shape)} differ in shape")
    return (student_out.float() - teacher_out.detach().float()).abs().mean()


class FeatureAdapters(nn.Module):
    """One learned 1x1 convolution per feature level, teacher channels -> student channels.

    Args:
        teacher_channels: channels of each teacher feature level, e.g. ``[48, 96, 192, 384]``.
        student_channels: channels of the matching student levels, e.g. ``[16, 32, 64, 128]``.
    """

    def __init__(self, teacher_channels: Sequence[int], student_channels: Sequence[int]):
        super().__init__()
        if len(teacher_channels) != len(student_channels):
            raise ConfigError(f"teacher has {len(teacher_channels)} feature levels, student "
                              f"{len(student_channels)}: they must match for feature distillation")
        self.convs = nn.ModuleList(nn.Conv2d(int(t), int(s), kernel_size=1)
                                   for t, s in zip(teacher_channels, student_channels))

    def forward(self, teacher_feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(teacher_feats) != len(self.convs):
            raise InvalidTensorError(f"expected {len(self.convs)} teacher feature levels, got {len(teacher_feats)}")
        return [conv(f.detach().float()) for conv, f in zip(self.convs, teacher_feats)]


def feature_loss(teacher_feats: Sequence[torch.Tensor], student_feats: Sequence[torch.Tensor],
                 adapters: FeatureAdapters, normalize: bool = True) -> torch.Tensor:
    """L_feat = sum over levels of mean ``|Down_l(F_t^l) - F_s^l|`` (scalar).

    Args:
        teacher_feats: per level ``(B, C_t^l, H_l, W_l)`` (treated as constants).
        student_feats: per level ``(B, C_s^l, H_l', W_l')``; the adapted teacher map is
            resized bilinearly if the spatial sizes differ.
        adapters: the learned 1x1 convolutions (they get gradients from this loss).
        normalize: L2-normalise both maps along channels first (as the reference code), so
            the loss compares feature *directions* and the student cannot shrink it by
            scaling its features down.
    """
    if len(student_feats) != len(teacher_feats):
        raise InvalidTensorError(f"teacher has {len(teacher_feats)} feature levels, student {len(student_feats)}")
    total = student_feats[0].new_zeros((), dtype=torch.float32)
    for t, s in zip(adapters(teacher_feats), student_feats):
        s = s.float()
        if t.shape[1] != s.shape[1]:
            raise InvalidTensorError(f"adapter gives {t.shape[1]} channels, student level has {s.shape[1]}")
        if t.shape[-2:] != s.shape[-2:]:
            t = F.interpolate(t, size=s.shape[-2:], mode="bilinear", align_corners=False)
        if normalize:
            t, s = F.normalize(t, dim=1), F.normalize(s, dim=1)
        total = total + (t - s).abs().mean()
    return total


class DistillLoss(nn.Module):
    """``a1 * L_base + a2 * L_feat + a3 * L_res`` with learned feature adapters.

    Args:
        teacher_channels / student_channels: per-level channels (``model.feature_channels``).
        losses: subset of :data:`DISTILL_LOSS_NAMES` to keep (ablation); ``None`` = all.
        alphas: ``{"base": a1, "feat": a2, "res": a3}`` (defaults :data:`DEFAULT_ALPHAS`).
        base_weights / base_losses: passed to the :class:`FusionLoss` of ``L_base``
            (default: the paper's fixed weights).
        normalize_features: see :func:`feature_loss`.

    Forward returns ``(total, parts)`` with ``parts`` holding the weighted terms (floats).
    The adapters are ``self.adapters``: add ``self.parameters()`` to the optimizer.
    """

    def __init__(self, teacher_channels: Sequence[int], student_channels: Sequence[int],
                 losses: Sequence[str] | None = None, alphas: Mapping[str, float] | None = None,
                 base_weights: str | Mapping = "fixed", base_losses: Sequence[str] | None = None,
                 normalize_features: bool = True, ssim_window: int = 11):
        super().__init__()
        losses = list(DISTILL_LOSS_NAMES if losses is None else ([losses] if isinstance(losses, str) else losses))
        bad = [k for k in losses if k not in DISTILL_LOSS_NAMES]
        if bad:
            raise ConfigError(f"unknown distillation loss {bad[0]!r} (known: {', '.join(DISTILL_LOSS_NAMES)})")
        if not losses:
            raise ConfigError("distill_losses: at least one of base, feat, res is needed")
        a = dict(DEFAULT_ALPHAS)
        for k, v in (alphas or {}).items():
            if k not in DISTILL_LOSS_NAMES:
                raise ConfigError(f"unknown distillation weight {k!r} (known: {', '.join(DISTILL_LOSS_NAMES)})")
            a[k] = float(v)
        self.losses, self.alphas = losses, a
        self.base = FusionLoss(base_weights, base_losses, ssim_window) if "base" in losses else None
        # adapters exist only when L_feat is on, so the optimizer never holds dead parameters
        self.adapters = FeatureAdapters(teacher_channels, student_channels) if "feat" in losses else None
        self.normalize_features = normalize_features

    def forward(self, student_out: torch.Tensor, teacher_out: torch.Tensor,
                student_feats: Sequence[torch.Tensor] | None, teacher_feats: Sequence[torch.Tensor] | None,
                ir: torch.Tensor, vi: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        parts: dict[str, float] = {}
        total = student_out.new_zeros((), dtype=torch.float32)
        if self.base is not None:
            base, _ = self.base(student_out, ir, vi)  # fixed weights: no labels
            total = total + self.alphas["base"] * base
            parts["base"] = float(self.alphas["base"] * base.detach())
        if self.adapters is not None:
            if student_feats is None or teacher_feats is None:
                raise InvalidTensorError("feature distillation needs teacher and student features")
            feat = feature_loss(teacher_feats, student_feats, self.adapters, self.normalize_features)
            total = total + self.alphas["feat"] * feat
            parts["feat"] = float(self.alphas["feat"] * feat.detach())
        if "res" in self.losses:
            res = result_loss(student_out, teacher_out)
            total = total + self.alphas["res"] * res
            parts["res"] = float(self.alphas["res"] * res.detach())
        return total, parts
