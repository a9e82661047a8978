"""Source of notebooks/02_metrics_explained.ipynb (build with scripts/build_notebooks.py)."""

# %% [markdown]
# # 02 · The fusion metrics, explained
#
# There is no ground-truth fused image, so papers score a fusion F against its sources IR
# and VI with nine numbers. This notebook computes them on three simple fusions of one pair -
# the pixel **mean**, the pixel **max**, and the **visible image itself** - and shows the
# maps behind each number, then why two papers can print different values for the same
# image (conventions), and how some metrics can be gamed.
#
# | metric | measures | from | note |
# |---|---|---|---|
# | EN | entropy of F's 256-bin histogram (bits) | F only | rewards noise |
# | SD | standard deviation of F (contrast) | F only | rewards noise |
# | SF | spatial frequency: RMS of first differences | F only | rewards noise |
# | AG | average gradient (sharpness) | F only | rewards noise |
# | MI | mutual information MI(F, IR) + MI(F, VI) | F, IR, VI | nats or bits! |
# | SCD | corr(F - VI, IR) + corr(F - IR, VI) | F, IR, VI | undefined if F equals a source |
# | VIF | visual information fidelity, 4 scales, VIF(IR, F) + VIF(VI, F) | F, IR, VI | DTPF's headline metric |
# | Qabf | Sobel edge preservation of IR and VI in F, weighted by edge strength | F, IR, VI | in [0, 1] |
# | SSIM | SSIM(F, IR) + SSIM(F, VI) | F, IR, VI | data range 2 vs 255! |
# | MSE | mean squared difference to each source, averaged: (MSE(F, IR) + MSE(F, VI)) / 2 | F, IR, VI | **lower is better** |
# | CC | correlation coefficient with each source, averaged: (corr(F, IR) + corr(F, VI)) / 2 | F, IR, VI | in [-1, 1] |
# | PSNR | 10 log10(peak^2 / MSE) in dB (peak = max(F) here, 255 in MATLAB) | F, IR, VI | just MSE on a log scale |
#
# **Higher is better for all of them except MSE** (lower is better; PSNR is MSE turned
# around, so higher PSNR = lower MSE). The Nabf artefact measure some papers add (the noise
# a fusion introduces) is lower-is-better too. All take gray images on 0..255, as the papers'
# evaluator (CDDFuse `utils/Evaluator.py`) reads 8-bit files. The first nine are the
# headline metrics; MSE, CC and PSNR get their own section (8).

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). FUSIONLAB_PRESET: ci (seconds) | laptop | full.
import os

preset = os.environ.get("FUSIONLAB_PRESET", "laptop")
data_root = None  # None: the shared reference pair (MSRS 00016N) if present, else synthetic; or a folder
seed = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from fusionlab.metrics import compute_metrics, to_metric_scale
from fusionlab.presets import pick
from fusionlab.viz.walkthrough import choose_data, find_shared_data, image_grid, load_pairs, setup

setup(seed)
max_side = pick(ci=160, laptop=None, full=None, preset=preset)
shared = find_shared_data()
if data_root is None and shared is not None:
    data = choose_data("textif_samples")  # holds 00016N, the pair of the reference values
    pair = load_pairs(data, n=1, max_side=max_side, names=["00016N"])[0]
else:
    data = choose_data(data_root)
    pair = load_pairs(data, n=1, max_side=max_side, size=(120, 160))[0]
print(data)
print(f"pair {pair['name']}: {tuple(pair['ir'].shape[-2:])}")

# the three fusions, on the metric scale (gray 0..255, integers like an 8-bit file)
ir, vi = to_metric_scale(pair["ir"]), to_metric_scale(pair["vi"])
fusions = {"mean": torch.round((ir + vi) / 2), "max": torch.maximum(ir, vi), "VI": vi.clone()}


def scores(fusions, convention="cddfuse"):
    """One row per fusion, one column per metric."""
    return pd.DataFrame({k: {m: float(v[0]) for m, v in compute_metrics(ir, vi, f, convention=convention).items()}
                         for k, f in fusions.items()}).T


