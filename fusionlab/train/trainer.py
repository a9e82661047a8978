"""One trainer for both stages of DTPF.

* stage ``teacher``: ``model(ir, vi_y, text)`` with the fusion losses against the clean
  sources (per-degradation weights for a text-guided teacher);
* stage ``distill``: a frozen teacher (eval mode, with its text prior) and a student
  (no text), ``L = a1 L_base + a2 L_feat + a3 L_res``; the feature adapters of L_feat are
  trained with the student (they are in the optimizer).

Both share: AdamW + cosine schedule (optional warm-up), gradient clipping, AMP on CUDA,
seeding, tqdm progress, periodic validation with the metrics suite, a CSV log, atomic
checkpoints every ``ckpt_every`` steps and at the end, exact resume, and a graceful stop on
Ctrl-C (SIGINT): the current step finishes, a checkpoint is written, KeyboardInterrupt is
re-raised (the CLI exits with 130).

Files in ``out_dir``:

* ``checkpoint.pt``: everything to resume (model + optimizer, scheduler, scaler, step, RNG
  states, data-order state, adapters); replaced atomically, so a kill never corrupts it;
* ``model.pt``: the trained network alone (what ``fusionlab fuse`` and distillation load);
* ``train_log.csv``: one row per logged step (``kind=train``) and per validation
  (``kind=val``); after a resume rows beyond the checkpoint are dropped, never duplicated;
* ``config.yaml``: the resolved config;
* ``tensorboard/``: TensorBoard events, with ``tensorboard: true`` (see :mod:`.tensorboard`).
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import random
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..color import to_luma
from ..device import default_device
from ..errors import CheckpointError, ConfigError, OutputError, RunFailedError
from ..io import atomic_write_text
from ..metrics.evaluate import HEADLINE_METRICS
from .config import TrainConfig, dump_config
from .data import BatchStream, build_sources, val_items

#: config fields that may change between a run and its resume (everything else must match)
RESUMABLE_CHANGES = {"steps", "out_dir", "log_every", "val_every", "ckpt_every", "max_minutes", "progress",
                     "device", "threads", "amp", "tensorboard"}
CHECKPOINT = "checkpoint.pt"
FINAL = "model.pt"
BEST = "best.pt"
LOG = "train_log.csv"


# ----------------------------------------------------------------------------- RNG state
def rng_state() -> dict:
    """Global RNG states (torch, CUDA, numpy, python) in a form ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    st = {"torch": torch.get_rng_state(), "python": random.getstate(),
          "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                    "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    v, state, gauss = st["python"]
    random.setstate((v, tuple(state), gauss))
    n = st["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in st and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all(st["cuda"])


def zero_init_head(model: torch.nn.Module) -> None:
    """Zero the output convolution (``model.output``) of a residual fusion network.

    FusionNet returns ``output(features) + vi``: with a zero head the untrained network is
    the identity on the visible luma, a sensible starting fusion, instead of the visible
    image plus random noise (zero-initialised residual branches, as in ResNet/ControlNet).
    Gradients still reach the head at the first step, and the rest of the network from the
    second.
    """
    head = getattr(model, "output", None)
    if isinstance(head, torch.nn.Conv2d):
        with torch.no_grad():
            head.weight.zero_()
            if head.bias is not None:
                head.bias.zero_()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cosine_lambda(steps: int, warmup: int, min_ratio: float) -> Callable[[int], float]:
    """LR multiplier: linear warm-up, then cosine from 1 to ``min_ratio`` at ``steps``."""

    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, steps - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))

    return f


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Use ``n`` intra-op threads inside the block, then restore. ``n=None`` uses
    ``$FUSIONLAB_THREADS`` if set, else leaves torch's setting alone.

    Why it matters: on a shared, oversubscribed CPU, 2+ OpenMP threads wait for each other
    at every op and a step can take 20x longer than with 1 thread.
    """
    import os

    n = n or int(os.environ.get("FUSIONLAB_THREADS", "0") or 0) or None
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(old)


class _GracefulInterrupt:
    """SIGINT sets a flag (the loop stops at the next step boundary, saves, re-raises);
    a second Ctrl-C interrupts at once. Only installable from the main thread."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                if self.requested:  # second Ctrl-C: stop now
                    raise KeyboardInterrupt
                self.requested = True

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


