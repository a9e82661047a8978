"""Looking at images: static figures and an ipywidgets comparer.

* :func:`show_images` - a row/grid of images with titles (matplotlib Figure);
* :func:`side_by_side` - two images next to each other (the static comparison, also what
  an HTML export shows, since widgets need a live kernel);
* :func:`wipe` - a split view: left part of A, right part of B (numpy, for the slider);
* :class:`ImageCompare` - ipywidgets viewer: pick any two images from a dict, compare them
  side by side or with a wipe slider. No JS extension needed (ipywidgets 8, JupyterLab 4).

Images are file paths, ``(H, W[, 3])`` numpy arrays in [0, 1] / uint8, or ``(C, H, W)``
tensors in [0, 1].
"""
from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..io import png_bytes

ImageLike = Any  # path | np.ndarray | torch.Tensor


def to_array(img: ImageLike) -> np.ndarray:
    """Image-like -> float32 ``(H, W, 3)`` array in [0, 1] (gray is replicated)."""
    if isinstance(img, (str, os.PathLike)):
        from ..io import read_array

        arr = read_array(img)
    elif hasattr(img, "detach"):  # torch tensor (C, H, W) or (1, C, H, W)
        t = img.detach().float().cpu()
        t = t[0] if t.ndim == 4 else t
        arr = t.permute(1, 2, 0).numpy() if t.ndim == 3 else t.numpy()
    else:
        arr = np.asarray(img)
        arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.clip(arr, 0.0, 1.0).astype(np.float32)