table = scores(fusions)
display(table.round(3))
vi_wins = [m for m in ["EN", "MI", "VIF", "SSIM"] if table.loc["VI", m] > table.loc["max", m]]
mean_worst = [m for m in ["EN", "SD", "SF", "AG"] if table.loc["mean", m] == table[m].min()]
print(f"VI alone beats the max fusion on: {', '.join(vi_wins) or 'none'} (of EN, MI, VIF, SSIM); "
      f"the mean fusion is worst on: {', '.join(mean_worst) or 'none'} (of EN, SD, SF, AG)")

# %% [markdown]
# Already a surprise (the line printed under the table says what holds for this pair): on
# MSRS 00016N (the pair used when the shared data are present) the visible image alone
# scores higher than the max fusion on EN, MI, VIF and SSIM, although it ignores every warm
# target of IR; and the mean fusion has the worst EN, SD and AG (not SF: averaging two
# images with different edges creates new small differences). The pictures below show why.
#
# ## 1. EN and SD: the histogram of F
#
# EN is the entropy of the gray-level histogram (how many gray levels are used, how evenly);
# SD its spread. Neither looks at IR or VI: a fusion that *adds* contrast or noise gains.

# %%
fig, ax = plt.subplots(figsize=(7, 2.6))
for name, f in fusions.items():
    ax.hist(f.flatten().numpy(), bins=64, range=(0, 255), histtype="step", lw=1.5,
            label=f"{name}: EN {table.loc[name, 'EN']:.2f}, SD {table.loc[name, 'SD']:.1f}")
ax.set_xlabel("gray level"), ax.set_ylabel("pixels"), ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 2. SF and AG: gradients of F
#
# SF is the RMS of horizontal and vertical first differences, AG the mean gradient
# magnitude. The maps are the per-pixel gradient strength AG averages: the max fusion keeps
# the strong edges of both images (warm people from IR, texture from VI).

# %%
from fusionlab.viz.metric_maps import gradient_maps_of

grads = {k: gradient_maps_of(f) for k, f in fusions.items()}
vmax = max(float(np.percentile(g, 99)) for g in grads.values())
fig, axes = plt.subplots(1, 3, figsize=(10, 2.6))
for ax, (k, g) in zip(axes, grads.items()):
    im = ax.imshow(g, cmap="magma", vmin=0, vmax=vmax)
    ax.set_title(f"{k}: AG {table.loc[k, 'AG']:.2f}  SF {table.loc[k, 'SF']:.2f}"), ax.axis("off")
fig.colorbar(im, ax=axes, fraction=0.02)
plt.show()

# %% [markdown]
# ## 3. MI: joint histograms
#
# MI(F, S) is large when knowing F's gray level tells you S's gray level. The joint histogram
# of (S, F) is then concentrated on a curve. The visible image has MI(F, VI) = entropy of VI,
# the largest possible - that is why "VI as fusion" wins MI while ignoring IR entirely.

# %%
from fusionlab.metrics import joint_histogram

fig, axes = plt.subplots(1, 4, figsize=(11, 2.8))
for ax, (k, src, sname) in zip(axes, [("max", ir, "IR"), ("max", vi, "VI"), ("VI", ir, "IR"), ("mean", vi, "VI")]):
    jh = joint_histogram(fusions[k], src)[0].numpy()
    ax.imshow(np.log1p(jh), origin="lower", cmap="viridis")
    ax.set_xlabel(f"{sname} gray level"), ax.set_ylabel(f"F = {k}"), ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(f"F={k} vs {sname}")
fig.suptitle("joint histograms, colour = log(1 + pixel count); axes 0..255", fontsize=9)
plt.show()

# %% [markdown]
# ## 4. SCD: what F adds beyond each source
#
# SCD correlates F - VI (what F took beyond VI) with IR, and F - IR with VI. For F = VI the
# first difference is zero and SCD is undefined (NaN in the table).

