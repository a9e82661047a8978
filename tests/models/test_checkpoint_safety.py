"""Checkpoints that are broken, foreign or malicious: one clear line, and nothing from a file
can execute code (safe loaders only)."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import torch

from fusionlab import errors as E
from support import REPO, TINY, assert_error, make_dataset, run_fuse

# one torch thread (fixture in conftest.py): tiny models on tiny images, a busy 2-core machine
pytestmark = pytest.mark.usefixtures("one_thread")


CKPT_CASES = {
    "truncated": r"not a readable torch checkpoint",
    "garbage": r"not a readable torch checkpoint|refused by the safe loader",
    "empty": r"not a readable torch checkpoint",
    "state_dict": r"not a fusionlab model checkpoint",
    "wrong_weights": r"weights do not fit",
    "missing": r"checkpoint file not found",
}


@pytest.mark.parametrize("case", sorted(CKPT_CASES))
def test_bad_checkpoints(run_cli, ckpts, tmp_path, case):
    from fusionlab.models import load_checkpoint

    root = make_dataset(tmp_path / "d", names=("a",))
    bad = ckpts[case]
    assert_error(run_fuse(run_cli, root, bad, tmp_path / "o"), 1, "fuse", bad, what=CKPT_CASES[case])
    assert not (tmp_path / "o").exists()  # refused before anything was written
    with pytest.raises(E.CheckpointError, match=CKPT_CASES[case]):
        load_checkpoint(bad)


def test_checkpoint_of_another_architecture(run_cli, ckpts, tmp_path):
    from fusionlab.models import create_model, load_checkpoint

    root = make_dataset(tmp_path / "d", names=("a",))
    res = run_fuse(run_cli, root, ckpts["good"], tmp_path / "o", "--model", "dtpf_teacher_tiny")
    assert_error(res, 1, "fuse", ckpts["good"], what="holds a 'dtpf_student_tiny' model, expected 'dtpf_teacher_tiny'")
    with pytest.raises(E.CheckpointError, match="expected 'dtpf_student'"):
        load_checkpoint(ckpts["good"], expected="dtpf_student")
    with pytest.raises(E.CheckpointError, match="architecture differs .*dim=8 vs 16"):
        load_checkpoint(ckpts["good"], expected=create_model(TINY, dim=16))


def test_distill_with_a_corrupt_teacher(run_cli, ckpts, tmp_path):
    res = run_cli("distill", "--config", "distill_ci", "--teacher", ckpts["truncated"], "--out", tmp_path / "run")
    assert_error(res, 1, "distill", ckpts["truncated"], what="not a readable torch checkpoint")


def test_train_resume_from_a_corrupt_checkpoint(run_cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a zip file")
    res = run_cli("train", "--config", "teacher_ci", "--out", run, "--resume")
    assert_error(res, 1, "train", run / "checkpoint.pt", what="not a readable torch checkpoint")


class _Evil:
    """Unpickling this runs code: what a malicious "checkpoint" does with plain torch.load."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_checkpoint_is_refused_not_executed(run_cli, tmp_path):
    from fusionlab.models import load_checkpoint
    from fusionlab.text.projector import load_projector

    # the payload is live: an unsafe loader would run it
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Evil(probe)))
    assert probe.exists()

    marker = tmp_path / "pwned"
    zipped = tmp_path / "evil.pt"
    torch.save({"format": "fusionlab.model", "model": _Evil(marker)}, zipped)  # torch's zip format
    legacy = tmp_path / "evil_legacy.pt"
    legacy.write_bytes(pickle.dumps(_Evil(marker)))  # a bare pickle
    root = make_dataset(tmp_path / "d", names=("a",))
    for bad in (zipped, legacy):
        line = assert_error(run_fuse(run_cli, root, bad, tmp_path / "o"), 1, "fuse", bad,
                            what="refused by the safe loader .*never code")
        assert "weights_only=False" not in line and "\x1b" not in line  # no "just load it unsafely" advice
        assert "references exec" in line or "opcode" in line
        with pytest.raises(E.CheckpointError):
            load_checkpoint(bad)
        with pytest.raises(E.CheckpointError, match="refused by the safe loader"):
            load_projector(bad)
    assert not marker.exists(), "checkpoint loading executed code from the file"


def test_library_never_uses_unsafe_loaders():
    """Static guard: every torch.load passes weights_only=True; YAML only via safe_load."""
    bad = []
    for p in (REPO / "fusionlab").rglob("*.py"):
        src = p.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", src):
            if "weights_only=True" not in m.group(1):
                bad.append(f"{p.name}: torch.load({m.group(1)})")
        for pat in (r"yaml\.load\(", r"yaml\.unsafe_load", r"yaml\.full_load", r"pickle\.loads?\(",
                    r"allow_pickle=True", r"(?<![\w.])eval\("):
            if re.search(pat, src):
                bad.append(f"{p.name}: {pat}")
    assert not bad, bad
