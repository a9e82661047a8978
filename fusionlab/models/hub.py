"""Models that travel: Hugging Face Hub-style folders with safetensors weights.

``model.save_pretrained(folder)`` writes::

    folder/config.json         {"format": "fusionlab.model", "version": 1, "model": name,
                                "config": {FusionNetConfig fields}, "fusionlab": version,
                                "metadata": {...}}          (JSON: readable, no code)
    folder/model.safetensors   the weights (safetensors: tensors only, no pickle)
    folder/README.md           a generated model card (Hub front matter, usage, architecture,
                               training metadata)

``FusionNet.from_pretrained(source)`` rebuilds the model from such a folder, or from a Hub
repository id (``"user/dtpf-student"``; downloads through ``huggingface_hub``'s cache, so it
also works offline once cached; ``HF_HUB_OFFLINE=1`` never touches the network). It is the
same contract as huggingface_hub's ``PyTorchModelHubMixin`` (save_pretrained /
from_pretrained / push_to_hub), written out so that errors are fusionlab's one-line
:class:`~fusionlab.errors.CheckpointError` / :class:`~fusionlab.errors.ModelUnavailableError`
and the config round-trips exactly through :class:`~fusionlab.models.net.FusionNetConfig`.

The ``.pt`` checkpoints of :mod:`fusionlab.models.checkpoint` keep working;
:func:`fusionlab.load_model` reads either.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError, ModelUnavailableError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
#: ``owner/name`` of a Hub model repository
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_pretrained_dir(path: str | os.PathLike) -> bool:
    """True for a folder holding fusionlab's ``config.json`` + ``model.safetensors``."""
    p = Path(path)
    return p.is_dir() and (p / CONFIG_FILE).is_file() and (p / WEIGHTS_FILE).is_file()


