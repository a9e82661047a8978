"""`fusionlab ablate GRID`: run an ablation grid (resumable), write results.csv."""
from __future__ import annotations

HELP = "run an ablation grid of notebook runs (resumable; local or Ray) and write results.csv"
DESCRIPTION = (
    "Expand an ablation grid (a YAML file, or the name of a built-in grid: distillation_losses, "
    "fusion_modules, loss_components, student_width, text_guidance, text_prior_source), "
    "execute the run notebook once per run with "
    "papermill into runs/<ablation>/<run id>/, skip runs already complete, record failures "
    "without stopping, and keep runs/<ablation>/results.csv up to date. Interrupt it at any "
    "time and start it again to finish the grid. Example: fusionlab ablate "
    "fusion_modules --preset ci --jobs 2")


def add_arguments(p) -> None:
    from ..presets import PRESETS

    p.add_argument("grid", help="grid file (my_grid.yaml) or built-in grid name (fusion_modules)")
    p.add_argument("--preset", choices=PRESETS, default=None,
                   help="run size (default: $FUSIONLAB_PRESET, else laptop)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local processes (default) or Ray tasks")
    p.add_argument("--jobs", "-j", type=int, default=1,
                   help="runs at a time, each in its own papermill process (ray: CPUs of the local instance); default 1")
    p.add_argument("--runs", default="runs", metavar="DIR", help="runs folder (default: runs)")
    p.add_argument("--notebook", default=None, metavar="PATH",
                   help="run notebook (default: notebooks/run_experiment.ipynb here, else the shipped one)")
    p.add_argument("--rows", nargs="+", default=None, metavar="ROW",
                   help="only these rows (labels or 0-based indices); results.csv still lists all runs")
    p.add_argument("--force", action="store_true", help="re-execute the selected runs even when complete")
    p.add_argument("--skip-failed", action="store_true", help="do not retry runs that failed before")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state, execute nothing")
    p.add_argument("--address", default=None, help="Ray cluster address (auto, ray://host:10001); default: local Ray")
    p.add_argument("--cpus-per-run", type=float, default=None, metavar="N",
                   help="CPUs per run (Ray resource and kernel thread cap); default 1 when runs are parallel")
    p.add_argument("--gpus-per-run", type=float, default=0, metavar="N", help="GPUs per run (Ray only)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="per-cell timeout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..ablate import load_grid, paper_table, plan, run_grid
    from ..errors import RunFailedError
    from ..presets import get_preset

    grid = load_grid(args.grid)
    preset = args.preset or get_preset()
    if args.dry_run:
        table = plan(grid, preset, args.runs)
        print(f"{grid.name} [{preset}]: {len(table)} runs in {args.runs}/{grid.name}/")
        print(table.to_string(index=False))
        return 0
    out = run_grid(grid, preset=preset, runs_dir=args.runs, executor=args.executor, jobs=args.jobs,
                   notebook=args.notebook, rows=args.rows, force=args.force, retry_failed=not args.skip_failed,
                   cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run, address=args.address,
                   timeout=args.timeout, progress=not args.no_progress)
    if out.n_ok:
        print(paper_table(out.results, grid.metrics).to_string())
    print(out.summary())
    failed = out.failed
    if len(failed):
        first = failed.iloc[0]
        where = f" at {first['error_cell']}" if first["error_cell"] else ""
        raise RunFailedError(f"{len(failed)} of {out.total} runs failed; first: {first['label']} seed {first['seed']}"
                             f"{where}: {first['error']} (notebook: {out.grid_dir / first['run_id'] / 'run.ipynb'})")
    return 0
