"""Outputs: unwritable folders fail with one line, interrupted or skipped work loses nothing."""
from __future__ import annotations

import os
import time

import pytest
import torch

from fusionlab import errors as E
from fusionlab import io as fio
from support import GOOD_GRID, assert_error, blocked_path, make_dataset, run_fuse, truncate

# one torch thread (fixture in conftest.py): tiny models on tiny images, a busy 2-core machine
pytestmark = pytest.mark.usefixtures("one_thread")


def test_unwritable_output_folder(run_cli, ckpts, tmp_path):
    root = make_dataset(tmp_path / "d", names=("a",))
    blocked = blocked_path(tmp_path)
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
