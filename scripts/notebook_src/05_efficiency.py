"""Source of notebooks/05_efficiency.ipynb (build with scripts/build_notebooks.py)."""

# %% [markdown]
# # 05 · Efficiency: parameters, FLOPs and latency
#
# The reason to distil: the student should be much cheaper. How much cheaper depends on
# what you count. This notebook measures the real-size networks (random weights: cost does
# not depend on training) side by side in one process, with latency repeats interleaved
# (teacher, student, teacher, ...) so that machine noise hits all models alike.
#
# Conventions: FLOPs from `torch.utils.flop_counter` (a multiply-add = 2 FLOPs); GMACs =
# GFLOPs / 2, which is what fusion papers usually print as "FLOPs" (thop). Latency = median
# wall time of one forward pass of one pair on this CPU.
#
# Paper figures for reference: teacher 40.3 M parameters (+151 M frozen CLIP), student 4.1 M
# (10.9 %); the public reference code on a 2-thread CPU at 128x128: teacher 2.72 s, student
# 1.12 s per pair - only **2.4x** faster, although the paper claims "10 % of the inference
# time" (measured on a GPU).

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). FUSIONLAB_PRESET: ci (seconds) | laptop | full.
import os

preset = os.environ.get("FUSIONLAB_PRESET", "laptop")
size = None  # (H, W) of the profiled pair; None: by preset (ci 64x64, laptop 128x128, full 480x640)
repeats = None  # timed forwards per model; None: by preset
threads = None  # torch threads while timing; None: by preset (ci 1, else torch's default)

# %%
# NBVAL_IGNORE_OUTPUT
import matplotlib.pyplot as plt
import pandas as pd
import torch

from fusionlab.models import count_parameters, create_model, list_models, model_config
from fusionlab.models.profile import count_flops, profile_models, rows_to_dicts
from fusionlab.presets import pick
from fusionlab.viz.walkthrough import setup

setup()
size = tuple(size or pick(ci=(64, 64), laptop=(128, 128), full=(480, 640), preset=preset))
repeats = repeats or pick(ci=1, laptop=5, full=5, preset=preset)
threads = threads or pick(ci=1, laptop=None, full=None, preset=preset)
names = pick(ci=["dtpf_teacher", "dtpf_student"],
             laptop=["dtpf_teacher", "dtpf_student_w48", "dtpf_student_w32", "dtpf_student"],
             full=["dtpf_teacher", "dtpf_student_w48", "dtpf_student_w32", "dtpf_student"], preset=preset)
print(f"models {names}; input {size[0]}x{size[1]}; {repeats} timed runs each; "
      f"{threads or torch.get_num_threads()} threads; {os.cpu_count()} CPUs")

# %% [markdown]
# ## 1. The variants
#
# `fusionlab.models.list_models()`; all are the same FusionNet with different configs.

# %%
print(list_models())

# %%
# NBVAL_IGNORE_OUTPUT
configs = pd.DataFrame({n: model_config(n).to_dict() for n in ["dtpf_teacher", "dtpf_student_w48",
                                                                       "dtpf_student_w32", "dtpf_student"]})
configs.loc[["dim", "blocks", "refinement", "ffn_factor", "text_dim", "fusion"]]

# %% [markdown]
# ## 2. Parameters, FLOPs, latency: teacher vs student

# %%
# NBVAL_IGNORE_OUTPUT
rows = profile_models(names, size=size, repeats=repeats, warmup=1, threads=threads, memory=preset != "ci")
table = pd.DataFrame(rows_to_dicts(rows)).set_index("model")
ref = table.loc["dtpf_teacher"]
for col in ["params_m", "gflops", "latency_s"]:
    table[f"{col} / teacher"] = (table[col] / ref[col]).round(3)
table

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 2.8))
for ax, col, label in zip(axes, ["params_m", "gmacs", "latency_s"],
                          ["parameters (M)", f"GMACs at {size[0]}x{size[1]}", "median latency (s)"]):
    table[col].plot.barh(ax=ax, color="tab:blue")
    ax.set_xlabel(label), ax.set_ylabel("")
    ax.invert_yaxis()
fig.tight_layout()
plt.show()

# %% [markdown]
# Parameters and FLOPs shrink ~10x, latency much less: on a CPU, a small network is limited
# by memory traffic and per-layer overheads (window partitioning, layer norms, many small
# kernels), not by arithmetic. The student's advantage grows with image size and on GPUs.
#
# ## 3. Width: the student family (Table 6)
#
# Parameters and FLOPs of the student at several widths (level-1 channels; levels have
# 1x, 2x, 4x, 8x). Both grow roughly with width squared.

# %%
# NBVAL_IGNORE_OUTPUT
widths = pick(ci=[8, 16], laptop=[8, 16, 24, 32, 48], full=[8, 16, 24, 32, 48], preset=preset)
fsize = (32, 32) if preset == "ci" else size
wrows = []
for w in widths:
    m = create_model("dtpf_student", width=w).eval()
    x = (torch.rand(1, 1, *fsize), torch.rand(1, 1, *fsize))
    wrows.append({"width": w, "params_m": count_parameters(m) / 1e6,
                  f"GFLOPs at {fsize[0]}x{fsize[1]}": count_flops(m, *x) / 1e9})
wt = pd.DataFrame(wrows).set_index("width")
ax = wt.plot(subplots=True, layout=(1, 2), figsize=(9, 2.6), marker="o", legend=False, title=list(wt.columns))
plt.tight_layout()
plt.show()
wt.round(3)

# %% [markdown]
# ## 4. Latency vs image size
#
# Teacher and student at growing sizes (interleaved repeats). The ratio tells you what the
# distillation buys on this machine for the images you care about.

# %%
# NBVAL_IGNORE_OUTPUT
sizes = pick(ci=[32, 48], laptop=[64, 128, 256], full=[128, 256, 512], preset=preset)
lat = []
for s in sizes:
    r = profile_models(["dtpf_teacher", "dtpf_student"], size=(s, s), repeats=max(1, repeats // 2), warmup=1,
                       threads=threads, flops=False, memory=False)
    lat += [{"size": s, "model": x.model, "latency_s": x.latency_s} for x in r]
lat = pd.DataFrame(lat).pivot(index="size", columns="model", values="latency_s")
lat["teacher / student"] = (lat["dtpf_teacher"] / lat["dtpf_student"]).round(2)
ax = lat[["dtpf_teacher", "dtpf_student"]].plot(marker="o", logx=True, logy=True, figsize=(5, 3))
ax.set_xlabel("image side (px)"), ax.set_ylabel("latency (s)")
plt.show()
lat

# %% [markdown]
# ## 5. The text side
#
# At test time the teacher also needs a caption and a text embedding per image. The paper's
# captioner is Qwen2-VL-7B (seconds per image on a GPU) and its encoder CLIP ViT-B/32's text
# tower (63 M parameters). fusionlab's offline encoder is MiniLM (22.7 M); the student needs
# neither.

# %%
# NBVAL_IGNORE_OUTPUT
import time

from fusionlab.text import build_text_encoder

enc = build_text_encoder("minilm")
enc.encode(["warm-up"])
t0 = time.perf_counter()
enc.encode([f"Event Type: low_light\nDescription: variant {i}" for i in range(8)])
per_caption = (time.perf_counter() - t0) / 8
print(f"MiniLM text encoder: {per_caption * 1000:.1f} ms per caption (batch of 8) on this CPU")
