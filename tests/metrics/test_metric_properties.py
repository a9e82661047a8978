"""Property tests (hypothesis) for the metric suite on random shapes and dtypes (issue 10).

Complements tests/test_metrics.py (reference values, 41..60 px images): here every shape
from 1x1 up, thin 1xN / Nx1 strips, 2x2, and the dtypes users pass (uint8 tensors,
uint8-valued float32, float64, non-integer floats). Each metric is either defined (finite,
in its documented range) or refused with a one-line InvalidTensorError; never a torch error,
never a silent NaN where the value is defined.
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fusionlab.errors import InvalidTensorError, ShapeMismatchError
from fusionlab.metrics import (EXTRA_METRICS, METRIC_NAMES, FusionMetrics, compute_metrics, entropy, metric_info,
                               mutual_information, pearson, ssim, to_metric_scale, vif)
from fusionlab.metrics.ssim import fusion_ssim

ALL = list(METRIC_NAMES + EXTRA_METRICS)
NO_VIF = [m for m in ALL if m != "VIF"]
FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = ("uint8", "u8_float32", "float64", "float64_noninteger")

#: smallest side and documented range of each metric, from the metrics registry (cddfuse
#: convention: SSIM needs a 7x7 window, VIF a 41x41 Gaussian at its coarsest scale; SSIM is a
#: SUM of two SSIMs, hence up to 2)
MIN_SIDE = {m: metric_info(m).min_side for m in ALL}
RANGES = {m: metric_info(m).bounds for m in ALL}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny images: torch's intra-op threads only spin-wait for each other on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def images(seed: int, shape: tuple[int, int], dtype: str, n: int = 3, batch: int = 1) -> list[torch.Tensor]:
    """``n`` random ``(batch, 1, H, W)`` images on 0..255 in the requested dtype."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randint(0, 256, (batch, 1, *shape), generator=g)
        if dtype == "uint8":
            x = x.to(torch.uint8)
        elif dtype == "u8_float32":
            x = x.float()
        elif dtype == "float64":
            x = x.double()
        else:  # non-integer values, still within 0..255
            x = (x.double() * 0.999 + torch.rand(x.shape, generator=g, dtype=torch.float64) * 0.25)
        out.append(x)
    return out


def _flat(x: torch.Tensor) -> bool:
    return bool((x == x.flatten()[0]).all())


def undefined(name: str, ir, vi, fused) -> bool:
    """Cases where the metric is 0/0 by definition (documented NaN), not a bug."""
    if name == "CC":
        return _flat(fused) or _flat(ir) or _flat(vi)
    if name == "SCD":
        return any(_flat(t) for t in (ir, vi, fused - ir, fused - vi))
    if name == "Qabf":
        return _flat(ir) and _flat(vi)
    return False


shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))


@FAST
@given(seed=st.integers(0, 2**16), shape=shapes, dtype=st.sampled_from(DTYPES))
@example(seed=0, shape=(1, 1), dtype="uint8")
@example(seed=1, shape=(1, 17), dtype="float64")
@example(seed=2, shape=(17, 1), dtype="u8_float32")
@example(seed=3, shape=(2, 2), dtype="u8_float32")
@example(seed=4, shape=(7, 7), dtype="float64_noninteger")
def test_every_metric_is_defined_or_refused_clearly(seed, shape, dtype):
    ir, vi, fused = images(seed, shape, dtype)
    for name in NO_VIF:
        if min(shape) < MIN_SIDE[name]:
            with pytest.raises(InvalidTensorError) as ei:
                compute_metrics(ir, vi, fused, [name])
            msg = str(ei.value)
            assert "too small" in msg and f"{shape[1]}x{shape[0]}" in msg and "\n" not in msg, msg
            continue
        v = compute_metrics(ir, vi, fused, [name])[name]
        assert v.dtype == torch.float64 and v.shape == (1,)
        if undefined(name, ir, vi, fused):
            continue
        lo, hi = RANGES[name]
        x = float(v)
        assert math.isfinite(x), (name, shape, dtype, x)
        assert lo - 1e-9 <= x <= hi + 1e-9, (name, shape, dtype, x)


