"""Walkthrough notebooks: widgets (fusionlab.viz.compare), notebook helpers, metric maps, and
the notebook sources/build script. nbval itself runs the notebooks (make test)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionlab.data import make_pair
from fusionlab.errors import ConfigError, ShapeMismatchError
from fusionlab.viz import compare as C

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=1, size=(48, 64))


def _count_calls(fn):
    calls = []

    def wrapped(ir, vi):
        calls.append(1)
        return fn(ir, vi)

    return wrapped, calls


def _mean(ir, vi):
    return (ir + vi.mean(1, keepdim=True)) / 2


def _max(ir, vi):
    return torch.maximum(ir, vi.mean(1, keepdim=True))


# ------------------------------------------------------------------ pixels
def test_compose_swipe_blend_difference():
    a = np.zeros((4, 10, 3), np.uint8)
    b = np.full((4, 10, 3), 200, np.uint8)
    s = C.compose(a, b, 0.3, "swipe", line=False)
    assert (s[:, :3] == 0).all() and (s[:, 3:] == 200).all()
    s = C.compose(a, b, 0.3, "swipe")
    assert tuple(s[0, 2]) == C._LINE_RGB and (s[:, 4:] == 200).all()  # the seam is drawn, rest intact
    assert (C.compose(a, b, 0.0, "swipe") == 200).all() and (C.compose(a, b, 1.0, "swipe") == 0).all()
    assert (C.compose(a, b, 0.25, "blend") == 50).all()
    assert (C.compose(a, b, 0.0, "difference") == 200).all()
    assert (C.compose(a, b, 1.0, "difference") == 255).all()  # amplified and clipped
    with pytest.raises(ShapeMismatchError):
        C.compose(a, b[:, :5], 0.5)
    with pytest.raises(ConfigError, match="compare mode"):
        C.compose(a, b, 0.5, "wipe")


def test_to_display_and_fit():
    gray = torch.rand(1, 1, 6, 8)
    out = C.to_display(gray)
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8 and (out[..., 0] == out[..., 2]).all()
    assert C.to_display(torch.ones(3, 6, 8)).min() == 255
    assert C.to_display(torch.full((2, 2), float("nan"))).max() == 0  # NaN never crashes a picture
    with pytest.raises(ShapeMismatchError, match="one image at a time"):
        C.to_display(torch.rand(2, 1, 6, 8))
    with pytest.raises(ShapeMismatchError, match="C = 1 or 3"):
        C.to_display(torch.rand(2, 6, 8))
    big = np.zeros((100, 300, 3), np.uint8)
    assert C.fit_display(big, 150).shape == (50, 150, 3)
    assert C.fit_display(big, None) is big
    small = np.zeros((10, 20, 3), np.uint8)
    up = C.fit_display(small + np.arange(20, dtype=np.uint8)[None, :, None], 512, 64)
    assert up.shape == (30, 60, 3) and (up[:, 3] == 1).all()  # x3 (<= 64 px), nearest: crisp pixels
    assert C.fit_display(small, 512, 39).shape == (10, 20, 3)  # no integer factor fits


def test_metrics_html_marks_best_and_nan():
    h = C.metrics_html({"a": {"EN": 1.0, "VIF": float("nan")}, "b": {"EN": 2.0, "VIF": 0.5}}, ["EN", "VIF"])
    assert "<b>2.000</b>" in h and "1.000" in h and ">-<" in h


# ------------------------------------------------------------------ CompareWidget
def test_compare_widget_updates_and_readout(pair):
    fused = _max(pair["ir"][None], pair["vi"][None])
    metrics = {"fused": {"EN": 6.5, "VIF": 0.8}, "VI": {"EN": 6.0, "VIF": 1.0}}
    w = C.CompareWidget({"IR": pair["ir"], "VI": pair["vi"], "fused": fused}, metrics=metrics,
                        metric_names=("EN", "VIF"))
    assert w.left.value == "VI" and w.right.value == "fused"
    first = w.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    w.position.value = 0.9
    assert w.image.value != first  # the swipe moved
    assert "fused" in w.readout.value and "<b>6.500</b>" in w.readout.value
    w.mode.value = "difference"
    assert w.position.description == "gain"
    w.left.value = "IR"  # IR has no metrics in the given mapping: the readout shows "-"
    assert ">-<" in w.readout.value
    w.add_image("mean", _mean(pair["ir"][None], pair["vi"][None]))
    assert "mean" in w.right.options and w.right.value == "fused"  # selection kept
    with pytest.raises(ConfigError, match="not among"):
        w.set_images({"IR": pair["ir"]}, left="VI")


def test_compare_widget_auto_metrics_are_the_papers(pair):
    from fusionlab.metrics import compute_metrics, to_metric_scale

    fused = _max(pair["ir"][None], pair["vi"][None])
    w = C.CompareWidget({"IR": pair["ir"], "VI": pair["vi"], "max": fused}, metric_names=("EN", "Qabf"))
    ref = compute_metrics(to_metric_scale(pair["ir"]), to_metric_scale(pair["vi"]), to_metric_scale(fused),
                          metrics=["EN", "Qabf"])
    got = w.metrics_of("max")
    assert got == pytest.approx({k: float(v[0]) for k, v in ref.items()})


def test_lazy_images_are_computed_once_and_only_when_shown(pair):
    fn, calls = _count_calls(_mean)
    ir, vi = pair["ir"][None], pair["vi"][None]
    w = C.CompareWidget({"IR": ir, "VI": vi, "lazy": lambda: fn(ir, vi), "max": _max(ir, vi)}, metrics=None,
                        left="VI", right="max")
    assert calls == []
    w.right.value = "lazy"
    w.position.value = 0.1
    w.left.value = "lazy"
    assert len(calls) == 1 and w.readout.value == ""


def test_static_fallback_in_display_bundle(pair):
    w = C.CompareWidget({"IR": pair["ir"], "VI": pair["vi"]}, metrics=None)
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # live widget for JupyterLab
    png = __import__("base64").b64decode(bundle["image/png"])  # picture for frontends without widgets
    assert png[:4] == b"\x89PNG" and "static picture" in bundle["text/plain"]


def test_widget_mode_and_static_show(monkeypatch, pair):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.delenv("FUSIONLAB_WIDGETS", raising=False)
    assert C.widget_mode() == "static"  # pytest is no Jupyter kernel
    monkeypatch.setenv("FUSIONLAB_WIDGETS", "interactive")
    assert C.widget_mode() == "interactive"
    monkeypatch.setenv("FUSIONLAB_WIDGETS", "bogus")
    with pytest.raises(ConfigError, match="FUSIONLAB_WIDGETS"):
        C.widget_mode()
    monkeypatch.setenv("FUSIONLAB_WIDGETS", "static")
    w = C.CompareWidget({"IR": pair["ir"], "VI": pair["vi"]}, metrics=None)
    assert C.show(w) is None
    fig = w.figure()
    assert len(fig.axes) == 3  # IR, VI and the current comparison


# ------------------------------------------------------------------ FusionExplorer
def test_fusion_explorer_picks_image_and_method(pair):
    from fusionlab.models import create_model

    pairs = [make_pair(seed=s, size=(48, 64)) for s in (1, 2)]
    fn, calls = _count_calls(_mean)
    torch.manual_seed(0)
    ex = C.FusionExplorer(pairs, {"mean": fn, "max": _max, "tiny": create_model("dtpf_student_tiny")},
                          metrics=None)
    assert ex.compare.right.value == "mean" and len(calls) == 1
    ex.method.value = "tiny"
    assert ex.compare.right.value == "tiny" and ex.fused(0, "tiny").shape == (1, 3, 48, 64)
    ex.pair.value = 1
    assert torch.equal(ex.compare.tensor("IR"), pairs[1]["ir"][None])
    ex.method.value = "mean"
    ex.pair.value = 0
    assert len(calls) == 2  # one per image, cached afterwards
    assert ex.static_png()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="fusion method"):
        C.FusionExplorer(pairs, {"bad": 3})


def test_as_fusion_fn_reads_checkpoints_and_run_folders(tmp_path, pair):
    from fusionlab.errors import CheckpointError
    from fusionlab.models import create_model, save_checkpoint

    torch.manual_seed(0)
    model = create_model("dtpf_student_tiny")
    save_checkpoint(tmp_path / "run" / "checkpoint.pt", model)
    ir, vi = pair["ir"][None], pair["vi"][None]
    direct = C.as_fusion_fn(model)(ir, vi)
    assert torch.allclose(C.as_fusion_fn(tmp_path / "run")(ir, vi), direct, atol=1e-6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="empty: run folder holds no checkpoint"):
        C.as_fusion_fn(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="not found"):
        C.as_fusion_fn(tmp_path / "missing.pt")


# ------------------------------------------------------------------ DegradationExplorer
class _FakePrior:
    """A text prior stand-in: records the captions' labels it was asked to embed."""

    source = "oracle"

    def __init__(self):
        self.seen = []

    def __call__(self, batch):
        self.seen.append(list(batch["labels"]))
        return torch.zeros(len(batch["labels"]), 512)


