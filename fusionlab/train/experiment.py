"""``run_experiment(params, out_dir)``: one row of an ablation table, end to end.

It is what ``notebooks/run_experiment.ipynb`` calls for every run of a grid
(``fusionlab ablate``): validate the params, build the configs of the preset, train (stage
``distill``: train or reuse a cached teacher first, then distil the student), evaluate on
pairs never used for training, and write into ``out_dir``:

* ``metrics.json``: ``{"metrics": {EN, SD, ..., PSNR} (clean test pairs), "conditions":
  {normal|low_light|...|degraded: {EN, VIF, Qabf, SSIM}}, "per_image": [...] (one per test
  pair and condition), "params": ..., "parameters": trained network size, "train": {...}}``
  (written last and atomically: its presence means the run completed);
* ``samples/<name>.png``: fused images of the first evaluation pairs (visible colours kept);
* ``model.pt`` (the trained network), ``checkpoint.pt`` (resumable state),
  ``train_log.csv``, ``config.yaml``.

``text_prior: vlv`` (stage teacher) trains no network of its own: the teacher is the cached
``oracle`` teacher of the same params (:func:`cached_teacher`), frozen, conditioned at test
time on the caption-free VLV-style encoder trained through it (:func:`cached_vlv_encoder`);
``metrics.json`` then records ``train.teacher`` (the cached teacher) and ``train.vlv`` (the
encoder's steps, seconds and final loss) and ``checkpoint`` is the teacher's.

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
#: seed of the degradations applied to the evaluation pairs (the same inputs for every run)
EVAL_DEGRADATION_SEED = 0


def _run_params(params: dict | RunParams) -> RunParams:
    """The params of a run, checked and with defaults (:meth:`RunParams.from_dict`)."""
    return params if isinstance(params, RunParams) else RunParams.from_dict(params)


def _same_folder(a: str, b: str) -> bool:
    return a != SYNTHETIC and b != SYNTHETIC and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def experiment_config(params: dict | RunParams, out_dir: str | os.PathLike, stage: str | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of one stage of a run (validated params, preset applied).

    For a teacher with ``text_prior: projector`` and no ``text_checkpoint`` this trains the
    preset's default projector on first use (:func:`cached_projector`). For ``text_prior:
    vlv`` it is the config of the frozen teacher the encoder conditions: the ``oracle``
    teacher of the same params (:func:`vlv_teacher_params`)."""
    p = _run_params(params)
    if p.text_prior == "vlv":
        p = vlv_teacher_params(p)
    stage = stage or p.stage
    s = preset_settings(p.preset)
    fields = s.train_fields(stage)
    eval_pairs = p.eval_pairs or s.eval_pairs
    holdout = eval_pairs if any(_same_folder(d, p.eval_data) for d in p.data) else 0
    fields["data"].update(train=list(p.data), val=["holdout"] if holdout else [SYNTHETIC], holdout=holdout)
    fields.update(stage=stage, seed=p.seed, out_dir=str(out_dir), progress=False,
                  data=DataConfig(**fields["data"]))
    if p.losses:
        fields["losses"] = list(p.losses)
    if stage == "teacher":
        fields["loss_weights"] = p.loss_weights
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


def vlv_teacher_params(params: dict | RunParams) -> RunParams:
    """The params of the teacher a ``text_prior: vlv`` run conditions: the same run with
    ``text_prior: oracle`` (no caption file, no checkpoint), i.e. the oracle row's teacher."""
    from dataclasses import replace

    return replace(_run_params(params), text_prior="oracle", caption_file=None, text_checkpoint=None)


def training_stream(cfg: TrainConfig, batch: int | None = None):
    """The training batches of ``cfg`` (:class:`~fusionlab.train.data.BatchStream`, built as
    the trainer builds it), optionally with another batch size."""
    from .data import BatchStream, build_sources

    d = cfg.data
    sources = build_sources(d.train, "train", synthetic_pairs=d.synthetic_train, synthetic_size=d.synthetic_size,
                            holdout=d.holdout)
    return BatchStream(sources, d.crop, batch or d.batch, d.flip, d.degrade_prob, d.degradations, cfg.seed,
                       d.train_weights)


#: the fields of the VLV encoder's training summary that a run records (``train.vlv``)
VLV_INFO_KEYS = ("steps", "seconds", "initial_loss", "final_loss", "final_fusion", "final_span_residual",
                 "span_weight", "batch")


