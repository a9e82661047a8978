"""Models: registry iteration, blocks vs literal definitions, any-size I/O, colour, tiles,
checkpoints, CLI ``fuse`` / ``profile``."""
from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn as nn

from fusionlab.errors import CheckpointError, ConfigError, InvalidTensorError, ShapeMismatchError
from fusionlab.io import rgb_to_ycbcr
from fusionlab.models import (FUSION_MODULES, FiLM, FusionNet, count_parameters, create_model, fuse_pair,
                              list_models, load_checkpoint, model_config, save_checkpoint, sliding_window)
from fusionlab.models import blocks, kernels
from fusionlab.models.profile import format_table, peak_memory_bytes, profile_models

TINY = ("dtpf_teacher_tiny", "dtpf_student_tiny")
FULL = ("dtpf_teacher", "dtpf_student", "dtpf_student_w32", "dtpf_student_w48")
FUSIONS = ("scfm", "concat_conv1x1", "unlearned_weight_attention", "dynamic_weight_conv", "multiscale_conv")


@pytest.fixture(autouse=True)
def one_thread():
    # The CI machine is shared: one OpenMP thread avoids barrier stalls under load.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _pair(b=1, h=32, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g), torch.rand(b, 1, h, w, generator=g)


def _text(model, b=1, seed=1):
    if model.config.text_dim is None:
        return None
    return torch.randn(b, model.config.text_dim, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ registry and sizes
def test_registry_has_all_variants_and_fusion_modules():
    assert set(FULL + TINY) <= set(list_models())
    assert set(FUSION_MODULES.names()) == set(FUSIONS)
    for name in FUSIONS:  # Table 5 rows are documented
        assert len((FUSION_MODULES.get(name).__doc__ or "").split()) >= 8, name


def _count(name, **kw):
    return count_parameters(create_model(name, **kw))  # full-size models build in ~0.2 s each


def test_parameter_counts_match_the_paper():
    teacher, student = _count("dtpf_teacher"), _count("dtpf_student")
    assert abs(teacher / 40.3e6 - 1) < 0.03, teacher  # paper 40.3 M (reference code 40,289,814)
    assert 4.1e6 <= student <= 4.4e6, student  # paper 4.1 M, reference code 4,371,772
    assert abs(student / 4.1e6 - 1) < 0.031 and abs(student / 4.372e6 - 1) < 0.035
    assert student / teacher <= 0.11
    assert abs(_count("dtpf_student_w32") / 15.8e6 - 1) < 0.03  # Table 6
    assert abs(_count("dtpf_student_w48") / 39.1e6 - 1) < 0.03
    # the non-text teacher differs exactly by the 4 FiLM MLPs
    film = sum((512 * c + c) + (c * 2 * c + 2 * c) for c in (48, 96, 192, 384))
    assert teacher - _count("dtpf_teacher", text_dim=None) == film


@pytest.mark.parametrize("name", FULL + TINY)
def test_every_variant_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name)
    ir, vi = _pair(1, 19, 27) if name in FULL else _pair(2, 33, 45)
    text = _text(model, ir.shape[0])
    out, feats = model(ir, vi, text, return_features=True)
    assert out.shape == ir.shape and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    assert [f.shape[1] for f in feats] == list(model.feature_channels) and len(feats) == 4
    (out.mean() + sum(f.square().mean() for f in feats)).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, no_grad[:5]
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("name", TINY)
def test_every_fusion_module_in_every_model(name, fusion):
    torch.manual_seed(0)
    model = create_model(name, fusion=fusion, cross_levels=(1, 2, 3, 4))
    assert model.config.fusion == fusion
    ir, vi = _pair(2, 24, 40)
    out = model(ir, vi, _text(model, 2))
    out.sum().backward()
    assert out.shape == ir.shape and torch.isfinite(out).all()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("hw", [(97, 131), (1, 1), (5, 300), (64, 64), (8, 17)])
def test_any_size_round_trips(hw):
    model = create_model("dtpf_student_tiny").eval()
    ir, vi = _pair(1, *hw)
    with torch.no_grad():
        out = model(ir, vi)
    assert out.shape == (1, 1, *hw) and torch.isfinite(out).all()


