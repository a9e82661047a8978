"""Ablation workbench: grid files, run ids, papermill runs, failures, resume after SIGKILL, CLI.

The runs execute tests/fixtures/fake_run.ipynb (same parameters as the real run notebook,
fake metrics in a fraction of a second), so the grid machinery is tested without training.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fusionlab.ablate import expand, load_grid, parse_grid, read_results, run_grid, run_id
from fusionlab.ablate.grid import resolve_path
from fusionlab.ablate.report import deltas, paper_table, summarize
from fusionlab.ablate.runner import run_state
from fusionlab.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
FAKE_NB = FIXTURES / "fake_run.ipynb"
FAKE_GRID = FIXTURES / "fake_grid.yaml"
ABLATIONS = sorted((REPO / "ablations").glob("*.yaml"))


def _grid_file(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(FAKE_GRID.read_text())
    data.update(changes)
    p = tmp_path / "grid.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


# ------------------------------------------------------------------ grid files
def test_fixture_grid_expands_with_stable_ids():
    grid = load_grid(FAKE_GRID)
    runs = expand(grid, "ci")
    assert [(r.label, r.seed) for r in runs] == [("variant A", 0), ("variant B", 0), ("variant A", 1),
                                                 ("variant B", 1)]  # seeds outer: every variant early
    assert len({r.run_id for r in runs}) == 4 and all(len(r.run_id) == 12 for r in runs)
    assert runs[0].params == {"stage": "teacher", "text_prior": "oracle", "fusion": "concat_conv1x1",
                              "preset": "ci", "eval_pairs": 2, "seed": 0}
    assert [r.run_id for r in expand(load_grid(FAKE_GRID), "ci")] == [r.run_id for r in runs]  # stable
    full = expand(grid, "full")  # preset overrides params and seeds, and changes the ids
    assert len(full) == 6 and full[0].params["eval_pairs"] == 361
    assert not {r.run_id for r in full} & {r.run_id for r in runs}
    # the id is a hash of the params: key order and None values do not matter
    assert run_id({"a": 1, "b": [1, 2]}) == run_id({"b": [1, 2], "a": 1, "c": None})
    assert run_id({"a": 1}) != run_id({"a": 2})


def test_loss_sets_are_order_free_and_axes_cross_rows(tmp_path):
    grid = parse_grid({"name": "t", "rows": [{"label": "x", "params": {"losses": ["ssim", "int"]}},
                                             {"label": "y", "params": {"losses": ["int"]}}],
                       "axes": {"width": [8, 16]}, "seeds": [3]}, "t.yaml")
    runs = expand(grid, "ci")
    assert [r.label for r in runs] == ["x | width=8", "x | width=16", "y | width=8", "y | width=16"]
    assert runs[0].params["losses"] == ["int", "ssim"]
    same = parse_grid({"name": "t", "rows": [{"label": "x", "params": {"losses": ["int", "ssim"]}}]}, "t.yaml")
    assert run_id({**expand(same, "ci")[0].params, "width": 8, "seed": 3}) == runs[0].run_id


@pytest.mark.parametrize("change, needle", [
    ({"colour": 1}, "colour: unknown key"),
    ({"name": "../escape"}, "name = '../escape'"),
    ({"base": {"stage": "teacher", "lr": 1}}, "base.lr: unknown key"),
    ({"base": {"stage": "student"}}, "base.stage = 'student'"),
    ({"base": {"text_prior": "mllm_magic"}}, "base.text_prior = 'mllm_magic'"),
    ({"base": {"width": -3}}, "base.width = -3"),
    ({"base": {"width": 15}}, "base.width = 15: expected an even integer"),
    ({"base": {"losses": ["int", "perceptual"]}}, "unknown name 'perceptual'"),
    ({"base": {"fusion": "sum"}}, "base.fusion = 'sum': unknown fusion module"),
    ({"base": {"caption_file": "../../etc/passwd"}}, "may not leave the grid file's folder"),
    ({"base": {"seed": 1}}, "base.seed"),
    ({"seeds": [0, 0]}, "a seed is listed twice"),
    ({"seeds": "0"}, "seeds = '0'"),
    ({"presets": {"huge": {}}}, "presets.huge: unknown preset"),
    ({"rows": [{"label": "a", "params": {"fusion": "scfm"}}, {"label": "a", "params": {}}]}, "same label"),
    ({"rows": [{"label": "a", "params": {"fusion": "scfm"}}, {"label": "b", "params": {"fusion": "scfm"}}]},
     "identical params"),
    ({"rows": [{"label": "a", "params": {}, "paper": {"EN": "high"}}]}, "rows[0].paper.EN = 'high'"),
    ({"rows": [{"label": "a", "parms": {}}]}, "rows[0].parms: unknown key"),
    ({"rows": []}, "rows: expected a non-empty list"),
])
def test_invalid_grids_fail_with_one_line_naming_file_and_key(tmp_path, change, needle):
    p = _grid_file(tmp_path, **change)
    with pytest.raises(ConfigError) as ei:
        load_grid(p)
    msg = str(ei.value)
    assert needle in msg and str(p) in msg and "\n" not in msg


def test_grid_file_errors_and_paths(tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrows: [\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML at line \d"):
        load_grid(bad)
    with pytest.raises(ConfigError, match="grid file not found"):
        load_grid(tmp_path / "missing.yaml")
    p = _grid_file(tmp_path, base={"text_prior": "file", "caption_file": "captions/c.json",
                                   "data": "${FUSIONLAB_TEST_DATA}/msrs"})
    grid = load_grid(p)
    run = expand(grid, "ci")[0]
    assert run.params["caption_file"] == "captions/c.json"  # hashed as written: ids survive moving the repo
    monkeypatch.delenv("FUSIONLAB_TEST_DATA", raising=False)
    with pytest.raises(ConfigError, match="FUSIONLAB_TEST_DATA is not set"):
        run.resolved_params(grid)
    monkeypatch.setenv("FUSIONLAB_TEST_DATA", "/data")
    resolved = run.resolved_params(grid)
    assert resolved["caption_file"] == str(tmp_path / "captions" / "c.json") and resolved["data"] == "/data/msrs"
    assert resolve_path("synthetic", grid) == "synthetic"


@pytest.mark.parametrize("path", ABLATIONS, ids=lambda p: p.stem)
def test_shipped_ablation_grids_are_valid(path):
    grid = load_grid(path)
    assert grid.name == path.stem and grid.description and grid.paper_table
    runs = {p: expand(grid, p) for p in ("ci", "full")}
    assert len(runs["ci"]) >= 2 * len(grid.rows) and all(r.params["preset"] == "ci" for r in runs["ci"])
    # a paper number for every metric or none (control rows the paper lacks); the paper's own
    # tables have one beside their reference row
    assert all(set(r.paper) in (set(grid.metrics), set()) for r in grid.rows)
    if grid.name != "text_prior_source":
        assert set(grid.reference_row.paper) == set(grid.metrics)
    # evidence needs seeds: >= 3 at laptop and full
    assert all(len(expand(grid, p)) >= 3 * len(grid.rows) for p in ("laptop", "full"))
    for r in expand(grid, "ci"):  # shipped grids reference only files that exist
        for k in ("caption_file", "data", "eval_data"):
            v = r.resolved_params(grid).get(k)
            if v and v != "synthetic":
                assert Path(v).exists(), f"{path.name}: {k} {v} missing"


# ------------------------------------------------------------------ running grids
def test_local_grid_runs_records_failures_skips_complete_and_retries(tmp_path):
    rows = yaml.safe_load(FAKE_GRID.read_text())["rows"] + [
        {"label": "unlucky", "params": {"fusion": "scfm", "eval_pairs": 13}}]
    grid_file = _grid_file(tmp_path, rows=rows, seeds=[0])
    runs_dir = tmp_path / "runs"
    out = run_grid(grid_file, preset="ci", runs_dir=runs_dir, notebook=FAKE_NB, jobs=2, progress=False)
    assert out.total == out.executed == 3 and out.n_ok == 2
    df = read_results(out.results_path)
    assert list(df["label"]) == ["variant A", "variant B", "unlucky"]
    assert list(df["status"]) == ["ok", "ok", "failed"]
    bad = df.iloc[2]
    assert bad["error"] == "ValueError: eval_pairs 13 is unlucky (fixture failure)"
    assert bad["error_cell"].startswith("In [") and pd.isna(bad["EN"])
    status = json.loads((runs_dir / "fake_grid" / bad["run_id"] / "status.json").read_text())
    assert "eval_pairs == 13" in status["cell_source"] and "ValueError" in status["traceback"]
    nb = json.loads((runs_dir / "fake_grid" / bad["run_id"] / "run.ipynb").read_text())
    assert any(o.get("ename") == "ValueError" for c in nb["cells"] for o in c.get("outputs", []))
    # results.csv carries the metrics of metrics.json, the paper numbers and the params
    a = df.iloc[0]
    m = json.loads((runs_dir / "fake_grid" / a["run_id"] / "metrics.json").read_text())
    assert a["EN"] == pytest.approx(m["EN"]) and a["SD"] == pytest.approx(m["SD"]) and a["paper_EN"] == 6.70
    assert json.loads(a["params"])["fusion"] == "concat_conv1x1"
    assert not list((runs_dir / "fake_grid").rglob("*.tmp")) and not list((runs_dir / "fake_grid").rglob(".partial*"))

    again = run_grid(grid_file, preset="ci", runs_dir=runs_dir, notebook=FAKE_NB, progress=False)
    assert again.executed == 1 and again.skipped == 2  # only the failed run is retried
    assert run_grid(grid_file, preset="ci", runs_dir=runs_dir, notebook=FAKE_NB, retry_failed=False,
                    progress=False).executed == 0
    # change one parameter of one row: exactly that row runs, the old row's folder stays
    rows[2]["params"]["eval_pairs"] = 12
    fixed = _grid_file(tmp_path, rows=rows, seeds=[0])
    out = run_grid(fixed, preset="ci", runs_dir=runs_dir, notebook=FAKE_NB, progress=False)
    assert out.executed == 1 and list(out.results["status"]) == ["ok"] * 3
    forced = run_grid(fixed, preset="ci", runs_dir=runs_dir, notebook=FAKE_NB, rows=["variant B"], force=True,
                      progress=False)
    assert forced.executed == 1 and len(forced.results) == 3
    with pytest.raises(ConfigError, match="no row 'nope'"):
        run_grid(fixed, preset="ci", runs_dir=runs_dir, notebook=FAKE_NB, rows=["nope"], progress=False)


def _count_ok(grid_dir: Path) -> int:
    return sum(run_state(d) == "complete" for d in grid_dir.iterdir() if d.is_dir())


def test_sigkill_mid_grid_then_restart_finishes_each_row_exactly_once(tmp_path):
    runs_dir = tmp_path / "runs"
    grid_dir = runs_dir / "fake_grid"
    cmd = [sys.executable, "-m", "fusionlab", "ablate", str(FAKE_GRID), "--preset", "ci", "--runs", str(runs_dir),
           "--notebook", str(FAKE_NB), "--no-progress"]
    env = {**os.environ, "FUSIONLAB_FAKE_SLEEP": "1.0"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not (grid_dir.is_dir() and _count_ok(grid_dir) >= 1):
            time.sleep(0.2)
        assert proc.poll() is None, "the grid finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)  # SIGKILL of the 'fusionlab ablate' process mid-grid
        proc.wait(timeout=30)
        done_at_kill = _count_ok(grid_dir)
        assert 1 <= done_at_kill < 4
    finally:
        if proc.poll() is None:
            proc.kill()
        time.sleep(1.5)  # the kernel's parent poller notices the dead parent within ~1 s
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the process group we started
        except ProcessLookupError:
            pass
    res = subprocess.run(cmd, env={**os.environ, "FUSIONLAB_FAKE_SLEEP": "0"}, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "4 runs, 4 ok, 0 failed, 0 pending" in res.stdout
    df = read_results(grid_dir / "results.csv")
    assert len(df) == 4 and df["run_id"].is_unique and set(df["status"]) == {"ok"}
    assert sorted(df["run_id"]) == sorted(r.run_id for r in expand(load_grid(FAKE_GRID), "ci"))
    run_dirs = [d for d in grid_dir.iterdir() if d.is_dir()]
    assert len(run_dirs) == 4
    for d in run_dirs:  # also a run finished by the killed grid's papermill process is recorded
        assert json.loads((d / "status.json").read_text())["status"] == "ok" and (d / "run.ipynb").is_file()
        assert not (d / ".partial.run.ipynb").exists()


# ------------------------------------------------------------------ tables
def _results(rows):
    """A results table: rows of (label, is reference, per-seed EN (None = failed run), paper EN)."""
    recs = []
    for i, (label, ref, values, paper) in enumerate(rows):
        for seed, v in enumerate(values):
            recs.append({"ablation": "t", "run_id": f"{label}{seed}", "row": i, "label": label, "seed": seed,
                         "preset": "ci", "status": "ok" if v is not None else "failed", "reference": ref, "EN": v,
                         "paper_EN": paper, "note": "", "error": "", "error_cell": ""})
    return pd.DataFrame(recs)


def test_paper_table_mean_std_and_paper_deltas():
    df = _results([("a", False, [6.0, 6.2], 6.70), ("b", False, [6.4, None], 6.72), ("ref", True, [6.5, 6.7], 6.75)])
    s = summarize(df)
    assert s.loc["a", "EN_mean"] == pytest.approx(6.1) and s.loc["a", "EN_std"] == pytest.approx(0.141421, 1e-4)
    assert s.loc["b", "n"] == 1 and s.loc["b", "runs"] == 2
    t = paper_table(df)
    assert list(t.index) == ["a", "b", "ref"] and list(t.columns) == ["EN", "EN paper", "seeds"]
    assert t.loc["a", "EN"] == "6.100 ± 0.141" and t.loc["b", "EN"] == "6.400" and t.loc["ref", "EN paper"] == "6.750"
    assert t.loc["b", "seeds"] == "1/2"
    d = deltas(df).set_index(["label", "source"])
    assert d.loc[("a", "measured"), "delta"] == pytest.approx(-0.5) and d.loc[("a", "paper"), "delta"] == pytest.approx(-0.05)


# ------------------------------------------------------------------ CLI
def test_cli_dry_run_and_errors(run_cli, tmp_path):
    code, out, err = run_cli("ablate", FAKE_GRID, "--preset", "ci", "--runs", tmp_path, "--dry-run")
    assert code == 0 and "fake_grid [ci]: 4 runs" in out and out.count("pending") == 4
    bad = _grid_file(tmp_path, base={"stage": "student"})
    code, out, err = run_cli("ablate", bad, "--runs", tmp_path)
    assert code == 1 and str(bad) in err and "base.stage" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("ablate", FAKE_GRID, "--executor", "slurm")
    assert code == 2 and "invalid choice" in err
    code, _, err = run_cli("ablate", FAKE_GRID, "--runs", tmp_path, "--notebook", tmp_path / "none.ipynb")
    assert code == 1 and "run notebook not found" in err
    code, _, err = run_cli("ablate", FAKE_GRID, "--runs", tmp_path, "--notebook", FAKE_NB, "--address", "auto")
    assert code == 2 and "--executor ray" in err
    code, _, err = run_cli("report", FAKE_GRID, "--runs", tmp_path / "empty")
    assert code == 1 and "no results for grid 'fake_grid'" in err


def test_shipped_caption_file_covers_every_synthetic_scene_a_run_sees():
    # the 'file' row of text_prior_source fails on a name the file lacks; keep the file in
    # step with the seeds run_experiment uses (regenerate: see fusionlab.ablate.captions)
    import json

    from fusionlab.ablate.captions import synthetic_names
    from fusionlab.train.data import SYNTHETIC_TRAIN_SEED0

    shipped = json.loads((REPO / "ablations" / "captions" / "synthetic_rules.json").read_text())
    needed = synthetic_names(("ci", "laptop"))
    assert f"syn_{SYNTHETIC_TRAIN_SEED0:05d}" in needed
    assert not set(needed) - set(shipped), sorted(set(needed) - set(shipped))[:5]


def test_shipped_real_caption_file_covers_every_real_image_a_laptop_run_sees(shared_dir):
    # the laptop 'file' row trains on ../shared/data/train and evaluates on MSRS test pairs;
    # keys must be the trainer's ('train/msrs:01319N') and the evaluation's ('00004N') names
    import json

    from fusionlab.data import PairedFolder
    from fusionlab.presets import preset_settings

    shipped = json.loads((REPO / "ablations" / "captions" / "real_rules.json").read_text())
    s = preset_settings("laptop")
    needed = set()
    for folder in s.train_data:
        root = shared_dir / folder.split("$FUSIONLAB_SHARED/", 1)[1]
        needed |= {f"{root.parent.name}/{root.name}:{n}" for n in PairedFolder(root).names}
    needed |= set(PairedFolder(shared_dir / s.eval_data.split("$FUSIONLAB_SHARED/", 1)[1]).names)
    from fusionlab.ablate.captions import synthetic_names

    needed |= set(synthetic_names(("laptop",)))  # synthetic validation scenes
    assert len(needed) > 100 and not needed - set(shipped), sorted(needed - set(shipped))[:5]
    assert all(c.startswith("Event Type: ") for c in shipped.values())


def test_shrink_grid_keeps_rows_seeds_and_paths(tmp_path):
    from fusionlab.ablate import expand, load_grid, shrink_grid

    src = tmp_path / "grids"
    (src / "captions").mkdir(parents=True)
    (src / "captions" / "c.json").write_text("{}")
    (src / "g.yaml").write_text(
        "name: g\nbase: {stage: teacher}\nrows:\n"
        "  - {label: a, params: {text_prior: none}}\n"
        "  - {label: b, params: {text_prior: file, caption_file: captions/c.json}}\n"
        "  - {label: c, params: {text_prior: oracle}}\n"
        "seeds: [0, 1]\n")
    out = shrink_grid(src / "g.yaml", tmp_path / "runs", "ci", rows=["b", -1], seeds=[3])
    grid = load_grid(out)
    assert grid.labels == ["b", "c"] and grid.reference_row.label == "c"
    runs = expand(grid, "ci")
    assert [r.seed for r in runs] == [3, 3]
    assert runs[0].params["caption_file"] == str((src / "captions" / "c.json").resolve())
    assert len(expand(grid, "laptop")) == 4  # other presets keep the grid's seeds
