"""Training: data pipeline, configs, both trainer stages, exact resume, interrupts, CLI,
run_experiment. Tiny models, 32-48 px crops and a few steps keep this file fast."""
from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

import pytest
import torch

from fusionlab.data import DEGRADATIONS, write_synthetic_folder
from fusionlab.errors import CheckpointError, ConfigError, EmptyInputError, OutputError
from fusionlab.io import write_image
from fusionlab.train import (BatchStream, DataConfig, Trainer, TrainConfig, build_sources, load_config,
                             resolve_config_path, run_experiment, split_names)
from fusionlab.train.config import PACKAGE_CONFIGS, parse_set
from support import benchmark_module

REPO = Path(__file__).resolve().parents[2]


# one torch thread (fixture in conftest.py): results do not depend on it, speed on a busy CPU does
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_cfg(out, stage="teacher", **kw) -> TrainConfig:
    """A teacher/distill config that trains in about a second per step on 2 cores."""
    data = DataConfig(train=["synthetic"], val=["synthetic"], synthetic_train=4, synthetic_val=1, synthetic_size=48,
                      crop=32, batch=1, val_pairs=1, val_crop=48, degrade_prob=0.8)
    base = dict(stage=stage, model="dtpf_teacher_tiny", student="dtpf_student_tiny", text_prior="oracle", steps=3,
                out_dir=str(out), log_every=1, val_every=2, ckpt_every=1, progress=False, threads=1, data=data)
    base.update(kw)
    return TrainConfig(**base)


