"""Ablation grid files: parse, validate strictly, expand into runs with stable ids.

A grid file (``ablations/<name>.yaml``) describes one ablation of the paper::

    name: fusion_modules                 # folder name under runs/ (letters, digits, _ -)
    description: ...                     # free text
    paper_table: "Table 5 (MSRS)"        # label of the paper table reproduced
    metrics: [EN, VIF, Qabf]             # columns of the paper table
    base: {stage: teacher, text_prior: oracle}       # params shared by every row
    rows:                                # one per table row, in the paper's order
      - label: "SCFM (ours)"
        params: {fusion: scfm}
        paper: {EN: 6.749, VIF: 1.060, Qabf: 0.732}  # numbers beside the measured ones
        reference: true                  # the row deltas are measured against (optional)
        note: "40.3 M"                   # shown in the table (optional)
        presets: {full: {fusion: scfm}}  # this row's params for one preset (optional)
    axes: {width: [16, 32]}              # optional extra axes crossed with every row
    seeds: [0, 1]                        # a grid axis: mean +- std over seeds
    presets:                             # overrides per preset (ci = seconds per run)
      ci: {eval_pairs: 2}
      full: {data: ${FUSIONLAB_DATA}/MSRS/train, seeds: [0, 1, 2]}

The params of one run are ``base | {preset: P} | presets[P] | row.params |
row.presets[P] | axes | {seed}`` (later wins). Its id is a hash of those params (key order does not matter), so a run that
is already complete is found again after an edit of an unrelated row, and changing one
parameter of one row reruns exactly that row.

Validation is strict: an unknown key or an invalid value raises
:class:`~fusionlab.errors.ConfigError` with one line naming the file and the key. Path
values (``data``, ``eval_data``, ``caption_file``, ``text_checkpoint``) may be absolute (``$VARS`` expanded) or
relative to the grid file's folder, and then must not leave that folder.
"""
from __future__ import annotations

import copy
import hashlib
import importlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..presets import PRESETS

#: Parameters of :func:`fusionlab.train.run_experiment` a grid may set (docs/design.md).
PARAM_KEYS: tuple[str, ...] = ("stage", "model", "student", "fusion", "width", "text_prior", "caption_file",
                               "text_checkpoint", "losses", "distill_losses", "preset", "seed", "data", "eval_data", "eval_pairs")
#: Parameters holding input paths (resolved against the grid file's folder).
PATH_KEYS: tuple[str, ...] = ("data", "eval_data", "caption_file", "text_checkpoint")
#: Values of the data keys that name built-in data rather than a folder.
BUILTIN_DATA = ("synthetic",)
STAGES = ("teacher", "distill")
TEXT_PRIORS = ("none", "rules", "oracle", "file", "projector", "constant", "shuffled")

GRID_KEYS = ("name", "description", "paper_table", "metrics", "base", "rows", "axes", "seeds", "presets")
ROW_KEYS = ("label", "params", "paper", "reference", "note", "presets")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ID_LEN = 12


# ----------------------------------------------------------------------------- data classes
@dataclass
class Row:
    """One row of the paper table: a label, the params it changes, the paper's numbers."""

    label: str
    params: dict[str, Any]
    paper: dict[str, float] = field(default_factory=dict)
    reference: bool = False
    note: str = ""
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-preset params of this row


@dataclass
class Grid:
    """A parsed, validated grid file (see the module docstring for the format)."""

    name: str
    rows: list[Row]
    base: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, list] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=lambda: ["EN", "VIF", "Qabf"])
    description: str = ""
    paper_table: str = ""
    path: Path | None = None  # the grid file; relative path params are resolved against its folder

    @property
    def root(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.rows]

    @property
    def reference_row(self) -> Row | None:
        return next((r for r in self.rows if r.reference), None)


