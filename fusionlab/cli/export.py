"""``fusionlab export``: write a trained model as ONNX or TorchScript (dynamic image size)."""
from __future__ import annotations

HELP = "export a model checkpoint to ONNX or TorchScript (dynamic H, W)"
DESCRIPTION = (
    "Export a fusionlab checkpoint (default: the shipped student) as a graph (ir, vi) -> fused for "
    "any image size: ONNX for onnxruntime (pip install 'fusionlab[onnx]') or TorchScript for "
    "torch.jit.load. The exported file is checked against the torch model before it is written. "
    "Run it with 'fusionlab fuse --runtime onnxruntime --checkpoint model.onnx'.")


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", help="model checkpoint (.pt) written by fusionlab (default: the shipped student)")
    p.add_argument("--model", help="with --checkpoint, the expected architecture; alone, an UNTRAINED model")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="output format (default onnx)")
    p.add_argument("--out", required=True, help="output file (e.g. student.onnx, student.ts)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights with --model alone")


def run(args) -> int:
    import sys

    import torch

    from ..models.export import export_model
    from .fuse import _load_model

    args.device = "cpu"
    model, what = _load_model(args, torch.device("cpu"))
    sys.stderr.write(f"fusionlab export: {what} -> {args.format}\n")
    path = export_model(model, args.out, args.format, opset=args.opset)
    print(f"exported {what} to {path} ({path.stat().st_size / 2 ** 20:.1f} MB, {args.format}, inputs ir/vi "
          "(B, 1, H, W) in [0, 1], any H, W >= 8)")
    return 0