class Trainer:
    """Train a teacher or distil a student (see the module docstring).

    Args:
        cfg: the run config (stage, model, data, optimisation, bookkeeping).
        resume: ``True`` continues from ``out_dir/checkpoint.pt``, a path continues from that
            checkpoint; ``False`` starts fresh (refused if ``out_dir`` already holds a
            checkpoint, unless ``overwrite``).
        overwrite: start fresh even if ``out_dir`` holds a previous run (its log is replaced).
        teacher: for stage ``distill``, an already loaded teacher model (else ``cfg.teacher``
            is loaded); its text prior is rebuilt from the checkpoint metadata.

    Use :meth:`fit` to run; ``trainer.model`` is the trained network (teacher or student).
    """

    def __init__(self, cfg: TrainConfig, resume: bool | str = False, overwrite: bool = False,
                 teacher: torch.nn.Module | None = None):
        from ..models import create_model, load_checkpoint

        self.cfg = cfg
        self.out_dir = Path(cfg.out_dir)
        self.device = default_device(cfg.device)
        self.use_amp = bool(cfg.amp) and self.device.type == "cuda"
        ckpt_path = self._resume_path(resume, overwrite)
        seed_everything(cfg.seed)

        # ---- data (pure function of seed and step: nothing to restore but the step)
        d = cfg.data
        train_sources = build_sources(d.train, "train", synthetic_pairs=d.synthetic_train,
                                      synthetic_size=d.synthetic_size, holdout=d.holdout)
        self.stream = BatchStream(train_sources, d.crop, d.batch, d.flip, d.degrade_prob, d.degradations, cfg.seed,
                                  d.train_weights)
        val_sources = build_sources(d.val, "val", synthetic_pairs=d.synthetic_val, synthetic_size=d.synthetic_size,
                                    holdout=d.holdout, train_specs=d.train)
        self.val_set = val_items(val_sources, d.val_pairs, d.val_crop)
        from ..metrics.vif import MIN_SIZE

        for it in self.val_set:  # fail now, not after the first training steps
            if min(it["ir"].shape[-2:]) < MIN_SIZE:
                h, w = it["ir"].shape[-2:]
                raise ConfigError(f"validation pair {it['name']} is {w}x{h}: the metrics (VIF) need at least "
                                  f"{MIN_SIZE} px per side (raise data.val_crop or data.synthetic_size)")

        # ---- networks, text priors, losses
        self.teacher = None
        self.teacher_prior = None
        if cfg.stage == "teacher":
            self.model = create_model(cfg.model, **cfg.model_args)
            self.prior = self._build_prior(cfg.text_prior, cfg.text_args, self.model)
            self.criterion = self._fusion_loss()
        else:
            if teacher is None:
                if not cfg.teacher:
                    raise ConfigError("stage distill needs a teacher checkpoint (teacher: PATH, or --teacher)")
                teacher, info = load_checkpoint(cfg.teacher, map_location="cpu")
                tmeta = (info or {}).get("metadata") or {}
            else:
                tmeta = getattr(teacher, "train_metadata", {}) or {}
            tcfg = tmeta.get("train_config") or {}
            self.teacher_text = {"text_prior": tcfg.get("text_prior", "none" if teacher.config.text_dim is None
                                                        else "oracle"),
                                 "text_args": tcfg.get("text_args", {})}
            self.teacher = teacher.to(self.device).eval()
            for p in self.teacher.parameters():
                p.requires_grad_(False)
            self.teacher_prior = self._build_prior(self.teacher_text["text_prior"], self.teacher_text["text_args"],
                                                   self.teacher)
            self.model = create_model(cfg.student, **cfg.student_args)
            self.prior = None  # the student gets no text
            from ..losses import DistillLoss

            base_w = cfg.loss_weights if cfg.loss_weights != "auto" else "fixed"
            self.criterion = DistillLoss(self.teacher.feature_channels, self.model.feature_channels,
                                         losses=cfg.distill_losses, alphas=cfg.alphas, base_weights=base_w,
                                         base_losses=cfg.losses, normalize_features=cfg.normalize_features,
                                         ssim_window=cfg.ssim_window)
        if cfg.head_init == "zero":
            zero_init_head(self.model)
        self.model.to(self.device)
        self.criterion.to(self.device)

        # ---- optimisation: the adapters (criterion parameters) train with the model
        self.params = [p for p in self.model.parameters() if p.requires_grad] + list(self.criterion.parameters())
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, cosine_lambda(cfg.steps, cfg.warmup_steps, min(1.0, cfg.min_lr / cfg.lr)))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.step = 0
        self.last_val: dict = {}
        self.best: dict = {}  # {"step", "score", "val"} of the best validation so far (select_metric)
        self._t0: float | None = None
        self._prev_seconds = 0.0
        self._in_update = False
        self.loss_names = (["loss"] + [f"l_{k}" for k in self._part_names()])
        self._tb = None  # TensorBoardLog, opened by fit() when cfg.tensorboard
        if ckpt_path is not None:
            self._load(ckpt_path)

    # ------------------------------------------------------------------ building blocks
    def _resume_path(self, resume, overwrite) -> Path | None:
        own = self.out_dir / CHECKPOINT
        if resume:
            p = own if resume is True else Path(resume)
            if not p.is_file():
                raise CheckpointError(f"{p}: no checkpoint to resume from (run without --resume to start)")
            return p
        if own.exists() and not overwrite:
            raise OutputError(f"{self.out_dir}: holds a previous run ({CHECKPOINT}); pass --resume to continue "
                              "it or --overwrite to start again")
        return None

    def _build_prior(self, source, args, model):
        from ..text import build_text_prior

        text_dim = getattr(model.config, "text_dim", None)
        if source in (None, "none"):
            return None
        if text_dim is None:
            raise ConfigError(f"text_prior={source!r} but model {getattr(model, 'name', '?')!r} has no text "
                              "branch (text_dim is None): use text_prior: none or a text-guided model")
        return build_text_prior(source, text_dim=text_dim, **(args or {}))

    def _fusion_loss(self):
        from ..losses import FusionLoss

        w = self.cfg.loss_weights
        if w == "auto":
            w = "degradation" if self.prior is not None else "fixed"
        return FusionLoss(w, self.cfg.losses, self.cfg.ssim_window)

    def _part_names(self) -> list[str]:
        if self.cfg.stage == "teacher":
            return list(self.criterion.active)
        return list(self.criterion.losses)

    # ------------------------------------------------------------------ one step
    def _text(self, prior, batch: dict):
        if prior is None:
            return None
        with torch.no_grad():
            t = prior(batch)
        return None if t is None else t.to(self.device)

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Loss of one batch (dict from :meth:`BatchStream.batch`, on CPU)."""
        dev = self.device
        ir, vi = batch["ir"].to(dev), batch["vi"].to(dev)
        ir_c, vi_c = batch["ir_clean"].to(dev), batch["vi_clean"].to(dev)
        vi_y = to_luma(vi)
        with torch.autocast(dev.type, enabled=self.use_amp):
            if self.cfg.stage == "teacher":
                fused = self.model(ir, vi_y, self._text(self.prior, batch))
                return self.criterion(fused, ir_c, vi_c, batch["labels"])
            with torch.no_grad():
                t_out, t_feats = self.teacher(ir, vi_y, self._text(self.teacher_prior, batch), return_features=True)
            need_feats = "feat" in self.criterion.losses
            out = self.model(ir, vi_y, None, return_features=need_feats)
            s_out, s_feats = out if need_feats else (out, None)
            return self.criterion(s_out, t_out, s_feats, t_feats if need_feats else None, ir_c, vi_c)

    def train_step(self, batch: dict) -> tuple[float, dict]:
        self.model.train()
        loss, parts = self.compute_loss(batch)
        if not torch.isfinite(loss):
            raise RunFailedError(f"{self.out_dir}: step {self.step}: loss is {float(loss)} (training diverged; lower lr "
                                 "or check the data)")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self._in_update = True  # an interrupt in here would leave half-updated weights
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        self._in_update = False
        return float(loss.detach()), parts

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def predict(self, ir: torch.Tensor, vi: torch.Tensor, name: str = "pair", label: str = "normal") -> torch.Tensor:
        """Fused luma ``(1, 1, H, W)`` of one pair with the trained model (teacher with its prior)."""
        self.model.eval()
        ir, vi = ir.to(self.device), vi.to(self.device)
        text = self._text(self.prior, {"ir": ir, "vi": vi, "names": [name], "labels": [label]})
        return self.model(ir, to_luma(vi), text).float().clamp(0, 1)

    def validate(self) -> dict:
        """Mean EN / VIF / Qabf / SSIM (papers' scale) of the model on the validation pairs."""
        from .evaluation import evaluate_fuser

        mean, _ = evaluate_fuser(lambda it: self.predict(it["ir"], it["vi"], it["name"]), self.val_set, HEADLINE_METRICS)
        self.model.train()
        self.last_val = mean
        if self.cfg.select_metric:
            score = selection_score(self.cfg.select_metric, mean)
            if not self.best or score > self.best["score"]:
                self.best = {"step": self.step, "score": score, "val": dict(mean)}
                self.save(self.out_dir / BEST, full=False)  # checkpoint selection on validation only
        return mean

    # ------------------------------------------------------------------ checkpoints
    def _metadata(self) -> dict:
        return {"stage": self.cfg.stage, "step": self.step, "train_config": _plain(self.cfg.to_dict()),
                "val": dict(self.last_val),
                "teacher": self.cfg.teacher if self.cfg.stage == "distill" else None,
                "teacher_text": getattr(self, "teacher_text", None), "best": dict(self.best)}

    def save(self, path: str | Path | None = None, full: bool = True) -> Path:
        """Write a checkpoint atomically (``full``: with the training state for resuming)."""
        from ..models import save_checkpoint

        path = Path(path) if path is not None else self.out_dir / (CHECKPOINT if full else FINAL)
        extra = None
        if full:
            extra = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                     "scaler": self.scaler.state_dict(), "step": self.step, "rng": rng_state(),
                     "data": self.stream.state(), "criterion": self.criterion.state_dict(),
                     "seconds": self._elapsed()}
        save_checkpoint(path, self.model, metadata=self._metadata(), extra=extra)
        return path

    def _load(self, path: Path) -> None:
        from ..models import load_checkpoint

        model, info = load_checkpoint(path, map_location="cpu")
        extra = (info or {}).get("extra") or {}
        meta = (info or {}).get("metadata") or {}
        if "optimizer" not in extra:
            raise CheckpointError(f"{path}: holds weights only, no training state to resume from")
        saved = meta.get("train_config") or {}
        now = _plain(self.cfg.to_dict())
        for k in sorted(set(saved) | set(now)):
            if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k):
                raise ConfigError(f"{path}: cannot resume, config {k} changed from {saved.get(k)!r} to {now.get(k)!r}")
        if extra.get("data") != self.stream.state():
            raise ConfigError(f"{path}: cannot resume, training data changed ({extra.get('data')} -> {self.stream.state()})")
        self.model.load_state_dict(model.state_dict())
        self.criterion.load_state_dict(extra["criterion"])
        self.optimizer.load_state_dict(extra["optimizer"])
        self.scheduler.load_state_dict(extra["scheduler"])
        if self.cfg.steps != saved.get("steps"):
            # a longer/shorter run: keep the cosine shape over the new length
            self.scheduler.lr_lambdas = [cosine_lambda(self.cfg.steps, self.cfg.warmup_steps,
                                                       min(1.0, self.cfg.min_lr / self.cfg.lr))]
        self.scaler.load_state_dict(extra["scaler"])
        self.step = int(extra["step"])
        self._prev_seconds = float(extra.get("seconds", 0.0))
        self.last_val = dict(meta.get("val") or {})
        self.best = dict(meta.get("best") or {})
        set_rng_state(extra["rng"])

    # ------------------------------------------------------------------ log
    def _log_header(self) -> list[str]:
        return ["step", "kind", "epoch", "lr", *self.loss_names, *HEADLINE_METRICS, "seconds"]

    def _open_log(self):
        path = self.out_dir / LOG
        header = self._log_header()
        rows = []
        if self.step > 0 and path.is_file():
            with open(path, newline="") as f:
                rd = csv.DictReader(f)
                rows = [r for r in rd if r.get("step", "").isdigit() and int(r["step"]) <= self.step]
        buf = io.StringIO()
        w = csv.DictWriter(buf, header, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(path, buf.getvalue())  # drops rows written after the checkpoint
        self._log_f = open(path, "a", newline="", buffering=1)  # line-buffered: a kill loses <= 1 row
        self._log_w = csv.DictWriter(self._log_f, header, extrasaction="ignore")

    def _log(self, kind: str, values: dict, t0: float) -> None:
        row = {"step": self.step, "kind": kind, "epoch": f"{self.stream.epoch_of(self.step):.3f}",
               "lr": f"{self.scheduler.get_last_lr()[0]:.3e}", "seconds": f"{self._elapsed(t0):.1f}"}
        row.update({k: f"{v:.6g}" for k, v in values.items()})
        self._log_w.writerow(row)
        if self._tb is not None:
            extra = {"lr": self.scheduler.get_last_lr()[0]} if kind == "train" else {}
            self._tb.scalars(kind, {**values, **extra}, self.step)
            if kind == "val" and values:
                self._tb.samples(self, self.step)

    def _elapsed(self, t0: float | None = None) -> float:
        """Training seconds, summed over sessions (a resumed run continues the count)."""
        t0 = self._t0 if t0 is None else t0
        return self._prev_seconds + (time.perf_counter() - t0 if t0 is not None else 0.0)

    # ------------------------------------------------------------------ the loop
    def fit(self, max_steps: int | None = None) -> dict:
        """Train until ``cfg.steps`` (or ``max_minutes``); returns a summary dict
        (``steps``, ``val`` metrics, ``checkpoint``, ``model`` paths, ``seconds``, ``stopped``).

        ``max_steps`` pauses earlier, as an interruption would: the checkpoint is written
        (call ``fit`` again, or resume later, to continue on the same schedule); no final
        validation and no ``model.pt``.
        """
        from tqdm.auto import tqdm

        cfg = self.cfg
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file in the way, read-only disk: one line naming the folder
            raise OutputError(f"{self.out_dir}: cannot write here ({e.strerror or e})") from None
        atomic_write_text(self.out_dir / "config.yaml", dump_config(cfg))
        self._open_log()
        if cfg.tensorboard and self._tb is None:
            from .tensorboard import TensorBoardLog

            self._tb = TensorBoardLog(self.out_dir, start_step=self.step)
        t0 = self._t0 = time.perf_counter()
        stopped = "done" if self.step >= cfg.steps else None
        self._in_update = False
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not cfg.progress, desc=cfg.stage,
                   dynamic_ncols=True, mininterval=1.0)
        try:
            with _GracefulInterrupt() as stop, torch_threads(cfg.threads):
                while self.step < cfg.steps:
                    loss, parts = self.train_step(self.stream.batch(self.step))
                    bar.update(1)
                    if cfg.log_every and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                        vals = {"loss": loss, **{f"l_{k}": v for k, v in parts.items()}}
                        self._log("train", vals, t0)
                        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
                    if cfg.val_every and self.step % cfg.val_every == 0 and self.step < cfg.steps:
                        self._log("val", self.validate(), t0)
                    if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.step < cfg.steps:
                        self.save()
                    if stop.requested:
                        raise KeyboardInterrupt
                    if cfg.max_minutes is not None and time.perf_counter() - t0 > 60 * cfg.max_minutes:
                        stopped = "time budget"
                        break
                    if max_steps is not None and self.step >= max_steps and self.step < cfg.steps:
                        bar.close()
                        self._log_f.close()
                        return {"stage": cfg.stage, "steps": self.step, "val": dict(self.last_val),
                                "checkpoint": str(self.save()), "model": None, "stopped": "paused",
                                "seconds": round(self._elapsed(t0), 2), "out_dir": str(self.out_dir)}
        except KeyboardInterrupt:
            bar.close()
            if not self._in_update:  # weights are consistent at a step boundary: keep them
                self.save()
            self._log_f.close()
            raise
        except BaseException:
            bar.close()
            self._log_f.close()
            raise
        bar.close()
        with torch_threads(cfg.threads):
            val = self.validate() if self.val_set else {}
        self._log("val", val, t0)
        self._log_f.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        ckpt = self.save()
        final = self.save(full=False)
        return {"stage": cfg.stage, "steps": self.step, "val": val, "checkpoint": str(ckpt), "model": str(final),
                "best": dict(self.best), "seconds": round(self._elapsed(t0), 2), "stopped": stopped or "done", "out_dir": str(self.out_dir)}