@dataclass(frozen=True)
class Run:
    """One cell of the expanded grid: a row, a point of the extra axes and a seed."""

    ablation: str
    run_id: str
    row: int               # index into Grid.rows
    label: str             # row label (plus "k=v" of the extra axes)
    seed: int
    preset: str
    params: dict           # the params hashed into run_id (paths as written in the grid)

    def resolved_params(self, grid: Grid) -> dict:
        """Params as the notebook receives them: path values absolute (``$VARS`` expanded)."""
        out = dict(self.params)
        for k in PATH_KEYS:
            if isinstance(out.get(k), str):
                out[k] = resolve_path(out[k], grid, k)
        return out


# ----------------------------------------------------------------------------- run ids
def canonical_params(params: dict) -> dict:
    """Drop ``None`` values (= the library default) so ``fusion: null`` equals no ``fusion``."""
    return {k: v for k, v in params.items() if v is not None}


def run_id(params: dict) -> str:
    """Stable 12-hex-digit id of a run: sha256 of the canonical JSON of its params.

    Independent of key order; ``None`` values are ignored. Example::

        >>> run_id({"seed": 0, "width": 16}) == run_id({"width": 16, "seed": 0})
        True
    """
    blob = json.dumps(canonical_params(params), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:_ID_LEN]


# ----------------------------------------------------------------------------- validation
def _where(src: str, key: str) -> str:
    return f"{src}: {key}" if key else src


def _check_keys(d: Any, allowed: tuple[str, ...], src: str, where: str) -> dict:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ConfigError(f"{_where(src, where)} must be a mapping, got {type(d).__name__}")
    for k in d:
        if k not in allowed:
            raise ConfigError(f"{_where(src, where + '.' + str(k) if where else str(k))}: unknown key "
                              f"(allowed: {', '.join(allowed)})")
    return d


def _names_of(module: str, attr: str) -> tuple[str, ...] | None:
    """Names of a tuple or Registry of another part of fusionlab (models, losses, text), so a
    typo fails when the grid is loaded rather than minutes later inside a run; None when
    that part cannot be imported (validation then only checks types)."""
    try:
        mod = importlib.import_module(f"fusionlab.{module}")
        return tuple(getattr(mod, attr))
    except (ImportError, AttributeError):
        return None


def _name_list(v: Any, known: tuple[str, ...] | None, src: str, key: str) -> list[str]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{_where(src, key)} = {v!r}: expected a non-empty list of names")
    if known is not None:
        bad = [x for x in v if x not in known]
        if bad:
            raise ConfigError(f"{_where(src, key)}: unknown name {bad[0]!r} (known: {', '.join(known)})")
    if len(set(v)) != len(v):
        raise ConfigError(f"{_where(src, key)} = {v!r}: a name is listed twice")
    # a set of loss components: order carries no meaning, so it must not change the run id
    return sorted(v)


