"""The attention, FFN and LayerNorm blocks equal their literal definitions (fusionlab.models.blocks)."""
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
from fusionlab import native
from fusionlab.models import blocks, kernels
from support import luma_pair, text_for
from fusionlab.models.profile import format_table, peak_memory_bytes, profile_models


# ------------------------------------------------------------------ blocks vs definitions
@pytest.mark.parametrize("chunk", [1, 64])  # pieces of window rows / several whole rows per chunk
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("hw", [(16, 24), (13, 21)])
@pytest.mark.parametrize("native", ["1", "0"])  # the C kernel (fusionlab.native) or torch's SDPA
@pytest.mark.parametrize("head_dim", [8, 16])  # 16: the networks' setting, the C kernel's fixed-size path
def test_window_attention_matches_literal_definition(monkeypatch, channels_last, hw, chunk, native, head_dim):
    monkeypatch.setattr(kernels, "ATTENTION_CHUNK", chunk)  # also the band height at inference
    monkeypatch.setenv("FUSIONLAB_NATIVE", native)
    torch.manual_seed(0)
    attn = blocks.OverlapWindowAttention(12, heads=2, head_dim=head_dim, window=8, overlap=0.5)
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


# the whole layer in one C call (LayerNorm, q/k/v, attention, output projection, residual):
# 16-128 channels; 130 rows = 17 window rows, tiles of 2-4 window rows with a shorter last one
@pytest.mark.parametrize("dim,heads", [(16, 2), (48, 3), (128, 4)])
@pytest.mark.parametrize("hw", [(13, 21), (130, 20)])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("tile", [1024, 64])  # 64: tiles of 4 windows, several per band, a partial last one
def test_window_attention_layer_in_c_matches_reference(monkeypatch, dim, heads, hw, threads, tile):
    monkeypatch.setenv("FUSIONLAB_NATIVE", "1")
    monkeypatch.setattr(kernels, "NATIVE_TILE", tile)
    if native.load("window_attention") is None:
        pytest.skip("no C compiler: the C kernels are not built")
    torch.manual_seed(0)
    attn = blocks.OverlapWindowAttention(dim, heads=heads, head_dim=16, window=8, overlap=0.5)
    norm = blocks.LayerNorm2d(dim)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, dim, *hw).contiguous(memory_format=torch.channels_last)
    want = blocks.overlap_window_attention_reference(attn, norm(x)) + x
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            got = kernels._window_attention_native(attn, x, norm, residual=True)
            assert got is not None, "the C layer did not run"
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(kernels.window_attention(attn, x, norm), want - x, atol=1e-5, rtol=1e-4)
    finally:
        torch.set_num_threads(old)


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


# (16, 1), (48, 3), (128, 8) with FFN factor 2: widths the C row kernels take (fusionlab.native)
@pytest.mark.parametrize("dim,heads,ffn_factor", [(12, 3, 2.66), (16, 1, 2.0), (16, 1, 2.66), (48, 3, 2.0),
                                                  (72, 8, 2.66), (128, 8, 2.0)])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("native", ["1", "0"])
