"""The top-level API: four functions that cover what a notebook user needs first.

::

    import fusionlab
    fusionlab.list_models()                          # registered architectures
    model = fusionlab.load_model()                   # the shipped student (or a path / hub id)
    fused = fusionlab.fuse("ir.png", "vi.png", model=model, out="fused.png")
    fusionlab.evaluate("ir.png", "vi.png", "fused.png")   # {"EN": ..., "VIF": ..., ...}

``import fusionlab`` stays light: this module (and torch) load on first use of one of them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, ConfigError

#: the student shipped inside the package (trained on synthetic scenes; see README)
_default_cache: dict[str, Any] = {}

PathLike = str | os.PathLike


def list_models() -> list[str]:
    """Names of the registered architectures (:func:`fusionlab.models.create_model` builds them)."""
    from .models import list_models as _list

    return _list()


def load_model(source: PathLike | torch.nn.Module | None = None, *, expected: str | None = None,
               map_location: Any = "cpu", **hub_kwargs):
    """Load a trained fusion model from wherever it is.

    Args:
        source: ``None`` (the shipped student), a ``.pt`` checkpoint written by fusionlab
            (training runs, :func:`fusionlab.models.save_checkpoint`), a
            ``model.save_pretrained`` folder, or a Hub repository id ``owner/name``. A model
            passes through unchanged.
        expected: optional variant name the weights must belong to (``"dtpf_student"``).
        map_location: device of the returned model.
        hub_kwargs: ``revision``, ``cache_dir``, ``local_files_only``, ``token`` for Hub ids.

    Returns:
        the model in eval mode, with ``train_metadata`` (what the checkpoint recorded about
        its training) and ``pretrained_source`` attributes.

    Raises:
        CheckpointError: missing / corrupt / foreign file or folder, wrong variant.
        ConfigError: ``source`` is an architecture name (use ``create_model`` for that).
        ModelUnavailableError: a Hub id that cannot be fetched.
    """
    from .models import list_models as _list
    from .models.checkpoint import load_checkpoint
    from .models.net import FusionNet

    if isinstance(source, torch.nn.Module):
        return source
    if source is None:
        from .models import SHIPPED_STUDENT

        source = SHIPPED_STUDENT
        if not SHIPPED_STUDENT.is_file():
            raise CheckpointError(f"{SHIPPED_STUDENT}: the shipped student is missing (reinstall fusionlab)")
    s = str(source)
    p = Path(os.path.expanduser(s))
    if not p.exists() and s in _list():
        raise ConfigError(f"{s!r} names an architecture, not trained weights: fusionlab.models.create_model({s!r}) "
                          "builds it untrained; load_model takes a .pt checkpoint, a save_pretrained folder or a Hub id")
    from .models.hub import HUB_ID

    if not p.exists() and (p.suffix in (".pt", ".pth", ".ckpt") or not HUB_ID.match(s)):
        raise CheckpointError(f"{p}: checkpoint file not found (load_model takes a .pt checkpoint, a "
                              "save_pretrained folder or a Hub id owner/name)")
    if p.is_file():
        model, info = load_checkpoint(p, map_location=map_location, expected=expected)
        model.train_metadata = dict(info.get("metadata") or {})
        model.pretrained_source = str(p)
        return model
    return FusionNet.from_pretrained(s, expected=expected, map_location=map_location, **hub_kwargs)


def _default_model():
    if "model" not in _default_cache:  # loaded once per process
        _default_cache["model"] = load_model(None)
    return _default_cache["model"]


def fuse(ir: PathLike | torch.Tensor, vi: PathLike | torch.Tensor, model: Any = None, *,
         text: torch.Tensor | None = None, tile: int | None = None, overlap: int = 32,
         out: PathLike | None = None) -> torch.Tensor:
    """Fuse an infrared and a visible image.

    Args:
        ir, vi: image files, or tensors ``(1|3, H, W)`` / ``(B, 1|3, H, W)`` in [0, 1]. A
            colour visible image keeps its colour (the model fuses the luma).
        model: a model, or anything :func:`load_model` accepts (default: the shipped student).
        text: ``(B, text_dim)`` caption embeddings for a text-guided model (None: no text).
        tile, overlap: fuse in sliding ``tile x tile`` windows (bounded memory for large images).
        out: also write the result as an 8-bit PNG here (unbatched results only).

    Returns:
        the fused image in [0, 1] with ``vi``'s channels: ``(C, H, W)`` for files and
        unbatched tensors, ``(B, C, H, W)`` for batches.
    """
    from .data.paired import load_pair
    from .errors import UsageError
    from .io import write_image
    from .models.inference import fuse_pair

    net = _default_model() if model is None else load_model(model)
    if not isinstance(ir, torch.Tensor) or not isinstance(vi, torch.Tensor):
        if isinstance(ir, torch.Tensor) or isinstance(vi, torch.Tensor):
            raise UsageError("fuse: give ir and vi both as files or both as tensors")
        pair = load_pair(ir, vi)
        ir, vi = pair["ir"], pair["vi"]
    fused = fuse_pair(net, ir, vi, text=text, tile=tile, overlap=overlap)
    if out is not None:
        if fused.ndim != 3:
            raise UsageError(f"fuse: out= writes one image, got a batch of {fused.shape[0]}")
        write_image(out, fused)
    return fused


def evaluate(ir: PathLike | torch.Tensor, vi: PathLike | torch.Tensor, fused: PathLike | torch.Tensor,
             metrics: str | list[str] | None = None, convention: str = "cddfuse"):
    """Fusion metrics (EN, SD, SF, AG, MI, SCD, VIF, Qabf, SSIM, MSE, CC, PSNR) of fused images.

    Args:
        ir, vi, fused: three image files (-> dict), three folders matched by file stem
            (-> ``pandas.DataFrame``, one row per image), or tensors in [0, 1] like
            :func:`fuse` returns (``(C, H, W)`` -> dict, ``(B, C, H, W)`` -> DataFrame). Tensors are
            quantised to 8 bits first, so the numbers equal those of the saved PNGs.
        metrics: ``None`` (the 12 standard metrics), ``"all"`` (adds Nabf) or a list of names.
        convention: ``"cddfuse"`` (the convention of the CDDFuse/DTPF tables) or ``"matlab"``.
    """
    from . import metrics as M
    from .errors import UsageError

    items = (ir, vi, fused)
    if all(isinstance(x, torch.Tensor) for x in items):
        scaled = [M.to_metric_scale(x, convention) for x in items]  # (B, 1, H, W) on 0..255
        if fused.ndim == 3:  # one image: a dict, not a one-row table
            scaled = [s[0] for s in scaled]
        return M.evaluate(*scaled, metrics, convention)
    if any(isinstance(x, torch.Tensor) for x in items):
        raise UsageError("evaluate: give ir, vi and fused all as tensors or all as paths")
    paths = [Path(x) for x in items]
    if all(p.is_dir() for p in paths):
        return M.evaluate_folders(*paths, metrics, convention, progress=False)
    return M.evaluate_files(*paths, metrics, convention)
