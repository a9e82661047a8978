"""Training: the text-guided teacher, then distillation into the student.

::

    from fusionlab.train import load_config, train_teacher, distill_student, run_experiment
    cfg = load_config("teacher_ci")                      # preset name or YAML path
    summary = train_teacher(cfg)                         # -> runs/teacher_ci/model.pt
    student = distill_student(load_config("distill_ci"), teacher=summary["model"])
    metrics = run_experiment({"stage": "distill", "preset": "ci"}, "runs/manual/x")

Modules: ``config`` (dataclasses + the YAML configs of ``fusionlab/configs``), ``data`` (deterministic degradation-aware
batches), ``trainer`` (one Trainer for both stages), ``evaluation`` (metrics of fused
pairs, baselines), ``experiment`` (``run_experiment``, what the ablation notebook calls),
``cli`` (shared plumbing of ``fusionlab train`` / ``fusionlab distill``).

Names are imported lazily, so ``import fusionlab.train`` (and ``fusionlab --help``) stays fast.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "config", "DataConfig": "config", "load_config": "config", "list_configs": "config",
    "resolve_config_path": "config",
    "BatchStream": "data", "build_sources": "data", "split_names": "data", "val_items": "data",
    "pair_metrics": "evaluation", "colorize": "evaluation", "baseline": "evaluation",
    "evaluate_fuser": "evaluation", "model_fuser": "evaluation", "score_fusers": "evaluation",
    "compare_features": "evaluation",
    "Trainer": "trainer", "train_teacher": "trainer", "distill_student": "trainer",
    "run_experiment": "experiment", "experiment_config": "experiment",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fusionlab.train' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
