"""Source of notebooks/04_distillation.ipynb (build with scripts/build_notebooks.py)."""

# %% [markdown]
# # 04 · Distillation: a small student learns from the text-guided teacher
#
# The teacher needs a caption per image (an MLLM call), a text encoder and ~40 M parameters.
# DTPF distils it into a ~4 M-parameter **student with no text input** that should keep the
# teacher's degradation awareness. The student is trained with
#
# ```
# L = a1 * L_base + a2 * L_feat + a3 * L_res          (a1, a2, a3) = (1.0, 0.1, 1.0)
# L_base = the fusion losses of the student's output (fixed weights: no caption to pick them)
# L_res  = |I_teacher - I_student|_1                    imitate the teacher's image
# L_feat = sum_l |Down_l(F_t^l) - F_s^l|_1             imitate its features, 4 levels;
#          Down_l = a LEARNED 1x1 conv, teacher channels -> student channels
# ```
#
# (The public reference code never put the `Down_l` adapters in its optimizer, so they stayed
# random; fusionlab trains them.) Here: train a teacher, distil it, watch the three losses,
# compare with a student trained on L_base alone (Table 7's first row), then compare teacher
# and student images and features.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). FUSIONLAB_PRESET: ci (seconds) | laptop | full.
import os

preset = os.environ.get("FUSIONLAB_PRESET", "laptop")
data_root = None  # evaluation pairs: None = real shared subset if present, else synthetic; or a folder
teacher_checkpoint = None  # a trained teacher (model.pt); None: train a small one here
teacher_steps = None  # None: the preset's (fusionlab/presets.py: ci 8, laptop 300)
steps = None  # distillation steps; None: the preset's
seed = 0

# %%
# NBVAL_IGNORE_OUTPUT
import matplotlib.pyplot as plt
import pandas as pd
import torch

from fusionlab.models import count_parameters, load_checkpoint
from fusionlab.presets import pick, preset_settings
from fusionlab.train import Trainer, load_config
from fusionlab.viz.walkthrough import choose_data, load_pairs, run_dir, setup

setup(seed)
teacher_steps = teacher_steps or preset_settings(preset).steps
steps = steps or preset_settings(preset).distill_steps
data = choose_data(data_root)
print(data)
pairs = load_pairs(data, n=pick(ci=2, laptop=4, full=8, preset=preset), max_side=pick(ci=96, laptop=256, full=320,
                   preset=preset), size=(96, 128))
runs = run_dir("04_distillation", preset)

# %% [markdown]
# ## 1. The teacher
#
# Either a checkpoint you pass (e.g. from `fusionlab train --config teacher_laptop`) or a
# small text-guided teacher trained here with oracle captions (see notebook 03).

# %%
# NBVAL_IGNORE_OUTPUT
if teacher_checkpoint:
    teacher, info = load_checkpoint(teacher_checkpoint)
    teacher.train_metadata = info.get("metadata") or {}  # the trainer rebuilds its text prior from this
    print(f"teacher {info['model']} from {teacher_checkpoint}")
else:
    tcfg = load_config(pick(ci="teacher_ci", laptop="teacher_laptop", full="teacher", preset=preset))
    t_trainer = Trainer(tcfg.replace(steps=teacher_steps, out_dir=str(runs / "teacher"), progress=False, seed=seed),
                        overwrite=True)
    summary = t_trainer.fit()
    teacher, info = load_checkpoint(summary["model"])
    teacher.train_metadata = info.get("metadata") or {}
    print(f"trained teacher: {summary['steps']} steps in {summary['seconds']:.0f} s -> {summary['model']}")
print(f"teacher: {count_parameters(teacher):,} parameters, text_dim {teacher.config.text_dim}, "
      f"feature channels {teacher.feature_channels}")

# %% [markdown]
# ## 2. Distil, and watch L_base, L_res, L_feat
#
# Two students with the same architecture, data and seed: one distilled with all three
# terms, one trained on L_base alone (no teacher signal at all).

# %%
# NBVAL_IGNORE_OUTPUT
dcfg = load_config(pick(ci="distill_ci", laptop="distill_laptop", full="distill", preset=preset))
variants = {"distilled (base+feat+res)": None, "L_base only": ["base"]}
students, logs = {}, {}
for name, losses in variants.items():
    sub = "full" if losses is None else "base_only"
    cfg = dcfg.replace(steps=steps, out_dir=str(runs / sub), progress=False, seed=seed, distill_losses=losses)
    students[name] = Trainer(cfg, overwrite=True, teacher=teacher)
    s = students[name].fit()
    logs[name] = pd.read_csv(runs / sub / "train_log.csv")
    print(f"{name}: {s['steps']} steps in {s['seconds']:.0f} s; validation {({k: round(v, 3) for k, v in s['val'].items()})}")

