"""``fusionlab demo``: the main job on the embedded synthetic data (no download)."""
from __future__ import annotations

HELP = "fuse synthetic pairs with the shipped student, write fused images, metrics and a picture"
DESCRIPTION = (HELP + ". Leaves OUT/fused/*.png, OUT/metrics.csv, OUT/summary.csv and OUT/overview.png.")


def add_arguments(p) -> None:
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--n", type=int, default=6, help="number of synthetic pairs (default: 6)")
    p.add_argument("--size", default="240x320", help="HxW of the synthetic pairs (default: 240x320)")
    p.add_argument("--checkpoint", default=None, help="student: a .pt checkpoint or a save_pretrained folder (default: the shipped one)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default)")


def run(args) -> int:
    from ..errors import UsageError
    from ..demo import run_demo

    try:
        h, w = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 240x320, got {args.size!r}") from None
    if args.n < 1 or h < 16 or w < 16:
        raise UsageError("--n must be >= 1 and --size at least 16x16")
    res = run_demo(args.out, n=args.n, size=(h, w), checkpoint=args.checkpoint, device=args.device)
    print(res["summary"].round(3).to_string())
    print(f"\nwrote {res['out']}/fused/*.png, metrics.csv, summary.csv, overview.png")
    return 0
