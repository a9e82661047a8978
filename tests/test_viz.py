"""fusionlab.viz: result plots, image comparers, and the HTML report of an ablation."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

matplotlib.use("Agg")

from fusionlab.ablate import read_results, render_report, run_grid  # noqa: E402
from fusionlab.ablate.demo import bundle_example, locate_results  # noqa: E402
from fusionlab.errors import ConfigError  # noqa: E402
from fusionlab.viz import (ImageCompare, RunCompare, compare_runs_figure, delta_plot, find_samples,  # noqa: E402
                           metric_plot, seed_deltas, show_images, show_run, side_by_side, to_array, wipe)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _results() -> pd.DataFrame:
    recs = []
    for i, (label, ref, en, paper) in enumerate([("a", False, [6.0, 6.2], 6.70), ("ref", True, [6.5, 6.6], 6.75)]):
        for seed, v in enumerate(en):
            recs.append({"run_id": f"{label}{seed}", "row": i, "label": label, "seed": seed, "status": "ok",
                         "reference": ref, "EN": v, "VIF": v / 6, "paper_EN": paper, "paper_VIF": paper / 6,
                         "run_dir": f"{label}{seed}"})
    return pd.DataFrame(recs)


def test_metric_and_delta_plots():
    df = _results()
    fig = metric_plot(df)
    assert [ax.get_title() for ax in fig.axes] == ["EN", "VIF"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "ref"]
    d = seed_deltas(df)
    en = d[d["metric"] == "EN"]
    assert sorted(en[(en["label"] == "a") & (en["source"] == "measured")]["delta"]) == pytest.approx([-0.5, -0.4])
    assert en[(en["label"] == "a") & (en["source"] == "paper")]["delta"].item() == pytest.approx(-0.05)
    fig = delta_plot(df)
    assert fig.axes[0].get_title() == "ΔEN vs 'ref'" and len(fig.axes[0].patches) >= 2


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


def test_grid_report_viewer_and_html(tmp_path):
    out = run_grid(FIXTURES / "fake_grid.yaml", preset="ci", runs_dir=tmp_path, notebook=FIXTURES / "fake_run.ipynb",
                   progress=False)
    grid_dir = out.grid_dir
    df = read_results(out.results_path)
    assert [p.name for p in find_samples(grid_dir / df["run_dir"][0])] == ["syn_00000.png"]
    table, fig = show_run(grid_dir / df["run_dir"][0])
    assert table.loc["EN", "value"] == pytest.approx(df["EN"][0]) and fig is not None
    rc = RunCompare(df, grid_dir)
    assert rc.compare.a.value == "variant A · seed 0" and rc.compare.b.value == "variant B · seed 0"  # vs reference
    assert len(rc.compare.a.options) == 4 and rc.samples == ["syn_00000.png"]
    assert compare_runs_figure(df, grid_dir) is not None

    html = render_report(FIXTURES / "fake_grid.yaml", runs_dir=tmp_path, out=tmp_path / "report.html")
    text = html.read_text()
    assert "fake_grid: Fixture table" in text and "Bundled example" not in text
    assert "6.750" in text and "variant B" in text and "± " in text  # paper number and measured mean ± std
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(pngs) >= 3  # metric plot, delta plot, fused-image comparison
    assert all(base64.b64decode(p)[:4] == b"\x89PNG" for p in pngs)
    assert (tmp_path / "report.ipynb").is_file() and "def " not in text.split("<body", 1)[1][:2000]

    # the bundled-example fallback: used only when there are no results, and labelled
    ex = bundle_example(grid_dir, tmp_path / "examples" / "fake_grid")
    assert sorted(p.name for p in ex.iterdir() if p.is_file()) == ["results.csv"]
    assert len(list(ex.rglob("syn_00000.png"))) == 4 and not list(ex.rglob("run.ipynb"))
    assert locate_results("fake_grid", tmp_path) == (tmp_path / "fake_grid", False)
    with pytest.raises(ConfigError, match="no results"):
        locate_results("fake_grid", tmp_path / "nothing", example_fallback=False)
