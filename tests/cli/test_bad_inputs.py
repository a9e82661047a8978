"""Bad inputs through the real command line and the Python API: every case gets ONE clear line
naming the culprit file, the right exit code and the specific :mod:`fusionlab.errors` class
(the corpus is generated in tests/support.py; no committed binaries)."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from fusionlab import errors as E
from fusionlab import io as fio
from support import ALL, assert_error, blocked_path, gray, make_dataset, rgb, rng, run_fuse, save_png

# one torch thread (fixture in conftest.py): tiny models on tiny images, a busy 2-core machine
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("corpus", ALL, indirect=True)
def test_fuse_folder_corpus(run_cli, corpus, ckpts, tmp_path):
    root, culprit, _cls, what = corpus
    assert_error(run_fuse(run_cli, root, ckpts["good"], tmp_path / "out"), 1, "fuse", culprit, what=what)


@pytest.mark.parametrize("corpus", ALL, indirect=True)
def test_evaluate_folder_corpus(run_cli, corpus):
    root, culprit, _cls, what = corpus
    # the visible folder doubles as the "fused" folder: same names, valid images
    res = run_cli("evaluate", "--ir", root / "ir", "--vi", root / "vi", "--fused", root / "vi", "--no-progress")
    assert_error(res, 1, "evaluate", culprit, what=what)


@pytest.mark.parametrize("corpus", ALL, indirect=True)
def test_caption_folder_corpus(run_cli, corpus, tmp_path):
    root, culprit, _cls, what = corpus
    res = run_cli("caption", "--root", root, "--out", tmp_path / "captions.json", "--quiet")
    assert_error(res, 1, "caption", culprit, what=what)
    assert not (tmp_path / "captions.json").exists() or culprit.stem not in (tmp_path / "captions.json").read_text()


@pytest.mark.parametrize("corpus", ALL, indirect=True)
def test_python_api_raises_specific_class(corpus, tmp_path):
    from fusionlab.data import PairedFolder
    from fusionlab.metrics import evaluate_folders
    from fusionlab.text.captioners import caption_folder

    root, culprit, cls, what = corpus
    calls = {
        "PairedFolder": lambda: [item for item in PairedFolder(root)],
        "evaluate_folders": lambda: evaluate_folders(root / "ir", root / "vi", root / "vi", progress=False),
        "caption_folder": lambda: caption_folder({"type": "rules"}, root / "ir", root / "vi",
                                                 tmp_path / "c.json", progress=False),
    }
    for api, call in calls.items():
        with pytest.raises(cls) as ei:
            call()
        msg = str(ei.value)
        assert type(ei.value) is cls, f"{api}: {type(ei.value).__name__} instead of {cls.__name__}"
        assert str(culprit) in msg and re.search(what, msg) and "\n" not in msg, f"{api}: {msg}"


READ_CASES = ["size_mismatch", "not_an_image", "zero_bytes", "truncated_png", "truncated_jpg", "nan_in_float_tiff",
              "huge_dimensions"]


@pytest.mark.parametrize("corpus", READ_CASES, indirect=True)
def test_fuse_and_evaluate_single_files(run_cli, corpus, ckpts, tmp_path):
    """The same corpus given as single files (--ir FILE --vi FILE) instead of folders."""
    root, culprit, _cls, what = corpus
    ir = next((root / "ir").glob("b.*"))
    vi = next((root / "vi").glob("b.*"))
    res = run_cli("fuse", "--ir", ir, "--vi", vi, "--checkpoint", ckpts["good"], "--out", tmp_path / "o")
    assert_error(res, 1, "fuse", culprit, what=what)
    res = run_cli("evaluate", "--ir", ir, "--vi", vi, "--fused", vi)
    assert_error(res, 1, "evaluate", culprit, what=what)


def test_missing_input_files_and_folders(run_cli, ckpts, tmp_path):
    root = make_dataset(tmp_path / "d")
    gone = tmp_path / "nowhere.png"
    assert_error(run_cli("fuse", "--ir", gone, "--vi", root / "vi/a.png", "--checkpoint", ckpts["good"],
                         "--out", tmp_path / "o"), 1, "fuse", gone, what="file not found")
    assert_error(run_cli("evaluate", "--ir", gone, "--vi", root / "vi/a.png", "--fused", root / "vi/a.png"),
                 1, "evaluate", gone, what="file not found")
    assert_error(run_cli("fuse", "--data", tmp_path / "no_data", "--checkpoint", ckpts["good"], "--out",
                         tmp_path / "o"), 1, "fuse", tmp_path / "no_data", what="not found")
    # a root without ir/ + vi/ (e.g. the user pointed at the wrong level)
    assert_error(run_cli("caption", "--root", root / "ir", "--out", tmp_path / "c.json"), 1, "caption",
                 root / "ir", what="expected sub-folders ir/ and vi/")


def test_unusual_but_valid_images_are_fused_and_evaluated(run_cli, ckpts, tmp_path):
    """16-bit PNG, RGBA, palette, LA and gray inputs are read, fused and scored (no error)."""
    root = tmp_path / "odd"
    h, w = 48, 48  # >= 41 so that every metric (VIF's 41x41 window) is defined
    g16 = (rng(3).integers(0, 65536, (h, w))).astype(np.uint16)
    save_png(root / "ir/p16.png", g16)                                   # 16-bit gray IR
    save_png(root / "vi/p16.png", rgb(h, w, 4))
    save_png(root / "ir/prgba.png", gray(h, w, 5))
    save_png(root / "vi/prgba.png", np.dstack([rgb(h, w, 6), np.full((h, w), 255, np.uint8)]))  # RGBA VI
    pal = Image.fromarray(gray(h, w, 7) // 16, mode="L").convert("P")     # palette VI
    pal.putpalette([v % 256 for i in range(256) for v in (16 * i, 255 - 16 * i, 8 * i)])  # luma varies
    save_png(root / "ir/ppal.png", gray(h, w, 8))
    pal.save(root / "vi/ppal.png")
    save_png(root / "ir/pla.png", np.dstack([gray(h, w, 9), np.full((h, w), 200, np.uint8)]))  # LA IR
    save_png(root / "vi/pla.png", gray(h, w, 10))                          # gray VI
    assert Image.open(root / "ir/p16.png").mode.startswith("I") and Image.open(root / "vi/ppal.png").mode == "P"

    out = tmp_path / "fused"
    rc, stdout, err = run_fuse(run_cli, root, ckpts["good"], out)
    assert rc == 0, err
    assert "fused 4 pair(s)" in stdout
    shapes = {p.stem: fio.read_image(p).shape for p in fio.list_images(out)}
    assert shapes == {"p16": (3, h, w), "prgba": (3, h, w), "ppal": (3, h, w), "pla": (1, h, w)}
    rc, stdout, err = run_cli("evaluate", "--ir", root / "ir", "--vi", root / "vi", "--fused", out, "--no-progress")
    assert rc == 0, err
    import io

    import pandas as pd

    df = pd.read_csv(io.StringIO(stdout), index_col="name")
    assert list(df.index) == ["p16", "pla", "ppal", "prgba", "mean"]
    assert np.isfinite(df.drop(columns="SCD").to_numpy()).all()


@pytest.mark.parametrize("h,w", [(1, 1), (1, 37), (29, 1), (3, 50), (2, 2)])
def test_tiny_and_thin_images(run_cli, ckpts, tmp_path, h, w):
    """Fusion works at any size; metrics and captions refuse sizes they cannot define, naming the file."""
    root = tmp_path / "thin"
    save_png(root / "ir/t.png", gray(h, w, 1))
    save_png(root / "vi/t.png", rgb(h, w, 2))
    out = tmp_path / "out"
    rc, _, err = run_fuse(run_cli, root, ckpts["good"], out)
    assert rc == 0, err
    assert fio.read_image(out / "t.png").shape == (3, h, w)
    triplet = r"(%s|%s|%s): " % tuple(re.escape(str(p)) for p in (root / "ir/t.png", root / "vi/t.png", out / "t.png"))
    res = run_cli("evaluate", "--ir", root / "ir", "--vi", root / "vi", "--fused", out, "--no-progress")
    assert_error(res, 1, "evaluate", what=triplet + r"image \d+x\d+ is too small .*at least \d+ pixels")
    res = run_cli("evaluate", "--ir", root / "ir/t.png", "--vi", root / "vi/t.png", "--fused", out / "t.png",
                  "--metrics", "EN,SD")  # need a 2x2 image (the checks are shared by all metrics)
    if min(h, w) >= 2:
        assert res[0] == 0, res[2]
    else:
        assert_error(res, 1, "evaluate", what=triplet + "image .* is too small")
    if min(h, w) < 3:
        res = run_cli("caption", "--root", root, "--out", tmp_path / "c.json", "--quiet")
        assert_error(res, 1, "caption", root / "ir/t.png", what="at least 3x3")


def test_huge_image_refused_or_tiled(run_cli, ckpts, tmp_path, monkeypatch):
    """Above FUSIONLAB_MAX_PIXELS: refused with advice; with the limit raised, --tile fuses it."""
    root = make_dataset(tmp_path / "big", names=("big",), size=(40, 56))
    monkeypatch.setattr(fio, "MAX_PIXELS", 1000)
    line = assert_error(run_fuse(run_cli, root, ckpts["good"], tmp_path / "o"), 1, "fuse", root / "ir/big.png",
                        what="40x56|56x40")
    assert "FUSIONLAB_MAX_PIXELS" in line and "--tile" in line
    with pytest.raises(E.ImageTooLargeError):
        fio.read_image(root / "ir/big.png")
    monkeypatch.setattr(fio, "MAX_PIXELS", 10_000)
    rc, _, err = run_fuse(run_cli, root, ckpts["good"], tmp_path / "tiled", "--tile", "16", "--overlap", "4")
    assert rc == 0, err
    assert fio.read_image(tmp_path / "tiled/big.png").shape == (3, 40, 56)


def test_usage_errors_exit_2(run_cli, ckpts, tmp_path):
    root = make_dataset(tmp_path / "d", names=("a",))
    ck = ckpts["good"]
    assert_error(run_cli("fuse", "--out", tmp_path / "o", "--checkpoint", ck), 2, "fuse", what="give --ir and --vi")
    assert_error(run_cli("fuse", "--ir", root / "ir", "--vi", root / "vi/a.png", "--out", tmp_path / "o"), 2, "fuse",
                 root / "ir", what="both must be files or both folders")
    assert_error(run_cli("fuse", "--data", root, "--ir", root / "ir", "--out", tmp_path / "o"), 2, "fuse",
                 what="either --data or --ir/--vi")
    assert_error(run_fuse(run_cli, root, ck, tmp_path / "o", "--tile", "4"), 2, "fuse", what="tile >= 16")
    assert_error(run_fuse(run_cli, root, ck, tmp_path / "o", "--no-such-flag"), 2, "fuse",
                 what="unrecognized arguments: --no-such-flag")
    assert_error(run_cli("evaluate", "--ir", root / "ir"), 2, "evaluate", what="required")
    assert_error(run_cli("evaluate", "--ir", root / "ir", "--vi", root / "vi", "--fused", root / "vi/a.png"), 2,
                 "evaluate", what="all files or all folders")
    assert_error(run_cli("evaluate", "--ir", root / "ir", "--vi", root / "vi", "--fused", root / "vi",
                         "--batch-size", "0"), 2, "evaluate", what="--batch-size")
    assert_error(run_cli("evaluate", "--ir", root / "ir", "--vi", root / "vi", "--fused", root / "vi",
                         "--metrics", "EN,FOO"), 1, "evaluate", what="unknown metric 'FOO'")
    assert_error(run_cli("caption", "--out", tmp_path / "c.json"), 2, "caption", what="give --root")
    assert_error(run_cli("fuse", "--data", root, "--model", "dtpf_giant", "--out", tmp_path / "o"), 1, "fuse",
                 what="unknown model 'dtpf_giant'")
    assert not (tmp_path / "o").exists()


def test_demo_profile_report_errors(run_cli, ckpts, tmp_path):
    blocked = blocked_path(tmp_path)
    assert_error(run_cli("demo", "--checkpoint", ckpts["truncated"], "--out", tmp_path / "demo", "--n", "1",
                         "--size", "16x16"), 1, "demo", ckpts["truncated"], what="not a readable torch checkpoint")
    assert_error(run_cli("demo", "--checkpoint", ckpts["good"], "--out", blocked, "--n", "1", "--size", "16x16"), 1,
                 "demo", blocked.parent, what="cannot write")
    assert_error(run_cli("demo", "--size", "big"), 2, "demo", what="--size must look like")
    assert_error(run_cli("report", tmp_path / "nope.yaml"), 1, "report", tmp_path / "nope.yaml", what="not found")
    assert_error(run_cli("profile", "--models", "dtpf_giant"), 1, "profile", what="unknown model 'dtpf_giant'")
    assert_error(run_cli("profile", "--size", "abc"), 2, "profile", what="--size must look like 480x640")


def test_nan_and_inf_tensors_raise_invalid_tensor_error(ckpts, tmp_path):
    from fusionlab.metrics import compute_metrics, evaluate, to_metric_scale
    from fusionlab.models import fuse_pair, load_checkpoint

    model, _ = load_checkpoint(ckpts["good"])
    ir, vi = torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 16)
    bad_ir, bad_vi = ir.clone(), vi.clone()
    bad_ir[0, 0, 2, 3] = float("nan")
    bad_vi[0, 1, 5, 5] = float("inf")
    for a, b, who in ((bad_ir, vi, "ir"), (ir, bad_vi, "vi")):
        with pytest.raises(E.InvalidTensorError, match=f"{who}.*NaN/inf"):
            fuse_pair(model, a, b)
    with pytest.raises(E.InvalidTensorError, match="ir.*NaN/inf"):
        model(bad_ir, vi[:, :1])
    with pytest.raises(E.InvalidTensorError, match="vi.*NaN/inf"):
        fuse_pair(model, ir, bad_vi, tile=16, overlap=4)
    f255 = torch.rand(2, 1, 16, 16) * 255
    nan255 = f255.clone()
    nan255[1, 0, 0, 0] = float("nan")
    with pytest.raises(E.InvalidTensorError, match="fused: holds 1 NaN/inf"):
        compute_metrics(f255, f255, nan255)
    with pytest.raises(E.InvalidTensorError, match="NaN/inf"):
        evaluate(np.full((8, 8), np.inf), f255[0, 0].numpy(), f255[0, 0].numpy())
    with pytest.raises(E.InvalidTensorError, match="NaN/inf"):
        to_metric_scale(bad_vi)
    with pytest.raises(E.InvalidTensorError, match=re.escape(str(tmp_path / "x.png")) + ".*NaN/inf"):
        fio.write_image(tmp_path / "x.png", bad_vi[0])
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(E.InvalidTensorError, match="logits holds 1 NaN/inf"):
        fio.check_finite(bad_ir, "logits")
