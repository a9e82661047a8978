"""Caption-free image prior trained through the frozen text-guided teacher (VLV-style).

VLV (arXiv 2507.07104) learns a vision encoder whose output conditions a FROZEN
text-conditional decoder (a diffusion model) and trains it with that decoder's own
reconstruction loss: the embedding must carry whatever the decoder needs from text, with no
caption involved. Here the frozen conditional decoder is the text-guided teacher of
``text_prior: oracle`` (its FiLM layers and its fusion decoder): an image encoder (the
:class:`~fusionlab.text.projector.Projector` architecture, ``(ir, vi) -> (B, text_dim)``
unit vectors) replaces the caption embedding fed to the teacher's FiLM, and is trained to
minimise the teacher's fusion loss on training crops, plus a regulariser keeping the
embedding near the span of the caption embeddings the teacher was trained with::

    L = FusionLoss_fixed(teacher(ir, vi_y, E(ir, vi)), ir_clean, vi_clean)
        + span_weight * || e - P e ||^2,      P = projection onto span{caption embeddings}

* the teacher is frozen entirely (no parameter gets a gradient or changes; gradients flow
  *through* it to the encoder);
* the fusion loss uses the FIXED (paper's non-text) weights for every sample: the
  per-degradation weights of the teacher's own training are chosen by the label, and
  nothing here may depend on a label or caption;
* the regulariser uses only the vocabulary (the class captions' embeddings, the same for
  every sample), never which caption belongs to which image; since ``e`` is a unit vector,
  ``||e - P e||^2 = 1 - ||P e||^2`` is in [0, 1] (0: inside the span the FiLM layers saw);
* the encoder reads ``ir`` and ``vi`` (the degraded inputs the teacher sees) and nothing else;
  the loss reads the clean sources ``ir_clean``/``vi_clean``. Labels, names and captions in
  a batch are never read (:data:`LABEL_FREE_KEYS`).

What it is not: VLV's decoder is a large diffusion model and its caption head an LLM;
here both the decoder (a tiny fusion teacher) and the encoder (~0.2 M parameters) are small,
and no text is ever generated - the prior is an embedding, not a caption.

Functional API: :func:`train_vlv_encoder`, :func:`caption_span_basis`,
:func:`span_residual`; the encoder is saved/loaded with
:func:`~fusionlab.text.projector.save_projector` / ``load_projector`` and used at test time
as ``build_text_prior("vlv", checkpoint=...)``.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

from ..color import to_luma
from ..errors import ConfigError, RunFailedError
from .projector import Projector, ProjectorConfig

#: the only batch keys the encoder training reads (inputs and the clean sources of the loss)
LABEL_FREE_KEYS: tuple[str, ...] = ("ir", "vi", "ir_clean", "vi_clean")
#: default weight of the span regulariser (see :func:`train_vlv_encoder`)
SPAN_WEIGHT = 10.0


def caption_span_basis(prior=None, text_dim: int = 512, style: str = "descriptive", seed: int = 0) -> torch.Tensor:
    """Orthonormal basis ``(text_dim, K)`` of the span of the K class-caption embeddings.

    The captions are :func:`~fusionlab.text.captions.format_caption` of every
    :data:`~fusionlab.text.captions.EVENT_TYPES` in ``style``, embedded by ``prior`` (default
    the ``oracle`` prior: the embedding space the teacher's FiLM layers were trained on).
    """
    from .captions import EVENT_TYPES, format_caption
    from .prior import build_text_prior

    prior = prior or build_text_prior("oracle", text_dim, seed=seed, style=style)
    protos = prior.embed_texts([format_caption(c, style=style) for c in EVENT_TYPES])  # (K, D)
    q, r = torch.linalg.qr(protos.double().T)  # (D, K): orthonormal columns spanning the captions
    keep = torch.diagonal(r).abs() > 1e-6 * torch.diagonal(r).abs().max()  # drop dependent directions
    return q[:, keep].float().contiguous()


def span_residual(emb: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``||e - B B^T e||^2`` per row: ``emb (N, D)``, ``basis (D, K)`` orthonormal -> ``(N,)``
    (in [0, 1] for unit-norm ``emb``)."""
    return (emb - (emb @ basis) @ basis.T).pow(2).sum(dim=1)


def train_vlv_encoder(teacher: torch.nn.Module, batches: Callable[[int], dict], *, prior=None, steps: int = 100,
                      lr: float = 5e-4, span_weight: float = SPAN_WEIGHT, losses=None, ssim_window: int = 11,
                      width: int = 16, seed: int = 0, device: str = "cpu", log_every: int = 10,
                      progress: bool = False):
    """Train an image encoder through a frozen text-guided teacher (see the module docstring).

    Args:
        teacher: a trained text-guided FusionNet (``config.text_dim`` set); it is frozen
            (``requires_grad`` off during training, restored after) and never modified.
        batches: ``batches(step) -> dict`` with ``ir (B,1,c,c)``, ``vi (B,3,c,c)`` degraded
            inputs and ``ir_clean``, ``vi_clean`` clean sources in [0, 1] (e.g.
            :meth:`fusionlab.train.BatchStream.batch`; ``B >= 2``); other keys are ignored.
        prior: the ``oracle`` prior whose caption embeddings span the regulariser's subspace
            (default: ``build_text_prior("oracle", teacher.config.text_dim, seed=seed)``).
        steps, lr: AdamW (weight decay 1e-4) with cosine decay.
        span_weight: weight of the span regulariser; 10 (default): an embedding fully outside
            the span (residual 1) then costs a sizeable fraction of the fixed-weight fusion
            loss itself (39-72 measured on ci crops through ci and untrained teachers), so
            the encoder leaves the span only for a real gain.
        losses, ssim_window: the teacher's loss components and SSIM window (its TrainConfig).
        width: encoder width (Projector ``width``).

    Returns:
        ``(encoder, info)``: the trained :class:`Projector` (eval mode, CPU) and a dict with
        ``steps``, ``seconds``, ``initial_loss``, ``final_loss`` (total), ``final_fusion``,
        ``final_span_residual`` (means over the last ``log_every`` steps), ``span_weight`` and
        ``history`` (list of ``{step, loss, fusion, span_residual}``).
    """
    from tqdm.auto import tqdm

    from ..losses import FusionLoss
    from .captions import EVENT_TYPES
    from .prior import build_text_prior

    text_dim = getattr(getattr(teacher, "config", None), "text_dim", None)
    if text_dim is None:
        raise ConfigError("train_vlv_encoder needs a text-guided teacher (its config.text_dim is None)")
    if steps < 1 or not span_weight >= 0:
        raise ConfigError(f"train_vlv_encoder needs steps >= 1 and span_weight >= 0, got {steps}, {span_weight}")
    dev = torch.device(device)
    prior = prior or build_text_prior("oracle", text_dim, seed=seed)
    style = getattr(prior.captioner, "style", "descriptive")
    basis = caption_span_basis(prior, text_dim, style).to(dev)
    cfg = ProjectorConfig(text_dim=text_dim, width=width, encoder_id=prior.encoder_id or "", seed=prior.seed,
                          style=style, classes=list(EVENT_TYPES))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        enc = Projector(cfg).to(dev)
    # start at the mean class-caption direction (inside the span, a caption-like input the
    # FiLM layers know) with small output weights: the same constant for every image, so the
    # start uses the caption vocabulary only, no caption of any image
    with torch.no_grad():
        enc.head[-1].bias.copy_(caption_span_mean(prior, style).to(dev))
        enc.head[-1].weight.mul_(0.01)
    criterion = FusionLoss("fixed", losses, ssim_window).to(dev)

    was_training = teacher.training
    grad_flags = [p.requires_grad for p in teacher.parameters()]
    teacher.to(dev)
    for p in teacher.parameters():
        p.requires_grad_(False)
    # train mode only switches the output clamp to straight-through (no dropout or batch norm
    # in FusionNet): the forward values are those of eval mode, the gradient is the one the
    # teacher itself was trained with
    teacher.train()
    opt = torch.optim.AdamW(enc.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history: list[dict] = []
    window = {"loss": 0.0, "fusion": 0.0, "span_residual": 0.0, "n": 0}
    initial = None
    t0 = time.perf_counter()
    enc.train()
    try:
        for step in tqdm(range(steps), desc="vlv encoder", disable=not progress):
            raw = batches(step)
            b = {k: raw[k].to(dev) for k in LABEL_FREE_KEYS}  # nothing else of the batch is read
            if b["ir"].shape[0] < 2:
                raise ConfigError(f"train_vlv_encoder needs batches of >= 2 pairs, got {b['ir'].shape[0]}")
            emb = enc(*enc.prepare(b["ir"], b["vi"]))  # (B, D) unit vectors
            fused = teacher(b["ir"], to_luma(b["vi"]), emb)
            fusion, _ = criterion(fused, b["ir_clean"], b["vi_clean"])  # fixed weights: no labels
            span = span_residual(emb, basis).mean()
            loss = fusion + span_weight * span
            if not torch.isfinite(loss):
                raise RunFailedError(f"VLV encoder: step {step}: loss is {float(loss)} (lower lr)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if initial is None:
                initial = float(loss.detach())
            for k, v in (("loss", loss), ("fusion", fusion), ("span_residual", span)):
                window[k] += float(v.detach())
            window["n"] += 1
            if (step + 1) % log_every == 0 or step + 1 == steps:
                n = window.pop("n")
                history.append({"step": step + 1, **{k: v / n for k, v in window.items()}})
                window = {"loss": 0.0, "fusion": 0.0, "span_residual": 0.0, "n": 0}
    finally:
        teacher.train(was_training)
        for p, flag in zip(teacher.parameters(), grad_flags):
            p.requires_grad_(flag)
    last = history[-1]
    info = {"steps": steps, "seconds": round(time.perf_counter() - t0, 2), "initial_loss": initial,
            "final_loss": last["loss"], "final_fusion": last["fusion"],
            "final_span_residual": last["span_residual"], "span_weight": float(span_weight), "history": history}
    return enc.cpu().eval(), info


def caption_span_mean(prior, style: str = "descriptive") -> torch.Tensor:
    """Unit mean ``(text_dim,)`` of the class-caption embeddings (the encoder's starting output)."""
    from .captions import EVENT_TYPES, format_caption

    protos = prior.embed_texts([format_caption(c, style=style) for c in EVENT_TYPES])
    return torch.nn.functional.normalize(protos.mean(dim=0), dim=0)
