"""The main job (`fusionlab demo` / `make demo`): files, scores, the real pair when ../shared is present."""
from __future__ import annotations

import pandas as pd
import pytest

from fusionlab.demo import REAL_PAIR, run_demo
from fusionlab.metrics import SUMMARY_METRICS


def test_demo_writes_everything_and_scores_the_student(tmp_path, run_cli):
    out = tmp_path / "demo"
    code, _, err = run_cli("demo", "--out", out, "--n", "2", "--size", "64x80")
    assert code == 0, err
    for f in ("metrics.csv", "summary.csv", "overview.png", "README.txt"):
        assert (out / f).is_file(), f
    assert sorted(p.name for p in (out / "fused").iterdir()) == ["syn_00100.png", "syn_00101.png"]
    metrics = pd.read_csv(out / "metrics.csv")
    summary = pd.read_csv(out / "summary.csv", index_col=0)
    assert list(summary.index) == ["mean", "max", "student"] and list(summary.columns) == list(SUMMARY_METRICS)
    synthetic = metrics[~metrics["image"].str.startswith("real:")]
    assert summary.loc["student", "VIF"] == pytest.approx(synthetic[synthetic.method == "student"]["VIF"].mean(),
                                                          abs=1e-4)  # the summary never mixes in the real pair


def test_demo_adds_one_real_pair_when_shared_data_is_present(shared_dir, tmp_path):
    res = run_demo(tmp_path / "demo", n=1, size=(96, 128), progress=False)
    real = res["metrics"][res["metrics"]["image"] == f"real:msrs/{REAL_PAIR[1]}"].set_index("method")
    assert list(real.index) == ["mean", "max", "student"]
    # the real-data student keeps the night scene's infrared pedestrian: far above pixel mean
    assert real.loc["student", "VIF"] > real.loc["mean", "VIF"] + 0.1
    for folder in ("ir", "vi", "fused"):
        assert (tmp_path / "demo" / "real" / folder / f"{REAL_PAIR[1]}.png").is_file()
