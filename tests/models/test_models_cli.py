"""The model commands and the efficiency table: fusionlab fuse, fusionlab profile."""
from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn as nn

from fusionlab.errors import CheckpointError, ConfigError, InvalidTensorError, ShapeMismatchError
from fusionlab.io import rgb_to_ycbcr
from fusionlab.models import (FUSION_MODULES, FiLM, count_parameters, create_model, fuse_pair, list_models,
                              load_checkpoint, model_config, save_checkpoint, sliding_window)
from fusionlab.models import blocks
from fusionlab.models.profile import format_table, paired_ratio, peak_memory_bytes, profile_models
from support import luma_pair


pytestmark = pytest.mark.usefixtures("one_thread")

def test_profile_rows_and_table():
    rows = profile_models(["dtpf_teacher_tiny", "dtpf_student_tiny"], size=(32, 48), repeats=2, warmup=0,
                          memory=False)
    assert [r.model for r in rows] == ["dtpf_teacher_tiny", "dtpf_student_tiny"]
    for r in rows:
        assert r.gflops > 0 and math.isclose(r.gmacs, r.gflops / 2, rel_tol=0.05, abs_tol=0.002)
        assert r.latency_min_s <= r.latency_s <= r.latency_max_s and r.peak_mem_mb is None
        assert len(r.latencies_s) == 2 and min(r.latencies_s) == pytest.approx(r.latency_min_s, abs=1e-3)
    table = format_table(rows, reference="dtpf_teacher_tiny")
    assert "GMACs" in table and "dtpf_student_tiny" in table and table.count("\n") == 3
    model = create_model("dtpf_student_tiny").eval()
    weights = count_parameters(model) * 4
    peak = peak_memory_bytes(model, *luma_pair(1, 64, 64))
    assert weights < peak < weights + 64 * 2 ** 20  # activations of a 64x64 pair: a few MB


