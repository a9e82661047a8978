"""One real run end to end: grid -> notebooks/run_experiment.ipynb -> fusionlab.train.run_experiment."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from fusionlab.ablate import read_results, run_grid

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_one_real_ci_run_through_the_run_notebook(tmp_path):
    grid = {"name": "e2e", "description": "one real ci run", "paper_table": "none",
            "base": {"stage": "teacher", "text_prior": "none", "eval_pairs": 1},
            "rows": [{"label": "non-text teacher", "params": {"fusion": "concat_conv1x1"},
                      "paper": {"EN": 6.726, "VIF": 0.977, "Qabf": 0.682}}],
            "seeds": [0]}
    path = tmp_path / "e2e.yaml"
    path.write_text(yaml.safe_dump(grid))
    # one thread per run: tiny ci models gain nothing from more, and lose a lot on a busy machine
    out = run_grid(path, preset="ci", runs_dir=tmp_path / "runs", cpus_per_run=1, progress=False)
    df = read_results(out.results_path)
    assert out.n_ok == 1, df["error"].tolist()
    run_dir = out.grid_dir / df["run_dir"][0]
    for name in ("metrics.json", "model.pt", "run.ipynb", "train_log.csv"):
        assert (run_dir / name).is_file(), name
    assert len(list((run_dir / "samples").glob("*.png"))) == 1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["params"]["fusion"] == "concat_conv1x1" and metrics["params"]["preset"] == "ci"
    for m in ("EN", "VIF", "Qabf"):
        assert math.isfinite(df[m][0]) and df[m][0] == pytest.approx(metrics["metrics"][m])
    assert df["paper_EN"][0] == 6.726