def validate_params(params: Any, src: str, where: str = "params") -> dict:
    """Check names and values of run params; returns a normalised copy.

    Raises:
        ConfigError: unknown key or invalid value (one line naming ``src`` and the key).
    """
    params = _check_keys(params, PARAM_KEYS, src, where)
    out: dict[str, Any] = {}
    for k, v in params.items():
        key = f"{where}.{k}"
        if v is None:
            out[k] = None
            continue
        if k == "stage":
            if v not in STAGES:
                raise ConfigError(f"{_where(src, key)} = {v!r}: expected one of {', '.join(STAGES)}")
        elif k == "text_prior":
            known = _names_of("text.prior", "SOURCES") or TEXT_PRIORS
            if v not in known:
                raise ConfigError(f"{_where(src, key)} = {v!r}: expected one of {', '.join(known)}")
        elif k == "preset":
            if v not in PRESETS:
                raise ConfigError(f"{_where(src, key)} = {v!r}: expected one of {', '.join(PRESETS)}")
        elif k == "width":  # the attention heads split the channels in halves: even widths only
            if isinstance(v, bool) or not isinstance(v, int) or v < 2 or v % 2:
                raise ConfigError(f"{_where(src, key)} = {v!r}: expected an even integer >= 2 (e.g. 16, 32, 48)")
        elif k == "eval_pairs":
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{_where(src, key)} = {v!r}: expected a positive integer")
        elif k == "seed":
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{_where(src, key)} = {v!r}: expected an integer >= 0")
        elif k == "losses":
            v = _name_list(v, _names_of("losses", "LOSS_NAMES"), src, key)
        elif k == "distill_losses":
            v = _name_list(v, _names_of("losses", "DISTILL_LOSS_NAMES"), src, key)
        elif k in ("model", "student", "fusion"):
            if not isinstance(v, str) or not v.strip():
                raise ConfigError(f"{_where(src, key)} = {v!r}: expected a name")
            known = _names_of("models", "FUSION_MODULES" if k == "fusion" else "MODELS")
            if known is not None and v not in known:
                raise ConfigError(f"{_where(src, key)} = {v!r}: unknown {'fusion module' if k == 'fusion' else 'model'} "
                                  f"(known: {', '.join(known)})")
        elif k in PATH_KEYS:
            if not isinstance(v, str) or not v.strip():
                raise ConfigError(f"{_where(src, key)} = {v!r}: expected a path")
            _check_relative_path(v, src, key)
        out[k] = v
    return out


def _check_relative_path(v: str, src: str, key: str) -> None:
    """A relative path must stay inside the grid file's folder (no ``..`` escape)."""
    if v in BUILTIN_DATA or "$" in v or os.path.isabs(v) or v.startswith("~"):
        return
    norm = os.path.normpath(v)
    if norm == ".." or norm.startswith(".." + os.sep):
        raise ConfigError(f"{_where(src, key)} = {v!r}: a relative path may not leave the grid file's folder "
                          "(use an absolute path or $VARIABLE)")


def resolve_path(v: str, grid: Grid, key: str = "path") -> str:
    """Path value -> absolute path string (``synthetic`` is passed through).

    ``$VAR``/``${VAR}`` and ``~`` are expanded; an unset variable raises ConfigError.
    """
    src = str(grid.path or "<grid>")
    if v in BUILTIN_DATA:
        return v
    expanded = os.path.expanduser(os.path.expandvars(v))
    if "$" in expanded:
        var = re.search(r"\$\{?(\w+)", expanded)
        raise ConfigError(f"{src}: {key} = {v!r}: environment variable {var.group(1) if var else '?'} is not set")
    if not os.path.isabs(expanded):
        _check_relative_path(expanded, src, key)
        expanded = str((grid.root / expanded).resolve())
    return expanded


def _number_map(v: Any, src: str, key: str) -> dict[str, float]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ConfigError(f"{_where(src, key)} must map metric names to numbers, got {v!r}")
    out = {}
    for m, x in v.items():
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ConfigError(f"{_where(src, key + '.' + str(m))} = {x!r}: expected a number")
        out[str(m)] = float(x)
    return out


def _seeds(v: Any, src: str, key: str) -> list[int]:
    if not isinstance(v, list) or not v or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                    for s in v):
        raise ConfigError(f"{_where(src, key)} = {v!r}: expected a non-empty list of integers >= 0")
    if len(set(v)) != len(v):
        raise ConfigError(f"{_where(src, key)} = {v!r}: a seed is listed twice")
    return list(v)


