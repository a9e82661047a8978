"""Source of notebooks/06_ablations.ipynb (build with scripts/build_notebooks.py)."""

# %% [markdown]
# # 06 · Ablations: run a small grid and read its report
#
# Every table of the paper is an **ablation**: change one thing, keep the rest, compare.
# fusionlab describes each as a grid file in `ablations/` and runs it with papermill:
#
# ```
# ablations/<name>.yaml --expand--> one run per (row, seed) --papermill--> notebooks/run_experiment.ipynb
#   -> runs/<name>/<run id>/{run.ipynb, metrics.json, samples/, model.pt}   (resumable, run ids = hash of params)
#   -> runs/<name>/results.csv --> notebooks/ablation_report.ipynb --> report.html (table beside the paper's numbers)
# ```
#
# Here we run a *shrunken* copy of one grid (a few rows, one seed) from this notebook, then
# render and open its report. From a terminal the same is
# `fusionlab ablate ablations/<name>.yaml --preset ci` and `fusionlab report ablations/<name>.yaml`.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). FUSIONLAB_PRESET: ci (seconds per run) | laptop | full.
import os

preset = os.environ.get("FUSIONLAB_PRESET", "laptop")
ablation = "distillation_losses"  # any ablations/<name>.yaml
rows = None  # rows to run (labels or indices); None: by preset (ci: first and last row; else all)
seeds = None  # None: by preset (ci: [0]; else the grid's own seeds)
jobs = 1  # runs at a time (each is one papermill kernel)

# %%
# NBVAL_IGNORE_OUTPUT
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from fusionlab.ablate import load_grid, plan, shrink_grid
from fusionlab.presets import pick
from fusionlab.viz.walkthrough import run_dir, setup

setup()
grid_file = Path("../ablations") / f"{ablation}.yaml"  # notebooks run with notebooks/ as the folder
full_grid = load_grid(grid_file)
rows = rows if rows is not None else pick(ci=[0, -1], laptop=None, full=None, preset=preset)
seeds = seeds if seeds is not None else pick(ci=[0], laptop=None, full=None, preset=preset)
runs = run_dir("06_ablations", preset)
small = shrink_grid(grid_file, runs, preset, rows=rows, seeds=seeds)
grid = load_grid(small)
display(Markdown(f"**{grid.name}** - {grid.paper_table}\n\n{grid.description}"))
print(f"full grid: {len(full_grid.rows)} rows; running {len(grid.rows)} rows x seeds "
      f"{seeds or grid.seeds} in preset '{preset}' -> {runs / grid.name}")
plan(grid, preset, runs)

# %% [markdown]
# ## 1. Run the grid
#
# Each run executes `notebooks/run_experiment.ipynb` with papermill (one kernel per run,
# one CPU thread each), writes its folder and updates `results.csv`. A run that is already
# complete is skipped, so re-executing this cell after an interruption only runs what is
# missing. A failing run does not stop the grid: it appears with `status = failed` and the
# failing cell.

# %%
# NBVAL_IGNORE_OUTPUT
from fusionlab.ablate import run_grid

outcome = run_grid(small, preset=preset, runs_dir=runs, jobs=jobs, cpus_per_run=1, progress=False)
print(outcome.summary())
outcome.results[["label", "seed", "status", *grid.metrics, "run_id"]]

# %% [markdown]
# ## 2. The report
#
# `render_report` executes `notebooks/ablation_report.ipynb` for this grid with papermill and
# writes it as HTML next to the results: the paper-style table (measured mean +- std beside
# the paper's numbers), metric plots, the difference to the reference row, and the fused
# images of two runs side by side. The key parts are shown inline below; open the HTML for
# the whole report.

# %%
# NBVAL_IGNORE_OUTPUT
from fusionlab.ablate import paper_table, read_results, render_report

html = render_report(small, runs_dir=runs)
print("report:", html)
df = read_results(outcome.results_path)
paper_table(df, grid.metrics)

# %% [markdown]
# Absolute values depend on the data and training length (the `ci` preset trains on
# synthetic scenes for seconds): compare the **ordering and differences** of the rows with
# the paper's, not the numbers themselves.

# %%
# NBVAL_IGNORE_OUTPUT
import matplotlib.pyplot as plt

from fusionlab.ablate import compare_runs_figure, metric_plot

fig = metric_plot(df, grid.metrics, title=f"{grid.name} ({preset})")
plt.show()
fig = compare_runs_figure(df, runs / grid.name)
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
from IPython.display import FileLink, IFrame

try:  # a link Jupyter can serve only when the report lies under the notebook's folder
    rel = html.resolve().relative_to(Path.cwd().resolve())
    display(FileLink(str(rel), result_html_prefix="Open the full report: "))
    display(IFrame(str(rel), width="100%", height=480))
except ValueError:
    print(f"the report is at {html} (outside this folder: open it in a browser)")

# %% [markdown]
# ## 3. Your turn
#
# - set `rows = None` to run every row, `seeds = [0, 1, 2]` for error bars;
# - try another grid: `text_guidance`, `loss_components`, `fusion_modules`, `student_width`,
#   `text_prior_source` (see `ablations/`);
# - `jobs = 2` runs two kernels at once (the `ray` executor spreads runs over machines:
#   `fusionlab ablate --executor ray`).
