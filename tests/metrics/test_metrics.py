"""Fusion metrics: published reference values, independent NumPy cross-checks, properties."""
from __future__ import annotations

import dataclasses
import importlib
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.signal import correlate2d

from fusionlab import io as fio
from fusionlab.data import make_pair
from fusionlab.errors import ConfigError, InvalidTensorError, ShapeMismatchError
from fusionlab.metrics import (EXTRA_METRICS, METRIC_NAMES, FusionMetrics, compute_metrics, edge_strength_orientation,
                               entropy, evaluate, evaluate_files, fusion_mi, fusion_ssim, fusion_vif, get_convention,
                               histogram, joint_histogram, mutual_information, pearson, qabf, read_gray,
                               rgb255_to_gray, scd, ssim, to_metric_scale, vif, vif_components)
from support import benchmark_module

REL_TOL = {"SSIM": 1e-3, "MSE": 1e-3}  # the tolerances (float32 evaluator); others 1e-4


NP = benchmark_module("metrics_speed")  # the benchmark's plain NumPy/SciPy evaluator: an independent implementation


def _triplet(seed=0, size=(56, 72), saturate=True):
    """IR, VI, fused on 0..255 (1, 1, H, W); saturated flat regions exercise VIF/SSIM corner cases."""
    p = make_pair(seed, size)
    ir, vi = to_metric_scale(p["ir"]), to_metric_scale(p["vi"])
    if saturate:
        ir = ((ir - 60) * 1.6).clamp(0, 255).round()  # flat 0 and 255 plateaus
    fused = torch.round(0.6 * torch.maximum(ir, vi) + 0.4 * vi)
    return ir, vi, fused


# ------------------------------------------------------------------ reference values
@pytest.fixture(scope="module")
def reference(shared_dir):
    ref = json.loads((shared_dir / "reference" / "metrics_00016N.json").read_text())
    ref["_root"] = shared_dir
    return ref


def _assert_matches(got: dict, expect: dict, what: str):
    assert list(got) == list(METRIC_NAMES), what
    for name, want in expect.items():
        v = got[name]
        if want is None:
            assert v is None or math.isnan(v), f"{what} {name}: expected undefined, got {v}"
            continue
        rel = abs(v - want) / abs(want)
        assert rel <= REL_TOL.get(name, 1e-4), f"{what} {name}: {v} vs reference {want} (rel {rel:.2e})"


def test_reference_values_api(reference):
    root = reference["_root"]
    vals = {}
    for kind, fused in reference["fused"].items():
        got = vals[kind] = evaluate_files(root / reference["ir"], root / reference["vi"], root / fused)
        _assert_matches(got, reference["values"][kind], f"API {kind}")
        # the two documented variants: MI in bits, SSIM with the correct data range 255
        conv = dataclasses.replace(get_convention("cddfuse"), mi_base=2.0, ssim_data_range=255.0)
        extra = evaluate_files(root / reference["ir"], root / reference["vi"], root / fused, ["MI", "SSIM"], conv)
        assert extra["MI"] == pytest.approx(reference["extra"][kind]["MI_bits"], rel=1e-6)
        assert extra["SSIM"] == pytest.approx(reference["extra"][kind]["SSIM_data_range_255"], rel=1e-6)
    # VIF and Qabf rank max fusion above mean fusion (the property tables rely on)
    assert vals["max"]["VIF"] > vals["mean"]["VIF"] and vals["max"]["Qabf"] > vals["mean"]["Qabf"]


def test_reference_values_cli(reference, run_cli):
    root = reference["_root"]
    for kind, fused in reference["fused"].items():
        code, out, err = run_cli("evaluate", "--ir", root / reference["ir"], "--vi", root / reference["vi"],
                                 "--fused", root / fused)
        assert code == 0, err
        got = json.loads(out)  # exactly one JSON object on stdout
        _assert_matches({k: (math.nan if v is None else v) for k, v in got.items()},
                        reference["values"][kind], f"CLI {kind}")
        if kind == "vi":
            assert got["SCD"] is None  # undefined, written as JSON null


@pytest.fixture(scope="module")
def reference_dtpf(reference):
    """The DTPF repository's own evaluator (Metric_Python) on the same three fused images."""
    path = reference["_root"] / "reference" / "metrics_00016N_dtpf.json"
    if not path.is_file():
        pytest.skip(f"DTPF-evaluator reference values not found at {path}")
    return {**reference, "values": json.loads(path.read_text())[reference["pair"]]}