# 45 columns: the C kernels' 32-pixel segments (conv borders inside a row) and 8-pixel blocks with a tail
@pytest.mark.parametrize("hw", [(5, 7), (3, 45)])
def test_channel_attention_and_ffn_match_literal_definitions(monkeypatch, dim, heads, ffn_factor, channels_last,
                                                             native, hw):
    monkeypatch.setattr(kernels, "STRIP_PIXELS", 14)  # several strips of 2 rows at inference
    monkeypatch.setenv("FUSIONLAB_NATIVE", native)
    torch.manual_seed(0)
    hh, ww = hw
    x = torch.randn(2, dim, hh, ww)
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
    q, k, v = (t.reshape(2, heads, dim // heads, hh * ww) for t in qkv.chunk(3, dim=1))
    q, k = nn.functional.normalize(q, dim=-1), nn.functional.normalize(k, dim=-1)
    a = (q @ k.transpose(-1, -2) * ca.temperature).softmax(-1)
    want = ca.project_out((a @ v).reshape(2, dim, hh, ww))
    with kernels.use_fast_kernels(False):
        torch.testing.assert_close(ca(y), want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ca(y), want, atol=1e-5, rtol=1e-4)  # autograd path
    torch.testing.assert_close(kernels.channel_attention(ca, x, norm, residual=True), want + x, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # inference: strips, Gram summed over them
        torch.testing.assert_close(ca(y), want, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(kernels.channel_attention(ca, x, norm, residual=True), want + x,
                                   atol=1e-5, rtol=1e-4)
    ffn = blocks.GatedDconvFFN(dim, ffn_factor)
    h1, h2 = ffn.dwconv(ffn.project_in(y)).chunk(2, dim=1)
    want = ffn.project_out(nn.functional.gelu(h1) * h2)
    with kernels.use_fast_kernels(False):
        torch.testing.assert_close(ffn(y), want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(kernels.gated_ffn(ffn, x, norm, residual=True), want + x, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # inference: strips with a halo row for the 3x3 conv
        torch.testing.assert_close(ffn(y), want, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(kernels.gated_ffn(ffn, x, norm, residual=True), want + x, atol=1e-5, rtol=1e-4)


# The C kernels use their own approximations (a base-2 softmax exponential in the window
# attention, a rational erf in the FFN's GELU, vector reciprocals): against the same blocks in
# float64 they must be as accurate as torch's float32 code of the literal definitions.
@pytest.mark.parametrize("branch", ["ffn", "channel_attention", "window_attention"])
def test_native_kernels_are_as_accurate_as_torch_float32(monkeypatch, branch):
    monkeypatch.setenv("FUSIONLAB_NATIVE", "1")
    if native.load("restormer") is None or native.load("window_attention") is None:
        pytest.skip("no C compiler: the C kernels are not built")
    torch.manual_seed(0)
    dim = 32
    x = (torch.randn(1, dim, 40, 48) * 2 + 1).contiguous(memory_format=torch.channels_last)  # off-centre LN input
    norm = blocks.LayerNorm2d(dim)
    module = {"ffn": lambda: blocks.GatedDconvFFN(dim, 2.0),
              "channel_attention": lambda: blocks.ChannelAttention(dim, heads=2),
              "window_attention": lambda: blocks.OverlapWindowAttention(dim, heads=2, head_dim=16)}[branch]()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
        for prm in module.parameters():
            prm.mul_(3.0)  # GELU inputs over +-8 (the erf's whole range), sharp softmaxes
        if branch == "ffn":
            got = kernels._ffn_native(module, x, norm, residual=False)
        elif branch == "window_attention":
            got = kernels._window_attention_native(module, x, norm, residual=False)
        else:
            assert kernels._channel_stats_native(module, kernels._nhwc(x), norm) is not None
            got = kernels.channel_attention(module, x, norm)
        assert got is not None, "the C kernel did not run"
        with kernels.use_fast_kernels(False):
            torch32 = module(norm(x))
            if branch == "ffn":
                h1 = module.dwconv(module.project_in(norm(x)))[:, :module.project_out.weight.shape[1]]
                assert h1.abs().max() > 6, "the test should reach the erf's tails"
            want = module.double()(norm.double()(x.double()))
    err_c = (got.double() - want).abs().max().item()
    err_torch = (torch32.double() - want).abs().max().item()
    assert err_c <= 2 * err_torch + 1e-7, f"C kernel error {err_c:.2e} vs torch float32 {err_torch:.2e}"


@pytest.mark.parametrize("n", [16, 48])
@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (13, 21), (40, 7)])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("bias", [False, True])
def test_unet_end_convs_in_c_match_torch(monkeypatch, n, hw, threads, bias):
    """The patch embedding (1 -> N) and the output conv (N -> 1) in C equal torch's conv: every
    border tap of a 3x3 conv on maps down to 1x1, rows of fewer than 8 interior pixels."""
    monkeypatch.setenv("FUSIONLAB_NATIVE", "1")
    if native.load("unet") is None:
        pytest.skip("no C compiler: the C kernels are not built")
    calls = []
    real = kernels._c_function
    monkeypatch.setattr(kernels, "_c_function", lambda sym: calls.append(sym) or real(sym))
    torch.manual_seed(0)
    embed, head = nn.Conv2d(1, n, 3, padding=1, bias=bias), nn.Conv2d(n, 1, 3, padding=1, bias=bias)
    x = torch.rand(2, 1, *hw)
    feats = torch.randn(2, n, *hw).contiguous(memory_format=torch.channels_last)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            got = kernels.end_conv(embed, x)
            assert got.is_contiguous(memory_format=torch.channels_last) and got.shape == (2, n, *hw)
            torch.testing.assert_close(got, embed(x), atol=1e-6, rtol=1e-5)
            got = kernels.end_conv(head, feats)
            assert got.shape == (2, 1, *hw) and got.is_contiguous()
            torch.testing.assert_close(got, head(feats), atol=1e-5, rtol=1e-5)
    finally:
        torch.set_num_threads(old)
    assert calls == ["conv3x3_from1_f32", "conv3x3_to1_f32"], calls
    # autograd, or a shape the kernels do not take: torch's conv, no C call
    calls.clear()
    torch.testing.assert_close(kernels.end_conv(embed, x), embed(x))
    with torch.no_grad():
        wide = nn.Conv2d(n, 2, 3, padding=1)
        torch.testing.assert_close(kernels.end_conv(wide, feats), wide(feats))
    assert calls == []


@pytest.mark.parametrize("head", ["residual", "blend"])
def test_output_heads_with_the_c_end_convs_equal_the_literal_network(head):
    """Both heads with the C end convs (random output weights: the blend head's start at zero
    would hide them) equal the literal network on odd sizes, and hooks on the end convs still
    see their outputs."""
    torch.manual_seed(0)
    model = create_model("dtpf_student", head=head).eval()
    with torch.no_grad():
        model.output.weight.normal_(0, 0.05)
    seen = {}

    def keep(name):
        def hook(module, args, out):
            seen.setdefault(name, tuple(out.shape))
        return hook

    model.output.register_forward_hook(keep("output"))
    model.encoder_ir.patch_embed.register_forward_hook(keep("embed"))
    ir, vi = luma_pair(2, 21, 30)
    with torch.no_grad():
        fast = model(ir, vi)
        with kernels.use_fast_kernels(False):
            literal = model(ir, vi)
    assert seen == {"output": (2, 1, 24, 32), "embed": (2, 16, 24, 32)}  # padded to multiples of 8
    assert fast.shape == (2, 1, 21, 30) and fast.is_contiguous()
    torch.testing.assert_close(fast, literal, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,hw", [("dtpf_student", (19, 42)), ("dtpf_teacher_tiny", (45, 29))])
def test_fast_kernels_equal_the_literal_network(name, hw):
    """The default (fast) network is the readable one within 1e-5: forward, features, gradients."""
    torch.manual_seed(0)
    model = create_model(name)
    ir, vi = luma_pair(1, *hw)
    text = text_for(model, 1)
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
    # summed over millions of weights, float32 reassociation moves a few gradients by ~5e-5
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-3)
