"""Walkthrough widgets: look at IR, VI and fused images side by side, interactively.

Three widgets for the notebooks (ipywidgets 8; JupyterLab 4 shows them without building
an extension):

* :class:`CompareWidget` - a before/after swipe (or blend, or difference) between any two
  of IR, VI and fused images, with a metric readout of both sides;
* :class:`FusionExplorer` - dropdowns to pick the image and the model/run; it fuses on
  demand (cached) and feeds a :class:`CompareWidget`;
* :class:`DegradationExplorer` - apply one of the Text-IF degradations and watch the
  captions and every model's fusion respond.

This module only draws: scores come from :func:`fusionlab.metrics.fusion_scores`, models run
through :func:`fusionlab.models.as_fusion_fn` (models, callables, checkpoints, run folders),
PNGs are encoded by :func:`fusionlab.io.png_bytes`.

Why a server-side slider: a client-side swipe needs a JavaScript widget (anywidget) and a
front-end extension; recomposing a <= 512 px image in numpy and re-encoding it as PNG costs
~10 ms per slider step, smooth enough, and keeps everything in Python.

Graceful degradation: each widget's display bundle carries a static ``image/png`` picture
of its state next to the widget view. JupyterLab renders the live widget; nbconvert HTML,
GitHub, papermill outputs and frontends without a widget manager render the picture
instead of ``VBox(...)``. Outside a Jupyter kernel (plain ``python``) :func:`show` draws
the matplotlib figure; ``FUSIONLAB_WIDGETS=static`` forces static pictures everywhere.

Images are float tensors in [0, 1]: ``(C, H, W)`` or ``(1, C, H, W)`` with C = 1 or 3.
"""
from __future__ import annotations

import html
import io
import math
import os
from typing import Any, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import torch

from ..color import to_luma
from ..errors import ConfigError, ShapeMismatchError
from ..io import as_batch, png_bytes
from ..metrics.evaluate import PAPER_METRICS, fusion_scores  # noqa: F401  (fusion_scores: notebooks import it here)
from ..metrics.evaluate import SUMMARY_METRICS as DEFAULT_METRICS  # the readouts' metrics
from ..models.inference import as_fusion_fn
MODES = ("swipe", "blend", "difference")
_LINE_RGB = (255, 214, 0)  # the swipe line: yellow is visible on gray IR and colour VI alike


# ----------------------------------------------------------------------------- environment
def widget_mode() -> str:
    """``"interactive"`` inside a Jupyter kernel, ``"static"`` elsewhere (or when forced).

    ``FUSIONLAB_WIDGETS=static|interactive`` overrides the detection. A kernel cannot know
    whether a frontend with a widget manager is attached (papermill/nbval attach none), which
    is why interactive widgets always carry a static picture too (see module docstring).
    """
    forced = os.environ.get("FUSIONLAB_WIDGETS", "").strip().lower()
    if forced in ("static", "interactive"):
        return forced
    if forced:
        raise ConfigError(f"FUSIONLAB_WIDGETS={forced!r} is not one of static, interactive")
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return "static"
    shell = get_ipython()
    return "interactive" if shell is not None and getattr(shell, "kernel", None) is not None else "static"


def show(obj: Any) -> None:
    """Display a walkthrough widget the right way for the current environment.

    In a kernel: the widget (with its static picture in the same bundle). Otherwise: the
    widget's matplotlib figure via ``plt.show()`` (or ``display`` of the PNG under plain
    IPython). Returns None, so that ``show(w)`` as a cell's last line displays once.
    """
    if widget_mode() == "interactive":
        from IPython.display import display

        display(obj)
        return None
    fig = obj.figure() if hasattr(obj, "figure") else None
    if fig is None:
        return None
    try:
        from IPython import get_ipython

        if get_ipython() is not None:
            from IPython.display import Image, display

            display(Image(data=figure_png(fig)))
            import matplotlib.pyplot as plt

            plt.close(fig)
            return None
    except ImportError:  # pragma: no cover
        pass
    import matplotlib.pyplot as plt

    plt.show()
    return None


