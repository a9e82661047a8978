"""Run-size presets (fusionlab.presets): one table read by the configs, run_experiment, the
default projector and the notebooks."""
from __future__ import annotations

import re

import pytest

from fusionlab.errors import ConfigError
from fusionlab.presets import DEFAULT_PRESET, LAPTOP_STEPS, PRESET_SETTINGS, PRESETS, get_preset, pick, preset_settings
from support import REPO


def test_get_preset_and_pick(monkeypatch):
    monkeypatch.delenv("FUSIONLAB_PRESET", raising=False)
    assert get_preset() == DEFAULT_PRESET == "laptop" and preset_settings().name == "laptop"
    monkeypatch.setenv("FUSIONLAB_PRESET", " CI ")
    assert get_preset() == "ci" and pick(ci=1, laptop=2, full=3) == 1 and pick(1, 2, 3, preset="full") == 3
    monkeypatch.setenv("FUSIONLAB_PRESET", "gpu")
    with pytest.raises(ConfigError, match="FUSIONLAB_PRESET='gpu' is not one of ci, laptop, full"):
        get_preset()
    with pytest.raises(ConfigError, match="preset 'huge'"):
        preset_settings("huge")
    assert tuple(PRESET_SETTINGS) == PRESETS


def test_the_step_counts_agree_everywhere(tmp_path):
    """laptop = LAPTOP_STEPS steps, ci = 8: in the configs and in run_experiment; the notebooks' short
    training demonstrations (3 / 8 steps) come from the same table."""
    from fusionlab.train import experiment_config, load_config

    assert (PRESET_SETTINGS["laptop"].steps, PRESET_SETTINGS["ci"].steps) == (LAPTOP_STEPS, 8)
    for p in ("ci", "laptop"):
        s = PRESET_SETTINGS[p]
        assert load_config(f"teacher_{p}").steps == s.steps and load_config(f"distill_{p}").steps == s.distill_steps
        # synthetic data: laptop's default real folders need ../shared, the step counts do not
        syn = {"preset": p, "data": ["synthetic"], "eval_data": "synthetic"}
        assert experiment_config(syn, tmp_path).steps == s.steps
        assert experiment_config({**syn, "stage": "distill"}, tmp_path).steps == s.distill_steps
        assert experiment_config(syn, tmp_path).data.crop == load_config(f"teacher_{p}").data.crop
    assert [PRESET_SETTINGS[p].demo_steps for p in ("ci", "laptop", "full")] == [3, 8, 300]
    assert [PRESET_SETTINGS[p].demo_projector_steps for p in ("ci", "laptop", "full")] == [20, 80, 1000]
    for nb in ("03_teacher_and_text_priors", "04_distillation"):  # the notebooks read the table
        src = (REPO / "scripts" / "notebook_src" / f"{nb}.py").read_text()
        assert "preset_settings(preset).demo_steps" in src
        assert not re.search(r"steps\w* = \w+ or pick\(", src), "step counts come from fusionlab/presets.py"
