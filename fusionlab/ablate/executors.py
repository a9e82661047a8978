"""Executors: where the runs of a grid execute.

Every executor has the same signature::

    executor(tasks: list[RunTask], on_result: Callable[[RunTask, dict], None], jobs: int, **options)

and calls ``on_result(task, result)`` in the calling process as each run finishes (so the
caller can update ``results.csv`` and the progress bar as results arrive).

* ``local``: ``jobs=1`` runs sequentially in this process; ``jobs>1`` uses a process pool
  with a fresh process per run (papermill is fragile with several kernels in one process).
* ``ray``: each run is a Ray task with ``cpus_per_run`` CPUs (and ``gpus_per_run`` GPUs);
  ``address`` joins an existing cluster (``"auto"`` or ``"ray://host:10001"``), otherwise
  a local Ray instance with ``jobs`` CPUs is started and shut down afterwards. On a
  cluster, ``runs/`` must be on a filesystem every node sees and fusionlab must be
  installed on every node.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Callable

from ..errors import ConfigError, UsageError
from ..registry import Registry
from .runner import RunTask, execute_run

EXECUTORS = Registry("executor")
OnResult = Callable[[RunTask, dict], None]


def _die_with_parent() -> None:
    """Pool-worker initializer: on Linux, get SIGKILL when the grid process dies, so a killed
    ``fusionlab ablate`` leaves no worker (and, through ipykernel's parent poller, no kernel)
    running a run that the restarted grid will execute again."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


@EXECUTORS.register("local")
def run_local(tasks: list[RunTask], on_result: OnResult, jobs: int = 1, **options) -> None:
    """Sequential (``jobs=1``) or a pool of ``jobs`` processes, one process per run."""
    _no_options("local", options)
    if jobs <= 1:
        for task in tasks:
            on_result(task, execute_run(task))
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # spawn (not fork): the parent may hold threads (tqdm, zmq) that fork would copy broken;
    # max_tasks_per_child=1: each run gets a fresh process and therefore a single kernel
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                               initializer=_die_with_parent, max_tasks_per_child=1)
    try:
        pending = {pool.submit(execute_run, t): t for t in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                task = pending.pop(fut)
                try:
                    result = fut.result()
                except Exception as e:  # the worker process itself died (OOM kill, segfault)
                    result = _crashed(task, e)
                on_result(task, result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@EXECUTORS.register("ray")
def run_ray(tasks: list[RunTask], on_result: OnResult, jobs: int = 1, address: str | None = None,
            cpus_per_run: float = 1, gpus_per_run: float = 0, **options) -> None:
    """Each run as a Ray task; local Ray instance with ``jobs`` CPUs unless ``address`` is given."""
    _no_options("ray", options)
    try:
        import ray
    except ImportError:
        raise UsageError("the ray executor needs Ray: pip install 'fusionlab[ray]'") from None
    if cpus_per_run <= 0 or gpus_per_run < 0:
        raise ConfigError(f"cpus_per_run={cpus_per_run}, gpus_per_run={gpus_per_run}: need > 0 CPUs and >= 0 GPUs")

    started_here = not ray.is_initialized()
    if started_here:
        # the workers must import fusionlab and see the same offline/preset settings as here
        env = {k: v for k, v in os.environ.items() if k.startswith(("FUSIONLAB_", "HF_", "TRANSFORMERS_"))}
        kw = dict(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env} if env else None)
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=max(1, int(jobs)), num_gpus=None if gpus_per_run else 0, **kw)
    try:
        # max_calls=1: a fresh worker process per run, so one kernel per process (as papermill needs)
        remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_calls=1)(execute_run)
        refs = {remote.remote(t): t for t in tasks}
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    task = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as e:  # worker died / task error outside the notebook
                        result = _crashed(task, e)
                    on_result(task, result)
        except BaseException:
            for ref in refs:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished or gone
                    pass
            raise
    finally:
        if started_here:
            ray.shutdown()


def _crashed(task: RunTask, e: BaseException) -> dict:
    """Result of a run whose worker process died before execute_run could record anything."""
    import json

    from ..io import atomic_write_text
    from .runner import STATUS_FILE

    error = " ".join(f"worker crashed: {type(e).__name__}: {e}".split())[:300]
    status = {"status": "failed", "error": error, "error_cell": "", "duration_s": 0.0}
    atomic_write_text(os.path.join(task.run_dir, STATUS_FILE), json.dumps(status, indent=2) + "\n")
    return {"run_id": task.run_id, **status}


def _no_options(name: str, options: dict) -> None:
    extra = {k: v for k, v in options.items() if v is not None}
    if extra:
        raise UsageError(f"the {name} executor does not take {', '.join(sorted(extra))}")
