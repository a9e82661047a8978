"""True subprocesses: exit codes, one-line errors vs --debug tracebacks, SIGINT/SIGKILL then resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from fusionlab import io as fio
from support import GOOD_GRID, make_dataset, run_fuse

# one torch thread (fixture in conftest.py): tiny models on tiny images, a busy 2-core machine
pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------- true subprocesses
def _cli(*args, debug: bool = False, **kw) -> list[str]:
    return [sys.executable, "-m", "fusionlab", *(["--debug"] if debug else []), *map(str, args)]


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "FUSIONLAB_PRESET": "ci", "OMP_NUM_THREADS": "1",
       "PYTHONWARNINGS": "ignore"}


def test_subprocess_exit_codes_one_line_and_debug_traceback(ckpts, tmp_path):
    """Real processes: exit code, stderr is exactly one line without traceback; --debug adds one."""
    root = make_dataset(tmp_path / "d", names=("a", "b"))
    good = make_dataset(tmp_path / "good", names=("a",))
    (root / "vi/b.png").unlink()
    grid = tmp_path / "g.yaml"
    grid.write_text(GOOD_GRID.replace("seeds: [0]", "seeds: [0]\ncolour: red"))
    cases = [
        (_cli("fuse", "--data", root, "--checkpoint", ckpts["good"], "--out", tmp_path / "o"), 1,
         str(root / "ir/b.png")),
        (_cli("fuse", "--data", good, "--checkpoint", ckpts["truncated"], "--out", tmp_path / "o"), 1,
         str(ckpts["truncated"])),
        (_cli("ablate", grid, "--dry-run"), 1, "colour: unknown key"),
        (_cli("evaluate", "--ir", root / "ir"), 2, "required"),
    ]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
             for c, _, _ in cases[:2]]  # two at a time: the machine has 2 cores
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    for c, _, _ in cases[2:]:
        p = subprocess.run(c, capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120)
        results.append((p.stdout, p.stderr, p.returncode))
    for (cmd, code, needle), (_out, err, rc) in zip(cases, results):
        assert rc == code, (cmd, err)
        assert err.count("\n") == 1 and err.endswith("\n"), f"{cmd}: stderr is not one line:\n{err}"
        assert "Traceback" not in err and needle in err and ": error: " in err
    # --debug: the same failure shows the traceback, then the same one-line message
    p = subprocess.run(_cli(*cases[1][0][3:], debug=True), capture_output=True, text=True, env=ENV, cwd=tmp_path,
                       timeout=120)
    assert p.returncode == 1 and "Traceback (most recent call last)" in p.stderr and "CheckpointError" in p.stderr
    assert p.stderr.rstrip("\n").splitlines()[-1] == results[1][1].rstrip("\n")


def _default_sigint():
    """In the child: Ctrl-C as in a terminal. A suite started in the background (``cmd &``,
    nohup) hands its children SIGINT ignored, and Python then installs no KeyboardInterrupt
    handler: the interrupted run would silently finish every pair."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(pred, proc, timeout=120.0):
    t0 = time.monotonic()
    while not pred():
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.01)
    return True


def test_fuse_killed_with_sigint_and_sigkill_resumes_to_the_same_result(run_cli, ckpts, tmp_path):
    """A folder run interrupted (SIGINT: exit 130, one line) then killed (SIGKILL) mid-run leaves only
    complete images; --skip-existing finishes the job and the result equals an uninterrupted run."""
    names = [f"p{i:02d}" for i in range(24)]
    root = make_dataset(tmp_path / "d", names=names, size=(32, 32))
    ref = tmp_path / "ref"
    assert run_fuse(run_cli, root, ckpts["good"], ref)[0] == 0
    out = tmp_path / "out"
    cmd = _cli("fuse", "--data", root, "--checkpoint", ckpts["good"], "--out", out, "--skip-existing")
    done = lambda: len(fio.list_images(out)) if out.is_dir() else 0  # noqa: E731

    # 1) Ctrl-C: exit code 130 and one line "interrupted" at the end of stderr
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                         preexec_fn=_default_sigint)
    started = _wait_for(lambda: done() >= 1, p)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    if started and p.returncode != 0:
        assert p.returncode == 130, err
        assert err.rstrip("\n").splitlines()[-1] == "fusionlab fuse: interrupted" and "Traceback" not in err
    n1 = done()
    # 2) SIGKILL: no chance to clean up
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _wait_for(lambda: done() >= n1 + 2, p)
    p.kill()
    p.wait(timeout=60)
    # every visible output is a complete image (partial writes live only in hidden temp files)
    for f in fio.list_images(out):
        assert fio.read_image(f).shape == (3, 32, 32)
    n2 = done()
    assert n2 < len(names), "the run finished before it was killed: nothing left to resume"
    before = {f.name: f.stat().st_mtime_ns for f in fio.list_images(out)}
    # 3) resume: only the missing pairs are fused, the result equals the uninterrupted run
    rc, stdout, err = run_fuse(run_cli, root, ckpts["good"], out, "--skip-existing")
    assert rc == 0, err
    assert f"fused {len(names) - n2} pair(s)" in stdout
    assert {f.name: f.stat().st_mtime_ns for f in fio.list_images(out) if f.name in before} == before
    assert [f.name for f in fio.list_images(out)] == [f.name for f in fio.list_images(ref)]
    for f in fio.list_images(ref):
        assert torch.equal(fio.read_image(f), fio.read_image(out / f.name)), f.name
