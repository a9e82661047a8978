"""Source of notebooks/01_data_and_degradations.ipynb (build with scripts/build_notebooks.py)."""

# %% [markdown]
# # 01 · Data and degradations
#
# Image fusion starts with **pairs**: an infrared (IR) and a visible (VI) image of the same
# scene, registered pixel to pixel (or, in medicine, MRI with CT/PET/SPECT). In this notebook:
#
# 1. the datasets fusion papers report on (real subsets when they are available, the embedded
#    synthetic pairs otherwise);
# 2. why every method fuses the **Y channel of YCbCr** and keeps the visible colour;
# 3. the four **degradations** of Text-IF/DTPF (low light, over-exposure, low-contrast IR,
#    noisy IR) and the **captions** that name them;
# 4. how well a captioner that only looks at pixel statistics recognises them;
# 5. an interactive control: degrade a pair and watch the captions and the fusion respond.
#
# Runs top to bottom on a laptop CPU; `FUSIONLAB_PRESET=ci` makes it tiny.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). FUSIONLAB_PRESET: ci (seconds) | laptop | full.
import os

preset = os.environ.get("FUSIONLAB_PRESET", "laptop")
data_root = None  # None: real shared subset if present, else synthetic; or a folder with ir/ + vi/
dataset = "msrs"  # the shared subset used when data_root is None
n_pairs = None  # None: chosen by the preset
seed = 0

# %%
import matplotlib.pyplot as plt
import torch

from fusionlab.presets import pick
from fusionlab.viz.walkthrough import SHARED_DATASETS, choose_data, image_grid, load_pairs, setup

setup(seed)
n_pairs = n_pairs or pick(ci=2, laptop=6, full=12, preset=preset)
max_side = pick(ci=160, laptop=320, full=None, preset=preset)  # downscale real images for speed
data = choose_data(data_root, dataset=dataset)
print(data)
pairs = load_pairs(data, n=n_pairs, max_side=max_side, size=(120, 160) if preset == "ci" else (192, 256))
print(f"{len(pairs)} pairs:", ", ".join(f"{p['name']} IR {tuple(p['ir'].shape)} VI {tuple(p['vi'].shape)}"
                                        for p in pairs))

# %% [markdown]
# ## 1. The datasets
#
# | dataset | what | typical size |
# |---|---|---|
# | MSRS | road scenes, day and night (names ending in `N` are night) | 640x480 |
# | TNO | military/surveillance scenes, gray | 256-768 px |
# | RoadScene | driving, aligned from FLIR videos | ~500x300 |
# | M3FD | driving + detection labels | 1024x768 |
# | Harvard | medical: CT-MRI, PET-MRI, SPECT-MRI | 256x256 |
#
# Papers report on their *test* subsets. When the shared folder with real subsets is present
# (`$FUSIONLAB_SHARED/data`, or `shared/data` beside the repository) the next cell shows one
# pair of each; otherwise it shows the embedded synthetic pairs. In the medical sets the
# functional image (PET/SPECT, colour) takes the "visible" slot and MRI the "infrared" one:
# fusion happens in the Y channel of the colour image, as in the IR-VI case.

# %%
from fusionlab.data import PairedFolder

gallery, titles = [], []
if data.shared is not None:
    for name, sub in SHARED_DATASETS.items():
        if name == "textif_samples" or not (data.shared / sub).is_dir():
            continue
        folder = PairedFolder(data.shared / sub)
        first = load_pairs(choose_data(name), n=1, max_side=max_side)[0]
        gallery.append(first)
        titles.append(f"{name} ({len(folder)} pairs)\n{first['name']}")
else:
    gallery = load_pairs(choose_data("synthetic"), n=4, size=(120, 160), seed0=10)
    titles = [p["name"] for p in gallery]
fig = image_grid([[p["ir"] for p in gallery], [p["vi"] for p in gallery]], row_titles=["infrared / MRI",
                 "visible / functional"], col_titles=titles, size=2.0)

# %% [markdown]
# ## 2. The synthetic pairs (always available)
#
# `fusionlab.data.make_pair(seed, size)` draws a scene that has what makes IR-VI fusion hard:
# **warm targets** bright in IR but camouflaged in VI, **fine texture** that only VI resolves,
# a colour VI and a gray, blurrier IR. It also returns the target mask and a clean
# *reference* fusion (VI colour with the targets' thermal intensity in the luma) for
# supervised checks. The output is a pure function of `(seed, size)`: the same pixels on
# every machine, so the numbers below are checked by the notebook tests.

