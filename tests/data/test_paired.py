"""Paired folders: pairing by name, missing partners, size mismatches, aligned crops, real subsets."""
from __future__ import annotations

import pytest
import torch

from fusionlab import io as fio
from fusionlab.data import PairedFolder, find_pairs, resolve_layout, write_synthetic_folder
from fusionlab.errors import EmptyInputError, MissingPairError, ShapeMismatchError


def test_missing_partner_and_size_mismatch(tmp_path):
    root = write_synthetic_folder(tmp_path / "d", n=2, size=16, with_reference=False)
    (root / "vi" / "syn_00001.png").unlink()
    with pytest.raises(MissingPairError, match="syn_00001.png: no visible partner"):
        find_pairs(root / "ir", root / "vi")
    write_synthetic_folder(tmp_path / "d", n=2, size=16, with_reference=False)
    fio.write_image(root / "vi" / "syn_00001.png", torch.rand(3, 17, 16))
    ds = PairedFolder(root)
    with pytest.raises(ShapeMismatchError, match="syn_00001.png"):
        ds[1]
    (tmp_path / "empty" / "ir").mkdir(parents=True)
    (tmp_path / "empty" / "vi").mkdir()
    with pytest.raises(EmptyInputError, match="no image files"):
        PairedFolder(tmp_path / "empty")


def test_random_crops_are_aligned_and_reproducible(tmp_path):
    root = write_synthetic_folder(tmp_path / "d", n=1, size=(50, 70), with_reference=False)
    ds = PairedFolder(root, crop_size=32, flip=True, seed=1)
    a, b = ds[0], ds[0]
    assert a["ir"].shape == (1, 32, 32) and a["vi"].shape == (3, 32, 32)
    assert torch.equal(a["ir"], b["ir"])
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["ir"], a["ir"])
    small = PairedFolder(root, crop_size=64)[0]  # smaller than the crop: padded
    assert small["ir"].shape == (1, 64, 64)


@pytest.mark.parametrize("name,ext", [("msrs", ".png"), ("roadscene", ".jpg")])
def test_real_subsets_load(shared_dir, name, ext):
    ds = PairedFolder(shared_dir / "data" / name / "test")
    assert len(ds) == 20
    assert ds.pairs[0][1].suffix.lower() == ext
    item = ds[0]
    assert item["ir"].shape[0] == 1 and item["vi"].shape[0] == 3
    assert item["ir"].shape[-2:] == item["vi"].shape[-2:]


def test_medical_layout(shared_dir):
    ir_dir, vi_dir = resolve_layout(shared_dir / "data" / "harvard" / "PET-MRI")
    assert ir_dir.name == "mri" and vi_dir.name == "pet"
    item = PairedFolder(shared_dir / "data" / "harvard" / "PET-MRI")[0]
    assert item["vi"].shape == (3, 256, 256)