def _assert_matches_dtpf(got: dict, want: dict, what: str):
    assert list(got) == list(METRIC_NAMES + EXTRA_METRICS), what
    for name, v in want.items():
        tol = 1e-3 if name == "SSIM" else 1e-4  # SSIM: the reference filters in float32
        rel = abs(got[name] - v) / abs(v)
        assert rel <= tol, f"{what} {name}: {got[name]} vs reference {v} (rel {rel:.2e})"


def test_dtpf_reference_values_api(reference_dtpf):
    """``convention="dtpf"`` reproduces all 13 values (Nabf included) for the three fusions."""
    ref, root = reference_dtpf, reference_dtpf["_root"]
    for kind, fused in ref["fused"].items():
        got = evaluate_files(root / ref["ir"], root / ref["vi"], root / fused, "all", "dtpf")
        _assert_matches_dtpf(got, ref["values"][kind], f"API {kind}")
    # the switches matter on these very files: cddfuse gives other MI (nats), SSIM, MSE, PSNR
    quirks = ["MI", "SSIM", "MSE", "PSNR"]
    cdd = evaluate_files(root / ref["ir"], root / ref["vi"], root / ref["fused"]["mean"], quirks)
    for name in quirks:
        assert abs(cdd[name] - ref["values"]["mean"][name]) > 0.01 * abs(ref["values"]["mean"][name]), name


def test_dtpf_reference_values_cli(reference_dtpf, run_cli):
    ref, root = reference_dtpf, reference_dtpf["_root"]
    for kind, fused in ref["fused"].items():
        code, out, err = run_cli("evaluate", "--ir", root / ref["ir"], "--vi", root / ref["vi"],
                                 "--fused", root / fused, "--convention", "dtpf", "--metrics", "all")
        assert code == 0, err
        _assert_matches_dtpf(json.loads(out), ref["values"][kind], f"CLI {kind}")


def test_reading_matches_opencv_formula(reference):
    """cddfuse reading == OpenCV BGR2GRAY on float32 (B*0.114 + G*0.587 + R*0.299) + np.round."""
    root = reference["_root"]
    path = root / reference["vi"]
    rgb = np.asarray(fio.read_array(path)) * np.float32(255)
    rgb = np.floor(rgb + np.float32(0.5)).astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    expect = np.round(b * np.float32(0.114) + g * np.float32(0.587) + r * np.float32(0.299))
    got = read_gray(path)
    assert got.shape == (1, 1, 480, 640) and got.dtype == torch.float32
    np.testing.assert_array_equal(got[0, 0].numpy(), expect)
    # tensors from fusionlab.io go through to_metric_scale to the same numbers
    assert torch.equal(to_metric_scale(fio.read_image(path)), got)
    ir = root / reference["ir"]
    assert torch.equal(to_metric_scale(fio.read_image(ir)), read_gray(ir))
    # matlab reading differs only by rounding/weights: at most one grey level
    assert (read_gray(path, "matlab") - got).abs().max() <= 1


@pytest.mark.parametrize("convention", ["cddfuse", "matlab", "dtpf"])
def test_to_metric_scale_equals_saved_png(tmp_path, convention):
    t = torch.rand(3, 23, 31)
    t[:, :4] = 0.5 / 255 * torch.arange(4).view(4, 1)  # values at rounding boundaries
    path = fio.write_image(tmp_path / "x.png", t)
    assert torch.equal(to_metric_scale(t, convention), read_gray(path, convention))
    g = torch.rand(2, 1, 9, 10)
    assert torch.equal(to_metric_scale(g)[1, 0], (g[1, 0] * 255 + 0.5).floor())


# ------------------------------------------------------------------ independent cross-checks
@pytest.mark.parametrize("seed,saturate", [(0, True), (1, False)])
def test_all_metrics_match_numpy_reference_implementation(seed, saturate):
    ir, vi, fused = _triplet(seed, saturate=saturate)
    got = evaluate(ir[0], vi[0], fused[0])
    a, b, f = ir[0, 0].numpy(), vi[0, 0].numpy(), fused[0, 0].numpy()
    for name in METRIC_NAMES:
        want = float(NP.NP_METRICS[name](f, a, b))
        assert got[name] == pytest.approx(want, rel=1e-6, abs=1e-9), name


