"""``fusionlab compare``: every method on the same pairs, one paper-style table per dataset."""
from __future__ import annotations

# same as fusionlab.compare.DEFAULT_METHODS (not imported: `fusionlab --help` stays free of torch)
DEFAULT_METHODS = ("student", "seafusion", "ifcnn", "tardal", "didfuse", "pixel_mean", "pixel_max",
                   "visible_only", "laplacian")
HELP = "compare the student with published peers and classical baselines: metrics table, efficiency, picture grid"
DESCRIPTION = """\
Fuse every pair of each --data ROOT with every method, score the fusions with the metric suite
(one convention, stated in the outputs), measure parameters, GFLOPs and CPU latency at the
data's size, and write per dataset: table.csv, table.md, table.html (best value per metric
marked; MSE and Nabf are lower-is-better), grid.png (the same crops across methods), plus
OUT/README.md with every table. Resumable: fusions already in OUT are reused as long as the
method (weights, protocol) is unchanged.

Methods: student (the shipped student checkpoint, or --student FILE), the peers seafusion,
ifcnn, tardal, didfuse (authors' weights; by default the authors' test-time processing),
the baselines pixel_mean, pixel_max, visible_only, laplacian.

example:
  fusionlab compare --data ../shared/data/msrs/test --data ../shared/data/tno/test \\
      --methods student,seafusion,ifcnn,tardal,didfuse,pixel_mean,pixel_max,visible_only,laplacian --out compare/
"""


def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--data", action="append", required=True, metavar="ROOT",
                   help="dataset root with ir/ + vi/ (repeat for several datasets)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), metavar="LIST",
                   help=f"comma-separated methods (default: {','.join(DEFAULT_METHODS)})")
    p.add_argument("--out", required=True, help="output folder (fusions, metrics, tables, pictures)")
    p.add_argument("--student", default=None, metavar="CHECKPOINT",
                   help="checkpoint used for the method 'student' (default: the shipped student)")
    p.add_argument("--convention", default="cddfuse", choices=("cddfuse", "matlab"),
                   help="metric convention (default cddfuse, as in the CDDFuse/DTPF tables; see docs/metrics.md)")
    p.add_argument("--metrics", default="all", metavar="LIST",
                   help="metrics to report (default: all = the 12 standard ones + Nabf)")
    p.add_argument("--peer-protocol", default="authors",
                   choices=("authors", "vif_benchmark", "author", "fusionlab"),
                   help="test-time processing of the peers: authors = each peer's default authors' script "
                        "(default), vif_benchmark / author = that script for every peer, fusionlab = "
                        "fusionlab's common pipeline")
    p.add_argument("--repeats", type=int, default=3, help="timed forwards per method, median reported (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's setting)")
    p.add_argument("--crops", type=int, default=3, help="rows of the picture grid (default 3)")
    p.add_argument("--crop-size", type=int, default=128, help="side of the grid crops in pixels (default 128)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto (latency is then not CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    import sys

    import torch

    from ..compare import compare
    from ..device import default_device
    from ..errors import UsageError

    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = default_device(args.device)
    say = lambda s: sys.stderr.write(f"fusionlab compare: {s}\n")  # noqa: E731 (status lines, kept with --no-progress)
    results = compare(args.data, args.methods, args.out, convention=args.convention, metrics=args.metrics,
                      student_checkpoint=args.student, peer_protocol=args.peer_protocol, device=device,
                      repeats=args.repeats, crops=args.crops, crop_size=args.crop_size,
                      progress=not args.no_progress, say=say)
    for r in results:
        print(f"## {r['label']} ({r['pairs']} pairs, {r['size'][0]}x{r['size'][1]})\n\n{r['markdown']}\n")
        print(f"{r['caption']}\n\nwritten: {', '.join(str(p) for p in r['files'].values())}\n")
    return 0
