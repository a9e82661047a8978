"""Shared test fixtures.

* ``HF_HUB_OFFLINE=1`` always (hub look-ups hang here instead of failing).
* ``FUSIONLAB_PRESET`` defaults to ``ci``.
* ``shared_dir``: the reference data beside the repo (``FUSIONLAB_SHARED`` or ``../shared``);
  tests that need it skip with a clear reason when it is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("FUSIONLAB_PRESET", "ci")
# Idle OpenMP workers sleep rather than spin (2-core CI runners; see fusionlab.cli.main).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]


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
