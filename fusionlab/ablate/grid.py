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
      full: {data: ${FUSIONLAB_DATA}/msrs/train, seeds: [0, 1, 2]}

The params of one run are ``base | {preset: P} | presets[P] | row.params |
row.presets[P] | axes | {seed}`` (later wins). Its id is a hash of those params (key order does not matter), so a run that
is already complete is found again after an edit of an unrelated row, and changing one
parameter of one row reruns exactly that row.

Validation is strict: an unknown key or an invalid value raises
:class:`~fusionlab.errors.ConfigError` with one line naming the file and the key (the
params are :class:`fusionlab.params.RunParams`, the same names and checks as
:func:`fusionlab.train.run_experiment`). Path values (``data``, ``eval_data``,
``caption_file``, ``text_checkpoint``) may be absolute (``$VARS`` expanded; ``FUSIONLAB_DATA``,
``FUSIONLAB_CACHE`` and ``FUSIONLAB_MODELS`` default to the folders of :mod:`fusionlab.dirs`)
or relative to the grid file's folder, and then must not leave that folder.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..dirs import DEFAULT_VARIABLES
from ..errors import ConfigError
from ..params import PARAM_KEYS, PATH_KEYS, SYNTHETIC, RunParams, check_keys
from ..presets import PRESETS

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
    metrics: list[str] = field(default_factory=lambda: _paper_metrics())
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
            elif isinstance(out.get(k), list):
                out[k] = [resolve_path(v, grid, k) for v in out[k]]
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


def _paper_metrics() -> list[str]:
    """The paper's metrics (EN, VIF, Qabf), the default columns of a grid's table."""
    from ..metrics import PAPER_METRICS

    return list(PAPER_METRICS)


def _grid_params(params: Any, src: str, where: str = "params") -> dict:
    """Check the run params of one place of a grid file (:meth:`RunParams.check`), and that
    relative paths stay inside the grid file's folder; returns a normalised copy.

    Raises:
        ConfigError: unknown key or invalid value (one line naming ``src`` and the key).
    """
    out = RunParams.check(params, src, where)
    for k in PATH_KEYS:
        for v in ([out[k]] if isinstance(out.get(k), str) else out.get(k) or []):
            _check_relative_path(v, src, f"{where}.{k}")
    return out


def _check_relative_path(v: str, src: str, key: str) -> None:
    """A relative path must stay inside the grid file's folder (no ``..`` escape)."""
    if v == SYNTHETIC or "$" in v or os.path.isabs(v) or v.startswith("~"):
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
    if v == SYNTHETIC:
        return v
    expanded = os.path.expanduser(_expand_vars(v))
    if "$" in expanded:
        var = re.search(r"\$\{?(\w+)", expanded)
        raise ConfigError(f"{src}: {key} = {v!r}: environment variable {var.group(1) if var else '?'} is not set")
    if not os.path.isabs(expanded):
        _check_relative_path(expanded, src, key)
        expanded = str((grid.root / expanded).resolve())
    return expanded


