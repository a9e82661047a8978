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
# Here we run a *shrunken* copy of one grid (two rows, one seed, the `ci` training size
# whatever the notebook's preset, so it fits in a few minutes) from this notebook, then render
# and open its report. This teaches the **machinery**; 8 training steps on synthetic scenes
# cannot show which row is better. The measured results of the grids (several seeds,
# confidence intervals) are in [docs/ablations.md](../docs/ablations.md). From a terminal the same is
# `fusionlab ablate ablations/<name>.yaml --preset ci` and `fusionlab report ablations/<name>.yaml`.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). FUSIONLAB_PRESET: ci (seconds per run) | laptop | full.
import os

preset = os.environ.get("FUSIONLAB_PRESET", "laptop")
ablation = "distillation_losses"  # any ablations/<name>.yaml
rows = None  # rows to run (labels or indices); None: by preset (ci: first and last row; else all)
seeds = None  # None: by preset (ci: [0]; else the grid's own seeds)
jobs = 1  # runs at a time (each is one papermill kernel)
grid_preset = None  # training size of each run; None: ci (seconds per run) - 'laptop' takes ~10 min per run

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from fusionlab.ablate import load_grid, plan, shrink_grid
from fusionlab.presets import pick
from fusionlab.viz.walkthrough import run_dir, setup

setup()
grid_file = Path("../ablations") / f"{ablation}.yaml"  # notebooks run with notebooks/ as the folder
full_grid = load_grid(grid_file)
seeds = seeds if seeds is not None else pick(ci=[0], laptop=[0], full=None, preset=preset)
grid_preset = grid_preset or pick(ci="ci", laptop="ci", full="full", preset=preset)
rows = rows if rows is not None else pick(ci=[0, -1], laptop=[0, -1], full=None, preset=grid_preset)
runs = run_dir("06_ablations", preset)
small = shrink_grid(grid_file, runs, grid_preset, rows=rows, seeds=seeds)
grid = load_grid(small)
display(Markdown(f"**{grid.name}** - {grid.paper_table}\n\n{grid.description}"))
print(f"full grid: {len(full_grid.rows)} rows; running {len(grid.rows)} rows x seeds "
      f"{seeds or grid.seeds} in preset '{grid_preset}' -> {runs / grid.name}")
plan(grid, grid_preset, runs)

# %% [markdown]
# ## 1. Run the grid
#
# Each run executes `notebooks/run_experiment.ipynb` with papermill (one kernel per run,
# one CPU thread each), writes its folder and updates `results.csv`. A run that is already
# complete is skipped, so re-executing this cell after an interruption only runs what is
# missing. A failing run does not stop the grid: it appears with `status = failed` and the
# failing cell.

# %%
from fusionlab.ablate import run_grid

outcome = run_grid(small, preset=grid_preset, runs_dir=runs, jobs=jobs, cpus_per_run=1, progress=True)
print(outcome.summary())
display(outcome.results[["label", "seed", "status", *grid.metrics, "run_id"]])
assert (outcome.results["status"] == "ok").all(), "a run failed: see its row above"

# %% [markdown]
# ## 2. The report
#
# `render_report` executes `notebooks/ablation_report.ipynb` for this grid with papermill and
# writes it as HTML next to the results: the paper-style table (measured mean +- std beside
# the paper's numbers), metric plots, the difference to the reference row, and the fused
# images of two runs side by side. The key parts are shown inline below; open the HTML for
# the whole report.

# %%
from fusionlab.ablate import paper_table, read_results, render_report

html = render_report(small, runs_dir=runs)
print("report:", html)
df = read_results(outcome.results_path)
display(paper_table(df, grid.metrics))
assert Path(html).is_file()

# %% [markdown]
# Absolute values depend on the data and training length (the `ci` preset trains on
# synthetic scenes for seconds). With one seed there is no error bar, so **no difference
# between these rows is evidence**: after 8 steps the rows typically agree to 3 decimals.
# Compare orderings only with several seeds and a longer preset, as in docs/ablations.md.
#
# The table also prints the paper's numbers beside the measured ones: the paper's gap
# between these rows (e.g. its VIF column) is **not** reproduced by 8 steps, and is not
# expected to be; docs/ablations.md has the `laptop` measurement with intervals.
#
# In the plot below every panel's axis spans at least 4 % of the metric's value (its span is
# stated under each panel; `fusionlab.viz.plots.honest_limits`): an axis fitted to the data
# alone would stretch a difference of 1e-5 over the whole width and make noise look like a
# ranking. The image comparison under it shows the difference of two runs' fused images
# amplified 255x (title), so a white pixel there is a difference of one gray level.

# %%
import matplotlib.pyplot as plt

from fusionlab.ablate import compare_runs_figure, metric_plot

fig = metric_plot(df, grid.metrics, title=f"{grid.name} ({grid_preset}, one seed: no error bars)")
plt.show()
spread = df.groupby("label")[grid.metrics].mean().agg(lambda c: c.max() - c.min())
print("largest difference between the rows:", {m: f"{v:.1e}" for m, v in spread.items()})
fig = compare_runs_figure(df, runs / grid.name)
plt.show()

# %%
from IPython.display import FileLink, IFrame

try:  # a link Jupyter can serve only when the report lies under the notebook's folder
    rel = html.resolve().relative_to(Path.cwd().resolve())
    if os.environ.get("FUSIONLAB_RENDER") == "1":  # a rendered page (docs/notebooks) has no runs/ folder beside it
        print(f"the full report was written to notebooks/{rel} (run the notebook to get it)")
    else:
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
