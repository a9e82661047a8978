"""Checkpoints: model name + config + weights + metadata in one file, loadable safely.

A checkpoint is a plain dict saved with ``torch.save``::

    {"format": "fusionlab.model", "version": 1, "model": name, "config": {...},
     "state_dict": {...}, "metadata": {...}, "extra": {...}, "fusionlab": "0.1.0"}

It is written atomically (temp file + rename) and read with ``torch.load(weights_only=True)``,
so loading never executes code from the file. ``extra`` holds anything else a trainer needs
(optimizer state, epoch, ...) as long as it is made of tensors and builtins.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConfigError
from ..io import atomic_path
from .net import FusionNet, FusionNetConfig

FORMAT, VERSION = "fusionlab.model", 1
#: the distilled student shipped with fusionlab (trained by scripts/train_shipped_student.py)
SHIPPED_STUDENT = Path(__file__).resolve().parents[1] / "assets" / "student_real.pt"
#: the files a run folder may hold, in the order :func:`find_checkpoint` prefers them
RUN_CHECKPOINTS = ("checkpoint.pt", "student.pt", "teacher.pt", "model.pt")


def save_checkpoint(path: str | os.PathLike, model: FusionNet, metadata: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Save ``model`` (name, config, weights) plus ``metadata`` / ``extra`` dicts atomically.

    Returns the path. ``metadata`` is meant for small descriptive values (training params,
    metrics); ``extra`` for state a trainer resumes from. Both must be weights_only-safe
    (tensors, numbers, strings, lists, dicts, None).
    """
    from .. import __version__

    if not isinstance(model, FusionNet):
        raise CheckpointError(f"{path}: save_checkpoint needs a FusionNet, got {type(model).__name__}")
    obj = {
        "format": FORMAT, "version": VERSION, "model": model.name, "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}), "extra": dict(extra or {}), "fusionlab": __version__,
    }
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def safe_torch_load(path: str | os.PathLike, map_location: Any = "cpu", missing: str = "checkpoint file not found"):
    r"""``torch.load(path, weights_only=True)`` with one-line :class:`CheckpointError`\ s:
    missing file (``missing`` says what to do), code or foreign objects in the pickle
    (refused, never retried unsafely), truncated or corrupt files."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: {missing}")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{p}: refused by the safe loader (weights_only=True): {_unsafe_reason(e)}; "
                              "fusionlab loads tensors and plain data only, never code") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        msg = " ".join(str(e).split()).split(". ")[0][:200] or type(e).__name__  # first sentence
        raise CheckpointError(f"{p}: not a readable torch checkpoint (truncated or corrupt? {msg})") from None


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """The raw checkpoint dict (validated), without building a model."""
    p = Path(path)
    obj = safe_torch_load(p, map_location)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a fusionlab model checkpoint (no 'format': '{FORMAT}' entry; "
                              "save it with fusionlab.models.save_checkpoint)")
    if obj.get("version", 0) > VERSION:
        raise CheckpointError(f"{p}: checkpoint format version {obj['version']} is newer than this fusionlab "
                              f"understands ({VERSION}); upgrade fusionlab")
    for key in ("model", "config", "state_dict"):
        if key not in obj:
            raise CheckpointError(f"{p}: checkpoint has no {key!r} entry (incomplete file)")
    return obj


def _unsafe_reason(e: Exception) -> str:
    """The informative part of torch's multi-paragraph weights_only error (whose first line
    suggests retrying with weights_only=False, advice we must not pass on for a foreign file)."""
    text = str(e)
    m = re.search(r"Unsupported global: GLOBAL (\S+)", text) or re.search(r"Unsupported class (\S+)", text)  # torch >= 2.4 / 2.3
    if m:
        name = re.sub(r"^(__builtin__|builtins)\.", "", m.group(1))  # torch 2.3 says __builtin__.exec
        return f"the file references {name}, which is neither a tensor nor plain data"
    m = re.search(r"Unsupported operand (\d+)", text)
    if m:
        return f"the file uses pickle opcode {m.group(1)}, which plain data never needs"
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines() if ln.strip()]
    return next((ln for ln in lines if "error:" in ln), lines[0] if lines else type(e).__name__)


def _config_diff(a: FusionNetConfig, b: FusionNetConfig) -> str:
    da, db = a.to_dict(), b.to_dict()
    return ", ".join(f"{k}={da[k]!r} vs {db[k]!r}" for k in da if da[k] != db[k])


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu",
                    expected: str | FusionNetConfig | nn.Module | None = None) -> tuple[FusionNet, dict]:
    """Rebuild the model stored in ``path`` and load its weights.

    Args:
        path: file written by :func:`save_checkpoint`.
        map_location: device for the weights (the model is moved there too).
        expected: optional architecture check: a variant name (``"dtpf_student"``), a
            :class:`FusionNetConfig` or a model whose config must match.

    Returns:
        ``(model, info)`` with the model in eval mode and ``info`` a dict with ``model``
        (name), ``config``, ``metadata``, ``extra``, ``fusionlab`` (version) and ``path``.

    Raises:
        CheckpointError: missing/corrupt file, not a fusionlab checkpoint, weights that do
            not fit the stored config, or another architecture than ``expected``.
    """
    p = Path(path)
    obj = read_checkpoint(p, map_location)
    try:
        cfg = FusionNetConfig.from_dict(dict(obj["config"]))
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{p}: stored model config is invalid ({e})") from None
    name = str(obj["model"])
    if expected is not None:
        if isinstance(expected, str):
            if name != expected:
                raise CheckpointError(f"{p}: holds a '{name}' model, expected '{expected}'")
        else:
            want = expected.config if isinstance(expected, nn.Module) else expected
            if not isinstance(want, FusionNetConfig):
                raise CheckpointError(f"{p}: 'expected' must be a model name, FusionNetConfig or FusionNet")
            if want != cfg:
                raise CheckpointError(f"{p}: architecture differs from the expected one ({_config_diff(cfg, want)})")
    model = FusionNet(cfg, name=name)
    _load_weights(model, obj["state_dict"], p)
    model.to(map_location if map_location is not None else "cpu").eval()
    info = {k: obj.get(k) for k in ("model", "config", "metadata", "extra", "fusionlab")}
    info["path"] = str(p)
    return model, info


def _load_weights(model: FusionNet, state: dict, p: Path) -> None:
    load_state_strict(model, state, f"{p}: weights do not fit the stored '{model.name}' architecture")


def load_state_strict(module: torch.nn.Module, state: dict, what: str, optional=lambda key: False) -> None:
    """``load_state_dict`` that checks every key and shape first and raises ONE line
    (``what: 2 missing (e.g. ...); 1 with another shape (e.g. ...)``) instead of PyTorch's
    multi-line RuntimeError. ``optional(key)`` names keys of ``module`` a file may lack."""
    own = module.state_dict()
    missing = [k for k in own if k not in state and not optional(k)]
    unexpected = [k for k in state if k not in own]
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if bad:
            k = bad[0]
            parts.append(f"{len(bad)} with another shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})")
        raise CheckpointError(f"{what}: " + "; ".join(parts))
    module.load_state_dict(state, strict=not any(optional(k) for k in own if k not in state))


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the checkpoint in a run folder (:data:`RUN_CHECKPOINTS` first, then
    any ``*.pt`` in it or one level down).

    Raises:
        CheckpointError: nothing found (one line naming the path).
    """
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        for name in RUN_CHECKPOINTS:
            if (p / name).is_file():
                return p / name
        found = sorted(p.glob("*.pt")) or sorted(p.glob("*/*.pt"))
        if found:
            return found[0]
        raise CheckpointError(f"{p}: run folder holds no checkpoint (*.pt)")
    raise CheckpointError(f"{p}: checkpoint or run folder not found")


def load_student(checkpoint: str | os.PathLike | None = None, fallback: str = "dtpf_student_tiny",
                 verbose: bool = True) -> tuple[FusionNet, str]:
    """The distilled student for demos: ``(model in eval mode, note)``.

    Loads ``checkpoint`` (default: the shipped :data:`SHIPPED_STUDENT`). If that file is absent
    (a fresh checkout before the asset is built), returns an UNTRAINED ``fallback`` model
    instead, and says so - its fusions are then close to the visible image.

    Raises:
        CheckpointError: a ``checkpoint`` that was named does not exist or cannot be read.
    """
    from .zoo import create_model

    path = Path(checkpoint) if checkpoint else SHIPPED_STUDENT
    if path.is_file():
        model, info = load_checkpoint(path, map_location="cpu")
        note = f"model: {info.get('model')} loaded from {path.name}"
    elif checkpoint:
        raise CheckpointError(f"{path}: checkpoint not found")
    else:
        torch.manual_seed(0)
        model = create_model(fallback)
        note = (f"NOTE: {path.name} is not in this checkout; using an UNTRAINED {fallback} "
                "(its fusions are not meaningful; train one in 04_distillation)")
    if verbose:
        print(note)
    return model.eval(), note
