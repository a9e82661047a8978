"""Text priors, part 2: model code paths built offline from configs - open_clip text tower,
a tiny random Qwen2-VL captioner - and the caption-free projector."""
from __future__ import annotations

import json

import pytest
import torch

from fusionlab.data import write_synthetic_folder
from fusionlab.errors import CheckpointError, ConfigError, ModelUnavailableError
from fusionlab.text import build_text_prior, parse_event_type, read_caption_file
from support import TINY_CLIP


# ------------------------------------------------------------------ open_clip


def test_open_clip_encoder_loads_local_weights_and_fails_clearly(tmp_path, monkeypatch):
    import open_clip
    from safetensors.torch import save_file

    from fusionlab.text.encoders import OpenCLIPEncoder, build_text_encoder, default_open_clip_path

    cfg = tmp_path / "fl-tiny-clip.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(cfg)
    torch.manual_seed(1)
    ref = open_clip.create_model("fl-tiny-clip").eval()
    full = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, full)
    texts = ["a dark night scene", "an overexposed street"]
    with torch.no_grad():
        want = torch.nn.functional.normalize(ref.encode_text(open_clip.get_tokenizer("fl-tiny-clip")(texts)), dim=-1)
    enc = build_text_encoder({"type": "open_clip", "model_name": "fl-tiny-clip", "pretrained": str(full),
                              "cache_dir": tmp_path / "c"})
    assert enc.dim == 32 and "file:" in enc.id and not hasattr(enc._model, "visual")
    assert torch.allclose(enc.encode(texts), want, atol=1e-5)
    # a text-tower-only .pt state dict works too (weights_only load)
    text_only = tmp_path / "text.pt"
    torch.save({k: v for k, v in ref.state_dict().items() if not k.startswith("visual.")}, text_only)
    assert torch.allclose(OpenCLIPEncoder("fl-tiny-clip", pretrained=text_only, cache=False).encode(texts), want,
                          atol=1e-5)
    # the default location is used when pretrained is not given
    monkeypatch.setenv("FUSIONLAB_MODELS", str(tmp_path / "models"))
    default = default_open_clip_path("fl-tiny-clip")
    with pytest.raises(ModelUnavailableError, match=str(default)):
        OpenCLIPEncoder("fl-tiny-clip")
    default.parent.mkdir(parents=True)
    full.rename(default)
    assert torch.allclose(OpenCLIPEncoder("fl-tiny-clip", cache=False).encode(texts), want, atol=1e-5)
    # errors a user can cause
    with pytest.raises(ModelUnavailableError, match="not found"):
        OpenCLIPEncoder("fl-tiny-clip", pretrained=tmp_path / "missing.safetensors")
    with pytest.raises(ModelUnavailableError, match="unavailable"):
        OpenCLIPEncoder("fl-tiny-clip", pretrained="openai")  # no such tag / offline
    junk = tmp_path / "junk.pt"
    torch.save({"foo": torch.zeros(3)}, junk)
    with pytest.raises(CheckpointError, match="text keys missing"):
        OpenCLIPEncoder("fl-tiny-clip", pretrained=junk)
    with pytest.raises(ConfigError):
        OpenCLIPEncoder("no-such-arch")
    monkeypatch.setenv("FUSIONLAB_MODELS", str(tmp_path / "empty"))
    rnd = OpenCLIPEncoder("fl-tiny-clip", allow_random=True)
    assert rnd._disk is None and rnd.encode(texts).shape == (2, 32)  # random towers never fill the cache


def test_open_clip_vit_b32_offline_without_weights_names_the_path(tmp_path, monkeypatch):
    from fusionlab.text.encoders import OpenCLIPEncoder

    monkeypatch.setenv("FUSIONLAB_MODELS", str(tmp_path))
    with pytest.raises(ModelUnavailableError) as e:
        OpenCLIPEncoder("ViT-B-32")
    msg = str(e.value)
    assert str(tmp_path / "open_clip" / "ViT-B-32.safetensors") in msg and "\n" not in msg
    with pytest.raises(ModelUnavailableError, match="unavailable"):
        OpenCLIPEncoder("ViT-B-32", pretrained="openai")  # HF_HUB_OFFLINE=1: fails fast, no hang


