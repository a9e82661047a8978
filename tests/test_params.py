"""Run params (fusionlab.params.RunParams): one set of keys, defaults and checks for the grid
files, run_experiment and the run notebook."""
from __future__ import annotations

import ast
import json

import nbformat
import pytest

from fusionlab.ablate import parse_grid
from fusionlab.errors import ConfigError
from fusionlab.params import PARAM_KEYS, PATH_KEYS, STAGES, RunParams
from fusionlab.text import text_prior_sources
from support import REPO


def test_the_run_notebook_takes_every_run_param():
    """Its parameters cell (what papermill fills in) names exactly the run params and out_dir."""
    nb = nbformat.read(REPO / "notebooks" / "run_experiment.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = [t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets]
    assert names == [*PARAM_KEYS, "out_dir"]
    namespace = {"stage": "distill", "fusion": None, "seed": 3, "out_dir": "x", "unrelated": 1}
    assert RunParams.collect(namespace) == {"stage": "distill", "seed": 3}  # None = the default


def test_check_normalises_only_what_is_given_and_from_dict_fills_defaults(tmp_path, monkeypatch):
    assert RunParams.check({"losses": "ssim, int", "width": 16}) == {"losses": ["int", "ssim"], "width": 16}
    assert RunParams.check({"fusion": None}) == {"fusion": None}
    monkeypatch.setenv("FUSIONLAB_PRESET", "ci")
    p = RunParams.from_dict({"stage": "distill", "distill_losses": ["res", "base"]})
    assert (p.preset, p.seed, p.text_prior, p.data, p.eval_data) == ("ci", 0, "oracle", ("synthetic",), "synthetic")
    assert p.distill_losses == ("base", "res")
    assert json.loads(json.dumps(p.to_dict()))["data"] == ["synthetic"]
    assert set(PATH_KEYS) == {"data", "eval_data", "caption_file", "text_checkpoint"} and STAGES == ("teacher", "distill")


@pytest.mark.parametrize("params, needle", [
    ({"stag": "teacher"}, "stag: unknown key"),
    ({"stage": "student"}, "stage = 'student': expected one of teacher, distill"),
    ({"width": 15}, "width = 15: expected an even integer"),
    ({"seed": -1}, "seed = -1: expected an integer >= 0"),
    ({"losses": ["int", "edge"]}, "unknown name 'edge'"),
    ({"fusion": "sum"}, "fusion = 'sum': unknown fusion module"),
    ({"model": "resnet"}, "model = 'resnet': unknown model"),
    ({"text_prior": "gpt"}, "text_prior = 'gpt': expected one of"),
    ({"preset": "huge"}, "preset = 'huge'"),
    ({"eval_pairs": 0}, "eval_pairs = 0: expected a positive integer"),
])
def test_grid_and_run_experiment_reject_the_same_values_with_the_same_words(params, needle, tmp_path):
    with pytest.raises(ConfigError, match=needle) as e:
        RunParams.from_dict(params)
    assert str(e.value).startswith("params: ") and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=needle) as e:
        parse_grid({"name": "g", "rows": [{"label": "a", "params": params}]}, "g.yaml")
    assert str(e.value).startswith("g.yaml: rows[0].params.")


def test_files_must_exist_when_a_run_starts(tmp_path):
    with pytest.raises(ConfigError, match="data = .*nope.*is not 'synthetic' nor an existing folder"):
        RunParams.from_dict({"data": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="caption_file = .*is not an existing file"):
        RunParams.from_dict({"text_prior": "file", "caption_file": str(tmp_path / "c.json")})
    with pytest.raises(ConfigError, match="text_prior = 'file' needs caption_file"):
        RunParams.from_dict({"text_prior": "file"})


def test_every_text_prior_source_is_a_valid_param():
    assert "mllm" in text_prior_sources()
    for source in text_prior_sources():
        assert RunParams.check({"text_prior": source}) == {"text_prior": source}
