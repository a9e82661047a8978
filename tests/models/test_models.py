"""Models: the paper's variants and their sizes, any-size I/O, FiLM and text, input validation.
Every registered model and fusion module is also run by test_model_contract.py."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from fusionlab.errors import ConfigError, InvalidTensorError, ShapeMismatchError
from fusionlab.models import FUSION_MODULES, FiLM, blocks, count_parameters, create_model, list_models, model_config
from support import luma_pair

#: the paper's variants (Tables 3 and 6) and fusion modules (Table 5): they must exist
PAPER_MODELS = ("dtpf_teacher", "dtpf_student", "dtpf_student_w32", "dtpf_student_w48")
PAPER_FUSIONS = ("scfm", "concat_conv1x1", "unlearned_weight_attention", "dynamic_weight_conv", "multiscale_conv")

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------ registry and sizes
def test_registry_has_all_variants_and_fusion_modules():
    assert set(PAPER_MODELS) <= set(list_models())
    assert set(PAPER_FUSIONS) <= set(FUSION_MODULES.names())
    for name in PAPER_FUSIONS:  # Table 5 rows are documented
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


@pytest.mark.parametrize("hw", [(97, 131), (1, 1), (5, 300), (64, 64), (8, 17)])
def test_any_size_round_trips(hw):
    model = create_model("dtpf_student_tiny").eval()
    ir, vi = luma_pair(1, *hw)
    with torch.no_grad():
        out = model(ir, vi)
    assert out.shape == (1, 1, *hw) and torch.isfinite(out).all()


def test_unlearned_weight_attention_is_parameter_free_and_convex():
    f_ir, f_vi = torch.randn(2, 16, 12, 20), torch.randn(2, 16, 12, 20)
    uwa = FUSION_MODULES.build("unlearned_weight_attention", dim=16)
    assert count_parameters(uwa) == 0
    fused = uwa(f_ir, f_vi)  # a convex per-pixel combination of the two streams
    lo, hi = torch.minimum(f_ir, f_vi), torch.maximum(f_ir, f_vi)
    assert (fused >= lo - 1e-6).all() and (fused <= hi + 1e-6).all()


# ------------------------------------------------------------------ blocks vs definitions


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
    ir, vi = luma_pair(2, 16, 16)
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
    ir, vi = luma_pair(1, 16, 16)
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
    # an odd halo (8 * 0.4 -> 3 pixels) cannot be split equally around the query window: the
    # literal code failed with a shape error, the fast kernels read past the padded map
    with pytest.raises(ConfigError, match="must be even"):
        create_model("dtpf_student_tiny", overlap=0.4)
    with pytest.raises(ValueError, match="must be even"):
        blocks.OverlapWindowAttention(16, heads=1, window=8, overlap=0.4)
    assert create_model("dtpf_student_tiny", width=16).config.dim == 16
    assert model_config("dtpf_student").text_dim is None and model_config("dtpf_teacher").text_dim == 512


def test_training_clamp_passes_gradients():
    model = create_model("dtpf_student_tiny")
    ir, vi = luma_pair(1, 16, 16)
    with torch.no_grad():
        model.output.weight.fill_(1.0)  # push the output far above 1
    out = model(ir, vi)
    assert out.max() <= 1
    out.sum().backward()
    assert model.output.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------ colour and tiles


# ------------------------------------------------------------------ checkpoints


# ------------------------------------------------------------------ profile


# ------------------------------------------------------------------ CLI


def test_blend_head_starts_as_soft_maximum_and_learns():
    from fusionlab.models.net import BLEND_SHARPNESS
    from fusionlab.train.trainer import zero_init_head

    model = create_model("dtpf_student_tiny", head="blend")
    zero_init_head(model)
    ir, vi = luma_pair(2, 20, 28)
    out = model.eval()(ir, vi)
    w = torch.sigmoid(BLEND_SHARPNESS * (ir - vi))
    assert torch.allclose(out, (w * ir + (1 - w) * vi).clamp(0, 1), atol=1e-6)
    assert (out - torch.maximum(ir, vi)).abs().mean() < (vi - torch.maximum(ir, vi)).abs().mean()
    with torch.no_grad():
        model.output.weight.normal_()
    mixed = model(ir, vi)  # any head output: a convex mix of the two sources, pixel by pixel
    assert (mixed >= torch.minimum(ir, vi) - 1e-6).all() and (mixed <= torch.maximum(ir, vi) + 1e-6).all()
    model.train()(ir, vi).mean().backward()
    assert model.output.weight.grad.abs().sum() > 0 and model.blend_sharpness.grad is not None
    with pytest.raises(ConfigError, match="head='sum'"):
        create_model("dtpf_student_tiny", head="sum")
