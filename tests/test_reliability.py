"""Reliability (issue 10): every bad input gets ONE clear line and the right exit code,
interrupted work loses nothing, and nothing from a file can execute code.

The bad-input corpus is generated here (no committed binaries). Each case is run through
the REAL command line (in-process via ``run_cli`` for speed; a few true subprocess runs
check the process-level behaviour) and through the Python API, which must raise the
specific :mod:`fusionlab.errors` class. Every case asserts the exit code, that stderr ends
with exactly one ``fusionlab <cmd>: error: ...`` line naming the culprit file and saying
what is wrong, and that no traceback is shown.
"""
from __future__ import annotations

import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fusionlab import errors as E
from fusionlab import io as fio

REPO = Path(__file__).resolve().parents[1]
SIZE = (24, 24)  # corpus images: tiny, so ~100 CLI runs stay within seconds
TINY = "dtpf_student_tiny"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models on tiny images: one thread is ~10x faster than two on a busy 2-core machine
    (OpenMP threads spin-wait for each other)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ============================================================================ corpus builders
def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def save_png(path: Path, arr: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def gray(h: int, w: int, seed: int = 0) -> np.ndarray:
    return _rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return _rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def make_dataset(root: Path, names=("a", "b"), size=SIZE) -> Path:
    """``root/ir/<name>.png`` (8-bit gray) + ``root/vi/<name>.png`` (RGB), random content."""
    for i, n in enumerate(names):
        save_png(root / "ir" / f"{n}.png", gray(*size, seed=2 * i))
        save_png(root / "vi" / f"{n}.png", rgb(*size, seed=2 * i + 1))
    return root


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: max(8, int(len(data) * keep))])
    return path


# Each case breaks pair "b" of a good 2-pair dataset and returns the culprit path (relative
# to the dataset root). ``what`` is a regex over the message: what is wrong.
def _mismatch(r):
    save_png(r / "vi/b.png", rgb(SIZE[0] + 1, SIZE[1], seed=9))
    return "vi/b.png"


def _missing_partner(r):
    (r / "vi/b.png").unlink()
    return "ir/b.png"


def _empty_folder(r):
    for f in (r / "ir").iterdir():
        f.unlink()
    return "ir"


def _not_an_image(r):
    (r / "vi/b.png").write_text("name,value\nthis is a CSV file, not a picture\n")
    return "vi/b.png"


def _zero_bytes(r):
    (r / "vi/b.png").write_bytes(b"")
    return "vi/b.png"


def _truncated_png(r):
    truncate(r / "vi/b.png")
    return "vi/b.png"


def _truncated_jpg(r):
    (r / "vi/b.png").unlink()
    save_png(r / "vi/b.jpg", rgb(*SIZE, seed=5), quality=95)
    truncate(r / "vi/b.jpg", 0.6)
    return "vi/b.jpg"


def _nan_tiff(r):
    # a float TIFF (mode F) holding NaN: what a careless numpy export produces
    (r / "vi/b.png").unlink()
    a = np.full(SIZE, 0.5, np.float32)
    a[3, 4] = np.nan
    Image.fromarray(a, mode="F").save(r / "vi/b.tif")
    return "vi/b.tif"


def _huge(r):
    # pair b is bigger than the pixel limit that the ``huge_limit`` fixture sets
    save_png(r / "ir/b.png", gray(40, 40, seed=7))
    save_png(r / "vi/b.png", rgb(40, 40, seed=8))
    return "ir/b.png"


FOLDER_CASES = {
    # name: (mutate, error class, what-is-wrong regex)
    "size_mismatch": (_mismatch, E.ShapeMismatchError, r"differs from infrared|but infrared"),
    "missing_partner": (_missing_partner, E.MissingPairError, r"no visible partner"),
    "empty_folder": (_empty_folder, E.EmptyInputError, r"no image files"),
    "not_an_image": (_not_an_image, E.ImageReadError, r"not an image file"),
    "zero_bytes": (_zero_bytes, E.ImageReadError, r"empty file"),
    "truncated_png": (_truncated_png, E.ImageReadError, r"truncated"),
    "truncated_jpg": (_truncated_jpg, E.ImageReadError, r"truncated"),
    "nan_in_float_tiff": (_nan_tiff, E.ImageReadError, r"NaN"),
    "huge_dimensions": (_huge, E.ImageTooLargeError, r"above the limit of 1000 .*--tile"),
}
HUGE_LIMIT = 1000  # pixels: 24x24 = 576 passes, 40x40 = 1600 is refused


