"""The embedded synthetic generator: deterministic, task-like scenes of any size."""
from __future__ import annotations

import pytest
import torch

from fusionlab import io as fio
from fusionlab.data import PairedFolder, SyntheticPairs, find_pairs, make_pair, write_synthetic_folder
from fusionlab.errors import ConfigError


def test_synthetic_is_deterministic_and_task_like():
    a, b = make_pair(3, (96, 128)), make_pair(3, (96, 128))
    assert torch.equal(a["ir"], b["ir"]) and torch.equal(a["vi"], b["vi"])
    assert a["ir"].shape == (1, 96, 128) and a["vi"].shape == (3, 96, 128)
    assert a["reference"].shape == (3, 96, 128)
    for k in ("ir", "vi", "reference"):
        assert a[k].min() >= 0 and a[k].max() <= 1 and a[k].dtype == torch.float32
    c = make_pair(4, (96, 128))
    assert not torch.equal(a["ir"], c["ir"])
    # warm targets: brighter than the background in IR, but hard to see in VI
    mask = a["target_mask"][None] > 0.5
    ring = (torch.nn.functional.max_pool2d(mask.float(), 9, 1, 4) > 0) & ~mask  # local surround
    m, ring = mask[0, 0], ring[0, 0]
    assert m.any()
    ir, y = a["ir"][0], fio.to_luma(a["vi"])[0]
    ir_contrast = ir[m].mean() - ir[ring].mean()
    vi_contrast = (y[m].mean() - y[ring].mean()).abs()
    assert ir_contrast > 0.3 and ir_contrast > 3 * vi_contrast
    # colour in VI, texture in VI richer than in IR
    assert (a["vi"][0] - a["vi"][2]).abs().mean() > 0.02
    gy = lambda t: (t[1:] - t[:-1]).abs().mean()  # noqa: E731
    assert gy(y) > 1.5 * gy(ir)


def test_synthetic_any_size_and_dataset(tmp_path):
    assert make_pair(0, 8)["ir"].shape == (1, 8, 8)
    assert make_pair(0, (37, 301))["vi"].shape == (3, 37, 301)
    with pytest.raises(ConfigError):
        make_pair(0, 4)
    ds = SyntheticPairs(n=3, size=32)
    assert len(ds) == 3 and ds[2]["name"] == "syn_00002"
    root = write_synthetic_folder(tmp_path / "syn", n=2, size=(40, 48))
    pairs = find_pairs(root / "ir", root / "vi")
    assert [p[0] for p in pairs] == ["syn_00000", "syn_00001"]
    item = PairedFolder(root)[0]
    assert item["ir"].shape == (1, 40, 48) and item["vi"].shape == (3, 40, 48)
    # PNG round trip keeps 8-bit precision
    assert (item["ir"] - make_pair(0, (40, 48))["ir"]).abs().max() <= 0.5 / 255 + 1e-6
