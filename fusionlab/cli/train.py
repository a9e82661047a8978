"""`fusionlab train`: train a (text-guided or non-text) teacher from a YAML config."""
from __future__ import annotations


HELP = "train a teacher (text-guided or not) from a YAML config"
DESCRIPTION = ("Train the DTPF teacher on synthetic and/or real pairs with degradation-aware fusion losses. "
               "Examples: 'fusionlab train --config teacher_ci', 'fusionlab train --config teacher_notext', "
               "'fusionlab train --config my.yaml --resume'. Ctrl-C saves a checkpoint; --resume continues exactly.")


def add_arguments(p) -> None:
    from ..train.cli import add_common

    add_common(p, "teacher")


def run(args) -> int:
    from ..errors import UsageError
    from ..train.cli import build_config, run_trainer

    cfg = build_config(args, "teacher")
    if cfg.stage != "teacher":
        raise UsageError(f"config {args.config} is a {cfg.stage} config: use 'fusionlab distill --teacher CKPT'")
    return run_trainer(cfg, args)
