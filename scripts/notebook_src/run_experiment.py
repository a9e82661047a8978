"""Source of notebooks/run_experiment.ipynb (build/sync with scripts/build_notebooks.py)."""

# %% [markdown] id="9439aff8"
# # One experiment run: train → evaluate → metrics
#
# This notebook is **one row of an ablation table**. `fusionlab ablate ablations/<name>.yaml`
# executes it once per run with [papermill](https://papermill.readthedocs.io), injecting the
# parameters below and an `out_dir` (`runs/<ablation>/<run id>/`); the results of all runs
# become `runs/<ablation>/results.csv` and the report notebook `ablation_report.ipynb`.
#
# To try one variant by hand: edit the parameters cell and run all cells. The run writes
# `metrics.json`, fused sample images, the checkpoint and a training log into `out_dir`.
# The preset (`FUSIONLAB_PRESET`: `ci` = seconds, `laptop` = minutes on a CPU, `full` = paper
# scale on a GPU) sets the size of data, model and training.

# %% id="1a31deab" tags=["parameters"]
# Parameters (papermill injects the values of a run in a cell right after this one)
from fusionlab.presets import get_preset

stage = "teacher"        # teacher | distill (distill trains the teacher, then the student)
model = None             # teacher model name (None: the preset's choice), see fusionlab.models.list_models()
student = None           # student model name (stage distill)
fusion = None            # scfm | concat_conv1x1 | unlearned_weight_attention | dynamic_weight_conv | multiscale_conv
width = None             # channel width of the trained network (student in stage distill)
text_prior = "oracle"    # none | rules | oracle | file | projector | constant | shuffled
caption_file = None      # captions JSON/CSV for text_prior = file
text_checkpoint = None   # trained projector for text_prior = projector (None: a cached default)
losses = None            # subset of ["int", "grad", "ssim", "color", "consistency"] (None: all)
distill_losses = None    # subset of ["base", "feat", "res"] (None: all)
preset = get_preset()    # ci | laptop | full ($FUSIONLAB_PRESET, default laptop)
seed = 0
data = "synthetic"       # "synthetic" or a dataset folder (ir/ + vi/)
eval_data = None         # evaluation data (None: held-out synthetic pairs / the preset's choice)
eval_pairs = None        # number of evaluation pairs (None: the preset's choice)
out_dir = None           # run folder (None: runs/manual/<stage>-<preset>-seed<seed> beside this notebook)

# %% id="44e71dcd"
from fusionlab.params import RunParams
from fusionlab.train import run_experiment

params = RunParams.collect(globals())  # the parameters above that are set (None = the library's default)
out_dir = out_dir or f"runs/manual/{stage}-{preset}-seed{seed}"
print("params:", params)
print("out_dir:", out_dir)

# %% [markdown] id="a1c321b8"
# ## Train and evaluate
# One call does everything (see `fusionlab.train.run_experiment`): build the data, the
# text prior and the model(s), train (stage `distill`: teacher first, then the student),
# evaluate on the evaluation pairs and write everything into `out_dir`.

# %% id="5b9c8be7"
metrics = run_experiment(params, out_dir)

# %% [markdown] id="4c422512"
# ## Result
# The metrics written to `metrics.json` (EN, VIF, Qabf as in the paper, and more) and the
# fused samples of the evaluation pairs.

# %% id="5c4d2c69"
from fusionlab.ablate import show_run

table, fig = show_run(out_dir)
display(table.round(4))
