"""Inference helpers: colour handling, sliding windows with smooth overlap blending, and
automatic tiling under a memory budget.

The network fuses luma only: ``model(ir, vi_y, text) -> fused_y``. :func:`fuse_pair` applies
the colour convention of :mod:`fusionlab.color`: an RGB visible image is split into Y and
CbCr, its Y is fused with the infrared image and its CbCr is put back (as all peer methods do).

Big images. A dense network's activations grow with the pixel count (the student needs
~2 KB per pixel at inference, so a 6000x8000 pair would need ~100 GB at once). With
``max_memory`` :func:`fuse_pair` measures the model's memory per pixel once
(:func:`memory_model`), and when the whole image does not fit the budget it fuses the
largest tiles that do (:func:`plan_tiles`), blending their overlaps with a raised-cosine
window. Colour conversion also runs tile by tile / strip by strip, and ``uint8`` images go
in and out as ``uint8``, so no full-size float copy of a colour image is ever made.
"""
from __future__ import annotations

import json
import math
import os
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn

from .. import native
from ..color import merge_luma, split_luma, to_luma
from ..errors import ConfigError, InvalidTensorError, MemoryBudgetError, ShapeMismatchError
from .runtime import release_free_memory

#: default budget of ``fusionlab fuse --max-memory`` (peak resident memory of the process)
DEFAULT_MAX_MEMORY = "2GB"
#: smallest tile side auto-tiling will use (smaller tiles lose too much context)
MIN_TILE = 64
#: overlap of automatically planned tiles, in pixels (each side)
AUTO_OVERLAP = 64
#: images up to this many pixels are always fused whole, without measuring the model
SMALL_IMAGE_PIXELS = 256 * 256


# ----------------------------------------------------------------------------- memory sizes
_UNITS = {"": 1, "b": 1, "k": 2 ** 10, "kb": 2 ** 10, "kib": 2 ** 10, "m": 2 ** 20, "mb": 2 ** 20,
          "mib": 2 ** 20, "g": 2 ** 30, "gb": 2 ** 30, "gib": 2 ** 30, "t": 2 ** 40, "tb": 2 ** 40, "tib": 2 ** 40}


def parse_memory(value: int | float | str) -> int:
    """``"2GB"``, ``"1.5g"``, ``"512MiB"``, ``"800MB"`` or a number of bytes -> bytes.

    Units are binary (``GB`` = ``GiB`` = 2**30 bytes), as ``free`` and ``top`` show them.

    Raises:
        ConfigError: not a positive size.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        n = float(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _UNITS:
            raise ConfigError(f"memory size {value!r}: expected a number with an optional unit, e.g. 2GB, 512MB")
        n = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not math.isfinite(n) or n <= 0:
        raise ConfigError(f"memory size {value!r}: must be positive")
    return int(n)


def current_rss() -> int:
    """Resident memory of this process now, in bytes (Linux ``/proc``; elsewhere psutil, or
    the peak so far from ``getrusage`` as a conservative stand-in)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - optional dependency
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):
        return 0


# ----------------------------------------------------------------------------- memory model
@dataclass(frozen=True)
class MemoryModel:
    """Resident memory of one inference forward as ``fixed + per_pixel * B*H*W`` bytes."""

    fixed: float
    per_pixel: float

    def bytes(self, pixels: int) -> float:
        return self.fixed + self.per_pixel * pixels


