"""Executed notebooks that keep their pictures when exported (nbconvert HTML, GitHub).

Every fusionlab widget displays a bundle with the live widget view *and* a static
``image/png`` of its state (:func:`fusionlab.viz.images.widget_bundle`). Which one an
exported page shows depends on the widget state stored in the notebook: papermill,
``jupyter nbconvert --execute`` and JupyterLab ("save widget state") store it, and then
nbconvert's HTML prefers the widget view, which needs JavaScript from a CDN (a blank area
offline and on GitHub). :func:`static_widget_outputs` drops the widget view wherever a
picture is attached (a tqdm progress bar becomes its final line of text), and the widget
state once no view needs it, so every renderer shows the picture. :func:`shrink_images` keeps pages small (downscaled, re-compressed PNGs).

Stock nbconvert can use the same step::

    jupyter nbconvert --to html \\
        --HTMLExporter.preprocessors='["fusionlab.viz.export.StaticWidgetPreprocessor"]' run.ipynb

Notebooks are ``nbformat.NotebookNode`` objects; both functions edit them in place.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from nbconvert.preprocessors import Preprocessor
from traitlets import Int

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# A widget output carrying one of these is shown by every renderer without JavaScript.
STATIC_MIMETYPES = ("image/png", "image/jpeg", "image/svg+xml")


def _outputs(nb):
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            yield from cell.get("outputs", [])


def progress_text(model_id: str, state: dict) -> str | None:
    """The final line of a tqdm notebook progress bar from stored widget state, e.g.
    ``"scoring: 100%|##########| 3/3 [02:26<00:00, 52.81s/it]"``; None for other widgets.

    tqdm.auto shows an ``HBox(HTML, FloatProgress, HTML)``; the output's ``text/plain`` is
    the bar as first displayed (``0%``), so an export without JavaScript would show every
    bar stuck at 0 - the stored state holds where it ended.
    """
    import html

    box = state.get(model_id, {})
    if box.get("model_name") != "HBoxModel":
        return None
    kids = [state.get(str(c).replace("IPY_MODEL_", ""), {}) for c in box.get("state", {}).get("children", [])]
    names = [k.get("model_name") for k in kids]
    if len(kids) != 3 or names[1] not in ("FloatProgressModel", "IntProgressModel") or \
            not all(n in ("HTMLModel", "LabelModel") for n in (names[0], names[2])):
        return None
    left, bar, right = (k.get("state", {}) for k in kids)
    frac = min(max(float(bar.get("value", 0)) / float(bar.get("max") or 1), 0.0), 1.0)
    drawn = "#" * round(10 * frac) + " " * (10 - round(10 * frac))
    text = f"{left.get('value', '')}|{drawn}|{right.get('value', '')}"
    return html.unescape(text).replace("\u2007", " ").strip()


def static_widget_outputs(nb) -> int:
    """Replace widget views that carry a static picture by that picture, and tqdm progress
    bars by their final line of text (:func:`progress_text`). In place.

    Returns the number of widget outputs changed. The notebook's stored widget state is
    removed when no widget view is left (it is only read to render views).
    """
    changed = 0
    views_left = 0
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for out in _outputs(nb):
        data = out.get("data", {})
        if WIDGET_VIEW not in data:
            continue
        if any(m in data for m in STATIC_MIMETYPES):
            del data[WIDGET_VIEW]
            changed += 1
        elif (line := progress_text(data[WIDGET_VIEW].get("model_id", ""), state)) is not None:
            del data[WIDGET_VIEW]
            data["text/plain"] = line
            changed += 1
        else:
            views_left += 1
    if not views_left and "widgets" in nb.get("metadata", {}):
        del nb.metadata["widgets"]
    return changed


@dataclass
class ShrinkReport:
    """What :func:`shrink_images` did: PNG outputs seen, changed, bytes before/after."""

    images: int = 0
    changed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


def shrink_png(png: bytes, max_side: int | None = 900, colors: int | None = None) -> bytes:
    """Downscale a PNG so its longer side is <= ``max_side`` (Lanczos), optionally reduce it
    to a palette of ``colors`` (<= 256; octree + Floyd-Steinberg dithering: matplotlib
    figures of images shrink ~4x and look the same), and re-encode it optimised. Returns the
    original when that is not smaller."""
    from PIL import Image

    img = Image.open(io.BytesIO(png))
    img.load()
    if max_side and max(img.size) > max_side:
        s = max_side / max(img.size)
        if img.mode not in ("RGB", "RGBA", "L", "LA"):
            img = img.convert("RGBA")
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.LANCZOS)
    if colors:
        if not 2 <= colors <= 256:
            raise ValueError(f"colors must be in 2..256, got {colors}")
        img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")
        img = img.quantize(colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    out = buf.getvalue()
    return out if len(out) < len(png) else png


def shrink_images(nb, max_side: int | None = 900, colors: int | None = None) -> ShrinkReport:
    """Downscale/re-compress every ``image/png`` output (see :func:`shrink_png`). In place."""
    rep = ShrinkReport()
    for out in _outputs(nb):
        data = out.get("data", {})
        if "image/png" not in data:
            continue
        raw = base64.b64decode(data["image/png"])
        rep.images += 1
        rep.bytes_before += len(raw)
        small = shrink_png(raw, max_side, colors)
        rep.bytes_after += len(small)
        if small is raw:
            continue
        rep.changed += 1
        data["image/png"] = base64.b64encode(small).decode("ascii")
    return rep


class StaticWidgetPreprocessor(Preprocessor):
    """nbconvert preprocessor: :func:`static_widget_outputs`, then (``max_side`` > 0)
    :func:`shrink_images`."""

    max_side = Int(0, help="downscale PNG outputs to this longer side (0: keep their size)").tag(config=True)
    colors = Int(0, help="reduce PNG outputs to a palette of this many colours (0: keep them)").tag(config=True)

    def preprocess(self, nb, resources):
        static_widget_outputs(nb)
        if self.max_side or self.colors:
            shrink_images(nb, self.max_side or None, self.colors or None)
        return nb, resources


def to_html(nb, max_side: int | None = 900, colors: int | None = None,
            template: str = "lab") -> tuple[str, ShrinkReport]:
    """An executed notebook -> one self-contained HTML page (pictures embedded as base64).

    Works on a copy; widget views become their pictures, PNGs are shrunk (:func:`shrink_png`).
    """
    import copy

    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    static_widget_outputs(nb)
    report = shrink_images(nb, max_side, colors) if (max_side or colors) else ShrinkReport()
    exporter = HTMLExporter(template_name=template, embed_images=True)
    body, _ = exporter.from_notebook_node(nb)
    return body, report