def _expand_vars(v: str) -> str:
    """``$VAR``/``${VAR}`` expanded; fusionlab's folder variables have defaults when unset."""
    defaults = {k: str(f()) for k, f in DEFAULT_VARIABLES.items() if not os.environ.get(k) and k in v}
    return os.path.expandvars(v) if not defaults else string.Template(v).safe_substitute({**defaults, **os.environ})


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
    check_keys(data, GRID_KEYS, src, "")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        # the name becomes a folder under runs/: no separators, no '..'
        raise ConfigError(f"{src}: name = {name!r}: expected 1-64 letters, digits, '_', '-' or '.' "
                          "(it names the folder under runs/)")
    metrics = data.get("metrics", _paper_metrics())
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{src}: metrics = {metrics!r}: expected a non-empty list of metric names")
    from ..metrics import METRICS

    if any(m not in METRICS for m in metrics):
        bad = next(m for m in metrics if m not in METRICS)
        raise ConfigError(f"{src}: metrics: unknown metric {bad!r} (known: {', '.join(METRICS.names())})")
    for key in ("description", "paper_table"):
        if not isinstance(data.get(key, ""), str):
            raise ConfigError(f"{src}: {key} must be text")
    base = _grid_params(data.get("base"), src, "base")
    for k in ("seed", "preset"):
        if k in base:
            raise ConfigError(f"{src}: base.{k}: set it with '{'seeds' if k == 'seed' else 'presets'}', not in base")

    raw_rows = data.get("rows")
    if not isinstance(raw_rows, list) or not raw_rows:
        raise ConfigError(f"{src}: rows: expected a non-empty list of rows (label + params)")
    rows: list[Row] = []
    for i, r in enumerate(raw_rows):
        where = f"rows[{i}]"
        check_keys(r, ROW_KEYS, src, where)
        label = r.get("label")
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"{src}: {where}.label: every row needs a label")
        if label in [x.label for x in rows]:
            raise ConfigError(f"{src}: {where}.label = {label!r}: two rows have the same label")
        params = _grid_params(r.get("params") or {}, src, f"{where}.params")
        for k in ("seed", "preset"):
            if k in params:
                raise ConfigError(f"{src}: {where}.params.{k}: seeds and presets are grid axes, not row params")
        if not isinstance(r.get("reference", False), bool):
            raise ConfigError(f"{src}: {where}.reference must be true or false")
        row_presets = check_keys(r.get("presets"), PRESETS, src, f"{where}.presets")
        row_presets = {p: _grid_params(v or {}, src, f"{where}.presets.{p}") for p, v in row_presets.items()}
        if any(k in v for v in row_presets.values() for k in ("seed", "preset")):
            raise ConfigError(f"{src}: {where}.presets: seeds and presets are grid axes, not row params")
        rows.append(Row(label=label.strip(), params=params, paper=_number_map(r.get("paper"), src, f"{where}.paper"),
                        reference=bool(r.get("reference", False)), note=str(r.get("note") or ""),
                        presets=row_presets))
    if sum(r.reference for r in rows) > 1:
        raise ConfigError(f"{src}: rows: only one row may be the reference")

    axes_raw = check_keys(data.get("axes"), PARAM_KEYS, src, "axes")
    axes: dict[str, list] = {}
    for k, vals in axes_raw.items():
        if k in ("seed", "preset"):
            raise ConfigError(f"{src}: axes.{k}: use 'seeds' / 'presets' instead")
        if not isinstance(vals, list) or not vals:
            raise ConfigError(f"{src}: axes.{k} = {vals!r}: expected a non-empty list of values")
        axes[k] = [_grid_params({k: v}, src, "axes")[k] for v in vals]

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
        checked = _grid_params(over, src, f"presets.{p}")
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


# ----------------------------------------------------------------------------- smaller copies
def shrink_grid(grid_path: str | os.PathLike, out_dir: str | os.PathLike, preset: str,
                rows: list | None = None, seeds: list[int] | None = None) -> Path:
    """Write a smaller copy of an ablation grid file (some rows, fewer seeds) for a quick run.

    Args:
        grid_path: ``ablations/<name>.yaml``.
        out_dir: folder for the copy (``<out_dir>/<name>.yaml``); the grid keeps its name, so
            its report reads like the full one.
        preset: the preset whose seeds ``seeds`` replaces.
        rows: row labels or indices to keep (negative indices count from the end); None = all.
        seeds: seeds for ``preset``; None keeps the grid's.

    Relative path parameters (``data``, ``eval_data``, ``caption_file``, ...) are made absolute
    against the original file's folder, so the copy runs from anywhere. Returns the copy's
    path (validated with :func:`load_grid`).
    """
    from ..io import atomic_write_text

    grid = load_grid(grid_path)
    raw = yaml.safe_load(Path(grid_path).read_text())

    def absolutise(params):
        if isinstance(params, dict):
            for k in PATH_KEYS:
                v = params.get(k)
                if isinstance(v, str) and v != SYNTHETIC and "$" not in v:
                    params[k] = resolve_path(v, grid, k)
        return params

    absolutise(raw.get("base"))
    for p in (raw.get("presets") or {}).values():
        absolutise(p)
    keep = list(range(len(raw["rows"])))
    if rows is not None:
        keep = []
        for r in rows:
            i = grid.labels.index(r) if isinstance(r, str) and r in grid.labels else int(r)
            keep.append(i % len(raw["rows"]))
        if not keep:
            raise ConfigError(f"{grid_path}: rows={rows!r} selects no row")
    raw["rows"] = [raw["rows"][i] for i in dict.fromkeys(keep)]
    for r in raw["rows"]:
        absolutise(r.get("params"))
        for p in (r.get("presets") or {}).values():
            absolutise(p)
    if not any(r.get("reference") for r in raw["rows"]):
        raw["rows"][-1]["reference"] = True  # deltas need a reference row
    if seeds is not None:
        raw.setdefault("presets", {})
        raw["presets"][preset] = {**(raw["presets"].get(preset) or {}), "seeds": [int(s) for s in seeds]}
    out = Path(out_dir) / Path(grid_path).name
    atomic_write_text(out, yaml.safe_dump(raw, sort_keys=False))
    load_grid(out)  # validate the copy
    return out


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