# %%
f = fusions["max"]
image_grid([[(f - vi)[0, 0].numpy(), ir[0] / 255, (f - ir)[0, 0].numpy(), vi[0] / 255]],
           col_titles=["F - VI (F = max)", "IR", "F - IR (F = max)", "VI"], size=2.3, cmap="coolwarm")
plt.show()

# %% [markdown]
# ## 5. Qabf: are the sources' edges preserved?
#
# Sobel gives each pixel an edge strength g and orientation a, in IR, VI and F. For each
# source, Q_SF in [0, 1] says how much of that edge (strength and orientation) survives in
# F; Qabf is the average of Q_IR,F and Q_VI,F weighted by the source edge strengths, so
# strong edges count most.

# %%
from fusionlab.viz.metric_maps import qabf_maps

q = qabf_maps(fusions["max"], ir, vi)
fig = image_grid([[q["g_ir"], q["g_vi"], q["g_f"]], [q["a_ir"], q["a_vi"], q["a_f"]],
                  [q["q_ir"], q["q_vi"], (q["q_ir"] * q["g_ir"] + q["q_vi"] * q["g_vi"]) / (q["g_ir"] + q["g_vi"] + 1e-9)]],
                 row_titles=["edge strength g", "orientation a (rad)", "preservation Q"],
                 col_titles=[["IR", "VI", "F = max"], ["IR", "VI", "F = max"],
                             ["Q(IR -> F)", "Q(VI -> F)", f"weighted: Qabf {table.loc['max', 'Qabf']:.3f}"]],
                 size=2.1, cmap="magma")
plt.show()

# %% [markdown]
# ## 6. VIF: information that survives, at four scales
#
# VIF models each source as a natural image seen through a noisy channel
# (sigma_n^2 = 2 on 0..255). At each of 4 scales (Gaussian windows 17, 9, 5, 3; images
# low-passed and halved between scales) it measures per pixel the information the source
# carries (den) and the part of it that survives in F (num). VIF(S, F) = sum num / sum den,
# and the fusion VIF adds VIF(IR, F) + VIF(VI, F). F with *more* local contrast than S gives
# VIF(S, F) > 1: VIF rewards contrast enhancement.

# %%
from tqdm.auto import tqdm

from fusionlab.viz.metric_maps import vif_scale_maps

maps_by_source = {src: vif_scale_maps(s_img, fusions["max"])
                  for src, s_img in tqdm({"IR": ir, "VI": vi}.items(), desc="VIF maps per source")}
sm = maps_by_source["VI"]
fig = image_grid([[s["ref"] for s in sm], [s["den"] for s in sm], [s["num"] for s in sm]],
                 row_titles=["VI at scale", "info in VI (den)", "survives in F (num)"],
                 col_titles=[f"scale {i + 1}: {s['ref'].shape[1]}x{s['ref'].shape[0]}" for i, s in enumerate(sm)],
                 size=2.0, cmap="viridis")
plt.show()
per_scale = pd.DataFrame({f"VIF({src}, F)": [s["num_sum"] / sum(t["den_sum"] for t in m) for s in m]
                          for src, m in maps_by_source.items()},
                         index=[f"scale {i}" for i in range(1, 5)])
ax = per_scale.plot.bar(figsize=(5, 2.4), title="share of VIF per scale (F = max)")
ax.set_ylabel("VIF contribution (sums to VIF)")
plt.show()
print(per_scale.sum().round(3).to_dict(), "sum =", round(float(per_scale.sum().sum()), 3))

# %% [markdown]
# ## 7. SSIM: structure per window
#
# SSIM compares local means, contrasts and structure in 7x7 windows. The papers' evaluator
# uses scikit-image's old default `data_range = 2` for 0..255 images, which makes the
# stabilising constants ~0: their "SSIM" is almost pure structure correlation.

# %%
from fusionlab.viz.metric_maps import ssim_maps

