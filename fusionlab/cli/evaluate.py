"""`fusionlab evaluate`: the fusion metric suite on files or folders."""
from __future__ import annotations

HELP = "compute fusion metrics (EN SD SF AG MI SCD VIF Qabf SSIM MSE CC PSNR, Nabf) of fused images"
DESCRIPTION = """\
Compute the fusion metrics papers report, reading images exactly as the chosen convention's
evaluator does. --ir/--vi/--fused are three files (prints ONE JSON object, metric names as keys)
or three folders (pairs matched by file stem; prints a CSV with one row per image plus a final
"mean" row, progress bar on stderr). Undefined values (SCD when the fused image equals a source)
are null in JSON and empty in CSV.

examples:
  fusionlab evaluate --ir ir/00016N.png --vi vi/00016N.png --fused out/00016N.png
  fusionlab evaluate --ir data/ir --vi data/vi --fused out --out metrics.csv
  fusionlab evaluate --ir ir --vi vi --fused out --metrics EN,VIF,Qabf --convention matlab
  fusionlab evaluate --ir ir --vi vi --fused out --convention dtpf     # as DTPF's tables
"""


def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--ir", required=True, help="infrared image file, or folder of them")
    p.add_argument("--vi", required=True, help="visible image file, or folder (same names as --ir)")
    p.add_argument("--fused", required=True, help="fused image file, or folder (same names as --ir)")
    p.add_argument("--convention", default="cddfuse", choices=("cddfuse", "dtpf", "matlab"),
                   help="how images are read and metrics normalised (default: cddfuse, the CDDFuse "
                        "evaluator; dtpf: the DTPF repository's own evaluator, behind the DTPF "
                        "paper's tables; see docs/metrics.md)")
    p.add_argument("--metrics", default=None, metavar="LIST",
                   help="comma-separated subset, or 'all' to add Nabf (default: the 12 standard metrics)")
    p.add_argument("--format", choices=("json", "csv"), default=None,
                   help="output format (default: json for files, csv for folders)")
    p.add_argument("--out", default=None, metavar="FILE", help="also write the result to FILE (atomic)")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch in folder mode (default 8)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1 or auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bar in folder mode")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from ..device import default_device
    from ..errors import UsageError
    from ..io import atomic_write_text
    from ..metrics import evaluate_files, evaluate_folders, resolve_metrics, to_jsonable

    paths = {"--ir": Path(args.ir), "--vi": Path(args.vi), "--fused": Path(args.fused)}
    dirs = {k: p.is_dir() for k, p in paths.items()}
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    metrics = resolve_metrics(args.metrics)
    device = default_device(args.device)
    if any(dirs.values()) and not all(dirs.values()):
        kinds = ", ".join(f"{k} is a {'folder' if d else 'file'}" for k, d in dirs.items())
        raise UsageError(f"--ir, --vi and --fused must be all files or all folders ({kinds})")

    if all(dirs.values()):
        df = evaluate_folders(paths["--ir"], paths["--vi"], paths["--fused"], metrics, args.convention,
                              batch_size=args.batch_size, device=device, progress=not args.no_progress,
                              mean_row=True)
        if (args.format or "csv") == "csv":
            text = df.to_csv(float_format="%.10g")
        else:
            images = {str(n): to_jsonable(r.to_dict()) for n, r in df.drop(index="mean").iterrows()}
            text = json.dumps({"convention": args.convention, "images": images,
                               "mean": to_jsonable(df.loc["mean"].to_dict())}, indent=1) + "\n"
    else:
        vals = evaluate_files(paths["--ir"], paths["--vi"], paths["--fused"], metrics, args.convention,
                              device=device)
        if (args.format or "json") == "json":
            text = json.dumps(to_jsonable(vals), indent=1) + "\n"
        else:
            import pandas as pd

            df = pd.DataFrame([vals], index=pd.Index([paths["--fused"].stem], name="name"))
            text = df.to_csv(float_format="%.10g")
    if args.out:
        atomic_write_text(args.out, text)
    sys.stdout.write(text)
    return 0