def _np_ssim_wang(x, y, L=255.0):
    """Wang's ssim.m: 11x11 Gaussian (sigma 1.5), valid filtering, population variances."""
    r = np.arange(11) - 5
    w = np.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * 1.5 ** 2))
    w /= w.sum()
    x, y = x.astype(np.float64), y.astype(np.float64)
    f = lambda z: correlate2d(z, w, mode="valid")  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, vxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    return np.mean((2 * mx * my + c1) * (2 * vxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))


def test_matlab_convention_differences():
    ir, vi, fused = _triplet(2)
    cdd = evaluate(ir, vi, fused)
    mat = evaluate(ir, vi, fused, convention="matlab")
    h, w = fused.shape[-2:]
    f, a, b = fused[0, 0].numpy().astype(np.float64), ir[0, 0].numpy(), vi[0, 0].numpy()
    assert mat.loc[0, "MI"] == pytest.approx(cdd.loc[0, "MI"] / math.log(2), rel=1e-12)  # bits vs nats
    assert mat.loc[0, "AG"] == pytest.approx(cdd.loc[0, "AG"] * h * w / ((h - 1) * (w - 1)), rel=1e-12)
    rf = np.sum((f[:, 1:] - f[:, :-1]) ** 2) / (h * w)
    cf = np.sum((f[1:] - f[:-1]) ** 2) / (h * w)
    assert mat.loc[0, "SF"] == pytest.approx(math.sqrt(rf + cf), rel=1e-12)
    assert mat.loc[0, "PSNR"] == pytest.approx(10 * math.log10(255 ** 2 / cdd.loc[0, "MSE"]), rel=1e-12)
    want = (_np_ssim_wang(f, a) + _np_ssim_wang(f, b)) / 2
    assert mat.loc[0, "SSIM"] == pytest.approx(want, rel=1e-9)
    for same in ("EN", "SD", "SCD", "VIF", "Qabf", "MSE", "CC"):
        assert mat.loc[0, same] == pytest.approx(cdd.loc[0, same], rel=1e-12), same


