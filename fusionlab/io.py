"""Image I/O in one place: reading (8/16-bit, gray, RGB, RGBA, palette), PNG encoding and
atomic writing (colour conversion lives in :mod:`fusionlab.color`; its functions are
importable from here too).

Conventions used throughout fusionlab:

* images in memory are float32 torch tensors in [0, 1], shape ``(C, H, W)`` (C = 1 or 3),
  batched as ``(B, C, H, W)``;
* reading never silently guesses: 16-bit files are scaled by 65535, palette images are
  expanded to RGB, an alpha channel is dropped (alpha-composited on black is NOT done
  because fusion datasets store alpha only as an always-opaque artefact), grayscale stored
  as RGB with R=G=B stays RGB unless ``mode="gray"`` is asked for;
* every write goes to a temporary file in the target folder and is renamed into place,
  so an interrupted run never leaves a half-written image, CSV or checkpoint.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .color import rgb_to_ycbcr, to_luma, ycbcr_to_rgb  # noqa: F401  (re-exported: fusionlab.io.to_luma)
from .errors import ImageReadError, ImageTooLargeError, InvalidTensorError, OutputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Refuse images above this many pixels (override with FUSIONLAB_MAX_PIXELS); larger inputs
#: are almost always a mistake and would exhaust memory in a dense network.
MAX_PIXELS = int(os.environ.get("FUSIONLAB_MAX_PIXELS", str(8192 * 8192)))

Mode = Literal["auto", "gray", "rgb"]


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


# ----------------------------------------------------------------------------- reading
def read_array(path: str | os.PathLike, mode: Mode = "auto", keep_8bit: bool = False) -> np.ndarray:
    """Read an image file as float32 numpy in [0, 1].

    Args:
        path: image file (PNG/JPG/BMP/TIFF/WebP; 8-bit or 16-bit; L, LA, P, RGB, RGBA, I;16).
        mode: ``"auto"`` keeps gray as ``(H, W)`` and colour as ``(H, W, 3)``;
            ``"gray"`` returns ``(H, W)`` luma (ITU-R BT.601, as OpenCV/kornia);
            ``"rgb"`` returns ``(H, W, 3)`` (gray replicated).
        keep_8bit: return 8-bit files as uint8 0..255 instead (a quarter of the memory; other
            bit depths, and ``"gray"`` of a colour file, still come as float32).

    Raises:
        ImageReadError: missing, empty, truncated, corrupt or unsupported file.
        ImageTooLargeError: more than ``MAX_PIXELS`` pixels.
    """
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"{p}: file not found")
    if p.is_dir():
        raise ImageReadError(f"{p}: is a folder, expected an image file")
    if p.stat().st_size == 0:
        raise ImageReadError(f"{p}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageTooLargeError(
                        f"{p}: {w}x{h} image has {w * h} pixels, above the limit of {MAX_PIXELS} "
                        "(downscale it, or raise FUSIONLAB_MAX_PIXELS and fuse with --tile)"
                    )
                im.load()
                arr = _pil_to_uint8(im) if keep_8bit else None
                if arr is None:
                    arr = _pil_to_float(im, p)
    except (ImageReadError, ImageTooLargeError):
        raise
    except Image.DecompressionBombWarning as e:
        raise ImageTooLargeError(f"{p}: refused as too large ({e})") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{p}: not an image file PIL can identify (corrupt or wrong extension)") from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated / broken files
        raise ImageReadError(f"{p}: cannot decode image ({_one_line(e)}); the file is truncated or corrupt") from None
    if min(arr.shape[:2]) < 1:
        raise ImageReadError(f"{p}: image has zero size {arr.shape}")
    if mode == "gray" and arr.ndim == 3:
        arr = rgb_to_gray_np(arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr)
    elif mode == "rgb" and arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr, dtype=np.uint8 if arr.dtype == np.uint8 else np.float32)


def _pil_to_uint8(im: Image.Image) -> np.ndarray | None:
    """8-bit gray/colour PIL image -> uint8 ``(H, W)`` / ``(H, W, 3)``; None for other depths."""
    m = im.mode
    if m in ("1", "L", "P", "PA", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"):
        if m in ("P", "PA"):
            im = im.convert("RGBA" if "transparency" in im.info or m == "PA" else "RGB")
            m = im.mode
        if m in ("1", "L", "LA"):  # np.array copies: a writable array, unlike np.asarray
            return np.array(im.getchannel(0) if m == "LA" else im.convert("L"))
        return np.array(im if m == "RGB" else im.convert("RGB"))
    return None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _pil_to_float(im: Image.Image, p: Path) -> np.ndarray:
    m = im.mode
    if m == "P" or m == "PA":
        im = im.convert("RGBA" if "transparency" in im.info or m == "PA" else "RGB")
        m = im.mode
    if m in ("1", "L"):
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    if m == "LA":
        return np.asarray(im.getchannel(0), dtype=np.float32) / 255.0
    if m in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.float32) / 65535.0
    if m == "I":  # 32-bit int; PNG 16-bit gray often arrives as "I"
        a = np.asarray(im, dtype=np.float64)
        scale = 65535.0 if a.max(initial=0) <= 65535 else float(a.max())
        return (np.clip(a, 0, None) / scale).astype(np.float32)
    if m == "F":
        a = np.asarray(im, dtype=np.float32)
        if not np.isfinite(a).all():
            raise ImageReadError(f"{p}: float image holds NaN/inf values")
        hi = a.max(initial=0)
        return np.clip(a / (hi if hi > 1 else 1.0), 0, 1)
    if m in ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    if m.startswith("RGB") or m.startswith("BGR"):
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    raise ImageReadError(f"{p}: unsupported PIL image mode {m!r}")


def rgb_to_gray_np(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W) with BT.601 luma weights (0.299, 0.587, 0.114)."""
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)


