"""Execute one run: the run notebook with papermill, into its own run folder.

Layout of a run folder ``runs/<ablation>/<run_id>/``::

    params.json   what was asked (written first: label, seed, params)
    run.ipynb     the executed notebook (outputs, and the failing cell on failure)
    metrics.json  written by the notebook (fusionlab.train.run_experiment) on success
    status.json   written last: ok | failed (+ error, failing cell, traceback tail)
    ...           whatever the notebook writes (fused samples, checkpoint, log)

A run is *complete* when ``status.json`` says ok, or when there is no ``status.json`` but a
valid ``metrics.json`` (the grid was killed between the two writes). A run is re-executed
from scratch otherwise; its old ``metrics.json``/``status.json`` are removed first so a
stale file can never stand in for a new result.

:func:`execute_run` is a plain top-level function of a picklable :class:`RunTask`, so any
executor (in-process, process pool, Ray task) can call it. It never raises for a failing
notebook: the failure is recorded and returned, and the grid goes on.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import re
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..io import atomic_write_text

PARAMS_FILE = "params.json"
METRICS_FILE = "metrics.json"
STATUS_FILE = "status.json"
NOTEBOOK_FILE = "run.ipynb"
KERNEL_NAME = "python3"
#: Environment variables that cap the math libraries' threads inside a run's kernel.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "FUSIONLAB_THREADS")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class RunTask:
    """Everything a worker needs to execute one run (picklable, no grid object)."""

    ablation: str
    run_id: str
    label: str
    row: int
    seed: int
    preset: str
    params: dict          # as hashed into run_id (paths as written in the grid)
    inject: dict          # as injected into the notebook (paths resolved)
    run_dir: str
    notebook: str
    kernel_name: str = KERNEL_NAME
    timeout: float | None = None      # per cell, seconds
    threads: int | None = None        # math-library threads for the kernel
    env: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- reading
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def flatten_metrics(data: Any) -> dict[str, float]:
    """Numbers of a metrics.json -> flat ``{name: float}``.

    A nested ``"metrics"`` mapping is promoted to the top level (``{"metrics": {"EN": 6.7}}``
    gives ``EN``); other nested mappings are joined with dots (``train.loss``). Strings,
    lists and booleans are skipped (they are not table cells).
    """
    out: dict[str, float] = {}

    def walk(d: dict, prefix: str) -> None:
        for k, v in d.items():
            name = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, "" if (not prefix and k == "metrics") else name + ".")
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out[name] = float(v)

    if isinstance(data, dict):
        walk(data, "")
    return out


def read_metrics(run_dir: str | os.PathLike) -> dict[str, float] | None:
    """Flat numeric metrics of a run, or None when metrics.json is missing/invalid."""
    data = _read_json(Path(run_dir) / METRICS_FILE)
    return flatten_metrics(data) if isinstance(data, dict) else None


def read_status(run_dir: str | os.PathLike) -> dict | None:
    data = _read_json(Path(run_dir) / STATUS_FILE)
    return data if isinstance(data, dict) else None


def run_state(run_dir: str | os.PathLike) -> str:
    """``"complete"``, ``"failed"`` or ``"pending"`` (never started, or interrupted)."""
    status = read_status(run_dir)
    if status is not None:
        if status.get("status") == "ok" and read_metrics(run_dir) is not None:
            return "complete"
        if status.get("status") == "failed":
            return "failed"
    elif read_metrics(run_dir) is not None:
        return "complete"  # killed after the notebook wrote metrics.json, before status.json
    return "pending"


# ----------------------------------------------------------------------------- executing
def _failed_cell(nb: Any) -> tuple[int | None, str]:
    """(execution count, source) of the cell papermill marked as failed/running."""
    for cell in getattr(nb, "cells", []) or []:
        state = cell.get("metadata", {}).get("papermill", {}).get("status")
        if state in ("failed", "running"):
            return cell.get("execution_count"), "".join(cell.get("source", ""))
    return None, ""


def _tail(lines: list[str] | str, n: int = 25) -> str:
    text = "\n".join(lines) if isinstance(lines, list) else str(lines)
    return "\n".join(_ANSI.sub("", text).splitlines()[-n:])


def _one_line(s: str, limit: int = 300) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


@contextlib.contextmanager
def _kernel_env(task: RunTask):
    """Environment the kernel inherits (papermill starts it from os.environ): thread caps +
    task env. Restored afterwards, since sequential runs share this process."""
    new = dict(task.env)
    if task.threads:
        new.update({k: str(task.threads) for k in THREAD_VARS})
    old = {k: os.environ.get(k) for k in new}
    os.environ.update({k: str(v) for k, v in new.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute_run(task: RunTask) -> dict:
    """Run the notebook of one task into ``task.run_dir``; record and return the outcome.

    Returns:
        dict ``run_id``, ``status`` (``ok`` | ``failed``), ``duration_s``, ``error`` (one
        line, empty when ok), ``error_cell`` (``In [n]`` of the failing cell or empty).

    A failing cell, a dead kernel, a timeout or a missing ``metrics.json`` all give
    ``failed``; ``KeyboardInterrupt`` propagates and leaves the run pending.
    """
    import papermill as pm  # heavy (nbclient, zmq): only where a run really executes
    from papermill.exceptions import PapermillExecutionError

    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (STATUS_FILE, METRICS_FILE):
        with contextlib.suppress(FileNotFoundError):
            (run_dir / name).unlink()
    started = _dt.datetime.now(_dt.timezone.utc)
    info = {"ablation": task.ablation, "run_id": task.run_id, "label": task.label, "row": task.row,
            "seed": task.seed, "preset": task.preset, "params": task.params, "injected": task.inject,
            "notebook": task.notebook, "host": socket.gethostname(), "started": started.isoformat(timespec="seconds")}
    atomic_write_text(run_dir / PARAMS_FILE, json.dumps(info, indent=2, sort_keys=True) + "\n")

    # the executed notebook is written under a temporary name and renamed at the end, also
    # on failure (it holds the failing cell's traceback, the most useful debugging record)
    partial = run_dir / f".{NOTEBOOK_FILE}.partial"
    status: dict[str, Any] = {"status": "ok", "error": "", "error_cell": ""}
    t0 = time.perf_counter()
    try:
        with _kernel_env(task):
            pm.execute_notebook(
                task.notebook, str(partial), parameters={**task.inject, "out_dir": str(run_dir.resolve())},
                kernel_name=task.kernel_name, cwd=str(run_dir), progress_bar=False, log_output=False,
                execution_timeout=task.timeout,
                # ipykernel warns about unencrypted TCP on every start: keep the grid's output readable
                extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as e:
        status.update(status="failed", error=_one_line(f"{e.ename}: {e.evalue}"),
                      error_cell=f"In [{e.exec_count}]" if e.exec_count is not None else "",
                      cell_source=str(e.source)[:4000], traceback=_tail(e.traceback))
    except KeyboardInterrupt:
        raise
    except Exception as e:  # dead kernel, cell timeout, missing kernel, unreadable notebook
        nb = None
        with contextlib.suppress(Exception):
            import nbformat

            nb = nbformat.read(str(partial), as_version=4)
        count, source = _failed_cell(nb)
        status.update(status="failed", error=_one_line(f"{type(e).__name__}: {e}"),
                      error_cell=f"In [{count}]" if count is not None else "", cell_source=source[:4000],
                      traceback="")
    finally:
        if partial.exists():
            os.replace(partial, run_dir / NOTEBOOK_FILE)
    if status["status"] == "ok" and read_metrics(run_dir) is None:
        status.update(status="failed", error=f"the notebook finished but wrote no valid {METRICS_FILE} in {run_dir}")
    status["duration_s"] = round(time.perf_counter() - t0, 3)
    status["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    atomic_write_text(run_dir / STATUS_FILE, json.dumps(status, indent=2, sort_keys=True) + "\n")
    return {"run_id": task.run_id, "status": status["status"], "duration_s": status["duration_s"],
            "error": status["error"], "error_cell": status["error_cell"]}


def task_dict(task: RunTask) -> dict:
    return asdict(task)


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
