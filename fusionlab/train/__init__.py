"""Training: the text-guided teacher, then distillation into the student.

::

    from fusionlab.train import load_config, train_teacher, distill_student, run_experiment
    cfg = load_config("teacher_ci")                      # preset name or YAML path
    summary = train_teacher(cfg)                         # -> runs/.../model.pt
    student = distill_student(load_config("distill_ci"), teacher=summary["model"])
    metrics = run_experiment({"stage": "distill", "preset": "ci"}, "runs/manual/x")

Modules: ``config`` (dataclasses + YAML presets), ``data`` (deterministic degradation-aware
batches), ``trainer`` (one Trainer for both stages), ``evaluation`` (metrics of fused
pairs, baselines), ``experiment`` (``run_experiment``, what the ablation notebook calls).
"""
from .config import DataConfig, TrainConfig, list_presets, load_config, resolve_config_path
from .data import BatchStream, build_sources, split_names, val_items
from .evaluation import baseline, colorize, evaluate_fuser, model_fuser, pair_metrics
from .experiment import PARAM_KEYS, experiment_config, run_experiment
from .trainer import Trainer, distill_student, train_teacher

__all__ = [
    "TrainConfig", "DataConfig", "load_config", "list_presets", "resolve_config_path",
    "BatchStream", "build_sources", "split_names", "val_items",
    "pair_metrics", "colorize", "baseline", "evaluate_fuser", "model_fuser",
    "Trainer", "train_teacher", "distill_student", "run_experiment", "experiment_config", "PARAM_KEYS",
]
