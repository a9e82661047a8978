"""Train the student checkpoint shipped with fusionlab (``fusionlab/assets/student_real.pt``).

One script, one recipe (``fusionlab/recipes/shipped_real.yaml``: a ``teacher`` and a
``student`` section, each a :class:`fusionlab.train.TrainConfig`):

1. teacher: a text-guided network (``oracle`` captions of the training degradations) trained
   on the real MSRS + RoadScene TRAINING pairs of ``../shared/data/train`` (never on
   ``*/test``), random crops and flips, 20 % of the crops synthetically degraded (losses
   against the clean crop, as in Text-IF), the paper's fixed loss weights;
2. student: the text-free student distilled from it, L = L_base + 0.1 L_feat + L_res;
3. each stage keeps the step whose VALIDATION score (VIF+Qabf+SSIM on 16 pairs held out
   of the training folders) is best (``best.pt``); the selected student is copied to
   ``fusionlab/assets/student_real.pt`` (``--install``) and reported on the real test
   subsets (MSRS, RoadScene, TNO, M3FD) next to pixel mean / max and the visible image.

Fixed steps, seeds and one CPU thread: the same numbers on the same machine and torch
build. Resumable: rerun with ``--resume`` after an interruption. In the background::

    nohup .venv/bin/python scripts/train_shipped_student.py --resume --install > runs/shipped.log 2>&1 &

Writes ``<out>/teacher``, ``<out>/student`` (run folders) and ``<out>/evaluation.json``.
The synthetic-data student of earlier releases is rebuilt with ``--recipe
fusionlab/recipes/shipped_synthetic.yaml --asset student_synthetic.pt``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "fusionlab" / "assets"
RECIPES = REPO / "fusionlab" / "recipes"
REPORTED = ("EN", "SF", "AG", "VIF", "Qabf", "SSIM")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default=str(RECIPES / "shipped_real.yaml"),
                   help="YAML with 'teacher' and 'student' TrainConfig sections (default: %(default)s)")
    p.add_argument("--teacher-steps", type=int, help="override the recipe's teacher steps")
    p.add_argument("--student-steps", type=int, help="override the recipe's student steps")
    p.add_argument("--threads", type=int, help="override the recipe's torch threads")
    p.add_argument("--out", default=str(REPO / "runs" / "shipped_real"))
    shared = REPO.parent / "shared" / "data"
    p.add_argument("--eval-data", nargs="+", default=[str(shared / d / "test") for d in ("msrs", "roadscene", "tno", "m3fd")],
                   help="real dataset folders to report on ('none' to skip; default the shared MSRS, RoadScene, "
                        "TNO and M3FD subsets)")
    p.add_argument("--asset", default="student_real.pt", help="file name under fusionlab/assets/ for --install")
    p.add_argument("--install", action="store_true", help="copy the selected student (and teacher) to fusionlab/assets/")
    p.add_argument("--resume", action="store_true", help="continue interrupted stages")
    return p.parse_args(argv)


def configs(args):
    import yaml

    from fusionlab.train import TrainConfig

    recipe = yaml.safe_load(Path(args.recipe).read_text())
    out = Path(args.out)
    t = dict(recipe["teacher"], out_dir=str(out / "teacher"))
    s = dict(recipe["student"], out_dir=str(out / "student"), teacher=str(selected(out / "teacher", t)))
    for d, steps in ((t, args.teacher_steps), (s, args.student_steps)):
        if steps:
            d["steps"] = steps
        if args.threads:
            d["threads"] = args.threads
    return TrainConfig.from_dict(t, "teacher"), TrainConfig.from_dict(s, "student")


def selected(run_dir: Path, cfg: dict) -> Path:
    """The checkpoint a stage hands on: ``best.pt`` (chosen on validation) when the recipe sets
    ``select_metric``, else the last step's ``model.pt``."""
    return run_dir / ("best.pt" if cfg.get("select_metric") else "model.pt")


def run_stage(cfg, resume: bool):
    from fusionlab.train import Trainer

    done = Path(cfg.out_dir) / "model.pt"
    if resume and done.is_file():
        print(f"{cfg.stage}: already trained ({done})", flush=True)
        return
    ckpt = Path(cfg.out_dir) / "checkpoint.pt"
    s = Trainer(cfg, resume=resume and ckpt.is_file(), overwrite=True).fit()
    print(f"{cfg.stage}: {s['steps']} steps, {s['seconds']:.0f} s, validation {s['val']}", flush=True)


def evaluate(student_path: Path, teacher_path: Path, folder: str, threads: int) -> dict:
    """Student, teacher, the untrained student (its starting point: with a zero output
    convolution the blend head is a soft pixel maximum) and the pixel baselines on ``folder``."""
    import torch

    from fusionlab.data import PairedFolder
    from fusionlab.io import to_luma
    from fusionlab.models import load_checkpoint
    from fusionlab.train import baseline, evaluate_fuser, model_fuser, val_items
    from fusionlab.train.trainer import torch_threads

    from fusionlab.models import create_model
    from fusionlab.train.trainer import zero_init_head

    student, info = load_checkpoint(student_path)
    teacher, _ = load_checkpoint(teacher_path)
    untrained = create_model(info["model"], **info["config"])
    zero_init_head(untrained)
    items = val_items([PairedFolder(folder)], None, None)
    fusers = {"student (real data)": model_fuser(student), "teacher (oracle text 'normal')": model_fuser(teacher),
              "student untrained (starting point)": model_fuser(untrained),
              "visible only": lambda it: to_luma(it["vi"]),
              "pixel mean": lambda it: baseline("mean")(it["ir"], to_luma(it["vi"])),
              "pixel max": lambda it: baseline("max")(it["ir"], to_luma(it["vi"]))}
    table = {}
    with torch.no_grad(), torch_threads(threads):
        for name, fuse in fusers.items():
            table[name], _ = evaluate_fuser(fuse, items, REPORTED)
    return {"data": folder, "pairs": len(items), "table": table}


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    teacher, student = configs(args)
    run_stage(teacher, args.resume)
    run_stage(student, args.resume)
    trained = selected(Path(student.out_dir), {"select_metric": student.select_metric})  # validation only
    trained_teacher = selected(Path(teacher.out_dir), {"select_metric": teacher.select_metric})
    result = {"recipe": {k: v for k, v in vars(args).items() if k not in ("out", "install", "resume")}}
    result["evaluation"] = []
    for folder in args.eval_data:
        if folder == "none" or not Path(folder).is_dir():
            continue
        ev = evaluate(trained, trained_teacher, folder, student.threads)
        result["evaluation"].append(ev)
        print(f"{folder} ({ev['pairs']} pairs)", flush=True)
        for name, row in ev["table"].items():
            print(f"{name:>18}: " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    Path(args.out, "evaluation.json").write_text(json.dumps(result, indent=2))
    if args.install:
        from fusionlab.io import atomic_write_bytes

        for src, dst in ((trained, ASSETS / args.asset), (trained_teacher, ASSETS / args.asset.replace("student", "teacher"))):
            atomic_write_bytes(dst, src.read_bytes())  # a kill never leaves a half-written asset
            print(f"installed {dst} ({dst.stat().st_size / 1e6:.1f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