def cached_vlv_encoder(teacher_cfg: TrainConfig, teacher_path: str | os.PathLike, preset: str,
                       seed: int = 0) -> tuple[Path, dict]:
    """The caption-free VLV-style encoder of a frozen teacher (trained once, then reused).

    Trained by :func:`fusionlab.text.vlv.train_vlv_encoder` through the teacher at
    ``teacher_path`` (built from ``teacher_cfg``) with its loss components, on its training
    data (:func:`training_stream`, ``preset.vlv_batch`` crops per step) for
    ``preset.vlv_steps`` steps; saved as
    ``$FUSIONLAB_CACHE/vlv/<preset>-s<seed>-t<teacher key>-<settings hash>.pt``.

    Returns:
        ``(path, info)``: the checkpoint (loadable with ``load_projector`` /
        ``build_text_prior("vlv", checkpoint=path)``) and the training summary
        (:data:`VLV_INFO_KEYS`, ``cached``, ``checkpoint``).
    """
    from ..models import load_checkpoint
    from ..models.checkpoint import safe_torch_load
    from ..text.projector import save_projector
    from ..text.vlv import SPAN_WEIGHT, train_vlv_encoder
    from .trainer import torch_threads

    s = preset_settings(preset)
    settings = {"steps": s.vlv_steps, "batch": s.vlv_batch, "span_weight": SPAN_WEIGHT}
    tag = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:6]
    folder = cache_dir() / "vlv"
    path = folder / f"{preset}-s{seed}-t{teacher_key(teacher_cfg)}-{tag}.pt"
    with file_lock(folder / f"{path.stem}.lock"):
        if path.is_file():
            meta = safe_torch_load(path, "cpu").get("metadata", {})
            return path, {**{k: meta[k] for k in VLV_INFO_KEYS if k in meta}, "cached": True, "checkpoint": str(path)}
        teacher, _ = load_checkpoint(teacher_path, map_location="cpu")
        stream = training_stream(teacher_cfg, s.vlv_batch)
        with torch_threads(teacher_cfg.threads):
            enc, info = train_vlv_encoder(teacher, stream.batch, steps=s.vlv_steps, losses=teacher_cfg.losses,
                                          ssim_window=teacher_cfg.ssim_window, seed=seed,
                                          log_every=max(1, min(10, s.vlv_steps)))
        info["batch"] = s.vlv_batch
        save_projector(path, enc, metadata={"prior": "vlv", "preset": preset, "seed": seed,
                                            "teacher": str(teacher_path), "teacher_key": teacher_key(teacher_cfg),
                                            **{k: info[k] for k in VLV_INFO_KEYS}, "history": info["history"]})
    return path, {**{k: info[k] for k in VLV_INFO_KEYS}, "cached": False, "checkpoint": str(path)}


def _teacher_info(path: Path, summary: dict) -> dict:
    """What ``metrics.json``'s ``train.teacher`` records of a cached teacher."""
    return {**{k: v for k, v in summary.items() if k in ("steps", "seconds", "cached", "key", "val")},
            "checkpoint": str(path)}


def frozen_teacher_with_vlv(params: dict | RunParams, out_dir: str | os.PathLike):
    """A ``text_prior: vlv`` run's network and prior: the cached oracle teacher (trained on
    first use), frozen, and the VLV-style encoder trained through it (or ``text_checkpoint``).

    Returns:
        ``(teacher, prior, info)``: the FusionNet (eval mode, no gradients), the ``vlv``
        :class:`~fusionlab.text.TextPrior` and ``{"teacher": ..., "vlv": ...}`` for
        ``metrics.json``'s ``train``.
    """
    from ..models import load_checkpoint
    from ..text import build_text_prior

    p = _run_params(params)
    tcfg = experiment_config(p, out_dir, stage="teacher")  # the oracle teacher's config
    teacher_path, tsum = cached_teacher(tcfg)
    info = {"teacher": _teacher_info(teacher_path, tsum)}
    if p.text_checkpoint:
        enc_path, info["vlv"] = Path(p.text_checkpoint), {"cached": True, "checkpoint": p.text_checkpoint}
    else:
        enc_path, info["vlv"] = cached_vlv_encoder(tcfg, teacher_path, p.preset, p.seed)
    teacher, _ = load_checkpoint(teacher_path, map_location="cpu")
    teacher.eval().requires_grad_(False)
    prior = build_text_prior("vlv", text_dim=teacher.config.text_dim, checkpoint=enc_path)
    return teacher, prior, info


