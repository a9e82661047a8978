"""Losses: unsupervised fusion losses (teacher) and distillation losses (student).

Functional API (per-sample values ``(B,)``): :func:`intensity_max_loss`,
:func:`gradient_max_loss`, :func:`ssim_loss`, :func:`color_loss`, :func:`consistency_loss`;
modules :class:`FusionLoss` (weighted, per-degradation weights) and :class:`DistillLoss`
(``a1 L_base + a2 L_feat + a3 L_res`` with learned :class:`FeatureAdapters`).
"""
from .distill import (DEFAULT_ALPHAS, DISTILL_LOSS_NAMES, DistillLoss, FeatureAdapters, feature_loss,
                      result_loss)
from .fusion import (DEFAULT_WEIGHTS, DEGRADATION_WEIGHTS, LOSS_FUNCTIONS, LOSS_NAMES, FusionLoss, color_loss,
                     consistency_loss, gradient_max_loss, intensity_max_loss, resolve_weights, sobel_abs,
                     ssim_loss)

__all__ = [
    "LOSS_NAMES", "DEFAULT_WEIGHTS", "DEGRADATION_WEIGHTS", "LOSS_FUNCTIONS", "FusionLoss", "resolve_weights",
    "intensity_max_loss", "gradient_max_loss", "ssim_loss", "color_loss", "consistency_loss", "sobel_abs",
    "DISTILL_LOSS_NAMES", "DEFAULT_ALPHAS", "DistillLoss", "FeatureAdapters", "feature_loss", "result_loss",
]
