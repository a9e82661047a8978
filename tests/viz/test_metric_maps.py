"""The per-pixel maps behind the metrics reproduce the metrics."""
from __future__ import annotations

import pytest
import torch

from fusionlab.data import make_pair
from fusionlab.errors import ShapeMismatchError


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=1, size=(48, 64))

def test_metric_maps_reproduce_the_metrics(pair):
    from fusionlab.metrics import average_gradient, to_metric_scale
    from fusionlab.metrics.qabf import qabf
    from fusionlab.metrics.vif import vif
    from fusionlab.viz import metric_maps as M

    ir, vi = to_metric_scale(pair["ir"]), to_metric_scale(pair["vi"])
    f = torch.maximum(ir, vi)
    scales = M.vif_scale_maps(ir, f)
    assert len(scales) == 4 and scales[0]["ref"].shape == (48, 64)
    got = sum(s["num_sum"] for s in scales) / sum(s["den_sum"] for s in scales)
    assert got == pytest.approx(float(vif(ir, f)[0]), rel=1e-6)  # vif() convolves by FFT
    q = M.qabf_maps(f, ir, vi)
    weighted = (q["q_ir"] * q["g_ir"] + q["q_vi"] * q["g_vi"]).sum() / (q["g_ir"] + q["g_vi"]).sum()
    assert weighted == pytest.approx(float(qabf(f, ir, vi)[0]), rel=1e-6)
    assert M.gradient_maps_of(f).mean() == pytest.approx(float(average_gradient(f)[0]))
    s = M.ssim_maps(f, ir, vi)
    assert s["ir"].shape == (42, 58) and s["vi"].max() <= 1.0 + 1e-9
    with pytest.raises(ShapeMismatchError):
        M.gradient_maps_of(torch.zeros(2, 1, 8, 8))