def selection_score(expr: str, val: dict) -> float:
    """Score of a validation result for checkpoint selection: ``"VIF+Qabf+SSIM"`` sums
    those metrics (all higher-is-better), ``"VIF"`` takes one."""
    try:
        return float(sum(float(val[k.strip()]) for k in expr.split("+")))
    except KeyError as e:
        raise ConfigError(f"select_metric={expr!r}: {e.args[0]!r} is not a validation metric "
                          f"({', '.join(HEADLINE_METRICS)})") from None


def _plain(x):
    """Config dict -> builtins only (tuples to lists), comparable after a save/load round trip."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def train_teacher(cfg: TrainConfig, resume: bool | str = False, overwrite: bool = False) -> dict:
    """Train a teacher (``cfg.stage`` is forced to ``teacher``); returns :meth:`Trainer.fit`'s summary."""
    if cfg.stage != "teacher":
        cfg = cfg.replace(stage="teacher")
    return Trainer(cfg, resume=resume, overwrite=overwrite).fit()


def distill_student(cfg: TrainConfig, teacher: str | None = None, resume: bool | str = False,
                    overwrite: bool = False) -> dict:
    """Distil a student from ``teacher`` (checkpoint path; default ``cfg.teacher``)."""
    changes = {"stage": "distill"}
    if teacher is not None:
        changes["teacher"] = str(teacher)
    cfg = cfg.replace(**changes)
    return Trainer(cfg, resume=resume, overwrite=overwrite).fit()