sm_max = ssim_maps(fusions["max"], ir, vi)
image_grid([[sm_max["ir"], sm_max["vi"]]], col_titles=[f"SSIM(F=max, IR): mean {sm_max['ir'].mean():.3f}",
                                                      f"SSIM(F=max, VI): mean {sm_max['vi'].mean():.3f}"],
           size=2.6, cmap="RdBu")
plt.show()
ssim_sum = float(sm_max["ir"].mean() + sm_max["vi"].mean())
print(f"the two map means add up to {ssim_sum:.3f} = the table's SSIM of the max fusion ({table.loc['max', 'SSIM']:.3f})")
assert abs(ssim_sum - table.loc["max", "SSIM"]) < 1e-6

# %% [markdown]
# ## 8. MSE, CC and PSNR: closeness to each source
#
# These three compare F with each source pixel by pixel and average the two comparisons.
# **MSE** is the mean squared difference (maps below: `(F - IR)^2` and `(F - VI)^2`);
# **PSNR** is the same number on a log scale, `10 log10(peak^2 / MSE)` dB; **CC** is the
# correlation of F's pixels with each source's (the scatter plots: a tight line = high CC).
# They have a built-in conflict: IR and VI differ, so F cannot be close to both. The mean
# fusion sits halfway and gets the lowest MSE; the max fusion copies the brighter source at
# each pixel and is far from the darker one. So a low MSE does not mean a good fusion - it
# means an average one. Two exact consequences, visible in the table: the max fusion and
# "VI alone" have the **same** MSE (at every pixel one of the two errors is 0 and the other
# is (IR - VI)^2), and the mean fusion has exactly **half** of it.

# %%
fmax = fusions["max"]
sq = {"IR": ((fmax - ir) ** 2)[0, 0].numpy(), "VI": ((fmax - vi) ** 2)[0, 0].numpy()}
fig, axes = plt.subplots(1, 4, figsize=(13, 2.9), layout="constrained")
for ax, (src, m) in zip(axes[:2], sq.items()):
    im = ax.imshow(m, cmap="magma", vmin=0, vmax=float(np.percentile(np.concatenate([v.ravel() for v in sq.values()]), 99)))
    ax.set_title(f"(F=max - {src})^2: mean {m.mean():.0f}"), ax.axis("off")
fig.colorbar(im, ax=axes[:2], fraction=0.02)
rng = np.random.default_rng(seed)
pick_px = rng.choice(fmax.numel(), size=min(3000, fmax.numel()), replace=False)
for ax, (src, s_img) in zip(axes[2:], (("IR", ir), ("VI", vi))):
    for name, col in (("max", "C1"), ("mean", "C0")):
        ax.scatter(s_img.flatten()[pick_px], fusions[name].flatten()[pick_px], s=1, alpha=0.3, color=col,
                   label=f"F={name}: corr {np.corrcoef(s_img.flatten(), fusions[name].flatten())[0, 1]:.2f}")
    ax.set_xlabel(f"{src} gray level"), ax.set_ylabel("F gray level"), ax.legend(fontsize=7, markerscale=8)
plt.show()
display(table[["MSE", "PSNR", "CC"]].round(3))
mse_check = {k: float(((f - ir) ** 2).mean() + ((f - vi) ** 2).mean()) / 2 for k, f in fusions.items() if k != "VI"}
print("MSE recomputed by hand from the maps:", {k: round(v, 1) for k, v in mse_check.items()})
# the table's MSE is exactly the average of the two squared-difference maps
assert all(abs(mse_check[k] - table.loc[k, "MSE"]) < 1e-3 * table.loc[k, "MSE"] for k in mse_check)
# and the exact relations stated above: MSE(max) = MSE(VI alone) = 2 MSE(mean) (up to the rounding of F)
assert abs(table.loc["max", "MSE"] - table.loc["VI", "MSE"]) < 1e-6 * table.loc["VI", "MSE"]
assert abs(table.loc["mean", "MSE"] / table.loc["max", "MSE"] - 0.5) < 0.01

