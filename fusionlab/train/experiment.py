"""``run_experiment(params, out_dir)``: one row of an ablation table, end to end.

It is what ``notebooks/run_experiment.ipynb`` calls for every run of a grid
(``fusionlab ablate``): validate the params, build the configs of the preset, train (stage
``distill``: train or reuse a cached teacher first, then distil the student), evaluate on
pairs never used for training, and write into ``out_dir``:

* ``metrics.json``: ``{"metrics": {EN, SD, ..., PSNR}, "per_image": [...], "params": ...,
  "train": {...}}`` (written last and atomically: its presence means the run completed);
* ``samples/<name>.png``: fused images of the first evaluation pairs (visible colours kept);
* ``model.pt`` (the trained network), ``checkpoint.pt`` (resumable state),
  ``train_log.csv``, ``config.yaml``.

Params: :class:`fusionlab.params.RunParams` (all optional; unknown keys or bad values raise
a one-line ConfigError); sizes come from the preset (:data:`fusionlab.presets.PRESET_SETTINGS`).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from ..dirs import cache_dir, file_lock
from ..errors import CheckpointError, ConfigError
from ..io import atomic_write_text
from ..params import RunParams
from ..presets import preset_settings
from .config import DataConfig, TrainConfig
from .data import SYNTHETIC, split_names

#: evaluation scenes of the synthetic generator: disjoint from training (1000..) and validation (100000..)
SYNTHETIC_EVAL_SEED0 = 200_000


def _run_params(params: dict | RunParams) -> RunParams:
    """The params of a run, checked and with defaults (:meth:`RunParams.from_dict`)."""
    return params if isinstance(params, RunParams) else RunParams.from_dict(params)


def _same_folder(a: str, b: str) -> bool:
    return a != SYNTHETIC and b != SYNTHETIC and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def experiment_config(params: dict | RunParams, out_dir: str | os.PathLike, stage: str | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of one stage of a run (validated params, preset applied).

    For a teacher with ``text_prior: projector`` and no ``text_checkpoint`` this trains the
    preset's default projector on first use (:func:`cached_projector`)."""
    p = _run_params(params)
    stage = stage or p.stage
    s = preset_settings(p.preset)
    fields = s.train_fields(stage)
    eval_pairs = p.eval_pairs or s.eval_pairs
    holdout = eval_pairs if any(_same_folder(d, p.eval_data) for d in p.data) else 0
    fields["data"].update(train=list(p.data), val=["holdout"] if holdout else [SYNTHETIC], holdout=holdout)
    fields.update(stage=stage, seed=p.seed, out_dir=str(out_dir), progress=False, lr=1e-4,
                  data=DataConfig(**fields["data"]))
    if p.losses:
        fields["losses"] = list(p.losses)
    net_args = {"fusion": p.fusion} if p.fusion else {}
    if stage == "teacher":
        if p.text_prior == "none":
            net_args["text_dim"] = None  # the non-text teacher (Table 3)
        if p.stage == "teacher" and p.width:
            net_args["dim"] = p.width
        text_args = {"caption_file": p.caption_file} if p.caption_file else {}
        if p.text_prior == "projector":  # only the teacher sees text: resolve (or train) its projector here
            text_args["checkpoint"] = p.text_checkpoint or str(cached_projector(p.preset, p.seed))
        fields.update(model=p.model or s.model, model_args={**fields["model_args"], **net_args},
                      text_prior=p.text_prior, text_args=text_args)
        return TrainConfig(**fields)
    if p.width:
        net_args["dim"] = p.width
    fields.update(student=p.student or s.student, student_args=net_args, text_prior="none",
                  distill_losses=list(p.distill_losses) if p.distill_losses else None, teacher="<cached teacher>")
    return TrainConfig(**fields)