def test_dtpf_gray_truncates_np_dot_weights():
    """dtpf gray = int(0.2989 R + 0.5870 G + 0.1140 B): checked against exact integer arithmetic
    (every colour whose luma is not an exact integer, where float rounding cannot matter)."""
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (1, 3, 64, 64), generator=g)
    n = 2989 * rgb[:, 0] + 5870 * rgb[:, 1] + 1140 * rgb[:, 2]
    got = rgb255_to_gray(rgb, "dtpf")[:, 0]
    off_integer = n % 10000 != 0
    assert bool(off_integer.all()) or int((~off_integer).sum()) < 5
    assert torch.equal(got[off_integer], (n // 10000).float()[off_integer])
    # weights sum to 0.9999: a gray colour v loses one level (v >= 1) where cddfuse keeps it
    v = torch.arange(256.0).view(1, 1, 16, 16).repeat(1, 3, 1, 1)
    assert torch.equal(rgb255_to_gray(v, "dtpf"), (v[:, :1] - 1).clamp(min=0))
    assert torch.equal(rgb255_to_gray(v, "cddfuse"), v[:, :1])


def test_dtpf_convention_against_numpy_formulas():
    """Each dtpf switch against an independent NumPy statement of the DTPF evaluator's formula."""
    ir, vi, fused = _triplet(12)
    d = evaluate(ir[0], vi[0], fused[0], "all", convention="dtpf")
    mat = evaluate(ir[0], vi[0], fused[0], "all", convention="matlab")
    f, a, b = (t[0, 0].numpy().astype(np.int64) for t in (fused, ir, vi))
    h, w = f.shape
    p = np.histogram(f, bins=256, range=(0, 255))[0] / f.size
    assert d["EN"] == pytest.approx(-np.sum(p * np.log2(p + 1e-7)), rel=1e-12)
    assert d["MI"] == pytest.approx(mat["MI"], rel=1e-12)  # bits, like matlab
    gy, gx = np.gradient(f.astype(np.float64))
    assert d["AG"] == pytest.approx(np.sum(np.sqrt((gx ** 2 + gy ** 2) / 2)) / ((h - 1) * (w - 1)), rel=1e-12)
    rf, cf = np.mean(np.diff(f, axis=0) ** 2), np.mean(np.diff(f, axis=1) ** 2)
    assert d["SF"] == pytest.approx(math.sqrt(rf + cf), rel=1e-12)
    mse01 = (np.mean((f / 255 - a / 255) ** 2) + np.mean((f / 255 - b / 255) ** 2)) / 2
    assert d["MSE"] == pytest.approx(mse01, rel=1e-12)
    assert d["PSNR"] == pytest.approx(20 * math.log10(255 / math.sqrt(mse01)), rel=1e-12)
    # the quirk: Gaussian SSIM with L = 255 on the images multiplied by 255
    want = _np_ssim_wang(f * 255.0, a * 255.0, 255.0) + _np_ssim_wang(f * 255.0, b * 255.0, 255.0)
    assert d["SSIM"] == pytest.approx(want, rel=1e-9)
    assert d["Nabf"] == pytest.approx(_np_nabf(f, a, b, weight_floor=0.0), rel=1e-9)
    assert d["Nabf"] != pytest.approx(mat["Nabf"], rel=1e-6)
    for same in ("SD", "SCD", "VIF", "Qabf", "CC"):
        assert d[same] == pytest.approx(mat[same], rel=1e-12), same


def _np_nabf(f, a, b, weight_floor=0.001):
    """Kumar's analysis_nabf.m, vectorised with NumPy (mirror padding, Sobel / 8)."""
    def grads(x):
        xp = np.pad(x.astype(np.float64), 1, mode="reflect")
        kv = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
        return correlate2d(xp, kv, mode="valid"), correlate2d(xp, kv.T, mode="valid")

    out = {}
    for k, x in (("A", a), ("B", b), ("F", f)):
        gv, gh = grads(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            ang = np.where((gv == 0) & (gh == 0), 0.0, np.arctan(gv / gh))
        out[k] = (np.sqrt(gv ** 2 + gh ** 2), ang)
    gF, aF = out["F"]

    def q(g, ang):
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where((g == 0) | (gF == 0), 0.0, np.minimum(g, gF) / np.maximum(g, gF))
        aa = np.abs(np.abs(ang - aF) - np.pi / 2) * 2 / np.pi
        return np.sqrt(0.9999 / (1 + np.exp(-19 * (rel - 0.5))) * 0.9995 / (1 + np.exp(-22 * (aa - 0.5))))

    (gA, aA), (gB, aB) = out["A"], out["B"]
    wA, wB = np.where(gA >= 2, gA ** 1.5, weight_floor), np.where(gB >= 2, gB ** 1.5, weight_floor)
    na = (gF > gA) & (gF > gB)
    return np.sum(na * ((1 - q(gA, aA)) * wA + (1 - q(gB, aB)) * wB)) / np.sum(wA + wB)


def test_nabf_matches_kumar_and_is_zero_without_new_edges():
    ir, vi, _ = _triplet(3)
    sharp = (ir + 3 * (ir - torch.nn.functional.avg_pool2d(ir, 3, 1, 1))).clamp(0, 255).round()  # adds edges
    for fused in (sharp, torch.round((ir + vi) / 2)):
        got = evaluate(ir[0], vi[0], fused[0], metrics=["Nabf"])["Nabf"]
        assert got == pytest.approx(_np_nabf(fused[0, 0].numpy(), ir[0, 0].numpy(), vi[0, 0].numpy()), rel=1e-9)
    assert evaluate(ir[0], vi[0], sharp[0], metrics=["Nabf"])["Nabf"] > 0.01
    assert evaluate(ir[0], vi[0], vi[0], metrics=["Nabf"])["Nabf"] == 0.0  # F = a source: no artifact


# ------------------------------------------------------------------ properties
def test_entropy_and_mutual_information_properties():
    const = torch.full((2, 1, 16, 16), 77.0)
    assert torch.equal(entropy(const), torch.zeros(2, dtype=torch.float64))
    ramp = torch.arange(256.0).view(1, 1, 16, 16)
    assert float(entropy(ramp)) == pytest.approx(8.0)
    ir, vi, fused = _triplet(4)
    h = histogram(fused)
    j = joint_histogram(fused, ir)
    assert int(h.sum()) == fused.numel() and torch.equal(j.sum(2), h)
    assert float(mutual_information(fused, fused)) == pytest.approx(float(entropy(fused, base=math.e)))
    assert float(mutual_information(fused, ir)) == pytest.approx(float(mutual_information(ir, fused)))
    assert float(fusion_mi(fused, ir, vi)) == pytest.approx(
        float(mutual_information(fused, ir) + mutual_information(fused, vi)))


def test_ssim_vif_correlation_properties():
    ir, vi, fused = _triplet(5)
    for window in ("uniform7", "gaussian11"):
        assert float(ssim.ssim(fused, fused, window)) == pytest.approx(1.0, abs=1e-12)
        assert float(ssim.ssim(fused, ir, window)) == pytest.approx(float(ssim.ssim(ir, fused, window)))
    # the SSIM(F, A) term is 1 when F = A: fusion SSIM = 1 + SSIM(A, B)
    assert float(fusion_ssim(ir, ir, vi)) == pytest.approx(1 + float(ssim.ssim(ir, vi)), abs=1e-12)
    assert float(vif.vif(vi, vi)) == pytest.approx(1.0, abs=1e-9)  # eps = 1e-10 in the residual
    num, den = vif_components(ir, fused)
    assert num.shape == den.shape == (1, 4) and bool((den > 0).all())
    assert float(num.sum() / den.sum()) == pytest.approx(float(vif.vif(ir, fused)))
    assert float(fusion_vif(fused, ir, vi)) == pytest.approx(float(vif.vif(ir, fused) + vif.vif(vi, fused)))
    assert float(pearson(ir, vi)) == pytest.approx(float(pearson(vi, ir)))
    g, a = edge_strength_orientation(fused)
    assert g.shape == a.shape == fused.shape and bool((g >= 0).all()) and bool((a.abs() <= math.pi / 2).all())


def test_fusion_metrics_are_symmetric_in_the_sources():
    ir, vi, fused = _triplet(6)
    ab = compute_metrics(ir, vi, fused, "all")
    ba = compute_metrics(vi, ir, fused, "all")
    for name in METRIC_NAMES + EXTRA_METRICS:
        assert float(ab[name]) == pytest.approx(float(ba[name]), rel=1e-9, abs=1e-12), name


def test_scd_is_nan_when_fused_equals_a_source():
    ir, vi, _ = _triplet(7)
    assert bool(torch.isnan(scd(vi, ir, vi))) and bool(torch.isnan(scd(ir, ir, vi)))
    assert math.isfinite(float(scd(torch.round((ir + vi) / 2), ir, vi)))


def test_batch_equals_per_image_and_float64_equals_float32():
    trip = [_triplet(s, size=(48, 60)) for s in range(3)]
    ir, vi, fused = (torch.cat([t[k] for t in trip]) for k in range(3))
    batch = compute_metrics(ir, vi, fused, "all")
    for i in range(3):
        one = compute_metrics(ir[i:i + 1], vi[i:i + 1], fused[i:i + 1], "all")
        for name, v in one.items():
            torch.testing.assert_close(batch[name][i:i + 1], v, rtol=1e-12, atol=1e-12, equal_nan=True)
    # the same 8-bit values in float64 give the same numbers
    d64 = compute_metrics(ir.double(), vi.double(), fused.double(), "all")
    for name, v in batch.items():
        torch.testing.assert_close(d64[name], v, rtol=1e-12, atol=1e-12, equal_nan=True)
    # non-integer images: float32 storage rounding (~1e-7) must not be amplified
    g = torch.Generator().manual_seed(0)
    noisy = [t.double() + torch.rand(t.shape, generator=g, dtype=torch.float64) * 0.9 for t in (ir, vi, fused)]
    m64 = compute_metrics(*noisy, "all")
    m32 = compute_metrics(*(t.float() for t in noisy), "all")
    for name in m64:
        torch.testing.assert_close(m32[name], m64[name], rtol=1e-4, atol=1e-6, msg=name)


def test_chunking_and_integer_dtypes():
    ir, vi, fused = _triplet(8, size=(48, 48))
    # the module (the package attribute ``evaluate`` is the function of the same name)
    em = importlib.import_module("fusionlab.metrics.evaluate")

    old = em.CHUNK_PIXELS
    try:
        em.CHUNK_PIXELS = 1  # one image per chunk
        r = ir.repeat(3, 1, 1, 1), vi.repeat(3, 1, 1, 1), fused.repeat(3, 1, 1, 1)
        chunked = compute_metrics(*r)
    finally:
        em.CHUNK_PIXELS = old
    whole = compute_metrics(*r)
    for k in whole:
        torch.testing.assert_close(chunked[k], whole[k], equal_nan=True)
    u8 = compute_metrics(ir.to(torch.uint8), vi.to(torch.uint8), fused.to(torch.uint8), ["EN", "VIF"])
    assert float(u8["VIF"][0]) == pytest.approx(float(whole["VIF"][0]))


# hypothesis: bounds and source symmetry on random 8-bit images with flat patches
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), h=st.integers(41, 60), w=st.integers(41, 60), flat=st.booleans())
def test_bounds_and_symmetry_random_images(seed, h, w, flat):
    g = torch.Generator().manual_seed(seed)
    a, b = (torch.randint(0, 256, (1, 1, h, w), generator=g).float() for _ in range(2))
    if flat:
        a[..., : h // 2, :] = 255.0
        b[..., :, : w // 3] = 0.0
    f = torch.round(torch.maximum(a, b) * 0.5 + torch.rand((1, 1, h, w), generator=g) * 127)
    m = compute_metrics(a, b, f, "all")
    ms = compute_metrics(b, a, f, "all")
    assert 0 <= float(m["EN"]) <= 8 and 0 <= float(m["Qabf"]) <= 1 and 0 <= float(m["Nabf"]) <= 1
    assert -1 <= float(m["CC"]) <= 1 and float(m["SSIM"]) <= 2 + 1e-12 and float(m["MI"]) >= -1e-12
    assert float(m["VIF"]) >= 0 and float(m["MSE"]) >= 0
    for k in m:
        assert float(m[k]) == pytest.approx(float(ms[k]), rel=1e-9, abs=1e-12, nan_ok=True), k


# ------------------------------------------------------------------ API surface and errors
def test_evaluate_return_types_subsets_and_module():
    ir, vi, fused = _triplet(9)
    one = evaluate(ir[0, 0], vi[0, 0], fused[0, 0])
    assert isinstance(one, dict) and list(one) == list(METRIC_NAMES) and all(isinstance(v, float) for v in one.values())
    assert evaluate(ir[0], vi[0], fused[0].numpy()) == one  # (1, H, W) and numpy arrays work too
    df = evaluate(ir.repeat(2, 1, 1, 1), vi.repeat(2, 1, 1, 1), fused.repeat(2, 1, 1, 1), metrics="qabf,EN")
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["Qabf", "EN"] and len(df) == 2
    assert list(evaluate(ir, vi, fused, metrics="all").columns) == list(METRIC_NAMES + EXTRA_METRICS)
    assert evaluate(ir[0], vi[0], fused[0], metrics=["Qabf"])["Qabf"] == pytest.approx(float(qabf.qabf(fused, ir, vi)))
    mod = FusionMetrics(["EN", "SSIM"])
    p = make_pair(10, (48, 48))
    fused01 = (p["ir"] + p["vi"]) / 2
    out = mod(p["ir"][None], p["vi"][None], fused01[None])
    want = evaluate(to_metric_scale(p["ir"]), to_metric_scale(p["vi"]), to_metric_scale(fused01), ["EN", "SSIM"])
    assert float(out["SSIM"]) == pytest.approx(want.loc[0, "SSIM"]) and "convention='cddfuse'" in repr(mod)


def test_input_errors_are_clear():
    ir, vi, fused = _triplet(11)
    with pytest.raises(ShapeMismatchError, match="fused"):
        compute_metrics(ir, vi, fused[..., :-1])
    with pytest.raises(InvalidTensorError, match=r"\(B, 1, H, W\)"):
        compute_metrics(ir.repeat(1, 3, 1, 1), vi, fused)
    bad = fused.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(InvalidTensorError, match="NaN"):
        compute_metrics(ir, vi, bad)
    with pytest.raises(ConfigError, match="unknown metric 'VIFF'"):
        compute_metrics(ir, vi, fused, ["VIFF"])
    with pytest.raises(ConfigError, match="unknown metric convention 'piq'"):
        compute_metrics(ir, vi, fused, convention="piq")
    with pytest.raises(InvalidTensorError, match="at least 41"):
        compute_metrics(ir[..., :40, :40], vi[..., :40, :40], fused[..., :40, :40], ["VIF"])
    with pytest.raises(ConfigError, match="ssim_window"):
        dataclasses.replace(get_convention(), ssim_window="box")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        compute_metrics(ir / 255, vi / 255, fused / 255, ["EN"])
    assert any("to_metric_scale" in str(w.message) for w in rec)
