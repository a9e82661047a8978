"""Folders (platformdirs, overridable by FUSIONLAB_* variables) and the inter-process file lock."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from fusionlab.ablate.grid import parse_grid, resolve_path
from fusionlab.dirs import cache_dir, data_dir, file_lock, models_dir


def test_folders_follow_the_platform_unless_a_variable_says_otherwise(tmp_path, monkeypatch):
    import platformdirs

    for var in ("FUSIONLAB_CACHE", "FUSIONLAB_MODELS", "FUSIONLAB_DATA"):
        monkeypatch.delenv(var, raising=False)
    assert cache_dir() == Path(platformdirs.user_cache_dir("fusionlab", appauthor=False))
    assert data_dir() == Path(platformdirs.user_data_dir("fusionlab", appauthor=False))
    assert models_dir() == cache_dir() / "models"
    monkeypatch.setenv("FUSIONLAB_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("FUSIONLAB_DATA", str(tmp_path / "d"))
    assert cache_dir() == tmp_path / "c" and models_dir() == tmp_path / "c" / "models" and data_dir() == tmp_path / "d"
    from fusionlab.text.cache import default_text_cache_dir
    from fusionlab.train.experiment import teacher_cache_dir

    assert default_text_cache_dir() == tmp_path / "c" / "text" and teacher_cache_dir() == tmp_path / "c" / "teachers"
    # a grid may name $FUSIONLAB_DATA without setting it: it means data_dir()
    grid = parse_grid({"name": "g", "rows": [{"label": "a", "params": {}}]}, "g.yaml", tmp_path / "g.yaml")
    monkeypatch.delenv("FUSIONLAB_DATA")
    assert resolve_path("${FUSIONLAB_DATA}/MSRS/train", grid, "data") == str(data_dir() / "MSRS" / "train")


def test_file_lock_is_exclusive_across_processes(tmp_path):
    lock = tmp_path / "sub" / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from fusionlab.dirs import file_lock\n"
        f"with file_lock({str(lock)!r}):\n    print('locked', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(BlockingIOError, match="locked by another process"):
            with file_lock(lock, blocking=False):
                pass
    finally:
        holder.kill()
        holder.wait()
    t0 = time.perf_counter()
    with file_lock(lock, blocking=False) as fd:  # the OS released it with the dead holder
        assert isinstance(fd, int)
    assert time.perf_counter() - t0 < 5 and lock.exists()
