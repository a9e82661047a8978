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

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, InvalidTensorError
from ..registry import Registry
from .fusion import FusionLoss

#: name -> an ``nn.Module`` term, ``term(DistillInputs) -> scalar``; built by :class:`DistillLoss`,
#: which offers each term the settings its constructor names (``teacher_channels``,
#: ``student_channels``, ``weights``, ``losses``, ``ssim_window``, ``normalize``)
DISTILL_LOSSES = Registry("distillation loss")
#: Reference-code distillation weights (base 1.0, feature 0.1, result 1.0).
DEFAULT_ALPHAS: dict[str, float] = {"base": 1.0, "feat": 0.1, "res": 1.0}


@dataclass
class DistillInputs:
    """What one distillation step hands each term: outputs ``(B, 1, H, W)`` in [0, 1], per-level
    features (None when not computed) and the clean sources ``ir (B,1,H,W)``, ``vi (B,1|3,H,W)``."""

    student_out: torch.Tensor
    teacher_out: torch.Tensor
    student_feats: Sequence[torch.Tensor] | None
    teacher_feats: Sequence[torch.Tensor] | None
    ir: torch.Tensor
    vi: torch.Tensor


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


@DISTILL_LOSSES.register("base")
class BaseLoss(nn.Module):
    """L_base: the fusion losses of the student output with FIXED weights (no text, no labels)."""

    def __init__(self, weights: str | Mapping = "fixed", losses: Sequence[str] | None = None, ssim_window: int = 11):
        super().__init__()
        self.fusion = FusionLoss(weights, losses, ssim_window)

    def forward(self, x: DistillInputs) -> torch.Tensor:
        return self.fusion(x.student_out, x.ir, x.vi)[0]


@DISTILL_LOSSES.register("feat")
class FeatureLoss(nn.Module):
    """L_feat with its learned adapters (see :func:`feature_loss`)."""

    def __init__(self, teacher_channels: Sequence[int], student_channels: Sequence[int], normalize: bool = True):
        super().__init__()
        self.adapters = FeatureAdapters(teacher_channels, student_channels)
        self.normalize = normalize

    def forward(self, x: DistillInputs) -> torch.Tensor:
        if x.student_feats is None or x.teacher_feats is None:
            raise InvalidTensorError("feature distillation needs teacher and student features")
        return feature_loss(x.teacher_feats, x.student_feats, self.adapters, self.normalize)


@DISTILL_LOSSES.register("res")
class ResultLoss(nn.Module):
    """L_res: the student imitates the teacher's fused image (see :func:`result_loss`)."""

    def __init__(self):  # no settings (an explicit signature: DistillLoss offers it none)
        super().__init__()

    def forward(self, x: DistillInputs) -> torch.Tensor:
        return result_loss(x.student_out, x.teacher_out)


#: the built-in terms, in the order they are logged
DISTILL_LOSS_NAMES: tuple[str, ...] = tuple(DISTILL_LOSSES.registered())


class DistillLoss(nn.Module):
    """``a1 * L_base + a2 * L_feat + a3 * L_res`` (any subset of :data:`DISTILL_LOSSES`).

    Args:
        teacher_channels / student_channels: per-level channels (``model.feature_channels``).
        losses: names of the terms to keep (ablation); ``None`` = all registered.
        alphas: weight per term (defaults :data:`DEFAULT_ALPHAS`, 1.0 for other terms).
        base_weights / base_losses: passed to the :class:`FusionLoss` of ``L_base``
            (default: the paper's fixed weights).
        normalize_features: see :func:`feature_loss`.

    Forward returns ``(total, parts)`` with ``parts`` holding the weighted terms (floats).
    Learned parameters (the feature adapters, :attr:`adapters`) belong to this module: add
    ``self.parameters()`` to the optimizer.
    """

    def __init__(self, teacher_channels: Sequence[int], student_channels: Sequence[int],
                 losses: Sequence[str] | None = None, alphas: Mapping[str, float] | None = None,
                 base_weights: str | Mapping = "fixed", base_losses: Sequence[str] | None = None,
                 normalize_features: bool = True, ssim_window: int = 11):
        super().__init__()
        names = DISTILL_LOSSES.registered()
        losses = list(names if losses is None else ([losses] if isinstance(losses, str) else losses))
        bad = [k for k in losses if k not in DISTILL_LOSSES]
        if bad:
            raise ConfigError(f"unknown distillation loss {bad[0]!r} (known: {', '.join(names)})")
        if not losses:
            raise ConfigError(f"distill_losses: at least one of {', '.join(names)} is needed")
        a = {k: DEFAULT_ALPHAS.get(k, 1.0) for k in names}
        for k, v in (alphas or {}).items():
            if k not in DISTILL_LOSSES:
                raise ConfigError(f"unknown distillation weight {k!r} (known: {', '.join(names)})")
            a[k] = float(v)
        self.losses, self.alphas = losses, a
        settings = dict(teacher_channels=teacher_channels, student_channels=student_channels, weights=base_weights,
                        losses=base_losses, ssim_window=ssim_window, normalize=normalize_features)
        # terms exist only when switched on, so the optimizer never holds dead parameters
        self.terms = nn.ModuleDict({k: DISTILL_LOSSES.build(k, **DISTILL_LOSSES.accepted(k, settings))
                                    for k in losses})
        self._register_load_state_dict_pre_hook(_renamed_adapter_keys)

    @property
    def adapters(self) -> FeatureAdapters | None:
        """The learned teacher -> student feature adapters (None without L_feat)."""
        feat = self.terms["feat"] if "feat" in self.terms else None
        return getattr(feat, "adapters", None)

    @property
    def base(self) -> FusionLoss | None:
        """The fusion loss of L_base (None without it)."""
        return self.terms["base"].fusion if "base" in self.terms else None

    def forward(self, student_out: torch.Tensor, teacher_out: torch.Tensor,
                student_feats: Sequence[torch.Tensor] | None, teacher_feats: Sequence[torch.Tensor] | None,
                ir: torch.Tensor, vi: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        x = DistillInputs(student_out, teacher_out, student_feats, teacher_feats, ir, vi)
        parts: dict[str, float] = {}
        total = student_out.new_zeros((), dtype=torch.float32)
        for k, term in self.terms.items():
            value = self.alphas[k] * term(x)
            total = total + value
            parts[k] = float(value.detach())
        return total, parts


def _renamed_adapter_keys(state_dict, prefix, *_):
    """Checkpoints written before the terms were registered hold ``adapters.*``: now ``terms.feat.adapters.*``."""
    for key in [k for k in state_dict if k.startswith(prefix + "adapters.")]:
        state_dict[prefix + "terms.feat." + key[len(prefix):]] = state_dict.pop(key)
