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
