"""Losses: shapes, gradcheck on small tensors, zero where it must be zero, weight tables,
distillation adapters receiving gradients."""
from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from fusionlab.errors import ConfigError, InvalidTensorError
from fusionlab.io import to_luma
from fusionlab.losses import (DEFAULT_WEIGHTS, DEGRADATION_WEIGHTS, LOSS_NAMES, LOSSES, DistillLoss,
                              FeatureAdapters, FusionLoss, color_loss, consistency_loss, feature_loss,
                              gradient_max_loss, intensity_max_loss, resolve_weights, result_loss, ssim_loss)


# one torch thread (fixture in conftest.py): results do not depend on it, speed on a busy CPU does
pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(b=2, h=16, w=16, seed=0, dtype=torch.float32, lo=0.05, hi=0.95):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: (lo + (hi - lo) * torch.rand(*s, generator=g)).to(dtype)  # noqa: E731
    return r(b, 1, h, w), r(b, 1, h, w), r(b, 3, h, w)  # fused, ir, vi


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_shapes_and_positive(name):
    fused, ir, vi = _batch(b=3, h=20, w=24)
    out = LOSSES.get(name)(fused, ir, vi)
    assert out.shape == (3,) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and (out >= 0).all()
    if name != "color":  # luma output recombined with VI colour: only clipping shifts colour
        assert (out > 0).all()


def test_zero_where_it_must_be_zero():
    _, ir, vi = _batch(b=2, h=24, w=24)
    y = to_luma(vi)
    assert intensity_max_loss(torch.maximum(ir, y), ir, vi).abs().max() < 1e-7
    same = ir.clone()
    for fn in (gradient_max_loss, ssim_loss, consistency_loss):
        assert fn(same, same, same).abs().max() < 1e-5, fn.__name__
    # colour: the visible image itself (RGB) or its own luma recombined with its CbCr
    assert color_loss(vi, ir, vi).abs().max() < 1e-6
    assert color_loss(y, ir, vi).abs().max() < 1e-3  # the YCbCr round trip: up to 3e-4 with kornia < 0.9
    # gray visible image: nothing to compare colours with
    assert color_loss(y, ir, y).abs().max() == 0
    # gradient max: taking the stronger edge everywhere costs nothing, losing edges costs
    flat = torch.full_like(ir, 0.5)
    assert gradient_max_loss(flat, ir, vi).min() > 0.1
    # ssim rises as the fused image departs from the sources
    assert (ssim_loss(flat, ir, vi) > ssim_loss(0.5 * (ir + y), ir, vi)).all()


def test_color_loss_penalises_out_of_gamut_luma():
    _, ir, vi = _batch(b=1, h=16, w=16)
    vi = vi * torch.tensor([1.0, 0.1, 0.1]).view(1, 3, 1, 1)  # saturated red: little room upwards
    assert color_loss(torch.ones_like(ir), ir, vi) > 10 * color_loss(to_luma(vi), ir, vi) + 1e-3


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_gradcheck(name):
    fused, ir, vi = _batch(b=1, h=9, w=9, dtype=torch.float64, lo=0.2, hi=0.8)  # away from clamp edges
    fused.requires_grad_(True)
    fn = LOSSES.get(name)
    if name == "color":
        # luma path (recombined with VI CbCr) and RGB path
        assert gradcheck(lambda f: fn(f, ir, vi), (fused,), eps=1e-6, atol=1e-4)
        rgb = vi.clone().requires_grad_(True)
        assert gradcheck(lambda f: fn(f, ir, vi.flip(-1)), (rgb,), eps=1e-6, atol=1e-4)
    else:
        assert gradcheck(lambda f: fn(f, ir, vi), (fused,), eps=1e-6, atol=1e-4)


def test_bad_shapes_raise():
    fused, ir, vi = _batch()
    with pytest.raises(InvalidTensorError, match="shape"):
        intensity_max_loss(fused[0], ir, vi)
    with pytest.raises(InvalidTensorError, match="share"):
        ssim_loss(fused[:, :, :8], ir, vi)


