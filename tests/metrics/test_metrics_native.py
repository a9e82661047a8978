"""The metrics' C kernels (fusionlab/native/metrics.c) against the torch code they replace.

Every metric is computed twice, with ``FUSIONLAB_NATIVE=1`` (C on the CPU) and ``=0`` (the
torch code, also what CUDA runs), on images that hit the corner cases: saturated flat
plateaus (VIF/SSIM variances at the eps threshold), odd and small sizes (vector tails, VIF's
41-pixel minimum), non-integer values, an F equal to a source (SCD NaN), a flat source (VIF
0/0), and values far outside 0..255 (the log-sum's renormalisation).
"""
from __future__ import annotations

import math

import pytest
import torch

from fusionlab import native
from fusionlab.data import make_pair
from fusionlab.metrics import METRIC_NAMES, _native, compute_metrics, read_gray, to_metric_scale
from fusionlab.metrics.vif import fusion_vif, vif
from support import benchmark_module

#: relative tolerance, C vs torch. VIF: the torch path filters by FFT, whose round-off in flat
#: windows (variances near the 1e-10 clamp) reaches ~4e-9 on MSRS pairs; the C path filters
#: directly and agrees with the NumPy direct convolution to ~1e-12 (test below). Qabf: float32
#: maps like the reference, atan/exp differ from torch's by an ulp.
TOL = {"VIF": 1e-8, "Qabf": 2e-7}
TOL_DEFAULT = 1e-10


@pytest.fixture(autouse=True)
def _needs_kernels():
    if not native.enabled() or native.load("metrics") is None:
        pytest.skip("native metrics kernels unavailable (no C compiler or FUSIONLAB_NATIVE=0)")


def _triplet(seed=0, size=(56, 72), integer=True):
    p = make_pair(seed, size)
    ir, vi = to_metric_scale(p["ir"]), to_metric_scale(p["vi"])
    ir = ((ir - 60) * 1.6).clamp(0, 255)  # flat 0 and 255 plateaus
    fused = 0.6 * torch.maximum(ir, vi) + 0.4 * vi
    if integer:
        ir, fused = ir.round(), fused.round()
    return ir, vi, fused


def _both(monkeypatch, fn):
    monkeypatch.setenv("FUSIONLAB_NATIVE", "1")
    got = fn()
    monkeypatch.setenv("FUSIONLAB_NATIVE", "0")
    ref = fn()
    monkeypatch.setenv("FUSIONLAB_NATIVE", "1")
    return got, ref


def _assert_close(got: dict, ref: dict, where: str):
    for name in ref:
        g, r = got[name].double(), ref[name].double()
        assert torch.equal(torch.isnan(g), torch.isnan(r)), f"{where} {name}: NaN pattern {g} vs {r}"
        ok = ~torch.isnan(r)
        rel = ((g[ok] - r[ok]).abs() / r[ok].abs().clamp(min=1e-12)).max().item() if ok.any() else 0.0
        assert rel <= TOL.get(name, TOL_DEFAULT), f"{where} {name}: C {g.tolist()} torch {r.tolist()} (rel {rel:.1e})"


@pytest.mark.parametrize("size", [(56, 72), (61, 83), (41, 45), (97, 43)])
@pytest.mark.parametrize("convention", ["cddfuse", "matlab", "dtpf"])
def test_all_metrics_match_torch(monkeypatch, size, convention):
    ir, vi, fused = (torch.cat(t) for t in zip(_triplet(0, size), _triplet(1, size)))
    got, ref = _both(monkeypatch, lambda: compute_metrics(ir, vi, fused, "all", convention, threads=1))
    _assert_close(got, ref, f"{size} {convention}")


def test_non_integer_and_float32_inputs(monkeypatch):
    ir, vi, fused = _triplet(2, (50, 66), integer=False)
    got, ref = _both(monkeypatch, lambda: compute_metrics(ir, vi, fused, threads=1))
    _assert_close(got, ref, "non-integer")
    got64 = compute_metrics(ir.double(), vi.double(), fused.double(), threads=1)
    _assert_close(got64, got, "float64 vs float32 input")


@pytest.mark.parametrize("size", [(7, 9), (12, 8), (2, 5)])
def test_small_images(monkeypatch, size):
    ir, vi, fused = (t[..., 10:10 + size[0], 20:20 + size[1]] for t in _triplet(3, (40, 48)))
    names = [n for n in METRIC_NAMES if n != "VIF" and not (n == "SSIM" and min(size) < 7)]
    got, ref = _both(monkeypatch, lambda: compute_metrics(ir, vi, fused, names, threads=1))
    _assert_close(got, ref, f"{size}")


