"""Executors: where the runs of a grid execute.

Every executor has the same signature::

    executor(tasks: list[RunTask], on_result: Callable[[RunTask, dict], None], jobs: int, **options)

and calls ``on_result(task, result)`` in the calling process as each run finishes (so the
caller can update ``results.csv`` and the progress bar as results arrive).

* ``local``: ``jobs=1`` runs one at a time, ``jobs>1`` keeps ``jobs`` runs going; every run
  is its own ``python -m papermill`` process with one kernel (papermill is fragile with
  several kernels in one process).
* ``ray``: each run is a Ray task with ``cpus_per_run`` CPUs (and ``gpus_per_run`` GPUs);
  ``address`` joins an existing cluster (``"auto"`` or ``"ray://host:10001"``), otherwise
  a local Ray instance with ``jobs`` CPUs is started and shut down afterwards. On a
  cluster, ``runs/`` must be on a filesystem every node sees and fusionlab must be
  installed on every node.
"""
from __future__ import annotations

import os
from typing import Callable

from ..errors import ConfigError, UsageError
from ..registry import Registry
from .runner import RunTask, execute_run

EXECUTORS = Registry("executor")
OnResult = Callable[[RunTask, dict], None]


@EXECUTORS.register("local")
def run_local(tasks: list[RunTask], on_result: OnResult, jobs: int = 1, **options) -> None:
    """Sequential (``jobs=1``) or ``jobs`` runs at a time.

    Each run executes in its own papermill process, so threads are enough here to keep
    ``jobs`` of them going; results come back to this thread in completion order.
    """
    _no_options("local", options)
    if jobs <= 1:
        for task in tasks:
            on_result(task, execute_run(task))
        return
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="fusionlab-run")
    try:
        pending = {pool.submit(execute_run, t): t for t in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                task = pending.pop(fut)
                try:
                    result = fut.result()
                except Exception as e:  # an error outside the notebook (disk full, ...)
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
            _start_local_ray(ray, num_cpus=max(1, int(jobs)), num_gpus=None if gpus_per_run else 0, **kw)
    try:
        # the task only waits for its papermill process: the run's CPUs/GPUs are what it reserves
        remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(execute_run)
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


def _start_local_ray(ray, **kw) -> None:
    """``ray.init`` of a local instance, retried once: Ray gives its raylet a fixed 30 s to
    register, which a heavily loaded machine can miss ("timed out during startup")."""
    try:
        ray.init(**kw)
    except Exception as e:
        if "timed out during startup" not in str(e):
            raise
        ray.shutdown()
        ray.init(**kw)


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