def test_weight_tables_and_ablation_switches():
    t = resolve_weights("fixed")
    assert t["normal"] == {"int": 24.0, "grad": 48.0, "ssim": 40.0, "color": 12.0, "consistency": 0.0}
    assert DEFAULT_WEIGHTS["int"] == 24 and set(DEGRADATION_WEIGHTS) >= {"normal", "low_light", "ir_noise"}
    d = resolve_weights("degradation", losses=["int", "grad"])
    assert d["low_light"]["int"] == 48 and d["low_light"]["ssim"] == 0 and d["low_light"]["consistency"] == 0
    assert resolve_weights({"int": 1})["normal"] == {"int": 1.0, "grad": 0.0, "ssim": 0.0, "color": 0.0,
                                                     "consistency": 0.0}
    with pytest.raises(ConfigError, match="unknown loss 'edge'"):
        resolve_weights("fixed", losses=["edge"])
    with pytest.raises(ConfigError, match="'normal' row"):
        resolve_weights({"low_light": {"int": 1}})
    with pytest.raises(ConfigError, match="must be >= 0"):
        resolve_weights({"int": -1})
    with pytest.raises(ConfigError, match="all fusion loss weights are zero"):
        FusionLoss("fixed", losses=["consistency"])


def test_fusion_loss_per_sample_weights_and_parts():
    fused, ir, vi = _batch(b=2, h=16, w=16)
    crit = FusionLoss("degradation")
    total_n, parts_n = crit(fused, ir, vi, ["normal", "normal"])
    total_l, _ = crit(fused, ir, vi, ["low_light", "low_light"])
    assert total_l != total_n  # the row changes with the degradation
    assert abs(sum(parts_n.values()) - float(total_n)) < 1e-4
    # a label the table does not know falls back to 'normal'; None = all normal
    assert torch.allclose(crit(fused, ir, vi, ["sensor_xyz", "normal"])[0], total_n)
    assert torch.allclose(crit(fused, ir, vi)[0], total_n)
    only_int = FusionLoss("fixed", losses=["int"])
    t, p = only_int(fused, ir, vi)
    assert set(p) == {"int"} and torch.allclose(t, 24 * intensity_max_loss(fused, ir, vi).mean())
    with pytest.raises(InvalidTensorError, match="labels"):
        crit(fused, ir, vi, ["normal"])


def test_distill_loss_adapters_get_gradients_and_zero_cases():
    torch.manual_seed(0)
    tc, sc = [8, 12], [4, 6]
    t_feats = [torch.randn(2, 8, 8, 8), torch.randn(2, 12, 4, 4)]
    s_feats = [torch.randn(2, 4, 8, 8, requires_grad=True), torch.randn(2, 6, 4, 4, requires_grad=True)]
    fused_s = torch.rand(2, 1, 16, 16, requires_grad=True)
    fused_t, ir, vi = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16), torch.rand(2, 3, 16, 16)
    crit = DistillLoss(tc, sc)
    total, parts = crit(fused_s, fused_t, s_feats, t_feats, ir, vi)
    assert set(parts) == {"base", "feat", "res"}
    total.backward()
    for p in crit.adapters.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(f.grad is not None for f in s_feats) and fused_s.grad is not None

    # L_res: zero when the student reproduces the teacher; L_feat: zero when the student's
    # features equal the adapted teacher features (with or without normalisation)
    assert result_loss(fused_t, fused_t) == 0
    ad = FeatureAdapters(tc, sc)
    with torch.no_grad():
        target = ad(t_feats)
    assert feature_loss(t_feats, target, ad, normalize=False) == 0
    assert feature_loss(t_feats, [2 * x for x in target], ad, normalize=True) < 1e-6
    # student features at another resolution: adapted maps are resized
    assert torch.isfinite(feature_loss(t_feats, [torch.randn(2, 4, 16, 16), torch.randn(2, 6, 8, 8)], ad))


def test_distill_loss_switches_and_errors():
    crit = DistillLoss([8], [4], losses=["res"], alphas={"res": 2.0})
    assert crit.adapters is None and crit.base is None and list(crit.parameters()) == []
    a, b = torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8)
    total, parts = crit(a, b, None, None, a, a)
    assert float(total) == pytest.approx(2.0) and set(parts) == {"res"}
    with pytest.raises(ConfigError, match="unknown distillation loss 'kl'"):
        DistillLoss([8], [4], losses=["kl"])
    with pytest.raises(ConfigError, match="feature levels"):
        DistillLoss([8, 16], [4], losses=["feat"])
    with pytest.raises(ConfigError, match="unknown distillation weight"):
        DistillLoss([8], [4], alphas={"beta": 1})


def test_distill_loss_reads_checkpoints_of_the_old_key_layout():
    """Resume state written before the terms were registered (``adapters.*``) still loads."""
    crit = DistillLoss([8, 12], [4, 6])
    old = {k.replace("terms.feat.", ""): v + 1 for k, v in crit.state_dict().items()}
    assert any(k.startswith("adapters.") for k in old)
    crit.load_state_dict(old)
    assert all(torch.equal(crit.state_dict()[k], v) for k, v in
               {"terms.feat." + k if k.startswith("adapters.") else k: v for k, v in old.items()}.items())