class FakeClock:
    """A timer that only moves when a fake computation 'runs' for a given time."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def run(self, seconds):
        return lambda: setattr(self, "now", self.now + seconds)


def test_paired_ratio_is_the_geometric_mean_of_pairs_with_an_interval():
    clock = FakeClock()
    # a takes 3 s, then 3.3 s on every other call (host noise); b always 2 s
    durations = iter([3.0, 3.3] * 20)
    a, b = (lambda: clock.run(next(durations))()), clock.run(2.0)
    r = paired_ratio(a, b, repeats=10, warmup=0, clock=clock)
    assert len(r.ratios) == 10 and sorted(set(round(v, 6) for v in r.ratios)) == [1.5, 1.65]
    assert r.ratio == pytest.approx(math.sqrt(1.5 * 1.65))  # geometric mean of 5 x 1.5 and 5 x 1.65
    assert 1.5 <= r.low < r.ratio < r.high <= 1.65
    assert r.a_median_s == pytest.approx(3.15) and r.b_median_s == 2.0
    assert "1.573" in str(r) and "10 pairs" in str(r)
    # identical durations: a point interval
    same = paired_ratio(clock.run(1.0), clock.run(1.0), repeats=4, warmup=1, clock=clock)
    assert same.ratio == same.low == same.high == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        paired_ratio(a, b, repeats=1, clock=clock)


def test_paired_ratio_alternates_the_order_within_pairs():
    order = []
    paired_ratio(lambda: order.append("a"), lambda: order.append("b"), repeats=4, warmup=1, n_boot=10)
    assert "".join(order) == "ab" + "ab" "ba" "ab" "ba"


def test_cli_fuse_folders_files_and_errors(tmp_path, run_cli):
    from fusionlab.data import write_synthetic_folder
    from fusionlab.io import read_image

    data = tmp_path / "data"
    write_synthetic_folder(data, n=2, size=(40, 56))
    out = tmp_path / "out"
    code, stdout, err = run_cli("fuse", "--data", data, "--out", out, "--model", "dtpf_student_tiny")
    assert code == 0, err
    assert "random" in err and "fused 2 pair(s)" in stdout
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 2 and all(f.endswith(".png") for f in files)
    assert read_image(out / files[0]).shape == (3, 40, 56)  # colour kept
    code, stdout, _ = run_cli("fuse", "--ir", data / "ir", "--vi", data / "vi", "--out", out,
                              "--model", "dtpf_student_tiny", "--skip-existing")
    assert code == 0 and "fused 0 pair(s)" in stdout and "2 skipped" in stdout
    # a single pair, through a checkpoint, in tiles
    ck = save_checkpoint(tmp_path / "s.pt", create_model("dtpf_student_tiny"))
    ir_file, vi_file = sorted((data / "ir").iterdir())[0], sorted((data / "vi").iterdir())[0]
    code, _, err = run_cli("fuse", "--ir", ir_file, "--vi", vi_file, "--out", tmp_path / "one",
                           "--checkpoint", ck, "--tile", "32", "--overlap", "8")
    assert code == 0, err and (tmp_path / "one" / f"{vi_file.stem}.png").is_file()
    code, _, err = run_cli("fuse", "--data", data, "--out", out, "--checkpoint", ck, "--model", "dtpf_teacher")
    assert code == 1 and "expected 'dtpf_teacher'" in err and "\n" == err[-1] and err.count("\n") == 1
    code, _, err = run_cli("fuse", "--ir", ir_file, "--vi", data / "vi", "--out", out, "--model", "dtpf_student_tiny")
    assert code == 2 and "both must be files or both folders" in err
    code, _, err = run_cli("fuse", "--out", out)
    assert code == 2
    from fusionlab.models import SHIPPED_STUDENT

    if not SHIPPED_STUDENT.exists():
        code, _, err = run_cli("fuse", "--data", data, "--out", out)
        assert code == 1 and "default checkpoint not found" in err


def test_cli_fuse_real_msrs_pair_in_colour(shared_dir, tmp_path, run_cli):
    from fusionlab.io import read_image

    root = shared_dir / "data" / "msrs" / "test"
    name = sorted(p.stem for p in (root / "ir").iterdir())[0]
    ir = next((root / "ir").glob(f"{name}.*"))
    vi = next((root / "vi").glob(f"{name}.*"))
    code, _, err = run_cli("fuse", "--ir", ir, "--vi", vi, "--out", tmp_path, "--model", "dtpf_student_tiny")
    assert code == 0, err
    fused = read_image(tmp_path / f"{name}.png")
    assert fused.shape == read_image(vi).shape and fused.shape[0] == 3


def test_cli_profile(run_cli, tmp_path):
    code, out, err = run_cli("profile", "--models", "dtpf_teacher_tiny", "dtpf_student_tiny", "--size", "32x32",
                             "--repeats", "1", "--no-memory", "--json", tmp_path / "p.json")
    assert code == 0, err
    assert "GFLOPs" in out and "dtpf_student_tiny" in out and "latency" in out
    assert (tmp_path / "p.json").is_file()
    code, _, err = run_cli("profile", "--size", "big")
    assert code == 2 and "--size" in err
    code, _, err = run_cli("profile", "--models", "nope", "--size", "32x32")
    assert code == 1 and "unknown model 'nope'" in err


@pytest.mark.parametrize("subset", ["msrs", "roadscene"])
def test_shipped_student_beats_pixel_mean_on_real_pairs(shared_dir, tmp_path, run_cli, subset):
    """The default checkpoint (trained on real pairs) through the CLI, scored from the files:
    on 3 real test pairs per subset it beats pixel mean on VIF and Qabf, with warm IR targets
    kept (its luma is never below the IR where the IR is brighter than the visible image)."""
    import pandas as pd

    from fusionlab.models import SHIPPED_STUDENT
    from fusionlab.io import read_image, to_luma
    from fusionlab.metrics import evaluate, to_metric_scale

    assert SHIPPED_STUDENT.name == "student_real.pt"
    root = shared_dir / "data" / subset / "test"
    names = sorted(p.stem for p in (root / "ir").iterdir())[:3]
    data = tmp_path / "data"
    for n in names:  # a 3-pair dataset in the usual layout
        for mod in ("ir", "vi"):
            src = next((root / mod).glob(f"{n}.*"))
            (data / mod).mkdir(parents=True, exist_ok=True)
            (data / mod / src.name).symlink_to(src)
    code, _, err = run_cli("fuse", "--data", data, "--out", tmp_path / "fused")
    assert code == 0, err
    code, out, err = run_cli("evaluate", "--ir", data / "ir", "--vi", data / "vi", "--fused", tmp_path / "fused",
                             "--format", "csv", "--out", tmp_path / "m.csv")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "m.csv")
    student = table.set_index(table.columns[0]).loc["mean"]
    means, kept = [], []
    for n in names:  # pairs differ in size (RoadScene): one at a time
        ir = read_image(next((data / "ir").glob(f"{n}.*")))[None]
        vi_y = to_luma(read_image(next((data / "vi").glob(f"{n}.*")))[None])
        means.append(evaluate(to_metric_scale(ir), to_metric_scale(vi_y), to_metric_scale((ir + vi_y) / 2),
                              metrics=["VIF", "Qabf"]).iloc[0])
        fused_y = to_luma(read_image(tmp_path / "fused" / f"{n}.png")[None])
        warm = ir > vi_y + 0.2  # warm targets: IR much brighter than the visible image
        kept.append(fused_y[warm] >= ir[warm] - 0.1)
    mean = pd.DataFrame(means).mean()
    assert student["VIF"] > mean["VIF"] + 0.1 and student["Qabf"] > mean["Qabf"] + 0.1, (student, mean)
    kept = torch.cat(kept)
    assert kept.numel() > 100 and kept.float().mean() > 0.9


def test_count_flops_counts_cpu_attention_and_direct_onednn_convs():
    """FlopCounterMode alone counts the CPU flash attention and a direct oneDNN convolution as
    zero; count_flops adds their formulas, and a model's count is that of its literal code."""
    from fusionlab.models import kernels
    from fusionlab.models.profile import count_flops

    class Attend(nn.Module):
        def forward(self, q, k, v):
            return nn.functional.scaled_dot_product_attention(q, k, v)

    # equal q/k/v widths: SDPA takes the CPU flash kernel (other widths fall back to counted bmm's)
    q, k, v = torch.rand(3, 2, 64, 16), torch.rand(3, 2, 144, 16), torch.rand(3, 2, 144, 16)
    assert count_flops(Attend(), q, k, v) == 2 * 3 * 2 * 64 * 144 * (16 + 16)

    class Direct1x1(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.rand(32, 16, 1, 1))

        def forward(self, x, y=None, t=None):
            return torch.ops.aten.mkldnn_convolution(x, self.w, None, [0, 0], [1, 1], [1, 1], 1)

    if torch.backends.mkldnn.is_available():
        x = torch.rand(1, 16, 10, 12).contiguous(memory_format=torch.channels_last)
        assert count_flops(Direct1x1(), x, x) == 2 * 16 * 32 * 10 * 12
    torch.manual_seed(0)
    net = create_model("dtpf_student_tiny").eval()
    ir = torch.rand(1, 1, 40, 48)
    with kernels.use_fast_kernels(True):
        fast = count_flops(net, ir, ir)
    with kernels.use_fast_kernels(False):
        literal = count_flops(net, ir, ir)
    assert fast == literal > 0
