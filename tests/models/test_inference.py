"""Inference: colour handling of fuse_pair (Y fused, CbCr kept), sliding windows, method specs."""
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
from fusionlab.models.profile import format_table, peak_memory_bytes, profile_models
from support import luma_pair


pytestmark = pytest.mark.usefixtures("one_thread")

class _Pointwise(nn.Module):
    """A fusion 'model' without spatial context: tiled and whole-image results must agree."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.3))

    def forward(self, ir, vi, text=None):
        return (self.w * ir + (1 - self.w) * vi).clamp(0, 1)


def test_fuse_pair_colour_gray_and_unbatched():
    model = create_model("dtpf_student_tiny").eval()
    g = torch.Generator().manual_seed(0)
    ir, vi_rgb = torch.rand(1, 1, 30, 44, generator=g), torch.rand(1, 3, 30, 44, generator=g) * 0.6 + 0.2
    out = fuse_pair(model, ir, vi_rgb)
    assert out.shape == (1, 3, 30, 44) and 0 <= out.min() and out.max() <= 1
    # the visible colour (CbCr) is kept; only luma changes
    cbcr_out, cbcr_vi = rgb_to_ycbcr(out)[:, 1:], rgb_to_ycbcr(vi_rgb)[:, 1:]
    assert (cbcr_out - cbcr_vi).abs().mean() < 0.01
    gray = fuse_pair(model, ir[0], vi_rgb[0, :1])  # (C, H, W) in, (C, H, W) out
    assert gray.shape == (1, 30, 44)
    with pytest.raises(ShapeMismatchError):
        fuse_pair(model, ir, vi_rgb[..., :40])
    with pytest.raises(InvalidTensorError):
        fuse_pair(model, ir, torch.rand(1, 2, 30, 44))


def test_sliding_window_blends_to_the_whole_image_result():
    model = _Pointwise()
    ir, vi = luma_pair(2, 70, 101)
    whole = model(ir, vi)
    for tile, overlap in ((32, 8), ((24, 40), 12), (64, 0)):  # blending weights sum to 1 everywhere
        torch.testing.assert_close(sliding_window(model, ir, vi, tile=tile, overlap=overlap), whole)
    torch.manual_seed(0)
    net = create_model("dtpf_student_tiny").eval()
    ir, vi = luma_pair(1, 40, 72)
    with torch.no_grad():
        full = net(ir, vi)
    torch.testing.assert_close(fuse_pair(net, ir, vi, tile=128), full)  # one tile = whole image
    t = fuse_pair(net, ir, vi, tile=32, overlap=8)
    assert t.shape == full.shape and (t - full).abs().mean() < 0.1


def test_blending_window_is_smooth_and_keeps_image_borders():
    from fusionlab.models.inference import _axis_weights

    starts, weights = _axis_weights(100, 40, 16, "cpu")
    assert starts == [0, 24, 48, 60]
    total = torch.zeros(100)
    for s, w in zip(starts, weights):
        total[s:s + 40] += w
    torch.testing.assert_close(total, torch.ones(100))
    assert weights[0][0] == 1 and weights[-1][-1] == 1  # image borders keep full weight
    assert weights[1][0] < 0.01 and weights[1][20] == 1  # inner tile borders barely count
    steps = weights[1][:16].diff()
    assert (steps > 0).all() and steps.max() < 0.11  # a smooth ramp, no jump


def test_fuse_pair_uint8_in_uint8_out():
    from fusionlab.io import to_uint8

    torch.manual_seed(0)
    net = create_model("dtpf_student_tiny").eval()
    g = torch.Generator().manual_seed(3)
    ir8 = torch.randint(0, 256, (1, 1, 30, 44), generator=g, dtype=torch.uint8)
    vi8 = torch.randint(0, 256, (1, 3, 30, 44), generator=g, dtype=torch.uint8)
    out8 = fuse_pair(net, ir8, vi8)
    ref = fuse_pair(net, ir8.float() / 255, vi8.float() / 255)
    assert out8.dtype == torch.uint8 and out8.shape == (1, 3, 30, 44)
    assert (torch.from_numpy(to_uint8(ref[0])).permute(2, 0, 1) == out8[0]).all()
    with pytest.raises(InvalidTensorError, match="uint8"):
        fuse_pair(net, ir8.to(torch.int32), vi8)


def test_plan_tiles_by_memory_budget():
    from fusionlab.errors import ConfigError, MemoryBudgetError
    from fusionlab.models.inference import BUDGET_RESERVE, current_rss, memory_model, parse_memory, plan_tiles
    from fusionlab.models.runtime import release_free_memory

    assert parse_memory("2GB") == 2 * 2 ** 30 and parse_memory("512 MiB") == 2 ** 29 and parse_memory(1000) == 1000
    for bad in ("lots", "-1GB", "0", "2 parsecs"):
        with pytest.raises(ConfigError):
            parse_memory(bad)
    torch.manual_seed(0)
    net = create_model("dtpf_student_tiny").eval()
    mm = memory_model(net)
    assert mm.per_pixel > 100 and memory_model(net) is mm  # measured once, then cached
    release_free_memory()  # as plan_tiles does before it tiles: heap kept by the allocator is not in use
    now = current_rss()
    assert plan_tiles(net, (32, 48), now + 2 ** 20) is None  # small images are always fused whole
    assert plan_tiles(net, (600, 800), now + 64 * 2 ** 30) is None
    budget = int((now + mm.bytes(300 * 300)) / (1 - BUDGET_RESERVE))  # room for ~300x300 tiles after the reserve
    th, tw = plan_tiles(net, (3000, 4000), budget)
    assert th % 8 == 0 and tw % 8 == 0 and mm.bytes(th * tw) <= budget - now + 2 ** 20
    assert 200 <= th <= 310 and 200 <= tw <= 310
    th, tw = plan_tiles(net, (200, 100000), budget)  # a long strip keeps its short side whole
    assert th == 200 and tw > 300
    with pytest.raises(MemoryBudgetError, match="raise --max-memory"):
        plan_tiles(net, (3000, 4000), now + 2 ** 20)


_BUDGET_SCRIPT = """
import torch
from fusionlab.models import create_model, fuse_pair, inference, tune_cpu_allocator
tune_cpu_allocator()
torch.set_num_threads(1)
inference._PROBES = ((128, 128), (192, 192))  # quicker to measure (and a steeper, safer slope)
inference.AUTO_OVERLAP = 16
torch.manual_seed(0)
net = create_model("dtpf_student_tiny").eval()
h, w = 384, 512
g = torch.Generator().manual_seed(0)
ir = torch.randint(0, 256, (1, 1, h, w), generator=g, dtype=torch.uint8)
vi = torch.randint(0, 256, (1, 3, h, w), generator=g, dtype=torch.uint8)
mm = inference.memory_model(net)
now = inference.current_rss()
allowed = int(mm.bytes(160 * 160)) + h * w * 7  # room for ~160x160 tiles + the output buffers
budget = int((now + allowed) / (1 - inference.BUDGET_RESERVE))  # plan_tiles keeps a share of it free
tiles = []
out = fuse_pair(net, ir, vi, max_memory=budget, progress=lambda d, t: tiles.append(t))
peak = inference._peak_rss()  # VmHWM: the peak resident size of this process's memory
print(peak, budget, tiles[-1], round(mm.bytes(h * w) / allowed, 2), "x".join(map(str, out.shape)), out.dtype)
"""


def test_fuse_pair_stays_within_a_memory_budget():
    """A 384x512 pair whose whole-image fusion needs over twice the memory allowed is tiled
    automatically, and the peak resident memory of a fresh subprocess stays within the
    budget. (Measured as the kernel's ``VmHWM``: ``getrusage``'s ``ru_maxrss`` would keep
    the size of the forked pytest process the subprocess started as.)"""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("memory_model measures resident memory through Linux /proc")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    res = subprocess.run([sys.executable, "-c", _BUDGET_SCRIPT], capture_output=True, text=True, env=env,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    peak, budget, tiles, whole_vs_allowed, shape, dtype = res.stdout.split(maxsplit=5)
    assert int(tiles) >= 6 and float(whole_vs_allowed) >= 2  # the whole image would need 2x the room
    assert int(peak) <= int(budget), f"peak RSS {int(peak) >> 20} MB > budget {int(budget) >> 20} MB ({res.stdout})"
    assert shape == "1x3x384x512" and "uint8" in dtype


_KEPT_HEAP_SCRIPT = """
import torch
from fusionlab.models import create_model, inference, tune_cpu_allocator
assert tune_cpu_allocator()
torch.set_num_threads(1)
torch.manual_seed(0)
net = create_model("dtpf_student_tiny").eval()
mm = inference.memory_model(net)
base = inference.current_rss()
budget = int((base + mm.bytes(600 * 800) + (64 << 20)) / (1 - inference.BUDGET_RESERVE))
junk = torch.ones(100 << 20)  # 400 MB from the heap (below tune_cpu_allocator's mmap threshold)
del junk  # freed, but kept by the allocator: the process still looks 400 MB bigger
kept = inference.current_rss() - base
print(kept >> 20, inference.plan_tiles(net, (600, 800), budget), (inference.current_rss() - base) >> 20)
"""


def test_plan_tiles_does_not_count_heap_kept_by_the_allocator():
    """Memory freed by the model but kept by ``tune_cpu_allocator()`` is not "in use": the
    planner returns it to the OS before deciding a pair needs tiles."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc allocator tuning and /proc are Linux-only")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _KEPT_HEAP_SCRIPT], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    kept_mb, plan, after_mb = res.stdout.split()
    assert int(kept_mb) >= 300, res.stdout  # the freed block really stayed resident
    assert plan == "None" and int(after_mb) < 100, res.stdout  # fits whole once it is given back


