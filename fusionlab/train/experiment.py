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

Params (all optional; unknown keys or bad values raise ConfigError):

==================  ==========================================================================
``stage``           ``teacher`` (default) or ``distill``
``model``           teacher model name (default: the preset's)
``student``         student model name (stage ``distill``; default: the preset's)
``fusion``          fusion module of the trained network(s) (``scfm``, ``concat_conv1x1``, ...)
``width``           channel width of the trained network (the student in stage ``distill``)
``text_prior``      none | rules | oracle | file | projector | constant | shuffled (default oracle;
                    ``none`` also removes the teacher's text branch: the non-text teacher)
``caption_file``    captions for ``file`` / ``shuffled``
``text_checkpoint`` trained projector for ``projector`` (``fusionlab.text.save_projector``);
                    default: a projector trained on synthetic oracle captions with the
                    preset's schedule, cached under ``$FUSIONLAB_CACHE/projectors``
``losses``          subset of int / grad / ssim / color / consistency
``distill_losses``  subset of base / feat / res
``preset``          ci | laptop | full (default ``$FUSIONLAB_PRESET``)
``seed``            int
``data``            ``"synthetic"`` or a dataset folder (or a list of them)
``eval_data``       ``"synthetic"`` (default: held-out scenes) or a folder; if it is also a
                    training folder, its evaluation pairs are held out of training
``eval_pairs``      number of evaluation pairs (default: the preset's)
==================  ==========================================================================
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
from ..presets import PRESETS, get_preset
from .config import DataConfig, TrainConfig
from .data import SYNTHETIC, split_names

PARAM_KEYS: tuple[str, ...] = ("stage", "model", "student", "fusion", "width", "text_prior", "caption_file",
                               "text_checkpoint",
                               "losses", "distill_losses", "preset", "seed", "data", "eval_data", "eval_pairs")
#: evaluation scenes of the synthetic generator: disjoint from training (1000..) and validation (100000..)
SYNTHETIC_EVAL_SEED0 = 200_000

#: what a preset sets: models, schedule, crops, data size, evaluation size
PRESET_SETTINGS: dict[str, dict[str, Any]] = {
    # seconds on 2 CPU cores; tiny variants, still every component (text prior, FiLM,
    # degradations, every loss, adapters, validation, checkpoints) runs
    "ci": dict(model="dtpf_teacher_tiny", student="dtpf_student_tiny", teacher_args={}, steps=8, distill_steps=8,
               crop=48, batch=2, synthetic_train=8, synthetic_size=64, val_pairs=1, val_crop=64, val_every=0,
               ckpt_every=0, log_every=2, eval_pairs=2, eval_size=96, eval_crop=96, eval_tile=None),
    # a few minutes on a laptop CPU: small models, short schedule
    "laptop": dict(model="dtpf_teacher_tiny", student="dtpf_student_tiny", teacher_args={"dim": 16}, steps=150,
                   distill_steps=150, crop=64, batch=4, synthetic_train=64, synthetic_size=128, val_pairs=2,
                   val_crop=128, val_every=50, ckpt_every=50, log_every=10, eval_pairs=4, eval_size=256,
                   eval_crop=256, eval_tile=None),
    # the paper's settings (GPU): full models, 128 crops, batch 4, long schedule
    "full": dict(model="dtpf_teacher", student="dtpf_student", teacher_args={}, steps=100_000,
                 distill_steps=100_000, crop=128, batch=4, synthetic_train=2048, synthetic_size=256, val_pairs=8,
                 val_crop=256, val_every=2000, ckpt_every=1000, log_every=50, eval_pairs=20, eval_size=256,
                 eval_crop=None, eval_tile=512),
}


# ----------------------------------------------------------------------------- params
def _as_list(v, key: str) -> list[str]:
    if isinstance(v, str):
        v = [s.strip() for s in v.split(",") if s.strip()]
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"params: {key}={v!r} must be a list of names")
    return list(v)


def validate_params(params: dict) -> dict:
    """Check types and values; returns the params with defaults filled in."""
    from ..losses import DISTILL_LOSS_NAMES, LOSS_NAMES
    from ..models import FUSION_MODULES, list_models
    from ..text import SOURCES

    if not isinstance(params, dict):
        raise ConfigError(f"params must be a dict, got {type(params).__name__}")
    unknown = [k for k in params if k not in PARAM_KEYS]
    if unknown:
        raise ConfigError(f"params: unknown key {unknown[0]!r} (known: {', '.join(PARAM_KEYS)})")
    p = {k: v for k, v in params.items() if v is not None}
    p.setdefault("stage", "teacher")
    p.setdefault("preset", get_preset())
    p.setdefault("seed", 0)
    p.setdefault("text_prior", "oracle")
    p.setdefault("data", SYNTHETIC)
    p.setdefault("eval_data", SYNTHETIC)

    def need(key, ok, what):
        if not ok:
            raise ConfigError(f"params: {key}={p[key]!r} {what}")

    need("stage", p["stage"] in ("teacher", "distill"), "must be teacher or distill")
    need("preset", p["preset"] in PRESETS, f"must be one of {', '.join(PRESETS)}")
    need("seed", isinstance(p["seed"], int) and not isinstance(p["seed"], bool), "must be an integer")
    for key in ("model", "student"):
        if key in p:
            need(key, isinstance(p[key], str) and p[key] in list_models(), f"is not a model ({', '.join(list_models())})")
    if "fusion" in p:
        need("fusion", isinstance(p["fusion"], str) and p["fusion"] in FUSION_MODULES,
             f"is not a fusion module ({', '.join(FUSION_MODULES.names())})")
    if "width" in p:
        need("width", isinstance(p["width"], int) and not isinstance(p["width"], bool) and p["width"] >= 2
             and p["width"] % 2 == 0, "must be an even integer >= 2 (e.g. 16, 32, 48)")
    need("text_prior", p["text_prior"] in SOURCES, f"must be one of {', '.join(SOURCES)}")
    if "caption_file" in p:
        need("caption_file", isinstance(p["caption_file"], str) and Path(p["caption_file"]).is_file(),
             "is not an existing file")
    if "text_checkpoint" in p:
        need("text_checkpoint", isinstance(p["text_checkpoint"], str) and Path(p["text_checkpoint"]).is_file(),
             "is not an existing file")
    if p["text_prior"] == "file" and "caption_file" not in p:
        raise ConfigError("params: text_prior='file' needs caption_file")
    for key, allowed in (("losses", LOSS_NAMES), ("distill_losses", DISTILL_LOSS_NAMES)):
        if key in p:
            p[key] = _as_list(p[key], key)
            bad = [x for x in p[key] if x not in allowed]
            need(key, p[key] and not bad, f"must be a non-empty subset of {', '.join(allowed)}")
    data = [p["data"]] if isinstance(p["data"], str) else p["data"]
    if not isinstance(data, (list, tuple)) or not data or not all(isinstance(x, str) for x in data):
        raise ConfigError(f"params: data={p['data']!r} must be 'synthetic', a folder, or a list of them")
    for d in data:
        if d != SYNTHETIC and not Path(d).expanduser().is_dir():
            raise ConfigError(f"params: data: {d} is not 'synthetic' nor an existing folder")
    p["data"] = list(data)
    need("eval_data", isinstance(p["eval_data"], str) and (p["eval_data"] == SYNTHETIC
                                                             or Path(p["eval_data"]).expanduser().is_dir()),
         "must be 'synthetic' or an existing folder")
    if "eval_pairs" in p:
        need("eval_pairs", isinstance(p["eval_pairs"], int) and not isinstance(p["eval_pairs"], bool)
             and p["eval_pairs"] >= 1, "must be an integer >= 1")
    return p


def _same_folder(a: str, b: str) -> bool:
    return a != SYNTHETIC and b != SYNTHETIC and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def experiment_config(params: dict, out_dir: str | os.PathLike, stage: str | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of one stage of a run (validated params, preset applied).

    For a teacher with ``text_prior: projector`` and no ``text_checkpoint`` this trains the
    preset's default projector on first use (:func:`cached_projector`)."""
    p = validate_params(params)
    stage = stage or p["stage"]
    s = PRESET_SETTINGS[p["preset"]]
    eval_pairs = p.get("eval_pairs", s["eval_pairs"])
    holdout = eval_pairs if any(_same_folder(d, p["eval_data"]) for d in p["data"]) else 0
    data = DataConfig(train=list(p["data"]), val=["holdout"] if holdout else [SYNTHETIC], holdout=holdout,
                      synthetic_train=s["synthetic_train"], synthetic_val=s["val_pairs"],
                      synthetic_size=s["synthetic_size"], crop=s["crop"], batch=s["batch"],
                      val_pairs=s["val_pairs"], val_crop=s["val_crop"])
    text_prior = p["text_prior"]
    teacher_args = dict(s["teacher_args"])
    if text_prior == "none":
        teacher_args["text_dim"] = None  # the non-text teacher (Table 3)
    if "fusion" in p:
        teacher_args["fusion"] = p["fusion"]
    common = dict(seed=p["seed"], out_dir=str(out_dir), progress=False, log_every=s["log_every"],
                  val_every=s["val_every"], ckpt_every=s["ckpt_every"], data=data, lr=1e-4)
    if p.get("losses"):
        common["losses"] = p["losses"]
    if stage == "teacher":
        if p["stage"] == "teacher" and "width" in p:
            teacher_args["dim"] = p["width"]
        text_args = {k: p[k] for k in ("caption_file",) if k in p}
        if text_prior == "projector":  # only the teacher sees text: resolve (or train) its projector here
            text_args["checkpoint"] = p.get("text_checkpoint") or str(cached_projector(p["preset"], p["seed"]))
        return TrainConfig(stage="teacher", model=p.get("model", s["model"]), model_args=teacher_args,
                           text_prior=text_prior, text_args=text_args, steps=s["steps"], **common)
    student_args = {}
    if "width" in p:
        student_args["dim"] = p["width"]
    if "fusion" in p:
        student_args["fusion"] = p["fusion"]
    return TrainConfig(stage="distill", student=p.get("student", s["student"]), student_args=student_args,
                       distill_losses=p.get("distill_losses"), text_prior="none", steps=s["distill_steps"],
                       teacher="<cached teacher>", **common)


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


#: projector schedule per preset (steps, pool of synthetic pairs); ci: seconds, laptop: ~1 min
PROJECTOR_SCHEDULE: dict[str, dict[str, int]] = {
    "ci": dict(steps=30, n_pairs=16, batch_size=12),
    "laptop": dict(steps=200, n_pairs=32, batch_size=24),
    "full": dict(steps=1000, n_pairs=128, batch_size=32),
}


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
        sched = PROJECTOR_SCHEDULE[preset]
        proj, history = train_projector(text_dim=text_dim, seed=seed, **sched)
        save_projector(path, proj, metadata={"preset": preset, "seed": seed, "history": history[-1:]})
    return path


# ----------------------------------------------------------------------------- evaluation data
def eval_items(p: dict) -> list[dict]:
    """Evaluation pairs: ``{ir (1,1,H,W), vi (1,3|1,H,W), name}`` never used in training."""
    from ..data import PairedFolder, SyntheticPairs
    from .data import val_items

    s = PRESET_SETTINGS[p["preset"]]
    n = p.get("eval_pairs", s["eval_pairs"])
    if p["eval_data"] == SYNTHETIC:
        ds = SyntheticPairs(n, s["eval_size"], SYNTHETIC_EVAL_SEED0, with_reference=False)
        return val_items([ds], n, s["eval_crop"])
    folder = Path(p["eval_data"]).expanduser()
    names = PairedFolder(folder).names
    if any(_same_folder(d, p["eval_data"]) for d in p["data"]):
        names = split_names(names, n)[1]  # the pairs the training split held out
    ds = PairedFolder(folder, names=names[:n])
    return val_items([ds], n, s["eval_crop"])


# ----------------------------------------------------------------------------- the run
def run_experiment(params: dict, out_dir: str | os.PathLike) -> dict:
    """Train and evaluate one configuration; returns what ``metrics.json`` holds.

    See the module docstring for the params and the files written. Re-running into the same
    ``out_dir`` resumes an interrupted run when the config matches, else starts over.
    """
    from ..metrics import METRIC_NAMES
    from .evaluation import evaluate_fuser, model_fuser
    from .trainer import Trainer, torch_threads

    t_start = time.perf_counter()
    p = validate_params(params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = PRESET_SETTINGS[p["preset"]]
    train_info: dict[str, Any] = {}
    teacher_path = None
    if p["stage"] == "distill":
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
        mean, per_image = evaluate_fuser(model_fuser(trainer.model, trainer.prior, trainer.device, s["eval_tile"]),
                                         items, METRIC_NAMES, samples_dir=out / "samples")
    result = {"metrics": mean, "per_image": per_image, "params": p, "stage": p["stage"],
              "model": trainer.model.name, "eval": {"data": p["eval_data"], "pairs": len(items)},
              "train": train_info, "checkpoint": summary["model"],
              "seconds": round(time.perf_counter() - t_start, 2)}
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2, default=_json_default, allow_nan=True))
    return result


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    return str(o)