def test_fusion_module_shapes_and_unlearned_is_parameter_free():
    f_ir, f_vi = torch.randn(2, 16, 12, 20), torch.randn(2, 16, 12, 20)
    for name in FUSIONS:
        mod = FUSION_MODULES.build(name, dim=16, channel_heads=2, spatial_heads=1, head_dim=8)
        assert mod(f_ir, f_vi).shape == f_ir.shape, name
    uwa = FUSION_MODULES.build("unlearned_weight_attention", dim=16)
    assert count_parameters(uwa) == 0
    fused = uwa(f_ir, f_vi)  # a convex per-pixel combination of the two streams
    lo, hi = torch.minimum(f_ir, f_vi), torch.maximum(f_ir, f_vi)
    assert (fused >= lo - 1e-6).all() and (fused <= hi + 1e-6).all()


# ------------------------------------------------------------------ blocks vs definitions
@pytest.mark.parametrize("chunk", [1, 64])  # pieces of window rows / several whole rows per chunk
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("hw", [(16, 24), (13, 21)])
def test_window_attention_matches_literal_definition(monkeypatch, channels_last, hw, chunk):
    monkeypatch.setattr(kernels, "ATTENTION_CHUNK", chunk)  # also the band height at inference
    torch.manual_seed(0)
    attn = blocks.OverlapWindowAttention(12, heads=2, head_dim=8, window=8, overlap=0.5)
    x = torch.randn(2, 12, *hw)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    want = blocks.overlap_window_attention_reference(attn, x)  # window-by-window loop
    with kernels.use_fast_kernels(False):
        literal = attn(x)  # the vectorised definition in blocks.py
    got_train = attn(x)  # fast kernel, autograd path (bias folded into q/k)
    with torch.no_grad():
        got_infer = attn(x)  # fast kernel, inference path (chunked bias mask)
    for got in (literal, got_train, got_infer):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    got_train.square().sum().backward()
    assert attn.rel_h.grad is not None and attn.rel_h.grad.abs().sum() > 0


def test_relative_position_bias_is_centred():
    # key column j of the 12-wide window vs query column y of the 8-wide window: offset 0
    # (same pixel) must map to the centre of the 23-entry table
    attn = blocks.OverlapWindowAttention(8, heads=1, head_dim=8)
    idx = attn.rel_idx
    assert idx.shape == (8, 12)
    for y in range(8):
        assert idx[y, y + attn.pad] == attn.ow - 1


def test_layernorm_definition():
    torch.manual_seed(0)
    x = torch.randn(2, 12, 5, 7)
    ln = blocks.LayerNorm2d(12)
    with torch.no_grad():
        ln.weight.uniform_()
        ln.bias.uniform_()
    ref = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (12,), ln.weight, ln.bias).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), ref)
    torch.testing.assert_close(ln(x.contiguous(memory_format=torch.channels_last)), ref)