def teacher_key(cfg: TrainConfig) -> str:
    """Hash of everything that determines a teacher (not where it is written or logged)."""
    d = cfg.to_dict()
    for k in ("out_dir", "progress", "log_every", "val_every", "ckpt_every", "max_minutes", "device", "threads"):
        d.pop(k, None)
    blob = json.dumps(d, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def teacher_cache_dir() -> Path:
    """``<cache_dir>/teachers`` (``$FUSIONLAB_CACHE``, see :mod:`fusionlab.dirs`)."""
    return cache_dir() / "teachers"


def cached_teacher(cfg: TrainConfig) -> tuple[Path, dict]:
    """Train the teacher of ``cfg`` (or reuse it) under the cache; returns ``(model.pt, summary)``."""
    from .trainer import Trainer

    key = teacher_key(cfg)
    folder = teacher_cache_dir() / key
    final = folder / "model.pt"
    with file_lock(teacher_cache_dir() / f"{key}.lock"):  # parallel runs train it once
        if final.is_file():
            return final, {"cached": True, "key": key}
        cfg = cfg.replace(out_dir=str(folder))
        resume = (folder / "checkpoint.pt").is_file()
        try:
            summary = Trainer(cfg, resume=resume, overwrite=True).fit()
        except (ConfigError, CheckpointError):
            if not resume:
                raise
            summary = Trainer(cfg, resume=False, overwrite=True).fit()  # stale partial run: start over
        summary.update(cached=False, key=key)
        return final, summary


def cached_projector(preset: str, seed: int = 0, text_dim: int = 512) -> Path:
    """The default caption-free projector of ``preset`` (trained once, then reused).

    Trained on synthetic degraded pairs against the ``oracle`` prior's embeddings (the
    default ``text_prior``), so the ``projector`` row of the text-prior ablation compares
    like with like; saved as ``$FUSIONLAB_CACHE/projectors/<preset>-s<seed>-d<dim>.pt``.
    """
    from ..text.projector import save_projector, train_projector

    folder = cache_dir() / "projectors"
    path = folder / f"{preset}-s{seed}-d{text_dim}.pt"
    with file_lock(folder / f"{path.stem}.lock"):
        if path.is_file():
            return path
        s = preset_settings(preset)  # ci: seconds, laptop: ~1 min
        proj, history = train_projector(text_dim=text_dim, seed=seed, steps=s.projector_steps,
                                        n_pairs=s.projector_pairs, batch_size=s.projector_batch)
        save_projector(path, proj, metadata={"preset": preset, "seed": seed, "history": history[-1:]})
    return path


# ----------------------------------------------------------------------------- evaluation data
def eval_items(params: dict | RunParams) -> list[dict]:
    """Evaluation pairs: ``{ir (1,1,H,W), vi (1,3|1,H,W), name}`` never used in training."""
    from ..data import PairedFolder, SyntheticPairs
    from .data import val_items

    p = _run_params(params)
    s = preset_settings(p.preset)
    n = p.eval_pairs or s.eval_pairs
    if p.eval_data == SYNTHETIC:
        ds = SyntheticPairs(n, s.eval_size, SYNTHETIC_EVAL_SEED0, with_reference=False)
        return val_items([ds], n, s.eval_crop)
    folder = Path(p.eval_data).expanduser()
    names = PairedFolder(folder).names
    if any(_same_folder(d, p.eval_data) for d in p.data):
        names = split_names(names, n)[1]  # the pairs the training split held out
    ds = PairedFolder(folder, names=names[:n])
    return val_items([ds], n, s.eval_crop)


# ----------------------------------------------------------------------------- the run
def run_experiment(params: dict | RunParams, out_dir: str | os.PathLike) -> dict:
    """Train and evaluate one configuration; returns what ``metrics.json`` holds.

    See the module docstring for the params and the files written. Re-running into the same
    ``out_dir`` resumes an interrupted run when the config matches, else starts over.
    """
    from ..metrics import METRIC_NAMES
    from .evaluation import evaluate_fuser, model_fuser
    from .trainer import Trainer, torch_threads

    t_start = time.perf_counter()
    p = _run_params(params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_info: dict[str, Any] = {}
    teacher_path = None
    if p.stage == "distill":
        teacher_path, tsum = cached_teacher(experiment_config(p, out, stage="teacher"))
        train_info["teacher"] = {k: v for k, v in tsum.items() if k in ("steps", "seconds", "cached", "key", "val")}
        train_info["teacher"]["checkpoint"] = str(teacher_path)
    cfg = experiment_config(p, out)
    if teacher_path is not None:
        cfg = cfg.replace(teacher=str(teacher_path))
    resume = (out / "checkpoint.pt").is_file()
    try:
        trainer = Trainer(cfg, resume=resume, overwrite=True)
    except (ConfigError, CheckpointError):
        if not resume:
            raise
        trainer = Trainer(cfg, resume=False, overwrite=True)
    summary = trainer.fit()
    train_info[cfg.stage] = {k: summary[k] for k in ("steps", "seconds", "val")}

    items = eval_items(p)
    with torch_threads(None):
        fuse = model_fuser(trainer.model, trainer.prior, trainer.device, preset_settings(p.preset).eval_tile)
        mean, per_image = evaluate_fuser(fuse, items, METRIC_NAMES, samples_dir=out / "samples")
    result = {"metrics": mean, "per_image": per_image, "params": p.to_dict(), "stage": p.stage,
              "model": trainer.model.name, "eval": {"data": p.eval_data, "pairs": len(items)},
              "train": train_info, "checkpoint": summary["model"],
              "seconds": round(time.perf_counter() - t_start, 2)}
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2, default=_json_default, allow_nan=True))
    return result


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    return str(o)
