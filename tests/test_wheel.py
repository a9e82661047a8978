"""The wheel works without the checkout: build it (sdist -> wheel, as `python -m build` does),
install it into a clean venv and run `fusionlab demo` and a `ci` ablation grid there.

The venv gets nothing from this environment but torch (and torch's own dependencies),
reused through a .pth file instead of a 2+ GB download; everything else comes from the
wheel's declared dependencies (core + the notebooks extra the grid runs need), installed by
pip from the package index (its cache makes reruns quick). So a dependency missing from
pyproject.toml, or a config / grid / notebook missing from the wheel, fails here.
Runs in `make test` (about 1-2 minutes, most of it the first pip install and the grid run).
"""
from __future__ import annotations

import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.wheel, pytest.mark.slow]


def _source_files() -> list[str]:
    """The files a release is built from: tracked (and new, not ignored) files of the checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell the release files from local ones")
    return [f for f in out.splitlines() if (REPO / f).is_file()]


def _torch_closure() -> list[md.Distribution]:
    """torch and the distributions it requires (recursively), as installed here."""
    seen: dict[str, md.Distribution] = {}
    todo = ["torch"]
    while todo:
        name = re.split(r"[<>=!~;\[ (]", todo.pop(), maxsplit=1)[0].strip().lower().replace("_", "-")
        if not name or name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # optional / platform-specific requirement that is not installed
        seen[name] = dist
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            marker = req.split(";", 1)[1] if ";" in req else None
            if marker is not None:
                from packaging.markers import Marker

                if not Marker(marker).evaluate():
                    continue
            todo.append(req.split(";")[0])
    return list(seen.values())


def _overlay(dest: Path) -> Path:
    """A folder of symlinks to torch's closure (packages + dist-info), for a .pth file."""
    dest.mkdir()
    for dist in _torch_closure():
        root = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            src = root / top
            if src.exists() and not (dest / top).exists():
                (dest / top).symlink_to(src)
    return dest


def _run(cmd, cwd, env, timeout=600) -> str:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_wheel_runs_demo_and_a_ci_grid_from_a_clean_venv(tmp_path):
    pytest.importorskip("build", reason="the dev extra (python -m build) is not installed")
    t0 = time.perf_counter()
    src = tmp_path / "src"
    for f in _source_files():
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, src / f)
    dist = tmp_path / "dist"
    # sdist first, then the wheel from the sdist: both must carry the package data
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, src], tmp_path, dict(os.environ))
    wheel = next(dist.glob("fusionlab-*.whl"))
    sdist = next(dist.glob("fusionlab-*.tar.gz"))
    t_build = time.perf_counter() - t0

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, dict(os.environ))
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path,
                     dict(os.environ)).strip())
    (site / "_torch_only.pth").write_text(str(_overlay(tmp_path / "torch_only")) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1", FUSIONLAB_PRESET="ci",
               FUSIONLAB_THREADS="1", JUPYTER_DATA_DIR=str(tmp_path / "jupyter"), MPLBACKEND="Agg")
    # pip of this environment installs into the venv (--python); the venv sees torch as installed
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--disable-pip-version-check",
          f"{wheel}[notebooks]"], tmp_path, env, timeout=900)
    t_install = time.perf_counter() - t0 - t_build

    work = tmp_path / "work"  # no configs/, ablations/ or notebooks/ here: only what the wheel ships
    work.mkdir()
    where = _run([py, "-c", "import fusionlab; print(fusionlab.__file__)"], work, env)
    assert str(site) in where, where  # the installed wheel, not the checkout
    missing = _run([py, "-c", "import importlib.util as u; print([m for m in ('scipy', 'ray', 'open_clip') "
                               "if u.find_spec(m)])"], work, env)
    assert missing.strip() == "[]", missing  # not pulled in by core + notebooks

    out = _run([venv / "bin" / "fusionlab", "demo", "--out", "demo"], work, env)
    assert (work / "demo" / "overview.png").is_file(), out
    plan = _run([venv / "bin" / "fusionlab", "ablate", "text_guidance", "--dry-run"], work, env)
    assert "text_guidance [ci]: 6 runs" in plan  # a built-in grid, found inside the package

    grid = yaml.safe_load((REPO / "ablations" / "text_guidance.yaml").read_text())
    grid["rows"] = [dict(grid["rows"][0], reference=True)]  # the non-text teacher: one stage, no text model
    grid["seeds"] = [0]
    (work / "one_row.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    out = _run([venv / "bin" / "fusionlab", "ablate", "one_row.yaml", "--no-progress"], work, env)
    results = (work / "runs" / "text_guidance" / "results.csv").read_text()
    assert ",ok," in results and "failed" not in results, out
    assert "Non-text teacher" in out  # the paper-style table
    t_total = time.perf_counter() - t0
    print(f"wheel test: build {t_build:.0f} s, install {t_install:.0f} s, total {t_total:.0f} s "
          f"({wheel.name}, {sdist.name})")
