"""Registered model variants: every ablation is one name (plus overrides) away.

=====================  =====================================================================
name                   what it is
=====================  =====================================================================
dtpf_teacher           text-guided teacher: dim 48, FFN 2.66, 4 refinement blocks, CLIP 512-d
                       text (39.85 M parameters; paper 40.3 M)
dtpf_student           distilled student: dim 16, FFN 2.0, 2 refinement blocks, no text
                       (4.22 M; paper 4.1 M, reference code 4.37 M)
dtpf_student_w32       Table 6 width 32, student recipe (15.48 M; paper 15.8 M)
dtpf_student_w48       Table 6 width 48 = the teacher without text branch (39.09 M; paper 39.1 M)
dtpf_teacher_tiny      dim 8, one block per level, 512-d text: for tests and the ``ci`` preset
dtpf_student_tiny      dim 8, one block per level, no text: for tests and the ``ci`` preset
=====================  =====================================================================

``create_model("dtpf_student", fusion="concat_conv1x1")`` overrides any
:class:`~fusionlab.models.net.FusionNetConfig` field (``width`` is an alias of ``dim``);
``create_model("dtpf_teacher", text_dim=None)`` is the non-text teacher of Table 3.
"""
from __future__ import annotations

from dataclasses import fields, replace

from ..errors import ConfigError
from ..registry import Registry
from .net import FusionNet, FusionNetConfig

#: model name -> function returning its base :class:`FusionNetConfig`
MODELS = Registry("model")

_TEACHER = dict(dim=48, ffn_factor=2.66, refinement=4, text_dim=512)
_STUDENT = dict(dim=16, ffn_factor=2.0, refinement=2, text_dim=None)
_TINY = dict(dim=8, blocks=(1, 1, 1, 1), refinement=1, head_dim=8, spatial_heads=(1, 1, 2, 2), ffn_factor=2.0)


def _variant(name: str, **cfg) -> None:
    MODELS.register(name, obj=lambda: FusionNetConfig(**cfg))


_variant("dtpf_teacher", **_TEACHER)
_variant("dtpf_student", **_STUDENT)
_variant("dtpf_student_w32", **{**_STUDENT, "dim": 32})
_variant("dtpf_student_w48", **{**_TEACHER, "text_dim": None})
_variant("dtpf_teacher_tiny", **_TINY, text_dim=512)
_variant("dtpf_student_tiny", **_TINY, text_dim=None)


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return MODELS.names()


def model_config(name: str, **overrides) -> FusionNetConfig:
    """The config of variant ``name`` with ``overrides`` applied (no network is built)."""
    cfg = MODELS.get(name)()
    if "width" in overrides:
        overrides["dim"] = overrides.pop("width")
    known = {f.name for f in fields(FusionNetConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"create_model({name!r}): unknown option(s) {unknown} (known: {', '.join(sorted(known))}, width)")
    return replace(cfg, **overrides)


def create_model(name: str, **overrides) -> FusionNet:
    """Build variant ``name`` (see :func:`list_models`) with random weights.

    Example: ``create_model("dtpf_student", fusion="multiscale_conv", dim=32)``.

    Raises:
        ConfigError: unknown name or option, or an invalid option value.
    """
    return FusionNet(model_config(name, **overrides), name=name)