# %% [markdown]
# ## 9. Why papers' numbers disagree: conventions
#
# Three evaluators, same images, different numbers. `fusionlab.metrics` names every switch in
# a `Convention`: `cddfuse` (CDDFuse's `utils/Evaluator.py`, the Python evaluator many
# 2023-2025 IR-VI papers use), `dtpf` (the DTPF repository's own `Metric_Python`, which
# computed the DTPF paper's tables) and `matlab` (the classic MATLAB toolkits). Differences:
# gray conversion and rounding (`dtpf` truncates), MI in nats vs bits, SF/AG normalisation,
# SSIM window/range/averaging, MSE scale and PSNR peak. Here all three get the same gray
# images, so only the metric switches show.

# %%
from tqdm.auto import tqdm

by_convention = {c: (table if c == "cddfuse" else scores(fusions, c))
                 for c in tqdm(["cddfuse", "dtpf", "matlab"], desc="conventions")}
both = pd.concat(by_convention, axis=1).swaplevel(axis=1)
display(both[["MI", "SF", "AG", "SSIM", "PSNR"]].round(3))
ratio = lambda m, a, b: float((both[m][a] / both[m][b]).mean())
print(f"MI: cddfuse / dtpf = {ratio('MI', 'cddfuse', 'dtpf'):.4f} (ln 2 = 0.6931: nats vs bits)")
print(f"SSIM: cddfuse / matlab = {ratio('SSIM', 'cddfuse', 'matlab'):.2f} (sum of two SSIMs vs their mean, "
      f"but with different constants and windows)")
print(f"PSNR: dtpf - cddfuse = {float((both['PSNR']['dtpf'] - both['PSNR']['cddfuse']).mean()):.2f} dB "
      f"(20 log10 255 = 48.13: MSE on the [0, 1] scale, peak 255)")
print(f"SF: cddfuse / matlab = {ratio('SF', 'cddfuse', 'matlab'):.4f}, AG: cddfuse / matlab = "
      f"{ratio('AG', 'cddfuse', 'matlab'):.4f} (normalisation over all vs interior pixels)")
assert abs(ratio("MI", "cddfuse", "dtpf") - 0.6931) < 1e-3

# %% [markdown]
# The printed ratios name the switches. MI differs by exactly ln 2 (nats in `cddfuse`, bits
# in `dtpf` and `matlab`); `dtpf`'s PSNR is 48.13 dB higher (its MSE is on the [0, 1]
# scale, its peak 255); SF/AG move by their normalisation (here by less than 1 %). SSIM
# differs by two switches pulling in opposite directions: `cddfuse` and `dtpf` *add*
# SSIM(F, IR) and SSIM(F, VI) (up to 2), `matlab` averages them (up to 1) but uses the
# 0..255 data range, whose stabilising constants raise each SSIM; the net ratio is the one
# printed, not the factor 2 that the sum-vs-mean switch alone would give. When you compare
# with a paper, check which evaluator it used: the DTPF tables need `dtpf`, CDDFuse's need
# `cddfuse` (the default here).

# %% [markdown]
# ## 10. Gaming the no-reference metrics
#
# EN, SD, SF and AG only look at F. Add noise to a fusion and they go *up*; the metrics that
# compare with the sources (VIF, Qabf, SSIM) go down. Always read both kinds together.

# %%
g = torch.Generator().manual_seed(seed)
noisy = (fusions["max"] + 12 * torch.randn(fusions["max"].shape, generator=g)).clamp(0, 255).round()
gamed = scores({"max": fusions["max"], "max + noise": noisy})
display(gamed[["EN", "SD", "SF", "AG", "VIF", "Qabf", "SSIM"]].round(3))
up, down = gamed.loc["max + noise"] > gamed.loc["max"], gamed.loc["max + noise"] < gamed.loc["max"]
print(f"noise raised {', '.join(m for m in ['EN', 'SD', 'SF', 'AG'] if up[m])} and lowered "
      f"{', '.join(m for m in ['VIF', 'Qabf', 'SSIM'] if down[m])}")
# what the text claims: noise games SF and AG and costs Qabf and SSIM
assert up["SF"] and up["AG"] and down["Qabf"] and down["SSIM"]

