"""``fusionlab profile``: parameters, FLOPs, peak memory and CPU latency of model variants."""
from __future__ import annotations

HELP = "print the efficiency table (params, GFLOPs/GMACs, peak memory, median latency) of models"
DESCRIPTION = (HELP + ". Latencies are measured side by side in one run (interleaved repeats), "
               "so ratios between models are meaningful even on a busy machine.")

DEFAULT_MODELS = ("dtpf_teacher", "dtpf_student", "dtpf_student_w32", "dtpf_student_w48")


def add_arguments(p) -> None:
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                   help=f"model names, peers and baselines included (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--size", default="480x640", help="input HxW (default 480x640)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per model, median reported (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's setting)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--fusion", default=None, help="override the fusion module of every model")
    p.add_argument("--no-latency", action="store_true", help="skip timing (params, FLOPs, memory only)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")


def parse_size(text: str) -> tuple[int, int]:
    from ..errors import UsageError

    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 480x640, got {text!r}") from None
    if h < 8 or w < 8:
        raise UsageError(f"--size {text}: at least 8x8")
    return h, w


def run(args) -> int:
    import json
    import sys

    from ..errors import UsageError
    from ..io import atomic_write_text
    from ..models.profile import format_table, profile_models, rows_to_dicts

    size = parse_size(args.size)
    if args.repeats < 1:
        raise UsageError("--repeats must be >= 1")
    overrides = {"fusion": args.fusion} if args.fusion else {}
    rows = profile_models(args.models, size=size, repeats=args.repeats, threads=args.threads, device=args.device,
                          memory=not args.no_memory, latency=not args.no_latency,
                          progress=lambda s: sys.stderr.write(f"  {s}\n"), **overrides)
    ref = next((m for m in args.models if m.startswith("dtpf_teacher")), args.models[0])
    import torch

    print(f"input {size[0]}x{size[1]}, {args.device}, {torch.get_num_threads() if not args.threads else args.threads} "
          f"thread(s), median of {args.repeats}")
    print(format_table(rows, reference=ref))
    if args.json:
        atomic_write_text(args.json, json.dumps({"size": list(size), "threads": args.threads, "rows": rows_to_dicts(rows)},
                                                indent=2))
    return 0
