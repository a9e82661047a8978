"""Training configs: every bad YAML fails with one line naming the file and the key; usage errors."""
from __future__ import annotations

import os

import pytest

from fusionlab import errors as E
from support import assert_error

# one torch thread (fixture in conftest.py): tiny models on tiny images, a busy 2-core machine
pytestmark = pytest.mark.usefixtures("one_thread")


TRAIN_CASES = {
    # name: (YAML text appended to/replacing teacher_ci, regex)
    "unknown_key": ("stepz: 3\n", r"unknown key 'stepz'"),
    "unknown_data_key": ("data: {crop_size: 32}\n", r"data: unknown key 'crop_size'"),
    "zero_steps": ("steps: 0\n", r"steps=0 must be >= 1"),
    "wrong_type": ("lr: fast\n", r"lr='fast' has the wrong type"),
    "bad_stage": ("stage: pretrain\n", r"stage='pretrain' must be one of"),
    "bad_yaml": ("data: [unclosed\n", r"invalid YAML at line \d+"),
    "python_tag": ("steps: !!python/object/apply:os.system ['touch {marker}']\n",
                   r"invalid YAML at line \d+ \(could not determine a constructor"),
    "binary": (None, r"not a text \(YAML\) file"),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_bad_train_configs(run_cli, tmp_path, case):
    from fusionlab.train.config import PACKAGE_CONFIGS, load_config

    marker = tmp_path / "pwned"
    text, what = TRAIN_CASES[case]
    cfg = tmp_path / f"{case}.yaml"
    if text is None:
        cfg.write_bytes(b"\xff\xfe\x00\x81binary\x00junk")
    else:
        base = (PACKAGE_CONFIGS / "teacher_ci.yaml").read_text()
        load_config(PACKAGE_CONFIGS / "teacher_ci.yaml")  # positive control: the base is valid
        cfg.write_text(base + text.replace("{marker}", str(marker)))
    res = run_cli("train", "--config", cfg, "--out", tmp_path / "run")
    assert_error(res, 1, "train", cfg, what=what)
    with pytest.raises(E.ConfigError, match=what):
        load_config(cfg)
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_train_and_distill_usage_errors(run_cli, tmp_path):
    assert_error(run_cli("train", "--config", tmp_path / "nope.yaml"), 1, "train", tmp_path / "nope.yaml",
                 what="config file not found")
    assert_error(run_cli("train", "--config", "teacher_ci", "--set", "steps"), 1, "train", "--set 'steps'",
                 what="expected KEY=VALUE")
    assert_error(run_cli("distill", "--config", "distill_ci", "--out", tmp_path / "r"), 2, "distill",
                 what="no teacher")
    assert_error(run_cli("train", "--config", "distill_ci", "--out", tmp_path / "r"), 2, "train",
                 what="is a distill config")
