"""The command line skeleton: help, usage errors, ``python -m fusionlab``."""
from __future__ import annotations

import subprocess
import sys


def test_cli_help_and_usage_errors(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0 and "fuse" in out and "evaluate" in out
    code, _, err = run_cli("no-such-command")
    assert code == 2 and err.count("\n") == 1
    code, _, err = run_cli()
    assert code == 2


def test_console_script_runs_as_module():
    r = subprocess.run([sys.executable, "-m", "fusionlab", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "fusionlab" in r.stdout


def test_missing_extra_is_one_line_naming_the_extra(run_cli, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "papermill" else real(name, *a))
    code, _, err = run_cli("ablate", "text_guidance", "--preset", "ci", "--runs", "/nonexistent-runs")
    assert code == 2 and "pip install 'fusionlab[notebooks]'" in err and err.count("\n") == 1
