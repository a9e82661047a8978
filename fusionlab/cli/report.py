"""`fusionlab report GRID`: render the ablation report notebook to HTML."""
from __future__ import annotations

HELP = "render an ablation's report (paper-style table, plots, fused images) to HTML"
DESCRIPTION = (
    "Execute notebooks/ablation_report.ipynb for one grid with papermill (reading "
    "runs/<ablation>/results.csv) and convert it to a self-contained HTML file for sharing. "
    "GRID is a YAML file or a built-in grid name. Example: fusionlab report fusion_modules --out fusion_modules.html")


def add_arguments(p) -> None:
    p.add_argument("grid", help="grid file (my_grid.yaml) or built-in grid name (fusion_modules)")
    p.add_argument("--runs", default="runs", metavar="DIR", help="runs folder (default: runs)")
    p.add_argument("--out", default=None, metavar="HTML", help="output file (default: runs/<ablation>/report.html)")
    p.add_argument("--notebook", default=None, metavar="PATH",
                   help="report notebook (default: notebooks/ablation_report.ipynb here, else the shipped one)")
    p.add_argument("--show-code", action="store_true", help="keep the code cells in the HTML")


def run(args) -> int:
    from ..ablate import render_report

    out = render_report(args.grid, runs_dir=args.runs, out=args.out, notebook=args.notebook,
                        show_code=args.show_code)
    print(out)
    return 0
