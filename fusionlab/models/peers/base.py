"""What every peer method shares: finding and strictly loading published weights, the
fusionlab calling convention, and the authors' test-time image handling.

A peer is an :class:`PeerMethod` (an ``nn.Module``):

* ``peer(ir, vi_y, text=None) -> fused_y``: ``(B, 1, H, W)`` in [0, 1] in, ``(B, 1, H, W)`` in
  [0, 1] out, like every fusionlab model (``text`` is ignored), so
  :func:`~fusionlab.models.fuse_pair`, the metrics and the FLOP counter work unchanged;
* ``peer.fuse_as_authors(ir_path, vi_path) -> uint8 array``: the authors' test script from
  file to saved pixels (their reading, colour handling, normalisation, output stretch and
  8-bit conversion), selected by the ``protocol`` given at construction. This is what
  ``fusionlab fuse --model <peer>`` writes by default.

Weights are looked up in this order (first hit wins):

1. ``$FUSIONLAB_MODELS/peers/<name>/<file>`` (``FUSIONLAB_MODELS`` defaults to
   ``~/.cache/fusionlab/models``, see :func:`fusionlab.dirs.models_dir`);
2. ``$FUSIONLAB_SHARED/peers/<name>/<file>`` (``FUSIONLAB_SHARED`` defaults to the shared
   folder beside a checkout, see :func:`fusionlab.dirs.shared_dir`).

A missing file raises :class:`~fusionlab.errors.ModelUnavailableError` naming the path to
fill and where the authors publish the file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.nn as nn

from ...errors import CheckpointError, ConfigError, ImageReadError, ModelUnavailableError, \
    ShapeMismatchError


# ----------------------------------------------------------------------------- weights
def weight_dirs(name: str) -> list[Path]:
    """Folders searched for the weights of peer ``name``, in order (see module docstring)."""
    from ...dirs import models_dir, shared_dir

    return [models_dir() / "peers" / name, shared_dir() / "peers" / name]


def find_weights(name: str, filename: str, source: str) -> Path:
    """Path of ``filename`` for peer ``name``.

    Raises:
        ModelUnavailableError: not in any of :func:`weight_dirs`; the message names the
            first folder (the one to fill) and ``source`` (the authors' download location).
    """
    dirs = weight_dirs(name)
    for d in dirs:
        if (d / filename).is_file():
            return d / filename
    raise ModelUnavailableError(
        f"{dirs[0] / filename}: {name} weights not found (also looked in "
        f"{', '.join(str(d) for d in dirs[1:])}); download {filename} from {source} and put it there")


def load_state(path: Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)``, optionally the state dict under ``key``.

    Subnormal float values (``0 < |w| < 1.18e-38``) are set to 0. Why: ``tardal++.pt`` holds
    about 190,000 of them, and CPUs compute with subnormals 10-50x slower; their products
    with activations of order 1 vanish in float32 sums anyway, so outputs do not change.
    """
    from ..checkpoint import safe_torch_load

    obj = safe_torch_load(path, "cpu")
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            raise CheckpointError(f"{path}: expected a dict with a {key!r} entry holding the state dict")
        obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: not a plain state dict of tensors")
    return {k: flush_subnormals(v) for k, v in obj.items()}


def flush_subnormals(t: torch.Tensor) -> torch.Tensor:
    """``t`` with subnormal floating-point values replaced by 0 (other tensors unchanged)."""
    if not t.is_floating_point():
        return t
    return torch.where(t.abs() < torch.finfo(t.dtype).tiny, torch.zeros_like(t), t)


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """``load_state_dict(strict=True)`` after checking every key and shape, with a one-line
    :class:`CheckpointError` naming the first mismatch (strict loading alone raises a
    multi-line RuntimeError).

    The one tolerated absence is BatchNorm's ``num_batches_tracked`` counter in files saved
    by PyTorch < 0.4.1 (IFCNN): ``load_state_dict`` itself fills it in for such files and it
    plays no part in inference."""
    from ..checkpoint import load_state_strict

    load_state_strict(module, state, f"{path}: weights do not fit {type(module).__name__}",
                      optional=lambda k: k.endswith(".num_batches_tracked"))


# ----------------------------------------------------------------------------- protocols
@dataclass(frozen=True)
class Protocol:
    """One authors' test script, described by what it does to the pixels.

    Attributes:
        name: ``"vif_benchmark"`` (Linfeng Tang's VIF-Benchmark scripts, the source of every
            weight file) or ``"author"`` (the method authors' own repository).
        script: the script it follows (for docs and output provenance).
        summary: one line on the reading / colour / normalisation / output handling.
    """

    name: str
    script: str
    summary: str


class PeerMethod(nn.Module):
    """Base class of the published peer networks (see module docstring).

    Subclasses set ``name``, ``paper``, ``source`` (download location), ``PROTOCOLS`` and
    implement ``fuse_y`` (the network on 1-channel [0, 1] tensors) and ``_authors``.
    """

    name: str = "peer"
    paper: str = ""
    source: str = ""
    PROTOCOLS: dict[str, Protocol] = {}
    DEFAULT_PROTOCOL = "vif_benchmark"

    def __init__(self, protocol: str | None = None):
        super().__init__()
        protocol = protocol or self.DEFAULT_PROTOCOL
        if protocol not in self.PROTOCOLS:
            raise ConfigError(f"{self.name}: unknown protocol {protocol!r} (known: {', '.join(self.PROTOCOLS)})")
        self.protocol = self.PROTOCOLS[protocol]
        self.weights_path: Path | None = None

    # -- calling convention
    def forward(self, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 1, H, W)`` IR and visible luma in [0, 1] -> fused ``(B, 1, H, W)`` in [0, 1]."""
        from ..net import check_luma_pair

        check_luma_pair(ir, vi, self.name)
        return self.fuse_y(ir.float(), vi.float()).clamp(0.0, 1.0)

    def fuse_y(self, ir: torch.Tensor, vi_y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- authors' pipeline
    @torch.no_grad()
    def fuse_as_authors(self, ir_path: str | os.PathLike, vi_path: str | os.PathLike) -> np.ndarray:
        """The authors' script for one pair -> the uint8 image it saves: ``(H, W)`` gray or
        ``(H, W, 3)`` RGB (see ``PROTOCOLS[...].summary``)."""
        dev = next(self.parameters()).device
        return self._authors(Path(ir_path), Path(vi_path), dev)

    def _authors(self, ir_path: Path, vi_path: Path, device: torch.device) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"name={self.name!r}, protocol={self.protocol.name!r}, weights={str(self.weights_path)!r}"


# ----------------------------------------------------------------------------- image helpers
def read_u8(path: Path, mode: str) -> np.ndarray:
    """Read an image as PIL's ``convert(mode)`` gives it (``"RGB"`` -> ``(H, W, 3)``, ``"L"`` ->
    ``(H, W)``, uint8), the way the authors' PIL-based scripts read files. ``"L"`` of a colour
    file uses PIL's integer luma (299/587/114 per mille, rounded)."""
    from PIL import Image

    from ...io import read_array

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("1", "L", "P", "RGB", "RGBA", "LA", "PA", "RGBX"):
                raise ValueError(f"mode {im.mode}")
            return np.asarray(im.convert(mode), dtype=np.uint8).copy()
    except (OSError, ValueError, SyntaxError):
        read_array(path)  # raises the one-line ImageReadError of fusionlab's reader (missing, corrupt, too large)
        raise ImageReadError(f"{path}: the authors' scripts read 8-bit images; this file is not one "
                             "(use --protocol fusionlab)") from None


