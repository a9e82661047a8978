"""The parameters of one experiment run: keys, defaults and validation, in one place.

A run (one row of an ablation table) is described by a few named parameters. The same
names are used by the grid files (``ablations/*.yaml``: ``base``, ``rows[].params``,
``axes``, ``presets``), by :func:`fusionlab.train.run_experiment`, and by the parameters cell
of ``notebooks/run_experiment.ipynb`` (which papermill fills in)::

    RunParams.check({"fusion": "scfm"}, "grid.yaml", "rows[0].params")  # names and values only
    p = RunParams.from_dict({"stage": "distill", "preset": "ci"})       # + defaults + files exist
    p.student, p.to_dict()

==================  ==========================================================================
``stage``           ``teacher`` (default) or ``distill`` (train or reuse the teacher, then distil)
``model``           teacher model name (default: the preset's)
``student``         student model name (stage ``distill``; default: the preset's)
``fusion``          fusion module of the trained network(s) (``scfm``, ``concat_conv1x1``, ...)
``width``           channel width of the trained network (the student in stage ``distill``)
``text_prior``      a text prior source (default ``oracle``; ``none`` also removes the teacher's
                    text branch: the non-text teacher), see :func:`fusionlab.text.text_prior_sources`
``caption_file``    captions for ``file`` / ``shuffled``
``text_checkpoint`` trained projector for ``projector`` (default: a cached one of the preset)
``losses``          subset of the fusion losses (``fusionlab.losses.LOSSES``)
``distill_losses``  subset of the distillation terms (``fusionlab.losses.DISTILL_LOSSES``)
``preset``          ci | laptop | full (default ``$FUSIONLAB_PRESET``), see :mod:`fusionlab.presets`
``seed``            integer >= 0 (default 0)
``data``            ``"synthetic"`` (default) or a dataset folder, or a list of them
``eval_data``       ``"synthetic"`` (default: held-out scenes) or a folder
``eval_pairs``      number of evaluation pairs (default: the preset's)
==================  ==========================================================================

Every error is a :class:`~fusionlab.errors.ConfigError` of one line naming the source (grid
file or ``params``), where in it, the key and the value.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError
from .presets import PRESETS, get_preset
from .train.data import SYNTHETIC  # built-in data rather than a folder (``data`` / ``eval_data``)

#: the two training stages (also the values of ``TrainConfig.stage``)
STAGES: tuple[str, ...] = ("teacher", "distill")


def _path(**kw) -> Any:
    return field(metadata={"path": True}, **kw)


@dataclass(frozen=True)
class RunParams:
    """The parameters of one run (see the module docstring); build with :meth:`from_dict`."""

    stage: str = "teacher"
    model: str | None = None
    student: str | None = None
    fusion: str | None = None
    width: int | None = None
    text_prior: str = "oracle"
    caption_file: str | None = _path(default=None)
    text_checkpoint: str | None = _path(default=None)
    losses: tuple[str, ...] | None = None
    distill_losses: tuple[str, ...] | None = None
    preset: str | None = None
    seed: int = 0
    data: tuple[str, ...] = _path(default=(SYNTHETIC,))
    eval_data: str = _path(default=SYNTHETIC)
    eval_pairs: int | None = None

    # ------------------------------------------------------------------ validation
    @classmethod
    def check(cls, params: Any, src: str = "params", where: str = "") -> dict:
        """Check the names and values of (some) run params; returns a normalised copy.

        Only the given keys are returned (defaults are not filled in: a grid hashes what it
        wrote). ``None`` values stay (= the default). Name lists become sorted lists (a set
        of loss components has no order); ``data`` stays as written (a path or a list).

        Raises:
            ConfigError: unknown key or invalid value (one line naming ``src`` and the key).
        """
        params = check_keys(params, PARAM_KEYS, src, where)
        return {k: None if v is None else _CHECKS[k](v, _Where(src, _join(where, k), v)) for k, v in params.items()}

    @classmethod
    def from_dict(cls, params: Any, src: str = "params") -> "RunParams":
        """Validated params with defaults (``preset``: ``$FUSIONLAB_PRESET``); the files and
        folders named must exist, and ``text_prior: file`` needs a ``caption_file``."""
        p = {k: v for k, v in cls.check(params, src).items() if v is not None}
        p.setdefault("preset", get_preset())
        for k in ("losses", "distill_losses"):
            if k in p:
                p[k] = tuple(p[k])
        data = p.get("data", SYNTHETIC)
        p["data"] = (data,) if isinstance(data, str) else tuple(data)
        run = cls(**p)
        for f in fields(cls):
            if f.metadata.get("path") and getattr(run, f.name) is not None:
                for value in (run.data if f.name == "data" else [getattr(run, f.name)]):
                    _check_exists(f.name, value, src)
        if run.text_prior == "file" and run.caption_file is None:
            raise ConfigError(f"{src}: text_prior = 'file' needs caption_file")
        return run

    @classmethod
    def collect(cls, namespace: Mapping[str, Any]) -> dict:
        """The run params found in ``namespace`` (e.g. a notebook's ``globals()``) that are not
        None (None = the library's default)."""
        return {k: namespace[k] for k in PARAM_KEYS if namespace.get(k) is not None}

    def to_dict(self) -> dict:
        """JSON-ready dict of every param (tuples as lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}


#: every run parameter, in the order of :class:`RunParams`
PARAM_KEYS: tuple[str, ...] = tuple(f.name for f in fields(RunParams))
#: parameters holding input paths (a grid resolves them against its folder)
PATH_KEYS: tuple[str, ...] = tuple(f.name for f in fields(RunParams) if f.metadata.get("path"))


# ----------------------------------------------------------------------------- value checks
def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _at(src: str, where: str) -> str:
    return f"{src}: {where}" if where else src


def check_keys(d: Any, allowed: tuple[str, ...], src: str, where: str = "") -> dict:
    """``d`` must be a mapping (or None: empty) whose keys are all ``allowed``; the error names
    ``src`` and the place (``base.lr: unknown key (allowed: ...)``)."""
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise ConfigError(f"{_at(src, where)} must be a mapping, got {type(d).__name__}")
    for k in d:
        if k not in allowed:
            raise ConfigError(f"{_at(src, _join(where, str(k)))}: unknown key (allowed: {', '.join(allowed)})")
    return dict(d)


@dataclass
class _Where:
    src: str
    key: str
    value: Any

    def fail(self, problem: str) -> ConfigError:
        return ConfigError(f"{_at(self.src, self.key)} = {self.value!r}: {problem}")


def _one_of(known, kind: str | None = None):
    def check(v, w: _Where):
        names = tuple(known()) if callable(known) else tuple(known)
        if not isinstance(v, str) or v not in names:
            raise w.fail(f"unknown {kind} (known: {', '.join(names)})" if kind else f"expected one of {', '.join(names)}")
        return v
    return check


def _int(low: int, what: str, even: bool = False):
    def check(v, w: _Where):
        if isinstance(v, bool) or not isinstance(v, int) or v < low or (even and v % 2):
            raise w.fail(f"expected {what}")
        return v
    return check


def _names(known):
    def check(v, w: _Where):
        items = [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v
        if not isinstance(items, (list, tuple)) or not items or not all(isinstance(x, str) for x in items):
            raise w.fail("expected a non-empty list of names")
        names = tuple(known())
        bad = [x for x in items if x not in names]
        if bad:
            raise w.fail(f"unknown name {bad[0]!r} (known: {', '.join(names)})")
        if len(set(items)) != len(items):
            raise w.fail("a name is listed twice")
        return sorted(items)  # a set of components: the order must not change the run id
    return check


def _path_value(many: bool = False):
    def check(v, w: _Where):
        ok = isinstance(v, str) and v.strip() or many and isinstance(v, (list, tuple)) and v and all(
            isinstance(x, str) and x.strip() for x in v)
        if not ok:
            raise w.fail("expected 'synthetic', a folder or a list of them" if many else "expected a path")
        return list(v) if isinstance(v, tuple) else v
    return check


def _check_exists(key: str, value: str, src: str) -> None:
    if value == SYNTHETIC and key in ("data", "eval_data"):
        return
    p = Path(value).expanduser()
    if key in ("data", "eval_data") and not p.is_dir():
        raise ConfigError(f"{src}: {key} = {value!r}: is not 'synthetic' nor an existing folder")
    if key not in ("data", "eval_data") and not p.is_file():
        raise ConfigError(f"{src}: {key} = {value!r}: is not an existing file")


def _model_names():
    from .models import MODELS

    return MODELS.names()


def _fusion_names():
    from .models import FUSION_MODULES

    return FUSION_MODULES.names()


def _loss_names():
    from .losses import LOSSES

    return LOSSES.registered()


def _distill_loss_names():
    from .losses import DISTILL_LOSSES

    return DISTILL_LOSSES.registered()


def _text_prior_names():
    from .text import text_prior_sources

    return text_prior_sources()


_CHECKS = {
    "stage": _one_of(STAGES),
    "model": _one_of(_model_names, "model"),
    "student": _one_of(_model_names, "model"),
    "fusion": _one_of(_fusion_names, "fusion module"),
    # the attention heads split the channels in halves: even widths only
    "width": _int(2, "an even integer >= 2 (e.g. 16, 32, 48)", even=True),
    "text_prior": _one_of(_text_prior_names),
    "caption_file": _path_value(),
    "text_checkpoint": _path_value(),
    "losses": _names(_loss_names),
    "distill_losses": _names(_distill_loss_names),
    "preset": _one_of(PRESETS),
    "seed": _int(0, "an integer >= 0"),
    "data": _path_value(many=True),
    "eval_data": _path_value(),
    "eval_pairs": _int(1, "a positive integer"),
}
if set(_CHECKS) != set(PARAM_KEYS):  # a new field of RunParams needs its check here
    raise RuntimeError(f"run params without a check: {sorted(set(PARAM_KEYS) - set(_CHECKS))}")