full_log = logs["distilled (base+feat+res)"]
tr = full_log[full_log["kind"] == "train"]
fig, axes = plt.subplots(1, 4, figsize=(13, 2.6))
for ax, col in zip(axes, ["l_base", "l_res", "l_feat"]):
    ax.plot(tr["step"], tr[col], marker="o")
    ax.set_title(col.replace("l_", "L_") + " (weighted)"), ax.set_xlabel("step")
for name, log in logs.items():
    v = log[log["kind"] == "val"]
    axes[3].plot(v["step"], v["VIF"], marker="o", label=name)
axes[3].set_title("validation VIF"), axes[3].set_xlabel("step"), axes[3].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Teacher vs students, per degradation
#
# The teacher reads the rules captioner's caption of each degraded pair (what it would get
# without an MLLM); the students see only pixels.

# %%
# NBVAL_IGNORE_OUTPUT
from fusionlab.text import build_text_prior
from fusionlab.train import model_fuser
from fusionlab.viz.walkthrough import degraded_items, score_fusers

rules_prior = build_text_prior("rules", text_dim=teacher.config.text_dim, seed=seed) if teacher.config.text_dim else None
fusers = {"teacher (+ rules caption)": model_fuser(teacher, rules_prior),
          **{name: model_fuser(t.model) for name, t in students.items()}}
items = degraded_items(pairs, seed=seed + 1)
scores = score_fusers(fusers, items)
display(scores.groupby("fuser", sort=False)[["EN", "VIF", "Qabf", "SSIM"]].mean().round(3))
scores.pivot(index="label", columns="fuser", values="VIF").round(3)

# %% [markdown]
# ## 4. Features: does the student think like the teacher?
#
# Per level: the teacher's features (channel-mean |activation|), the same after the learned
# 1x1 adapter `Down_l` (mapped to the student's channel count), and the student's. The
# number is the mean per-pixel cosine between `Down_l(F_t)` and `F_s`, the quantity the
# normalised L_feat pulls towards 1.

# %%
# NBVAL_IGNORE_OUTPUT
from fusionlab.viz.walkthrough import compare_features, image_grid

it = next(i for i in items if i["label"] == "low_light")
text = rules_prior({"ir": it["ir"], "vi": it["vi"], "names": [it["name"]]}) if rules_prior else None
full = students["distilled (base+feat+res)"]
levels = compare_features(teacher, full.model, it["ir"], it["vi"], text, full.criterion.adapters)
image_grid([[lv["teacher"] for lv in levels], [lv["adapted"] for lv in levels], [lv["student"] for lv in levels]],
           row_titles=["teacher |F_t|", "adapted |Down(F_t)|", "student |F_s|"],
           col_titles=[f"feature {i + 1}: {lv['student'].shape[1]}x{lv['student'].shape[0]}, "
                       f"{lv['channels'][0]} -> {lv['channels'][1]} ch\ncos {lv['cosine']:.2f}" for i, lv in enumerate(levels)], size=2.0, cmap="viridis")
plt.show()

# %% [markdown]
# ## 5. Look at the images
#
# Pick an image and a model: the teacher (with the rules caption), the distilled student, the
# L_base-only student, and the pixel max. The comparison shows the *clean* evaluation pairs.

# %%
# NBVAL_IGNORE_OUTPUT
from fusionlab.demo import baseline_fusions
from fusionlab.models import fuse_pair
from fusionlab.viz.compare import FusionExplorer, show


def teacher_rgb(ir, vi):
    t = rules_prior({"ir": ir, "vi": vi, "names": ["x"]}) if rules_prior else None
    return fuse_pair(teacher, ir, vi, text=t)


methods = {"teacher (+ rules caption)": teacher_rgb, **{name: t.model for name, t in students.items()},
           "max (pixel)": lambda ir, vi: baseline_fusions(ir, vi)["max"]}
show(FusionExplorer(pairs, methods, max_side=pick(ci=160, laptop=480, full=640, preset=preset)))

# %% [markdown]
# ## 6. What was gained
#
# Same image, a fraction of the parameters and no captioner/text encoder at test time.
# Notebook 05 measures what that buys in FLOPs and CPU latency at the paper's sizes.

# %%
# NBVAL_IGNORE_OUTPUT
pd.DataFrame({"parameters": {"teacher": count_parameters(teacher),
                             **{name: count_parameters(t.model) for name, t in students.items()}},
              "needs text at test time": {"teacher": teacher.config.text_dim is not None,
                                          **{name: False for name in students}}})
