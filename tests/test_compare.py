"""``fusionlab compare`` end to end on a tiny synthetic dataset (no shared data needed):
tables, picture, resumability, one-line errors."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from fusionlab.compare import best_per_column, format_markdown


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from fusionlab.data import write_synthetic_folder

    return write_synthetic_folder(tmp_path_factory.mktemp("tiny") / "data", n=2, size=(48, 64), with_reference=False)


@pytest.mark.slow
def test_compare_end_to_end_and_resume(tiny, tmp_path, run_cli, one_thread):
    out = tmp_path / "cmp"
    argv = ["compare", "--data", tiny, "--methods", "student,pixel_max,laplacian", "--out", out,
            "--repeats", "1", "--crops", "2", "--crop-size", "32", "--no-progress"]
    code, stdout, err = run_cli(*argv)
    assert code == 0, err
    d = out / "data"
    for f in ("table.csv", "table.md", "table.html", "grid.png"):
        assert (d / f).stat().st_size > 0
    assert (out / "README.md").is_file()
    table = pd.read_csv(d / "table.csv", comment="#", index_col="method")
    assert list(table.index) == ["student", "pixel_max", "laplacian"]
    assert {"EN", "Qabf", "MSE", "Nabf", "params (M)", "GFLOPs", "CPU latency (ms)"} <= set(table.columns)
    assert table.loc["pixel_max", "params (M)"] == 0 and table.loc["student", "params (M)"] > 0
    html = (d / "table.html").read_text()
    assert html.count('class="best"') == 13  # one per metric (12 standard + Nabf)
    assert "convention 'cddfuse'" in (d / "table.md").read_text() and "cddfuse" in stdout
    for m in ("student", "pixel_max", "laplacian"):
        assert len(list((d / "fused" / m).glob("*.png"))) == 2
    assert "3 pair(s) fused" not in err and "laplacian: 2 pair(s) fused, 0 reused" in err

    # rerun: every fusion and metric is reused, files untouched
    stamp = {p: p.stat().st_mtime_ns for p in (d / "fused").rglob("*.png")}
    code, _, err = run_cli(*argv)
    assert code == 0 and "laplacian: 0 pair(s) fused, 2 reused" in err
    assert {p: p.stat().st_mtime_ns for p in (d / "fused").rglob("*.png")} == stamp

    # a method whose fingerprint changed (e.g. another student checkpoint) is fused again
    manifest = d / "fused" / "student" / "METHOD.json"
    meta = json.loads(manifest.read_text())
    meta["fingerprint"]["checkpoint_sha256"] = "0" * 64
    manifest.write_text(json.dumps(meta))
    code, _, err = run_cli(*argv)
    assert code == 0 and "student: 2 pair(s) fused, 0 reused" in err


@pytest.mark.parametrize("argv, needle", [
    (["--methods", "pixel_mean,nope"], "unknown method 'nope'"),
    (["--methods", "pixel_mean,pixel_mean"], "listed twice"),
    (["--methods", "dtpf_student"], "untrained FusionNet"),
    (["--metrics", "EN,XYZ"], "unknown metric"),
    (["--student", "missing.pt"], "student checkpoint not found"),
])
def test_compare_one_line_errors(tiny, tmp_path, run_cli, argv, needle):
    code, _, err = run_cli("compare", "--data", tiny, "--out", tmp_path / "o", *(
        argv if "--methods" in argv else ["--methods", "student,pixel_mean", *argv]))
    assert code == 1 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()  # checked before any work


def test_compare_bad_data_folder(tmp_path, run_cli):
    code, _, err = run_cli("compare", "--data", tmp_path / "none", "--methods", "pixel_mean", "--out", tmp_path / "o")
    assert code == 1 and "dataset folder not found" in err and len(err.strip().splitlines()) == 1


def test_best_marking_respects_lower_is_better():
    t = pd.DataFrame({"EN": [6.0, 7.0], "MSE": [100.0, 50.0], "Nabf": [0.2, 0.1], "SCD": [float("nan")] * 2},
                     index=pd.Index(["a", "b"], name="method"))
    assert best_per_column(t, ["EN", "MSE", "Nabf", "SCD"]) == {"EN": "b", "MSE": "b", "Nabf": "b", "SCD": None}
    t.loc["a", "MSE"] = 10.0
    md = format_markdown(t, ["EN", "MSE", "Nabf", "SCD"])
    assert "| a | 6.0000 | **10.0000** | 0.2000 | n/a |" in md and "MSE ↓" in md and "EN ↑" in md
