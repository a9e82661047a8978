"""Shared test fixtures.

* ``HF_HUB_OFFLINE=1`` always (hub look-ups hang here instead of failing).
* ``FUSIONLAB_PRESET`` defaults to ``ci``.
* ``shared_dir``: the reference data beside the repo (``FUSIONLAB_SHARED`` or ``../shared``);
  tests that need it skip with a clear reason when it is absent.
* ``ckpts`` (good, broken and foreign checkpoints), ``corpus`` (one bad-input dataset of
  ``support.FOLDER_CASES``, parametrised indirectly), ``huge_limit``: the reliability corpus.

Test files mirror the package: ``tests/<package>/`` for ``fusionlab/<package>/``, ``tests/test_<module>.py``
for a module; basenames are unique. Contract tests (``tests/*/test_*_contract.py``) iterate the
registries when they are collected, so a newly registered model, metric, loss or captioner is
tested without editing them (``tests/test_registry.py`` shows it with a scratch registration).
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("FUSIONLAB_PRESET", "ci")
# Idle OpenMP workers sleep rather than spin (2-core CI runners; see fusionlab.cli.main).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fusionlab import io as fio  # noqa: E402
from support import FOLDER_CASES, HUGE_LIMIT, TINY, make_dataset, rng  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
pytest_plugins = ("pytester",)  # tests/test_registry.py runs the contract tests on scratch registrations


def shared_root() -> Path:
    return Path(os.environ.get("FUSIONLAB_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if not (root / "data").is_dir():
        pytest.skip(f"shared reference data not found at {root} (set FUSIONLAB_SHARED)")
    return root


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process: returns (exit_code, stdout, stderr)."""
    from fusionlab.cli import main

    def _run(*argv: str):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse usage errors / --help
            code = e.code if isinstance(e.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def one_thread():
    """One torch thread: on a shared, busy CPU two OpenMP threads wait for each other and
    small ops get 10-50x slower; the results do not depend on it."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ---------------------------------------------------------------------------- the reliability corpus
@pytest.fixture
def huge_limit(monkeypatch):
    monkeypatch.setattr(fio, "MAX_PIXELS", HUGE_LIMIT)


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory):
    """A good tiny student checkpoint plus broken and foreign ones."""
    from fusionlab.models import create_model, save_checkpoint

    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    student = create_model(TINY)
    good = save_checkpoint(d / "student_tiny.pt", student, metadata={"note": "test"})
    out = {"good": good}
    data = good.read_bytes()
    (d / "truncated.pt").write_bytes(data[: len(data) // 2])
    out["truncated"] = d / "truncated.pt"
    (d / "garbage.pt").write_bytes(rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out["garbage"] = d / "garbage.pt"
    (d / "empty.pt").write_bytes(b"")
    out["empty"] = d / "empty.pt"
    torch.save(student.state_dict(), d / "state_dict.pt")  # plain state_dict: not our format
    out["state_dict"] = d / "state_dict.pt"
    # config says student_tiny, weights are from a wider network: does not fit
    obj = torch.load(good, weights_only=True)
    obj["state_dict"] = {k: v for k, v in create_model(TINY, dim=16).state_dict().items()}
    torch.save(obj, d / "wrong_weights.pt")
    out["wrong_weights"] = d / "wrong_weights.pt"
    out["missing"] = d / "no_such.pt"
    return out


@pytest.fixture
def corpus(tmp_path, request, monkeypatch):
    """Build the dataset of one FOLDER_CASES case: returns (root, culprit path, cls, what)."""
    name = request.param
    mutate, cls, what = FOLDER_CASES[name]
    root = make_dataset(tmp_path / name)
    culprit = root / mutate(root)
    if name == "huge_dimensions":
        monkeypatch.setattr(fio, "MAX_PIXELS", HUGE_LIMIT)
    return root, culprit, cls, what
