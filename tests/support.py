"""Shared test helpers (plain functions, not fixtures): the generated bad-input corpus and the
one-line-error assertion. Fixtures built on them (``ckpts``, ``corpus``) are in conftest.py."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from fusionlab import errors as E

REPO = Path(__file__).resolve().parents[1]
SIZE = (24, 24)  # corpus images: tiny, so ~100 CLI runs stay within seconds
TINY = "dtpf_student_tiny"


def benchmark_module(name: str):
    """``benchmarks/<name>.py`` imported as a module (the folder is not a package): its
    ``main`` for smoke runs, or its independent reference code to compare with."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def save_png(path: Path, arr: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def gray(h: int, w: int, seed: int = 0) -> np.ndarray:
    return rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


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


ALL = sorted(FOLDER_CASES)


#: a valid two-row grid file (tests break it one way at a time)
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


def blocked_path(tmp_path: Path) -> Path:
    """A path that cannot be created even by root: its parent is a regular file."""
    f = tmp_path / "a_file.txt"
    f.write_text("I am a file, not a folder\n")
    return f / "out"


def luma_pair(b: int = 1, h: int = 32, w: int = 40, seed: int = 0):
    """Random ``(ir, vi_y)``: two ``(b, 1, h, w)`` images in [0, 1] (what a fusion network takes)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g), torch.rand(b, 1, h, w, generator=g)


def text_for(model, b: int = 1, seed: int = 1):
    """A random text embedding ``(b, text_dim)`` for a text-guided model, None for the others."""
    import torch

    if model.config.text_dim is None:
        return None
    return torch.randn(b, model.config.text_dim, generator=torch.Generator().manual_seed(seed))


#: a CLIP text tower small enough to build in a blink (open_clip config, random weights)
TINY_CLIP = {"embed_dim": 32,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
