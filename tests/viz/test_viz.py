"""fusionlab.viz: image figures and the image comparer (drawing only)."""
from __future__ import annotations

import matplotlib
import numpy as np
import torch
from PIL import Image

matplotlib.use("Agg")

from fusionlab.viz import ImageCompare, show_images, side_by_side, to_array, wipe  # noqa: E402


def test_images_wipe_side_by_side_and_compare_widget(tmp_path):
    a = np.zeros((6, 10, 3), np.float32)
    b = torch.ones(1, 6, 10)  # gray tensor, replicated to RGB
    assert to_array(b).shape == (6, 10, 3)
    w = wipe(a, b, 0.5, line=False)
    assert w.shape == (6, 10, 3) and w[:, :5].max() == 0 and w[:, 5:].min() == 1
    Image.fromarray(np.full((6, 10), 128, np.uint8)).save(tmp_path / "g.png")
    assert abs(to_array(tmp_path / "g.png").mean() - 128 / 255) < 1e-6
    fig = side_by_side(a, b, titles=("zeros", "ones"))
    assert [ax.get_title() for ax in fig.axes][:2] == ["zeros", "ones"]
    assert len(show_images({"x": a, "y": b, "z": a}, cols=2).axes) == 4
    viewer = ImageCompare({"zeros": a, "ones": b, "file": tmp_path / "g.png"}, a="zeros", b="ones")
    assert viewer.composite().shape == (6, 24, 3)  # side by side with a 4-pixel gap
    assert viewer.split.disabled
    first = viewer.view.value
    viewer.mode.value = "wipe"
    viewer.split.value = 0.3
    assert viewer.composite().shape == (6, 10, 3) and viewer.view.value != first and not viewer.split.disabled
    viewer.b.value = "file"
    assert abs(float(viewer.composite()[:, 5:].mean()) - 128 / 255) < 0.01
