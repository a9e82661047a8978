"""Executed notebooks that keep their pictures when exported (nbconvert HTML, GitHub).

Every fusionlab widget displays a bundle with the live widget view *and* a static
``image/png`` of its state (:func:`fusionlab.viz.images.widget_bundle`). Which one an
exported page shows depends on the widget state stored in the notebook: papermill,
``jupyter nbconvert --execute`` and JupyterLab ("save widget state") store it, and then
nbconvert's HTML prefers the widget view, which needs JavaScript from a CDN (a blank area
offline and on GitHub). :func:`static_widget_outputs` drops the widget view wherever a
picture is attached, and the widget state once no view needs it, so every renderer shows
the picture. :func:`shrink_images` keeps pages small (downscaled, re-compressed PNGs).

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


def static_widget_outputs(nb) -> int:
    """Replace widget views that carry a static picture by that picture. In place.

    Returns the number of widget outputs changed. The notebook's stored widget state is
    removed when no widget view is left (it is only read to render views).
    """
    changed = 0
    views_left = 0
    for out in _outputs(nb):
        data = out.get("data", {})
        if WIDGET_VIEW not in data:
            continue
        if any(m in data for m in STATIC_MIMETYPES):
            del data[WIDGET_VIEW]
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