@FAST
@given(seed=st.integers(0, 2**16), shape=st.tuples(st.integers(7, 20), st.integers(7, 20)),
       dtype=st.sampled_from(DTYPES))
@example(seed=5, shape=(7, 20), dtype="uint8")
def test_batch_equals_per_image_and_sources_are_symmetric(seed, shape, dtype):
    ir, vi, fused = images(seed, shape, dtype, batch=3)
    batch = compute_metrics(ir, vi, fused, NO_VIF)
    swapped = compute_metrics(vi, ir, fused, NO_VIF)
    for i in range(3):
        one = compute_metrics(ir[i:i + 1], vi[i:i + 1], fused[i:i + 1], NO_VIF)
        for name in NO_VIF:
            torch.testing.assert_close(batch[name][i:i + 1], one[name], rtol=1e-12, atol=1e-12, equal_nan=True,
                                       msg=name)
    # every fusion metric treats the two sources alike
    for name in NO_VIF:
        torch.testing.assert_close(swapped[name], batch[name], rtol=1e-9, atol=1e-12, equal_nan=True, msg=name)
    # pairwise measures are symmetric in their arguments
    torch.testing.assert_close(pearson(ir, vi), pearson(vi, ir), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mutual_information(ir, fused), mutual_information(fused, ir), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ssim.ssim(ir, fused), ssim.ssim(fused, ir), rtol=1e-12, atol=1e-12)


@FAST
@given(seed=st.integers(0, 2**16), shape=st.tuples(st.integers(7, 24), st.integers(7, 24)),
       dtype=st.sampled_from(DTYPES), window=st.sampled_from(["uniform7", "gaussian11"]))
def test_identities(seed, shape, dtype, window):
    ir, vi, fused = images(seed, shape, dtype)
    # SSIM(F, IR) = 1 when F = IR, so fusion SSIM (a sum) = 1 + SSIM(IR, VI)
    torch.testing.assert_close(fusion_ssim(ir, ir, vi), 1 + ssim.ssim(ir, vi), rtol=0, atol=1e-12)
    if min(shape) >= 11 or window == "uniform7":
        torch.testing.assert_close(ssim.ssim(fused, fused, window), torch.ones(1, dtype=torch.float64),
                                   rtol=0, atol=1e-12)
    # MI(x, x) = H(x) (nats); EN <= log2 of the number of pixels (at most that many grey levels)
    torch.testing.assert_close(mutual_information(fused, fused), entropy(fused, base=math.e), rtol=1e-12, atol=1e-12)
    assert float(entropy(fused)) <= math.log2(min(256, shape[0] * shape[1])) + 1e-12
    const = torch.full_like(fused, 77)
    assert float(entropy(const)) == 0.0
    # F equal to both sources: MSE 0, PSNR infinite, CC 1 ... and the metric still returns
    m = compute_metrics(fused, fused, fused, ["MSE", "PSNR", "CC", "Qabf", "Nabf"])
    assert float(m["MSE"]) == 0 and math.isinf(float(m["PSNR"])) and float(m["CC"]) == pytest.approx(1.0)
    assert float(m["Nabf"]) == 0.0
    if not _flat(fused):
        # every edge kept: each pixel's Q_AF sits at the top of its sigmoids (~0.975 <= Tg * Ta)
        assert 0.95 < float(m["Qabf"]) <= 0.9994 * 0.9879


