"""`fusionlab distill`: distil a trained teacher into the student."""
from __future__ import annotations


HELP = "distil a trained teacher checkpoint into the student"
DESCRIPTION = ("Distil a teacher into the student: L = a1 L_base + a2 L_feat + a3 L_res with learned 1x1 feature "
               "adapters. Example: 'fusionlab distill --teacher runs/teacher_ci/model.pt --config distill_ci'.")


def add_arguments(p) -> None:
    from ..train.cli import add_common

    p.add_argument("--teacher", metavar="CKPT", default=None,
                   help="teacher checkpoint (model.pt or checkpoint.pt of 'fusionlab train'; default: the config's)")
    add_common(p, "distill")


def run(args) -> int:
    from ..errors import UsageError
    from ..train.cli import build_config, run_trainer

    cfg = build_config(args, "distill", {"teacher": args.teacher} if args.teacher else None)
    if cfg.stage != "distill":
        raise UsageError(f"config {args.config} is a {cfg.stage} config: use 'fusionlab train'")
    if not cfg.teacher:
        raise UsageError("no teacher: pass --teacher CKPT (e.g. runs/teacher_ci/model.pt)")
    return run_trainer(cfg, args)
