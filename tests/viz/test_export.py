"""fusionlab.viz.export and the widgets' static pictures: an exported notebook shows the
picture of every widget (nbconvert HTML), even when the notebook stored widget state."""
from __future__ import annotations

import base64
import io
import re

import matplotlib
import nbformat
import numpy as np
import pytest
import torch
from PIL import Image

matplotlib.use("Agg")

from fusionlab.viz import ImageCompare  # noqa: E402
from fusionlab.viz.compare import CompareWidget  # noqa: E402
from fusionlab.viz.export import (WIDGET_STATE, WIDGET_VIEW, shrink_images, shrink_png,  # noqa: E402
                                  static_widget_outputs, to_html)

IMG = re.compile(r'<img[^>]*src="data:image/png;base64,(iVBOR[A-Za-z0-9+/=]+)"')


def _pair():
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 24, 32, generator=g), torch.rand(3, 24, 32, generator=g)


def _executed_notebook(bundle: dict) -> nbformat.NotebookNode:
    """What papermill / nbconvert --execute store for a cell displaying ``bundle``: the
    display_data output and the widget state of its model (so nbconvert prefers the view)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell("show(CompareWidget(...))")
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    cell.execution_count = 1
    nb.cells.append(cell)
    model_id = bundle[WIDGET_VIEW]["model_id"]
    nb.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {
        model_id: {"model_name": "VBoxModel", "model_module": "@jupyter-widgets/controls",
                   "model_module_version": "2.0.0", "state": {}}}}}
    return nb


@pytest.mark.parametrize("make", ["CompareWidget", "ImageCompare"])
def test_widget_bundles_carry_a_png(make):
    ir, vi = _pair()
    if make == "CompareWidget":
        bundle = CompareWidget({"IR": ir, "VI": vi, "mean": (ir + vi) / 2}, metrics=None)._repr_mimebundle_()
    else:
        bundle = ImageCompare({"IR": ir, "VI": vi})._repr_mimebundle_()
    assert WIDGET_VIEW in bundle and "static picture attached" in bundle["text/plain"]
    png = Image.open(io.BytesIO(base64.b64decode(bundle["image/png"])))
    assert png.format == "PNG" and min(png.size) > 8


def test_html_export_shows_the_widget_picture():
    ir, vi = _pair()
    bundle = CompareWidget({"IR": ir, "VI": vi, "mean": (ir + vi) / 2}, metrics=None)._repr_mimebundle_()
    nb = _executed_notebook(bundle)

    from nbconvert import HTMLExporter

    # named as `jupyter nbconvert walkthrough.ipynb` names it: nbconvert 7.1 (the floor) looks the
    # widget state up under the notebook's name, so an unnamed one would not show the defect there
    named = {"metadata": {"name": "walkthrough"}}
    plain, _ = HTMLExporter(template_name="lab").from_notebook_node(nb, resources=named)
    assert not IMG.search(plain)  # the defect: stored widget state -> a widget view needing a CDN
    html, _ = to_html(nb)
    found = IMG.findall(html)
    original = Image.open(io.BytesIO(base64.b64decode(bundle["image/png"])))
    assert len(found) == 1 and Image.open(io.BytesIO(base64.b64decode(found[0]))).size == original.size
    assert WIDGET_VIEW in nb.cells[0].outputs[0].data and "widgets" in nb.metadata  # to_html works on a copy

    # the same with stock nbconvert and the preprocessor
    exporter = HTMLExporter(template_name="lab", preprocessors=["fusionlab.viz.export.StaticWidgetPreprocessor"])
    stock, _ = exporter.from_notebook_node(nb, resources=named)
    assert IMG.search(stock)


def test_static_widget_outputs_keeps_views_without_a_picture():
    nb = _executed_notebook({WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0},
                             "text/plain": "VBox()"})
    assert static_widget_outputs(nb) == 0
    assert WIDGET_VIEW in nb.cells[0].outputs[0].data and "widgets" in nb.metadata  # still renderable online


def test_progress_bars_become_their_final_line():
    """A tqdm.auto bar stored by papermill: an HBox(HTML, FloatProgress, HTML) view whose
    text/plain is the bar at 0 %; the export shows where it ended, and drops the state."""
    view = {"model_id": "box", "version_major": 2, "version_minor": 0}
    nb = _executed_notebook({WIDGET_VIEW: view, "text/plain": "scoring:   0%|          | 0/3 [00:00<?, ?it/s]"})
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    state["box"] = {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]}}
    state["l"] = {"model_name": "HTMLModel", "state": {"value": "scoring:\u2007100%"}}
    state["p"] = {"model_name": "FloatProgressModel", "state": {"value": 3.0, "max": 3.0}}
    state["r"] = {"model_name": "HTMLModel", "state": {"value": "\u20073/3\u2007[02:26&lt;00:00,\u200752.81s/it]"}}
    assert static_widget_outputs(nb) == 1
    assert nb.cells[0].outputs[0].data == {"text/plain": "scoring: 100%|##########| 3/3 [02:26<00:00, 52.81s/it]"}
    assert "widgets" not in nb.metadata
    state["p"]["state"]["value"] = 1.0  # an interrupted bar shows how far it got
    from fusionlab.viz.export import progress_text

    assert progress_text("box", state).startswith("scoring: 100%|###       |")
    assert progress_text("l", state) is None and progress_text("missing", state) is None


def test_shrink_images_downscales_big_pngs():
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (600, 1200, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "image/png": base64.b64encode(buf.getvalue()).decode("ascii"), "text/plain": "<Figure>"})]
    nb.cells.append(cell)
    rep = shrink_images(nb, max_side=300)
    out = Image.open(io.BytesIO(base64.b64decode(nb.cells[0].outputs[0].data["image/png"])))
    assert out.size == (300, 150)
    assert rep.images == rep.changed == 1 and rep.bytes_after < rep.bytes_before / 4
    smooth = np.linspace(0, 255, 200 * 300 * 3).reshape(200, 300, 3).astype(np.uint8)  # a gradient: many colours
    buf = io.BytesIO()
    Image.fromarray(smooth).save(buf, format="PNG")
    palette = Image.open(io.BytesIO(shrink_png(buf.getvalue(), max_side=None, colors=64)))
    assert palette.mode == "P" and palette.size == (300, 200)
    err = np.abs(np.asarray(palette.convert("RGB"), np.float32) - smooth).mean()
    assert err < 6  # dithered palette stays close to the original


@pytest.mark.slow
def test_executed_notebook_exports_widget_picture(tmp_path):
    """A real kernel (nbclient, as papermill and nbconvert --execute) stores widget state;
    the HTML export still shows the CompareWidget's picture."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(
        "import torch\nfrom fusionlab.viz.compare import CompareWidget, show\n"
        "ir, vi = torch.rand(1, 24, 32), torch.rand(3, 24, 32)\n"
        "show(CompareWidget({'IR': ir, 'VI': vi, 'mean': (ir + vi) / 2}, metrics=None))"))
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    data = nb.cells[0].outputs[-1]["data"]
    assert WIDGET_VIEW in data and "image/png" in data and "widgets" in nb.metadata
    html, _ = to_html(nb)
    assert IMG.search(html)
