"""The contract of every registered metric (``METRICS``): the declared range, batch = per image,
symmetry in the two sources where declared, and a one-line error below the declared smallest
size. Parametrised from the registry when collected, so a newly registered metric is tested
without editing this file."""
from __future__ import annotations

import math

import pytest
import torch

from fusionlab.errors import InvalidTensorError
from fusionlab.metrics import METRICS, compute_metrics, metric_info

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(side: int, batch: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ir, vi = (torch.randint(0, 256, (batch, 1, side, side + 3), generator=g).double() for _ in range(2))
    fused = torch.round(0.5 * (ir + vi) + torch.randint(-20, 21, ir.shape, generator=g)).clamp(0, 255)
    return ir, vi, fused


@pytest.mark.parametrize("name", METRICS.names())
def test_metric_contract(name):
    info = metric_info(name)
    ir, vi, fused = _images(max(info.min_side, 8))
    v = compute_metrics(ir, vi, fused, [name])[name]
    assert v.shape == (3,) and v.dtype == torch.float64 and torch.isfinite(v).all(), v
    lo, hi = info.bounds
    assert ((v >= lo - 1e-9) & (v <= hi + 1e-9)).all(), (name, v.tolist(), info.bounds)
    one = compute_metrics(ir[1:2], vi[1:2], fused[1:2], [name])[name]
    torch.testing.assert_close(one, v[1:2], rtol=1e-9, atol=1e-12)  # batch = per image
    if info.symmetric:
        torch.testing.assert_close(compute_metrics(vi, ir, fused, [name])[name], v, rtol=1e-9, atol=1e-12)
    if info.min_side > 1:
        small = [t[..., :info.min_side - 1, :info.min_side - 1] for t in (ir, vi, fused)]
        with pytest.raises(InvalidTensorError, match="too small") as e:
            compute_metrics(*small, [name])
        assert "\n" not in str(e.value)
    assert isinstance(info.lower_is_better, bool) and not math.isnan(info.column)