def test_memory_model_is_kept_on_disk(tmp_path, monkeypatch):
    """A second process (here: a new model object of the same architecture) reads the
    measured memory model from the cache instead of running the probe forwards again; a
    corrupt cache file is measured again; another architecture gets its own entry."""
    import sys

    from fusionlab.models import inference

    if not (sys.platform.startswith("linux") and inference._reset_peak_rss()):
        pytest.skip("memory models are measured through Linux /proc")
    monkeypatch.setenv("FUSIONLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(inference, "_PROBES", ((64, 64), (96, 96)))  # quick probes

    def fresh(name="dtpf_student_tiny", **kw):
        torch.manual_seed(0)
        net = create_model(name, **kw).eval()
        calls = []
        net.register_forward_hook(lambda *a: calls.append(1))
        return net, calls

    net, calls = fresh()
    mm = inference.memory_model(net)
    files = list((tmp_path / "memory").glob("*.json"))
    assert len(calls) == 2 and len(files) == 1  # two probes, one cache entry
    again, calls = fresh()
    assert inference.memory_model(again) == mm and calls == []  # read from disk, no forward
    files[0].write_text("{not json")
    again, calls = fresh()
    assert inference.memory_model(again).per_pixel > 0 and len(calls) == 2  # corrupt: measured again
    other, calls = fresh(dim=16)
    inference.memory_model(other)
    assert len(calls) == 2 and len(list((tmp_path / "memory").glob("*.json"))) == 2
