"""Execute one run: the run notebook with papermill, into its own run folder.

Layout of a run folder ``runs/<ablation>/<run_id>/``::

    params.json    what was asked (written first: label, seed, params)
    run.ipynb      the executed notebook (outputs, and the failing cell on failure)
    papermill.log  output of the papermill process and its kernel
    metrics.json   written by the notebook (fusionlab.train.run_experiment) on success
    status.json    written last: ok | failed (+ error, failing cell, traceback tail)
    ...            whatever the notebook writes (fused samples, checkpoint, log)

A run is *complete* when ``status.json`` says ok, or when there is no ``status.json`` but a
valid ``metrics.json`` (the grid was killed between the two writes). A run is re-executed
from scratch otherwise; its old ``metrics.json``/``status.json`` are removed first so a
stale file can never stand in for a new result.

:func:`execute_run` is a plain top-level function of a picklable :class:`RunTask`, so any
executor (a thread here, a Ray task elsewhere) can call it. It never raises for a failing
notebook: the failure is recorded and returned, and the grid goes on.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..dirs import file_lock
from ..io import atomic_write_text

PARAMS_FILE = "params.json"
METRICS_FILE = "metrics.json"
STATUS_FILE = "status.json"
NOTEBOOK_FILE = "run.ipynb"
PARTIAL_NOTEBOOK = ".partial.run.ipynb"   # papermill's output while running (needs an .ipynb suffix)
LOG_FILE = "papermill.log"                # stdout/stderr of the papermill process and its kernel
KERNEL_NAME = "python3"
#: papermill exit codes of a run stopped from outside (SIGINT/SIGTERM/SIGKILL, shell 128+n)
INTERRUPTED = (-2, -9, -15, 130, 137, 143)
#: Top-level keys of metrics.json that are not results (run_experiment echoes its params).
SKIP_METRIC_KEYS = ("params", "per_image")
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
    gives ``EN``); other nested mappings are joined with dots (``train.teacher.seconds``).
    Strings, lists, booleans and the echoed ``params`` are skipped (not table cells; the
    params have their own column).
    """
    out: dict[str, float] = {}

    def walk(d: dict, prefix: str) -> None:
        for k, v in d.items():
            if not prefix and k in SKIP_METRIC_KEYS:
                continue
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
def notebook_error(nb_path: str | os.PathLike) -> dict | None:
    """The first error of an executed notebook: ``ename``, ``evalue``, ``traceback`` (ANSI
    stripped, last lines), ``cell`` (``In [n]``) and ``source``; None when it holds none."""
    nb = _read_json(Path(nb_path))
    if not isinstance(nb, dict):
        return None
    running = None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        count = cell.get("execution_count")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return {"ename": out.get("ename", "Error"), "evalue": str(out.get("evalue", "")),
                        "traceback": _tail(out.get("traceback", [])), "cell": f"In [{count}]" if count else "",
                        "source": "".join(cell.get("source", ""))}
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running" and running is None:
            running = {"ename": "", "evalue": "", "traceback": "", "cell": f"In [{count}]" if count else "",
                       "source": "".join(cell.get("source", ""))}
    return running  # killed / timed out / dead kernel inside this cell


def _tail(lines: list[str] | str, n: int = 25) -> str:
    text = "\n".join(lines) if isinstance(lines, list) else str(lines)
    return "\n".join(_ANSI.sub("", text).splitlines()[-n:])


def _one_line(s: str, limit: int = 300) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _last_error_line(log: str) -> str:
    """The most telling line of papermill's stderr (the exception line, else the last line)."""
    lines = [ln.strip() for ln in _ANSI.sub("", log).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt)\b", ln):
            return ln
    return lines[-1] if lines else "no output"


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Exclusive lock on ``run_dir/.lock``, waiting if it is held; yields the lock's fd.

    The papermill process inherits the fd, so the lock stays held while a run executes even
    if the grid process that started it was killed: a restarted grid waits for such an
    orphaned run instead of executing it a second time in the same folder.
    """
    with file_lock(run_dir / ".lock") as fd:
        yield fd


def _finish_orphan(run_dir: Path) -> None:
    """A run completed by an orphaned papermill process: keep its notebook, record it ok."""
    partial = run_dir / PARTIAL_NOTEBOOK
    if partial.exists():
        os.replace(partial, run_dir / NOTEBOOK_FILE)
    if read_status(run_dir) is None:
        atomic_write_text(run_dir / STATUS_FILE, json.dumps(
            {"status": "ok", "error": "", "error_cell": "", "duration_s": None,
             "note": "completed by a run started before the grid was interrupted"}, indent=2) + "\n")


def adopt_orphan(run_dir: Path) -> bool:
    """Record a run that an interrupted grid's papermill process completed (metrics.json but
    no status.json) as ok; True if done or nothing to adopt, False while that process still
    holds the run's lock (then :func:`execute_run` waits for it and adopts the run)."""
    if read_status(run_dir) is not None or read_metrics(run_dir) is None:
        return True
    try:
        with file_lock(run_dir / ".lock", blocking=False):
            _finish_orphan(run_dir)
        return True
    except BlockingIOError:
        return False


