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
seafusion, ifcnn,      published peer networks with their authors' weights (loaded strictly
tardal, didfuse        from ``$FUSIONLAB_MODELS/peers`` or ``../shared/peers``; see
                       :mod:`fusionlab.models.peers`)
pixel_mean, pixel_max, classical baselines without weights (:mod:`fusionlab.models.baselines`)
visible_only,
laplacian
=====================  =====================================================================

Every entry follows one calling convention, ``model(ir, vi_y, text=None) -> fused`` with
``(B, 1, H, W)`` tensors in [0, 1]. The FusionNet variants map to a :class:`FusionNetConfig`;
peers and baselines are :class:`ExternalModel` entries (``list_models(kind="peer")``).

``create_model("dtpf_student", fusion="concat_conv1x1")`` overrides any
:class:`~fusionlab.models.net.FusionNetConfig` field (``width`` is an alias of ``dim``);
``create_model("dtpf_teacher", text_dim=None)`` is the non-text teacher of Table 3.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Callable

import torch.nn as nn

from ..errors import ConfigError
from ..registry import Registry
from .net import FusionNet, FusionNetConfig

#: model name -> function returning its base :class:`FusionNetConfig`, or an :class:`ExternalModel`
MODELS = Registry("model")
KINDS = ("fusionnet", "peer", "baseline")


@dataclass(frozen=True)
class ExternalModel:
    """A registered model that is not a FusionNet variant.

    Attributes:
        build: ``build(**options) -> nn.Module`` following the fusionlab calling convention
            (peers load their published weights here).
        kind: ``"peer"`` (published network, pretrained) or ``"baseline"`` (classical rule).
        summary: one line for listings.
    """

    build: Callable[..., nn.Module]
    kind: str
    summary: str

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


def _register_external() -> None:
    from . import baselines, peers

    for name, cls in peers.PEERS.items():
        MODELS.register(name, obj=ExternalModel(cls, "peer", f"{cls.__name__} ({cls.paper}), published weights"))
    for name, (_, summary) in baselines.BASELINES.items():
        MODELS.register(name, obj=ExternalModel(lambda _n=name, **o: baselines.create_baseline(_n, **o),
                                                "baseline", summary))


_register_external()


def model_kind(name: str) -> str:
    """``"fusionnet"``, ``"peer"`` or ``"baseline"`` (ConfigError for unknown names)."""
    entry = MODELS.get(name)
    return entry.kind if isinstance(entry, ExternalModel) else "fusionnet"


def list_models(kind: str | None = None) -> list[str]:
    """Names accepted by :func:`create_model`; ``kind`` (``"fusionnet"``, ``"peer"``,
    ``"baseline"``) keeps one kind."""
    if kind is None:
        return MODELS.names()
    if kind not in KINDS:
        raise ConfigError(f"list_models: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    return [n for n in MODELS.names() if model_kind(n) == kind]


def model_config(name: str, **overrides) -> FusionNetConfig:
    """The config of variant ``name`` with ``overrides`` applied (no network is built).

    Raises:
        ConfigError: unknown name or option, or ``name`` is a peer/baseline (no FusionNet config).
    """
    entry = MODELS.get(name)
    if isinstance(entry, ExternalModel):
        raise ConfigError(f"{name!r} is a {entry.kind} ({entry.summary}), not a FusionNet variant: it has no "
                          f"FusionNetConfig (FusionNet variants: {', '.join(list_models('fusionnet'))})")
    cfg = entry()
    if "width" in overrides:
        overrides["dim"] = overrides.pop("width")
    known = {f.name for f in fields(FusionNetConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"create_model({name!r}): unknown option(s) {unknown} (known: {', '.join(sorted(known))}, width)")
    return replace(cfg, **overrides)


def create_model(name: str, **overrides) -> nn.Module:
    """Build model ``name`` (see :func:`list_models`).

    FusionNet variants get random weights and accept any :class:`FusionNetConfig` field as
    override; peers load their published weights (options: ``protocol``, ``weights``,
    ``pretrained``, and per peer e.g. ``variant`` for TarDAL); baselines take their options
    (``levels`` for ``laplacian``).

    Examples: ``create_model("dtpf_student", fusion="multiscale_conv", dim=32)``,
    ``create_model("tardal", variant="tardal")``, ``create_model("laplacian", levels=5)``.

    Raises:
        ConfigError: unknown name or option, or an invalid option value.
        ModelUnavailableError: a peer's weight file is missing (names the path to fill).
    """
    entry = MODELS.get(name)
    if isinstance(entry, ExternalModel):
        try:
            return entry.build(**overrides)
        except TypeError as e:
            if "unexpected keyword" not in str(e):
                raise
            raise ConfigError(f"create_model({name!r}): unknown option ({e})") from None
    return FusionNet(model_config(name, **overrides), name=name)
