"""Degradations: the labels and what each one does to a pair."""
from __future__ import annotations

import pytest
import torch

from fusionlab.data import DEGRADATIONS, degrade_batch, make_pair
from fusionlab.errors import ConfigError


def test_degradations_labels_and_effects():
    p = make_pair(1, 64)
    ir, vi = p["ir"][None].repeat(5, 1, 1, 1), p["vi"][None].repeat(5, 1, 1, 1)
    out = degrade_batch(ir, vi, labels=list(DEGRADATIONS), g=torch.Generator().manual_seed(0))
    d = dict(zip(out["labels"], range(5)))
    assert torch.equal(out["ir"][d["normal"]], ir[0]) and torch.equal(out["vi"][d["normal"]], vi[0])
    assert out["vi"][d["low_light"]].mean() < 0.5 * vi[0].mean()
    assert out["vi"][d["over_exposure"]].mean() > vi[0].mean() + 0.2
    assert out["ir"][d["ir_low_contrast"]].std() < 0.5 * ir[0].std()
    assert (out["ir"][d["ir_noise"]] - ir[0]).std() > 0.03
    assert torch.equal(out["ir_clean"], ir)
    for k in ("ir", "vi"):
        assert out[k].min() >= 0 and out[k].max() <= 1
    rnd = degrade_batch(ir, vi, g=torch.Generator().manual_seed(3))
    assert all(lab in DEGRADATIONS for lab in rnd["labels"])
    with pytest.raises(ConfigError):
        degrade_batch(ir, vi, labels=["fog"] * 5)