def parse_grid(data: Any, src: str = "<grid>", path: Path | None = None) -> Grid:
    """Validate a grid mapping (as loaded from YAML) and return a :class:`Grid`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: a grid file must be a YAML mapping, got {type(data).__name__}")
    _check_keys(data, GRID_KEYS, src, "")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        # the name becomes a folder under runs/: no separators, no '..'
        raise ConfigError(f"{src}: name = {name!r}: expected 1-64 letters, digits, '_', '-' or '.' "
                          "(it names the folder under runs/)")
    metrics = data.get("metrics", ["EN", "VIF", "Qabf"])
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{src}: metrics = {metrics!r}: expected a non-empty list of metric names")
    for key in ("description", "paper_table"):
        if not isinstance(data.get(key, ""), str):
            raise ConfigError(f"{src}: {key} must be text")
    base = validate_params(data.get("base"), src, "base")
    for k in ("seed", "preset"):
        if k in base:
            raise ConfigError(f"{src}: base.{k}: set it with '{'seeds' if k == 'seed' else 'presets'}', not in base")

    raw_rows = data.get("rows")
    if not isinstance(raw_rows, list) or not raw_rows:
        raise ConfigError(f"{src}: rows: expected a non-empty list of rows (label + params)")
    rows: list[Row] = []
    for i, r in enumerate(raw_rows):
        where = f"rows[{i}]"
        _check_keys(r, ROW_KEYS, src, where)
        label = r.get("label")
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"{src}: {where}.label: every row needs a label")
        if label in [x.label for x in rows]:
            raise ConfigError(f"{src}: {where}.label = {label!r}: two rows have the same label")
        params = validate_params(r.get("params") or {}, src, f"{where}.params")
        for k in ("seed", "preset"):
            if k in params:
                raise ConfigError(f"{src}: {where}.params.{k}: seeds and presets are grid axes, not row params")
        if not isinstance(r.get("reference", False), bool):
            raise ConfigError(f"{src}: {where}.reference must be true or false")
        row_presets = _check_keys(r.get("presets"), PRESETS, src, f"{where}.presets")
        row_presets = {p: validate_params(v or {}, src, f"{where}.presets.{p}") for p, v in row_presets.items()}
        if any(k in v for v in row_presets.values() for k in ("seed", "preset")):
            raise ConfigError(f"{src}: {where}.presets: seeds and presets are grid axes, not row params")
        rows.append(Row(label=label.strip(), params=params, paper=_number_map(r.get("paper"), src, f"{where}.paper"),
                        reference=bool(r.get("reference", False)), note=str(r.get("note") or ""),
                        presets=row_presets))
    if sum(r.reference for r in rows) > 1:
        raise ConfigError(f"{src}: rows: only one row may be the reference")

    axes_raw = _check_keys(data.get("axes"), PARAM_KEYS, src, "axes")
    axes: dict[str, list] = {}
    for k, vals in axes_raw.items():
        if k in ("seed", "preset"):
            raise ConfigError(f"{src}: axes.{k}: use 'seeds' / 'presets' instead")
        if not isinstance(vals, list) or not vals:
            raise ConfigError(f"{src}: axes.{k} = {vals!r}: expected a non-empty list of values")
        axes[k] = [validate_params({k: v}, src, "axes")[k] for v in vals]

    seeds = _seeds(data.get("seeds", [0]), src, "seeds")
    presets_raw = data.get("presets") or {}
    if not isinstance(presets_raw, dict):
        raise ConfigError(f"{src}: presets must map preset names ({', '.join(PRESETS)}) to overrides")
    presets: dict[str, dict] = {}
    for p, over in presets_raw.items():
        if p not in PRESETS:
            raise ConfigError(f"{src}: presets.{p}: unknown preset (known: {', '.join(PRESETS)})")
        if not isinstance(over or {}, dict):
            raise ConfigError(f"{src}: presets.{p} must be a mapping of param overrides")
        over = dict(over or {})
        p_seeds = over.pop("seeds", None)
        checked = validate_params(over, src, f"presets.{p}")
        if "preset" in checked or "seed" in checked:
            raise ConfigError(f"{src}: presets.{p}: 'preset'/'seed' cannot be overridden here")
        if p_seeds is not None:
            checked["seeds"] = _seeds(p_seeds, src, f"presets.{p}.seeds")
        presets[p] = checked

    grid = Grid(name=name, rows=rows, base=base, axes=axes, seeds=seeds, presets=presets, metrics=list(metrics),
                description=data.get("description", "") or "", paper_table=data.get("paper_table", "") or "",
                path=path)
    for p in PRESETS:  # duplicate runs would be two rows for one result: refuse them up front
        expand(grid, p)
    return grid


def list_grids() -> list[str]:
    """Names of the grids shipped with fusionlab (``fusionlab ablate NAME`` runs one)."""
    from ..resources import shipped_dir

    return sorted(p.stem for p in shipped_dir("ablations").glob("*.yaml"))


def resolve_grid(name_or_path: str | os.PathLike) -> Path:
    """A grid file path, or a bare grid name (``student_width``) looked up in ``./ablations/``
    and then among the shipped grids (see :func:`list_grids`).

    Raises:
        ConfigError: no such file, or no grid of that name.
    """
    from ..resources import shipped_file

    p = Path(os.path.expanduser(str(name_or_path)))
    if p.is_file():
        return p
    bare = p.suffix not in (".yaml", ".yml") and "/" not in str(name_or_path) and os.sep not in str(name_or_path)
    if not bare:
        raise ConfigError(f"{p}: grid file not found")
    for cand in (Path("ablations") / f"{p.name}.yaml", shipped_file("ablations", f"{p.name}.yaml")):
        if cand.is_file():
            return cand
    raise ConfigError(f"{name_or_path}: no such grid file or built-in grid (built-in: {', '.join(list_grids())})")


def load_grid(path: str | os.PathLike) -> Grid:
    """Read and validate a grid YAML file (``yaml.safe_load``); a bare name such as
    ``"student_width"`` names a shipped grid (:func:`resolve_grid`).

    Raises:
        ConfigError: missing file, bad YAML, unknown key or invalid value (one line).
    """
    p = resolve_grid(path)
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}: invalid YAML{at} ({getattr(e, 'problem', None) or type(e).__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file") from None
    return parse_grid(data, str(p), p.resolve())


# ----------------------------------------------------------------------------- expansion
def preset_params(grid: Grid, preset: str) -> tuple[dict, list[int]]:
    """``(param overrides, seeds)`` of ``preset`` for this grid."""
    if preset not in PRESETS:
        raise ConfigError(f"preset {preset!r} is not one of {', '.join(PRESETS)}")
    over = copy.deepcopy(grid.presets.get(preset, {}))
    seeds = over.pop("seeds", None) or grid.seeds
    return over, seeds


def expand(grid: Grid, preset: str) -> list[Run]:
    """All runs of the grid for ``preset``: seeds (outer) x rows x extra axes.

    Seeds are the outer loop so that the first pass over the rows gives one result per
    variant early; the order is deterministic (it is the row order of ``results.csv``).
    """
    over, seeds = preset_params(grid, preset)
    axis_names = list(grid.axes)
    points = list(itertools.product(*(grid.axes[a] for a in axis_names))) or [()]
    runs: list[Run] = []
    seen: dict[str, str] = {}
    for seed in seeds:
        for i, row in enumerate(grid.rows):
            for point in points:
                params = {**grid.base, "preset": preset, **over, **row.params, **row.presets.get(preset, {}),
                          **dict(zip(axis_names, point)), "seed": seed}
                params = canonical_params(params)
                label = row.label
                if point:
                    label += " | " + ", ".join(f"{a}={_fmt(v)}" for a, v in zip(axis_names, point))
                rid = run_id(params)
                if rid in seen:
                    raise ConfigError(f"{grid.path or grid.name}: rows {seen[rid]!r} and {label!r} have identical "
                                      f"params for preset {preset} (they would be one run)")
                seen[rid] = label
                runs.append(Run(ablation=grid.name, run_id=rid, row=i, label=label, seed=seed, preset=preset,
                                params=params))
    return runs


def _fmt(v: Any) -> str:
    return "+".join(map(str, v)) if isinstance(v, list) else str(v)
