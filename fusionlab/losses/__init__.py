"""Losses: unsupervised fusion losses (teacher) and distillation losses (student).

Registries, filled where each loss is defined: :data:`LOSSES` (per-sample fusion losses
``(B,)``: :func:`intensity_max_loss` ``int``, :func:`gradient_max_loss` ``grad``,
:func:`ssim_loss` ``ssim``, :func:`color_loss` ``color``, :func:`consistency_loss`
``consistency``) and :data:`DISTILL_LOSSES` (terms ``base``, ``feat``, ``res``); modules
:class:`FusionLoss` (weighted, per-degradation weights) and :class:`DistillLoss`
(``a1 L_base + a2 L_feat + a3 L_res`` with learned :class:`FeatureAdapters`).
"""
from .distill import (DEFAULT_ALPHAS, DISTILL_LOSS_NAMES, DISTILL_LOSSES, DistillInputs, DistillLoss, FeatureAdapters,
                      feature_loss, result_loss)
from .fusion import (DEFAULT_WEIGHTS, DEGRADATION_WEIGHTS, LOSS_NAMES, LOSSES, FusionLoss, color_loss,
                     consistency_loss, gradient_max_loss, intensity_max_loss, resolve_weights, sobel_abs,
                     ssim_loss)

__all__ = [
    "LOSSES", "LOSS_NAMES", "DEFAULT_WEIGHTS", "DEGRADATION_WEIGHTS", "FusionLoss", "resolve_weights",
    "intensity_max_loss", "gradient_max_loss", "ssim_loss", "color_loss", "consistency_loss", "sobel_abs",
    "DISTILL_LOSSES", "DISTILL_LOSS_NAMES", "DistillInputs", "DEFAULT_ALPHAS", "DistillLoss", "FeatureAdapters",
    "feature_loss", "result_loss",
]