@pytest.mark.parametrize("dim,heads", [(12, 3), (16, 1), (72, 8)])  # joint-Gram and wide (norm) paths
@pytest.mark.parametrize("channels_last", [False, True])
def test_channel_attention_and_ffn_match_literal_definitions(monkeypatch, dim, heads, channels_last):
    monkeypatch.setattr(kernels, "STRIP_PIXELS", 14)  # several strips of 2 rows at inference
    torch.manual_seed(0)
    x = torch.randn(2, dim, 5, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    norm = blocks.LayerNorm2d(dim)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    y = norm(x)
    ca = blocks.ChannelAttention(dim, heads=heads)
    with torch.no_grad():
        ca.temperature.uniform_(0.5, 2.0)
    qkv = ca.qkv_dwconv(ca.qkv(y))
    q, k, v = (t.reshape(2, heads, dim // heads, 35) for t in qkv.chunk(3, dim=1))
    q, k = nn.functional.normalize(q, dim=-1), nn.functional.normalize(k, dim=-1)
    a = (q @ k.transpose(-1, -2) * ca.temperature).softmax(-1)
    want = ca.project_out((a @ v).reshape(2, dim, 5, 7))
    with kernels.use_fast_kernels(False):
        torch.testing.assert_close(ca(y), want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ca(y), want, atol=1e-5, rtol=1e-4)  # autograd path
    torch.testing.assert_close(kernels.channel_attention(ca, x, norm, residual=True), want + x, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # inference: strips, Gram summed over them
        torch.testing.assert_close(ca(y), want, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(kernels.channel_attention(ca, x, norm, residual=True), want + x,
                                   atol=1e-5, rtol=1e-4)
    ffn = blocks.GatedDconvFFN(dim, 2.66)
    h1, h2 = ffn.dwconv(ffn.project_in(y)).chunk(2, dim=1)
    want = ffn.project_out(nn.functional.gelu(h1) * h2)
    with kernels.use_fast_kernels(False):
        torch.testing.assert_close(ffn(y), want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(kernels.gated_ffn(ffn, x, norm, residual=True), want + x, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # inference: strips with a halo row for the 3x3 conv
        torch.testing.assert_close(ffn(y), want, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(kernels.gated_ffn(ffn, x, norm, residual=True), want + x, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name,hw", [("dtpf_student", (19, 42)), ("dtpf_teacher_tiny", (45, 29))])
def test_fast_kernels_equal_the_literal_network(name, hw):
    """The default (fast) network is the readable one within 1e-5: forward, features, gradients."""
    torch.manual_seed(0)
    model = create_model(name)
    ir, vi = _pair(1, *hw)
    text = _text(model)
    with torch.no_grad():
        fast, fast_feats = model.eval()(ir, vi, text, return_features=True)
        with kernels.use_fast_kernels(False):
            assert not kernels.enabled()
            literal, literal_feats = model(ir, vi, text, return_features=True)
        assert kernels.enabled()
    torch.testing.assert_close(fast, literal, atol=1e-5, rtol=0)
    for a, b in zip(fast_feats, literal_feats):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    grads = []
    for fast_kernels in (True, False):
        model.zero_grad()
        with kernels.use_fast_kernels(fast_kernels):
            model.train()(ir, vi, text).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    # 4.2 M gradients summed in another order: compare as a whole (single ones differ ~1e-5)
    assert (grads[0] - grads[1]).norm() <= 1e-4 * grads[1].norm()


def test_film_modes():
    film = FiLM(6, 4, mode="paper")
    nn.init.zeros_(film.mlp[2].weight)
    nn.init.zeros_(film.mlp[2].bias)
    f, t = torch.randn(2, 4, 3, 3), torch.randn(2, 6)
    torch.testing.assert_close(film(f, t), f)  # (1 + 0) * F + 0
    ref = FiLM(6, 4, mode="reference")
    ref.load_state_dict(film.state_dict())
    assert ref(f, t).abs().max() == 0  # 0 * F + 0
    with pytest.raises(ValueError):
        FiLM(6, 4, mode="nope")


def test_text_handling():
    torch.manual_seed(0)
    model = create_model("dtpf_teacher_tiny").eval()
    ir, vi = _pair(2, 16, 16)
    text = torch.randn(2, 512)
    with torch.no_grad():
        with_text, no_text = model(ir, vi, text), model(ir, vi, None)
        shared = model(ir, vi, text[0])  # (text_dim,) is shared by the batch
        expanded = model(ir, vi, text[:1].expand(2, -1))
    assert not torch.allclose(with_text, no_text)
    torch.testing.assert_close(shared, expanded)
    for bad in (torch.randn(2, 7), torch.randn(3, 512), "a caption"):
        with pytest.raises(InvalidTensorError):
            model(ir, vi, bad)
    nontext = create_model("dtpf_teacher_tiny", text_dim=None).eval()
    assert nontext.film is None
    with torch.no_grad():  # no text branch: text is ignored
        torch.testing.assert_close(nontext(ir, vi, text), nontext(ir, vi))


def test_input_validation_and_config_errors():
    model = create_model("dtpf_student_tiny")
    ir, vi = _pair(1, 16, 16)
    with pytest.raises(InvalidTensorError, match="fuse_pair"):
        model(ir, torch.rand(1, 3, 16, 16))
    with pytest.raises(ShapeMismatchError):
        model(ir, torch.rand(1, 1, 16, 17))
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        create_model("nope")
    with pytest.raises(ConfigError, match="unknown option"):
        create_model("dtpf_student_tiny", depth=3)
    with pytest.raises(ConfigError, match="unknown fusion module"):
        create_model("dtpf_student_tiny", fusion="sum")
    with pytest.raises(ConfigError, match="heads"):
        create_model("dtpf_student_tiny", heads=(3, 2, 4, 8))
    assert create_model("dtpf_student_tiny", width=16).config.dim == 16
    assert model_config("dtpf_student").text_dim is None and model_config("dtpf_teacher").text_dim == 512


def test_training_clamp_passes_gradients():
    model = create_model("dtpf_student_tiny")
    ir, vi = _pair(1, 16, 16)
    with torch.no_grad():
        model.output.weight.fill_(1.0)  # push the output far above 1
    out = model(ir, vi)
    assert out.max() <= 1
    out.sum().backward()
    assert model.output.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------ colour and tiles
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
    ir, vi = _pair(2, 70, 101)
    whole = model(ir, vi)
    for tile, overlap in ((32, 8), ((24, 40), 12), (64, 0)):  # blending weights sum to 1 everywhere
        torch.testing.assert_close(sliding_window(model, ir, vi, tile=tile, overlap=overlap), whole)
    torch.manual_seed(0)
    net = create_model("dtpf_student_tiny").eval()
    ir, vi = _pair(1, 40, 72)
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
    from fusionlab.models.inference import current_rss, memory_model, parse_memory, plan_tiles

    assert parse_memory("2GB") == 2 * 2 ** 30 and parse_memory("512 MiB") == 2 ** 29 and parse_memory(1000) == 1000
    for bad in ("lots", "-1GB", "0", "2 parsecs"):
        with pytest.raises(ConfigError):
            parse_memory(bad)
    torch.manual_seed(0)
    net = create_model("dtpf_student_tiny").eval()
    mm = memory_model(net)
    assert mm.per_pixel > 100 and memory_model(net) is mm  # measured once, then cached
    now = current_rss()
    assert plan_tiles(net, (32, 48), now + 2 ** 20) is None  # small images are always fused whole
    assert plan_tiles(net, (600, 800), now + 64 * 2 ** 30) is None
    budget = now + mm.bytes(300 * 300)
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
tiles = []
out = fuse_pair(net, ir, vi, max_memory=now + allowed, progress=lambda d, t: tiles.append(t))
peak = inference._peak_rss()  # VmHWM: the peak resident size of this process's memory
print(peak, now + allowed, tiles[-1], round(mm.bytes(h * w) / allowed, 2), "x".join(map(str, out.shape)), out.dtype)
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


# ------------------------------------------------------------------ checkpoints
def test_checkpoint_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    model = create_model("dtpf_student_tiny", fusion="multiscale_conv")
    path = save_checkpoint(tmp_path / "m.pt", model, metadata={"epochs": 2, "loss": 0.5},
                           extra={"optimizer": {"state": {}, "lr": torch.tensor(1e-4)}, "epoch": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # atomic: no temp file left
    loaded, info = load_checkpoint(path, expected="dtpf_student_tiny")
    assert info["model"] == "dtpf_student_tiny" and info["metadata"]["epochs"] == 2
    assert info["extra"]["epoch"] == 2 and loaded.config == model.config and not loaded.training
    ir, vi = _pair(1, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ir, vi), model.eval()(ir, vi))
    load_checkpoint(path, expected=model.config)
    with pytest.raises(CheckpointError, match="expected 'dtpf_teacher'"):
        load_checkpoint(path, expected="dtpf_teacher")
    with pytest.raises(CheckpointError, match="fusion='multiscale_conv' vs 'scfm'"):
        load_checkpoint(path, expected=create_model("dtpf_student_tiny"))
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a fusionlab model checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    obj = torch.load(path, weights_only=True)
    obj["state_dict"].pop("output.weight")
    torch.save(obj, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="1 missing"):
        load_checkpoint(tmp_path / "broken.pt")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"format": "fusionlab.model", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(tmp_path / "evil.pt")


# ------------------------------------------------------------------ profile
def test_profile_rows_and_table():
    rows = profile_models(["dtpf_teacher_tiny", "dtpf_student_tiny"], size=(32, 48), repeats=2, warmup=0,
                          memory=False)
    assert [r.model for r in rows] == ["dtpf_teacher_tiny", "dtpf_student_tiny"]
    for r in rows:
        assert r.gflops > 0 and math.isclose(r.gmacs, r.gflops / 2, rel_tol=0.05, abs_tol=0.002)
        assert r.latency_min_s <= r.latency_s <= r.latency_max_s and r.peak_mem_mb is None
    table = format_table(rows, reference="dtpf_teacher_tiny")
    assert "GMACs" in table and "dtpf_student_tiny" in table and table.count("\n") == 3
    model = create_model("dtpf_student_tiny").eval()
    weights = count_parameters(model) * 4
    peak = peak_memory_bytes(model, *_pair(1, 64, 64))
    assert weights < peak < weights + 64 * 2 ** 20  # activations of a 64x64 pair: a few MB


# ------------------------------------------------------------------ CLI
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
    from fusionlab.cli import fuse as fuse_cli
    from pathlib import Path

    default = Path(fuse_cli.__file__).resolve().parents[1] / fuse_cli.DEFAULT_CHECKPOINT
    if not default.exists():
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


# ------------------------------------------------------------------ export
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_model_matches_torch(tmp_path, fmt):
    from fusionlab.models.export import export_model, load_exported

    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="onnxruntime is an optional extra (pip install 'fusionlab[onnx]')")
    torch.manual_seed(0)
    model = create_model("dtpf_student_tiny").eval()
    path = export_model(model, tmp_path / f"m.{'onnx' if fmt == 'onnx' else 'ts'}", fmt)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # written atomically
    fuser = load_exported(path)
    for b, h, w in ((1, 45, 70), (2, 64, 40), (1, 8, 9)):  # dynamic batch and size, multiples of 8 or not
        ir, vi = _pair(b, h, w, seed=h)
        with torch.no_grad():
            want, got = model(ir, vi), fuser(ir, vi)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    with torch.no_grad():  # fuse_pair drives an exported model like a torch one
        torch.testing.assert_close(fuse_pair(fuser, *_pair(1, 30, 44)), fuse_pair(model, *_pair(1, 30, 44)),
                                   atol=1e-4, rtol=0)


def test_cli_export_and_fuse_with_onnxruntime(tmp_path, run_cli):
    pytest.importorskip("onnxruntime", reason="onnxruntime is an optional extra (pip install 'fusionlab[onnx]')")
    from fusionlab.data import write_synthetic_folder
    from fusionlab.io import read_image

    data = tmp_path / "data"
    write_synthetic_folder(data, n=1, size=(40, 56))
    ck = save_checkpoint(tmp_path / "s.pt", create_model("dtpf_student_tiny"))
    code, out, err = run_cli("export", "--checkpoint", ck, "--format", "onnx", "--out", tmp_path / "s.onnx")
    assert code == 0, err
    assert "exported" in out and (tmp_path / "s.onnx").is_file()
    code, _, err = run_cli("fuse", "--data", data, "--out", tmp_path / "ort", "--runtime", "onnxruntime",
                           "--checkpoint", tmp_path / "s.onnx")
    assert code == 0, err
    code, _, err = run_cli("fuse", "--data", data, "--out", tmp_path / "pt", "--checkpoint", ck)
    assert code == 0, err
    name = next((tmp_path / "pt").iterdir()).name
    a, b = read_image(tmp_path / "ort" / name), read_image(tmp_path / "pt" / name)
    assert (a - b).abs().max() <= 1 / 255 + 1e-6  # same 8-bit image up to rounding
    code, _, err = run_cli("fuse", "--data", data, "--out", tmp_path / "x", "--checkpoint", tmp_path / "s.onnx")
    assert code == 2 and "--runtime onnxruntime" in err
    code, _, err = run_cli("export", "--checkpoint", ck, "--format", "tflite", "--out", tmp_path / "x")
    assert code == 2
