"""Command-line plumbing shared by ``fusionlab train`` and ``fusionlab distill`` (kept here so
the CLI modules stay thin; nothing heavy is imported at module level)."""
from __future__ import annotations

import sys


def add_common(p, stage: str) -> None:
    p.add_argument("--config", metavar="NAME|PATH", default=None,
                   help=f"YAML config: a path or a shipped config name ({stage}, {stage}_laptop, {stage}_ci, ...; "
                        f"default: {stage}_<FUSIONLAB_PRESET>, i.e. {stage}_laptop)")
    p.add_argument("--out", metavar="DIR", default=None, help="run folder (default: the config's out_dir)")
    p.add_argument("--resume", action="store_true", help="continue the run in the run folder from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start again even if the run folder holds a run")
    p.add_argument("--steps", type=int, default=None, help="total training steps (overrides the config)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or auto (default: the config's)")
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides the config)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                   help="override any config key, e.g. --set data.crop=64 --set 'data.train=[synthetic,../msrs]'")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard events (losses, metrics, sample images) to OUT/tensorboard "
                        "(needs the tensorboard extra)")


def build_config(args, stage: str, extra: dict | None = None):
    from ..presets import get_preset
    from .config import load_config, parse_set

    name = args.config or (f"{stage}_{get_preset()}" if get_preset() != "full" else stage)
    overrides = parse_set(args.overrides)
    overrides.update(extra or {})
    for key, val in (("out_dir", args.out), ("steps", args.steps), ("max_minutes", args.max_minutes),
                     ("device", args.device), ("seed", args.seed)):
        if val is not None:
            overrides[key] = val
    if args.no_progress:
        overrides["progress"] = False
    if getattr(args, "tensorboard", False):
        overrides["tensorboard"] = True
    return load_config(name, overrides)


def run_trainer(cfg, args) -> int:
    from .trainer import Trainer

    trainer = Trainer(cfg, resume=bool(args.resume), overwrite=bool(args.overwrite))
    try:
        summary = trainer.fit()
    except KeyboardInterrupt:
        sys.stderr.write(f"stopped at step {trainer.step}; checkpoint in {trainer.out_dir}, continue with --resume\n")
        raise
    val = "  ".join(f"{k} {v:.4f}" for k, v in summary["val"].items())
    print(f"{cfg.stage}: {summary['steps']} steps in {summary['seconds']:.0f} s ({summary['stopped']})")
    if val:
        print(f"validation: {val}")
    print(f"model: {summary['model']}")
    print(f"resume state: {summary['checkpoint']}  log: {trainer.out_dir / 'train_log.csv'}")
    return 0
