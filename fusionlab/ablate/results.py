"""``results.csv``: one row per run of the grid, rebuilt from the run folders.

The table is never appended to: it is regenerated from every run folder's
``metrics.json``/``status.json`` and written atomically, so an interrupted grid can neither
lose nor duplicate a row. Row order = expansion order of the grid (seeds outer, rows
inner); ``status`` is ``ok``, ``failed`` or ``pending``.

Columns: ``ablation, run_id, row, label, seed, preset, status, reference``, the grid's
metrics, the other numbers found in ``metrics.json`` (sorted), ``paper_<metric>`` (the
paper's number for that row, empty when the paper has none), ``note``, ``duration_s``,
``error``, ``error_cell``, ``run_dir`` (relative to the CSV's folder) and ``params`` (JSON).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..io import atomic_path
from .grid import Grid, Run
from .runner import read_metrics, read_status, run_state

RESULTS_FILE = "results.csv"
KEY_COLUMNS = ["ablation", "run_id", "row", "label", "seed", "preset", "status", "reference"]
TAIL_COLUMNS = ["note", "duration_s", "error", "error_cell", "run_dir", "params"]


def collect_results(grid: Grid, runs: list[Run], grid_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per run of ``runs`` (the expanded grid), read from ``grid_dir/<run_id>/``."""
    grid_dir = Path(grid_dir)
    records, extra = [], set()
    for run in runs:
        d = grid_dir / run.run_id
        state = run_state(d)
        status = read_status(d) or {}
        metrics = read_metrics(d) if state == "complete" else None
        row = grid.rows[run.row]
        rec = {"ablation": run.ablation, "run_id": run.run_id, "row": run.row, "label": run.label,
               "seed": run.seed, "preset": run.preset,
               "status": {"complete": "ok", "failed": "failed"}.get(state, "pending"), "reference": row.reference}
        for k, v in (metrics or {}).items():
            rec[k] = v
            if k not in grid.metrics:
                extra.add(k)
        for m in grid.metrics:
            rec[f"paper_{m}"] = row.paper.get(m)
        rec.update(note=row.note, duration_s=status.get("duration_s"),
                   error=status.get("error", "") if state == "failed" else "",
                   error_cell=status.get("error_cell", "") if state == "failed" else "",
                   run_dir=run.run_id, params=json.dumps(run.params, sort_keys=True))
        records.append(rec)
    columns = (KEY_COLUMNS + list(grid.metrics) + sorted(extra) + [f"paper_{m}" for m in grid.metrics]
               + TAIL_COLUMNS)
    return pd.DataFrame.from_records(records, columns=columns)


def write_results(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` as CSV atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``results.csv`` written by :func:`write_results`.

    Raises:
        ConfigError: missing file, or not a fusionlab results table.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: results file not found (run 'fusionlab ablate' on the grid first)")
    try:
        df = pd.read_csv(p, keep_default_na=True)
    except (ValueError, OSError) as e:
        raise ConfigError(f"{p}: cannot read as CSV ({' '.join(str(e).split())})") from None
    missing = [c for c in ("run_id", "label", "row", "seed", "status") if c not in df.columns]
    if missing:
        raise ConfigError(f"{p}: not an ablation results table (missing columns: {', '.join(missing)})")
    for c in ("error", "error_cell", "note"):
        if c in df.columns:
            # an all-empty column reads as float64: go through object so "" is a valid fill (pandas 3)
            df[c] = df[c].astype(object).fillna("").astype(str)
    if "reference" in df.columns:
        df["reference"] = df["reference"].astype(str).str.lower().eq("true")
    return df


def metric_columns(df: pd.DataFrame) -> list[str]:
    """Metric columns of a results table: those with a ``paper_<m>`` partner, in CSV order."""
    return [c[len("paper_"):] for c in df.columns if c.startswith("paper_") and c[len("paper_"):] in df.columns]
