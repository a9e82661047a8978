"""Property tests (hypothesis) for image I/O on random shapes, dtypes and modes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fusionlab import io as fio
from fusionlab.errors import InvalidTensorError

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
shapes = st.tuples(st.integers(1, 40), st.integers(1, 40))


@SETTINGS
@given(shape=shapes, kind=st.sampled_from(["L8", "L16", "RGB", "RGBA"]), seed=st.integers(0, 2**16))
def test_read_any_mode_and_shape(tmp_path, shape, kind, seed):
    rng = np.random.default_rng(seed)
    h, w = shape
    if kind == "L16":
        arr = rng.integers(0, 65536, (h, w), dtype=np.uint16)
        expect = arr.astype(np.float32) / 65535
    elif kind == "L8":
        arr = rng.integers(0, 256, (h, w), dtype=np.uint8)
        expect = arr.astype(np.float32) / 255
    else:
        arr = rng.integers(0, 256, (h, w, 4 if kind == "RGBA" else 3), dtype=np.uint8)
        expect = arr[..., :3].astype(np.float32) / 255
    path = tmp_path / f"x_{kind}_{h}_{w}_{seed}.png"
    Image.fromarray(arr).save(path)
    t = fio.read_image(path)
    assert t.dtype == torch.float32 and t.shape[-2:] == (h, w)
    assert t.shape[0] == (1 if kind.startswith("L") else 3)
    got = t[0].numpy() if t.shape[0] == 1 else t.permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expect, atol=1e-6)
    assert fio.read_image(path, mode="gray").shape == (1, h, w)
    assert fio.read_image(path, mode="rgb").shape == (3, h, w)


@SETTINGS
@given(shape=shapes, channels=st.sampled_from([1, 3]), seed=st.integers(0, 2**16))
def test_write_read_round_trip_within_quantisation(tmp_path, shape, channels, seed):
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(channels, *shape, generator=g)
    path = fio.write_image(tmp_path / f"rt_{channels}_{shape[0]}_{shape[1]}_{seed}.png", img)
    back = fio.read_image(path)
    assert back.shape == img.shape
    assert (back - img).abs().max() <= 0.5 / 255 + 1e-6


@SETTINGS
@given(shape=shapes, bad=st.sampled_from([float("nan"), float("inf"), -float("inf")]))
def test_nonfinite_tensors_are_refused(tmp_path, shape, bad):
    img = torch.rand(1, *shape)
    img[0, 0, 0] = bad
    with pytest.raises(InvalidTensorError, match="NaN/inf"):
        fio.write_image(tmp_path / "bad.png", img)
    with pytest.raises(InvalidTensorError):
        fio.check_finite(img, "fused image")


@SETTINGS
@given(b=st.integers(1, 3), shape=shapes, seed=st.integers(0, 2**16))
def test_ycbcr_round_trip(b, shape, seed):
    x = torch.rand(b, 3, *shape, generator=torch.Generator().manual_seed(seed))
    # exact on every kornia version (color.py replaces kornia < 0.9's rounded inverse)
    assert torch.allclose(fio.ycbcr_to_rgb(fio.rgb_to_ycbcr(x)), x, atol=2e-5)