# ----------------------------------------------------------------------------- pixels
def to_display(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """Image in [0, 1] -> ``(H, W, 3)`` uint8 RGB for display (gray replicated).

    Accepts ``(H, W)``, ``(C, H, W)``, ``(1, C, H, W)`` tensors/arrays with C = 1 or 3, or an
    already converted ``(H, W, 3)`` uint8 array.
    """
    if isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3:
        return img
    t = torch.as_tensor(img).detach().float().cpu()
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ShapeMismatchError(f"display one image at a time, got a batch of shape {tuple(t.shape)}")
        t = t[0]
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise ShapeMismatchError(f"expected an image (C, H, W) with C = 1 or 3, got shape {tuple(t.shape)}")
    t = torch.nan_to_num(t, nan=0.0).clamp(0, 1)
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    return (t.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def fit_display(arr: np.ndarray, max_side: int | None, min_side: int | None = None) -> np.ndarray:
    """Resize ``(H, W, 3)`` uint8 for display: Lanczos-downscale so that the longer side is
    <= ``max_side``; enlarge small images by the largest integer factor (nearest: pixels stay
    crisp) that keeps the longer side <= ``min_side``."""
    from PIL import Image

    h, w = arr.shape[:2]
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        return np.asarray(Image.fromarray(arr).resize(size, Image.LANCZOS))
    if min_side and max(h, w) < min_side:
        k = min_side // max(h, w)
        if k > 1:
            return arr.repeat(k, axis=0).repeat(k, axis=1)
    return arr


def compose(a: np.ndarray, b: np.ndarray, position: float = 0.5, mode: str = "swipe",
            line: bool = True) -> np.ndarray:
    """Combine two ``(H, W, 3)`` uint8 images into one comparison picture.

    Args:
        a, b: left/"before" and right/"after" images of the same size.
        position: in [0, 1]. ``swipe``: columns left of ``position * W`` come from ``a``, the
            rest from ``b``; ``blend``: ``(1 - position) a + position b``; ``difference``:
            ``|a - b|`` amplified by ``1 + 7 * position`` (small differences become visible).
        mode: one of :data:`MODES`.
        line: draw the swipe line (``swipe`` only).

    Returns:
        ``(H, W, 3)`` uint8.
    """
    if a.shape != b.shape:
        raise ShapeMismatchError(f"cannot compare images of sizes {a.shape[:2]} and {b.shape[:2]}")
    if mode not in MODES:
        raise ConfigError(f"compare mode {mode!r} is not one of {', '.join(MODES)}")
    p = float(min(1.0, max(0.0, position)))
    if mode == "swipe":
        w = a.shape[1]
        x = int(round(p * w))
        out = np.concatenate([a[:, :x], b[:, x:]], axis=1)
        if line and 0 < x < w:
            out = out.copy()
            out[:, max(0, x - 1):x + 1] = _LINE_RGB
        return out
    af, bf = a.astype(np.float32), b.astype(np.float32)
    if mode == "blend":
        out = (1.0 - p) * af + p * bf
    else:
        out = np.abs(af - bf) * (1.0 + 7.0 * p)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def figure_png(fig, dpi: int = 80) -> bytes:
    """A matplotlib figure -> PNG bytes (the figure is left open)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


# ----------------------------------------------------------------------------- metrics
def metrics_html(columns: Mapping[str, Mapping[str, float] | None], metrics: Sequence[str] = DEFAULT_METRICS,
                 digits: int = 3) -> str:
    """An HTML table: one row per metric, one column per image; the best value per row in bold.

    "Best" is the lowest value for metrics where lower is better (MSE, Nabf); NaN shows as "-".
    """
    from ..metrics.registry import lower_is_better

    cols = [(name, vals or {}) for name, vals in columns.items()]
    head = "".join(f"<th style='padding:2px 8px'>{html.escape(n)}</th>" for n, _ in cols)
    rows = []
    for m in metrics:
        vals = [v.get(m, float("nan")) for _, v in cols]
        finite = [x for x in vals if isinstance(x, (int, float)) and math.isfinite(x)]
        best = (min(finite) if lower_is_better(m) else max(finite)) if len(finite) > 1 else None
        cells = []
        for x in vals:
            if not (isinstance(x, (int, float)) and math.isfinite(x)):
                cells.append("<td style='padding:2px 8px;text-align:right'>-</td>")
                continue
            s = f"{x:.{digits}f}"
            if best is not None and x == best:
                s = f"<b>{s}</b>"
            cells.append(f"<td style='padding:2px 8px;text-align:right'>{s}</td>")
        rows.append(f"<tr><td style='padding:2px 8px'>{html.escape(m)}</td>{''.join(cells)}</tr>")
    return (f"<table style='border-collapse:collapse;font-family:monospace;font-size:12px'>"
            f"<tr><th></th>{head}</tr>{''.join(rows)}</table>")


# ----------------------------------------------------------------------------- helpers
def _batch(x) -> torch.Tensor:
    return as_batch(x).float()


class _Lazy:
    """A dict of values that may be zero-argument callables, resolved once on first access."""

    def __init__(self, items: Mapping[str, Any]):
        self._src = dict(items)
        self._done: dict[str, Any] = {}

    def names(self) -> list[str]:
        return list(self._src)

    def __contains__(self, k: str) -> bool:
        return k in self._src

    def __getitem__(self, k: str) -> Any:
        if k not in self._done:
            v = self._src[k]
            self._done[k] = v() if callable(v) and not isinstance(v, torch.Tensor) else v
        return self._done[k]


class _StaticFallback:
    """Mixin for ipywidgets containers: add a static PNG of :meth:`figure` to the display bundle."""

    def figure(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def static_png(self) -> bytes:
        import matplotlib.pyplot as plt

        fig = self.figure()
        try:
            return figure_png(fig)
        finally:
            plt.close(fig)

    def _repr_mimebundle_(self, **kwargs):
        from .images import widget_bundle

        return widget_bundle(super(), self.static_png, type(self).__name__, **kwargs)


def _imshow(ax, img, title: str | None = None, fontsize: int = 9) -> None:
    ax.imshow(to_display(img) if not (isinstance(img, np.ndarray) and img.dtype == np.uint8) else img)
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)


# ----------------------------------------------------------------------------- CompareWidget
class CompareWidget(_StaticFallback, widgets.VBox):
    """Before/after comparison of IR, VI and fused images with a metric readout.

    Args:
        images: ``{name: image}`` with images ``(C, H, W)``/``(1, C, H, W)`` in [0, 1] (or
            zero-argument callables returning one, evaluated when first shown). Use the keys
            ``"IR"`` and ``"VI"`` for the sources so that metrics can be computed.
        metrics: ``"auto"`` (compute :data:`DEFAULT_METRICS` of every image against IR and VI,
            lazily), a mapping ``{name: {metric: value}}``, a callable ``name -> dict | None``,
            or None (no readout).
        left, right: initial image names (default: ``"VI"`` and the last image).
        position: initial slider position in [0, 1]. mode: one of :data:`MODES`.
        max_side: longer side of the displayed picture (big images are downscaled).
        min_side: small images are enlarged (integer factor, nearest) to about this size.
        metric_names: metrics listed in the readout.

    Attributes (widgets, for scripting and tests): ``left``, ``right`` (Dropdown), ``mode``
    (ToggleButtons), ``position`` (FloatSlider), ``image`` (Image), ``readout`` (HTML).
    """

    def __init__(self, images: Mapping[str, Any], metrics: Any = "auto", left: str | None = None,
                 right: str | None = None, position: float = 0.5, mode: str = "swipe",
                 max_side: int | None = 512, metric_names: Sequence[str] = DEFAULT_METRICS,
                 min_side: int | None = 320):
        w = widgets
        if not images:
            raise ConfigError("CompareWidget needs at least one image")
        if mode not in MODES:
            raise ConfigError(f"compare mode {mode!r} is not one of {', '.join(MODES)}")
        self.max_side, self.min_side, self.metric_names = max_side, min_side, tuple(metric_names)
        self.left = w.Dropdown(description="before", layout=w.Layout(width="210px"))
        self.right = w.Dropdown(description="after", layout=w.Layout(width="210px"))
        self.mode = w.ToggleButtons(options=list(MODES), value=mode, style={"button_width": "80px"})
        self.position = w.FloatSlider(value=position, min=0.0, max=1.0, step=0.01, readout_format=".2f",
                                      description="swipe", continuous_update=True, layout=w.Layout(width="520px"))
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.readout = w.HTML(layout=w.Layout(margin="0 0 0 12px"))
        super().__init__([w.HBox([self.left, self.right, self.mode]), self.position,
                          w.HBox([self.image, self.readout], layout=w.Layout(align_items="flex-start"))])
        self._metrics_cfg = metrics
        self.set_images(images, left=left, right=right)
        for ctl in (self.left, self.right, self.mode, self.position):
            ctl.observe(self._on_change, names="value")

    # -- data
    def set_images(self, images: Mapping[str, Any], left: str | None = None, right: str | None = None,
                   metrics: Any = None) -> None:
        """Replace the images (e.g. another pair); keeps the current left/right names if possible."""
        if metrics is not None:
            self._metrics_cfg = metrics
        self._images = _Lazy(images)
        self._display: dict[str, np.ndarray] = {}
        self._metric_cache: dict[str, dict | None] = {}
        names = self._images.names()
        old_l, old_r = self.left.value, self.right.value
        left = left or (old_l if old_l in names else ("VI" if "VI" in names else names[0]))
        right = right or (old_r if old_r in names else names[-1])
        for name in (left, right):
            if name not in names:
                raise ConfigError(f"image {name!r} not among {names}")
        self._updating = True
        try:
            self.left.options, self.right.options = names, names
            self.left.value, self.right.value = left, right
        finally:
            self._updating = False
        self.refresh()

    def add_image(self, name: str, image: Any) -> None:
        """Add (or replace) one image, e.g. a newly trained model's fusion."""
        items = {k: self._images._src[k] for k in self._images.names()}
        items[name] = image
        self.set_images(items)

    def tensor(self, name: str) -> torch.Tensor:
        """The image ``name`` as given (resolved if lazy)."""
        return self._images[name]

    def display_array(self, name: str) -> np.ndarray:
        if name not in self._display:
            self._display[name] = fit_display(to_display(self._images[name]), self.max_side, self.min_side)
        return self._display[name]

    def metrics_of(self, name: str) -> dict | None:
        """Metrics of image ``name`` (computed once), or None when not available."""
        if name in self._metric_cache:
            return self._metric_cache[name]
        cfg, vals = self._metrics_cfg, None
        if cfg is None:
            vals = None
        elif isinstance(cfg, str):
            if cfg != "auto":
                raise ConfigError(f"metrics={cfg!r}: use 'auto', a mapping, a callable or None")
            if "IR" in self._images and "VI" in self._images:
                vals = fusion_scores(self._images["IR"], self._images["VI"], self._images[name], self.metric_names)
        elif callable(cfg):
            vals = cfg(name)
        else:
            vals = cfg.get(name)
        self._metric_cache[name] = dict(vals) if vals is not None else None
        return self._metric_cache[name]

    # -- view
    def picture(self) -> np.ndarray:
        """The current comparison picture ``(H, W, 3)`` uint8."""
        return compose(self.display_array(self.left.value), self.display_array(self.right.value),
                       self.position.value, self.mode.value)

    def refresh(self) -> None:
        self.position.description = {"swipe": "swipe", "blend": "blend", "difference": "gain"}[self.mode.value]
        pic = self.picture()
        self.image.value = png_bytes(pic, compress_level=1)
        # show pixels 1:1 (a widgets.Image otherwise stretches to the output's width)
        self.image.layout.width = f"{pic.shape[1]}px"
        cols = {}
        for side, name in (("before", self.left.value), ("after", self.right.value)):
            cols[f"{side}: {name}"] = self.metrics_of(name)
        self.readout.value = metrics_html(cols, self.metric_names) if any(v for v in cols.values()) else ""

    def _on_change(self, change) -> None:
        if not self._updating:
            self.refresh()

    def figure(self, names: Sequence[str] | None = None):
        """Static view: every image side by side, metrics under each, plus the current swipe."""
        import matplotlib.pyplot as plt

        names = list(names or self._images.names())
        n = len(names) + 1
        fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.9), squeeze=False)
        for ax, name in zip(axes[0], names):
            m = self.metrics_of(name)
            sub = f"\nVIF {m['VIF']:.3f}  Qabf {m['Qabf']:.3f}" if m and "VIF" in m and "Qabf" in m else ""
            _imshow(ax, self.display_array(name), f"{name}{sub}", fontsize=8)
        _imshow(axes[0][-1], self.picture(), f"{self.left.value} | {self.right.value} ({self.mode.value})",
                fontsize=8)
        fig.tight_layout()
        return fig