#: safety factor on the fitted memory per pixel (measurement noise of the resident size;
#: tiles larger than the probes fragment the heap a little more)
PER_PIXEL_MARGIN = 1.2
#: fixed headroom added to every plan (interpreter growth, tile buffers, rounding)
RSS_HEADROOM = 64 * 2 ** 20
#: share of the budget kept free for what no estimate sees (allocator and library caches)
BUDGET_RESERVE = 0.05
#: probe sizes: the memory growth of a forward is concave in the pixel count (buffers of a
#: fixed size saturate), so the secant between two probes bounds it from above beyond them
_PROBES = ((256, 256), (384, 384))
_models: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    """Peak resident memory since the last :func:`_reset_peak_rss` (``VmHWM``), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def _disk_key(model: nn.Module, key: tuple) -> str | None:
    """Name of the on-disk memory model of ``model`` (CPU only): a hash of everything the
    measurement depends on - architecture (config, or parameter shapes), threads, kernel
    choice, text branch, probe sizes and margins, torch and fusionlab versions, CPU type."""
    import hashlib
    import platform

    from .. import __version__

    config = getattr(model, "config", None)
    arch = config.to_dict() if hasattr(config, "to_dict") else [
        (n, tuple(t.shape), str(t.dtype)) for n, t in model.state_dict().items()]
    parts = [type(model).__qualname__, arch, list(key), _PROBES, PER_PIXEL_MARGIN, RSS_HEADROOM,
             torch.__version__, __version__, platform.machine(), platform.processor(), os.cpu_count()]
    try:
        blob = json.dumps(parts, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _disk_path(name: str):
    from ..dirs import cache_dir

    return cache_dir() / "memory" / f"{name}.json"


def _read_disk(name: str | None) -> MemoryModel | None:
    if name is None:
        return None
    try:
        d = json.loads(_disk_path(name).read_text())
        mm = MemoryModel(float(d["fixed"]), float(d["per_pixel"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: measure again
    return mm if mm.fixed >= 0 and mm.per_pixel > 0 else None


def _write_disk(name: str | None, mm: MemoryModel) -> None:
    from ..io import atomic_write_text

    if name is None:
        return
    try:
        path = _disk_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"fixed": mm.fixed, "per_pixel": mm.per_pixel}))
    except OSError:
        pass  # a read-only cache only costs the measurement next time


def memory_model(model: nn.Module, text: torch.Tensor | None = None) -> MemoryModel:
    """Memory that ``model``'s inference forward adds to the process, per input pixel;
    measured once per model (and thread count / kernel choice) and cached - in the process,
    and for CPU models on disk (``<cache_dir>/memory/``, :func:`fusionlab.dirs.cache_dir`),
    so that each ``fusionlab fuse`` run does not spend ~0.7 of a 640x480 forward on probing.

    On Linux the model runs on random pairs at two small sizes and the growth of the
    process's peak resident memory is fitted as ``fixed + per_pixel * pixels`` - what the
    operating system counts, allocator slack and library buffers included. Elsewhere the
    profiler's peak tensor memory (:func:`fusionlab.models.profile.peak_memory_bytes`) is
    used, times 2.5 (the resident/tensor ratio measured on Linux).
    """
    from . import kernels
    from .profile import peak_memory_bytes

    key = (torch.get_num_threads(), kernels.enabled(), native.enabled(), text is not None)
    with _lock:
        cached = _models.setdefault(model, {}).get(key)
    if cached is not None:
        return cached
    dev = _model_device(model)
    g = torch.Generator().manual_seed(0)
    t = text[:1] if text is not None else None
    use_rss = dev.type == "cpu" and _reset_peak_rss()
    disk = _disk_key(model, key) if use_rss else None
    if (mm := _read_disk(disk)) is not None:
        with _lock:
            _models.setdefault(model, {})[key] = mm
        return mm
    if use_rss:
        release_free_memory()  # free memory kept by the allocator would hide the growth
    before = current_rss()
    growth = []
    with torch.no_grad():
        for h, w in _PROBES:
            ir, vi = (torch.rand(1, 1, h, w, generator=g).to(dev) for _ in range(2))
            if use_rss:
                _reset_peak_rss()
                model(ir, vi, t)
                growth.append(max(_peak_rss() - before, 0))
            else:
                growth.append(2.5 * peak_memory_bytes(model, ir, vi, t))
    (g1, g2), (n1, n2) = growth, [h * w for h, w in _PROBES]
    per_pixel = max((g2 - g1) / (n2 - n1), 1.0) * PER_PIXEL_MARGIN
    fixed = max(g2 - per_pixel * n2, 0.0) + RSS_HEADROOM
    mm = MemoryModel(fixed, per_pixel)
    with _lock:
        _models.setdefault(model, {})[key] = mm
    _write_disk(disk, mm)
    return mm


def _available(dev: torch.device, max_memory: int) -> int:
    if dev.type == "cuda":
        return max_memory - torch.cuda.memory_allocated(dev)
    return max_memory - current_rss()


def plan_tiles(model: nn.Module, size: tuple[int, int], max_memory: int | str, batch: int = 1,
               extra_bytes: int = 0, text: torch.Tensor | None = None,
               overlap: int | None = None) -> tuple[int, int] | None:
    """Tile size ``(th, tw)`` under which fusing an ``H x W`` pair stays within ``max_memory``,
    or None when the whole image fits.

    ``max_memory`` bounds the process's resident memory (CPU) or the allocated device
    memory (CUDA); what the process already holds and ``extra_bytes`` (whole-image output
    buffers) are subtracted first. Images up to :data:`SMALL_IMAGE_PIXELS` are always fused
    whole (no measurement). Tiles are as large as fits (fewer tiles = less overlap
    work and more context) and multiples of 8.

    Raises:
        MemoryBudgetError: not even a ``MIN_TILE`` tile fits the budget.
    """
    budget = parse_memory(max_memory)
    overlap = AUTO_OVERLAP if overlap is None else overlap
    h, w = size
    if batch * h * w <= SMALL_IMAGE_PIXELS:
        return None
    dev = _model_device(model)
    mm = memory_model(model, text)
    def room() -> int:
        return _available(dev, budget) - extra_bytes - int(BUDGET_RESERVE * budget)

    avail = room()
    if mm.bytes(batch * h * w) > avail and dev.type == "cpu" and release_free_memory():
        avail = room()  # heap memory freed but kept by tune_cpu_allocator() is not in use: given back first
    if mm.bytes(batch * h * w) <= avail:
        return None
    pixels = (avail - mm.fixed) / (mm.per_pixel * batch)
    side = int(math.sqrt(max(pixels, 0))) // 8 * 8
    if side < MIN_TILE + 2 * overlap and side < min(h, w):
        need = mm.bytes(batch * (MIN_TILE + 2 * overlap) ** 2) + extra_bytes
        have = _available(dev, budget)
        raise MemoryBudgetError(
            f"memory budget {_mb(budget)}: {_mb(budget - have)} are already in use and tiles of "
            f"{MIN_TILE + 2 * overlap}x{MIN_TILE + 2 * overlap} need {_mb(need)} more; raise --max-memory")
    # a long thin image keeps its short side whole and spends the pixels along the long one
    th = min(h, side) if h <= w else min(h, max(side, int(pixels // max(min(w, side), 1)) // 8 * 8))
    tw = min(w, max(side, int(pixels // th) // 8 * 8))
    return th, tw


def _mb(n: float) -> str:
    return f"{n / 2 ** 20:.0f} MB"


# ----------------------------------------------------------------------------- fuse_pair
def _batched(x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4) or x.shape[-3] not in (1, 3):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidTensorError(f"fuse_pair: {what} must be a (B, 1|3, H, W) or (1|3, H, W) tensor, got {shape}")
    if not (x.dtype.is_floating_point or x.dtype == torch.uint8):
        raise InvalidTensorError(f"fuse_pair: {what} must be float in [0, 1] or uint8, got {x.dtype}")
    return x[None] if x.ndim == 3 else x


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _to_float(x: torch.Tensor, device) -> torch.Tensor:
    """A (tile of an) image as float32 in [0, 1] on ``device``; uint8 is divided by 255."""
    x = x.to(device)
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


@torch.no_grad()
def fuse_pair(model: nn.Module, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None = None,
              tile: int | tuple[int, int] | None = None, overlap: int = 32,
              max_memory: int | str | None = None,
              progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Fuse an infrared and a visible image (gray or colour) with ``model``.

    Args:
        model: any fusion network following ``model(ir, vi_y, text) -> fused_y``.
        ir: ``(B, 1|3, H, W)`` or ``(1|3, H, W)``, float in [0, 1] or uint8 (3 channels are
            reduced to luma).
        vi: same layout; RGB keeps its colour (CbCr).
        text: ``(B, text_dim)`` embeddings or None.
        tile: if set, fuse ``tile x tile`` (or ``(th, tw)``) windows sliding with ``overlap``
            pixels of overlap, blended with raised-cosine ramps; None fuses at once, or in
            automatically planned tiles when ``max_memory`` is set and the image needs it.
        overlap: overlap of neighbouring explicit tiles in pixels (automatic tiles use
            :data:`AUTO_OVERLAP`).
        max_memory: budget for the process's peak resident memory (``"2GB"``, bytes, ...);
            None = no budget. Within budget the whole image is fused at once (the result
            is then exactly the untiled one).
        progress: called as ``progress(done, total)`` after every tile.

    Returns:
        fused image on ``ir``'s device, same batch-ness as the input, with ``vi``'s channel
        count: ``(B, 1, H, W)`` for gray, ``(B, 3, H, W)`` RGB for colour; float32 in [0, 1],
        or uint8 when ``vi`` is uint8 (rounded like :func:`fusionlab.io.to_uint8`).
    """
    squeeze = ir.ndim == 3
    ir_b, vi_b = _batched(ir, "ir"), _batched(vi, "vi")
    if ir_b.shape[-2:] != vi_b.shape[-2:] or ir_b.shape[0] != vi_b.shape[0]:
        raise ShapeMismatchError(f"fuse_pair: ir {tuple(ir.shape)} and vi {tuple(vi.shape)} differ in size")
    b, c, h, w = vi_b.shape
    dev = _model_device(model)
    if text is not None:
        text = text.to(dev)
    out_dtype = torch.uint8 if vi_b.dtype == torch.uint8 else torch.float32
    if tile is None and max_memory is not None:
        # whole-image buffers beside the model: fused luma (float) and the output image
        extra = b * h * w * (4 + c * (1 if out_dtype == torch.uint8 else 4))
        tile = plan_tiles(model, (h, w), max_memory, batch=b, extra_bytes=extra, text=text)
        overlap = AUTO_OVERLAP
    if tile:
        fused_y = sliding_window(model, ir_b, vi_b, text, tile=tile, overlap=overlap, progress=progress)
    else:
        fused_y = model(_luma(ir_b, dev), _luma(vi_b, dev), text).float()
        if progress:
            progress(1, 1)
    out = _restore_colour(fused_y, vi_b, out_dtype).to(ir.device)
    return out[0] if squeeze else out