# ----------------------------------------------------------------------------- evaluation data
def eval_items(params: dict | RunParams) -> list[dict]:
    """Evaluation items never used in training: each test pair clean (label ``normal``) and
    under every degradation of the preset's ``eval_conditions``, at fixed seeds.

    A real test folder gives a fixed subset of its pairs (``eval_pairs`` evenly spaced over
    the sorted names, the same for every run), centre-cropped to the preset's ``eval_crop``
    (bounds CPU time). Items: ``ir (1,1,H,W)``, ``vi (1,3|1,H,W)`` (what the network and the
    text prior see), ``ir_clean``/``vi_clean`` (what the metrics compare with), ``name``
    (``<pair>/<label>``), ``pair``, ``label``.
    """
    from ..data import PairedFolder, SyntheticPairs, degraded_items
    from .data import expand_path, val_items

    p = _run_params(params)
    s = preset_settings(p.preset)
    n = p.eval_pairs or s.eval_pairs
    if p.eval_data == SYNTHETIC:
        ds = SyntheticPairs(n, s.eval_size, SYNTHETIC_EVAL_SEED0, with_reference=False)
    else:
        folder = expand_path(p.eval_data)
        names = PairedFolder(folder).names
        if any(_same_folder(d, p.eval_data) for d in p.data):
            names = split_names(names, n)[1]  # the pairs the training split held out
        else:
            step = max(1, len(names) // n)
            names = sorted(names)[::step][:n]  # evenly spaced: a fixed subset, not the first scenes only
        ds = PairedFolder(folder, names=names[:n])
    pairs = [{"ir": it["ir"][0], "vi": it["vi"][0], "name": it["name"]} for it in val_items([ds], n, s.eval_crop)]
    return degraded_items(pairs, list(s.eval_conditions), seed=EVAL_DEGRADATION_SEED)


def condition_means(per_image: list[dict], metrics=None) -> dict[str, dict[str, float]]:
    """``{label: {metric: mean}}`` over the evaluation items of each condition, plus
    ``degraded``: the mean over every degraded item (all labels but ``normal``)."""
    import numpy as np

    from ..metrics.evaluate import HEADLINE_METRICS

    metrics = list(metrics or HEADLINE_METRICS)
    groups: dict[str, list[dict]] = {}
    for r in per_image:
        groups.setdefault(r.get("label", "normal"), []).append(r)
    degraded = [r for r in per_image if r.get("label", "normal") != "normal"]
    if degraded:
        groups["degraded"] = degraded
    return {lab: {m: float(np.nanmean([r[m] for r in rows])) for m in metrics if m in rows[0]}
            for lab, rows in groups.items()}


# ----------------------------------------------------------------------------- the run
def run_experiment(params: dict | RunParams, out_dir: str | os.PathLike) -> dict:
    """Train and evaluate one configuration; returns what ``metrics.json`` holds.

    See the module docstring for the params and the files written. Re-running into the same
    ``out_dir`` resumes an interrupted run when the config matches, else starts over.
    """
    import torch

    from ..metrics import METRIC_NAMES
    from ..metrics.evaluate import HEADLINE_METRICS
    from ..models import count_parameters
    from .evaluation import evaluate_fuser, model_fuser
    from .trainer import Trainer, torch_threads

    t_start = time.perf_counter()
    p = _run_params(params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_info: dict[str, Any] = {}
    teacher_path = None
    if p.text_prior == "vlv":  # no training of the teacher: the frozen oracle teacher + the VLV encoder
        model, prior, train_info = frozen_teacher_with_vlv(p, out)
        device, checkpoint = torch.device("cpu"), train_info["teacher"]["checkpoint"]
    else:
        if p.stage == "distill":
            teacher_path, tsum = cached_teacher(experiment_config(p, out, stage="teacher"))
            train_info["teacher"] = _teacher_info(teacher_path, tsum)
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
        model, prior, device, checkpoint = trainer.model, trainer.prior, trainer.device, summary["model"]

    items = eval_items(p)
    with torch_threads(None):
        fuse = model_fuser(model, prior, device, preset_settings(p.preset).eval_tile)
        _, per_image = evaluate_fuser(fuse, items, METRIC_NAMES, samples_dir=out / "samples",
                                      max_samples=len(preset_settings(p.preset).eval_conditions))
    by_condition = condition_means(per_image, METRIC_NAMES)
    # the headline numbers are the clean test pairs (the paper's setting); every condition and
    # the mean over the degraded ones are reported beside them (headline metrics only)
    conditions = {lab: {m: v[m] for m in HEADLINE_METRICS if m in v} for lab, v in by_condition.items()}
    result = {"metrics": by_condition.get("normal", next(iter(by_condition.values()))), "conditions": conditions,
              "per_image": per_image, "params": p.to_dict(), "stage": p.stage, "model": model.name,
              "parameters": count_parameters(model),
              "eval": {"data": p.eval_data, "pairs": len({r.get("pair", r["name"]) for r in per_image}),
                       "items": len(items)},
              "train": train_info, "checkpoint": checkpoint,
              "seconds": round(time.perf_counter() - t_start, 2)}
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2, default=_json_default, allow_nan=True))
    return result


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    return str(o)