# ----------------------------------------------------------------------------- FusionExplorer
class FusionExplorer(_StaticFallback, widgets.VBox):
    """Pick an image and a model/run from dropdowns; compare its fusion with IR and VI.

    Args:
        pairs: a sequence of dicts with ``ir`` ``(1, H, W)``, ``vi`` ``(C, H, W)`` and ``name``
            (a :class:`~fusionlab.data.PairedFolder`, :class:`~fusionlab.data.SyntheticPairs`
            or a list of such items).
        methods: ``{name: method}``, see :func:`as_fusion_fn` (models, callables, checkpoints,
            run folders). Fusions are computed when first selected and cached.
        metrics: ``"auto"`` or None (see :class:`CompareWidget`).
        max_side: display size of the comparison.

    Attributes: ``pair`` and ``method`` (Dropdown), ``compare`` (:class:`CompareWidget`).
    """

    def __init__(self, pairs: Sequence[dict], methods: Mapping[str, Any], metrics: Any = "auto",
                 max_side: int | None = 512, metric_names: Sequence[str] = DEFAULT_METRICS):
        w = widgets
        if len(pairs) == 0:
            raise ConfigError("FusionExplorer needs at least one image pair")
        if not methods:
            raise ConfigError("FusionExplorer needs at least one fusion method")
        self.pairs = pairs
        self._fns = {name: as_fusion_fn(m) for name, m in methods.items()}
        self._fused: dict[tuple[int, str], torch.Tensor] = {}
        names = [str(pairs[i].get("name", f"pair {i}")) for i in range(len(pairs))]
        self.pair = w.Dropdown(options=[(n, i) for i, n in enumerate(names)], value=0, description="image",
                               layout=w.Layout(width="260px"))
        self.method = w.Dropdown(options=list(self._fns), value=list(self._fns)[0], description="model/run",
                                 layout=w.Layout(width="260px"))
        self.compare = CompareWidget(self._images(0), metrics=metrics, left="VI", right=self.method.value,
                                     max_side=max_side, metric_names=metric_names)
        super().__init__([w.HBox([self.pair, self.method]), self.compare])
        self.pair.observe(self._on_pair, names="value")
        self.method.observe(self._on_method, names="value")

    def fused(self, index: int, method: str) -> torch.Tensor:
        """Fusion of pair ``index`` by ``method`` ``(1, C, H, W)`` in [0, 1] (cached)."""
        key = (int(index), method)
        if key not in self._fused:
            item = self.pairs[index]
            with torch.no_grad():
                self._fused[key] = self._fns[method](_batch(item["ir"]), _batch(item["vi"])).detach().cpu()
        return self._fused[key]

    def _images(self, index: int) -> dict:
        item = self.pairs[index]
        imgs: dict[str, Any] = {"IR": _batch(item["ir"]), "VI": _batch(item["vi"])}
        for m in self._fns:
            imgs[m] = (lambda m=m: self.fused(index, m))
        return imgs

    def _on_pair(self, change) -> None:
        self.compare.set_images(self._images(change["new"]))

    def _on_method(self, change) -> None:
        self.compare.right.value = change["new"]

    def figure(self):
        return self.compare.figure()


