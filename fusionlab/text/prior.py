"""The one object training uses: ``prior = build_text_prior(source, text_dim=512)``.

``prior(batch) -> (B, text_dim) | None`` turns a batch (dict with ``ir`` ``(B,1,H,W)``,
``vi`` ``(B,C,H,W)`` degraded inputs in [0, 1], ``names`` list[str], optionally ``labels``
list[str]) into the text embedding that modulates the teacher (FiLM), or ``None`` for the
non-text baseline. Sources (rows of the text-guidance ablation): ``none``, ``projector`` and
every captioner of :data:`~fusionlab.text.captioners.CAPTIONERS` under its own name (a
caption-based prior is its captioner followed by the text encoder, so a newly registered
captioner is a text prior too; :func:`text_prior_sources`):

==============  ===========================================================================
``none``        no text (returns None)
``projector``   caption-free: image -> embedding projector (``checkpoint=`` or ``projector=``)
``rules``       captions from image statistics (``style=``, ``thresholds=``)
``oracle``      captions of the known degradation labels (synthetic/augmented data)
``file``        captions from a JSON/CSV file (``caption_file=``; e.g. an MLLM run)
``constant``    Text-IF's general task prompt for every pair
``shuffled``    real captions (of ``base``, default oracle/rules) given to the wrong images
``mllm``        a vision-language model captions on the fly (``model=``; slow, prefer ``file``)
==============  ===========================================================================

Embedding = frozen text encoder (default ``minilm``, 384-d) followed by a FIXED, seeded,
semi-orthogonal matrix to ``text_dim`` (512 = CLIP ViT-B/32, what the teacher's FiLM MLPs
expect). Why fixed and semi-orthogonal: for ``text_dim >= encoder dim`` it is an isometry,
so cosine similarities between captions are exactly those of the encoder (no semantics
lost, none invented) and vectors stay unit-norm like CLIP's; being fixed by a seed, the same
caption maps to the same vector in every process, so a checkpoint trained with this prior
stays valid; and it adds no trainable parameters - the teacher's FiLM MLP (512 -> C) is the
learned part, exactly as with a frozen CLIP.
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .captioners import CAPTIONERS, Captioner, build_captioner
from .encoders import TextEncoder, build_text_encoder


def text_prior_sources() -> tuple[str, ...]:
    """Every text prior source: ``none``, ``projector`` and the registered captioners."""
    return ("none", "projector", *CAPTIONERS.names())


#: the sources at import time (see :func:`text_prior_sources` for later registrations)
SOURCES: tuple[str, ...] = text_prior_sources()


def fixed_projection(in_dim: int, out_dim: int, seed: int = 0) -> torch.Tensor:
    """Seeded semi-orthogonal matrix ``(in_dim, out_dim)``; identity when the dims agree.

    ``x @ W`` preserves norms and inner products when ``out_dim >= in_dim`` (orthonormal
    rows); when ``out_dim < in_dim`` it is a random orthogonal projection (JL-style, inner
    products approximately preserved) and outputs should be re-normalised.
    """
    if in_dim == out_dim:
        return torch.eye(in_dim)
    g = torch.Generator().manual_seed(int(seed) + 1_234_567)
    a = torch.randn(max(in_dim, out_dim), min(in_dim, out_dim), generator=g, dtype=torch.float64)
    q, r = torch.linalg.qr(a)  # q: orthonormal columns
    q = q * torch.sign(torch.diagonal(r)).view(1, -1)  # make the factorisation unique
    w = q.T if in_dim < out_dim else q
    return w.float().contiguous()


class TextPrior:
    """Callable text prior (see the module docstring). Build it with :func:`build_text_prior`.

    Attributes:
        source: the source name. text_dim: output size. captioner, encoder: the parts used
        (None for ``none``/``projector``).
    """

    def __init__(self, source: str, text_dim: int | None = 512, captioner: Captioner | None = None,
                 encoder: TextEncoder | None = None, projector: Any = None, seed: int = 0):
        self.source, self.captioner, self.encoder, self.projector = source, captioner, encoder, projector
        self.seed = int(seed)
        if encoder is not None:
            self.text_dim = int(text_dim or encoder.dim)
            self._w = fixed_projection(encoder.dim, self.text_dim, seed)
        else:
            self.text_dim = None if source == "none" else int(text_dim or projector.text_dim)
            self._w = None
        if projector is not None and self.text_dim != projector.text_dim:
            raise ConfigError(f"projector outputs {projector.text_dim}-d embeddings but text_dim={self.text_dim}")
        self._mem: dict[str, torch.Tensor] = {}

    @property
    def encoder_id(self) -> str | None:
        return self.encoder.id if self.encoder is not None else None

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        """Captions -> ``(N, text_dim)`` float32 unit vectors (encoder + fixed projection)."""
        if self.encoder is None:
            raise ConfigError(f"text prior {self.source!r} has no text encoder")
        todo = [t for t in dict.fromkeys(texts) if t not in self._mem]
        if todo:
            e = self.encoder.encode(todo) @ self._w
            for t, v in zip(todo, F.normalize(e, dim=-1)):
                self._mem[t] = v
        if not texts:
            return torch.zeros(0, self.text_dim)
        return torch.stack([self._mem[t] for t in texts])

    def captions(self, batch: dict) -> list[str] | None:
        """The captions the prior would embed for ``batch`` (None for ``none``/``projector``)."""
        if self.captioner is None:
            return None
        ir, vi = batch.get("ir"), batch.get("vi")
        names, labels = batch.get("names"), batch.get("labels")
        if isinstance(names, str):
            names = [names]
        if isinstance(labels, str):
            labels = [labels]
        if self.captioner.needs_images and (ir is None or vi is None):
            raise ConfigError(f"text prior {self.source!r} needs batch['ir'] and batch['vi']")
        return self.captioner.caption(ir, vi, names=names, labels=labels)

    def __call__(self, batch: dict) -> torch.Tensor | None:
        """``batch`` -> ``(B, text_dim)`` float32 on the device of ``batch['ir']``, or None (source ``none``)."""
        if self.source == "none":
            return None
        dev = batch["ir"].device if isinstance(batch.get("ir"), torch.Tensor) else torch.device("cpu")
        if self.projector is not None:
            return self.projector.embed(batch["ir"], batch["vi"]).to(dev)
        return self.embed_texts(self.captions(batch)).to(dev)

    def __repr__(self) -> str:
        return (f"TextPrior(source={self.source!r}, text_dim={self.text_dim}, captioner={self.captioner!r}, "
                f"encoder={self.encoder_id!r}, projector={'yes' if self.projector is not None else None})")


def build_text_prior(source: str | None = "none", text_dim: int | None = 512, *,
                     encoder: str | dict | TextEncoder | None = "minilm", caption_file: str | os.PathLike | None = None,
                     checkpoint: str | os.PathLike | None = None, projector: Any = None, seed: int = 0,
                     style: str = "descriptive", base: str | dict | None = None, captioner: Any = None,
                     missing: str = "error", thresholds: dict | None = None, model: str | None = None,
                     cache_dir: str | os.PathLike | None = None) -> TextPrior:
    """Build the text prior of one ablation row.

    Args:
        source: one of :func:`text_prior_sources` (None = ``none``).
        text_dim: output size (512 = the teacher's CLIP size); None = the encoder's own size.
        encoder: text encoder name/config/object (default ``minilm``).
        caption_file: captions for ``file`` (and optionally ``shuffled``).

        Each captioner gets the options its constructor names (``style``, ``thresholds``,
        ``caption_file``, ``missing``, ``seed``, ``base``, ``model``); the others are unused.
        checkpoint / projector: the trained projector for ``projector`` (path or object).
        seed: seed of the fixed projection and of the ``shuffled`` permutation.
        style: caption wording for ``rules``/``oracle`` (``descriptive`` | ``reference``).
        base: captioner whose captions ``shuffled`` permutes (default oracle if labels, else rules).
        captioner: override the captioner (config or object) for any caption-based source.
        missing: ``file``: ``"error"`` or a fallback captioner name for names not in the file.
        thresholds: ``rules``: RuleThresholds fields to override.
        model: ``mllm``: local path or hub name of the vision-language model.
        cache_dir: text-embedding cache folder (default ``$FUSIONLAB_CACHE/text``).

    Returns:
        :class:`TextPrior`, callable as ``prior(batch) -> (B, text_dim) tensor | None``.
    """
    source = "none" if source in (None, "", "none", "None") else str(source)
    if source not in text_prior_sources():
        raise ConfigError(f"unknown text prior source {source!r} (known: {', '.join(text_prior_sources())})")
    if source == "none":
        return TextPrior("none", text_dim)
    if source == "projector":
        from .projector import load_projector

        if projector is None and checkpoint is None:
            raise ConfigError("text prior 'projector' needs checkpoint=PATH or projector=<trained Projector>")
        proj = projector if projector is not None else load_projector(checkpoint)
        return TextPrior("projector", text_dim or proj.text_dim, projector=proj, seed=seed)
    if captioner is None:  # the captioner of the same name, with the options it takes
        options = dict(style=style, thresholds=thresholds, caption_file=caption_file, missing=missing, seed=seed,
                       base=base, model=model)
        captioner = {"type": source, **CAPTIONERS.accepted(source, {k: v for k, v in options.items() if v is not None})}
    cap = build_captioner(captioner)
    enc = build_text_encoder(encoder, **({"cache_dir": cache_dir} if cache_dir is not None
                                         and not isinstance(encoder, TextEncoder) else {}))
    return TextPrior(source, text_dim, captioner=cap, encoder=enc, seed=seed)
