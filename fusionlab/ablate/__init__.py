"""Ablation workbench: grid files -> papermill runs -> results.csv -> paper-style report.

::

    from fusionlab.ablate import load_grid, run_grid, read_results, paper_table
    out = run_grid("fusion_modules", preset="ci", jobs=2)   # a built-in grid or a YAML path; resumable
    print(paper_table(read_results(out.results_path)))

Modules: :mod:`.grid` (YAML format, validation, expansion, run ids), :mod:`.runner` (one
run with papermill), :mod:`.executors` (local / Ray), :mod:`.orchestrate` (the grid loop),
:mod:`.results` (results.csv), :mod:`.report` (tables, HTML report), :mod:`.demo`
(bundled example results for the report notebook), :mod:`.captions` (the caption file of
the text-prior ablation).
"""
from .executors import EXECUTORS
from .grid import PARAM_KEYS, Grid, Row, Run, expand, list_grids, load_grid, parse_grid, resolve_grid, run_id
from .orchestrate import GridOutcome, plan, run_grid
from .report import deltas, paper_table, rank_agreement, render_report, summarize
from .results import collect_results, metric_columns, read_results, write_results
from .runner import RunTask, execute_run, read_metrics, run_state

__all__ = [
    "EXECUTORS", "PARAM_KEYS", "Grid", "Row", "Run", "expand", "list_grids", "load_grid", "parse_grid", "resolve_grid",
    "run_id",
    "GridOutcome", "plan", "run_grid", "deltas", "paper_table", "rank_agreement", "render_report", "summarize",
    "collect_results", "metric_columns", "read_results", "write_results", "RunTask", "execute_run",
    "read_metrics", "run_state",
]
