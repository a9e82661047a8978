"""Training configs: plain dataclasses, loaded from YAML presets with strict validation.

A YAML file holds the :class:`TrainConfig` fields at the top level and the
:class:`DataConfig` fields under ``data:``. A ``preset: ci|laptop|full`` key fills in what
that run-size preset sets (models, steps, crops, batch, data sizes, intervals: the table of
:mod:`fusionlab.presets`); the file's own keys win. Unknown keys and wrongly typed values
raise :class:`~fusionlab.errors.ConfigError` naming the file and the key. A config is named
either by a path or by the name of a config shipped in ``fusionlab/configs/`` (``teacher``,
``teacher_ci``, ``distill_laptop``, ...), so ``fusionlab train --config teacher_ci`` works anywhere.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..params import STAGES

#: the shipped YAML configs (the only copy; ``--config NAME`` looks here)
PACKAGE_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@dataclass
class DataConfig:
    """Where training/validation pairs come from and how batches are cut.

    Attributes:
        train: ``"synthetic"`` and/or dataset folders (``ir/``+``vi/`` or Harvard
            ``<ct|pet|spect>/``+``mri/``); ``~`` and ``$VARS`` are expanded, and
            ``$FUSIONLAB_SHARED`` defaults to ``shared/`` beside the checkout (the real
            training pairs are ``$FUSIONLAB_SHARED/data/train/{msrs,roadscene}``).
        train_weights: optional sampling weight per ``train`` entry (None: every pair
            once per epoch).
        val: the same, plus ``"holdout"`` = the pairs held out of the training folders.
        holdout: pairs of every training folder kept out of training (seeded split).
        synthetic_train / synthetic_val: number of synthetic scenes per split.
        synthetic_size: side of the generated synthetic scenes (crops are cut from them).
        crop: training crop size (paper: 128). batch: batch size (paper: 4).
        flip: random flips. degrade_prob: probability that a training sample is degraded.
        degradations: labels to draw (default: all of fusionlab.data.DEGRADATIONS but normal).
        val_pairs: at most this many validation pairs. val_crop: centre crop for validation
            (bounds CPU time; None = full images).
    """

    train: list = field(default_factory=lambda: ["synthetic"])
    train_weights: typing.Optional[list] = None
    val: list = field(default_factory=lambda: ["synthetic"])
    holdout: int = 0
    synthetic_train: int = 256
    synthetic_val: int = 4
    synthetic_size: int = 256
    crop: int = 128
    batch: int = 4
    flip: bool = True
    degrade_prob: float = 0.5
    degradations: typing.Optional[list] = None
    val_pairs: int = 8
    val_crop: typing.Optional[int] = 256


@dataclass
class TrainConfig:
    """One training run (teacher or distillation stage).

    Attributes:
        stage: ``"teacher"`` (fusion losses, optional text prior) or ``"distill"`` (a frozen
            teacher checkpoint -> a student).
        model / model_args: the network trained in stage ``teacher``
            (``fusionlab.models.create_model(model, **model_args)``).
        text_prior / text_args: ``fusionlab.text.build_text_prior`` source (none, rules,
            oracle, file, projector, constant, shuffled) and its options; the teacher's prior
            in stage ``distill`` is read from the teacher checkpoint.
        loss_weights: ``"degradation"`` (per-degradation table), ``"fixed"`` (paper's
            non-text weights) or an explicit dict; ``"auto"`` = degradation for a
            text-guided teacher, fixed otherwise.
        losses: subset of int/grad/ssim/color/consistency (None = all with a weight).
        teacher: teacher checkpoint (stage ``distill``).
        student / student_args: the network trained in stage ``distill``.
        distill_losses: subset of base/feat/res. alphas: ``{base, feat, res}`` weights.
        normalize_features: L2-normalise features along channels in L_feat.
        head_init: ``"zero"`` starts the trained network's output convolution at zero, so the
            untrained network returns the visible luma (its residual input) instead of noise
            and training refines a sensible fusion; ``"default"`` keeps PyTorch's init.
        steps, lr, weight_decay, warmup_steps, min_lr, grad_clip: AdamW + cosine schedule.
        amp: mixed precision on CUDA (ignored on CPU). seed, device, threads.
        out_dir: run folder (checkpoint.pt, model.pt, train_log.csv, val/).
        log_every / val_every / ckpt_every: intervals in steps (0 = only at the end).
        max_minutes: stop early (with a checkpoint) after this wall time.
        select_metric: checkpoint selection on the validation pairs: at every validation whose
            score (``"VIF+Qabf+SSIM"``: the sum of those metrics) beats the best so far, the
            weights are written to ``best.pt``. None: no selection (``model.pt`` = last step).
        progress: tqdm progress bar.
        tensorboard: also log losses, validation metrics and sample images as TensorBoard
            events in ``out_dir/tensorboard`` (needs the ``tensorboard`` extra).
    """

    stage: str = "teacher"
    model: str = "dtpf_teacher"
    model_args: dict = field(default_factory=dict)
    text_prior: str = "oracle"
    text_args: dict = field(default_factory=dict)
    loss_weights: Any = "auto"
    losses: typing.Optional[list] = None
    ssim_window: int = 11
    teacher: typing.Optional[str] = None
    student: str = "dtpf_student"
    student_args: dict = field(default_factory=dict)
    distill_losses: typing.Optional[list] = None
    alphas: dict = field(default_factory=dict)
    normalize_features: bool = True
    head_init: str = "zero"
    steps: int = 20000
    lr: float = 1e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 0
    min_lr: float = 1e-6
    grad_clip: float = 1.0
    amp: bool = True
    seed: int = 0
    device: str = "auto"
    threads: typing.Optional[int] = None
    out_dir: str = "runs/train"
    log_every: int = 10
    val_every: int = 500
    ckpt_every: int = 200
    max_minutes: typing.Optional[float] = None
    select_metric: typing.Optional[str] = None
    progress: bool = True
    tensorboard: bool = False
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self):
        if isinstance(self.data, dict):
            self.data = _build(DataConfig, self.data, "data")
        validate(self)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "TrainConfig":
        return _build(cls, d, where)

    def replace(self, **changes) -> "TrainConfig":
        """Copy with changes; ``data`` may be a dict of DataConfig changes."""
        d = self.to_dict()
        data = changes.pop("data", None)
        d.update(changes)
        if data:
            d["data"] = {**d["data"], **(asdict(data) if isinstance(data, DataConfig) else data)}
        return TrainConfig.from_dict(d)


# ----------------------------------------------------------------------------- validation
def _type_ok(value, tp) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if dataclasses.is_dataclass(tp):
        return isinstance(value, (tp, dict))
    return isinstance(value, origin or tp)


def _build(cls, d, where: str):
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    d = dict(d)
    for k, v in list(d.items()):
        if k not in known:
            raise ConfigError(f"{where}: unknown key {k!r} (known: {', '.join(sorted(known))})")
        if isinstance(v, str) and _accepts_float(hints[k]):
            # YAML 1.1 reads 1e-4 (no dot) as a string: accept it where a number is expected
            try:
                d[k] = v = float(v)
            except ValueError:
                pass
        if not _type_ok(v, hints[k]):
            raise ConfigError(f"{where}: {k}={v!r} has the wrong type (expected {_type_name(hints[k])})")
    kw = dict(d)
    if cls is TrainConfig and isinstance(kw.get("data"), dict):
        kw["data"] = _build(DataConfig, kw["data"], f"{where}: data")
    if cls is TrainConfig:
        try:
            return cls(**kw)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return cls(**kw)


def _accepts_float(tp) -> bool:
    return tp is float or float in typing.get_args(tp)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def validate(cfg: TrainConfig) -> None:
    """Value checks (types are checked when loading)."""
    d = cfg.data
    if cfg.stage not in STAGES:
        raise ConfigError(f"stage={cfg.stage!r} must be one of {', '.join(STAGES)}")
    for name in ("steps", "crop", "batch"):
        obj = d if name in ("crop", "batch") else cfg
        if getattr(obj, name) < 1:
            raise ConfigError(f"{name}={getattr(obj, name)} must be >= 1")
    if d.crop < 8:
        raise ConfigError(f"data.crop={d.crop} must be at least 8 pixels")
    for name in ("log_every", "val_every", "ckpt_every", "warmup_steps"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name}={getattr(cfg, name)} must be >= 0")
    if not cfg.lr > 0 or cfg.min_lr < 0 or cfg.weight_decay < 0 or cfg.grad_clip < 0:
        raise ConfigError(f"lr={cfg.lr}, min_lr={cfg.min_lr}, weight_decay={cfg.weight_decay}, "
                          f"grad_clip={cfg.grad_clip}: need lr > 0 and the others >= 0")
    if cfg.max_minutes is not None and not cfg.max_minutes > 0:
        raise ConfigError(f"max_minutes={cfg.max_minutes} must be > 0 (or null)")
    if not 0 <= d.degrade_prob <= 1:
        raise ConfigError(f"data.degrade_prob={d.degrade_prob} must be in [0, 1]")
    if d.holdout < 0 or d.synthetic_train < 1 or d.synthetic_val < 1 or d.synthetic_size < 8 or d.val_pairs < 1:
        raise ConfigError("data: holdout >= 0, synthetic_train/val >= 1, synthetic_size >= 8, val_pairs >= 1 needed")
    if not d.train:
        raise ConfigError("data.train is empty: name 'synthetic' and/or dataset folders")
    if d.train_weights is not None and (len(d.train_weights) != len(d.train)
                                        or any(not isinstance(w, (int, float)) or w < 0 for w in d.train_weights)
                                        or not sum(d.train_weights) > 0):
        raise ConfigError(f"data.train_weights={d.train_weights!r}: need one weight >= 0 per data.train entry "
                          f"({len(d.train)}), not all zero")
    if cfg.select_metric is not None:
        from ..metrics.evaluate import HEADLINE_METRICS

        bad = [k.strip() for k in cfg.select_metric.split("+") if k.strip() not in HEADLINE_METRICS]
        if bad:
            raise ConfigError(f"select_metric={cfg.select_metric!r}: {bad[0]!r} is not a validation metric "
                              f"({', '.join(HEADLINE_METRICS)}); write e.g. VIF+Qabf+SSIM")
    if not (isinstance(cfg.loss_weights, (str, dict))):
        raise ConfigError(f"loss_weights={cfg.loss_weights!r}: expected auto, fixed, degradation or a dict")
    if cfg.head_init not in ("zero", "default"):
        raise ConfigError(f"head_init={cfg.head_init!r} must be 'zero' or 'default'")
    if isinstance(cfg.loss_weights, str) and cfg.loss_weights not in ("auto", "fixed", "degradation"):
        raise ConfigError(f"loss_weights={cfg.loss_weights!r}: expected auto, fixed, degradation or a dict")
    from ..losses import DISTILL_LOSSES, LOSSES

    for name, allowed in (("losses", LOSSES), ("distill_losses", DISTILL_LOSSES)):
        v = getattr(cfg, name)
        if v is not None:
            bad = [x for x in v if x not in allowed]
            if bad or not v:
                raise ConfigError(f"{name}={v!r}: expected a non-empty subset of {', '.join(allowed.registered())}")
    bad = [k for k in cfg.alphas if k not in DISTILL_LOSSES]
    if bad:
        raise ConfigError(f"alphas: unknown key {bad[0]!r} (known: {', '.join(DISTILL_LOSSES.registered())})")


# ----------------------------------------------------------------------------- YAML
def list_configs() -> list[str]:
    """Names of the shipped YAML configs (``fusionlab/configs/*.yaml``)."""
    return sorted(p.stem for p in PACKAGE_CONFIGS.glob("*.yaml"))


def resolve_config_path(name_or_path: str | os.PathLike) -> Path:
    """A path to a YAML file, or the name of a shipped config (``fusionlab/configs/<name>.yaml``)."""
    p = Path(os.path.expanduser(str(name_or_path)))
    if p.is_file():
        return p
    if p.suffix in (".yaml", ".yml") or os.sep in str(name_or_path):
        raise ConfigError(f"{p}: config file not found")
    cand = PACKAGE_CONFIGS / f"{p.name}.yaml"
    if cand.is_file():
        return cand
    raise ConfigError(f"{name_or_path}: no such config file or shipped config (shipped: {', '.join(list_configs())})")


def load_config(name_or_path: str | os.PathLike, overrides: dict | None = None) -> TrainConfig:
    """Load a YAML config (path or preset name) into a :class:`TrainConfig`.

    ``overrides`` (dotted keys allowed: ``{"steps": 10, "data.crop": 48}``) win over the file.
    """
    path = resolve_config_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{at} ({getattr(e, 'problem', None) or 'syntax error'})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (YAML) file") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides or {})
    if "preset" in raw:
        raw = with_preset(raw, where=str(path))
    return TrainConfig.from_dict(raw, where=str(path))


def with_preset(raw: dict, where: str = "config") -> dict:
    """``raw`` (config keys with ``preset: NAME``) on top of what the preset sets for its stage."""
    from ..presets import preset_settings

    raw = dict(raw)
    name = raw.pop("preset")
    try:
        base = preset_settings(name).train_fields(raw.get("stage", "teacher"))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    for key, value in raw.items():  # nested mappings (data, model_args) are merged one level deep
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return base


def apply_overrides(raw: dict, overrides: dict) -> dict:
    """Merge ``{"a.b": v}`` style overrides into a nested dict (copy)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for key, value in overrides.items():
        parts = str(key).split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key}: {p} is not a mapping")
        node[parts[-1]] = value
    return out


def parse_set(items: list[str] | None) -> dict:
    """``["steps=10", "data.crop=48", "losses=[int,grad]"]`` -> dict (values parsed as YAML)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE (e.g. steps=100 or data.crop=64)")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: value is not valid YAML") from None
    return out


def dump_config(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
