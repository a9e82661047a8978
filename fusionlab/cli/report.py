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
    p.add_argument("--example", action="store_true",
                   help="also (re)make the package example of this grid (fusionlab/ablate/examples/<name>: "
                        "results.csv, pairs.csv, samples, report.html, plots)")
    p.add_argument("--markdown", action="store_true",
                   help="print the evidence table (Δ to the reference row, 95%% intervals, verdicts) as Markdown "
                        "instead of rendering HTML")


def run(args) -> int:
    from ..ablate import render_report

    if args.markdown:
        from ..ablate import evidence, load_grid, read_pairs, read_results
        from ..ablate.demo import locate_results
        from ..ablate.grid import resolve_grid
        from ..ablate.report import evidence_markdown
        from ..ablate.results import RESULTS_FILE
        from ..ablate.stats import PAIRS_FILE

        grid = load_grid(resolve_grid(args.grid))
        folder, _ = locate_results(grid.name, args.runs, example_fallback=False)
        pairs = read_pairs(folder / PAIRS_FILE) if (folder / PAIRS_FILE).is_file() else None
        print(evidence_markdown(evidence(read_results(folder / RESULTS_FILE), pairs, list(grid.metrics))), end="")
        return 0
    if args.example:
        from ..ablate.demo import make_example

        print(make_example(args.grid, runs_dir=args.runs))
        return 0
    out = render_report(args.grid, runs_dir=args.runs, out=args.out, notebook=args.notebook,
                        show_code=args.show_code)
    print(out)
    return 0
