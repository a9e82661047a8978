"""The project around the package: environments, CI entry point, layout rules."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from support import REPO


def _dep_name(spec: str) -> str:
    import re

    return re.split(r"[<>=!~\[ ;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _load_pyproject() -> dict:
    # tomllib is 3.11+; on 3.10 the dev extra installs tomli (same API)
    toml = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    return toml.loads((REPO / "pyproject.toml").read_text())


def _spec(d: str) -> str:
    return re.sub(r"\s+", "", d.split(";")[0]).lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    import yaml

    project = _load_pyproject()["project"]
    extras = project["optional-dependencies"]
    wanted = {_dep_name(d): _spec(d) for d in project["dependencies"] + extras["notebooks"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    have = {}
    for dep in env["dependencies"]:
        for d in (dep["pip"] if isinstance(dep, dict) else [dep]):
            if not d.startswith(("-", "python=")) and d != "pip":
                have[_dep_name(d)] = _spec(d)
    lock = {_dep_name(l): _spec(l) for l in (REPO / "requirements-lock.txt").read_text().splitlines()
            if l.strip() and not l.startswith("#")}
    for name, spec in wanted.items():
        # same floors as pyproject.toml; torch pinned as in the lock file
        assert have.get(name) == (lock[name] if name == "torch" else spec), f"environment.yml: {name}"
    assert "ray" not in have and "pytest" not in have  # students do not install Ray / test tools


def test_extras_split_and_floors_file():
    """Core stays light (no Jupyter, Ray, CLIP or scipy); every floor in pyproject.toml is
    pinned in requirements-floors.txt (what `make floors` installs), and vice versa."""
    project = _load_pyproject()["project"]
    core = {_dep_name(d) for d in project["dependencies"]}
    assert not core & {"jupyterlab", "papermill", "nbval", "ray", "open-clip-torch", "torchvision", "scipy", "seaborn"}
    extras = project["optional-dependencies"]
    assert {"notebooks", "clip", "mllm", "ray", "tensorboard", "dev"} <= set(extras)
    assert not any(_dep_name(d) == "ray" for d in extras["dev"])  # Ray only where needed (make test adds it)
    floors = {}
    for line in (REPO / "requirements-floors.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            floors[_dep_name(name)] = version.strip()
    from packaging.version import Version

    declared = {}
    for d in project["dependencies"] + [d for e in extras.values() for d in e]:
        m = re.match(r"^([A-Za-z0-9_.-]+)\s*(>=|==)\s*([0-9][^,;\s]*)", d)
        if m and _dep_name(m.group(1)) not in ("fusionlab", "tomli"):
            declared.setdefault(_dep_name(m.group(1)), []).append(Version(m.group(3)))
    # the lowest declared floor of each package (transformers: core 4.40, mllm 4.56)
    assert {k: min(v) for k, v in declared.items()} == {k: Version(v) for k, v in floors.items()}


def test_ci_script_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test" in (REPO / "README.md").read_text()


# ---------------------------------------------------------------------------- one source of truth
def _imports(path: Path) -> set[str]:
    """fusionlab modules imported by a file (absolute and relative, lazy ones too)."""
    pkg = path.relative_to(REPO).with_suffix("").parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(pkg[: len(pkg) - node.level + 1])
            out |= {".".join(base + (node.module.split(".") if node.module else [a.name])) for a in node.names[:1]}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fusionlab"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("fusionlab")}
    return out


def _unit(module: str) -> str:
    """``fusionlab.viz.compare`` -> ``viz`` (the package or top-level module)."""
    return module.split(".")[1] if "." in module else module


def test_packages_import_each_other_without_cycles_and_viz_only_draws():
    edges: dict[str, set[str]] = {}
    for f in (REPO / "fusionlab").rglob("*.py"):
        src = _unit(".".join(f.relative_to(REPO).with_suffix("").parts))
        edges.setdefault(src, set()).update(u for u in map(_unit, _imports(f)) if u != src)
    packages = {p.name for p in (REPO / "fusionlab").iterdir() if (p / "__init__.py").is_file()}

    def reach(a: str, seen: set[str]) -> set[str]:
        for b in edges.get(a, ()):
            if b not in seen:
                seen.add(b)
                reach(b, seen)
        return seen

    cycles = sorted((a, b) for a in packages for b in packages if a < b and b in reach(a, set()) and a in reach(b, set()))
    assert not cycles, f"packages importing each other: {cycles}"
    assert "ablate" not in edges["viz"], "viz only draws: ablation tables and views live in ablate"


#: constants issue 13 found defined in several places: each must have ONE module-level definition
SINGLE_DEFINITIONS = ("PARAM_KEYS", "PATH_KEYS", "STAGES", "SOURCES", "TEXT_PRIORS", "PRESETS", "PRESET_SETTINGS",
                      "PROJECTOR_SCHEDULE", "METRIC_NAMES", "EXTRA_METRICS", "LOWER_IS_BETTER", "DEFAULT_METRICS",
                      "DEMO_METRICS", "HEADLINE", "VAL_METRICS", "DEFAULT_CHECKPOINT", "SHIPPED_STUDENT",
                      "LOSS_FUNCTIONS", "LOSS_NAMES", "DISTILL_LOSS_NAMES", "PACKAGE_CONFIGS", "SYNTHETIC")


def test_each_shared_constant_is_defined_once():
    defined: dict[str, list[str]] = {}
    for f in (REPO / "fusionlab").rglob("*.py"):
        for node in ast.parse(f.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.AnnAssign) else []
            for t in targets:
                if isinstance(t, ast.Name) and t.id in SINGLE_DEFINITIONS:
                    defined.setdefault(t.id, []).append(str(f.relative_to(REPO)))
    twice = {k: v for k, v in defined.items() if len(v) > 1}
    assert not twice, twice
    assert not (REPO / "configs").exists(), "the configs live in fusionlab/configs only"
