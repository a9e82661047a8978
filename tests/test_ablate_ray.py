"""The Ray executor on a local Ray instance (one test: importing and starting Ray is slow)."""
from __future__ import annotations

from pathlib import Path

import pytest

from fusionlab.ablate import read_results, run_grid

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.ray
def test_ray_executor_runs_a_grid_on_a_local_instance(tmp_path):
    out = run_grid(FIXTURES / "fake_grid.yaml", preset="ci", runs_dir=tmp_path, executor="ray", jobs=2,
                   notebook=FIXTURES / "fake_run.ipynb", progress=False)
    assert not ray.is_initialized()  # the instance it started is shut down again
    assert out.executed == 4 and out.n_ok == 4
    df = read_results(out.results_path)
    assert df["run_id"].is_unique and set(df["status"]) == {"ok"} and df["EN"].notna().all()
    status = (tmp_path / "fake_grid" / df["run_id"][0] / "params.json").read_text()
    assert '"preset": "ci"' in status
    again = run_grid(FIXTURES / "fake_grid.yaml", preset="ci", runs_dir=tmp_path, executor="ray", jobs=2,
                     notebook=FIXTURES / "fake_run.ipynb", progress=False)
    assert again.executed == 0 and not ray.is_initialized()  # nothing to do: Ray is not even started