# %% [markdown]
# ## 11. Do we match the papers' evaluator?
#
# The shared folder holds reference values computed with the CDDFuse evaluator for MSRS
# 00016N fused three ways (8-bit PNG files), and the DTPF evaluator's values for the same
# files. Reading the files with `fusionlab.metrics.evaluate_files` and the matching
# convention reproduces both (SSIM to 1e-5: the DTPF evaluator filters in float32):

# %%
import json

from tqdm.auto import tqdm

from fusionlab.metrics import evaluate_files

ref_json = shared.parent / "reference" / "metrics_00016N.json" if shared is not None else None
if ref_json is not None and ref_json.is_file():
    ref = json.loads(ref_json.read_text())
    dtpf_json = ref_json.with_name("metrics_00016N_dtpf.json")
    expected = {"cddfuse": ref["values"]}
    if dtpf_json.is_file():
        expected["dtpf"] = json.loads(dtpf_json.read_text())[ref["pair"]]
    rows = {}
    jobs = [(c, v, m, rel) for c, v in expected.items() for m, rel in ref["fused"].items()]
    for convention, values, method, rel in tqdm(jobs, desc="reference files"):
        got = evaluate_files(shared.parent / ref["ir"], shared.parent / ref["vi"], shared.parent / rel,
                             "all", convention)
        rows[(convention, method)] = {m: abs(got[m] - v) / max(abs(v), 1e-12)
                                      for m, v in values[method].items() if v is not None}
    err = pd.DataFrame(rows).T
    for convention in expected:
        e = err.loc[convention]
        print(f"{convention}: largest relative error over {int(e.notna().sum().sum())} values: "
              f"{e.max().max():.1e} ({e.max().idxmax()})")
        assert e.max().max() < 1e-4, (convention, e.max().idxmax())  # agreement to 1e-4 relative (SSIM: ~1e-5)
else:
    print("shared reference values not found: skipped (set FUSIONLAB_SHARED to run this check)")

# %% [markdown]
# ## 12. A fixed example (checked by the notebook tests)
#
# The mean and max fusions of a synthetic pair, which is identical on every machine. The
# cell asserts the nine values (printed below, and written in the cell with a tolerance of
# 1e-3): if an implementation change moves any of them, `make test` fails.

# %%
from fusionlab.data import make_pair

syn = make_pair(seed=0, size=(96, 128))
sir, svi = to_metric_scale(syn["ir"]), to_metric_scale(syn["vi"])
fixed = {"mean": torch.round((sir + svi) / 2), "max": torch.maximum(sir, svi)}
got = pd.DataFrame({k: {m: float(v[0]) for m, v in compute_metrics(sir, svi, f, metrics=[
    "EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM"]).items()} for k, f in fixed.items()}).T
print(got.round(3))
# the expected values (cddfuse convention), checked to 1e-3 absolute: a change in any metric fails `make test`
expected = pd.DataFrame({
    "mean": {"EN": 5.812, "SD": 17.296, "SF": 7.704, "AG": 2.962, "MI": 2.717, "SCD": 1.911, "VIF": 0.478,
             "Qabf": 0.401, "SSIM": 0.835},
    "max": {"EN": 6.435, "SD": 45.347, "SF": 10.254, "AG": 3.332, "MI": 5.419, "SCD": 1.681, "VIF": 0.598,
            "Qabf": 0.542, "SSIM": 0.886}}).T
off = (got - expected).abs()
assert (off < 1e-3).all().all(), off[off >= 1e-3].stack()

# %% [markdown]
# ## 13. Try it
#
# Swipe between the fusions, with the metric readout of both sides (computed on the
# displayed images). Try "difference" mode to see where the noisy fusion differs.

# %%
from fusionlab.viz.compare import CompareWidget, show

show(CompareWidget({"IR": ir / 255, "VI": vi / 255, **{k: v / 255 for k, v in fusions.items()},
                    "max + noise": noisy / 255}, left="max", right="max + noise"))