def read_image(path: str | os.PathLike, mode: Mode = "auto", keep_8bit: bool = False) -> torch.Tensor:
    """Read an image as a float32 tensor ``(C, H, W)`` in [0, 1] (C = 1 for gray, 3 for colour);
    with ``keep_8bit`` 8-bit files come as uint8 0..255 (see :func:`read_array`)."""
    arr = read_array(path, mode, keep_8bit)
    t = torch.from_numpy(arr)
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def is_grayscale_rgb(img: torch.Tensor, tol: float = 1.0 / 255) -> bool:
    """True when a ``(3, H, W)`` image has R = G = B (gray stored as RGB, as in TNO/M3FD IR)."""
    return img.shape[-3] == 3 and bool(
        (img[..., 0:1, :, :] - img[..., 1:2, :, :]).abs().max() <= tol
        and (img[..., 0:1, :, :] - img[..., 2:3, :, :]).abs().max() <= tol
    )


def as_batch(x, what: str = "image") -> torch.Tensor:
    """Tensor or array ``(H, W)``, ``(C, H, W)`` or ``(B, C, H, W)`` -> ``(B, C, H, W)`` tensor.

    Raises:
        InvalidTensorError: any other number of dimensions (the message names ``what``).
    """
    t = torch.as_tensor(x)
    if t.ndim in (2, 3):
        t = t.reshape((1,) * (4 - t.ndim) + tuple(t.shape))
    if t.ndim != 4:
        raise InvalidTensorError(f"{what}: expected (H, W), (C, H, W) or (B, C, H, W), got shape {tuple(t.shape)}")
    return t


def check_finite(t: torch.Tensor, what: str = "tensor") -> torch.Tensor:
    """Raise :class:`InvalidTensorError` if ``t`` holds NaN or inf."""
    if not torch.isfinite(t).all():
        n = int((~torch.isfinite(t)).sum())
        raise InvalidTensorError(f"{what} holds {n} NaN/inf values")
    return t


# ----------------------------------------------------------------------------- writing
def _current_umask() -> int:
    # /proc avoids the set-and-restore race of os.umask() where the kernel offers it
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    A crash or kill before the rename leaves the old file (if any) untouched.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix + ".tmp",
                                   dir=target.parent)
        os.close(fd)
    except OSError as e:
        raise OutputError(f"{target.parent}: cannot write here ({_one_line(e)})") from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the mode a plain open() would (0666 & ~umask)
        with contextlib.suppress(OSError):
            os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
        _fsync(tmp)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        _fsync(tmp)
    return Path(path)


def _fsync(p: Path) -> None:
    with contextlib.suppress(OSError), open(p, "rb+") as f:
        os.fsync(f.fileno())


def to_uint8(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(C, H, W)``/``(H, W)`` tensor or ``(H, W[, C])`` array in [0, 1] -> uint8 ``(H, W[, 3])``
    (uint8 input is taken as 0..255 and passed through)."""
    if isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        t = t if t.dtype == torch.uint8 else t.float()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise InvalidTensorError(f"write one image at a time, got batch shape {tuple(t.shape)}")
            t = t[0]
        if t.ndim == 3:
            t = t[0] if t.shape[0] == 1 else t.permute(1, 2, 0)
        arr = t.numpy()
    else:
        arr = np.asarray(img)
        arr = arr if arr.dtype == np.uint8 else arr.astype(np.float32, copy=False)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if not np.isfinite(arr).all():
        raise InvalidTensorError("image to write holds NaN/inf values")
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def png_bytes(img: torch.Tensor | np.ndarray, compress_level: int = 6) -> bytes:
    """An image -> PNG bytes: a ``(H, W[, 3])`` uint8 array as is, anything :func:`to_uint8`
    takes (``(C, H, W)`` tensors, float arrays in [0, 1]) converted first. ``compress_level``
    1 is ~5x faster than the default 6 (for pictures re-encoded on every slider step)."""
    arr = img if isinstance(img, np.ndarray) and img.dtype == np.uint8 else to_uint8(img)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def write_image(path: str | os.PathLike, img: torch.Tensor | np.ndarray) -> Path:
    """Write an image in [0, 1] as 8-bit PNG/JPG atomically; returns the path.

    Accepts ``(C, H, W)`` / ``(1, C, H, W)`` tensors or ``(H, W[, C])`` arrays.
    """
    p = Path(path)
    try:
        arr = to_uint8(img)
    except InvalidTensorError as e:  # name the file the bad image was meant for
        raise InvalidTensorError(f"{p}: {e}") from None
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
           ".webp": "WEBP"}.get(p.suffix.lower(), "PNG")
    with atomic_path(p) as tmp:
        try:
            Image.fromarray(arr).save(tmp, format=fmt)
        except OSError as e:
            raise OutputError(f"{p}: cannot write image ({_one_line(e)})") from None
    return p


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder`` (sorted, hidden files skipped)."""
    d = Path(folder)
    return sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith(".") and is_image_file(f))