def _same_size(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop both to the common size (runs of different presets may save different sizes)."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    return a[:h, :w], b[:h, :w]


def wipe(a: ImageLike, b: ImageLike, split: float = 0.5, line: bool = True) -> np.ndarray:
    """Left ``split`` fraction from ``a``, the rest from ``b`` -> ``(H, W, 3)`` in [0, 1]."""
    a, b = _same_size(to_array(a), to_array(b))
    x = int(round(np.clip(split, 0.0, 1.0) * a.shape[1]))
    out = np.concatenate([a[:, :x], b[:, x:]], axis=1)
    if line and 0 < x < out.shape[1]:
        out[:, x - 1:x + 1] = (1.0, 0.85, 0.0)  # a visible seam
    return out


def side_by_side_array(a: ImageLike, b: ImageLike, gap: int = 4) -> np.ndarray:
    a, b = to_array(a), to_array(b)
    h = max(a.shape[0], b.shape[0])
    pad = lambda x: np.pad(x, ((0, h - x.shape[0]), (0, 0), (0, 0)), constant_values=1.0)  # noqa: E731
    return np.concatenate([pad(a), np.ones((h, gap, 3), np.float32), pad(b)], axis=1)


def widget_bundle(widget, static_png, name: str, **kwargs) -> dict:
    """Display bundle of an ipywidget with a static picture of its current state beside it.

    A frontend with a widget manager (JupyterLab) renders the live widget; everything else
    (nbconvert HTML, GitHub, papermill outputs, a terminal IPython) renders ``image/png``
    (see :mod:`fusionlab.viz.export` for exports of notebooks that stored widget state).

    Args:
        widget: the ipywidgets view.
        static_png: PNG bytes, or a zero-argument callable returning them (called now).
        name: what to call the widget in the ``text/plain`` fallback.
    """
    data = dict(widget._repr_mimebundle_(**kwargs) or {})
    data["text/plain"] = f"{name}: interactive widget (needs JupyterLab / a widget frontend); static picture attached"
    try:
        png = static_png() if callable(static_png) else static_png
        data["image/png"] = base64.b64encode(png).decode("ascii")
    except Exception as e:  # a broken picture must never hide the live widget
        data["text/plain"] += f" (static picture failed: {type(e).__name__}: {e})"
    return data


def show_images(images: Sequence[ImageLike] | Mapping[str, ImageLike], titles: Sequence[str] | None = None,
                cols: int | None = None, size: float = 3.0, suptitle: str | None = None):
    """Images in a grid with titles -> matplotlib Figure."""
    import matplotlib.pyplot as plt

    if isinstance(images, Mapping):
        titles, images = list(images.keys()), list(images.values())
    images = list(images)
    n = len(images)
    if n == 0:
        raise ValueError("show_images: no images given")
    cols = cols or min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(to_array(images[i]), interpolation="nearest")
            if titles is not None and i < len(titles):
                ax.set_title(str(titles[i]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def side_by_side(a: ImageLike, b: ImageLike, titles: Sequence[str] = ("A", "B"), size: float = 4.0,
                 suptitle: str | None = None):
    """Static two-image comparison (plus |A - B|, which shows where the variants differ)."""
    a_arr, b_arr = _same_size(to_array(a), to_array(b))
    diff = np.abs(a_arr - b_arr).mean(axis=2)
    scale = max(float(diff.max()), 1e-6)
    return show_images([a_arr, b_arr, diff / scale], [*titles, f"|A - B| (x{1 / scale:.1f})"], cols=3, size=size,
                       suptitle=suptitle)


class ImageCompare:
    """ipywidgets viewer comparing any two of a dict of images (side by side or wipe).

    Example::

        ImageCompare({"teacher": "a.png", "student": "b.png", "IR": ir}).widget  # display it

    Attributes:
        widget: the ``ipywidgets.VBox`` to display.
        a, b: the ``Dropdown`` choosing the two images; ``mode``; ``split`` (wipe position).
    """

    def __init__(self, images: Mapping[str, ImageLike], a: str | None = None, b: str | None = None,
                 width: int = 640):
        import ipywidgets as w

        if len(images) < 1:
            raise ValueError("ImageCompare: no images to compare")
        self.images = dict(images)
        names = list(self.images)
        self._cache: dict[str, np.ndarray] = {}
        self.a = w.Dropdown(options=names, value=a or names[0], description="A",
                            layout=w.Layout(width="48%"))
        self.b = w.Dropdown(options=names, value=b or names[-1], description="B",
                            layout=w.Layout(width="48%"))
        self.mode = w.ToggleButtons(options=["side by side", "wipe"], value="side by side")
        self.split = w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01, description="wipe",
                                   continuous_update=True, readout_format=".2f")
        self.view = w.Image(format="png", layout=w.Layout(width=f"{width}px"))
        for ctl in (self.a, self.b, self.mode, self.split):
            ctl.observe(lambda _change: self.refresh(), names="value")
        self.widget = w.VBox([w.HBox([self.a, self.b]), w.HBox([self.mode, self.split]), self.view])
        self.refresh()

    def _get(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = to_array(self.images[name])
        return self._cache[name]

    def composite(self) -> np.ndarray:
        a, b = self._get(self.a.value), self._get(self.b.value)
        if self.mode.value == "wipe":
            return wipe(a, b, self.split.value)
        return side_by_side_array(a, b)

    def refresh(self) -> None:
        self.split.disabled = self.mode.value != "wipe"
        self.view.value = png_bytes(self.composite())

    def _repr_mimebundle_(self, **kwargs):  # display(ImageCompare(...)): the widget + its picture
        return widget_bundle(self.widget, lambda: png_bytes(self.composite()), type(self).__name__, **kwargs)


def find_samples(run_dir: str | os.PathLike) -> list[Path]:
    """Fused sample images a run wrote: ``samples/**`` first, else any image in the run
    folder (hidden files skipped), sorted."""
    from ..io import is_image_file

    d = Path(run_dir)
    for base in (d / "samples", d):
        if base.is_dir():
            found = sorted(p for p in base.rglob("*") if p.is_file() and is_image_file(p)
                           and not any(part.startswith(".") for part in p.relative_to(d).parts))
            if found:
                return found
    return []
