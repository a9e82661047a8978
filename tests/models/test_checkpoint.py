"""Checkpoints: round trip, errors, the shipped student and its untrained fallback."""
from __future__ import annotations

import os


import torch

from fusionlab.errors import CheckpointError, ConfigError
from fusionlab.models import create_model, load_checkpoint, read_checkpoint, save_checkpoint


import pytest

from fusionlab.models import load_student
from support import luma_pair


def test_load_student_falls_back_with_a_note(monkeypatch, tmp_path, capsys):
    import fusionlab.models.checkpoint

    monkeypatch.setattr(fusionlab.models.checkpoint, "SHIPPED_STUDENT", tmp_path / "student_synthetic.pt")
    model, note = load_student()
    assert "UNTRAINED" in note and "UNTRAINED" in capsys.readouterr().out
    assert not model.training
    from fusionlab.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not found"):
        load_student(tmp_path / "missing.pt")


def test_checkpoint_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    model = create_model("dtpf_student_tiny", fusion="multiscale_conv")
    path = save_checkpoint(tmp_path / "m.pt", model, metadata={"epochs": 2, "loss": 0.5},
                           extra={"optimizer": {"state": {}, "lr": torch.tensor(1e-4)}, "epoch": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # atomic: no temp file left
    loaded, info = load_checkpoint(path, expected="dtpf_student_tiny")
    assert info["model"] == "dtpf_student_tiny" and info["metadata"]["epochs"] == 2
    assert info["extra"]["epoch"] == 2 and loaded.config == model.config and not loaded.training
    ir, vi = luma_pair(1, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ir, vi), model.eval()(ir, vi))
    load_checkpoint(path, expected=model.config)
    with pytest.raises(CheckpointError, match="expected 'dtpf_teacher'"):
        load_checkpoint(path, expected="dtpf_teacher")
    with pytest.raises(CheckpointError, match="fusion='multiscale_conv' vs 'scfm'"):
        load_checkpoint(path, expected=create_model("dtpf_student_tiny"))
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a fusionlab model checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    obj = torch.load(path, weights_only=True)
    obj["state_dict"].pop("output.weight")
    torch.save(obj, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="1 missing"):
        load_checkpoint(tmp_path / "broken.pt")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"format": "fusionlab.model", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(tmp_path / "evil.pt")
