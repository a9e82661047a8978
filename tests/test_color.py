"""Colour (fusionlab.color): YCbCr round trip, luma, and the fuse-Y-keep-CbCr convention that
inference, evaluation, the demo, the losses and the synthetic references share."""
from __future__ import annotations

import pytest
import torch

from fusionlab import color
from fusionlab import io as fio
from fusionlab.errors import InvalidTensorError


def _reference_colorize(y: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """The convention written out with the JPEG full-range YCbCr matrix (independent of kornia)."""
    r, g, b = rgb.unbind(1)
    cb = 0.5 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 + 0.5 * r - 0.418688 * g - 0.081312 * b
    y = y[:, 0].clamp(0, 1)
    out = torch.stack([y + 1.402 * (cr - 0.5), y - 0.344136 * (cb - 0.5) - 0.714136 * (cr - 0.5),
                       y + 1.772 * (cb - 0.5)], 1)
    return out.clamp(0, 1)


def test_ycbcr_round_trip_and_luma():
    x = torch.rand(2, 3, 9, 11)
    # exact on every kornia: kornia < 0.9's rounded inverse (off by 3e-4) is replaced in color.py
    assert torch.allclose(fio.ycbcr_to_rgb(fio.rgb_to_ycbcr(x)), x, atol=1e-5)  # io re-exports color's
    y = color.to_luma(x)
    assert y.shape == (2, 1, 9, 11)
    assert torch.allclose(y[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2], atol=1e-6)
    assert color.to_luma(y) is y  # gray stays as it is
    assert torch.equal(y, color.rgb_to_ycbcr(x)[:, :1])  # the Y of the YCbCr split, to the bit
    with pytest.raises(InvalidTensorError, match="1\\|3"):
        color.to_luma(torch.rand(1, 2, 4, 4))


def test_exact_inverse_is_kornias_own_where_kornia_has_it():
    """On kornia >= 0.9 ycbcr_to_rgb is kornia's, and the formula used on older kornia gives the
    same tensor to the bit (so Python 3.10 installs fuse exactly like 3.11+ ones)."""
    import kornia

    x = color.rgb_to_ycbcr(torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="shape of"):
        color.ycbcr_to_rgb(torch.rand(1, 2, 4, 4))
    if not color._KORNIA_EXACT_YCBCR:
        pytest.skip(f"kornia {kornia.__version__} < 0.9 has no exact inverse to compare with")
    assert torch.equal(color._exact_ycbcr_to_rgb(x).clamp(0, 1), kornia.color.ycbcr_to_rgb(x).clamp(0, 1))


def test_colour_restore_keeps_the_visible_chroma_within_one_grey_level():
    g = torch.Generator().manual_seed(0)
    vi, fused_y = torch.rand(2, 3, 17, 23, generator=g), torch.rand(2, 1, 17, 23, generator=g) * 1.2 - 0.1
    out = color.colorize(fused_y, vi)
    assert out.shape == vi.shape and 0 <= out.min() and out.max() <= 1
    assert (out - _reference_colorize(fused_y, vi)).abs().max() <= 1 / 255
    # the visible image's own luma gives back the visible image
    assert (color.colorize(color.to_luma(vi), vi) - vi).abs().max() <= 1 / 255
    # gray visible image: the fused luma itself (clamped)
    assert torch.equal(color.colorize(fused_y, vi[:, :1]), fused_y.clamp(0, 1))


def test_split_merge_and_fuse_in_luma():
    g = torch.Generator().manual_seed(1)
    ir, vi = torch.rand(1, 1, 8, 9, generator=g), torch.rand(1, 3, 8, 9, generator=g)
    y, cbcr = color.split_luma(vi)
    assert y.shape == (1, 1, 8, 9) and cbcr.shape == (1, 2, 8, 9)
    assert (color.merge_luma(y, cbcr) - vi).abs().max() < 1e-5
    assert color.split_luma(y) == (y, None) and color.merge_luma(y, None) is y
    fused = color.fuse_in_luma(torch.maximum, ir, vi)  # pixel max in Y, colours kept
    assert torch.allclose(fused, color.colorize(torch.maximum(ir, y), vi))
    assert fused.shape == vi.shape and color.fuse_in_luma(torch.maximum, ir, y).shape == (1, 1, 8, 9)


def test_every_colour_user_applies_the_same_convention():
    """Inference, evaluation and the losses restore colour exactly as fusionlab.color does."""
    from fusionlab.losses import color_loss
    from fusionlab.models import fuse_pair
    from fusionlab.train.evaluation import colorize as evaluation_colorize

    g = torch.Generator().manual_seed(2)
    ir, vi = torch.rand(1, 1, 12, 14, generator=g), torch.rand(1, 3, 12, 14, generator=g)
    keep_ir = lambda ir_y, vi_y, text=None: ir_y  # noqa: E731  (a "network" that returns the IR luma)
    model = torch.nn.Module()
    model.forward = keep_ir
    assert torch.allclose(fuse_pair(model, ir, vi), color.colorize(ir, vi))
    assert evaluation_colorize is color.colorize
    assert color_loss(color.to_luma(vi), ir, vi).abs().max() < 1e-5  # its own luma: no colour shift