def weights(path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def log_rows(run_dir) -> list[dict]:
    with open(Path(run_dir) / "train_log.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted 3-step teacher run (the reference for the resume tests)."""
    out = tmp_path_factory.mktemp("ref") / "teacher"
    summary = Trainer(tiny_cfg(out)).fit()
    return out, summary


# ------------------------------------------------------------------ data
def test_batch_stream_deterministic_degradation_aware():
    src = build_sources(["synthetic"], "train", synthetic_pairs=3, synthetic_size=40)
    s = BatchStream(src, crop=24, batch=4, degrade_prob=1.0, seed=5)
    b = s.batch(7)
    assert b["ir"].shape == (4, 1, 24, 24) and b["vi"].shape == (4, 3, 24, 24)
    assert b["ir_clean"].shape == b["ir"].shape and len(b["labels"]) == 4 and len(b["names"]) == 4
    assert all(lab in DEGRADATIONS and lab != "normal" for lab in b["labels"])
    for i, lab in enumerate(b["labels"]):  # the degraded modality differs from its clean target
        changed = b["vi"] if lab in ("low_light", "over_exposure") else b["ir"]
        clean = b["vi_clean"] if lab in ("low_light", "over_exposure") else b["ir_clean"]
        assert not torch.equal(changed[i], clean[i])
    again = BatchStream(src, crop=24, batch=4, degrade_prob=1.0, seed=5).batch(7)  # pure function of (seed, step)
    assert all(torch.equal(b[k], again[k]) for k in ("ir", "vi", "ir_clean", "vi_clean")) and b["labels"] == again["labels"]
    assert not torch.equal(s.batch(8)["ir_clean"], b["ir_clean"])
    # every pair is seen once per epoch (3 pairs, batch 4: positions 0..2 = epoch 0)
    clean = BatchStream(src, crop=40, batch=3, flip=False, degrade_prob=0.0, seed=1).batch(0)
    assert sorted(clean["names"]) == ["syn_01000", "syn_01001", "syn_01002"] and clean["labels"] == ["normal"] * 3
    with pytest.raises(ConfigError, match="unknown degradation"):
        BatchStream(src, 24, 2, degradations=["fog"])


def test_folders_medical_layout_and_holdout(tmp_path):
    root = write_synthetic_folder(tmp_path / "ivf", n=5, size=(36, 44), with_reference=False)
    med = tmp_path / "PET-MRI"
    for i in range(3):  # Harvard layout: <modality>/ (colour, visible slot) + mri/ (infrared slot)
        write_image(med / "pet" / f"{i:03d}.png", torch.rand(3, 30, 30))
        write_image(med / "mri" / f"{i:03d}.png", torch.rand(1, 30, 30))
    train_names, held = split_names([f"syn_{i:05d}" for i in range(5)], 2)
    assert len(train_names) == 3 and len(held) == 2 and not set(train_names) & set(held)
    assert split_names([f"syn_{i:05d}" for i in range(5)], 2) == (train_names, held)  # same split every run
    srcs = build_sources([str(root), str(med), "synthetic"], "train", synthetic_pairs=2, synthetic_size=32, holdout=2)
    assert [len(s) for s in srcs] == [3, 1, 2]
    val = build_sources(["holdout"], "val", synthetic_pairs=1, synthetic_size=32, holdout=2,
                        train_specs=[str(root), "synthetic"])
    assert sorted(val[0][i]["name"].split(":")[1] for i in range(2)) == held
    b = BatchStream(srcs, crop=32, batch=6, seed=0).batch(0)  # gray MRI / RGB PET / synthetic share a batch
    assert b["vi"].shape == (6, 3, 32, 32) and b["ir"].shape == (6, 1, 32, 32)
    with pytest.raises(EmptyInputError, match="not found"):
        build_sources([str(tmp_path / "missing")], "train", synthetic_pairs=1, synthetic_size=32)
    with pytest.raises(ConfigError, match="holdout"):
        build_sources(["holdout"], "val", synthetic_pairs=1, synthetic_size=32)


# ------------------------------------------------------------------ configs
def test_shipped_configs_load_and_take_their_sizes_from_the_preset_table():
    from fusionlab.presets import PRESET_SETTINGS

    assert not (REPO / "configs").exists()  # one copy of the configs: fusionlab/configs
    for name in ("teacher", "teacher_notext", "teacher_laptop", "teacher_ci", "distill", "distill_laptop", "distill_ci"):
        cfg = load_config(name)
        stage = "distill" if name.startswith("distill") else "teacher"
        preset = PRESET_SETTINGS[name.split("_")[-1] if name.endswith(("_ci", "_laptop")) else "full"]
        assert cfg.stage == stage
        assert cfg.steps == (preset.distill_steps if stage == "distill" else preset.steps)
        assert (cfg.student if stage == "distill" else cfg.model) == (preset.student if stage == "distill" else preset.model)
        assert (cfg.data.crop, cfg.data.batch, cfg.data.synthetic_train) == (preset.crop, preset.batch,
                                                                            preset.synthetic_train)
    assert load_config("teacher_notext").model_args == {"text_dim": None}
    assert load_config("teacher_laptop").model_args == {"dim": 16} and load_config("teacher_laptop").steps == PRESET_SETTINGS["laptop"].steps
    cfg = load_config("teacher_ci", {"steps": 3, "data.crop": 40})
    assert cfg.steps == 3 and cfg.data.crop == 40 and cfg.data.batch == 2
    assert resolve_config_path(PACKAGE_CONFIGS / "distill.yaml").name == "distill.yaml"
    assert parse_set(["data.train=[synthetic, /x]", "lr=2e-4"]) == {"data.train": ["synthetic", "/x"], "lr": "2e-4"}
    assert load_config("teacher_ci", {"lr": "2e-4"}).lr == 2e-4  # YAML 1.1 reads 2e-4 as a string


def test_config_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text, match in (("stepz: 3\n", "unknown key 'stepz'"), ("steps: many\n", "steps='many' has the wrong type"),
                        ("data: {crop: 4}\n", "crop=4 must be at least 8"), ("stage: student\n", "stage='student'"),
                        ("losses: [int, edges]\n", "losses="), ("steps: [1\n", "invalid YAML at line")):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=match) as e:
            load_config(bad)
        assert "\n" not in str(e.value) and str(bad) in str(e.value)
    with pytest.raises(ConfigError, match="no such config file or shipped config"):
        load_config("teacher_gpu9")


# ------------------------------------------------------------------ teacher stage, resume, interrupts
def test_teacher_trains_logs_and_validates(reference_run):
    out, summary = reference_run
    assert summary["steps"] == 3 and summary["stopped"] == "done"
    assert set(summary["val"]) == {"EN", "VIF", "Qabf", "SSIM"} and all(v == v for v in summary["val"].values())
    rows = log_rows(out)
    train = [r for r in rows if r["kind"] == "train"]
    assert [int(r["step"]) for r in train] == [1, 2, 3]
    assert all(float(r["loss"]) > 0 and float(r["l_int"]) > 0 and float(r["l_consistency"]) > 0 for r in train)
    assert [int(r["step"]) for r in rows if r["kind"] == "val"] == [2, 3]
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["extra"]["step"] == 3 and {"optimizer", "scheduler", "scaler", "rng", "data"} <= set(ck["extra"])
    assert ck["metadata"]["train_config"]["text_prior"] == "oracle"
    final = torch.load(out / "model.pt", weights_only=True)
    assert final["extra"] == {} and final["model"] == "dtpf_teacher_tiny"
    # the cosine schedule reaches min_lr at the last step
    assert float(train[-1]["lr"]) == pytest.approx(1e-6, rel=1e-3)
    with pytest.raises(OutputError, match="--resume"):
        Trainer(tiny_cfg(out))


def test_pause_and_resume_is_exact(reference_run, tmp_path):
    ref_out, _ = reference_run
    out = tmp_path / "paused"
    s = Trainer(tiny_cfg(out)).fit(max_steps=1)
    assert s["stopped"] == "paused" and s["steps"] == 1 and not (out / "model.pt").exists()
    Trainer(tiny_cfg(out), resume=True).fit()
    assert same_weights(weights(out / "model.pt"), weights(ref_out / "model.pt"))
    steps = [(r["kind"], r["step"]) for r in log_rows(out)]
    assert len(steps) == len(set(steps))  # no duplicated rows after the resume
    with pytest.raises(ConfigError, match="config lr changed"):
        Trainer(tiny_cfg(out, lr=3e-4), resume=True)
    with pytest.raises(CheckpointError, match="no checkpoint to resume"):
        Trainer(tiny_cfg(tmp_path / "empty"), resume=True)


def test_ctrl_c_saves_checkpoint_then_cli_exit_130_and_resume(reference_run, tmp_path, run_cli, monkeypatch):
    ref_out, _ = reference_run
    out = tmp_path / "interrupted"
    cfg_file = tmp_path / "tiny.yaml"
    import yaml

    cfg_file.write_text(yaml.safe_dump(tiny_cfg(out).to_dict()))
    real_batch = BatchStream.batch

    def batch_with_ctrl_c(self, step):
        if step == 1:  # Ctrl-C arrives while step 2 is being computed
            signal.raise_signal(signal.SIGINT)
        return real_batch(self, step)

    monkeypatch.setattr(BatchStream, "batch", batch_with_ctrl_c)
    code, _, err = run_cli("train", "--config", cfg_file)
    assert code == 130 and "continue with --resume" in err
    assert torch.load(out / "checkpoint.pt", weights_only=True)["extra"]["step"] == 2  # the step finished first
    monkeypatch.setattr(BatchStream, "batch", real_batch)
    code, stdout, _ = run_cli("train", "--config", cfg_file, "--resume")
    assert code == 0 and "3 steps" in stdout
    assert same_weights(weights(out / "model.pt"), weights(ref_out / "model.pt"))


# ------------------------------------------------------------------ distillation
def test_distill_adapters_in_optimizer_get_gradients_and_change(reference_run, tmp_path):
    ref_out, _ = reference_run
    cfg = tiny_cfg(tmp_path / "student", stage="distill", teacher=str(ref_out / "model.pt"), steps=2, val_every=0)
    tr = Trainer(cfg)
    assert tr.prior is None and tr.teacher_prior is not None and not tr.teacher.training
    assert all(not p.requires_grad for p in tr.teacher.parameters())
    adapters = list(tr.criterion.adapters.parameters())
    in_opt = {id(p) for g in tr.optimizer.param_groups for p in g["params"]}
    assert adapters and all(id(p) in in_opt for p in adapters)
    before = [p.detach().clone() for p in adapters]
    t_before = [p.detach().clone() for p in tr.teacher.parameters()]
    loss, parts = tr.compute_loss(tr.stream.batch(0))
    loss.backward()
    assert set(parts) == {"base", "feat", "res"}
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapters)
    summary = tr.fit()
    assert all(not torch.equal(a, b) for a, b in zip(before, tr.criterion.adapters.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(t_before, tr.teacher.parameters()))  # teacher frozen
    ck = torch.load(summary["checkpoint"], weights_only=True)
    assert ck["model"] == "dtpf_student_tiny" and any(k.startswith("terms.feat.adapters.") for k in ck["extra"]["criterion"])
    # L_feat off: no adapters at all (ablation row "L_base + L_res")
    tr2 = Trainer(tiny_cfg(tmp_path / "nofeat", stage="distill", teacher=str(ref_out / "model.pt"),
                           distill_losses=["base", "res"]))
    assert tr2.criterion.adapters is None


def test_distill_cli_errors(run_cli, tmp_path):
    code, _, err = run_cli("distill", "--config", "distill_ci", "--out", tmp_path / "x")
    assert code == 2 and "--teacher" in err
    code, _, err = run_cli("distill", "--config", "distill_ci", "--teacher", tmp_path / "nope.pt", "--out", tmp_path / "x")
    assert code == 1 and "nope.pt" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("train", "--config", "distill_ci")
    assert code == 2 and "fusionlab distill" in err


# ------------------------------------------------------------------ run_experiment
def test_run_experiment_validates_params(tmp_path):
    for params, match in (({"stag": "teacher"}, "stag: unknown key"), ({"stage": "student"}, "stage = 'student'"),
                          ({"width": 15}, "width = 15"), ({"losses": ["int", "edge"]}, "losses = "),
                          ({"text_prior": "gpt"}, "text_prior = 'gpt'"), ({"data": str(tmp_path / "nope")}, "data"),
                          ({"model": "resnet"}, "model = 'resnet'"), ({"text_prior": "file"}, "caption_file"),
                          ({"eval_pairs": 0}, "eval_pairs = 0"),
                          ({"text_checkpoint": str(tmp_path / "none.pt")}, "text_checkpoint = ")):
        with pytest.raises(ConfigError, match=match) as e:
            run_experiment(params, tmp_path / "run")
        assert "\n" not in str(e.value)


def test_run_experiment_distill_ci_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FUSIONLAB_THREADS", "1")
    from dataclasses import replace

    from fusionlab.presets import PRESET_SETTINGS

    # an even smaller ci preset for this test: the real one is exercised by the notebooks
    ci = replace(PRESET_SETTINGS["ci"], steps=2, distill_steps=2, crop=32, synthetic_size=48, eval_pairs=1,
                 eval_size=48, eval_crop=48, val_crop=48)
    monkeypatch.setitem(PRESET_SETTINGS, "ci", ci)
    params = {"stage": "distill", "preset": "ci", "width": 8, "losses": ["int", "grad", "ssim", "color"]}
    m = run_experiment(params, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["metrics"].keys() >= {"EN", "VIF", "Qabf", "SSIM", "SD", "MI"}
    assert m["metrics"]["EN"] == pytest.approx(saved["metrics"]["EN"])
    # one evaluation pair, clean and under the four degradations, each scored against the clean pair
    assert len(saved["per_image"]) == 5 and saved["train"]["teacher"]["cached"] is False
    assert {r["label"] for r in saved["per_image"]} == set(saved["conditions"]) - {"degraded"}
    assert saved["conditions"]["normal"]["VIF"] == pytest.approx(saved["metrics"]["VIF"])
    assert (tmp_path / "run" / "model.pt").is_file() and list((tmp_path / "run" / "samples").glob("*.png"))
    assert (tmp_path / "run" / "train_log.csv").is_file()
    # a second distillation run with the same teacher params reuses the cached teacher
    m2 = run_experiment({**params, "distill_losses": ["base", "res"]}, tmp_path / "run2")
    assert m2["train"]["teacher"]["cached"] is True
    assert m2["train"]["teacher"]["key"] == m["train"]["teacher"]["key"]


def test_projector_row_gets_a_cached_default_projector(tmp_path, monkeypatch):
    # text_prior=projector without text_checkpoint: one projector per preset/seed is trained
    # on synthetic oracle captions, cached, and handed to the teacher's prior
    from dataclasses import replace

    from fusionlab.presets import PRESET_SETTINGS
    from fusionlab.text import build_text_prior
    from fusionlab.train.experiment import experiment_config

    monkeypatch.setenv("FUSIONLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(PRESET_SETTINGS, "ci", replace(PRESET_SETTINGS["ci"], projector_steps=2, projector_pairs=4,
                                                       projector_batch=4))
    cfg = experiment_config({"text_prior": "projector", "preset": "ci"}, tmp_path / "run")
    ckpt = Path(cfg.text_args["checkpoint"])
    assert ckpt.is_file() and ckpt.parent == tmp_path / "cache" / "projectors"
    stamp = ckpt.stat().st_mtime_ns
    again = experiment_config({"text_prior": "projector", "preset": "ci", "seed": 0}, tmp_path / "run2")
    assert again.text_args["checkpoint"] == str(ckpt) and ckpt.stat().st_mtime_ns == stamp  # reused
    prior = build_text_prior("projector", text_dim=512, checkpoint=ckpt)
    emb = prior({"ir": torch.rand(2, 1, 32, 32), "vi": torch.rand(2, 3, 32, 32)})
    assert emb.shape == (2, 512) and torch.isfinite(emb).all()
    # an explicit projector is used as given
    mine = experiment_config({"text_prior": "projector", "text_checkpoint": str(ckpt)}, tmp_path / "run3")
    assert mine.text_args["checkpoint"] == str(ckpt)


def test_vlv_row_evaluates_the_frozen_oracle_teacher_with_a_cached_caption_free_encoder(tmp_path, monkeypatch):
    # text_prior=vlv (stage teacher): no teacher training of its own; the oracle row's teacher
    # (cached, the same key a distillation from the oracle teacher uses) is conditioned on an
    # encoder trained through it; the encoder's seconds and final loss are recorded
    from dataclasses import replace

    from fusionlab.presets import PRESET_SETTINGS
    from fusionlab.train.experiment import experiment_config, teacher_key

    monkeypatch.setenv("FUSIONLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FUSIONLAB_THREADS", "1")
    ci = replace(PRESET_SETTINGS["ci"], steps=2, crop=32, synthetic_size=48, eval_pairs=1, eval_size=48,
                 eval_crop=48, val_crop=48, vlv_steps=2, vlv_batch=2, eval_conditions=("normal", "low_light"))
    monkeypatch.setitem(PRESET_SETTINGS, "ci", ci)
    m = run_experiment({"text_prior": "vlv", "preset": "ci"}, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    t, v = saved["train"]["teacher"], saved["train"]["vlv"]
    assert t["key"] == teacher_key(experiment_config({"text_prior": "oracle", "preset": "ci"}, tmp_path / "x"))
    assert set(saved["train"]) == {"teacher", "vlv"} and t["cached"] is False  # the cache trained it, not the run
    assert saved["checkpoint"] == t["checkpoint"] and not (tmp_path / "run" / "model.pt").exists()
    assert v["steps"] == 2 and v["seconds"] > 0 and v["final_loss"] > 0 and v["cached"] is False
    assert Path(v["checkpoint"]).parent == tmp_path / "cache" / "vlv"
    assert len(saved["per_image"]) == 2 and saved["params"]["text_prior"] == "vlv"
    # the second seed-0 run reuses teacher and encoder and gives the same numbers
    m2 = run_experiment({"text_prior": "vlv", "preset": "ci"}, tmp_path / "run2")
    assert m2["train"]["teacher"]["cached"] is True and m2["train"]["vlv"]["cached"] is True
    assert m2["train"]["vlv"]["final_loss"] == v["final_loss"] and m2["metrics"]["VIF"] == m["metrics"]["VIF"]
    with pytest.raises(ConfigError, match="text_prior = 'vlv' needs stage = 'teacher'"):
        run_experiment({"text_prior": "vlv", "stage": "distill", "preset": "ci"}, tmp_path / "run3")


def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_result(reference_run, tmp_path):
    """A kill -9 loses at most the steps since the last checkpoint; resuming reproduces the
    uninterrupted run bit for bit (checkpoints are written atomically, never half-written)."""
    import os
    import subprocess
    import sys
    import time

    import yaml

    ref_out, _ = reference_run
    out = tmp_path / "killed"
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(yaml.safe_dump(tiny_cfg(out).to_dict()))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FUSIONLAB_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fusionlab", "train", "--config", str(cfg_file)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.kill()  # SIGKILL: no handler runs
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-500:]
    assert not (out / "model.pt").exists()  # killed before the end
    step = torch.load(out / "checkpoint.pt", weights_only=True)["extra"]["step"]
    assert 1 <= step < 3
    summary = Trainer(tiny_cfg(out), resume=True).fit()
    assert summary["steps"] == 3
    assert same_weights(weights(out / "model.pt"), weights(ref_out / "model.pt"))
    steps = [(r["kind"], r["step"]) for r in log_rows(out)]
    assert len(steps) == len(set(steps)) and ("train", "3") in steps


def test_short_schedule_benchmark_smoke(tmp_path, monkeypatch):
    """benchmarks/short_schedule.py end to end with a tiny budget (synthetic only)."""
    monkeypatch.setenv("FUSIONLAB_THREADS", "1")
    mod = benchmark_module("short_schedule")
    code = mod.main(["--budget-min", "0.01", "--data", "none", "--synthetic", "2", "--synthetic-size", "48",
                     "--eval-synthetic", "1", "--crop", "32", "--batch", "1",
                     "--teacher-width", "0", "--threads", "1", "--out", str(tmp_path / "bench")])
    assert code == 0
    res = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert set(res["evaluation"]["table"]) >= {"teacher (trained here)", "student (distilled here)", "pixel mean"}
    assert "| pixel max |" in (tmp_path / "bench" / "table.md").read_text()
    assert set(res["goal"]) == {"student within 2% of teacher (EN, VIF, Qabf)", "teacher beats mean (VIF, Qabf)",
                                "student beats mean (VIF, Qabf)"}


# ------------------------------------------------------------------ real folders: weights, paths, selection
def test_weighted_sources_and_shared_paths(tmp_path, monkeypatch):
    from fusionlab.dirs import shared_dir as shared_root
    from fusionlab.train.data import expand_path

    a = write_synthetic_folder(tmp_path / "a", n=3, size=(40, 40), with_reference=False)
    b = write_synthetic_folder(tmp_path / "b", n=3, size=(40, 40), with_reference=False)
    srcs = build_sources([str(a), str(b)], "train", synthetic_pairs=1, synthetic_size=32)
    only_b = BatchStream(srcs, crop=32, batch=8, degrade_prob=0.0, seed=0, weights=[0.0, 1.0])
    names = [n for k in range(3) for n in only_b.batch(k)["names"]]
    assert len(names) == 24 and all(n.split(":")[0].endswith("/b") for n in names)
    mixed = BatchStream(srcs, crop=32, batch=8, degrade_prob=0.0, seed=0, weights=[3.0, 1.0])
    names = [n.split(":")[0][-1] for k in range(25) for n in mixed.batch(k)["names"]]
    assert 0.65 < names.count("a") / len(names) < 0.85  # 3:1 -> 75 % from a (200 draws)
    again = BatchStream(srcs, crop=32, batch=8, degrade_prob=0.0, seed=0, weights=[3.0, 1.0]).batch(4)
    assert torch.equal(again["ir"], mixed.batch(4)["ir"])  # still a pure function of (seed, step)
    assert mixed.state()["weights"] == [3.0, 1.0] and "weights" not in BatchStream(srcs, 32, 2).state()
    with pytest.raises(ConfigError, match="one non-negative weight per training source"):
        BatchStream(srcs, 32, 2, weights=[1.0])
    with pytest.raises(ConfigError, match="train_weights"):
        TrainConfig(data={"train": ["synthetic"], "train_weights": [1, 2]})
    monkeypatch.delenv("FUSIONLAB_SHARED", raising=False)
    assert expand_path("$FUSIONLAB_SHARED/data/train/msrs") == shared_root() / "data" / "train" / "msrs"
    assert shared_root() == REPO.parent / "shared"
    monkeypatch.setenv("FUSIONLAB_SHARED", str(tmp_path))
    assert expand_path("${FUSIONLAB_SHARED}/a") == tmp_path / "a"
    monkeypatch.setenv("FUSIONLAB_SHARED", str(tmp_path.parent))
    assert len(build_sources([f"$FUSIONLAB_SHARED/{tmp_path.name}/a"], "train", synthetic_pairs=1,
                             synthetic_size=32)[0]) == 3


def test_checkpoint_selection_on_validation(tmp_path):
    from fusionlab.train.trainer import selection_score

    out = tmp_path / "sel"
    s = Trainer(tiny_cfg(out, steps=3, val_every=1, select_metric="VIF+Qabf")).fit()
    rows = [r for r in log_rows(out) if r["kind"] == "val"]
    scores = {int(r["step"]): float(r["VIF"]) + float(r["Qabf"]) for r in rows}
    best_step = max(scores, key=scores.get)
    assert s["best"]["step"] == best_step and s["best"]["score"] == pytest.approx(scores[best_step], rel=1e-5)
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["metadata"]["step"] == best_step and best["metadata"]["best"]["step"] == best_step
    assert selection_score("VIF+Qabf", {"VIF": 1.0, "Qabf": 0.5}) == 1.5
    with pytest.raises(ConfigError, match="'MI' is not a validation metric"):
        tiny_cfg(out, select_metric="VIF+MI")
