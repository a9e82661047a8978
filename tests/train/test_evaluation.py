"""Evaluation helpers: scores per fuser and degradation, teacher vs student features."""
from __future__ import annotations

import pytest
import torch

from fusionlab.data import make_pair
from fusionlab.data import degraded_items
from fusionlab.train.evaluation import compare_features, score_fusers


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=1, size=(48, 64))

def test_degraded_items_and_score_fusers(pair):
    from fusionlab.data import DEGRADATIONS
    from fusionlab.color import to_luma

    pairs = [pair, make_pair(seed=2, size=(48, 64))]
    items = degraded_items(pairs, seed=5)
    assert len(items) == 2 * len(DEGRADATIONS) and items[1]["label"] == DEGRADATIONS[1]
    again = degraded_items(pairs, seed=5)
    assert all(torch.equal(a["vi"], b["vi"]) and torch.equal(a["ir"], b["ir"]) for a, b in zip(items, again))
    low = next(i for i in items if i["label"] == "low_light")
    assert low["vi"].mean() < pair["vi"].mean() and low["ir"].shape == (1, 1, 48, 64)
    fusers = {"mean": lambda it: (it["ir"] + to_luma(it["vi"])) / 2,
              "max": lambda it: torch.maximum(it["ir"], to_luma(it["vi"]))}
    df = score_fusers(fusers, items, metrics=("EN", "Qabf"))
    assert len(df) == 2 * len(DEGRADATIONS) and list(df.columns) == ["fuser", "label", "EN", "Qabf"]
    assert df["Qabf"].between(0, 1).all()


def test_compare_features_levels():
    from fusionlab.losses.distill import FeatureAdapters
    from fusionlab.models import create_model

    torch.manual_seed(0)
    teacher, student = create_model("dtpf_teacher_tiny"), create_model("dtpf_student_tiny", dim=4)
    adapters = FeatureAdapters(teacher.feature_channels, student.feature_channels)
    ir, vi = torch.rand(1, 1, 32, 32), torch.rand(1, 3, 32, 32)
    levels = compare_features(teacher, student, ir, vi, torch.zeros(1, 512), adapters)
    assert len(levels) == len(teacher.feature_channels)
    for lv, ct, cs in zip(levels, teacher.feature_channels, student.feature_channels):
        assert lv["channels"] == (ct, cs) and lv["adapted"].shape == lv["student"].shape
        assert -1.0 <= lv["cosine"] <= 1.0
    assert "cosine" not in compare_features(teacher, student, ir, vi, None)[0]
