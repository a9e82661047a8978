"""Ablation workbench: grid files -> papermill runs -> results.csv -> paper-style report.

::

    from fusionlab.ablate import load_grid, run_grid, read_results, paper_table
    out = run_grid("fusion_modules", preset="ci", jobs=2)   # a built-in grid or a YAML path; resumable
    print(paper_table(read_results(out.results_path)))

Modules: :mod:`.grid` (YAML format, validation, expansion, run ids), :mod:`.runner` (one
run with papermill), :mod:`.executors` (local / Ray), :mod:`.orchestrate` (the grid loop),
:mod:`.results` (results.csv), :mod:`.report` (tables, figures, HTML report), :mod:`.views`
(run folders: fused samples side by side, one run's metrics), :mod:`.demo`
(bundled example results for the report notebook), :mod:`.captions` (the caption file of
the text-prior ablation).
"""
from .executors import EXECUTORS
from .grid import PARAM_KEYS, Grid, Row, Run, expand, list_grids, load_grid, parse_grid, resolve_grid, run_id, shrink_grid
from .orchestrate import GridOutcome, plan, run_grid
from .report import (best_rows, delta_plot, deltas, long_results, metric_plot, paper_table, rank_agreement,
                     reference_label, render_report, row_order, seed_deltas, style_paper_table, summarize)
from .results import collect_results, metric_columns, read_results, write_results
from .runner import RunTask, execute_run, read_metrics, run_state
from .views import RunCompare, compare_runs_figure, default_pair, run_images, show_run

__all__ = [
    "EXECUTORS", "PARAM_KEYS", "Grid", "Row", "Run", "expand", "list_grids", "load_grid", "parse_grid", "resolve_grid",
    "run_id", "shrink_grid",
    "GridOutcome", "plan", "run_grid", "deltas", "paper_table", "rank_agreement", "render_report", "summarize",
    "best_rows", "delta_plot", "long_results", "metric_plot", "reference_label", "row_order", "seed_deltas",
    "style_paper_table", "RunCompare", "compare_runs_figure", "default_pair", "run_images", "show_run",
    "collect_results", "metric_columns", "read_results", "write_results", "RunTask", "execute_run",
    "read_metrics", "run_state",
]