@pytest.fixture
def huge_limit(monkeypatch):
    monkeypatch.setattr(fio, "MAX_PIXELS", HUGE_LIMIT)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """A good tiny student checkpoint plus broken and foreign ones."""
    from fusionlab.models import create_model, save_checkpoint

    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    student = create_model(TINY)
    good = save_checkpoint(d / "student_tiny.pt", student, metadata={"note": "test"})
    out = {"good": good}
    data = good.read_bytes()
    (d / "truncated.pt").write_bytes(data[: len(data) // 2])
    out["truncated"] = d / "truncated.pt"
    (d / "garbage.pt").write_bytes(_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out["garbage"] = d / "garbage.pt"
    (d / "empty.pt").write_bytes(b"")
    out["empty"] = d / "empty.pt"
    torch.save(student.state_dict(), d / "state_dict.pt")  # plain state_dict: not our format
    out["state_dict"] = d / "state_dict.pt"
    # config says student_tiny, weights are from a wider network: does not fit
    obj = torch.load(good, weights_only=True)
    obj["state_dict"] = {k: v for k, v in create_model(TINY, dim=16).state_dict().items()}
    torch.save(obj, d / "wrong_weights.pt")
    out["wrong_weights"] = d / "wrong_weights.pt"
    out["missing"] = d / "no_such.pt"
    return out


# ============================================================================ assertions
def assert_error(result, code: int, cmd: str, *needles: str, what: str | None = None) -> str:
    """``result`` = (exit code, stdout, stderr) of one CLI run; returns the error line.

    stderr may hold progress output before the failure, but it must END with exactly one
    ``fusionlab <cmd>: error: ...`` line that contains ``needles`` (file names) and matches
    ``what``; no traceback, and no "unexpected" (= an exception fusionlab did not anticipate).
    """
    rc, _out, err = result
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip()]
    assert rc == code, f"exit code {rc} != {code}; stderr:\n{err}"
    assert "Traceback" not in err, err
    # argparse reports unknown options from the top-level parser ("fusionlab: error: ...")
    errs = [ln for ln in lines if re.match(rf"fusionlab( {cmd})?: error: ", ln)]
    assert len(errs) == 1 and lines[-1] == errs[0], f"expected one final error line, stderr:\n{err}"
    line = errs[0]
    assert "unexpected" not in line, f"an exception escaped unclassified: {line}"
    for n in needles:
        assert str(n) in line, f"{n!r} not named in: {line}"
    if what:
        assert re.search(what, line), f"{what!r} not in: {line}"
    return line


def run_fuse(run_cli, root: Path, ckpt: Path, out: Path, *extra):
    return run_cli("fuse", "--data", root, "--checkpoint", ckpt, "--out", out, *extra)


# ============================================================================ folder corpus
@pytest.fixture
def corpus(tmp_path, request, monkeypatch):
    """Build the dataset of one FOLDER_CASES case: returns (root, culprit path, cls, what)."""
    name = request.param
    mutate, cls, what = FOLDER_CASES[name]
    root = make_dataset(tmp_path / name)
    culprit = root / mutate(root)
    if name == "huge_dimensions":
        monkeypatch.setattr(fio, "MAX_PIXELS", HUGE_LIMIT)
    return root, culprit, cls, what


ALL = sorted(FOLDER_CASES)


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


# ============================================================================ unusual but valid inputs
def test_unusual_but_valid_images_are_fused_and_evaluated(run_cli, ckpts, tmp_path):
    """16-bit PNG, RGBA, palette, LA and gray inputs are read, fused and scored (no error)."""
    root = tmp_path / "odd"
    h, w = 48, 48  # >= 41 so that every metric (VIF's 41x41 window) is defined
    g16 = (_rng(3).integers(0, 65536, (h, w))).astype(np.uint16)
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


# ============================================================================ checkpoints
CKPT_CASES = {
    "truncated": r"not a readable torch checkpoint",
    "garbage": r"not a readable torch checkpoint|refused by the safe loader",
    "empty": r"not a readable torch checkpoint",
    "state_dict": r"not a fusionlab model checkpoint",
    "wrong_weights": r"weights do not fit",
    "missing": r"checkpoint file not found",
}


@pytest.mark.parametrize("case", sorted(CKPT_CASES))
def test_bad_checkpoints(run_cli, ckpts, tmp_path, case):
    from fusionlab.models import load_checkpoint

    root = make_dataset(tmp_path / "d", names=("a",))
    bad = ckpts[case]
    assert_error(run_fuse(run_cli, root, bad, tmp_path / "o"), 1, "fuse", bad, what=CKPT_CASES[case])
    assert not (tmp_path / "o").exists()  # refused before anything was written
    with pytest.raises(E.CheckpointError, match=CKPT_CASES[case]):
        load_checkpoint(bad)


def test_checkpoint_of_another_architecture(run_cli, ckpts, tmp_path):
    from fusionlab.models import create_model, load_checkpoint

    root = make_dataset(tmp_path / "d", names=("a",))
    res = run_fuse(run_cli, root, ckpts["good"], tmp_path / "o", "--model", "dtpf_teacher_tiny")
    assert_error(res, 1, "fuse", ckpts["good"], what="holds a 'dtpf_student_tiny' model, expected 'dtpf_teacher_tiny'")
    with pytest.raises(E.CheckpointError, match="expected 'dtpf_student'"):
        load_checkpoint(ckpts["good"], expected="dtpf_student")
    with pytest.raises(E.CheckpointError, match="architecture differs .*dim=8 vs 16"):
        load_checkpoint(ckpts["good"], expected=create_model(TINY, dim=16))


def test_distill_with_a_corrupt_teacher(run_cli, ckpts, tmp_path):
    res = run_cli("distill", "--config", "distill_ci", "--teacher", ckpts["truncated"], "--out", tmp_path / "run")
    assert_error(res, 1, "distill", ckpts["truncated"], what="not a readable torch checkpoint")


def test_train_resume_from_a_corrupt_checkpoint(run_cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a zip file")
    res = run_cli("train", "--config", "teacher_ci", "--out", run, "--resume")
    assert_error(res, 1, "train", run / "checkpoint.pt", what="not a readable torch checkpoint")


class _Evil:
    """Unpickling this runs code: what a malicious "checkpoint" does with plain torch.load."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_checkpoint_is_refused_not_executed(run_cli, tmp_path):
    from fusionlab.models import load_checkpoint
    from fusionlab.text.projector import load_projector

    # the payload is live: an unsafe loader would run it
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Evil(probe)))
    assert probe.exists()

    marker = tmp_path / "pwned"
    zipped = tmp_path / "evil.pt"
    torch.save({"format": "fusionlab.model", "model": _Evil(marker)}, zipped)  # torch's zip format
    legacy = tmp_path / "evil_legacy.pt"
    legacy.write_bytes(pickle.dumps(_Evil(marker)))  # a bare pickle
    root = make_dataset(tmp_path / "d", names=("a",))
    for bad in (zipped, legacy):
        line = assert_error(run_fuse(run_cli, root, bad, tmp_path / "o"), 1, "fuse", bad,
                            what="refused by the safe loader .*never code")
        assert "weights_only=False" not in line and "\x1b" not in line  # no "just load it unsafely" advice
        assert "references exec" in line or "opcode" in line
        with pytest.raises(E.CheckpointError):
            load_checkpoint(bad)
        with pytest.raises(E.CheckpointError, match="refused by the safe loader"):
            load_projector(bad)
    assert not marker.exists(), "checkpoint loading executed code from the file"


def test_library_never_uses_unsafe_loaders():
    """Static guard: every torch.load passes weights_only=True; YAML only via safe_load."""
    bad = []
    for p in (REPO / "fusionlab").rglob("*.py"):
        src = p.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", src):
            if "weights_only=True" not in m.group(1):
                bad.append(f"{p.name}: torch.load({m.group(1)})")
        for pat in (r"yaml\.load\(", r"yaml\.unsafe_load", r"yaml\.full_load", r"pickle\.loads?\(",
                    r"allow_pickle=True", r"(?<![\w.])eval\("):
            if re.search(pat, src):
                bad.append(f"{p.name}: {pat}")
    assert not bad, bad


# ============================================================================ grid and config files
GOOD_GRID = """\
name: rel_grid
description: reliability test grid
metrics: [EN, VIF, Qabf]
base: {stage: teacher, text_prior: oracle}
rows:
  - label: a
    params: {fusion: concat_conv1x1}
  - label: b
    params: {fusion: scfm}
seeds: [0]
"""
GRID_CASES = {
    # name: (replace old -> new in GOOD_GRID, or full text), regex of the error line
    "unknown_top_key": (("seeds: [0]", "seeds: [0]\ncolour: red"), r"colour: unknown key"),
    "unknown_param": (("{fusion: scfm}", "{fusoin: scfm}"), r"rows\[1\]\.params\.fusoin: unknown key"),
    "unknown_fusion": (("{fusion: scfm}", "{fusion: scmf}"), r"rows\[1\]\.params\.fusion = 'scmf': unknown fusion"),
    "bad_seed": (("seeds: [0]", "seeds: [-1]"), r"seeds = \[-1\]: expected a non-empty list of integers"),
    "bad_width": (("text_prior: oracle}", "text_prior: oracle, width: 0}"), r"base\.width = 0: expected an? "),
    "bad_stage": (("stage: teacher", "stage: teach"), r"base\.stage = 'teach': expected one of"),
    "bad_yaml": (("rows:", "rows: [\n"), r"invalid YAML at line \d+"),
    "not_a_mapping": ("- just\n- a list\n", r"must be a YAML mapping"),
    "duplicate_rows": (("{fusion: concat_conv1x1}", "{fusion: scfm}"), r"identical params"),
    "path_escape": (("text_prior: oracle}", "text_prior: oracle, data: ../../etc}"),
                    r"base\.data = '\.\./\.\./etc': a relative path may not leave"),
    "name_escape": (("name: rel_grid", "name: ../../outside"), r"name = '\.\./\.\./outside'"),
    "python_tag": (("description: reliability test grid",
                    "description: !!python/object/apply:os.system ['touch {marker}']"),
                   r"invalid YAML at line 2 \(could not determine a constructor"),
}


def _grid_text(case: str, marker: Path) -> str:
    change, _ = GRID_CASES[case]
    if isinstance(change, str):
        return change
    old, new = change
    assert old in GOOD_GRID
    return GOOD_GRID.replace(old, new.replace("{marker}", str(marker)), 1)


def test_good_grid_is_accepted(run_cli, tmp_path):
    (tmp_path / "g.yaml").write_text(GOOD_GRID)
    rc, out, err = run_cli("ablate", tmp_path / "g.yaml", "--dry-run", "--runs", tmp_path / "runs", "--preset", "ci")
    assert rc == 0, err
    assert "rel_grid [ci]: 2 runs" in out


@pytest.mark.parametrize("case", sorted(GRID_CASES))
def test_bad_grid_files(run_cli, tmp_path, case):
    from fusionlab.ablate import load_grid

    marker = tmp_path / "pwned"
    grid = tmp_path / "grids" / f"{case}.yaml"
    grid.parent.mkdir()
    grid.write_text(_grid_text(case, marker))
    what = GRID_CASES[case][1]
    res = run_cli("ablate", grid, "--dry-run", "--runs", tmp_path / "runs", "--preset", "ci")
    assert_error(res, 1, "ablate", grid, what=what)
    with pytest.raises(E.ConfigError, match=what):
        load_grid(grid)
    assert not marker.exists() and not (tmp_path / "runs").exists()


def test_grid_paths_cannot_escape(tmp_path, monkeypatch):
    """Relative paths resolve inside the grid's folder; '..' escapes and names with separators are refused."""
    from fusionlab.ablate import expand, parse_grid
    from fusionlab.ablate.grid import resolve_path

    base = {"name": "g", "rows": [{"label": "a", "params": {"data": "sub/data"}}]}
    grid = parse_grid(base, "g.yaml", tmp_path / "g.yaml")
    run = expand(grid, "ci")[0]
    assert run.resolved_params(grid)["data"] == str((tmp_path / "sub/data").resolve())
    for evil in ("../x", "a/../../x", "..", "sub/../../../etc/passwd"):
        with pytest.raises(E.ConfigError, match="may not leave"):
            parse_grid({**base, "rows": [{"label": "a", "params": {"caption_file": evil}}]}, "g.yaml",
                       tmp_path / "g.yaml")
        with pytest.raises(E.ConfigError, match="may not leave"):
            resolve_path(evil, grid, "data")
    for evil_name in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(E.ConfigError, match="name"):
            parse_grid({**base, "name": evil_name}, "g.yaml")
    monkeypatch.delenv("FUSIONLAB_NO_SUCH_VAR", raising=False)
    with pytest.raises(E.ConfigError, match="FUSIONLAB_NO_SUCH_VAR is not set"):
        resolve_path("$FUSIONLAB_NO_SUCH_VAR/data", grid, "data")


TRAIN_CASES = {
    # name: (YAML text appended to/replacing teacher_ci, regex)
    "unknown_key": ("stepz: 3\n", r"unknown key 'stepz'"),
    "unknown_data_key": ("data: {crop_size: 32}\n", r"data: unknown key 'crop_size'"),
    "zero_steps": ("steps: 0\n", r"steps=0 must be >= 1"),
    "wrong_type": ("lr: fast\n", r"lr='fast' has the wrong type"),
    "bad_stage": ("stage: pretrain\n", r"stage='pretrain' must be one of"),
    "bad_yaml": ("data: [unclosed\n", r"invalid YAML at line \d+"),
    "python_tag": ("steps: !!python/object/apply:os.system ['touch {marker}']\n",
                   r"invalid YAML at line \d+ \(could not determine a constructor"),
    "binary": (None, r"not a text \(YAML\) file"),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_bad_train_configs(run_cli, tmp_path, case):
    from fusionlab.train.config import PACKAGE_CONFIGS, load_config

    marker = tmp_path / "pwned"
    text, what = TRAIN_CASES[case]
    cfg = tmp_path / f"{case}.yaml"
    if text is None:
        cfg.write_bytes(b"\xff\xfe\x00\x81binary\x00junk")
    else:
        base = (PACKAGE_CONFIGS / "teacher_ci.yaml").read_text()
        load_config(PACKAGE_CONFIGS / "teacher_ci.yaml")  # positive control: the base is valid
        cfg.write_text(base + text.replace("{marker}", str(marker)))
    res = run_cli("train", "--config", cfg, "--out", tmp_path / "run")
    assert_error(res, 1, "train", cfg, what=what)
    with pytest.raises(E.ConfigError, match=what):
        load_config(cfg)
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_train_and_distill_usage_errors(run_cli, tmp_path):
    assert_error(run_cli("train", "--config", tmp_path / "nope.yaml"), 1, "train", tmp_path / "nope.yaml",
                 what="config file not found")
    assert_error(run_cli("train", "--config", "teacher_ci", "--set", "steps"), 1, "train", "--set 'steps'",
                 what="expected KEY=VALUE")
    assert_error(run_cli("distill", "--config", "distill_ci", "--out", tmp_path / "r"), 2, "distill",
                 what="no teacher")
    assert_error(run_cli("train", "--config", "distill_ci", "--out", tmp_path / "r"), 2, "train",
                 what="is a distill config")


# ============================================================================ usage errors (exit 2)
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
    blocked = _blocked(tmp_path)
    assert_error(run_cli("demo", "--checkpoint", ckpts["truncated"], "--out", tmp_path / "demo", "--n", "1",
                         "--size", "16x16"), 1, "demo", ckpts["truncated"], what="not a readable torch checkpoint")
    assert_error(run_cli("demo", "--checkpoint", ckpts["good"], "--out", blocked, "--n", "1", "--size", "16x16"), 1,
                 "demo", blocked.parent, what="cannot write")
    assert_error(run_cli("demo", "--size", "big"), 2, "demo", what="--size must look like")
    assert_error(run_cli("report", tmp_path / "nope.yaml"), 1, "report", tmp_path / "nope.yaml", what="not found")
    assert_error(run_cli("profile", "--models", "dtpf_giant"), 1, "profile", what="unknown model 'dtpf_giant'")
    assert_error(run_cli("profile", "--size", "abc"), 2, "profile", what="--size must look like 480x640")


# ============================================================================ NaN / inf tensors
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


# ============================================================================ unwritable outputs
def _blocked(tmp_path: Path) -> Path:
    """A path that cannot be created even by root: its parent is a regular file."""
    f = tmp_path / "a_file.txt"
    f.write_text("I am a file, not a folder\n")
    return f / "out"


def test_unwritable_output_folder(run_cli, ckpts, tmp_path):
    root = make_dataset(tmp_path / "d", names=("a",))
    blocked = _blocked(tmp_path)
    parent = str(blocked.parent)
    assert_error(run_fuse(run_cli, root, ckpts["good"], blocked), 1, "fuse", parent, what="cannot write")
    assert_error(run_cli("evaluate", "--ir", root / "ir/a.png", "--vi", root / "vi/a.png", "--fused",
                         root / "vi/a.png", "--metrics", "EN", "--out", blocked / "m.json"), 1, "evaluate", parent,
                 what="cannot write")
    assert_error(run_cli("caption", "--root", root, "--out", blocked / "c.json", "--quiet"), 1, "caption", parent,
                 what="cannot write")
    assert_error(run_cli("train", "--config", "teacher_ci", "--out", blocked / "run"), 1, "train", parent,
                 what="cannot write")
    grid = tmp_path / "g.yaml"
    grid.write_text(GOOD_GRID)
    assert_error(run_cli("ablate", grid, "--runs", blocked / "runs", "--preset", "ci", "--no-progress"), 1, "ablate",
                 parent, what="cannot write")
    with pytest.raises(E.OutputError, match="cannot write"):
        fio.write_image(blocked / "x.png", torch.rand(1, 4, 4))
    with pytest.raises(E.OutputError, match="cannot write"):
        fio.atomic_write_text(blocked / "x.txt", "x")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: chmod does not block writes (the regular-file parent case covers it)")
def test_read_only_output_folder(run_cli, ckpts, tmp_path):
    root = make_dataset(tmp_path / "d", names=("a",))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert_error(run_fuse(run_cli, root, ckpts["good"], ro), 1, "fuse", ro, what="cannot write")
        assert_error(run_cli("caption", "--root", root, "--out", ro / "c.json", "--quiet"), 1, "caption", ro,
                     what="cannot write")
    finally:
        ro.chmod(0o755)


# ============================================================================ nothing lost
def test_fuse_skip_existing_keeps_done_outputs(run_cli, ckpts, tmp_path):
    root = make_dataset(tmp_path / "d", names=("a", "b", "c"))
    out = tmp_path / "out"
    assert run_fuse(run_cli, root, ckpts["good"], out)[0] == 0
    (out / "b.png").unlink()
    old = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    time.sleep(0.02)
    rc, stdout, err = run_fuse(run_cli, root, ckpts["good"], out, "--skip-existing")
    assert rc == 0, err
    assert "fused 1 pair(s)" in stdout and "2 skipped" in stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "b.png"} == old
    assert (out / "b.png").is_file()
    # without the flag every output is rewritten
    rc, stdout, _ = run_fuse(run_cli, root, ckpts["good"], out)
    assert "fused 3 pair(s)" in stdout


def test_failed_evaluation_keeps_the_previous_result(run_cli, tmp_path):
    root = make_dataset(tmp_path / "d", names=("a",))
    out = tmp_path / "metrics.json"
    args = ("evaluate", "--ir", root / "ir/a.png", "--vi", root / "vi/a.png", "--fused", root / "vi/a.png",
            "--metrics", "EN,SD", "--out", out)
    assert run_cli(*args)[0] == 0
    before = out.read_bytes()
    truncate(root / "vi/a.png")
    assert run_cli(*args)[0] == 1
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "metrics.json"]  # no temp files left


def test_caption_resumes_without_duplicates(run_cli, tmp_path):
    import json

    root = make_dataset(tmp_path / "d", names=("a", "b", "c"))
    out = tmp_path / "caps.json"
    assert run_cli("caption", "--root", root, "--out", out, "--limit", "1", "--quiet")[0] == 0
    first = json.loads(out.read_text())
    assert list(first) == ["a"]
    rc, stdout, _ = run_cli("caption", "--root", root, "--out", out, "--quiet")
    assert rc == 0 and "3 captions" in stdout
    caps = json.loads(out.read_text())
    assert sorted(caps) == ["a", "b", "c"] and caps["a"] == first["a"]


# ---------------------------------------------------------------------------- true subprocesses
def _cli(*args, debug: bool = False, **kw) -> list[str]:
    return [sys.executable, "-m", "fusionlab", *(["--debug"] if debug else []), *map(str, args)]


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "FUSIONLAB_PRESET": "ci", "OMP_NUM_THREADS": "1",
       "PYTHONWARNINGS": "ignore"}


def test_subprocess_exit_codes_one_line_and_debug_traceback(ckpts, tmp_path):
    """Real processes: exit code, stderr is exactly one line without traceback; --debug adds one."""
    root = make_dataset(tmp_path / "d", names=("a", "b"))
    good = make_dataset(tmp_path / "good", names=("a",))
    (root / "vi/b.png").unlink()
    grid = tmp_path / "g.yaml"
    grid.write_text(GOOD_GRID.replace("seeds: [0]", "seeds: [0]\ncolour: red"))
    cases = [
        (_cli("fuse", "--data", root, "--checkpoint", ckpts["good"], "--out", tmp_path / "o"), 1,
         str(root / "ir/b.png")),
        (_cli("fuse", "--data", good, "--checkpoint", ckpts["truncated"], "--out", tmp_path / "o"), 1,
         str(ckpts["truncated"])),
        (_cli("ablate", grid, "--dry-run"), 1, "colour: unknown key"),
        (_cli("evaluate", "--ir", root / "ir"), 2, "required"),
    ]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
             for c, _, _ in cases[:2]]  # two at a time: the machine has 2 cores
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    for c, _, _ in cases[2:]:
        p = subprocess.run(c, capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120)
        results.append((p.stdout, p.stderr, p.returncode))
    for (cmd, code, needle), (_out, err, rc) in zip(cases, results):
        assert rc == code, (cmd, err)
        assert err.count("\n") == 1 and err.endswith("\n"), f"{cmd}: stderr is not one line:\n{err}"
        assert "Traceback" not in err and needle in err and ": error: " in err
    # --debug: the same failure shows the traceback, then the same one-line message
    p = subprocess.run(_cli(*cases[1][0][3:], debug=True), capture_output=True, text=True, env=ENV, cwd=tmp_path,
                       timeout=120)
    assert p.returncode == 1 and "Traceback (most recent call last)" in p.stderr and "CheckpointError" in p.stderr
    assert p.stderr.rstrip("\n").splitlines()[-1] == results[1][1].rstrip("\n")