# ------------------------------------------------------------------ mllm (tiny random Qwen2-VL)
def test_mllm_captioner_with_tiny_qwen2vl_resume_and_cli(tmp_path, monkeypatch, run_cli, tiny_vlm):
    from fusionlab.text import build_captioner
    from fusionlab.text.captioners import caption_folder
    from fusionlab.text.mllm import MLLMCaptioner, normalise_caption

    model_dir = tiny_vlm
    cap = build_captioner({"type": "mllm", "model": str(model_dir), "device": "cpu", "max_new_tokens": 6})
    root = write_synthetic_folder(tmp_path / "syn", n=3, size=40, with_reference=False)
    out = tmp_path / "caps.json"
    calls = []
    real = MLLMCaptioner.generate_raw
    monkeypatch.setattr(MLLMCaptioner, "generate_raw", lambda self, ir, vi: calls.append(1) or real(self, ir, vi))
    caps = caption_folder(cap, root / "ir", root / "vi", out, limit=2, progress=False)
    assert len(caps) == 2 and len(calls) == 2
    for c in caps.values():  # random weights: gibberish, but always in the caption format
        assert c.startswith("Event Type: ") and "\nDescription: " in c
    caps = caption_folder(cap, root / "ir", root / "vi", out, progress=False)  # resume: only the 3rd pair
    assert len(caps) == 3 and len(calls) == 3 and read_caption_file(out) == caps
    # the CLI drives the same code path
    code, stdout, err = run_cli("caption", "--root", root, "--captioner", "mllm", "--model", model_dir, "--device", "cpu",
                                "--max-new-tokens", "4", "--out", tmp_path / "cli.json", "--quiet")
    assert code == 0 and "3 captions" in stdout, err
    # answers are normalised into the DTPF format
    assert normalise_caption("**Event Type:** Low light\n**Description:** A dark road.") == \
        "Event Type: low_light\nDescription: A dark road."
    assert parse_event_type(normalise_caption("dark, nothing else")) == "unknown"
    # no weights -> a one-line error naming where to put them
    monkeypatch.setenv("FUSIONLAB_MODELS", str(tmp_path / "models"))
    with pytest.raises(ModelUnavailableError, match="models/mllm/Qwen--Qwen2-VL-7B-Instruct"):
        MLLMCaptioner("Qwen/Qwen2-VL-7B-Instruct", device="cpu")
    with pytest.raises(ModelUnavailableError, match="not found"):
        MLLMCaptioner(str(tmp_path / "no" / "such" / "dir"), device="cpu")


# ------------------------------------------------------------------ projector (caption-free prior)
def test_projector_learns_caption_space_and_round_trips(tmp_path):
    from fusionlab.text.projector import evaluate_projector, load_projector, save_projector, train_projector

    prior = build_text_prior("oracle", text_dim=512)
    proj, hist = train_projector(prior, steps=40, batch_size=16, n_pairs=8, size=48, crop=32, seed=0, log_every=10)
    assert hist[-1]["loss"] < hist[0]["loss"]
    res = evaluate_projector(proj, prior, n_per_class=4, size=48, seed=7000)  # held-out seeds
    assert res["accuracy"] >= 0.7, res["confusion"]  # chance is 0.2; 0.85-1.0 over seeds 0-3, 1.0 at 200 steps
    assert res["cos_true"] > res["cos_other"] + 0.05
    path = save_projector(tmp_path / "proj.pt", proj, metadata={"steps": 40})
    loaded = load_projector(path)
    ir, vi = torch.rand(2, 1, 40, 56), torch.rand(2, 3, 40, 56)
    assert torch.allclose(loaded.embed(ir, vi), proj.embed(ir, vi), atol=1e-6)
    # the prior built on it needs neither captions nor labels nor a text encoder
    p = build_text_prior("projector", text_dim=512, checkpoint=path)
    e = p({"ir": ir, "vi": vi, "names": ["a", "b"]})
    assert e.shape == (2, 512) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    assert p.encoder is None and p.captions({"ir": ir, "vi": vi}) is None
    big = loaded.embed(torch.rand(1, 1, 300, 520), torch.rand(1, 3, 300, 520))  # downscaled to max_side
    assert big.shape == (1, 512)
    with pytest.raises(ConfigError, match="512"):
        build_text_prior("projector", text_dim=256, projector=loaded)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_projector(tmp_path / "bad.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a fusionlab text projector"):
        load_projector(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_projector(tmp_path / "missing.pt")


def test_projector_trains_on_real_folder_with_caption_targets(tmp_path):
    from fusionlab.data import PairedFolder
    from fusionlab.text.projector import train_projector

    root = write_synthetic_folder(tmp_path / "syn", n=3, size=40, with_reference=False)
    prior = build_text_prior("rules", text_dim=128)
    proj, hist = train_projector(prior, data=PairedFolder(root), steps=3, batch_size=4, crop=32, log_every=1)
    assert len(hist) == 3 and proj.text_dim == 128
    assert proj.embed(torch.rand(1, 1, 40, 40), torch.rand(1, 3, 40, 40)).shape == (1, 128)


def test_mllm_captioner_with_too_old_transformers_is_one_line(tmp_path, monkeypatch, run_cli):
    """A core install may hold a transformers without the image-text-to-text classes: the
    mllm captioner then says which extra to install, in one line, with exit code 2 (a usage error)."""
    import sys
    import types

    old = types.ModuleType("transformers")
    old.__version__ = "4.40.0"  # no AutoModelForImageTextToText
    monkeypatch.setitem(sys.modules, "transformers", old)
    from fusionlab.errors import UsageError
    from fusionlab.text import build_captioner

    (tmp_path / "vlm").mkdir()
    (tmp_path / "vlm" / "config.json").write_text("{}")
    with pytest.raises(UsageError, match=r"transformers >= 4.56 \(installed: 4.40.0\): pip install 'fusionlab\[mllm\]'"):
        build_captioner({"type": "mllm", "model": str(tmp_path / "vlm"), "device": "cpu"})
    root = write_synthetic_folder(tmp_path / "syn", n=1, size=40, with_reference=False)
    code, _, err = run_cli("caption", "--root", root, "--captioner", "mllm", "--model", tmp_path / "vlm",
                           "--device", "cpu", "--out", tmp_path / "caps.json")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "fusionlab[mllm]" in err, err  # usage error
