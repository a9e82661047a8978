"""Source of notebooks/ablation_report.ipynb (build/sync with scripts/build_notebooks.py)."""

# %% [markdown] id="1bea5991"
# # Ablation report
#
# Reads `runs/<ablation>/results.csv` and `pairs.csv` (written by `fusionlab ablate
# ablations/<ablation>.yaml`) and shows the ablation as evidence: the table with the
# **measured mean ± std over seeds beside the paper's numbers**, each row on clean and on
# degraded test inputs, the **paired difference of each row to the reference row with a 95 %
# bootstrap interval** over (seed × test pair) and a verdict against the paper's direction,
# plots of every metric per variant, and a viewer comparing the fused images of any two runs.
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
demo_fallback = True         # no results yet: show the bundled example (a laptop run, clearly labelled)

# %% id="202a512e"
# %matplotlib inline
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from fusionlab.ablate import (RunCompare, compare_runs_figure, condition_table, delta_plot, evidence, load_grid,
                              metric_plot, paper_table, read_pairs, read_results, reference_label, style_paper_table)
from fusionlab.ablate.demo import locate_results
from fusionlab.ablate.stats import PAIRS_FILE, detectable_effect, format_evidence

grid = load_grid(grid_file or Path("../ablations") / f"{ablation}.yaml")
grid_dir, is_example = locate_results(grid.name, runs_dir, demo_fallback)
df = read_results(grid_dir / "results.csv")
pairs = read_pairs(grid_dir / PAIRS_FILE)  # per test pair x condition (None for older grids)
if preset is not None:
    df = df[df["preset"] == preset]
    if pairs is not None:
        pairs = pairs[pairs["run_id"].isin(df["run_id"])]
metrics = [m for m in grid.metrics if m in df.columns]
counts = df["status"].value_counts().to_dict()
lines = [f"## {grid.name}: {grid.paper_table}", grid.description.strip(), "",
         f"**Results:** `{grid_dir / 'results.csv'}` — {len(df)} runs "
         f"({', '.join(f'{v} {k}' for k, v in counts.items())}), presets: {', '.join(sorted(df['preset'].astype(str).unique()))}, "
         f"seeds: {', '.join(map(str, sorted(df['seed'].unique())))}."]
if is_example:
    presets = ", ".join(sorted(df["preset"].astype(str).unique()))
    scale = ("tiny synthetic data, seconds of CPU training per run: it shows the workbench working, not what "
             "the method achieves" if presets == "ci" else "a CPU-scale replication: small networks, minutes of "
             "training on real pairs; read the intervals below before any conclusion")
    lines[:0] = ["> **Bundled example, not your results:** no `results.csv` was found under "
                 f"`{runs_dir}/{grid.name}/`, so this shows the example shipped with fusionlab — a real "
                 f"`--preset {presets}` run ({scale}). Run "
                 f"`fusionlab ablate ablations/{grid.name}.yaml` to produce your own.", ""]
display(Markdown("\n".join(lines)))

# %% [markdown] id="837222b5"
# ## The table, in the paper's layout
# Each metric on the **clean** test pairs: measured mean ± std over seeds, and the paper's
# number (MSRS test set, from the paper's table; `–` where the paper has none). A value is in
# bold only when its row is clearly best: the best mean AND a paired 95 % interval against
# every other row that excludes 0 (no bold = the rows are not separable at this scale).
# `seeds` counts the successful runs of the row. Absolute values depend on the data and the
# scale of training, so compare **differences with their intervals** (next section).

# %% id="742ccb8a"
table = paper_table(df, metrics)
display(style_paper_table(table, df, metrics, pairs))  # bold only where a row is clearly best

# %% [markdown] id="938e4a0f"
# ## Evidence: difference to the reference row, with 95 % intervals
# For every row and metric: the mean ± std over seeds, the difference to the reference row
# paired by (seed, test pair), its 95 % bootstrap interval (seeds and test pairs resampled
# independently, 2000 draws), the paper's difference (clean only: the paper reports no
# degraded numbers) and the verdict: **agrees** / **opposite** (the interval excludes 0 and
# has the paper's sign / the other sign), **inconclusive** (the interval contains 0),
# **no paper value**. `degraded` = the mean over the four degraded versions of each test pair.

# %% id="87536f3c"
ref = reference_label(df)
ev = evidence(df, pairs, metrics, ref)
with pd.option_context("display.max_colwidth", None, "display.max_rows", 500):
    for cond, part in format_evidence(ev).groupby("condition", sort=False):
        display(Markdown(f"**{'clean test pairs' if cond == 'normal' else 'degraded test pairs (mean of 4 degradations)'}**"
                         f" — reference: *{ref}*"))
        display(part.drop(columns="condition").set_index(["variant", "metric"]))
half = detectable_effect(ev)
if len(half):
    display(Markdown("**Smallest effect this preset can detect** (median half-width of the intervals): "
                     + "; ".join(f"{'clean' if r.condition == 'normal' else r.condition} {r.metric} ±{r.half_width:.3f}"
                                 for r in half.itertuples())
                     + ". Differences smaller than that are inside the noise of this scale."))
if pairs is None:
    display(Markdown("_No `pairs.csv` for these results: intervals use the run means (seeds only), clean only._"))

# %% [markdown] id="3af15556"
# ## Clean and degraded test inputs
# Each row on the clean test pairs and on the same pairs under each degradation (the network
# sees the degraded pair, its text prior captions the degraded pair, the metrics compare the
# fusion with the clean sources): mean ± std over seeds.

# %% id="133d15ae"
if pairs is not None:
    for m in metrics:
        display(Markdown(f"**{m}**"))
        display(condition_table(df, pairs, m))
else:
    print("no per-pair results (pairs.csv): rerun the grid with this fusionlab version for degraded columns")

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
# ## Difference to the reference row, per seed
# Blue: measured difference to the reference row (mean ± std of the per-seed differences,
# clean test pairs); red: the same difference in the paper. The intervals and verdicts above
# are the test; this plot shows the spread.

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
