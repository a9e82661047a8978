"""Image I/O: reading every mode, one-line read errors, atomic writes (see also test_io_properties.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fusionlab import io as fio
from fusionlab.errors import ImageReadError


def _save(path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


def test_read_modes_8bit_16bit_rgba_palette(tmp_path):
    g8 = _save(tmp_path / "g8.png", np.full((5, 7), 51, np.uint8))
    assert torch.allclose(fio.read_image(g8), torch.full((1, 5, 7), 0.2))
    g16 = tmp_path / "g16.png"
    Image.fromarray(np.full((5, 7), 13107, np.uint16)).save(g16)
    assert torch.allclose(fio.read_image(g16), torch.full((1, 5, 7), 0.2), atol=1e-6)
    rgba = _save(tmp_path / "rgba.png", np.dstack([np.full((4, 4), v, np.uint8) for v in (255, 0, 0, 128)]))
    t = fio.read_image(rgba)
    assert t.shape == (3, 4, 4) and float(t[0, 0, 0]) == 1.0
    pal = Image.fromarray(np.zeros((4, 4), np.uint8), mode="P")
    pal.putpalette([0, 255, 0] * 256)
    pal.save(tmp_path / "pal.png")
    t = fio.read_image(tmp_path / "pal.png")
    assert t.shape == (3, 4, 4) and float(t[1].min()) == 1.0
    assert fio.read_image(rgba, mode="gray").shape == (1, 4, 4)
    assert fio.read_image(g8, mode="rgb").shape == (3, 5, 7)


def test_read_errors_are_one_line_and_name_the_file(tmp_path):
    bad = tmp_path / "fake.png"
    bad.write_text("not an image")
    trunc = tmp_path / "trunc.png"
    _save(tmp_path / "ok.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    trunc.write_bytes((tmp_path / "ok.png").read_bytes()[:200])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for p in (bad, trunc, empty, tmp_path / "missing.png"):
        with pytest.raises(ImageReadError) as ei:
            fio.read_image(p)
        msg = str(ei.value)
        assert str(p) in msg and "\n" not in msg


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out" / "a.txt"
    fio.atomic_write_text(target, "first")
    with pytest.raises(RuntimeError):
        with fio.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]
    img = fio.write_image(tmp_path / "img.png", torch.rand(3, 6, 5))
    assert fio.read_image(img).shape == (3, 6, 5)


def test_atomic_outputs_get_the_mode_of_a_plain_open(tmp_path):
    # mkstemp creates 0600 files; results must be readable by others like any other output
    import os
    import stat

    old = os.umask(0o022)
    try:
        a = fio.atomic_write_text(tmp_path / "a.txt", "x") or tmp_path / "a.txt"
        img = fio.write_image(tmp_path / "b.png", torch.rand(1, 4, 4))
        os.umask(0o077)
        c = fio.atomic_write_text(tmp_path / "c.txt", "x") or tmp_path / "c.txt"
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(img).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(c).st_mode) == 0o600
