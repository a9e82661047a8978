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
    tiled = sliding_window(model, ir, vi, tile=32, overlap=8)
    torch.testing.assert_close(tiled, whole)
    net = create_model("dtpf_student_tiny").eval()
    ir, vi = luma_pair(1, 40, 72)
    with torch.no_grad():
        full = net(ir, vi)
    torch.testing.assert_close(fuse_pair(net, ir, vi, tile=128), full)  # one tile = whole image
    t = fuse_pair(net, ir, vi, tile=32, overlap=8)
    assert t.shape == full.shape and (t - full).abs().mean() < 0.1
