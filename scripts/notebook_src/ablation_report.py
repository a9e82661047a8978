"""Source of notebooks/ablation_report.ipynb (build/sync with scripts/build_notebooks.py)."""

# %% [markdown] id="1bea5991"
# # Ablation report
#
# Reads `runs/<ablation>/results.csv` (written by `fusionlab ablate ablations/<ablation>.yaml`)
# and shows the ablation the way the paper does: the table with the **measured mean ± std
# over seeds beside the paper's numbers**, plots of every metric per variant with error
# bars, the difference of each variant to the reference row (measured vs paper), and a viewer
# comparing the fused images of any two runs.
#
# `fusionlab report ablations/<ablation>.yaml` renders this notebook to HTML. Change
# `ablation` below to look at another grid.

# %% id="93155bf1" tags=["parameters"]
# Parameters
ablation = "text_guidance"   # text_guidance | loss_components | fusion_modules | student_width | distillation_losses | text_prior_source
grid_file = None             # None: ../ablations/<ablation>.yaml
runs_dir = "../runs"         # where 'fusionlab ablate' wrote the runs
preset = None                # show only runs of this preset (None: all in results.csv)
interactive = True           # ipywidgets viewer (needs a live kernel; HTML exports show the static figure)
demo_fallback = True         # no results yet: show the bundled example of a ci run (clearly labelled)

# %% id="202a512e"
# %matplotlib inline
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from fusionlab.ablate import (RunCompare, compare_runs_figure, delta_plot, load_grid, metric_plot, paper_table,
                              rank_agreement, read_results, style_paper_table)
from fusionlab.ablate.demo import locate_results

grid = load_grid(grid_file or Path("../ablations") / f"{ablation}.yaml")
grid_dir, is_example = locate_results(grid.name, runs_dir, demo_fallback)
df = read_results(grid_dir / "results.csv")
if preset is not None:
    df = df[df["preset"] == preset]
metrics = [m for m in grid.metrics if m in df.columns]
counts = df["status"].value_counts().to_dict()
lines = [f"## {grid.name}: {grid.paper_table}", grid.description.strip(), "",
         f"**Results:** `{grid_dir / 'results.csv'}` — {len(df)} runs "
         f"({', '.join(f'{v} {k}' for k, v in counts.items())}), presets: {', '.join(sorted(df['preset'].astype(str).unique()))}, "
         f"seeds: {', '.join(map(str, sorted(df['seed'].unique())))}."]
if is_example:
    lines[:0] = ["> **Bundled example, not your results:** no `results.csv` was found under "
                 f"`{runs_dir}/{grid.name}/`, so this shows the example shipped with fusionlab — a real "
                 "`--preset ci` run (tiny synthetic data, seconds of CPU training per run). Its numbers show the "
                 "workbench working, not what the method achieves. Run "
                 f"`fusionlab ablate ablations/{grid.name}.yaml` to produce your own.", ""]
display(Markdown("\n".join(lines)))

# %% [markdown] id="837222b5"
# ## The table, in the paper's layout
# Each metric: measured mean ± std over seeds (the best in bold), and the paper's number (MSRS
# test set, from the paper's table; `–` where the paper has none). `seeds` counts the
# successful runs of the row.
# Absolute values depend on the data (the `ci` preset trains on synthetic scenes for
# seconds), so compare **orderings and differences**, not the absolute numbers.

# %% id="742ccb8a"
table = paper_table(df, metrics)
display(style_paper_table(table, df, metrics))  # best measured value per metric in bold
rho = rank_agreement(df, metrics)
if rho.notna().any():
    display(Markdown("Rank agreement with the paper across rows (Spearman ρ, 1 = same ordering): "
                     + ", ".join(f"{m} {v:+.2f}" for m, v in rho.items() if pd.notna(v))))

# %% id="ab86f471"
failed = df[df["status"] == "failed"]
pending = df[df["status"] == "pending"]
if len(failed):
    display(Markdown(f"**{len(failed)} failed runs** (their notebook `run.ipynb` in the run folder shows the failing cell):"))
    with pd.option_context("display.max_colwidth", None):
        display(failed[["label", "seed", "run_id", "error_cell", "error"]].reset_index(drop=True))
if len(pending):
    display(Markdown(f"{len(pending)} runs are still pending: rerun `fusionlab ablate` to finish the grid."))

# %% [markdown] id="438a2207"
# ## Metrics per variant
# Diamonds: mean over seeds, bars: ± 1 standard deviation, grey dots: the individual seeds.

# %% id="75885b54"
fig = metric_plot(df, metrics, title=f"{grid.name}: measured metrics per variant")

# %% [markdown] id="113b4d05"
# ## Difference to the reference row: does the paper's trend reproduce?
# Blue: measured difference to the reference row (mean ± std of the per-seed differences);
# red: the same difference in the paper. Same sign = same conclusion as the paper.

# %% id="ab0a819e"
fig = delta_plot(df, metrics)

# %% [markdown] id="39179388"
# ## Fused images of two runs side by side
# With a live kernel, pick any two runs (rows × seeds) and a sample; switch to *wipe* for a
# split view with a slider. Below it, the static comparison (reference row vs another row)
# that HTML exports show.

# %% id="b5d4f924"
if interactive:
    try:
        display(RunCompare(df, grid_dir))
    except ValueError as e:  # no run with fused samples
        print(e)
fig = compare_runs_figure(df, grid_dir)
if fig is None:
    print("fewer than two successful runs with fused samples: nothing to compare yet")