def test_degradation_explorer_captions_and_fusions_respond(pair):
    from fusionlab.models import create_model
    from fusionlab.text import build_captioner

    torch.manual_seed(0)
    teacher = create_model("dtpf_teacher_tiny")
    prior = _FakePrior()
    ex = C.DegradationExplorer(pair, {"teacher": teacher, "max": _max}, prior=prior,
                               captioners={"rules": build_captioner("rules"),
                                           "oracle": build_captioner("oracle")},
                               metric_names=("EN",), max_side=64)
    assert "normal" in ex.captions.value and prior.seen == [["normal"]]
    before = ex.image.value
    ex.label.value = "low_light"
    s = ex.state()
    assert "low_light" in s["captions"]["oracle"] and prior.seen[-1] == ["low_light"]
    assert s["vi"].mean() < pair["vi"].mean() * 0.6  # the VI really got darker
    assert ex.image.value != before and set(s["metrics"]) == {"teacher", "max"}
    ex.seed.value = 3
    assert not torch.equal(ex.state()["vi"], s["vi"])  # another random draw
    assert ex.picture().shape[1] > 3 * 64  # IR | VI | two fusions
    assert ex.figure() is not None


# ------------------------------------------------------------------ notebook helpers


# ------------------------------------------------------------------ metric maps


# ------------------------------------------------------------------ notebooks and their sources


# ------------------------------------------------------------------ experiment helpers of the notebooks