def _wait_for(pred, proc, timeout=120.0):
    t0 = time.monotonic()
    while not pred():
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.01)
    return True


def test_fuse_killed_with_sigint_and_sigkill_resumes_to_the_same_result(run_cli, ckpts, tmp_path):
    """A folder run interrupted (SIGINT: exit 130, one line) then killed (SIGKILL) mid-run leaves only
    complete images; --skip-existing finishes the job and the result equals an uninterrupted run."""
    names = [f"p{i:02d}" for i in range(24)]
    root = make_dataset(tmp_path / "d", names=names, size=(32, 32))
    ref = tmp_path / "ref"
    assert run_fuse(run_cli, root, ckpts["good"], ref)[0] == 0
    out = tmp_path / "out"
    cmd = _cli("fuse", "--data", root, "--checkpoint", ckpts["good"], "--out", out, "--skip-existing")
    done = lambda: len(fio.list_images(out)) if out.is_dir() else 0  # noqa: E731

    # 1) Ctrl-C: exit code 130 and one line "interrupted" at the end of stderr
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    started = _wait_for(lambda: done() >= 1, p)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    if started and p.returncode != 0:
        assert p.returncode == 130, err
        assert err.rstrip("\n").splitlines()[-1] == "fusionlab fuse: interrupted" and "Traceback" not in err
    n1 = done()
    # 2) SIGKILL: no chance to clean up
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _wait_for(lambda: done() >= n1 + 2, p)
    p.kill()
    p.wait(timeout=60)
    # every visible output is a complete image (partial writes live only in hidden temp files)
    for f in fio.list_images(out):
        assert fio.read_image(f).shape == (3, 32, 32)
    n2 = done()
    assert n2 < len(names), "the run finished before it was killed: nothing left to resume"
    before = {f.name: f.stat().st_mtime_ns for f in fio.list_images(out)}
    # 3) resume: only the missing pairs are fused, the result equals the uninterrupted run
    rc, stdout, err = run_fuse(run_cli, root, ckpts["good"], out, "--skip-existing")
    assert rc == 0, err
    assert f"fused {len(names) - n2} pair(s)" in stdout
    assert {f.name: f.stat().st_mtime_ns for f in fio.list_images(out) if f.name in before} == before
    assert [f.name for f in fio.list_images(out)] == [f.name for f in fio.list_images(ref)]
    for f in fio.list_images(ref):
        assert torch.equal(fio.read_image(f), fio.read_image(out / f.name)), f.name
