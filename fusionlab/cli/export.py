"""``fusionlab export``: write a trained model as a Hub-style folder (safetensors + config +
card), or as an ONNX / TorchScript graph for other runtimes (dynamic image size)."""
from __future__ import annotations

HELP = "export a trained model: save_pretrained folder (default), ONNX or TorchScript"
DESCRIPTION = (
    "Read a trained model (a .pt checkpoint such as runs/<run>/model.pt, a save_pretrained "
    "folder or a Hub id; default: the shipped student) and write it. --format pretrained "
    "(default) writes a folder with save_pretrained: model.safetensors + config.json + a "
    "generated README.md model card; it loads with fusionlab.load_model(FOLDER), "
    "FusionNet.from_pretrained(FOLDER) and 'fusionlab fuse --checkpoint FOLDER'; --push-to-hub "
    "also uploads it (needs 'hf auth login'). --format onnx | torchscript writes one file, a "
    "graph (ir, vi) -> fused for any image size, checked against the torch model before it is "
    "written; run an ONNX file with 'fusionlab fuse --runtime onnxruntime --checkpoint F.onnx' "
    "(pip install 'fusionlab[onnx]'). "
    "Examples: fusionlab export runs/student/model.pt --out my-student; "
    "fusionlab export --format onnx --out student.onnx")

FORMATS = ("pretrained", "onnx", "torchscript")


def add_arguments(p) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="a .pt checkpoint, a save_pretrained folder or a Hub id (default: the shipped student)")
    p.add_argument("--checkpoint", default=None, help="same as the positional MODEL argument")
    p.add_argument("--format", choices=FORMATS, default="pretrained",
                   help="pretrained: a save_pretrained folder (default); onnx / torchscript: one graph file "
                        "with dynamic H, W")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="folder to write (pretrained) or file (onnx: e.g. student.onnx; torchscript: student.ts)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--push-to-hub", metavar="OWNER/NAME", default=None,
                   help="pretrained only: also upload the folder to this Hub model repository (network and token "
                        "needed)")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repository private")


def run(args) -> int:
    from ..api import load_model
    from ..errors import UsageError
    from ..models.net import count_parameters

    if args.model and args.checkpoint and args.model != args.checkpoint:
        raise UsageError(f"give the model once: MODEL {args.model} or --checkpoint {args.checkpoint}")
    fmt = getattr(args, "format", "pretrained")
    if fmt != "pretrained" and args.push_to_hub:
        raise UsageError(f"--push-to-hub uploads a save_pretrained folder: drop it or use --format pretrained "
                         f"(not {fmt})")
    model = load_model(args.model or args.checkpoint)
    if fmt != "pretrained":
        from ..models.export import export_model

        path = export_model(model, args.out, fmt, opset=args.opset)
        print(f"{model.name} ({count_parameters(model) / 1e6:.2f} M parameters) -> {path} "
              f"({path.stat().st_size / 2 ** 20:.1f} MB, {fmt}, inputs ir/vi (B, 1, H, W) in [0, 1], any H, W >= 8)")
        return 0
    out = model.save_pretrained(args.out)
    print(f"{model.name} ({count_parameters(model) / 1e6:.2f} M parameters) -> {out} "
          "(model.safetensors, config.json, README.md)")
    if args.push_to_hub:
        from ..errors import ModelUnavailableError

        try:
            url = model.push_to_hub(args.push_to_hub, private=args.private or None)
        except Exception as e:  # no token, no network, no permission: one line
            raise ModelUnavailableError(f"push to {args.push_to_hub} failed ({type(e).__name__}: "
                                        f"{' '.join(str(e).split()).split('. ')[0][:160]})") from None
        print(f"uploaded: {url}")
    return 0
