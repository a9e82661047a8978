"""The wheel works without the checkout: build it (sdist -> wheel, as `python -m build` does),
install it into a clean venv and run `fusionlab demo` and a `ci` ablation grid there.

The venv's own site-packages gets only the wheel. Its dependencies are reused from this
environment instead of downloaded (torch alone is 2+ GB): a .pth file points at a folder of
links to exactly the installed distributions that the wheel's declared requirements (core +
the `notebooks` extra the grid needs) pull in, transitively. pip then installs the wheel with
--no-index, so a requirement this environment cannot satisfy fails, and a module the code
imports without declaring it (Ray, open_clip, ...) is not importable there. Version floors
are checked separately (`make floors`, docs/install.md). Runs in `make test` (~1-2 min).
"""
from __future__ import annotations

import email.parser
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
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


def _closure(requirements: list[str], extras: tuple[str, ...] = ()) -> list[md.Distribution]:
    """The installed distributions ``requirements`` need, transitively (markers evaluated,
    requested extras followed)."""
    from packaging.requirements import Requirement

    seen: dict[tuple, md.Distribution] = {}
    todo = [(r, extras) for r in requirements]
    while todo:
        text, active = todo.pop()
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in active or ("",)):
            continue
        key = (req.name.lower().replace("_", "-"), frozenset(req.extras))
        if key in seen:
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            raise AssertionError(f"{req.name} (needed by the wheel) is not installed here; run make setup") from None
        seen[key] = dist
        todo += [(r, tuple(req.extras)) for r in dist.requires or []]
    return list({d.metadata["Name"]: d for d in seen.values()}.values())


def _overlay(dest: Path, dists: list[md.Distribution]) -> Path:
    """A folder of symlinks to the files of ``dists`` (packages, modules, dist-info), for a .pth file."""
    dest.mkdir()
    for dist in dists:
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
    with zipfile.ZipFile(wheel) as z:
        meta = email.parser.Parser().parsestr(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode())
        shipped_c = {n for n in z.namelist() if n.startswith("fusionlab/native/") and n.endswith((".c", ".h"))}
    # the native kernels' sources ship (without them fusionlab silently runs its slower torch code)
    sources = [p for p in (REPO / "fusionlab" / "native").iterdir() if p.suffix in (".c", ".h")]
    assert shipped_c == {f"fusionlab/native/{p.name}" for p in sources}, shipped_c
    deps = _closure(meta.get_all("Requires-Dist") or [], ("notebooks",))
    names = {d.metadata["Name"].lower() for d in deps}
    assert "torch" in names and "papermill" in names and not names & {"fusionlab", "ray", "open-clip-torch", "tensorboard"}
    (site / "_deps.pth").write_text(str(_overlay(tmp_path / "deps", deps)) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1", FUSIONLAB_PRESET="ci",
               FUSIONLAB_THREADS="1", JUPYTER_DATA_DIR=str(tmp_path / "jupyter"), MPLBACKEND="Agg")
    # pip of this environment installs into the venv (--python); the venv sees the linked deps as installed
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-index", "--disable-pip-version-check",
          f"{wheel}[notebooks]"], tmp_path, env)
    t_install = time.perf_counter() - t0 - t_build

    work = tmp_path / "work"  # no configs/, ablations/ or notebooks/ here: only what the wheel ships
    work.mkdir()
    where = _run([py, "-c", "import fusionlab; print(fusionlab.__file__)"], work, env)
    assert str(site) in where, where  # the installed wheel, not the checkout
    extra = _run([py, "-c", "import importlib.util as u; print([m for m in ('ray', 'open_clip', 'tensorboard') "
                             "if u.find_spec(m)])"], work, env)
    assert extra.strip() == "[]", extra  # not pulled in by core + notebooks

    t1 = time.perf_counter()
    out = _run([venv / "bin" / "fusionlab", "demo", "--out", "demo"], work, env)
    assert (work / "demo" / "overview.png").is_file(), out
    t_demo = time.perf_counter() - t1
    plan = _run([venv / "bin" / "fusionlab", "ablate", "text_guidance", "--dry-run"], work, env)
    assert "text_guidance [ci]: 10 runs" in plan  # a built-in grid (5 rows x 2 ci seeds), found inside the package

    grid = yaml.safe_load((REPO / "ablations" / "text_guidance.yaml").read_text())
    grid["rows"] = [dict(grid["rows"][0], reference=True)]  # the non-text teacher: one stage, no text model
    grid["seeds"] = [0]
    (work / "one_row.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    t1 = time.perf_counter()
    out = _run([venv / "bin" / "fusionlab", "ablate", "one_row.yaml", "--no-progress"], work, env)
    t_grid = time.perf_counter() - t1
    results = (work / "runs" / "text_guidance" / "results.csv").read_text()
    assert ",ok," in results and "failed" not in results, out
    assert grid["rows"][0]["label"] in out and "VIF paper" in out  # the paper-style table
    t_total = time.perf_counter() - t0
    print(f"wheel test: build {t_build:.0f} s, install {t_install:.0f} s, demo {t_demo:.0f} s, "
          f"one-run grid {t_grid:.0f} s, total {t_total:.0f} s "
          f"({wheel.name}, {sdist.name})")
