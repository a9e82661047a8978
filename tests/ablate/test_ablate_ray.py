"""The Ray executor on a local Ray instance (one test: importing and starting Ray is slow)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fusionlab.ablate import read_results, run_grid

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.ray
def test_ray_executor_runs_a_grid_on_a_local_instance(tmp_path):
    grid = yaml.safe_load((FIXTURES / "fake_grid.yaml").read_text())
    grid["seeds"] = [0]
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    kw = dict(preset="ci", runs_dir=tmp_path / "runs", executor="ray", jobs=2, notebook=FIXTURES / "fake_run.ipynb",
              progress=False)
    out = run_grid(path, **kw)
    assert not ray.is_initialized()  # the local instance it started is shut down again
    assert out.executed == 2 and out.n_ok == 2
    df = read_results(out.results_path)
    assert df["run_id"].is_unique and set(df["status"]) == {"ok"} and df["EN"].notna().all()
    params = (out.grid_dir / df["run_id"][0] / "params.json").read_text()
    assert '"preset": "ci"' in params
    again = run_grid(path, **kw)
    assert again.executed == 0 and not ray.is_initialized()  # nothing to do: Ray is not even started
