"""The contract of every registered loss: fusion losses (``LOSSES``) and distillation terms
(``DISTILL_LOSSES``). Parametrised from the registries when collected, so a newly registered
loss is tested without editing this file."""
from __future__ import annotations

import pytest
import torch

from fusionlab.losses import DISTILL_LOSSES, LOSSES, DistillLoss, FusionLoss

pytestmark = pytest.mark.usefixtures("one_thread")


def _sources(b=2, h=13, w=17, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: 0.05 + 0.9 * torch.rand(*s, generator=g)  # noqa: E731  (away from the clamp edges)
    return r(b, 1, h, w).requires_grad_(True), r(b, 1, h, w), r(b, 3, h, w)


@pytest.mark.parametrize("channels", [3, 1], ids=["rgb_vi", "gray_vi"])
@pytest.mark.parametrize("name", LOSSES.registered())
def test_fusion_loss_contract(name, channels):
    fused, ir, vi = _sources()
    vi = vi if channels == 3 else vi[:, :1]
    per_sample = LOSSES.get(name)(fused, ir, vi)
    assert per_sample.shape == (2,) and torch.isfinite(per_sample).all() and (per_sample >= 0).all()
    per_sample.sum().backward()
    assert fused.grad is not None and torch.isfinite(fused.grad).all()
    # a registered loss can be weighted and switched on by name
    total, parts = FusionLoss({name: 1.0}, losses=[name])(fused.detach(), ir, vi)
    assert set(parts) == {name} and torch.isfinite(total)


@pytest.mark.parametrize("name", DISTILL_LOSSES.registered())
def test_distill_term_contract(name):
    torch.manual_seed(0)
    tc, sc = [8, 12], [4, 6]
    student_out, ir, vi = _sources(h=16, w=16)
    teacher_out = torch.rand(2, 1, 16, 16)
    t_feats = [torch.randn(2, 8, 8, 8), torch.randn(2, 12, 4, 4)]
    s_feats = [torch.randn(2, 4, 8, 8, requires_grad=True), torch.randn(2, 6, 4, 4, requires_grad=True)]
    crit = DistillLoss(tc, sc, losses=[name])
    total, parts = crit(student_out, teacher_out, s_feats, t_feats, ir, vi)
    assert total.shape == () and torch.isfinite(total) and set(parts) == {name}
    total.backward()
    reached = [t.grad for t in (student_out, *s_feats) if t.grad is not None]
    assert reached and all(torch.isfinite(g).all() for g in reached)  # the student learns from it
    assert all(p.grad is not None for p in crit.parameters())  # its own parameters (adapters) learn too