def _luma(x: torch.Tensor, device) -> torch.Tensor:
    """Y channel of a (tile of an) image as float32 ``(B, 1, h, w)`` on ``device``."""
    return to_luma(_to_float(x, device))


def _restore_colour(fused_y: torch.Tensor, vi: torch.Tensor, dtype: torch.dtype,
                    strip_pixels: int = 1 << 18) -> torch.Tensor:
    """Clamp the fused luma and put the visible CbCr back, a strip of rows at a time (the
    conversion temporaries stay small for any image size)."""
    b, c, h, w = vi.shape
    out = torch.empty(b, c, h, w, dtype=dtype, device=fused_y.device)
    rows = max(1, strip_pixels // max(w * b, 1))
    for y0 in range(0, h, rows):
        y = fused_y[..., y0:y0 + rows, :].clamp(0.0, 1.0)
        if c == 3:
            y = merge_luma(y, split_luma(_to_float(vi[..., y0:y0 + rows, :], y.device))[1])
        if dtype == torch.uint8:
            y = (y * 255.0 + 0.5).to(torch.uint8)  # = fusionlab.io.to_uint8's rounding
        out[..., y0:y0 + rows, :] = y
    return out


# ----------------------------------------------------------------------------- sliding window
def _window(n: int, overlap: int, first: bool, last: bool, device) -> torch.Tensor:
    """1-D blending weights of one tile: 1 inside, a raised-cosine ramp (C1-smooth, no
    visible kink) over ``overlap`` pixels on sides that have a neighbour."""
    w = torch.ones(n, device=device)
    r = min(overlap, n // 2)
    if r > 0:
        t = (torch.arange(r, device=device, dtype=torch.float32) + 0.5) / r
        ramp = torch.sin(t * (math.pi / 2)) ** 2
        if not first:
            w[:r] = ramp
        if not last:
            w[n - r:] = ramp.flip(0)
    return w


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    s = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(s))


def _axis_weights(size: int, tile: int, overlap: int, device) -> tuple[list[int], list[torch.Tensor]]:
    """Tile starts along one axis and each tile's normalised 1-D weights: the weights of all
    tiles covering a pixel sum to 1 along this axis (so the 2-D outer products do too)."""
    starts = _starts(size, tile, max(1, tile - overlap))
    n = min(tile, size)
    raw = [_window(n, overlap, i == 0, i == len(starts) - 1, device) for i in range(len(starts))]
    total = torch.zeros(size, device=device)
    for s, wgt in zip(starts, raw):
        total[s:s + n] += wgt
    return starts, [wgt / total[s:s + n] for s, wgt in zip(starts, raw)]


@torch.no_grad()
def sliding_window(model: nn.Module, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None = None,
                   tile: int | tuple[int, int] = 256, overlap: int = 32,
                   progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Fuse ``(B, 1|3, H, W)`` inputs tile by tile and blend the overlaps.

    Each tile's output is weighted by the outer product of raised-cosine ramps (1 inside,
    falling smoothly to ~0 over ``overlap`` pixels on sides that have a neighbour, so the
    tile borders - where the network saw padding instead of context - barely count and no
    seam shows), normalised so the weights of every pixel sum to 1; image borders keep full
    weight. Inputs may be float or uint8 and colour: each tile is converted to luma on the
    model's device on its own. Returns the fused luma ``(B, 1, H, W)`` float32.
    """
    th, tw = (tile, tile) if isinstance(tile, int) else (int(tile[0]), int(tile[1]))
    if min(th, tw) < 8 or overlap < 0 or overlap >= min(th, tw):
        raise InvalidTensorError(f"sliding window: need tile >= 8 and 0 <= overlap < tile, got tile={tile}, "
                                 f"overlap={overlap}")
    b, _, h, w = ir.shape
    dev = _model_device(model)
    ys, wys = _axis_weights(h, th, overlap, dev)
    xs, wxs = _axis_weights(w, tw, overlap, dev)
    th, tw = min(th, h), min(tw, w)
    acc = torch.zeros(b, 1, h, w, device=dev)
    done, total = 0, len(ys) * len(xs)
    for y, wy in zip(ys, wys):
        for x, wx in zip(xs, wxs):
            out = model(_luma(ir[..., y:y + th, x:x + tw], dev), _luma(vi[..., y:y + th, x:x + tw], dev), text)
            acc[..., y:y + th, x:x + tw].addcmul_(out.float(), wy[:, None] * wx[None, :])
            done += 1
            if progress:
                progress(done, total)
    return acc


FusionFn = Callable[..., torch.Tensor]


def as_fusion_fn(method: Any) -> FusionFn:
    """Turn a method spec into ``fn(ir (1,1,H,W), vi (1,C,H,W), text=None) -> fused (1,C,H,W)`` in [0, 1].

    Accepted: a fusion ``nn.Module`` (colour via :func:`fuse_pair`; it gets ``text``); a
    checkpoint path (``.pt``) or a run folder (:func:`~.checkpoint.find_checkpoint`; loaded on
    first use); a callable ``(ir, vi) -> fused`` (``text`` is not passed to it).

    Raises:
        ConfigError: anything else. CheckpointError: no checkpoint at the path.
    """
    if isinstance(method, nn.Module):
        model = method.eval()
        return lambda ir, vi, text=None: fuse_pair(model, ir, vi, text=text)
    if isinstance(method, (str, os.PathLike)):
        from .checkpoint import find_checkpoint, load_checkpoint

        path = find_checkpoint(method)
        loaded: list[FusionFn] = []

        def from_checkpoint(ir, vi, text=None):
            if not loaded:
                loaded.append(as_fusion_fn(load_checkpoint(path, map_location="cpu")[0]))
            return loaded[0](ir, vi, text)

        return from_checkpoint
    if callable(method):
        return lambda ir, vi, text=None: method(ir, vi)
    raise ConfigError(f"cannot use {type(method).__name__} as a fusion method (give a model, a callable, "
                      "a checkpoint or a run folder)")
