"""Run a whole grid: expand, skip what is complete, execute the rest, keep results.csv current.

::

    from fusionlab.ablate import run_grid
    out = run_grid("ablations/fusion_modules.yaml", preset="ci", jobs=2)
    out.results            # pandas DataFrame, also in runs/fusion_modules/results.csv

Resumability comes from three rules: a run's folder is named by the hash of its params;
a run counts as done only from what its folder holds (``runner.run_state``); and
``results.csv`` is rebuilt from the folders after every finished run and written
atomically. Killing the grid at any moment and starting it again therefore finishes it
with every row exactly once. A lock file keeps two grid processes off one folder.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd

from ..dirs import file_lock
from ..errors import ConfigError, OutputError, UsageError
from ..params import RunParams
from ..presets import get_preset
from .executors import EXECUTORS
from .grid import Grid, Run, expand, load_grid
from .results import RESULTS_FILE, collect_results, write_results
from .runner import KERNEL_NAME, RunTask, adopt_orphan, run_state

RUN_NOTEBOOK = "run_experiment.ipynb"
LOCK_FILE = ".lock"


@dataclass
class GridOutcome:
    """What :func:`run_grid` did."""

    grid: Grid
    preset: str
    grid_dir: Path
    results_path: Path
    results: pd.DataFrame
    total: int          # runs in the grid for this preset
    selected: int       # runs selected (rows filter)
    executed: int       # runs executed now
    skipped: int        # selected runs already complete (or failed, with retry_failed=False)

    @property
    def failed(self) -> pd.DataFrame:
        return self.results[self.results["status"] == "failed"]

    @property
    def n_ok(self) -> int:
        return int((self.results["status"] == "ok").sum())

    def summary(self) -> str:
        return (f"{self.grid.name} [{self.preset}]: {self.total} runs, {self.n_ok} ok, {len(self.failed)} failed, "
                f"{int((self.results['status'] == 'pending').sum())} pending ({self.executed} executed now, "
                f"{self.skipped} already done) -> {self.results_path}")


def find_notebook(name: str, what: str = "run") -> Path:
    """``notebooks/<name>`` of the current folder, else the copy shipped with fusionlab
    (inside the installed package, or ``notebooks/`` of the checkout)."""
    from ..resources import shipped_file

    here = Path.cwd() / "notebooks" / name
    shipped = shipped_file("notebooks", name)
    for p in (here, shipped):
        if p.is_file():
            return p
    raise ConfigError(f"{what} notebook not found at {here} or {shipped} (pass --notebook PATH)")


def default_notebook() -> Path:
    """``notebooks/run_experiment.ipynb`` of the current folder, else the shipped copy."""
    return find_notebook(RUN_NOTEBOOK, "run")


@contextlib.contextmanager
def grid_lock(grid_dir: Path) -> Iterator[None]:
    """Exclusive, non-blocking lock on ``grid_dir/.lock`` (released by the OS if we are killed)."""
    path = grid_dir / LOCK_FILE
    try:
        with file_lock(path, blocking=False):
            yield
    except BlockingIOError:
        raise OutputError(f"{grid_dir}: another 'fusionlab ablate' is running this grid (lock {path})") from None


def select_runs(runs: list[Run], grid: Grid, rows: Sequence[str | int] | None) -> list[Run]:
    """Runs of the rows named by label (exact) or index; all when ``rows`` is empty."""
    if not rows:
        return runs
    wanted: set[int] = set()
    for r in rows:
        s = str(r).strip()
        if s.isdigit() and int(s) < len(grid.rows):
            wanted.add(int(s))
        elif s in grid.labels:
            wanted.add(grid.labels.index(s))
        else:
            raise ConfigError(f"{grid.path or grid.name}: no row {s!r} (rows: {', '.join(map(repr, grid.labels))})")
    return [r for r in runs if r.row in wanted]


def check_run_params(params: dict, grid: Grid, run: Run) -> None:
    """Validate params as :func:`fusionlab.train.run_experiment` will (existing files and
    folders, model names, ...); errors name the grid file and the row."""
    RunParams.from_dict(params, src=f"{grid.path or grid.name}: row {run.label!r} (preset {run.preset})")


def plan(grid: Grid, preset: str, runs_dir: str | os.PathLike = "runs") -> pd.DataFrame:
    """Runs of the grid and their state, without executing anything (``--dry-run``)."""
    grid_dir = Path(runs_dir) / grid.name
    return pd.DataFrame([{"run_id": r.run_id, "label": r.label, "seed": r.seed,
                          "state": run_state(grid_dir / r.run_id)} for r in expand(grid, preset)])


def run_grid(grid: Grid | str | os.PathLike, preset: str | None = None, runs_dir: str | os.PathLike = "runs",
             executor: str = "local", jobs: int = 1, notebook: str | os.PathLike | None = None,
             rows: Sequence[str | int] | None = None, force: bool = False, retry_failed: bool = True,
             cpus_per_run: float | None = None, gpus_per_run: float = 0, address: str | None = None,
             timeout: float | None = None, kernel_name: str = KERNEL_NAME, progress: bool = True) -> GridOutcome:
    """Execute every run of ``grid`` that is not complete; return the outcome.

    Args:
        grid: a :class:`Grid` or the path of a grid YAML file.
        preset: ``ci`` | ``laptop`` | ``full`` (default: ``FUSIONLAB_PRESET``, else laptop).
        runs_dir: runs go to ``runs_dir/<grid name>/<run id>/``, the table to
            ``runs_dir/<grid name>/results.csv``.
        executor: ``local`` or ``ray`` (see :mod:`fusionlab.ablate.executors`).
        jobs: runs at a time (local process pool size / CPUs of a local Ray instance).
        notebook: the run notebook (default ``notebooks/run_experiment.ipynb``).
        rows: only these rows (labels or indices); the table still lists every run.
        force: re-execute selected runs even when complete.
        retry_failed: re-execute runs that failed before (default), else leave them.
        cpus_per_run / gpus_per_run: resources per run (Ray) and thread cap of each kernel.
        address: Ray cluster address (``auto``, ``ray://host:10001``); local Ray if None.
        timeout: per-cell timeout in seconds (None: no limit).

    Failing runs do not stop the grid; they are in ``outcome.failed`` and in the table.
    """
    if not isinstance(grid, Grid):
        grid = load_grid(grid)
    from ..resources import require_extra

    require_extra("notebooks", "papermill", "ipykernel")  # every run is a papermill kernel
    preset = preset or get_preset()
    jobs = int(jobs)
    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: need at least 1")
    run_fn = EXECUTORS.get(executor)
    if executor != "ray" and (address or gpus_per_run):
        raise UsageError("--address and --gpus-per-run need --executor ray")
    nb = Path(notebook) if notebook else default_notebook()
    if not nb.is_file():
        raise ConfigError(f"{nb}: run notebook not found")

    runs = expand(grid, preset)
    selected = select_runs(runs, grid, rows)
    grid_dir = Path(runs_dir).resolve() / grid.name
    results_path = grid_dir / RESULTS_FILE
    if cpus_per_run is None:
        cpus_per_run = 1 if (executor == "ray" or jobs > 1) else None
    threads = max(1, int(cpus_per_run)) if cpus_per_run else None
    env = {"FUSIONLAB_PRESET": preset}

    with grid_lock(grid_dir):
        todo: list[RunTask] = []
        for r in selected:
            # a run still held by the papermill process of an interrupted grid is scheduled:
            # execute_run waits for that process and adopts its result instead of rerunning
            busy = not adopt_orphan(grid_dir / r.run_id)
            state = run_state(grid_dir / r.run_id)
            if not busy and ((state == "complete" and not force) or (state == "failed" and not retry_failed
                                                                     and not force)):
                continue
            # resolving and checking here (not in the worker) reports an unset $VAR, a missing
            # dataset or caption file before anything runs, instead of once per failed run
            inject = r.resolved_params(grid)
            check_run_params(inject, grid, r)
            todo.append(RunTask(ablation=grid.name, run_id=r.run_id, label=r.label, row=r.row, seed=r.seed,
                                preset=preset, params=r.params, inject=inject,
                                run_dir=str(grid_dir / r.run_id), notebook=str(nb.resolve()),
                                kernel_name=kernel_name, timeout=timeout, threads=threads, env=env))
        write_results(collect_results(grid, runs, grid_dir), results_path)
        counts = {"ok": 0, "failed": 0}
        bar = _progress(len(todo), grid.name, progress)

        def on_result(task: RunTask, result: dict) -> None:
            counts[result["status"]] = counts.get(result["status"], 0) + 1
            write_results(collect_results(grid, runs, grid_dir), results_path)
            if result["status"] == "failed":  # reported as it happens, the grid goes on
                where = f" at {result['error_cell']}" if result.get("error_cell") else ""
                msg = (f"FAILED {task.label} seed {task.seed} ({task.run_id}){where}: {result['error']} "
                       f"[{Path(task.run_dir) / 'run.ipynb'}]")
                if bar is not None:
                    bar.write(msg, file=sys.stderr)
                else:
                    print(msg, file=sys.stderr)
            if bar is not None:
                bar.set_postfix(counts, refresh=False)
                bar.update(1)

        try:
            if todo:
                options = {"address": address, "gpus_per_run": gpus_per_run or None}
                if executor == "ray":
                    options["cpus_per_run"] = cpus_per_run
                run_fn(todo, on_result, jobs=jobs, **{k: v for k, v in options.items() if v is not None})
        finally:
            if bar is not None:
                bar.close()
        df = collect_results(grid, runs, grid_dir)
        write_results(df, results_path)
    return GridOutcome(grid=grid, preset=preset, grid_dir=grid_dir, results_path=results_path, results=df,
                       total=len(runs), selected=len(selected), executed=len(todo),
                       skipped=len(selected) - len(todo))


def _progress(total: int, name: str, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, unit="run", dynamic_ncols=True)