def cv2_gray(rgb: np.ndarray) -> np.ndarray:
    """OpenCV ``cvtColor(..., BGR2GRAY)`` of 8-bit RGB data, in its fixed-point form:
    ``(4899 R + 9617 G + 1868 B + 8192) >> 14`` (coefficients 0.299/0.587/0.114 x 2**14)."""
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    return ((r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14).astype(np.uint8)


def cv2_read_gray(path: Path) -> np.ndarray:
    """``cv2.imread(path, IMREAD_GRAYSCALE)`` for 8-bit files: gray files as stored (R = G = B
    files too), colour files through OpenCV's BGR2GRAY formula (:func:`cv2_gray`). OpenCV
    leaves that conversion to libpng/libjpeg, which can differ by one gray level."""
    return cv2_gray(read_u8(path, "RGB"))


def cv2_ycrcb(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV ``BGR2YCrCb`` on 8-bit data (fixed point, 14 fractional bits) -> uint8 Y, Cr, Cb."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    half = 1 << 13
    y = (r * 4899 + g * 9617 + b * 1868 + half) >> 14
    delta = 128 << 14
    cr = ((r - y) * 11682 + delta + half) >> 14
    cb = ((b - y) * 9241 + delta + half) >> 14
    return tuple(np.clip(c, 0, 255).astype(np.uint8) for c in (y, cr, cb))


def cv2_ycrcb_to_rgb(y: np.ndarray, cr: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """OpenCV ``YCrCb2BGR`` on 8-bit data (fixed point) -> uint8 ``(H, W, 3)`` RGB."""
    y, cr, cb = (c.astype(np.int64) for c in (y, cr, cb))
    half = 1 << 13
    cr, cb = cr - 128, cb - 128
    r = y + ((cr * 22987 + half) >> 14)
    g = y + ((cb * -5636 + cr * -11698 + half) >> 14)
    b = y + ((cb * 29049 + half) >> 14)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def ycrcb_float(rgb: torch.Tensor, clamp: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The RGB -> Y, Cr, Cb formulas of SeAFusion/DIDFuse/VIF-Benchmark on ``(B, 3, H, W)`` [0, 1]:
    ``Y = .299 R + .587 G + .114 B``, ``Cr = (R - Y) .713 + .5``, ``Cb = (B - Y) .564 + .5``
    (each clamped to [0, 1] when ``clamp``). Returns three ``(B, 1, H, W)`` tensors."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cr = (r - y) * 0.713 + 0.5
    cb = (b - y) * 0.564 + 0.5
    if clamp:
        y, cr, cb = y.clamp(0, 1), cr.clamp(0, 1), cb.clamp(0, 1)
    return y, cr, cb


def ycrcb_float_to_rgb(y: torch.Tensor, cr: torch.Tensor, cb: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`ycrcb_float` (``R = Y + 1.403 (Cr - .5)``, ``G = Y - .714 (Cr - .5) -
    .344 (Cb - .5)``, ``B = Y + 1.773 (Cb - .5)``), clamped to [0, 1] -> ``(B, 3, H, W)``."""
    r = y + 1.403 * (cr - 0.5)
    g = y - 0.714 * (cr - 0.5) - 0.344 * (cb - 0.5)
    b = y + 1.773 * (cb - 0.5)
    return torch.cat([r, g, b], dim=1).clamp(0.0, 1.0)


def minmax_stretch(x: torch.Tensor) -> torch.Tensor:
    """``(x - min) / (max - min)`` over the whole tensor (all channels); a flat image stays as is."""
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else x


def truncate_u8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """``uint8(255 x)`` with truncation (``astype``/``np.uint8``, no rounding) of a [0, 1]
    ``(1, C, H, W)``/``(C, H, W)`` tensor or ``(H, W[, C])`` array -> ``(H, W)`` or ``(H, W, 3)``."""
    a = _hwc(x)
    return (np.clip(a, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


def round_u8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Rounded 8-bit conversion (what scikit-image / OpenCV do with float images in [0, 1]
    scaled to 0..255): ``rint(255 x)``."""
    a = _hwc(x)
    return np.rint(np.clip(a, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


def _hwc(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        t = x.detach().float().cpu()
        while t.ndim > 3:
            t = t[0]
        if t.ndim == 3:
            t = t[0] if t.shape[0] == 1 else t.permute(1, 2, 0)
        return t.numpy()
    return np.asarray(x, dtype=np.float32)


def to_tensor_u8(a: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 ``(H, W)`` / ``(H, W, C)`` -> float32 ``(1, C, H, W)`` in [0, 1] (torchvision ``to_tensor``)."""
    t = torch.from_numpy(np.ascontiguousarray(a)).float().div(255.0)
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    return t[None].to(device)


def check_same_size(ir: np.ndarray, vi: np.ndarray, ir_path: Path, vi_path: Path) -> None:
    if ir.shape[:2] != vi.shape[:2]:
        raise ShapeMismatchError(f"{vi_path}: size {vi.shape[1]}x{vi.shape[0]} differs from infrared {ir_path} "
                                 f"{ir.shape[1]}x{ir.shape[0]} (images must be registered to the same size)")
