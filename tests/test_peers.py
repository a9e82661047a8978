"""Peer methods (published networks + authors' weights), classical baselines, and the
registry that holds them next to the FusionNet variants.

Tests that need ``../shared`` (weights, real pairs, published outputs) skip with a reason
when it is absent; the baseline and registry tests run everywhere.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionlab.errors import CheckpointError, ConfigError, InvalidTensorError, ModelUnavailableError
from fusionlab.models import create_model, list_models, model_config, model_kind
from fusionlab.models.baselines import laplacian_fusion, pixel_max, pixel_mean, visible_only

PEER_FILES = {"seafusion": ["STATE_DICT.txt"], "ifcnn": ["STATE_DICT.txt"], "tardal": ["STATE_DICT_tardal++.txt"],
              "didfuse": ["STATE_DICT_Encoder.txt", "STATE_DICT_Decoder.txt"]}


@pytest.fixture(scope="module")
def peers_dir(shared_dir) -> Path:
    d = shared_dir / "peers"
    if not (d / "seafusion" / "SeAFusion.pth").is_file():
        pytest.skip(f"peer weights not found in {d} (set FUSIONLAB_SHARED)")
    return d


@pytest.fixture(scope="module")
def msrs_crop(shared_dir):
    """A real MSRS pair, 96x128 crop: IR and visible luma, (1, 1, 96, 128) in [0, 1]."""
    from fusionlab.data.paired import load_pair
    from fusionlab.io import to_luma

    root = shared_dir / "data" / "msrs" / "test"
    p = load_pair(root / "ir" / "00055D.png", root / "vi" / "00055D.png")
    return p["ir"][None][..., 150:246, 250:378], to_luma(p["vi"][None])[..., 150:246, 250:378]


def _listing(path: Path) -> dict[str, tuple[int, ...]]:
    """key -> shape from a STATE_DICT*.txt listing."""
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape, _ = line.split("\t")
        out[key] = tuple(int(v) for v in re.findall(r"\d+", shape))
    return out


# ----------------------------------------------------------------------------- registry
def test_registry_holds_fusionnet_peers_and_baselines():
    assert list_models("peer") == ["didfuse", "ifcnn", "seafusion", "tardal"]
    assert list_models("baseline") == ["laplacian", "pixel_max", "pixel_mean", "visible_only"]
    assert "dtpf_student" in list_models("fusionnet") and "seafusion" not in list_models("fusionnet")
    assert set(list_models()) == set(list_models("fusionnet") + list_models("peer") + list_models("baseline"))
    assert model_kind("laplacian") == "baseline" and model_kind("dtpf_teacher") == "fusionnet"
    # FusionNet variants are unchanged
    assert create_model("dtpf_student_tiny").config == model_config("dtpf_student_tiny")
    with pytest.raises(ConfigError, match="not a FusionNet variant"):
        model_config("seafusion")
    with pytest.raises(ConfigError, match="unknown option"):
        create_model("pixel_mean", levels=3)
    with pytest.raises(ConfigError, match="unknown kind"):
        list_models("gan")


# ----------------------------------------------------------------------------- baselines
def test_baselines_exact_values():
    ir = torch.tensor([[[[0.0, 0.2], [1.0, 0.5]]]])
    vi = torch.tensor([[[[0.4, 0.2], [0.0, 0.9]]]])
    assert torch.allclose(pixel_mean(ir, vi), torch.tensor([[[[0.2, 0.2], [0.5, 0.7]]]]))
    assert torch.equal(pixel_max(ir, vi), torch.tensor([[[[0.4, 0.2], [1.0, 0.9]]]]))
    assert torch.equal(visible_only(ir, vi), vi)
    # registered modules = the functions, calling convention model(ir, vi, text)
    assert torch.equal(create_model("pixel_max")(ir, vi, None), pixel_max(ir, vi))
    with pytest.raises(InvalidTensorError, match=r"\(B, 1, H, W\)"):
        pixel_mean(ir[0], vi[0])


def test_laplacian_fusion_properties():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 1, 37, 50, generator=g), torch.rand(2, 1, 37, 50, generator=g)
    # a pyramid reconstructs exactly: fusing an image with itself returns it
    assert torch.allclose(laplacian_fusion(a, a), a, atol=1e-5)
    # one level = no detail levels = the mean of the two images
    assert torch.allclose(laplacian_fusion(a, b, levels=1), (a + b) / 2)
    # max-abs detail and averaged base are symmetric rules
    assert torch.allclose(laplacian_fusion(a, b), laplacian_fusion(b, a), atol=1e-6)
    out = laplacian_fusion(a, b, levels=3)
    assert out.shape == a.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    # detail comes from the sharper source: an IR step edge next to a flat visible image keeps
    # almost its full height (pixel mean: half), only the base level is averaged
    ir = torch.zeros(1, 1, 32, 32)
    ir[..., 16:] = 1.0
    vi = torch.full((1, 1, 32, 32), 0.5)
    fused = laplacian_fusion(ir, vi)
    assert float((fused[..., 16] - fused[..., 15]).min()) > 0.95
    assert torch.allclose(create_model("laplacian", levels=3)(a, b), out)
    with pytest.raises(ConfigError, match="levels"):
        create_model("laplacian", levels=0)
    with pytest.raises(InvalidTensorError, match="too small"):
        laplacian_fusion(a[..., :8, :8], b[..., :8, :8], levels=4)


# ----------------------------------------------------------------------------- peers
@pytest.mark.parametrize("name", ["seafusion", "ifcnn", "tardal", "didfuse"])
def test_peer_loads_strictly_and_fuses_sensibly(name, peers_dir, msrs_crop, one_thread):
    model = create_model(name)
    # every key and shape of the published file is in the module (and nothing else)
    own = {k: tuple(v.shape) for k, v in
           (model.state_dict().items() if name != "didfuse" else
            [*model.encoder.state_dict().items(), *model.decoder.state_dict().items()])}
    own = {k.removeprefix("net."): s for k, s in own.items()}
    listed = {}
    for f in PEER_FILES[name]:
        listed.update(_listing(peers_dir / name / f))
    if name == "ifcnn":  # old file without BatchNorm counters (load_state_dict fills them in)
        own = {k: s for k, s in own.items() if not k.endswith("num_batches_tracked")}
    assert own == listed
    ir, vi = msrs_crop
    with torch.no_grad():
        out = model(ir, vi)
    assert out.shape == ir.shape and torch.isfinite(out).all()
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0 and float(out.std()) > 0.02
    cc = [float(np.corrcoef(out.flatten(), x.flatten())[0, 1]) for x in (ir, vi)]
    assert max(cc) > 0.5, cc


def test_tardal_variants_and_batchnorm_modes(peers_dir, msrs_crop, one_thread):
    ir, vi = msrs_crop
    outs = {}
    for variant in ("tardal", "tardal+", "tardal++"):
        m = create_model("tardal", variant=variant)
        assert m.weights_path.name == f"{variant}.pt"
        # the author README runs tardal.pt without --eval: BatchNorm uses the image's statistics
        assert m.bn_image_stats == (variant == "tardal")
        with torch.no_grad():
            outs[variant] = m(ir, vi)
    assert not torch.allclose(outs["tardal+"], outs["tardal++"])
    with pytest.raises(ConfigError, match="unknown variant"):
        create_model("tardal", variant="tardal+++")


def test_didfuse_autoencoder_reconstructs(peers_dir, msrs_crop, one_thread):
    """Encoder + decoder were trained to reconstruct: a wrong concatenation order would not."""
    m = create_model("didfuse")
    with torch.no_grad():
        for x in msrs_crop:
            assert float((m.reconstruct(x) - x).abs().mean()) < 0.04


def test_missing_weights_name_the_path_and_source(tmp_path, monkeypatch, run_cli):
    monkeypatch.setenv("FUSIONLAB_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("FUSIONLAB_SHARED", str(tmp_path / "shared"))
    with pytest.raises(ModelUnavailableError) as e:
        create_model("ifcnn")
    msg = str(e.value)
    assert str(tmp_path / "models" / "peers" / "ifcnn" / "IFCNN-MAX.pth") in msg and "github.com/uzeful/IFCNN" in msg
    from fusionlab.io import write_image

    write_image(tmp_path / "ir.png", torch.rand(1, 16, 16))
    code, out, err = run_cli("fuse", "--model", "didfuse", "--ir", tmp_path / "ir.png", "--vi", tmp_path / "ir.png",
                             "--out", tmp_path / "o")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Encoder.pkl" in err


def test_strict_load_rejects_a_foreign_state_dict(tmp_path, peers_dir):
    state = torch.load(peers_dir / "ifcnn" / "IFCNN-MAX.pth", map_location="cpu", weights_only=True)
    state["conv4.weight"] = state["conv4.weight"][:1]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"another shape \(e.g. conv4.weight"):
        create_model("ifcnn", weights=tmp_path / "bad.pth")
    del state["conv4.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad2.pth")
    with pytest.raises(CheckpointError, match="1 missing .*1 unexpected"):
        create_model("ifcnn", weights=tmp_path / "bad2.pth")


def test_fuse_cli_usage_errors(tmp_path, run_cli):
    for argv, needle in (
        (["--model", "pixel_mean", "--checkpoint", "x.pt"], "drop --checkpoint"),
        (["--model", "dtpf_student_tiny", "--protocol", "author"], "peer methods only"),
        (["--model", "laplacian", "--option", "levels"], "KEY=VALUE"),
    ):
        code, _, err = run_cli("fuse", "--ir", "a.png", "--vi", "b.png", "--out", tmp_path, *argv)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_fuse_seafusion_reproduces_published_outputs(shared_dir, peers_dir, tmp_path, run_cli):
    """``fusionlab fuse --model seafusion`` on the 20 MSRS test pairs gives the authors' published
    PNGs: >= 99.9 % of the values within one gray level and the same metrics (rel. 1e-3)."""
    from PIL import Image

    from fusionlab.metrics import evaluate_folders

    data = shared_dir / "data" / "msrs" / "test"
    ref = shared_dir / "reference" / "peers" / "seafusion" / "msrs"
    code, out, err = run_cli("fuse", "--model", "seafusion", "--data", data, "--out", tmp_path)
    assert code == 0, err
    names = sorted(p.name for p in ref.glob("*.png"))
    assert len(names) == 20 and sorted(p.name for p in tmp_path.glob("*.png")) == names
    diffs = [np.abs(np.asarray(Image.open(tmp_path / n), dtype=int) - np.asarray(Image.open(ref / n), dtype=int))
             for n in names]
    values = sum(d.size for d in diffs)
    assert sum(int((d <= 1).sum()) for d in diffs) / values >= 0.999
    assert max(int(d.max()) for d in diffs) <= 2
    ours = evaluate_folders(data / "ir", data / "vi", tmp_path, "all", progress=False)
    theirs = evaluate_folders(data / "ir", data / "vi", ref, "all", progress=False)
    rel = ((ours - theirs).abs() / theirs.abs().clip(lower=1.0)).max().max()
    assert rel <= 1e-3, rel


def test_fuse_cli_baseline_and_peer_protocols(tmp_path, run_cli, one_thread):
    """--model with a baseline (fusionlab pipeline) and a peer under each protocol: the authors'
    IFCNN script writes gray PNGs, VIF-Benchmark's and fusionlab's keep the visible colour."""
    from PIL import Image

    from fusionlab.data import write_synthetic_folder
    from fusionlab.models.peers import base

    data = write_synthetic_folder(tmp_path / "data", n=1, size=(40, 56), with_reference=False)
    name = next((data / "vi").glob("*.png")).name
    code, out, err = run_cli("fuse", "--model", "laplacian", "--option", "levels=3", "--data", data,
                             "--out", tmp_path / "lap")
    assert code == 0 and "baseline laplacian" in err and Image.open(tmp_path / "lap" / name).mode == "RGB"
    if not any((d / "IFCNN-MAX.pth").is_file() for d in base.weight_dirs("ifcnn")):
        pytest.skip("IFCNN weights not found (set FUSIONLAB_SHARED)")
    modes = {}
    for proto in ("author", "vif_benchmark", "fusionlab"):
        code, out, err = run_cli("fuse", "--model", "ifcnn", "--protocol", proto, "--data", data,
                                 "--out", tmp_path / proto)
        assert code == 0 and f"protocol {proto}" in err, err
        modes[proto] = Image.open(tmp_path / proto / name).mode
    assert modes == {"author": "L", "vif_benchmark": "RGB", "fusionlab": "RGB"}
    code, _, err = run_cli("fuse", "--model", "ifcnn", "--tile", "32", "--overlap", "8", "--data", data, "--out", tmp_path / "t")
    assert code == 2 and "--protocol fusionlab" in err