def papermill_command(task: RunTask, output: Path) -> list[str]:
    """``python -m papermill`` command line of a task (parameters as base64 YAML)."""
    params = yaml.safe_dump({**task.inject, "out_dir": str(Path(task.run_dir).resolve())}, sort_keys=True)
    cmd = [sys.executable, "-m", "papermill", task.notebook, str(output), "-b",
           base64.b64encode(params.encode()).decode(), "-k", task.kernel_name, "--cwd", str(task.run_dir),
           "--no-progress-bar", "--no-log-output", "--log-level", "ERROR"]
    if task.timeout:
        cmd += ["--execution-timeout", str(int(task.timeout))]
    return cmd


def execute_run(task: RunTask) -> dict:
    """Run the notebook of one task into ``task.run_dir``; record and return the outcome.

    The notebook executes in its own ``python -m papermill`` process (one kernel per
    process, as papermill needs; light, since this process's imports are not repeated).

    Returns:
        dict ``run_id``, ``status`` (``ok`` | ``failed`` | ``interrupted``), ``duration_s``,
        ``error`` (one line, empty when ok), ``error_cell`` (``In [n]`` of the failing cell).

    A failing cell, a dead kernel, a timeout or a missing ``metrics.json`` all give
    ``failed``; ``KeyboardInterrupt`` stops the papermill process and propagates (the run
    stays pending).
    """
    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir) as lock_fd:
        if run_state(run_dir) == "complete" and read_status(run_dir) is None:
            _finish_orphan(run_dir)  # we waited for an orphaned execution of this very run
            return {"run_id": task.run_id, "status": "ok", "duration_s": None, "error": "", "error_cell": ""}
        for name in (STATUS_FILE, METRICS_FILE, PARTIAL_NOTEBOOK):
            with contextlib.suppress(FileNotFoundError):
                (run_dir / name).unlink()
        started = _dt.datetime.now(_dt.timezone.utc)
        info = {"ablation": task.ablation, "run_id": task.run_id, "label": task.label, "row": task.row,
                "seed": task.seed, "preset": task.preset, "params": task.params, "injected": task.inject,
                "notebook": task.notebook, "host": socket.gethostname(),
                "started": started.isoformat(timespec="seconds")}
        atomic_write_text(run_dir / PARAMS_FILE, json.dumps(info, indent=2, sort_keys=True) + "\n")

        env = {**os.environ, **{k: str(v) for k, v in task.env.items()}}
        if task.threads:
            env.update({k: str(task.threads) for k in THREAD_VARS})
        # the executed notebook is written under a temporary name and renamed at the end, also
        # on failure (it holds the failing cell's traceback, the most useful debugging record)
        partial = run_dir / PARTIAL_NOTEBOOK
        t0 = time.perf_counter()
        with open(run_dir / LOG_FILE, "w") as log:
            proc = subprocess.run(papermill_command(task, partial), env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, pass_fds=(lock_fd,))
        duration = round(time.perf_counter() - t0, 3)
        status: dict[str, Any] = {"status": "ok", "error": "", "error_cell": ""}
        err = (notebook_error(partial) or {}) if proc.returncode != 0 else {}
        if proc.returncode in INTERRUPTED or err.get("ename") == "KeyboardInterrupt":
            # Ctrl-C / kill reached the papermill process: not a failure of the run, it stays
            # pending (no status.json) and the next grid executes it again
            if partial.exists():
                os.replace(partial, run_dir / NOTEBOOK_FILE)
            return {"run_id": task.run_id, "status": "interrupted", "duration_s": duration,
                    "error": "interrupted", "error_cell": err.get("cell", "")}
        if proc.returncode != 0:
            if err.get("ename"):
                message = f"{err['ename']}: {err['evalue']}"
            else:  # no error output: kernel died, timeout, notebook unreadable, no such kernel
                message = _last_error_line((run_dir / LOG_FILE).read_text(errors="replace"))
            status.update(status="failed", error=_one_line(message), error_cell=err.get("cell", ""),
                          cell_source=err.get("source", "")[:4000], traceback=err.get("traceback", ""),
                          returncode=proc.returncode)
        if partial.exists():
            os.replace(partial, run_dir / NOTEBOOK_FILE)
        if status["status"] == "ok" and read_metrics(run_dir) is None:
            status.update(status="failed", error=f"the notebook finished but wrote no valid {METRICS_FILE}")
        status["duration_s"] = duration
        status["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        atomic_write_text(run_dir / STATUS_FILE, json.dumps(status, indent=2, sort_keys=True) + "\n")
    return {"run_id": task.run_id, "status": status["status"], "duration_s": duration, "error": status["error"],
            "error_cell": status["error_cell"]}
