"""Export to ONNX / TorchScript (fusionlab.models.export): the exported graph gives the torch
model's output within 1e-4 for any size; ``fusionlab export --format onnx|torchscript`` and
``fusionlab fuse --runtime onnxruntime``. onnxruntime is an optional extra: its tests skip
without it."""
from __future__ import annotations

import pytest
import torch

from fusionlab.models import create_model, fuse_pair, save_checkpoint
from support import luma_pair

pytestmark = pytest.mark.usefixtures("one_thread")

NO_ORT = "onnxruntime is an optional extra (pip install 'fusionlab[onnx]')"


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_model_matches_torch(tmp_path, fmt):
    from fusionlab.models.export import export_model, load_exported

    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason=NO_ORT)
    torch.manual_seed(0)
    model = create_model("dtpf_student_tiny").eval()
    path = export_model(model, tmp_path / f"m.{'onnx' if fmt == 'onnx' else 'ts'}", fmt)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # written atomically
    fuser = load_exported(path)
    for b, h, w in ((1, 45, 70), (2, 64, 40), (1, 8, 9)):  # dynamic batch and size, multiples of 8 or not
        ir, vi = luma_pair(b, h, w, seed=h)
        with torch.no_grad():
            want, got = model(ir, vi), fuser(ir, vi)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    with torch.no_grad():  # fuse_pair drives an exported model like a torch one
        ir, vi = luma_pair(1, 30, 44)
        torch.testing.assert_close(fuse_pair(fuser, ir, vi), fuse_pair(model, ir, vi), atol=1e-4, rtol=0)


def test_cli_export_and_fuse_with_onnxruntime(tmp_path, run_cli):
    pytest.importorskip("onnxruntime", reason=NO_ORT)
    from fusionlab.data import write_synthetic_folder
    from fusionlab.io import read_image

    data = tmp_path / "data"
    write_synthetic_folder(data, n=1, size=(40, 56))
    ck = save_checkpoint(tmp_path / "s.pt", create_model("dtpf_student_tiny"))
    code, out, err = run_cli("export", "--checkpoint", ck, "--format", "onnx", "--out", tmp_path / "s.onnx")
    assert code == 0, err
    assert "onnx" in out and (tmp_path / "s.onnx").is_file()
    code, _, err = run_cli("fuse", "--data", data, "--out", tmp_path / "ort", "--runtime", "onnxruntime",
                           "--checkpoint", tmp_path / "s.onnx")
    assert code == 0, err
    code, _, err = run_cli("fuse", "--data", data, "--out", tmp_path / "pt", "--checkpoint", ck)
    assert code == 0, err
    name = next((tmp_path / "pt").iterdir()).name
    a, b = read_image(tmp_path / "ort" / name), read_image(tmp_path / "pt" / name)
    assert (a - b).abs().max() <= 1 / 255 + 1e-6  # same 8-bit image up to rounding
    code, _, err = run_cli("fuse", "--data", data, "--out", tmp_path / "x", "--checkpoint", tmp_path / "s.onnx")
    assert code == 2 and "--runtime onnxruntime" in err
    code, _, err = run_cli("export", "--checkpoint", ck, "--format", "tflite", "--out", tmp_path / "x")
    assert code == 2
    code, _, err = run_cli("export", ck, "--format", "onnx", "--out", tmp_path / "y.onnx", "--push-to-hub", "a/b")
    assert code != 0 and "--push-to-hub" in err and len(err.strip().splitlines()) == 1


def test_cli_export_torchscript_positional_model(tmp_path, run_cli):
    """One `fusionlab export` command: the model is positional for every format (as for the
    default save_pretrained folder), --format picks the output."""
    from fusionlab.models.export import load_exported

    torch.manual_seed(0)
    model = create_model("dtpf_student_tiny").eval()
    ck = save_checkpoint(tmp_path / "s.pt", model)
    code, out, err = run_cli("export", ck, "--format", "torchscript", "--out", tmp_path / "s.ts")
    assert code == 0, err
    assert "torchscript" in out
    ir, vi = luma_pair(1, 37, 51)
    with torch.no_grad():
        torch.testing.assert_close(load_exported(tmp_path / "s.ts")(ir, vi), model(ir, vi), atol=1e-4, rtol=0)
