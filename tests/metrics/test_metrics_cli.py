"""`fusionlab evaluate` on files and folders: output formats, progress, one-line errors."""
from __future__ import annotations

import io
import json

import pandas as pd
import pytest
import torch

from fusionlab import io as fio
from fusionlab.data import write_synthetic_folder
from fusionlab.metrics import METRIC_NAMES, evaluate_files, evaluate_folders


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    # ir/, vi/ and reference/ (a colour fusion, used as the fused folder), 48x56
    return write_synthetic_folder(tmp_path_factory.mktemp("syn"), n=3, size=(48, 56))


def _args(root, fused="reference"):
    return ["evaluate", "--ir", root / "ir", "--vi", root / "vi", "--fused", root / fused]


def test_folder_csv_rows_mean_and_progress(folders, run_cli, tmp_path):
    out_file = tmp_path / "res" / "metrics.csv"
    code, out, err = run_cli(*_args(folders), "--out", out_file, "--batch-size", "2")
    assert code == 0, err
    df = pd.read_csv(io.StringIO(out), index_col="name")
    assert list(df.columns) == list(METRIC_NAMES)
    assert list(df.index) == ["syn_00000", "syn_00001", "syn_00002", "mean"]
    api = evaluate_folders(folders / "ir", folders / "vi", folders / "reference", progress=False)
    pd.testing.assert_frame_equal(df.drop(index="mean"), api, rtol=1e-8, check_names=False)
    pd.testing.assert_series_equal(df.loc["mean"], api.mean(), rtol=1e-8, check_names=False)
    one = evaluate_files(folders / "ir" / "syn_00001.png", folders / "vi" / "syn_00001.png",
                         folders / "reference" / "syn_00001.png")
    assert df.loc["syn_00001", "VIF"] == pytest.approx(one["VIF"], rel=1e-8)
    assert "evaluate" in err and "3/3" in err  # tqdm bar on stderr, not stdout
    assert out_file.read_text() == out


def test_folder_json_subset_and_quiet(folders, run_cli):
    code, out, err = run_cli(*_args(folders), "--format", "json", "--metrics", "en,Qabf,Nabf", "--no-progress")
    assert code == 0 and err == ""
    res = json.loads(out)
    assert res["convention"] == "cddfuse" and sorted(res["images"]) == ["syn_00000", "syn_00001", "syn_00002"]
    assert list(res["images"]["syn_00000"]) == ["EN", "Qabf", "Nabf"]
    assert res["mean"]["EN"] == pytest.approx(sum(r["EN"] for r in res["images"].values()) / 3)


def test_single_files_json_and_csv(folders, run_cli):
    args = ["evaluate", "--ir", folders / "ir" / "syn_00000.png", "--vi", folders / "vi" / "syn_00000.png",
            "--fused", folders / "vi" / "syn_00000.png"]
    code, out, err = run_cli(*args, "--convention", "matlab")
    assert code == 0, err
    res = json.loads(out)
    assert list(res) == list(METRIC_NAMES) and res["SCD"] is None  # F = VI: SCD undefined -> null
    code, out, _ = run_cli(*args, "--format", "csv", "--metrics", "SCD,EN")
    lines = out.strip().splitlines()
    assert lines[0] == "name,SCD,EN" and lines[1].startswith("syn_00000,,")  # NaN -> empty field


def test_missing_partner_and_size_mismatch_are_one_line_errors(tmp_path, run_cli):
    root = write_synthetic_folder(tmp_path / "d", n=3, size=(48, 56))
    (root / "reference" / "syn_00001.png").unlink()
    code, out, err = run_cli(*_args(root))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "syn_00001.png" in err and "no fused partner" in err
    fio.write_image(root / "reference" / "syn_00001.png", torch.rand(3, 48, 56))
    fio.write_image(root / "reference" / "extra.png", torch.rand(3, 48, 56))
    code, _, err = run_cli(*_args(root))
    assert code == 1 and "extra.png" in err and "no infrared/visible partner" in err
    (root / "reference" / "extra.png").unlink()
    fio.write_image(root / "reference" / "syn_00002.png", torch.rand(3, 40, 56))
    code, out, err = run_cli(*_args(root), "--no-progress")
    assert code == 1 and err.count("\n") == 1 and "syn_00002.png" in err and "56x40" in err
    code, _, err = run_cli("evaluate", "--ir", root / "ir", "--vi", root / "vi",
                           "--fused", root / "reference" / "syn_00000.png")
    assert code == 2 and "all files or all folders" in err
    code, _, err = run_cli(*_args(root), "--metrics", "EN,VIFF")
    assert code == 1 and "unknown metric 'VIFF'" in err
    code, _, err = run_cli("evaluate", "--ir", root / "nope.png", "--vi", root / "vi" / "syn_00000.png",
                           "--fused", root / "vi" / "syn_00000.png")
    assert code == 1 and "nope.png" in err and err.count("\n") == 1


def test_help(run_cli):
    code, out, _ = run_cli("evaluate", "--help")
    assert code == 0 and "--convention" in out and "mean" in out
