"""Walkthrough notebooks: widgets (fusionlab.viz.compare), notebook helpers, metric maps, and
the notebook sources/build script. nbval itself runs the notebooks (make test)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionlab.data import make_pair, write_synthetic_folder
from fusionlab.errors import ConfigError, EmptyInputError, ShapeMismatchError
from fusionlab.viz import compare as C
from fusionlab.viz import walkthrough as W

REPO = Path(__file__).resolve().parents[1]
WALKTHROUGHS = ["00_quickstart", "01_data_and_degradations", "02_metrics_explained", "03_teacher_and_text_priors",
                "04_distillation", "05_efficiency", "06_ablations"]


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
def test_choose_data_folder_shared_and_synthetic(tmp_path, monkeypatch):
    root = write_synthetic_folder(tmp_path / "mine", n=3, size=(40, 48), with_reference=False)
    d = W.choose_data(root)
    assert d.kind == "folder" and "REAL pairs from the folder you gave" in str(d)
    pairs = W.load_pairs(d, n=2, max_side=24)
    assert [p["name"] for p in pairs] == ["syn_00000", "syn_00002"]  # spread over the folder
    assert max(pairs[0]["vi"].shape[-2:]) == 24
    with pytest.raises(EmptyInputError, match="no_such"):
        W.choose_data(tmp_path / "no_such")

    shared = tmp_path / "shared"
    write_synthetic_folder(shared / "data" / "msrs" / "test", n=1, size=(40, 48), with_reference=False)
    monkeypatch.setenv("FUSIONLAB_SHARED", str(shared))
    d = W.choose_data(None)
    assert d.kind == "shared" and "REAL shared subset 'msrs'" in str(d)
    assert W.choose_data("msrs").root == d.root
    monkeypatch.setenv("FUSIONLAB_SHARED", str(tmp_path / "nowhere"))
    d = W.choose_data(None)
    assert d.kind == "synthetic" and "SYNTHETIC" in str(d)
    assert W.load_pairs(d, n=2, size=(32, 40))[1]["ir"].shape == (1, 32, 40)
    with pytest.raises(ConfigError, match="dataset="):
        W.choose_data(None, dataset="imagenet")


def test_find_shared_data_beside_repo(tmp_path, monkeypatch):
    monkeypatch.delenv("FUSIONLAB_SHARED", raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    nb_dir = tmp_path / "repo" / "notebooks"
    nb_dir.mkdir(parents=True)
    assert W.find_shared_data(nb_dir) == (tmp_path / "shared" / "data").resolve()  # ../../shared/data
    assert W.find_shared_data(tmp_path / "repo") == (tmp_path / "shared" / "data").resolve()


def test_load_student_falls_back_with_a_note(monkeypatch, tmp_path, capsys):
    import fusionlab.demo

    monkeypatch.setattr(fusionlab.demo, "DEFAULT_CHECKPOINT", tmp_path / "student_synthetic.pt")
    model, note = W.load_student()
    assert "UNTRAINED" in note and "UNTRAINED" in capsys.readouterr().out
    assert not model.training
    from fusionlab.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not found"):
        W.load_student(tmp_path / "missing.pt")


# ------------------------------------------------------------------ metric maps
def test_metric_maps_reproduce_the_metrics(pair):
    from fusionlab.metrics import average_gradient, to_metric_scale
    from fusionlab.metrics.qabf import qabf
    from fusionlab.metrics.vif import vif
    from fusionlab.viz import metric_maps as M

    ir, vi = to_metric_scale(pair["ir"]), to_metric_scale(pair["vi"])
    f = torch.maximum(ir, vi)
    scales = M.vif_scale_maps(ir, f)
    assert len(scales) == 4 and scales[0]["ref"].shape == (48, 64)
    got = sum(s["num_sum"] for s in scales) / sum(s["den_sum"] for s in scales)
    assert got == pytest.approx(float(vif(ir, f)[0]), rel=1e-6)  # vif() convolves by FFT
    q = M.qabf_maps(f, ir, vi)
    weighted = (q["q_ir"] * q["g_ir"] + q["q_vi"] * q["g_vi"]).sum() / (q["g_ir"] + q["g_vi"]).sum()
    assert weighted == pytest.approx(float(qabf(f, ir, vi)[0]), rel=1e-6)
    assert M.gradient_maps_of(f).mean() == pytest.approx(float(average_gradient(f)[0]))
    s = M.ssim_maps(f, ir, vi)
    assert s["ir"].shape == (42, 58) and s["vi"].max() <= 1.0 + 1e-9
    with pytest.raises(ShapeMismatchError):
        M.gradient_maps_of(torch.zeros(2, 1, 8, 8))


# ------------------------------------------------------------------ notebooks and their sources
def _load_build():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_notebooks
    finally:
        sys.path.pop(0)
    return build_notebooks


def test_parse_percent_format():
    b = _load_build()
    cells = b.parse_percent('"""doc"""\n# %% [markdown]\n# # Title\n# text\n\n# %% tags=["parameters"]\nx = 1\n\n'
                            '# %%\n# a comment\nprint(x)\n')
    assert [c["type"] for c in cells] == ["markdown", "code", "code"]
    assert cells[0]["source"] == "# Title\ntext" and cells[1]["tags"] == ["parameters"]
    assert cells[2]["source"] == "# a comment\nprint(x)"


def test_notebooks_are_built_from_their_sources():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "build_notebooks.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", WALKTHROUGHS)
def test_walkthrough_notebook_structure(name):
    path = REPO / "notebooks" / f"{name}.ipynb"
    if not path.is_file():
        pytest.skip(f"{path.name} not written yet")
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one papermill parameters cell"
    assert "FUSIONLAB_PRESET" in "".join(params[0]["source"])
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "stored without outputs"
    assert nb["cells"][0]["cell_type"] == "markdown" and "".join(nb["cells"][0]["source"]).startswith("# ")


# ------------------------------------------------------------------ experiment helpers of the notebooks
def test_degraded_items_and_score_fusers(pair):
    from fusionlab.data import DEGRADATIONS
    from fusionlab.io import to_luma

    pairs = [pair, make_pair(seed=2, size=(48, 64))]
    items = W.degraded_items(pairs, seed=5)
    assert len(items) == 2 * len(DEGRADATIONS) and items[1]["label"] == DEGRADATIONS[1]
    again = W.degraded_items(pairs, seed=5)
    assert all(torch.equal(a["vi"], b["vi"]) and torch.equal(a["ir"], b["ir"]) for a, b in zip(items, again))
    low = next(i for i in items if i["label"] == "low_light")
    assert low["vi"].mean() < pair["vi"].mean() and low["ir"].shape == (1, 1, 48, 64)
    fusers = {"mean": lambda it: (it["ir"] + to_luma(it["vi"])) / 2,
              "max": lambda it: torch.maximum(it["ir"], to_luma(it["vi"]))}
    df = W.score_fusers(fusers, items, metrics=("EN", "Qabf"))
    assert len(df) == 2 * len(DEGRADATIONS) and list(df.columns) == ["fuser", "label", "EN", "Qabf"]
    assert df["Qabf"].between(0, 1).all()


def test_compare_features_levels():
    from fusionlab.losses.distill import FeatureAdapters
    from fusionlab.models import create_model

    torch.manual_seed(0)
    teacher, student = create_model("dtpf_teacher_tiny"), create_model("dtpf_student_tiny", dim=4)
    adapters = FeatureAdapters(teacher.feature_channels, student.feature_channels)
    ir, vi = torch.rand(1, 1, 32, 32), torch.rand(1, 3, 32, 32)
    levels = W.compare_features(teacher, student, ir, vi, torch.zeros(1, 512), adapters)
    assert len(levels) == len(teacher.feature_channels)
    for lv, ct, cs in zip(levels, teacher.feature_channels, student.feature_channels):
        assert lv["channels"] == (ct, cs) and lv["adapted"].shape == lv["student"].shape
        assert -1.0 <= lv["cosine"] <= 1.0
    assert "cosine" not in W.compare_features(teacher, student, ir, vi, None)[0]


def test_shrink_grid_keeps_rows_seeds_and_paths(tmp_path):
    from fusionlab.ablate import expand, load_grid

    src = tmp_path / "grids"
    (src / "captions").mkdir(parents=True)
    (src / "captions" / "c.json").write_text("{}")
    (src / "g.yaml").write_text(
        "name: g\nbase: {stage: teacher}\nrows:\n"
        "  - {label: a, params: {text_prior: none}}\n"
        "  - {label: b, params: {text_prior: file, caption_file: captions/c.json}}\n"
        "  - {label: c, params: {text_prior: oracle}}\n"
        "seeds: [0, 1]\n")
    out = W.shrink_grid(src / "g.yaml", tmp_path / "runs", "ci", rows=["b", -1], seeds=[3])
    grid = load_grid(out)
    assert grid.labels == ["b", "c"] and grid.reference_row.label == "c"
    runs = expand(grid, "ci")
    assert [r.seed for r in runs] == [3, 3]
    assert runs[0].params["caption_file"] == str((src / "captions" / "c.json").resolve())
    assert len(expand(grid, "laptop")) == 4  # other presets keep the grid's seeds


def test_run_dir_is_temporary_in_ci():
    d = W.run_dir("x", "ci")
    assert d.is_dir() and "fusionlab_x_" in d.name
    d.rmdir()
    assert W.run_dir("x", "laptop") == Path("runs") / "walkthrough" / "x"