def test_nan_cases(monkeypatch):
    ir, vi, _ = _triplet(4, (48, 52))
    flat = torch.full_like(ir, 77.0)
    for f, a, v, what in ((vi, ir, vi, "F == VI"), (ir, flat, vi, "flat IR")):
        got, ref = _both(monkeypatch, lambda: compute_metrics(a, v, f, "all", "matlab", threads=1))
        _assert_close(got, ref, what)
    got, _ = _both(monkeypatch, lambda: compute_metrics(ir, vi, vi, threads=1))
    assert math.isnan(float(got["SCD"][0]))  # corr(F - VI = 0, IR) is 0/0


def test_vif_log_sum_renormalises(monkeypatch):
    """Factors 1 + s1 / sigma_n^2 above 2^64 (own log10) and blocks whose product needs the
    running product's renormalisation: textured data x1000 (no flat windows: well conditioned),
    tiny sensor noise."""
    gen = torch.Generator().manual_seed(0)
    ir, vi, fused = ((t + 50 * torch.rand(t.shape, generator=gen)) * 1000 for t in _triplet(5, (64, 64), False))
    got, ref = _both(monkeypatch, lambda: torch.stack([vif(ir, fused, 1e-12), fusion_vif(fused, ir, vi, 1e-12)]))
    assert torch.isfinite(got).all()
    assert ((got - ref).abs() / ref.abs()).max() < 1e-10


def test_vif_matches_direct_convolution():
    """The C VIF against the benchmark's NumPy/SciPy evaluator (direct convolution, float64)."""
    mod = benchmark_module("metrics_speed")
    ir, vi, fused = _triplet(6, (73, 91))
    a, b, f = (t[0, 0].double().numpy() for t in (ir, vi, fused))
    want = mod.np_vif_single(a, f) + mod.np_vif_single(b, f)
    assert float(fusion_vif(fused, ir, vi)) == pytest.approx(want, rel=1e-11)


def test_msrs_pair_matches_torch(monkeypatch, shared_dir):
    data = shared_dir / "data" / "msrs" / "test"
    stem = sorted(p.stem for p in (data / "ir").iterdir() if p.suffix == ".png")[0]
    ir, vi = read_gray(data / "ir" / f"{stem}.png"), read_gray(data / "vi" / f"{stem}.png")
    fused = torch.round((ir + vi) / 2)
    got, ref = _both(monkeypatch, lambda: compute_metrics(ir, vi, fused, "all", threads=1))
    _assert_close(got, ref, stem)


def test_kernels_decline_what_they_do_not_cover(monkeypatch):
    ir, vi, fused = _triplet(7, (48, 48))
    assert _native.qabf(fused.half(), ir.half(), vi.half()) is None  # half precision: torch code
    assert _native.vif_terms(torch.cat([ir, vi], 1), fused, 2.0) is not None
    monkeypatch.setenv("FUSIONLAB_NATIVE", "0")
    assert _native.vif_terms(torch.cat([ir, vi], 1), fused, 2.0) is None


def test_separable_window_reproduces_the_2d_kernel():
    """The C code filters with the 1-D factor; the torch code's 2-D fspecial window must be its outer product."""
    from fusionlab.metrics.vif import SCALE_WINDOWS, gaussian_window

    for n in SCALE_WINDOWS:
        r = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        g = torch.exp(-r * r / (2 * (n / 5.0) ** 2))
        g = g / g.sum()
        torch.testing.assert_close(torch.outer(g, g), gaussian_window(n), rtol=1e-14, atol=0)


def test_every_kernel_runs_on_cpu_tensors():
    """The comparisons above are C against torch only if the C path runs: every wrapper gives
    a result on CPU float tensors (None is its fall-back signal to the torch code)."""
    ir, vi, fused = _triplet(0)
    both = torch.cat([ir, vi], 1)
    results = {
        "vif_terms": _native.vif_terms(both, fused, 2.0),
        "ssim_uniform_sums": _native.ssim_uniform_sums(fused, both, 7, 4e-4, 3.6e-3, 49 / 48),
        "qabf": _native.qabf(fused, ir, vi),
        "histogram": _native.histogram(fused),
        "joint_histograms": _native.joint_histograms(fused, ir, vi),
        "pearson": _native.pearson(ir, fused),
        "pearson minus": _native.pearson(ir, fused, vi),
        "image_stats": _native.image_stats(fused),
        "squared_errors": _native.squared_errors(fused, ir, vi),
    }
    assert not [name for name, r in results.items() if r is None]
    assert int(results["histogram"].sum()) == fused.numel()  # every pixel counted once
