"""Paper-style tables from ``results.csv``, and rendering the report notebook to HTML.

* :func:`summarize` -> mean, std and number of seeds per row and metric;
* :func:`paper_table` -> the paper's layout: one line per row (paper order), for each
  metric the measured ``mean ± std`` beside the paper's number;
* :func:`deltas` -> differences to the reference row, measured and paper (the honest
  comparison when absolute numbers come from other data, e.g. the synthetic ``ci`` set);
* :func:`evidence` -> paired differences to the reference row with bootstrap intervals and
  a verdict against the paper's direction (:mod:`fusionlab.ablate.stats`);
  :func:`condition_table` -> each row on clean and degraded test inputs;
* :func:`style_paper_table`, :func:`metric_plot`, :func:`delta_plot` -> the table with a
  value in bold only where its row is clearly best (intervals excluding every other row),
  and the two figures, drawn by :mod:`fusionlab.viz`;
* :func:`render_report` -> executes ``notebooks/ablation_report.ipynb`` with papermill and
  converts it to a self-contained HTML file (``fusionlab report``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from ..errors import ConfigError, RunFailedError
from ..io import atomic_write_text
from .results import metric_columns

REPORT_NOTEBOOK = "ablation_report.ipynb"


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"] if "status" in df.columns else df


def row_order(df: pd.DataFrame) -> list[str]:
    """Row labels in the grid's (paper's) order."""
    return list(df.sort_values(["row", "label"], kind="stable")["label"].drop_duplicates())


def summarize(df: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Per row label: ``<m>_mean``, ``<m>_std`` (ddof=1, NaN for one seed), ``n`` (ok runs).

    Rows without any ok run are kept (NaN), so a failing variant stays visible.
    """
    metrics = metrics or metric_columns(df)
    order = row_order(df)
    ok = _ok(df)
    out = pd.DataFrame(index=pd.Index(order, name="label"))
    for m in metrics:
        g = pd.to_numeric(ok[m], errors="coerce").groupby(ok["label"]) if m in ok else None
        out[f"{m}_mean"] = g.mean() if g is not None else math.nan
        out[f"{m}_std"] = g.std(ddof=1) if g is not None else math.nan
    out["n"] = ok.groupby("label").size().reindex(order).fillna(0).astype(int)
    out["runs"] = df.groupby("label").size().reindex(order).astype(int)
    return out


def _paper(df: pd.DataFrame, m: str) -> pd.Series:
    col = f"paper_{m}"
    if col not in df.columns:
        return pd.Series(dtype=float)
    return pd.to_numeric(df.drop_duplicates("label").set_index("label")[col], errors="coerce")


