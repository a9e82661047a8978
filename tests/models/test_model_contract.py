"""The contract of every registered model and fusion module.

Parametrised from the registries when the file is collected (``MODELS``, ``FUSION_MODULES``),
so registering a new variant or module adds its tests here without editing this file
(tests/test_registry.py shows it with a scratch registration).

Models are shrunk to a tiny width (:data:`SMALL`) so even the 40 M-parameter teacher runs in
a second; what defines the variant (text branch, FFN factor, fusion module, FiLM mode, cross
levels) is kept.
"""
from __future__ import annotations

import pytest
import torch

from fusionlab.errors import ConfigError
from fusionlab.models import FUSION_MODULES, create_model, list_models
from support import luma_pair, text_for

#: FusionNet variants get the full contract; peers (published weights) and baselines (rules)
#: the calling-convention contract below
FUSIONNETS = list_models("fusionnet")
EXTERNAL = list_models("peer") + list_models("baseline")

#: width overrides applied to every variant (the full-size ones are measured by test_models.py)
SMALL = dict(dim=8, blocks=(1, 1, 1, 1), heads=(1, 2, 4, 8), spatial_heads=(1, 1, 2, 2), head_dim=8, refinement=1)
#: the attention settings a network offers its fusion modules (each takes those it names)
ATTENTION = dict(channel_heads=2, spatial_heads=1, head_dim=8, window=8, overlap=0.5, cross=True)

pytestmark = pytest.mark.usefixtures("one_thread")


def _all_parameters_learn(module: torch.nn.Module) -> None:
    missing = [n for n, p in module.named_parameters() if p.grad is None]
    assert not missing, f"parameters without a gradient: {missing[:5]}"
    bad = [n for n, p in module.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad[:5]}"


@pytest.mark.parametrize("name", FUSIONNETS)
@pytest.mark.parametrize("hw", [(13, 21), (8, 8)])  # odd sizes (padding, partial windows) and one window
def test_model_forward_backward_at_odd_sizes(name, hw):
    torch.manual_seed(0)
    model = create_model(name, **SMALL)
    ir, vi = luma_pair(2, *hw)
    out, feats = model(ir, vi, text_for(model, 2), return_features=True)
    assert out.shape == ir.shape and torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    assert [f.shape[1] for f in feats] == list(model.feature_channels)
    (out.mean() + sum(f.square().mean() for f in feats)).backward()
    _all_parameters_learn(model)


@pytest.mark.parametrize("name", EXTERNAL)
def test_peer_and_baseline_calling_convention(name, request):
    """Any registered model: ``model(ir, vi_y) -> (B, 1, H, W)`` in [0, 1] at odd sizes, finite,
    batch independent in eval mode, gradients flow to the inputs (usable as a frozen teacher)."""
    from fusionlab.models import model_kind

    if model_kind(name) == "peer":
        request.getfixturevalue("shared_dir")  # published weights live in ../shared/peers (skips when absent)
    model = create_model(name).eval()
    ir, vi = luma_pair(2, 37, 45)
    ir.requires_grad_(True)
    out = model(ir, vi)
    assert out.shape == ir.shape and torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    with torch.no_grad():
        torch.testing.assert_close(model(ir[:1], vi[:1]), out[:1].detach(), rtol=1e-4, atol=1e-5)
    if name != "visible_only":  # the visible image alone does not depend on the infrared input
        out.mean().backward()
        assert ir.grad is not None and torch.isfinite(ir.grad).all()


@pytest.mark.parametrize("name", FUSIONNETS)
def test_model_is_deterministic_in_eval_mode_and_batch_independent(name):
    torch.manual_seed(0)
    model = create_model(name, **SMALL).eval()
    ir, vi = luma_pair(2, 11, 9)
    text = text_for(model, 2)
    with torch.no_grad():
        both = model(ir, vi, text)
        first = model(ir[:1], vi[:1], None if text is None else text[:1])
    torch.testing.assert_close(both[:1], first, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", FUSION_MODULES.names())
def test_fusion_module_contract(name):
    torch.manual_seed(0)
    module = FUSION_MODULES.build(name, dim=8, **FUSION_MODULES.accepted(name, ATTENTION))
    f_ir, f_vi = (torch.randn(2, 8, 11, 13, requires_grad=True) for _ in range(2))
    fused = module(f_ir, f_vi)
    assert fused.shape == f_ir.shape and torch.isfinite(fused).all()
    fused.square().mean().backward()
    _all_parameters_learn(module)
    assert f_ir.grad is not None and f_vi.grad is not None  # both streams reach the output
    with pytest.raises(ConfigError, match="unknown argument"):  # a misspelt option is not ignored
        FUSION_MODULES.build(name, dim=8, not_an_option=1)


@pytest.mark.parametrize("fusion", FUSION_MODULES.names())
def test_every_fusion_module_inside_a_network(fusion):
    torch.manual_seed(0)
    model = create_model("dtpf_teacher_tiny", fusion=fusion, cross_levels=(1, 2, 3, 4))
    ir, vi = luma_pair(2, 24, 40)
    out = model(ir, vi, text_for(model, 2))
    out.sum().backward()
    assert model.config.fusion == fusion and out.shape == ir.shape and torch.isfinite(out).all()
    _all_parameters_learn(model)
