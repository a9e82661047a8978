"""``fusionlab fuse``: fuse infrared + visible images (files or folders) with a model."""
from __future__ import annotations

HELP = "fuse infrared + visible images (files or folders) into colour PNGs"
DESCRIPTION = (
    "Fuse IR/VI pairs with a trained model: a .pt checkpoint, a save_pretrained folder or a Hub id (default: the shipped student, "
    "fusionlab/assets/student_real.pt, trained on real pairs), a published peer method (--model seafusion, ifcnn, "
    "tardal, didfuse: the authors' weights, and by default the authors' test-time processing, so "
    "the PNGs are what their script writes), a classical baseline (--model pixel_mean, pixel_max, "
    "visible_only, laplacian) or an untrained FusionNet --model. Folders are paired by "
    "file name stem; outputs are PNGs named like the inputs, in colour when the visible "
    "image is colour (its CbCr is kept).")

def add_arguments(p) -> None:
    src = p.add_argument_group("inputs")
    src.add_argument("--ir", help="infrared image file or folder")
    src.add_argument("--vi", help="visible image file or folder (same kind as --ir)")
    src.add_argument("--data", help="dataset root with ir/ + vi/ (or <ct|pet|spect>/ + mri/) instead of --ir/--vi, "
                                    "or a dataset name such as msrs or msrs/train (see 'fusionlab data list')")
    p.add_argument("--out", required=True, help="output folder for the fused PNGs")
    p.add_argument("--checkpoint", help="trained model: a .pt checkpoint written by fusionlab, a "
                                        "save_pretrained folder, a Hub id owner/name, or an ONNX file "
                                        "(with --runtime onnxruntime)")
    p.add_argument("--model", help="model name (see fusionlab.models.list_models()): a peer (seafusion, ifcnn, "
                                   "tardal, didfuse) or baseline (pixel_mean, pixel_max, visible_only, laplacian); "
                                   "or a FusionNet variant: with --checkpoint, the expected architecture, alone an "
                                   "UNTRAINED model with random weights (for testing the pipeline)")
    p.add_argument("--protocol", default=None,
                   help="peers only: test-time processing; 'vif_benchmark' or 'author' (the scripts described in "
                        "docs/peers.md; default: the peer's own default) or 'fusionlab' (fusionlab's common "
                        "pipeline: the network on Y, visible CbCr kept, rounded PNG)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option passed to create_model, repeatable (e.g. variant=tardal for TarDAL's "
                        "tardal.pt, levels=5 for laplacian)")
    p.add_argument("--max-memory", default="2GB", type=_memory_size, metavar="SIZE",
                   help="peak resident memory the run may use, e.g. 2GB, 800MB, or 'none' (default 2GB): "
                        "images that do not fit are fused in automatically sized tiles with smooth blending")
    p.add_argument("--tile", type=int, default=None,
                   help="fuse in NxN sliding windows blended over --overlap pixels instead of planned tiles")
    p.add_argument("--overlap", type=int, default=32, help="overlap of --tile windows in pixels (default 32)")
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch",
                   help="run the model with torch (default) or with onnxruntime from an ONNX file given "
                        "as --checkpoint (see 'fusionlab export'; needs pip install fusionlab[onnx])")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default)")
    p.add_argument("--skip-existing", action="store_true", help="skip pairs whose output file already exists")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights with --model alone (default 0)")


def _memory_size(value: str):
    import argparse

    from ..errors import ConfigError

    if value.strip().lower() in ("none", "0", "unlimited"):
        return None
    from ..models.inference import parse_memory

    try:
        parse_memory(value)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def _resolve_pairs(args):
    from pathlib import Path

    from ..data import find_pairs, resolve_layout
    from ..datasets import resolve_data_arg
    from ..errors import UsageError

    if args.data:
        if args.ir or args.vi:
            raise UsageError("give either --data or --ir/--vi, not both")
        # a name that is not an existing path resolves through the dataset registry
        return find_pairs(*resolve_layout(resolve_data_arg(args.data)))
    if not (args.ir and args.vi):
        raise UsageError("give --ir and --vi (files or folders), or --data ROOT")
    ir, vi = Path(args.ir), Path(args.vi)
    if ir.is_dir() != vi.is_dir():
        raise UsageError(f"--ir {ir} and --vi {vi}: both must be files or both folders")
    if ir.is_dir():
        return find_pairs(ir, vi)
    return [(vi.stem, ir, vi)]


