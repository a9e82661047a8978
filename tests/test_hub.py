"""Models that travel: save_pretrained / from_pretrained (folder and Hub cache), the old .pt
format, the top-level API (fusionlab.fuse / evaluate / load_model / list_models) and the
CLI round trip (fusionlab export -> fusionlab fuse --checkpoint FOLDER)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

import fusionlab
from fusionlab.errors import CheckpointError, ConfigError, ModelUnavailableError
from fusionlab.models import FusionNet, create_model, save_checkpoint
from fusionlab.models.hub import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE


def _tiny(seed: int = 0, name: str = "dtpf_student_tiny") -> FusionNet:
    torch.manual_seed(seed)
    return create_model(name).eval()


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_pretrained_round_trip(tmp_path):
    model = _tiny(1)
    out = model.save_pretrained(tmp_path / "m", metadata={"note": "unit test", "val": {"EN": 6.5}})
    assert sorted(p.name for p in out.iterdir()) == sorted([CARD_FILE, CONFIG_FILE, WEIGHTS_FILE])
    cfg = json.loads((out / CONFIG_FILE).read_text())
    assert cfg["format"] == "fusionlab.model" and cfg["model"] == "dtpf_student_tiny"
    assert cfg["config"] == model.config.to_dict() and cfg["metadata"]["note"] == "unit test"
    card = (out / CARD_FILE).read_text()
    assert card.startswith("---\nlibrary_name: fusionlab\n") and "# dtpf_student_tiny" in card and "EN 6.5" in card
    # the weights file is safetensors (no pickle): readable without torch.load
    from safetensors import safe_open

    with safe_open(str(out / WEIGHTS_FILE), "pt") as f:
        assert set(f.keys()) == set(model.state_dict())

    back = FusionNet.from_pretrained(out)
    assert back.name == model.name and back.config == model.config and not back.training
    assert _same_weights(model, back) and back.train_metadata["note"] == "unit test"
    ir, vi = torch.rand(1, 1, 40, 48), torch.rand(1, 1, 40, 48)
    with torch.no_grad():
        assert torch.equal(model(ir, vi), back(ir, vi))
    # called on an instance (create_model(...).from_pretrained) it builds the saved model too
    assert _same_weights(_tiny(2).from_pretrained(out), model)
    with pytest.raises(CheckpointError, match="holds a 'dtpf_student_tiny' model, expected 'dtpf_student'"):
        FusionNet.from_pretrained(out, expected="dtpf_student")


def test_pt_checkpoints_still_load_and_convert(tmp_path):
    model = _tiny(3)
    save_checkpoint(tmp_path / "old.pt", model, metadata={"stage": "teacher", "step": 7})
    loaded = fusionlab.load_model(tmp_path / "old.pt")
    assert _same_weights(loaded, model) and loaded.train_metadata["step"] == 7
    folder = loaded.save_pretrained(tmp_path / "new")  # metadata travels from the .pt
    again = fusionlab.load_model(folder)
    assert _same_weights(again, model) and again.train_metadata == {"stage": "teacher", "step": 7}
    assert "stage: teacher, steps: 7" in (folder / CARD_FILE).read_text()


def test_bad_folders_give_one_line_errors(tmp_path):
    good = _tiny().save_pretrained(tmp_path / "good")

    def copy(name):
        return shutil.copytree(good, tmp_path / name)

    cases = []
    d = copy("truncated")
    (d / WEIGHTS_FILE).write_bytes((good / WEIGHTS_FILE).read_bytes()[:1000])
    cases.append((d, "not readable safetensors weights"))
    d = copy("foreign")
    (d / CONFIG_FILE).write_text(json.dumps({"architectures": ["BertModel"]}))
    cases.append((d, "not a fusionlab model config"))
    d = copy("other_arch")  # the config says width 16 but the weights are width 8
    cfg = json.loads((d / CONFIG_FILE).read_text())
    cfg["config"]["dim"] = 16
    (d / CONFIG_FILE).write_text(json.dumps(cfg))
    cases.append((d, "weights do not fit the stored 'dtpf_student_tiny' architecture: .* with another shape"))
    d = copy("no_weights")
    (d / WEIGHTS_FILE).unlink()
    cases.append((d, "not a save_pretrained folder \\(no model.safetensors\\)"))
    cases.append((tmp_path / "missing" / "x", "checkpoint file not found"))
    cases.append((tmp_path / "missing.pt", "checkpoint file not found"))
    for path, msg in cases:
        with pytest.raises(CheckpointError, match=msg) as e:
            fusionlab.load_model(path)
        assert "\n" not in str(e.value)


def test_hub_ids_offline_and_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="fusionlab-test/nothing: cannot fetch the model from the Hub") as e:
        fusionlab.load_model("fusionlab-test/nothing", cache_dir=tmp_path / "hub")
    assert "\n" not in str(e.value)
    # a repository already in huggingface_hub's cache loads offline (the layout hf_hub_download writes)
    model = _tiny(4)
    repo = tmp_path / "hub" / "models--fusionlab-test--tiny"
    rev = "0123456789abcdef0123456789abcdef01234567"
    model.save_pretrained(repo / "snapshots" / rev)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    back = fusionlab.load_model("fusionlab-test/tiny", cache_dir=tmp_path / "hub")
    assert _same_weights(back, model) and back.pretrained_source == "fusionlab-test/tiny"


def test_top_level_api(tmp_path):
    # importing fusionlab does not import torch; the API loads on first use
    code = "import sys, fusionlab; assert 'torch' not in sys.modules; print(sorted(fusionlab.__all__))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "'evaluate', 'fuse', 'list_models', 'load_model'" in r.stdout
    assert fusionlab.list_models() == sorted(fusionlab.list_models()) and "dtpf_student" in fusionlab.list_models()
    with pytest.raises(ConfigError, match="names an architecture"):
        fusionlab.load_model("dtpf_student")
    with pytest.raises(AttributeError):
        fusionlab.no_such_thing  # noqa: B018

    from fusionlab.data import make_pair
    from fusionlab.io import write_image

    pair = make_pair(seed=5, size=(48, 64))
    write_image(tmp_path / "ir.png", pair["ir"])
    write_image(tmp_path / "vi.png", pair["vi"])
    fused = fusionlab.fuse(tmp_path / "ir.png", tmp_path / "vi.png", out=tmp_path / "f.png")
    assert fused.shape == (3, 48, 64) and 0 <= fused.min() and fused.max() <= 1  # the shipped student, colour kept
    model = fusionlab.load_model()
    assert model.name == "dtpf_student_tiny" and "val" in model.train_metadata
    from_files = fusionlab.evaluate(tmp_path / "ir.png", tmp_path / "vi.png", tmp_path / "f.png", metrics=["EN", "VIF"])
    from fusionlab.io import read_image

    ir, vi = read_image(tmp_path / "ir.png"), read_image(tmp_path / "vi.png")
    from_tensors = fusionlab.evaluate(ir, vi, fused, metrics=["EN", "VIF"])
    assert from_files == pytest.approx(from_tensors, abs=1e-9)  # tensors are quantised like the PNG
    batch = fusionlab.evaluate(ir[None], vi[None], fused[None], metrics=["EN"])
    assert batch.shape == (1, 1) and batch["EN"][0] == pytest.approx(from_files["EN"])


def test_cli_export_then_fuse_with_the_folder(tmp_path, run_cli):
    from fusionlab.data import write_synthetic_folder
    from fusionlab.io import read_image

    data = tmp_path / "data"
    write_synthetic_folder(data, n=2, size=48)
    code, out, err = run_cli("export", "--out", tmp_path / "student")
    assert code == 0, err
    assert "dtpf_student_tiny" in out and (tmp_path / "student" / WEIGHTS_FILE).is_file()
    code, _, err = run_cli("fuse", "--data", data, "--out", tmp_path / "a", "--checkpoint", tmp_path / "student")
    assert code == 0, err
    code, _, err = run_cli("fuse", "--data", data, "--out", tmp_path / "b")  # the shipped .pt
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == 2 and names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for n in names:
        assert torch.equal(read_image(tmp_path / "a" / n), read_image(tmp_path / "b" / n))
    code, _, err = run_cli("fuse", "--data", data, "--out", tmp_path / "c", "--checkpoint", tmp_path / "student",
                           "--model", "dtpf_student")
    assert code == 1 and "expected 'dtpf_student'" in err and err.count("\n") == 1
    code, _, err = run_cli("fuse", "--data", data, "--out", tmp_path / "c", "--checkpoint", tmp_path / "nowhere")
    assert code == 1 and "checkpoint file not found" in err
