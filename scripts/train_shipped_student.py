"""Train the student checkpoint shipped with fusionlab (``fusionlab/assets/student_synthetic.pt``).

Reproducible recipe (the same numbers on the same machine and torch build: fixed steps,
seeds and one CPU thread):

1. teacher: ``dtpf_teacher_tiny`` widened to dim 16 (2.8 M parameters, text-guided with
   the ``oracle`` prior), trained on clean synthetic scenes ONLY
   (``fusionlab.data.SyntheticPairs``, seeds 1000..), 64x64 crops, batch 4, the paper's
   fixed loss weights, AdamW lr 5e-4. No degradation augmentation by default: trained
   degradation-aware (``--degrade-prob 0.2``) on synthetic daylight it learnt to brighten
   real night scenes, which washed out MSRS (see docs/training.md);
2. student: ``dtpf_student_tiny`` (0.72 M parameters, no text, ~3 MB) distilled from it
   with L = L_base + 0.1 L_feat + L_res, same data;
3. the student is copied to ``fusionlab/assets/student_synthetic.pt`` (``--install``) and
   evaluated on the real subsets in ``../shared/data`` (MSRS, RoadScene, TNO, M3FD; never
   used in training) next to pixel-mean / pixel-max fusion and the visible image alone.

Run it in the background on a shared machine::

    nohup .venv/bin/python scripts/train_shipped_student.py --install > runs/shipped.log 2>&1 &

Writes ``<out>/teacher``, ``<out>/student`` (run folders) and ``<out>/evaluation.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSET = REPO / "fusionlab" / "assets" / "student_synthetic.pt"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher-steps", type=int, default=600)
    p.add_argument("--student-steps", type=int, default=600)
    p.add_argument("--lr", type=float, default=5e-4,
                   help="AdamW lr (default 5e-4: 600 steps at the paper's 1e-4 stay close to the visible image)")
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--synthetic", type=int, default=256, help="synthetic training scenes (256x256)")
    p.add_argument("--degrade-prob", type=float, default=0.0,
                   help="share of degraded training samples (default 0: with 0.2 the student learnt to brighten "
                        "real night scenes, see docs/training.md)")
    p.add_argument("--loss-weights", default="fixed", choices=("auto", "fixed", "degradation"),
                   help="teacher loss weights: fixed (default) = the paper's non-text weights {int 24, ssim 40, grad 48, "
                        "color 12}; auto = the reference code's per-degradation table, whose VI-consistency term kept "
                        "the IR targets out of the fusion")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: deterministic and fast on a busy CPU)")
    p.add_argument("--out", default=str(REPO / "runs" / "shipped_student"))
    shared = REPO.parent / "shared" / "data"
    p.add_argument("--eval-data", nargs="+", default=[str(shared / d / "test") for d in ("msrs", "roadscene", "tno", "m3fd")],
                   help="real dataset folders to report on ('none' to skip; default the shared MSRS, RoadScene, "
                        "TNO and M3FD subsets)")
    p.add_argument("--install", action="store_true", help=f"copy the student to {ASSET.relative_to(REPO)}")
    p.add_argument("--resume", action="store_true", help="continue interrupted stages")
    return p.parse_args(argv)


def configs(args):
    from fusionlab.train import DataConfig, TrainConfig

    data = DataConfig(train=["synthetic"], val=["synthetic"], synthetic_train=args.synthetic, synthetic_size=256,
                      synthetic_val=2, crop=args.crop, batch=args.batch, degrade_prob=args.degrade_prob,
                      val_pairs=2, val_crop=256)
    common = dict(lr=args.lr, warmup_steps=50, seed=args.seed, threads=args.threads, log_every=25, val_every=100,
                  ckpt_every=50, progress=False, data=data)
    out = Path(args.out)
    teacher = TrainConfig(stage="teacher", model="dtpf_teacher_tiny", model_args={"dim": 16}, text_prior="oracle",
                          loss_weights=args.loss_weights, steps=args.teacher_steps, out_dir=str(out / "teacher"), **common)
    student = TrainConfig(stage="distill", student="dtpf_student_tiny", teacher=str(out / "teacher" / "model.pt"),
                          steps=args.student_steps, out_dir=str(out / "student"), **common)
    return teacher, student


def run_stage(cfg, resume: bool):
    from fusionlab.train import Trainer

    done = Path(cfg.out_dir) / "model.pt"
    if resume and done.is_file():
        print(f"{cfg.stage}: already trained ({done})", flush=True)
        return
    ckpt = Path(cfg.out_dir) / "checkpoint.pt"
    s = Trainer(cfg, resume=resume and ckpt.is_file(), overwrite=True).fit()
    print(f"{cfg.stage}: {s['steps']} steps, {s['seconds']:.0f} s, validation {s['val']}", flush=True)


def evaluate(student_path: Path, folder: str, threads: int) -> dict:
    import torch

    from fusionlab.data import PairedFolder
    from fusionlab.io import to_luma
    from fusionlab.models import load_checkpoint
    from fusionlab.train import baseline, evaluate_fuser, model_fuser, val_items
    from fusionlab.train.trainer import torch_threads

    model, _ = load_checkpoint(student_path)
    items = val_items([PairedFolder(folder)], None, None)
    fusers = {"student_synthetic": model_fuser(model),
              "visible only": lambda it: to_luma(it["vi"]),
              "pixel mean": lambda it: baseline("mean")(it["ir"], to_luma(it["vi"])),
              "pixel max": lambda it: baseline("max")(it["ir"], to_luma(it["vi"]))}
    table = {}
    with torch.no_grad(), torch_threads(threads):
        for name, fuse in fusers.items():
            table[name], _ = evaluate_fuser(fuse, items)  # the headline metrics
    return {"data": folder, "pairs": len(items), "table": table}


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    teacher, student = configs(args)
    run_stage(teacher, args.resume)
    run_stage(student, args.resume)
    trained = Path(student.out_dir) / "model.pt"
    result = {"recipe": {k: v for k, v in vars(args).items() if k not in ("out", "install", "resume")}}
    result["evaluation"] = []
    for folder in args.eval_data:
        if folder == "none" or not Path(folder).is_dir():
            continue
        ev = evaluate(trained, folder, args.threads)
        result["evaluation"].append(ev)
        print(f"{folder} ({ev['pairs']} pairs)", flush=True)
        for name, row in ev["table"].items():
            print(f"{name:>18}: " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    Path(args.out, "evaluation.json").write_text(json.dumps(result, indent=2))
    if args.install:
        from fusionlab.io import atomic_write_bytes

        atomic_write_bytes(ASSET, trained.read_bytes())  # a kill never leaves a half-written asset
        print(f"installed {ASSET} ({ASSET.stat().st_size / 1e6:.1f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