# %%
from fusionlab.data import make_pair

syn = make_pair(seed=3, size=(120, 160))
image_grid([[syn["ir"], syn["vi"], syn["target_mask"], syn["reference"]]],
           col_titles=["IR: targets are warm", "VI: targets camouflaged", "target mask", "reference fusion"])
plt.show()

# %%
# a fixed synthetic pair is identical on every machine: the asserts make `make test` fail if
# the generator changes (expected: IR mean 0.360, VI mean 0.513, IR inside targets 0.750, +- 0.005)
import torch

from fusionlab.data import make_pair

small = make_pair(seed=0, size=64)
shapes = {k: tuple(v.shape) for k, v in small.items() if torch.is_tensor(v)}
print(shapes)
stats = {"IR mean": float(small["ir"].mean()), "VI mean": float(small["vi"].mean()),
         "IR inside targets": float(small["ir"][small["target_mask"] > 0.5].mean())}
print("  ".join(f"{k} {v:.3f}" for k, v in stats.items()))
assert shapes == {"ir": (1, 64, 64), "vi": (3, 64, 64), "target_mask": (1, 64, 64), "reference": (3, 64, 64)}
for k, expected in {"IR mean": 0.360, "VI mean": 0.513, "IR inside targets": 0.750}.items():
    assert abs(stats[k] - expected) < 0.005, (k, stats[k], expected)

# %% [markdown]
# ## 3. Why fuse in Y (YCbCr)
#
# The IR camera has one channel; VI has three. All methods in the papers (and fusionlab)
# convert VI to **YCbCr**, fuse IR with **Y** (luma: brightness and texture), then put the
# fused Y back together with VI's **Cb, Cr** (colour). The network therefore sees two
# one-channel images, and colour fidelity is guaranteed by construction.

# %%
from fusionlab.demo import baseline_fusions
from fusionlab.io import rgb_to_ycbcr, ycbcr_to_rgb

pair = pairs[-1]
vi = pair["vi"][None] if pair["vi"].shape[0] == 3 else pair["vi"][None].expand(-1, 3, -1, -1)
ycc = rgb_to_ycbcr(vi)
fused_max = baseline_fusions(pair["ir"][None], vi)["max"]
image_grid([[vi, ycc[:, :1], ycc[:, 1:2], ycc[:, 2:3], fused_max]],
           col_titles=["VI (RGB)", "Y (luma)", "Cb", "Cr", "max(IR, Y) + VI's CbCr"])
plt.show()

# %%
err = (ycbcr_to_rgb(rgb_to_ycbcr(vi)) - vi).abs().max().item()
print(f"RGB -> YCbCr -> RGB round trip: max error {err:.1e} (the conversion is exactly invertible up to float error)")
assert err < 1e-4

# %% [markdown]
# ## 4. The four degradations and their captions
#
# Text-IF and DTPF train *degradation-aware*: inputs are degraded, losses compare the fusion
# with the **clean** images, and a caption tells the network what went wrong. fusionlab
# implements the Text-IF vocabulary (`fusionlab.data.DEGRADATIONS`):
#
# - `low_light`: VI darkened (x0.12-0.35), gamma 1.2-1.6 and shot noise;
# - `over_exposure`: VI gain 1.8-3.0 plus an offset, clipped (highlights lose detail);
# - `ir_low_contrast`: IR contrast squeezed towards its mean (x0.15-0.4);
# - `ir_noise`: Gaussian noise plus column stripes on IR (a typical thermal-sensor artefact).
#
# Captions follow DTPF's format, `Event Type: <X>` + `Description: ...`. In the paper a
# vision-language model (Qwen2-VL-7B) writes them; fusionlab has captioners that need no
# download: `oracle` (knows the label, for synthetic/augmented data) and
# `rules` (guesses the label from pixel statistics).

# %%
from fusionlab.data import DEGRADATIONS, degrade
from fusionlab.text import build_captioner, parse_event_type

