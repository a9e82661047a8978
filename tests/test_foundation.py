"""Foundation: registry, I/O, synthetic data, paired folders, degradations, CLI skeleton."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fusionlab import io as fio
from fusionlab.data import (DEGRADATIONS, PairedFolder, SyntheticPairs, degrade_batch, find_pairs, make_pair,
                            resolve_layout, write_synthetic_folder)
from fusionlab.errors import (ConfigError, EmptyInputError, ImageReadError, MissingPairError,
                              ShapeMismatchError)
from fusionlab.registry import Registry

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ registry
def test_registry_register_build_and_errors():
    reg = Registry("thing")

    @reg.register("double")
    def double(x=1):
        return 2 * x

    @reg.register()
    def triple(x=1):
        return 3 * x

    assert reg.names() == ["double", "triple"]
    assert reg.build({"type": "double", "x": 4}) == 8
    assert reg.build("triple", x=2) == 6
    assert "double" in reg and len(reg) == 2
    with pytest.raises(ConfigError, match="unknown thing 'nope'"):
        reg.get("nope")
    with pytest.raises(ConfigError, match="'type'"):
        reg.build({"x": 1})
    with pytest.raises(ValueError):
        reg.register("double", obj=lambda: 0)


# ------------------------------------------------------------------ synthetic data
def test_synthetic_is_deterministic_and_task_like():
    a, b = make_pair(3, (96, 128)), make_pair(3, (96, 128))
    assert torch.equal(a["ir"], b["ir"]) and torch.equal(a["vi"], b["vi"])
    assert a["ir"].shape == (1, 96, 128) and a["vi"].shape == (3, 96, 128)
    assert a["reference"].shape == (3, 96, 128)
    for k in ("ir", "vi", "reference"):
        assert a[k].min() >= 0 and a[k].max() <= 1 and a[k].dtype == torch.float32
    c = make_pair(4, (96, 128))
    assert not torch.equal(a["ir"], c["ir"])
    # warm targets: brighter than the background in IR, but hard to see in VI
    mask = a["target_mask"][None] > 0.5
    ring = (torch.nn.functional.max_pool2d(mask.float(), 9, 1, 4) > 0) & ~mask  # local surround
    m, ring = mask[0, 0], ring[0, 0]
    assert m.any()
    ir, y = a["ir"][0], fio.to_luma(a["vi"])[0]
    ir_contrast = ir[m].mean() - ir[ring].mean()
    vi_contrast = (y[m].mean() - y[ring].mean()).abs()
    assert ir_contrast > 0.3 and ir_contrast > 3 * vi_contrast
    # colour in VI, texture in VI richer than in IR
    assert (a["vi"][0] - a["vi"][2]).abs().mean() > 0.02
    gy = lambda t: (t[1:] - t[:-1]).abs().mean()  # noqa: E731
    assert gy(y) > 1.5 * gy(ir)


def test_synthetic_any_size_and_dataset(tmp_path):
    assert make_pair(0, 8)["ir"].shape == (1, 8, 8)
    assert make_pair(0, (37, 301))["vi"].shape == (3, 37, 301)
    with pytest.raises(ConfigError):
        make_pair(0, 4)
    ds = SyntheticPairs(n=3, size=32)
    assert len(ds) == 3 and ds[2]["name"] == "syn_00002"
    root = write_synthetic_folder(tmp_path / "syn", n=2, size=(40, 48))
    pairs = find_pairs(root / "ir", root / "vi")
    assert [p[0] for p in pairs] == ["syn_00000", "syn_00001"]
    item = PairedFolder(root)[0]
    assert item["ir"].shape == (1, 40, 48) and item["vi"].shape == (3, 40, 48)
    # PNG round trip keeps 8-bit precision
    assert (item["ir"] - make_pair(0, (40, 48))["ir"]).abs().max() <= 0.5 / 255 + 1e-6


# ------------------------------------------------------------------ I/O
def _save(path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


def test_read_modes_8bit_16bit_rgba_palette(tmp_path):
    g8 = _save(tmp_path / "g8.png", np.full((5, 7), 51, np.uint8))
    assert torch.allclose(fio.read_image(g8), torch.full((1, 5, 7), 0.2))
    g16 = tmp_path / "g16.png"
    Image.fromarray(np.full((5, 7), 13107, np.uint16)).save(g16)
    assert torch.allclose(fio.read_image(g16), torch.full((1, 5, 7), 0.2), atol=1e-6)
    rgba = _save(tmp_path / "rgba.png", np.dstack([np.full((4, 4), v, np.uint8) for v in (255, 0, 0, 128)]))
    t = fio.read_image(rgba)
    assert t.shape == (3, 4, 4) and float(t[0, 0, 0]) == 1.0
    pal = Image.fromarray(np.zeros((4, 4), np.uint8), mode="P")
    pal.putpalette([0, 255, 0] * 256)
    pal.save(tmp_path / "pal.png")
    t = fio.read_image(tmp_path / "pal.png")
    assert t.shape == (3, 4, 4) and float(t[1].min()) == 1.0
    assert fio.read_image(rgba, mode="gray").shape == (1, 4, 4)
    assert fio.read_image(g8, mode="rgb").shape == (3, 5, 7)


def test_read_errors_are_one_line_and_name_the_file(tmp_path):
    bad = tmp_path / "fake.png"
    bad.write_text("not an image")
    trunc = tmp_path / "trunc.png"
    _save(tmp_path / "ok.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    trunc.write_bytes((tmp_path / "ok.png").read_bytes()[:200])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for p in (bad, trunc, empty, tmp_path / "missing.png"):
        with pytest.raises(ImageReadError) as ei:
            fio.read_image(p)
        msg = str(ei.value)
        assert str(p) in msg and "\n" not in msg


def test_ycbcr_round_trip_and_luma():
    x = torch.rand(2, 3, 9, 11)
    assert torch.allclose(fio.ycbcr_to_rgb(fio.rgb_to_ycbcr(x)), x, atol=1e-5)
    y = fio.to_luma(x)
    assert torch.allclose(y[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2], atol=1e-5)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out" / "a.txt"
    fio.atomic_write_text(target, "first")
    with pytest.raises(RuntimeError):
        with fio.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]
    img = fio.write_image(tmp_path / "img.png", torch.rand(3, 6, 5))
    assert fio.read_image(img).shape == (3, 6, 5)


def test_atomic_outputs_get_the_mode_of_a_plain_open(tmp_path):
    # mkstemp creates 0600 files; results must be readable by others like any other output
    import os
    import stat

    old = os.umask(0o022)
    try:
        a = fio.atomic_write_text(tmp_path / "a.txt", "x") or tmp_path / "a.txt"
        img = fio.write_image(tmp_path / "b.png", torch.rand(1, 4, 4))
        os.umask(0o077)
        c = fio.atomic_write_text(tmp_path / "c.txt", "x") or tmp_path / "c.txt"
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(img).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(c).st_mode) == 0o600


# ------------------------------------------------------------------ paired folders
def test_missing_partner_and_size_mismatch(tmp_path):
    root = write_synthetic_folder(tmp_path / "d", n=2, size=16, with_reference=False)
    (root / "vi" / "syn_00001.png").unlink()
    with pytest.raises(MissingPairError, match="syn_00001.png: no visible partner"):
        find_pairs(root / "ir", root / "vi")
    write_synthetic_folder(tmp_path / "d", n=2, size=16, with_reference=False)
    fio.write_image(root / "vi" / "syn_00001.png", torch.rand(3, 17, 16))
    ds = PairedFolder(root)
    with pytest.raises(ShapeMismatchError, match="syn_00001.png"):
        ds[1]
    (tmp_path / "empty" / "ir").mkdir(parents=True)
    (tmp_path / "empty" / "vi").mkdir()
    with pytest.raises(EmptyInputError, match="no image files"):
        PairedFolder(tmp_path / "empty")


def test_random_crops_are_aligned_and_reproducible(tmp_path):
    root = write_synthetic_folder(tmp_path / "d", n=1, size=(50, 70), with_reference=False)
    ds = PairedFolder(root, crop_size=32, flip=True, seed=1)
    a, b = ds[0], ds[0]
    assert a["ir"].shape == (1, 32, 32) and a["vi"].shape == (3, 32, 32)
    assert torch.equal(a["ir"], b["ir"])
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["ir"], a["ir"])
    small = PairedFolder(root, crop_size=64)[0]  # smaller than the crop: padded
    assert small["ir"].shape == (1, 64, 64)


@pytest.mark.parametrize("name,ext", [("msrs", ".png"), ("roadscene", ".jpg")])
def test_real_subsets_load(shared_dir, name, ext):
    ds = PairedFolder(shared_dir / "data" / name / "test")
    assert len(ds) == 20
    assert ds.pairs[0][1].suffix.lower() == ext
    item = ds[0]
    assert item["ir"].shape[0] == 1 and item["vi"].shape[0] == 3
    assert item["ir"].shape[-2:] == item["vi"].shape[-2:]


def test_medical_layout(shared_dir):
    ir_dir, vi_dir = resolve_layout(shared_dir / "data" / "harvard" / "PET-MRI")
    assert ir_dir.name == "mri" and vi_dir.name == "pet"
    item = PairedFolder(shared_dir / "data" / "harvard" / "PET-MRI")[0]
    assert item["vi"].shape == (3, 256, 256)


# ------------------------------------------------------------------ degradations
def test_degradations_labels_and_effects():
    p = make_pair(1, 64)
    ir, vi = p["ir"][None].repeat(5, 1, 1, 1), p["vi"][None].repeat(5, 1, 1, 1)
    out = degrade_batch(ir, vi, labels=list(DEGRADATIONS), g=torch.Generator().manual_seed(0))
    d = dict(zip(out["labels"], range(5)))
    assert torch.equal(out["ir"][d["normal"]], ir[0]) and torch.equal(out["vi"][d["normal"]], vi[0])
    assert out["vi"][d["low_light"]].mean() < 0.5 * vi[0].mean()
    assert out["vi"][d["over_exposure"]].mean() > vi[0].mean() + 0.2
    assert out["ir"][d["ir_low_contrast"]].std() < 0.5 * ir[0].std()
    assert (out["ir"][d["ir_noise"]] - ir[0]).std() > 0.03
    assert torch.equal(out["ir_clean"], ir)
    for k in ("ir", "vi"):
        assert out[k].min() >= 0 and out[k].max() <= 1
    rnd = degrade_batch(ir, vi, g=torch.Generator().manual_seed(3))
    assert all(lab in DEGRADATIONS for lab in rnd["labels"])
    with pytest.raises(ConfigError):
        degrade_batch(ir, vi, labels=["fog"] * 5)


# ------------------------------------------------------------------ CLI skeleton
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


# ------------------------------------------------------------------ packaging
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


def test_missing_extra_is_one_line_naming_the_extra(run_cli, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "papermill" else real(name, *a))
    code, _, err = run_cli("ablate", "text_guidance", "--preset", "ci", "--runs", "/nonexistent-runs")
    assert code == 2 and "pip install 'fusionlab[notebooks]'" in err and err.count("\n") == 1