def parse_options(items) -> dict:
    """``["variant=tardal", "levels=5"]`` -> ``{"variant": "tardal", "levels": 5}`` (YAML scalars)."""
    import yaml

    from ..errors import UsageError

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--option {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _load_model(args, device):
    import sys

    import torch

    from .. import models
    from ..api import load_model
    from ..errors import CheckpointError, UsageError

    runtime = getattr(args, "runtime", "torch")
    onnx_file = bool(args.checkpoint) and str(args.checkpoint).lower().endswith(".onnx")
    if runtime == "onnxruntime":
        from ..models.export import OnnxFuser, onnx_for

        if device.type != "cpu":
            raise UsageError("--runtime onnxruntime runs on the CPU: drop --device or use --device cpu")
        if onnx_file:
            return OnnxFuser(args.checkpoint), f"ONNX model {args.checkpoint} (onnxruntime)"
        args.runtime = "torch"
        model, what = _load_model(args, device)
        if not isinstance(model, models.FusionNet):
            raise UsageError(f"--runtime onnxruntime exports FusionNet models; {what} runs with --runtime torch")
        sys.stderr.write("fusionlab fuse: exporting the model to ONNX for onnxruntime\n")
        return OnnxFuser(onnx_for(model)), f"{what} via onnxruntime"
    if onnx_file:
        raise UsageError(f"--checkpoint {args.checkpoint}: an ONNX file runs with --runtime onnxruntime")
    kind = models.model_kind(args.model) if args.model else "fusionnet"
    options = parse_options(args.option)
    if kind != "fusionnet":
        if args.checkpoint:
            raise UsageError(f"--model {args.model} is a {kind} with its own weights: drop --checkpoint")
        if kind == "peer" and args.protocol and args.protocol != "fusionlab":
            options["protocol"] = args.protocol
        model = models.create_model(args.model, **options).to(device).eval()
        if kind == "peer":
            proto = "fusionlab" if args.protocol == "fusionlab" else model.protocol.name
            return model, f"peer {args.model} ({model.weights_path}; protocol {proto})"
        return model, f"baseline {args.model}"
    if args.protocol:
        raise UsageError("--protocol applies to peer methods only (seafusion, ifcnn, tardal, didfuse)")
    if options and args.checkpoint:
        raise UsageError("--option changes an untrained --model; a --checkpoint stores its own architecture")
    if args.checkpoint:
        model = load_model(args.checkpoint, map_location=device, expected=args.model)
        return model, f"checkpoint {args.checkpoint} ({model.name})"
    if args.model:
        torch.manual_seed(args.seed)
        model = models.create_model(args.model, **options).to(device).eval()
        sys.stderr.write(f"fusionlab fuse: warning: --model {args.model} without --checkpoint has random "
                         "(untrained) weights; the outputs only test the pipeline\n")
        return model, f"untrained {args.model}"
    default = models.SHIPPED_STUDENT
    if not default.is_file():
        raise CheckpointError(f"{default}: default checkpoint not found; pass --checkpoint FILE, or "
                              "--model dtpf_student for an untrained model")
    model, info = models.load_checkpoint(default, map_location=device)
    return model, f"default checkpoint {default.name} ({info['model']})"


#: pairs above this many pixels are fused one at a time, without reading ahead or writing
#: behind, so that only one big pair is in memory at once (their I/O time is negligible)
PIPELINE_MAX_PIXELS = 4_000_000


def _read_pair(ir_path, vi_path):
    """One pair as compact tensors: 8-bit files stay uint8 (``fuse_pair`` takes them)."""
    from ..errors import ShapeMismatchError
    from ..io import read_image

    ir, vi = read_image(ir_path, keep_8bit=True), read_image(vi_path, keep_8bit=True)
    if ir.shape[-2:] != vi.shape[-2:]:
        raise ShapeMismatchError(
            f"{vi_path}: size {vi.shape[-1]}x{vi.shape[-2]} differs from infrared {ir_path} "
            f"{ir.shape[-1]}x{ir.shape[-2]} (images must be registered to the same size)")
    return ir, vi


def _pixels(path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size[0] * im.size[1]
    except Exception:  # noqa: BLE001 - unreadable: let the reader raise the proper error
        return 0


def run(args) -> int:
    import sys
    import time
    from pathlib import Path

    from tqdm import tqdm

    from ..device import default_device
    from ..errors import UsageError
    from ..io import write_image
    from ..models import fuse_pair
    from ..models.inference import AUTO_OVERLAP, plan_tiles
    from ._pipeline import Prefetcher, Writer

    if args.tile is not None and (args.tile < 16 or not 0 <= args.overlap < args.tile):
        raise UsageError(f"--tile {args.tile} --overlap {args.overlap}: need tile >= 16 and 0 <= overlap < tile")
    pairs = _resolve_pairs(args)
    out_dir = Path(args.out)
    device = default_device(args.device)
    if device.type == "cpu":
        from ..models.runtime import tune_cpu_allocator

        tune_cpu_allocator()  # reuse freed feature maps instead of page-faulting them again
    model, what = _load_model(args, device)
    # peers write what their authors' script writes, unless --protocol fusionlab
    as_authors = hasattr(model, "fuse_as_authors") and args.protocol != "fusionlab"
    if as_authors and args.tile is not None:
        raise UsageError(f"--tile: the authors' protocol of {args.model} fuses whole images (its output stretch "
                         "is global); use --protocol fusionlab to fuse in tiles")
    todo = [(n, i, v) for n, i, v in pairs if not (args.skip_existing and (out_dir / f"{n}.png").exists())]
    skipped = len(pairs) - len(todo)
    budget = args.max_memory if args.tile is None else None
    sys.stderr.write(f"fusionlab fuse: {len(todo)} pair(s) with {what} on {device}"
                     + (f", {skipped} already done" if skipped else "")
                     + (f", memory budget {budget}" if budget and not as_authors else "") + "\n")
    # read ahead and write behind in threads (decoding/encoding overlap the fusion), except
    # for big pairs, which go one at a time so that a single one is ever held in memory
    small = [max(_pixels(i), _pixels(v)) <= PIPELINE_MAX_PIXELS for _, i, v in todo]
    # the authors' protocol of a peer reads the files itself
    load = (lambda item: (None, None)) if as_authors else (lambda item: _read_pair(item[1], item[2]))
    reader = Prefetcher(todo, load, ahead=small)
    writer = Writer()
    bar = tqdm(total=len(todo), desc="fuse", unit="pair", file=sys.stderr, dynamic_ncols=True)
    t0 = time.perf_counter()
    try:
        for k, ((name, ir_path, vi_path), (ir, vi)) in enumerate(reader):
            if as_authors:  # uint8 exactly as the authors' script saves it (v / 255 is written back to v)
                fused = model.fuse_as_authors(ir_path, vi_path).astype("float32") / 255
                writer.put(write_image, out_dir / f"{name}.png", fused)
                bar.update(1)
                continue
            tile, overlap, progress = args.tile, args.overlap, None
            if budget:
                h, w = ir.shape[-2:]
                # beside the model: the fused luma (float32) and the output image (uint8)
                tile = plan_tiles(model, (h, w), budget, extra_bytes=h * w * (4 + vi.shape[0]))
                overlap = AUTO_OVERLAP
                if tile:
                    sys.stderr.write(f"fusionlab fuse: {name}: {w}x{h} in tiles of {tile[1]}x{tile[0]} "
                                     f"to stay within {budget}\n")
                    progress = lambda done, total: bar.set_postfix_str(f"tile {done}/{total}")  # noqa: E731
            fused = fuse_pair(model, ir[None], vi[None], tile=tile, overlap=overlap, progress=progress)
            del ir, vi
            writer.put(write_image, out_dir / f"{name}.png", fused[0])
            if not small[k]:
                writer.wait()  # one big output at a time
            del fused
            bar.update(1)
        writer.close()
    finally:
        reader.close()
        writer.close(wait=False)
        bar.close()
    seconds = time.perf_counter() - t0
    rate = ""
    if todo and seconds > 0:
        rate = f", {len(todo) / seconds:.2f} pairs/s" if len(todo) >= seconds else f", {seconds / len(todo):.1f} s/pair"
    print(f"fused {len(todo)} pair(s) into {out_dir}" + (f" ({skipped} skipped, already present)" if skipped else "")
          + rate)
    return 0
