"""Notebook helpers (fusionlab.viz.walkthrough): which data a notebook uses, its pairs, run folders."""
from __future__ import annotations

from pathlib import Path

import pytest

from fusionlab.data import write_synthetic_folder
from fusionlab.errors import ConfigError, EmptyInputError
from fusionlab.viz import walkthrough as W


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


def test_run_dir_is_temporary_in_ci():
    d = W.run_dir("x", "ci")
    assert d.is_dir() and "fusionlab_x_" in d.name
    d.rmdir()
    assert W.run_dir("x", "laptop") == Path("runs") / "walkthrough" / "x"