@FAST
@given(seed=st.integers(0, 2**16), shape=st.tuples(st.integers(2, 20), st.integers(2, 20)))
def test_dtypes_of_the_same_values_agree(seed, shape):
    """uint8, uint8-valued float32 and float64 tensors of the same 8-bit values give the same numbers."""
    ir, vi, fused = images(seed, shape, "uint8")
    names = [m for m in NO_VIF if min(shape) >= MIN_SIDE[m]]
    ref = compute_metrics(ir.double(), vi.double(), fused.double(), names)
    for cast in (lambda t: t, lambda t: t.float()):
        got = compute_metrics(cast(ir), cast(vi), cast(fused), names)
        for name in names:
            torch.testing.assert_close(got[name], ref[name], rtol=1e-12, atol=1e-12, equal_nan=True, msg=name)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), shape=st.tuples(st.integers(41, 46), st.integers(41, 46)),
       dtype=st.sampled_from(DTYPES))
def test_vif_at_its_minimum_size(seed, shape, dtype):
    ir, vi, fused = images(seed, shape, dtype, batch=2)
    v = compute_metrics(ir, vi, fused, ["VIF"])["VIF"]
    assert torch.isfinite(v).all() and bool((v >= 0).all())
    torch.testing.assert_close(compute_metrics(vi, ir, fused, ["VIF"])["VIF"], v, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(compute_metrics(ir[1:], vi[1:], fused[1:], ["VIF"])["VIF"], v[1:], rtol=1e-12,
                               atol=1e-12)
    torch.testing.assert_close(vif.vif(ir, ir), torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-9)
    with pytest.raises(InvalidTensorError, match="at least 41 pixels"):
        compute_metrics(ir[..., :40, :], vi[..., :40, :], fused[..., :40, :], ["VIF"])


@FAST
@given(seed=st.integers(0, 2**16), shape=st.tuples(st.integers(1, 16), st.integers(1, 16)),
       channels=st.sampled_from([1, 3]), batched=st.booleans())
def test_to_metric_scale_and_module_on_unit_range_inputs(seed, shape, channels, batched):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((2, channels, *shape) if batched else (channels, *shape), generator=g)
    q = to_metric_scale(x)
    assert q.shape == ((2 if batched else 1), 1, *shape)
    assert bool((q == q.round()).all()) and float(q.min()) >= 0 and float(q.max()) <= 255
    if min(shape) >= 7 and batched:
        out = FusionMetrics(["EN", "SSIM", "CC"])(x, x.flip(-1), x)
        assert set(out) == {"EN", "SSIM", "CC"} and all(v.shape == (2,) for v in out.values())
        assert bool((out["EN"] >= 0).all() and (out["EN"] <= 8).all())


@FAST
@given(seed=st.integers(0, 2**16), shape=st.tuples(st.integers(2, 12), st.integers(2, 12)),
       bad=st.sampled_from(["nan", "inf", "-inf"]), where=st.sampled_from(["ir", "vi", "fused"]))
def test_non_finite_or_misshapen_inputs_are_refused_with_one_line(seed, shape, bad, where):
    trip = dict(zip(("ir", "vi", "fused"), images(seed, shape, "float64")))
    g = torch.Generator().manual_seed(seed)
    i, j = int(torch.randint(shape[0], (1,), generator=g)), int(torch.randint(shape[1], (1,), generator=g))
    trip[where][0, 0, i, j] = float(bad)
    with pytest.raises(InvalidTensorError) as ei:
        compute_metrics(trip["ir"], trip["vi"], trip["fused"], ["EN", "MI"])
    msg = str(ei.value)
    assert msg.startswith(f"{where}: holds 1 NaN/inf") and "\n" not in msg
    trip[where][0, 0, i, j] = 0.0
    with pytest.raises(ShapeMismatchError, match=r"differs from"):
        compute_metrics(trip["ir"], trip["vi"], torch.cat([trip["fused"], trip["fused"][..., :1, :]], -2), ["EN"])
    with pytest.raises(InvalidTensorError, match=r"expected shape \(B, 1, H, W\)"):
        compute_metrics(trip["ir"][0], trip["vi"][0], trip["fused"][0], ["EN"])