def _pm(mean: float, std: float, digits: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def paper_table(df: pd.DataFrame, metrics: list[str] | None = None, digits: int = 3) -> pd.DataFrame:
    """The paper's layout: index = row label (paper order); per metric ``<m>`` (measured
    mean ± std over seeds) and ``<m> paper``; then ``params (M)`` (measured size of the
    trained network, when the runs report it), ``seeds`` (``ok/total`` runs) and
    ``note`` when any row has one. Cells are strings, ready to print or show as HTML."""
    metrics = metrics or metric_columns(df)
    s = summarize(df, metrics)
    table = pd.DataFrame(index=s.index)
    for m in metrics:
        table[m] = [_pm(a, b, digits) for a, b in zip(s[f"{m}_mean"], s[f"{m}_std"])]
        paper = _paper(df, m).reindex(s.index)
        table[f"{m} paper"] = [("–" if math.isnan(v) else f"{v:.{digits}f}") for v in paper]
    if "parameters" in df.columns:  # the measured size of the trained network (student_width: per row)
        size = pd.to_numeric(_ok(df)["parameters"], errors="coerce").groupby(_ok(df)["label"]).mean().reindex(s.index)
        table["params (M)"] = ["–" if math.isnan(v) else f"{v / 1e6:.2f}" for v in size]
    table["seeds"] = [f"{n}/{r}" for n, r in zip(s["n"], s["runs"])]
    if "note" in df.columns and df["note"].astype(str).str.len().gt(0).any():
        table["note"] = df.drop_duplicates("label").set_index("label")["note"].reindex(s.index).fillna("")
    table.index.name = "variant"
    return table


def reference_label(df: pd.DataFrame) -> str | None:
    """Label of the reference row (``reference: true`` in the grid), else the last row."""
    if "reference" in df.columns and df["reference"].any():
        return str(df[df["reference"]]["label"].iloc[0])
    order = row_order(df)
    return order[-1] if order else None


def seed_deltas(df: pd.DataFrame, metrics: list[str] | None = None, reference: str | None = None) -> pd.DataFrame:
    """Long table ``label, metric, source, delta``: measured per-seed differences to the
    reference row (same seed), and the paper's difference (one value) when known."""
    metrics = metrics or metric_columns(df)
    reference = reference or reference_label(df)
    ok = _ok(df)
    recs = []
    for m in metrics:
        if m not in ok.columns:
            continue
        vals = ok.pivot_table(index="seed", columns="label", values=m, aggfunc="mean")
        paper = _paper(df, m)
        for label in row_order(df):
            if label in vals and reference in vals:
                recs += [{"label": label, "metric": m, "source": "measured", "delta": float(d)}
                         for d in (vals[label] - vals[reference]).dropna()]
            if label in paper.index and reference in paper.index and not (
                    math.isnan(paper[label]) or math.isnan(paper[reference])):
                recs.append({"label": label, "metric": m, "source": "paper",
                             "delta": float(paper[label] - paper[reference])})
    return pd.DataFrame(recs, columns=["label", "metric", "source", "delta"])


def deltas(df: pd.DataFrame, metrics: list[str] | None = None, reference: str | None = None) -> pd.DataFrame:
    """Long table of differences to the reference row: columns ``label, metric, source``
    (``measured`` | ``paper``), ``delta``, ``std`` (measured: mean and std over seeds of the
    per-seed differences, NaN std for one seed)."""
    per_seed = seed_deltas(df, metrics, reference)
    out = per_seed.groupby(["metric", "label", "source"], sort=False)["delta"].agg(
        delta="mean", std=lambda d: d.std(ddof=1) if len(d) > 1 else math.nan).reset_index()
    return out[["label", "metric", "source", "delta", "std"]]


def long_results(df: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """ok runs as a long table: ``label, seed, metric, value`` (row order kept)."""
    metrics = [m for m in (metrics or metric_columns(df)) if m in df.columns]
    long = _ok(df).melt(id_vars=["label", "seed"], value_vars=metrics, var_name="metric", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long.dropna(subset=["value"])


# ----------------------------------------------------------------------------- tables and figures
def run_level_pairs(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """A per-pair table built from run means (one unit per run, condition ``normal``) for
    results without ``pairs.csv``: intervals then vary the seeds only."""
    ok = _ok(df)
    out = ok[["label", "seed"] + [m for m in metrics if m in ok.columns]].copy()
    out["pair"], out["condition"] = "(run mean)", "normal"
    return out


def best_rows(df: pd.DataFrame, metrics: list[str], pairs: pd.DataFrame | None = None) -> dict[str, str]:
    """``{metric: label}`` of the rows that are CLEARLY best: best mean (lowest where lower is
    better, :func:`fusionlab.metrics.lower_is_better`) and a paired 95 % interval against every
    other row that excludes 0 (:func:`fusionlab.ablate.stats.clear_best`, on the clean
    condition of ``pairs``, else on the run means). Metrics without a clear winner are left
    out: differences inside the noise are not ranked."""
    from ..metrics import lower_is_better
    from .stats import clear_best

    pairs = pairs if pairs is not None else run_level_pairs(df, metrics)
    out = {}
    for m in metrics:
        if m not in pairs.columns:
            continue
        best = clear_best(pairs, row_order(df), m, "normal", lower_is_better(m))
        if best is not None:
            out[m] = best
    return out


def style_paper_table(table: pd.DataFrame, df: pd.DataFrame, metrics: list[str], pairs: pd.DataFrame | None = None):
    """A pandas Styler of :func:`paper_table`: a measured value in bold only where its row is
    clearly best (:func:`best_rows`), cells kept on one line."""
    from ..viz.tables import style_best

    return style_best(table, best_rows(df, metrics, pairs))


def evidence(df: pd.DataFrame, pairs: pd.DataFrame | None, metrics: list[str], reference: str | None = None,
             conditions=None) -> pd.DataFrame:
    """:func:`fusionlab.ablate.stats.evidence_table` of a results table (per-pair table
    ``pairs``, else run means), against the grid's reference row."""
    from .stats import REPORT_CONDITIONS, evidence_table

    if pairs is None:
        pairs, conditions = run_level_pairs(df, metrics), ("normal",)
    return evidence_table(df, pairs, metrics, reference or reference_label(df), conditions or REPORT_CONDITIONS)


def evidence_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A Markdown table of :func:`evidence` (one line per row x condition x metric): mean ± std
    over seeds, Δ to the reference with its 95 % interval, the paper's Δ and the verdict - the
    cells of :func:`fusionlab.ablate.stats.format_evidence`. For docs and notes, so quoted
    numbers are pasted from one generator rather than retyped."""
    from .stats import format_evidence

    cells = format_evidence(table, digits)
    cells["condition"] = cells["condition"].replace({"normal": "clean"})
    cols = ["variant", "condition", "metric", "mean ± std", "Δ to reference [95 % CI]", "paper Δ", "verdict"]
    lines = ["| row | condition | metric | mean ± std | Δ to reference [95 % CI] | paper Δ | verdict |",
             "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in cells[cols].itertuples(index=False)]
    return "\n".join(lines) + "\n"


def condition_table(df: pd.DataFrame, pairs: pd.DataFrame, metric: str, digits: int = 3) -> pd.DataFrame:
    """Rows x evaluation conditions (clean, each degradation, their mean): ``mean ± std``
    over seeds of ``metric``."""
    from .stats import DEGRADED, _units

    conds = [c for c in ("normal", "low_light", "over_exposure", "ir_noise", "ir_low_contrast")
             if c in set(pairs["condition"])] + [DEGRADED]
    table = pd.DataFrame(index=pd.Index(row_order(df), name="variant"))
    for c in conds:
        cells = []
        for label in table.index:
            per_seed = _units(pairs, label, metric, c).groupby("seed").mean()
            cells.append(_pm(per_seed.mean() if len(per_seed) else math.nan,
                             per_seed.std(ddof=1) if len(per_seed) > 1 else math.nan, digits))
        table["clean" if c == "normal" else c] = cells
    return table


def metric_plot(df: pd.DataFrame, metrics: list[str] | None = None, title: str | None = None):
    """Each metric per variant of a results table: mean ± std over seeds, seeds as dots
    (:func:`fusionlab.viz.plots.metric_plot`)."""
    from ..viz import plots

    metrics = metrics or metric_columns(df)
    return plots.metric_plot(long_results(df, metrics), row_order(df), metrics, title)


def delta_plot(df: pd.DataFrame, metrics: list[str] | None = None, reference: str | None = None,
               title: str | None = None):
    """Difference of each variant to the reference row, measured beside the paper's
    (:func:`fusionlab.viz.plots.delta_plot`)."""
    from ..viz import plots

    metrics = metrics or metric_columns(df)
    reference = reference or reference_label(df)
    return plots.delta_plot(seed_deltas(df, metrics, reference), row_order(df), reference, metrics, title)


# ----------------------------------------------------------------------------- HTML report
def default_report_notebook() -> Path:
    from .orchestrate import find_notebook

    return find_notebook(REPORT_NOTEBOOK, "report")


def render_report(grid_path: str | os.PathLike, runs_dir: str | os.PathLike = "runs",
                  out: str | os.PathLike | None = None, notebook: str | os.PathLike | None = None,
                  show_code: bool = False, kernel_name: str = "python3") -> Path:
    """Execute the report notebook for one grid and write it as HTML; returns the HTML path.

    The executed notebook is kept beside the HTML (``report.ipynb``). Default output:
    ``runs_dir/<grid name>/report.html``.

    Raises:
        ConfigError: bad grid file or no ``results.csv`` for it.
        RunFailedError: the report notebook failed (the message names the cell).
    """
    from ..resources import require_extra

    require_extra("notebooks", "papermill", "nbconvert", "ipykernel")
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter
    from papermill.exceptions import PapermillExecutionError

    from .grid import load_grid

    grid = load_grid(grid_path)
    results = Path(runs_dir).resolve() / grid.name / "results.csv"
    if not results.is_file():
        raise ConfigError(f"{results}: no results for grid {grid.name!r} (run 'fusionlab ablate {grid_path}' first)")
    nb_in = Path(notebook) if notebook else default_report_notebook()
    out = Path(out) if out else results.parent / "report.html"
    executed = out.with_suffix(".ipynb")
    params = {"ablation": grid.name, "grid_file": str(grid.path),
              "runs_dir": str(Path(runs_dir).resolve()), "interactive": False, "demo_fallback": False}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_nb = executed.with_name(f".partial.{executed.name}")
    try:
        pm.execute_notebook(str(nb_in), str(tmp_nb), parameters=params, kernel_name=kernel_name,
                            cwd=str(nb_in.parent.resolve()), progress_bar=False, log_output=False,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as e:
        raise RunFailedError(f"{nb_in}: report failed at In [{e.exec_count}]: {e.ename}: "
                             f"{' '.join(str(e.evalue).split())[:200]} (see {tmp_nb})") from None
    os.replace(tmp_nb, executed)
    nb = nbformat.read(str(executed), as_version=4)
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": f"{grid.name} ablation report"}})
    atomic_write_text(out, body)
    return out