# ----------------------------------------------------------------------------- DegradationExplorer
class DegradationExplorer(_StaticFallback, widgets.VBox):
    """Degrade one pair and watch captions and fusions respond.

    Controls: the degradation (one of :data:`fusionlab.data.DEGRADATIONS`) and the random
    draw (seed). For each setting it shows the degraded IR and VI, the caption each
    captioner writes for them, and the fusion of each model with its metrics.

    Args:
        pair: dict with ``ir`` ``(1, H, W)``, ``vi`` ``(C, H, W)`` in [0, 1] and ``name``.
        models: ``{name: model_or_callable}``. A model whose ``config.text_dim`` is set gets
            the text embedding of ``prior`` (the caption of the *degraded* pair); others (and
            callables ``(ir, vi) -> fused``) fuse without text.
        prior: a :class:`fusionlab.text.TextPrior` that embeds captions for text-guided models
            (default: none; text-guided models then run without text).
        captioners: ``{name: captioner}`` shown in the caption panel (default: the prior's
            captioner, if any).
        metric_names: metrics listed per model.
        max_side: longer side of the displayed pictures.
    """

    def __init__(self, pair: dict, models: Mapping[str, Any], prior: Any = None,
                 captioners: Mapping[str, Any] | None = None, metric_names: Sequence[str] = PAPER_METRICS,
                 label: str = "normal", seed: int = 0, max_side: int | None = 320):
        from ..data import DEGRADATIONS

        w = widgets
        self._pair = {"ir": _batch(pair["ir"]), "vi": _batch(pair["vi"]), "name": str(pair.get("name", "pair"))}
        self.prior = prior
        if captioners is None:
            captioners = {prior.source: prior.captioner} if getattr(prior, "captioner", None) is not None else {}
        self.captioners = dict(captioners)
        self.models = dict(models)
        if not self.models:
            raise ConfigError("DegradationExplorer needs at least one model")
        self._fns = {name: as_fusion_fn(m) for name, m in self.models.items()}
        self.metric_names, self.max_side = tuple(metric_names), max_side
        self.label = w.ToggleButtons(options=list(DEGRADATIONS), value=label, description="degrade",
                                     style={"button_width": "110px"})
        self.seed = w.IntSlider(value=seed, min=0, max=20, description="draw (seed)", continuous_update=False)
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.captions = w.HTML()
        self.readout = w.HTML()
        super().__init__([self.label, self.seed, self.image, w.HBox([self.captions, self.readout])])
        self._cache: dict[tuple[str, int], dict] = {}
        self.refresh()
        self.label.observe(lambda _c: self.refresh(), names="value")
        self.seed.observe(lambda _c: self.refresh(), names="value")

    def state(self, label: str | None = None, seed: int | None = None) -> dict:
        """Compute (cached) the degraded pair, captions, fusions and metrics of one setting.

        Returns dict ``ir``, ``vi`` (degraded, batched), ``captions`` ``{captioner: str}``,
        ``fused`` ``{model: (1, C, H, W)}``, ``metrics`` ``{model: {metric: float}}``.
        """
        from ..data import degrade

        label = self.label.value if label is None else label
        seed = int(self.seed.value if seed is None else seed)
        key = (label, seed)
        if key in self._cache:
            return self._cache[key]
        g = torch.Generator().manual_seed(seed)
        ir, vi = degrade(self._pair["ir"], self._pair["vi"], label, g)
        batch = {"ir": ir, "vi": to_luma(vi), "vi_rgb": vi, "names": [self._pair["name"]], "labels": [label]}
        captions = {}
        for name, cap in self.captioners.items():
            captions[name] = cap.caption(ir, vi, names=[self._pair["name"]], labels=[label])[0]
        text = None
        fused, mets = {}, {}
        for name, model in self.models.items():
            use_text = _wants_text(model) and self.prior is not None and self.prior.source != "none"
            if use_text and text is None:
                text = self.prior({"ir": ir, "vi": vi, "names": [self._pair["name"]], "labels": [label]})
            with torch.no_grad():
                fused[name] = self._fns[name](ir, vi, text if use_text else None).detach().cpu()
            mets[name] = fusion_scores(ir, vi, fused[name], self.metric_names)
        out = {"ir": ir, "vi": vi, "captions": captions, "fused": fused, "metrics": mets, "batch": batch}
        self._cache[key] = out
        return out

    def picture(self) -> np.ndarray:
        """Degraded IR | degraded VI | fusion of each model, side by side ``(H, W', 3)`` uint8."""
        s = self.state()
        tiles = [s["ir"], s["vi"], *s["fused"].values()]
        arrs = [fit_display(to_display(t), self.max_side, min(self.max_side or 256, 256)) for t in tiles]
        gap = np.full((arrs[0].shape[0], 4, 3), 255, np.uint8)
        parts = []
        for a in arrs:
            parts += [a, gap]
        return np.concatenate(parts[:-1], axis=1)

    def refresh(self) -> None:
        s = self.state()
        pic = self.picture()
        self.image.value = png_bytes(pic, compress_level=1)
        self.image.layout.width = f"{pic.shape[1]}px"
        names = ["IR (degraded)", "VI (degraded)", *s["fused"]]
        caps = "".join(f"<div><b>{html.escape(k)}</b>: {html.escape(v).replace(chr(10), ' / ')}</div>"
                       for k, v in s["captions"].items()) or "<div>(no captioner)</div>"
        self.captions.value = (f"<div style='font-size:12px;max-width:420px'><div>panels: "
                               f"{html.escape(' | '.join(names))}</div>{caps}</div>")
        self.readout.value = metrics_html(s["metrics"], self.metric_names)

    def figure(self):
        import matplotlib.pyplot as plt

        s = self.state()
        tiles = [("IR (degraded)", s["ir"]), ("VI (degraded)", s["vi"])] + [
            (f"{k}\n" + "  ".join(f"{m} {v:.2f}" for m, v in s["metrics"][k].items()), t)
            for k, t in s["fused"].items()]
        fig, axes = plt.subplots(1, len(tiles), figsize=(2.7 * len(tiles), 3.2), squeeze=False)
        for ax, (title, t) in zip(axes[0], tiles):
            _imshow(ax, fit_display(to_display(t), self.max_side), title, fontsize=8)
        cap = " | ".join(f"{k}: {v.splitlines()[0]}" for k, v in s["captions"].items())
        fig.suptitle(f"{self._pair['name']}: {self.label.value} (seed {self.seed.value})"
                     + (f"\n{cap}" if cap else ""), fontsize=9)
        fig.tight_layout()
        return fig


def _wants_text(model: Any) -> bool:
    cfg = getattr(model, "config", None)
    return getattr(cfg, "text_dim", None) is not None
