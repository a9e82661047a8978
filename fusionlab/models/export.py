"""Export a fusion network to ONNX or TorchScript, and run exported files.

::

    from fusionlab.models import load_checkpoint
    from fusionlab.models.export import export_model, load_exported
    model, _ = load_checkpoint("student.pt")
    export_model(model, "student.onnx", "onnx")          # or "torchscript" (student.pt2 / .ts)
    fuser = load_exported("student.onnx")                 # fuser(ir, vi_y) -> fused, like the model

The exported graph is ``(ir, vi) -> fused`` with ``ir``, ``vi`` ``(B, 1, H, W)`` float32 in
[0, 1] and any ``H, W >= 8`` (dynamic axes: the padding to a multiple of 8 and the crop back
are part of the graph). It is traced from the *literal* block definitions of
:mod:`fusionlab.models.blocks` (plain tensor ops; the CPU kernels of
:mod:`fusionlab.models.kernels` use Python loops that a graph cannot hold), and checked
against the torch model on a second, differently shaped input before it is written.
Models with a text branch are exported without it (``text=None``, their non-text behaviour).
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import ConfigError, ModelUnavailableError, OutputError

FORMATS = ("onnx", "torchscript")
#: traced example size: not a multiple of 8, so the padding ops are part of the graph
EXAMPLE_SIZE = (61, 83)
#: the exported model must match torch within this (max abs difference, outputs in [0, 1])
TOLERANCE = 1e-4


class _Fuser(nn.Module):
    """``(ir, vi) -> model(ir, vi)``: the two-input signature that is exported."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        return self.model(ir, vi)


def export_model(model: nn.Module, path: str | os.PathLike, format: str = "onnx", opset: int = 17,
                 check: bool = True) -> Path:
    """Write ``model`` (a FusionNet, on any device) as an ONNX or TorchScript file.

    Args:
        model: the network; it is exported in eval mode on the CPU.
        path: output file (written atomically).
        format: ``"onnx"`` or ``"torchscript"``.
        opset: ONNX opset.
        check: run the exported file on a second input size and compare it with torch
            (needs onnxruntime for ONNX; skipped with a warning when it is missing).

    Raises:
        ConfigError: unknown format. OutputError: the file cannot be written or the
        exported model disagrees with torch.
    """
    if format not in FORMATS:
        raise ConfigError(f"export format {format!r}: must be one of {', '.join(FORMATS)}")
    from ..io import atomic_path
    from . import kernels

    fuser = _Fuser(model).cpu().eval()
    g = torch.Generator().manual_seed(0)
    example = tuple(torch.rand(1, 1, *EXAMPLE_SIZE, generator=g) for _ in range(2))
    path = Path(path)
    with warnings.catch_warnings(), torch.no_grad(), kernels.use_fast_kernels(False):
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic (it is traced)
        with atomic_path(path) as tmp:
            try:
                if format == "onnx":
                    torch.onnx.export(fuser, example, str(tmp), dynamo=False, opset_version=opset,
                                      input_names=["ir", "vi"], output_names=["fused"],
                                      dynamic_axes={n: {0: "B", 2: "H", 3: "W"} for n in ("ir", "vi", "fused")})
                else:
                    torch.jit.save(torch.jit.trace(fuser, example, check_trace=False), str(tmp))
            except (RuntimeError, torch.onnx.errors.OnnxExporterError) as e:
                raise OutputError(f"{path}: export to {format} failed ({' '.join(str(e).split())[:300]})") from None
            if check:
                _check_exported(tmp, format, fuser)
    return path


def _check_exported(path: Path, format: str, fuser: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    ir, vi = (torch.rand(1, 1, 48, 72, generator=g) for _ in range(2))  # another size than the trace
    try:
        run = load_exported(path, format)
    except ModelUnavailableError:
        warnings.warn(f"{path}: onnxruntime is not installed, the export was not checked", stacklevel=3)
        return
    with torch.no_grad():
        diff = (run(ir, vi) - fuser(ir, vi)).abs().max().item()
    if not diff <= TOLERANCE:
        raise OutputError(f"exported {format} model differs from torch by {diff:.2e} (> {TOLERANCE:g})")


class OnnxFuser(nn.Module):
    """An ONNX file run by onnxruntime, called like the model: ``fuser(ir, vi, text=None)``.

    Inputs are torch tensors ``(B, 1, H, W)``; the output is a float32 CPU tensor. The
    session uses ``torch.get_num_threads()`` threads (at the time it is made).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelUnavailableError("running ONNX models needs onnxruntime: pip install 'fusionlab[onnx]' "
                                        "(or pip install onnxruntime)") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelUnavailableError(f"{path}: onnxruntime cannot load it ({' '.join(str(e).split())[:200]})") from None
        self.path = Path(path)
        self.name = self.path.stem

    def forward(self, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        feed = {"ir": ir.detach().float().cpu().contiguous().numpy(), "vi": vi.detach().float().cpu().contiguous().numpy()}
        return torch.from_numpy(self.session.run(["fused"], feed)[0])


def load_exported(path: str | os.PathLike, format: str | None = None) -> nn.Module:
    """Load a file written by :func:`export_model`; ``format`` defaults from the suffix
    (``.onnx`` = ONNX, anything else = TorchScript)."""
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(f"{path}: exported model not found")
    format = format or ("onnx" if path.suffix.lower() == ".onnx" else "torchscript")
    if format == "onnx":
        return OnnxFuser(path)
    try:
        with warnings.catch_warnings():
            # torch 2.14 marks torch.jit.load deprecated (in favour of torch.export); TorchScript
            # files still load and run, and the warning is nothing a `fusionlab fuse` user can act on
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning)
            script = torch.jit.load(str(path), map_location="cpu")
        return ScriptFuser(script.eval(), path.stem)
    except RuntimeError as e:
        raise ModelUnavailableError(f"{path}: not a TorchScript file ({' '.join(str(e).split())[:200]})") from None


class ScriptFuser(nn.Module):
    """A TorchScript file from :func:`export_model`, called like the model (``text`` is ignored)."""

    def __init__(self, module, name: str = "torchscript"):
        super().__init__()
        self.module, self.name = module, name

    def forward(self, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        return self.module(ir, vi)


def onnx_for(model: nn.Module, cache_dir: str | os.PathLike | None = None) -> Path:
    """An ONNX file of ``model`` in a temporary (or given) folder, for ``--runtime onnxruntime``
    with a torch checkpoint."""
    folder = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="fusionlab-onnx-"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create ({e})") from None
    return export_model(model, folder / f"{getattr(model, 'name', 'model')}.onnx", "onnx")


__all__ = ["FORMATS", "export_model", "load_exported", "OnnxFuser", "ScriptFuser", "onnx_for"]
