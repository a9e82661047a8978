"""Source of notebooks/00_quickstart.ipynb (build with scripts/build_notebooks.py)."""

# %% [markdown]
# # 00 · Quickstart: fuse a pair, look at it, score it
#
# Infrared (IR) cameras see heat: people and cars stand out, day or night. Visible (VI)
# cameras see texture and colour. **Image fusion** merges both into one picture that keeps
# the warm targets of IR and the details of VI. fusionlab reproduces DTPF, where a large
# text-guided *teacher* is distilled into a small *student* that needs no text at run time.
#
# Five cells: load a pair and the student, fuse, look, score, save. The next notebooks
# (01-06) open each step up.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). FUSIONLAB_PRESET: ci (seconds) | laptop | full.
import os

preset = os.environ.get("FUSIONLAB_PRESET", "laptop")
data_root = None  # None: real shared subset if present, else synthetic; or a folder with ir/ + vi/
checkpoint = None  # None: the shipped student (fusionlab/assets/student_real.pt, trained on real pairs)
out_dir = None  # None: ./quickstart_output (a temporary folder in the ci preset)

# %%
# 1. a pair and the distilled student
from fusionlab.presets import pick
from fusionlab.viz.walkthrough import choose_data, load_pairs, load_student, setup

setup()
data = choose_data(data_root)
print(data)
pair = load_pairs(data, n=1, max_side=pick(ci=160, laptop=320, full=None, preset=preset), size=(120, 160))[0]
ir, vi = pair["ir"][None], pair["vi"][None]  # (1, 1, H, W) and (1, 3, H, W) in [0, 1]
student, note = load_student(checkpoint)

# %%
# 2. fuse: the student fuses the luma (Y); fuse_pair puts VI's colour back
from fusionlab.demo import baseline_fusions
from fusionlab.models import fuse_pair

fused = fuse_pair(student, ir, vi)
fusions = {"student": fused, **baseline_fusions(ir, vi)}  # + pixel mean / pixel max for reference
print({k: tuple(v.shape) for k, v in fusions.items()})

# %%
# 3. look: drag the slider to swipe between "before" and "after"; pick any two images
from fusionlab.viz.compare import CompareWidget, show

show(CompareWidget({"IR": ir, "VI": vi, **fusions}, left="VI", right="student"))

# %%
# 4. score: the nine metrics fusion papers report (all higher is better; notebook 02 explains each)
import pandas as pd

from fusionlab.models import count_parameters
from fusionlab.viz.compare import fusion_scores

scored = {**fusions, "VI alone (no fusion)": vi}  # a control: the visible image, unfused
table = pd.DataFrame({name: fusion_scores(ir, vi, img) for name, img in scored.items()}).T
display(table.round(3))
print(f"student: {count_parameters(student) / 1e6:.2f} M parameters")
diff = table.loc["student"] - table.loc["max"]
tie = 5e-4  # differences below the table's rounding count as ties
print(f"student vs pixel max on this pair: higher on {', '.join(diff.index[diff > tie]) or 'none'}; "
      f"lower on {', '.join(diff.index[diff < -tie]) or 'none'}; tied on "
      f"{', '.join(diff.index[diff.abs() <= tie]) or 'none'}; largest |difference| on VIF/Qabf/SSIM "
      f"{diff[['VIF', 'Qabf', 'SSIM']].abs().max():.3f}")
vi_better = [m for m in table.columns if table.loc["VI alone (no fusion)", m] > table.loc["student", m]]
print(f"the unfused visible image scores higher than the student on {len(vi_better)} of 9: {', '.join(vi_better) or '-'}")
# the shipped student is a learnt refinement of the pixel max: close to it, far above the pixel mean
gap = diff[["VIF", "Qabf", "SSIM"]].abs().max()
assert gap < 0.1 and table.loc["student", "VIF"] > table.loc["mean", "VIF"]

# %% [markdown]
# **Reading the table** (the two printed lines say what holds on *this* pair).
#
# * **Student vs pixel max: a tie within a few hundredths, either can win.** The shipped
#   student (0.72 M parameters, printed above; trained on 171 real pairs on a CPU) uses
#   fusionlab's *blend head*, which starts at a soft pixel maximum; training refined it a
#   little. On all 20 MSRS test pairs it is ahead on VIF (1.052 vs 1.039) and Qabf (0.702 vs
#   0.700) and behind on SSIM (0.991 vs 0.995) - differences far smaller than the spread
#   between pairs, so on one pair, as here, the signs can go either way. This is not the
#   paper's claim of a clearly better fusion: at this scale the student *is* essentially a
#   learnt pixel max (README, "The shipped student, trained on real pairs").
# * **The visible image alone is a strong "fusion" on these metrics.** VIF, MI, SSIM and
#   Qabf compare F with each source, and F = VI matches one source perfectly (VIF(VI, VI) =
#   SSIM(VI, VI) = 1), so copying VI collects high scores while ignoring every warm target
#   in IR. That is why the control row can win columns above; on the 20 MSRS test pairs
#   VI alone has VIF 1.041 against the student's 1.052. Notebook 02 takes this apart.
# * **The pixel mean loses clearly** on everything that rewards contrast: averaging halves
#   the warm targets.

# %%
# 5. save the fused image (written atomically, 8-bit PNG)
from pathlib import Path

from fusionlab.io import write_image
from fusionlab.viz.walkthrough import run_dir

out = Path(out_dir) if out_dir else (run_dir("quickstart", preset) if preset == "ci" else Path("quickstart_output"))
written = write_image(out / f"{pair['name']}_student.png", fused[0])
print("wrote", written)
assert Path(written).is_file()

# %% [markdown]
# **Where next**
#
# | notebook | idea |
# |---|---|
# | `01_data_and_degradations` | datasets, YCbCr, the four degradations and their captions |
# | `02_metrics_explained` | what EN, SD, SF, AG, MI, SCD, VIF, Qabf, SSIM measure, and why papers disagree |
# | `03_teacher_and_text_priors` | the shipped teacher: SCFM attention, captions -> text embeddings -> FiLM, does the caption help |
# | `04_distillation` | the fusion losses' targets; distil the teacher into the student: L_base, L_res, L_feat |
# | `05_efficiency` | parameters, FLOPs and CPU latency of teacher, student and widths |
# | `06_ablations` | run a small ablation grid with papermill and read its report |
#
# The same in a terminal: `fusionlab fuse --help`, `fusionlab evaluate --help`.