def _jsonable(x: Any) -> Any:
    """Metadata -> JSON builtins (tuples to lists, tensors/numbers to Python scalars, rest to str)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.item() if x.numel() == 1 else x.tolist()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if hasattr(x, "item"):  # numpy scalars
        return x.item()
    return str(x)


class HubMixin:
    """``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` for :class:`FusionNet`."""

    def save_pretrained(self, save_directory: str | os.PathLike, metadata: dict | None = None,
                        model_card: bool = True) -> Path:
        """Write ``config.json``, ``model.safetensors`` and (``model_card``) ``README.md``.

        Args:
            save_directory: folder (created; files already there are replaced atomically).
            metadata: small JSON-able facts kept in ``config.json`` and shown in the card
                (default: ``model.train_metadata``, set when the model came from a training
                checkpoint).

        Returns:
            the folder.
        """
        from safetensors.torch import save_file

        from .. import __version__
        from ..io import atomic_path, atomic_write_text

        out = Path(save_directory)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CheckpointError(f"{out}: cannot create the model folder ({e.strerror or e})") from None
        meta = _jsonable(dict(metadata if metadata is not None else getattr(self, "train_metadata", None) or {}))
        config = {"format": "fusionlab.model", "version": 1, "model": self.name, "config": self.config.to_dict(),
                  "fusionlab": __version__, "metadata": meta}
        # contiguous CPU copies: safetensors refuses views that share storage
        state = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        with atomic_path(out / WEIGHTS_FILE) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt", "fusionlab_model": self.name})
        atomic_write_text(out / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
        if model_card:
            atomic_write_text(out / CARD_FILE, model_card_text(self, meta))
        return out

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        token: str | bool | None = None, map_location: Any = "cpu",
                        expected: str | None = None):
        """Load a model saved with :meth:`save_pretrained`.

        Args:
            source: a local folder, or a Hub repository id ``owner/name`` (downloaded into
                huggingface_hub's cache; offline, a cached copy is used).
            revision, cache_dir, local_files_only, token: passed to ``hf_hub_download``.
            map_location: device of the returned model.
            expected: optional variant name the folder must hold (e.g. ``"dtpf_student"``).

        Returns:
            the model in eval mode; ``model.train_metadata`` holds the saved metadata and
            ``model.pretrained_source`` the folder or repository it came from.

        Raises:
            CheckpointError: a folder that is not a fusionlab model, corrupt weights,
                weights that do not fit the config, another variant than ``expected``.
            ModelUnavailableError: a Hub id that cannot be fetched (offline and not cached,
                unknown repository, no network).
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from .checkpoint import FORMAT, VERSION, _load_weights
        from .net import FusionNet, FusionNetConfig

        folder = _resolve_source(source, revision=revision, cache_dir=cache_dir,
                                 local_files_only=local_files_only, token=token)
        cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        try:
            raw = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{cfg_path}: unreadable model config ({' '.join(str(e).split())[:120]})") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise CheckpointError(f"{cfg_path}: not a fusionlab model config (no 'format': '{FORMAT}'; "
                                  "save one with model.save_pretrained(folder))")
        if int(raw.get("version", 0)) > VERSION:
            raise CheckpointError(f"{cfg_path}: format version {raw['version']} is newer than this fusionlab "
                                  f"understands ({VERSION}); upgrade fusionlab")
        name = str(raw.get("model", "custom"))
        if expected is not None and name != expected:
            raise CheckpointError(f"{folder}: holds a '{name}' model, expected '{expected}'")
        try:
            cfg = FusionNetConfig.from_dict(dict(raw.get("config") or {}))
        except (ConfigError, TypeError) as e:
            raise CheckpointError(f"{cfg_path}: stored model config is invalid ({e})") from None
        try:
            state = load_file(str(w_path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{w_path}: not readable safetensors weights (truncated or corrupt? "
                                  f"{' '.join(str(e).split())[:120]})") from None
        model = FusionNet(cfg, name=name)
        _load_weights(model, state, w_path)
        model.to(map_location if map_location is not None else "cpu").eval()
        model.train_metadata = dict(raw.get("metadata") or {})
        model.pretrained_source = str(source)
        return model

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | bool | None = None,
                    commit_message: str = "Upload fusionlab model", metadata: dict | None = None) -> str:
        """Create (if needed) the Hub repository ``repo_id`` and upload the
        :meth:`save_pretrained` folder to it; returns the commit URL. Needs a token
        (``hf auth login``) and the network."""
        import tempfile

        from huggingface_hub import HfApi

        api = HfApi(token=token)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp, metadata=metadata)
            api.create_repo(repo_id, private=private, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
        return str(getattr(info, "commit_url", info))


def _resolve_source(source, revision=None, cache_dir=None, local_files_only=False, token=None) -> Path:
    """Local folder, or the snapshot folder of a Hub repository (config + weights downloaded)."""
    p = Path(os.path.expanduser(str(source)))
    if p.is_dir():
        missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if not (p / f).is_file()]
        if missing:
            raise CheckpointError(f"{p}: not a save_pretrained folder (no {' or '.join(missing)})")
        return p
    if p.exists():
        raise CheckpointError(f"{p}: a file, not a save_pretrained folder (a .pt checkpoint loads with "
                              "fusionlab.load_model or fusionlab.models.load_checkpoint)")
    if not HUB_ID.match(str(source)):
        raise CheckpointError(f"{source}: no such model folder (and not a Hub repository id owner/name)")
    from huggingface_hub import hf_hub_download

    try:
        paths = [hf_hub_download(str(source), f, revision=revision, cache_dir=cache_dir,
                                 local_files_only=local_files_only, token=token, library_name="fusionlab")
                 for f in (CONFIG_FILE, WEIGHTS_FILE)]
    except Exception as e:  # offline and not cached, unknown repo, HTTP errors: all one line
        msg = " ".join(str(e).split()).split(". ")[0][:160] or type(e).__name__  # first sentence
        raise ModelUnavailableError(f"{source}: cannot fetch the model from the Hub ({type(e).__name__}: {msg}); "
                                    "offline, pass a local save_pretrained folder instead") from None
    return Path(paths[0]).parent


def model_card_text(model, metadata: dict | None = None, repo: str | None = None) -> str:
    """The README.md written beside the weights: Hub front matter, what the model is, how to
    use it, its architecture and (if known) how it was trained."""
    from .. import __version__
    from .net import count_parameters

    cfg = model.config
    meta = metadata or {}
    params = count_parameters(model) / 1e6
    text = "text-guided (FiLM on a {}-d caption embedding)".format(cfg.text_dim) if cfg.text_dim else "no text input"
    where = repo or "path/to/this/folder"
    lines = [
        "---",
        "library_name: fusionlab",
        "license: mit",
        "pipeline_tag: image-to-image",
        "tags: [image-fusion, infrared-visible-fusion, knowledge-distillation, dtpf, fusionlab]",
        "---",
        "",
        f"# {model.name}",
        "",
        f"A FusionNet from [fusionlab](https://pypi.org/project/fusionlab/) ({params:.2f} M parameters, {text}):",
        "the dual-stream U-shaped infrared/visible fusion network of DTPF (\"Distilling Textual",
        "Priors from LLM to Efficient Image Fusion\"). It fuses the infrared image with the visible",
        "luma; a colour visible image keeps its chroma.",
        "",
        "## Use",
        "",
        "```python",
        "import fusionlab",
        f'model = fusionlab.load_model("{where}")          # or FusionNet.from_pretrained(...)',
        'fused = fusionlab.fuse("ir.png", "vi.png", model=model)   # (C, H, W) in [0, 1]',
        "```",
        "",
        "```bash",
        f"fusionlab fuse --checkpoint {where} --ir ir/ --vi vi/ --out fused/",
        "```",
        "",
        "## Architecture",
        "",
        "| field | value |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in cfg.to_dict().items()],
        "",
    ]
    train = meta.get("train_config") if isinstance(meta.get("train_config"), dict) else None
    if meta:
        lines += ["## Training", ""]
        if meta.get("stage"):
            lines.append(f"- stage: {meta['stage']}, steps: {meta.get('step', '?')}")
        if train:
            data = train.get("data") or {}
            lines.append(f"- data: {data.get('train', '?')} (crop {data.get('crop', '?')}, batch {data.get('batch', '?')}), "
                         f"lr {train.get('lr', '?')}, seed {train.get('seed', '?')}")
            if meta.get("stage") == "distill":
                lines.append(f"- distilled from: {meta.get('teacher') or train.get('teacher')}")
            else:
                lines.append(f"- text prior: {train.get('text_prior', '?')}")
        val = meta.get("val")
        if isinstance(val, dict) and val:
            lines.append("- validation (fusionlab's metrics, papers' scale): "
                         + ", ".join(f"{k} {v:.4g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in val.items()))
        lines.append("")
    lines += ["## Files", "",
              "- `config.json`: variant name and architecture (rebuilt on load), metadata",
              "- `model.safetensors`: the weights (no pickle, no code)",
              "", f"Generated by fusionlab {__version__}.", ""]
    return "\n".join(lines)