rules, oracle = build_captioner("rules"), build_captioner("oracle")
# start from a pair the rules captioner calls clean (real night scenes are already "low_light")
clean = [p for p in pairs if parse_event_type(rules.caption(p["ir"][None], p["vi"][None])[0]) == "normal"]
pair = clean[0] if clean else pairs[0]
ir0, vi0 = pair["ir"][None], pair["vi"][None]
g = torch.Generator().manual_seed(seed)
degraded = {label: degrade(ir0, vi0, label, g) for label in DEGRADATIONS}
guess = {label: parse_event_type(rules.caption(ir, vi)[0]) for label, (ir, vi) in degraded.items()}
image_grid([[d[0] for d in degraded.values()], [d[1] for d in degraded.values()]], row_titles=["IR", "VI"],
           col_titles=[f"{k}\nrules caption: {guess[k]}" for k in degraded])
plt.show()
print(oracle.caption(ir0, vi0, labels=["low_light"])[0])  # the caption format DTPF uses

# %% [markdown]
# ## 5. How good is a caption from pixel statistics?
#
# `rules` measures five numbers (VI mean brightness, fraction of clipped VI
# pixels, IR contrast range, IR noise, IR stripe energy) and applies thresholds. The
# thresholds were set half-way between clean and degraded **synthetic** pairs
# (`fusionlab/text/rules.py`), so the confusion matrix on freshly degraded synthetic pairs
# is a best case, not an accuracy on real images. Real pairs carry no degradation labels;
# for MSRS the file name gives a rough check (`N` = night, which should read as
# `low_light`; `D` = day, which should read as `normal`). The lines under the matrix
# compare the guess with that expectation: what the teacher would be told without an MLLM.

# %%
import seaborn as sns

from fusionlab.text.rules import rules_confusion

cm, acc = rules_confusion(n_per_class=pick(ci=3, laptop=20, full=50, preset=preset), size=96, seed=1000 + seed)
ax = sns.heatmap(cm, annot=True, fmt="d", cmap="Blues", cbar=False)
ax.set_title(f"rules captioner on synthetic degradations: accuracy {acc:.0%}")
plt.show()
print(f"synthetic (the generator its thresholds were set on): {acc:.0%} correct of {int(cm.values.sum())}")
misses = 0
for p in pairs:
    said = parse_event_type(rules.caption(p["ir"][None], p["vi"][None])[0])
    expected = {"N": "low_light", "D": "normal"}.get(p["name"][-1]) if data.dataset == "msrs" else None
    verdict = "" if expected is None else ("  (as expected)" if said == expected else f"  (expected {expected}: a miss)")
    misses += expected is not None and said != expected
    print(f"{p['name']:>12}: {said}{verdict}")
if data.dataset == "msrs":
    print(f"real MSRS pairs: {misses} of {len(pairs)} differ from the day/night expectation")

# %% [markdown]
# Reading it: the synthetic score says the rules work on the scenes they were tuned on.
# On real pairs, misses on day scenes are typically `ir_low_contrast`: MSRS infrared has a
# small dynamic range (2-98 % range 0.14-0.48), so a clean day pair can fall below the
# threshold. A teacher told such a wrong caption is steered by it; notebook 03 measures how
# much the caption matters for the shipped teacher.
#
# ## 6. Try it: degrade a pair, watch captions and fusion respond
#
# Pick a degradation and a random draw. The panels show the degraded IR and VI and each
# model's fusion; below are the captions (the rules captioner's guess next to the oracle's
# truth) and the metrics of each fusion. The distilled student has no text input: it must
# cope with every degradation from the pixels alone (that is the point of distilling the
# text-guided teacher, notebooks 03-04). Without a widget frontend (HTML export, CI) the
# cell shows a static picture of the current setting.

# %%
from fusionlab.viz.compare import DegradationExplorer, show
from fusionlab.viz.walkthrough import load_student

student, note = load_student()
explorer = DegradationExplorer(
    pair, models={"student": student, "max (pixel)": lambda ir, vi: baseline_fusions(ir, vi)["max"]},
    captioners={"rules": rules, "oracle": oracle}, label="low_light", seed=seed,
    max_side=pick(ci=160, laptop=320, full=480, preset=preset))
show(explorer)

# %% [markdown]
# **Next:** `02_metrics_explained` - what the nine numbers under each fusion measure.
