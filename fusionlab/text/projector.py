"""Caption-free text prior: a small CNN maps an image pair straight into the caption-embedding space.

Idea (VLV, arXiv 2507.07104): instead of generating text and encoding it, train a vision
encoder to emit the continuous embedding the text encoder would have produced. Here the
targets are the (frozen encoder + fixed projection) embeddings of the ``oracle`` captions of
synthetic degraded pairs, the loss is ``1 - cosine``, and at inference the teacher needs
no captioner and no text encoder at all - one more row of the text-guidance ablation.

Functional API: :func:`train_projector`, :func:`evaluate_projector`, :func:`save_projector`,
:func:`load_projector`; module: :class:`Projector` (``embed(ir, vi) -> (B, text_dim)``).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..color import to_luma
from ..errors import CheckpointError, ConfigError, InvalidTensorError

FORMAT = "fusionlab.text_projector"


@dataclass
class ProjectorConfig:
    """Architecture and provenance of a projector.

    ``encoder_id``/``seed``/``style`` record which embedding space it regresses (the prior it
    was trained against); ``max_side`` caps the input size (larger pairs are area-downscaled).
    """

    text_dim: int = 512
    width: int = 16
    max_side: int = 256
    encoder_id: str = ""
    seed: int = 0
    style: str = "descriptive"
    classes: list[str] = field(default_factory=list)


class Projector(nn.Module):
    """(IR, VI luma) -> unit vector ``(B, text_dim)`` in the caption-embedding space.

    Two streams (IR and VI, as degradations hit one modality each and VI texture would
    drown IR noise in a shared first layer) of four 3x3 conv stages (stride 1, 2, 2, 2;
    GELU). The mean and log standard deviation of every channel of EVERY stage are pooled
    over the image - degradations are global statistics (brightness, contrast, noise
    level), pixel noise is visible only at full resolution, and on a log scale the x2-x10
    changes of spread that noise and low contrast cause become large, equal steps - then a
    2-layer MLP. Any input size; ~0.2 M parameters at width 16.
    """

    def __init__(self, cfg: ProjectorConfig | None = None, **kw):
        super().__init__()
        self.config = cfg or ProjectorConfig(**kw)
        w = self.config.width
        chans = [1, w, 2 * w, 4 * w, 4 * w]

        def stream() -> nn.ModuleList:
            return nn.ModuleList(
                nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 3, stride=1 if i == 0 else 2, padding=1), nn.GELU())
                for i in range(4))

        self.ir_stages, self.vi_stages = stream(), stream()
        n_pooled = 2 * 2 * sum(chans[1:])  # 2 streams x (mean, log-std) x channels
        # BatchNorm standardises the pooled statistics (log-stds around -4, means around 0.1):
        # without it the MLP learned the IR classes 5-10x slower (measured).
        self.head = nn.Sequential(nn.BatchNorm1d(n_pooled), nn.Linear(n_pooled, 8 * w), nn.GELU(),
                                  nn.Linear(8 * w, self.config.text_dim))

    @staticmethod
    def _pool(x: torch.Tensor, stages: nn.ModuleList) -> list[torch.Tensor]:
        out = []
        for stage in stages:
            x = stage(x)
            out += [x.mean(dim=(2, 3)), torch.log(x.std(dim=(2, 3), unbiased=False) + 1e-3)]
        return out

    def forward_raw(self, ir: torch.Tensor, vi_y: torch.Tensor) -> torch.Tensor:
        """Un-normalised head output ``(B, text_dim)`` (training uses its norm, see train_projector)."""
        pooled = self._pool(ir * 2.0 - 1.0, self.ir_stages) + self._pool(vi_y * 2.0 - 1.0, self.vi_stages)
        return self.head(torch.cat(pooled, dim=1))

    def forward(self, ir: torch.Tensor, vi_y: torch.Tensor) -> torch.Tensor:
        """``ir``, ``vi_y``: ``(B, 1, H, W)`` in [0, 1] -> ``(B, text_dim)`` L2-normalised."""
        return F.normalize(self.forward_raw(ir, vi_y), dim=-1)

    @property
    def text_dim(self) -> int:
        return self.config.text_dim

    def prepare(self, ir: torch.Tensor, vi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate, take VI luma, downscale so the longest side is <= ``max_side``."""
        if ir.ndim != 4 or vi.ndim != 4 or ir.shape[0] != vi.shape[0] or ir.shape[-2:] != vi.shape[-2:]:
            raise InvalidTensorError(f"projector expects ir (B,1,H,W) and vi (B,C,H,W) of one size, got "
                                     f"{tuple(ir.shape)} and {tuple(vi.shape)}")
        p = next(self.parameters())
        ir, vy = to_luma(ir.to(p)), to_luma(vi.to(p))
        h, w = ir.shape[-2:]
        s = self.config.max_side / max(h, w)
        if s < 1:
            size = (max(8, round(h * s)), max(8, round(w * s)))
            ir, vy = F.interpolate(ir, size=size, mode="area"), F.interpolate(vy, size=size, mode="area")
        return ir, vy

    @torch.no_grad()
    def embed(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        """Inference: ``ir`` ``(B,1,H,W)``, ``vi`` ``(B,1|3,H,W)`` in [0, 1] -> ``(B, text_dim)`` float32."""
        was = self.training
        self.eval()
        out = self(*self.prepare(ir, vi)).float()
        self.train(was)
        return out


# ----------------------------------------------------------------------------- data
class _DegradedStream:
    """Endless random batches: random crops/flips of a pool of synthetic pairs + random degradations.

    Fresh degradation parameters and noise every batch, so even a small pool gives varied
    samples. Labels are uniform over the degradation classes. ``jitter`` varies the clean
    pair first (visible gain 0.55-1.1, infrared contrast 0.85-1.2 around its mean): real
    "normal" pairs are darker and flatter than the synthetic ones (MSRS day scenes: visible
    mean 0.26-0.46 vs 0.45-0.54), and without it every MSRS pair was called low_light.
    """

    def __init__(self, n_pairs: int, size: int, crop: int, seed: int, jitter: bool = True):
        self.jitter = jitter
        from ..data import make_pair

        pairs = [make_pair(seed + i, size, with_reference=False) for i in range(n_pairs)]
        self.ir = torch.stack([p["ir"] for p in pairs])
        self.vi = torch.stack([p["vi"] for p in pairs])
        self.crop = min(crop, size)
        self.g = torch.Generator().manual_seed(seed)

    def batch(self, b: int) -> dict:
        from ..data import degrade_batch

        g, c = self.g, self.crop
        idx = torch.randint(0, self.ir.shape[0], (b,), generator=g)
        h, w = self.ir.shape[-2:]
        irs, vis = [], []
        for i in idx.tolist():
            y = int(torch.randint(0, h - c + 1, (1,), generator=g))
            x = int(torch.randint(0, w - c + 1, (1,), generator=g))
            ir, vi = self.ir[i, :, y:y + c, x:x + c], self.vi[i, :, y:y + c, x:x + c]
            if bool(torch.rand((), generator=g) < 0.5):
                ir, vi = ir.flip(-1), vi.flip(-1)
            if self.jitter:
                vi = (vi * (0.55 + 0.55 * torch.rand((), generator=g))).clamp(0, 1)
                m = ir.mean()
                ir = ((ir - m) * (0.85 + 0.35 * torch.rand((), generator=g)) + m).clamp(0, 1)
            irs.append(ir)
            vis.append(vi)
        return degrade_batch(torch.stack(irs), torch.stack(vis), g=g)


class _FolderStream:
    """Endless random batches from a real dataset: whole pairs downscaled like inference
    (longest side <= ``max_side``), then random aligned ``crop`` crops and flips. No
    degradation: the captions (targets) describe the images as they are."""

    def __init__(self, data, crop: int, max_side: int, seed: int):
        from ..errors import EmptyInputError

        if len(data) < 2:
            raise EmptyInputError(f"train_projector needs at least 2 real pairs, got {len(data)}")
        self.items = []
        for i in range(len(data)):
            it = data[i]
            ir, vi = it["ir"][None].float(), it["vi"][None].float()
            s = max_side / max(ir.shape[-2:])
            if s < 1:
                size = (max(8, round(ir.shape[-2] * s)), max(8, round(ir.shape[-1] * s)))
                ir, vi = F.interpolate(ir, size=size, mode="area"), F.interpolate(vi, size=size, mode="area")
            self.items.append((ir[0], vi[0], it.get("name", f"item{i}"), it.get("label")))
        self.crop, self.g = crop, torch.Generator().manual_seed(seed)

    def batch(self, b: int) -> dict:
        from ..data.paired import random_aligned_crop

        idx = torch.randint(0, len(self.items), (b,), generator=self.g).tolist()
        irs, vis, names, labels = [], [], [], []
        for i in idx:
            ir, vi, name, label = self.items[i]
            ir, vi = random_aligned_crop(ir, vi, self.crop, self.g, flip=True)
            irs.append(ir)
            vis.append(vi if vi.shape[0] == 3 else vi.expand(3, -1, -1))
            names.append(name)
            labels.append(label)
        return {"ir": torch.stack(irs), "vi": torch.stack(vis), "names": names,
                "labels": labels if all(x is not None for x in labels) else None}


# ----------------------------------------------------------------------------- train / eval
def train_projector(prior=None, *, text_dim: int = 512, encoder="minilm", steps: int = 200, batch_size: int = 24,
                    lr: float = 2e-3, n_pairs: int = 32, size: int = 96, crop: int = 32, width: int = 16,
                    jitter: bool = True, data=None, seed: int = 0, device: str = "cpu", progress: bool = False,
                    log_every: int = 25):
    """Train a projector to regress caption embeddings: by default of the oracle captions of
    synthetic degraded pairs; with ``data`` of a real dataset's captions.

    Args:
        prior: the ``oracle`` :class:`~fusionlab.text.prior.TextPrior` whose embedding space
            to regress; default ``build_text_prior("oracle", text_dim, encoder=encoder, seed=seed)``.
        steps, batch_size, lr: AdamW with cosine decay; loss ``1 - cos(pred, target)``.
        n_pairs, size, crop: pool of ``n_pairs`` synthetic ``size`` x ``size`` pairs
            (seeds ``seed ..``), random ``crop`` crops.
        width: projector width (channels of the first stage).
        jitter: vary brightness/contrast of the clean pairs before degrading (closer to real data).
        data: a dataset of real pairs (items ``ir``, ``vi``, ``name``; e.g.
            ``PairedFolder(root)``) used INSTEAD of synthetic pairs; the targets then come
            from ``prior`` (e.g. ``build_text_prior("file", caption_file=...)`` with MLLM
            captions, or ``"rules"``) - the VLV recipe on your own domain.

    Returns:
        ``(projector, history)``: the trained :class:`Projector` (eval mode, CPU) and a list
        of ``{"step", "loss"}`` dicts.
    """
    from tqdm.auto import tqdm

    from .captions import EVENT_TYPES
    from .prior import build_text_prior

    if steps < 1 or batch_size < 2:
        raise ConfigError(f"train_projector needs steps >= 1 and batch_size >= 2, got {steps}, {batch_size}")
    prior = prior or build_text_prior("oracle", text_dim, encoder=encoder, seed=seed)
    if prior.encoder is None:
        raise ConfigError(f"train_projector needs a caption-based prior, got source {prior.source!r}")
    dev = torch.device(device)
    style = getattr(prior.captioner, "style", "descriptive")
    cfg = ProjectorConfig(text_dim=prior.text_dim, width=width, encoder_id=prior.encoder_id or "",
                          seed=prior.seed, style=style, classes=list(EVENT_TYPES))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        proj = Projector(cfg).to(dev)
    stream = (_FolderStream(data, crop, cfg.max_side, seed) if data is not None
              else _DegradedStream(n_pairs, size, crop, seed, jitter=jitter))
    # Start at the direction all captions share (the five class captions are 0.58-0.74
    # cosine-similar): output bias = mean target embedding, small output weights, so the
    # steps go into the differences between captions rather than into their common part.
    with torch.no_grad():
        proj.head[-1].bias.copy_(prior(stream.batch(max(batch_size, 32))).to(dev).mean(dim=0))
        proj.head[-1].weight.mul_(0.1)
    opt = torch.optim.AdamW(proj.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history, running = [], 0.0
    proj.train()
    for step in tqdm(range(1, steps + 1), desc="projector", disable=not progress):
        b = stream.batch(batch_size)
        target = prior(b).to(dev)
        pred = proj(*proj.prepare(b["ir"], b["vi"]))
        loss = (1.0 - (pred * target).sum(dim=1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running += float(loss.detach())
        if step % log_every == 0 or step == steps:
            history.append({"step": step, "loss": running / (log_every if step % log_every == 0 else step % log_every)})
            running = 0.0
    return proj.cpu().eval(), history


@torch.no_grad()
def evaluate_projector(projector: Projector, prior=None, n_per_class: int = 20, size: int = 96, seed: int = 50_000):
    """Nearest-class accuracy of a projector on held-out synthetic degraded pairs.

    Each embedding is compared (cosine) with the embeddings of the five class captions;
    the prediction is the closest class.

    Returns:
        dict ``accuracy``, ``cos_true`` (mean cosine to the true caption embedding),
        ``cos_other`` (mean cosine to the best wrong class), ``confusion`` (pandas DataFrame).
    """
    from .captions import EVENT_TYPES, format_caption
    from .prior import build_text_prior
    from .rules import confusion_matrix, synthetic_degraded_pairs

    cfg = projector.config
    prior = prior or build_text_prior("oracle", cfg.text_dim, seed=cfg.seed, style=cfg.style)
    classes = list(EVENT_TYPES)
    protos = prior.embed_texts([format_caption(c, style=cfg.style) for c in classes])  # (K, D)
    true, pred, cos_t, cos_o = [], [], [], []
    for ir, vi, labels, _ in synthetic_degraded_pairs(n_per_class, size, seed):
        sim = projector.embed(ir, vi) @ protos.T  # (B, K)
        ti = torch.tensor([classes.index(lab) for lab in labels])
        cos_t += sim[torch.arange(len(ti)), ti].tolist()
        other = sim.clone()
        other[torch.arange(len(ti)), ti] = -2.0
        cos_o += other.max(dim=1).values.tolist()
        pred += [classes[int(i)] for i in sim.argmax(dim=1)]
        true += labels
    acc = sum(t == p for t, p in zip(true, pred)) / len(true)
    return {"accuracy": acc, "cos_true": sum(cos_t) / len(cos_t), "cos_other": sum(cos_o) / len(cos_o),
            "confusion": confusion_matrix(true, pred, classes)}


# ----------------------------------------------------------------------------- save / load
def save_projector(path: str | os.PathLike, projector: Projector, metadata: dict | None = None) -> Path:
    """Save config + weights atomically (loadable with ``torch.load(weights_only=True)``)."""
    from ..io import atomic_path

    obj = {"format": FORMAT, "version": 1, "config": asdict(projector.config),
           "state_dict": {k: v.detach().cpu() for k, v in projector.state_dict().items()},
           "metadata": dict(metadata or {})}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_projector(path: str | os.PathLike, map_location: str = "cpu") -> Projector:
    """Load a projector saved by :func:`save_projector` (eval mode)."""
    from ..models.checkpoint import safe_torch_load

    p = Path(path)
    obj = safe_torch_load(p, map_location, missing="projector checkpoint not found (train one with train_projector)")
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a fusionlab text projector checkpoint")
    try:
        proj = Projector(ProjectorConfig(**obj["config"]))
        proj.load_state_dict(obj["state_dict"])
    except (TypeError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"{p}: projector checkpoint does not match the architecture ({str(e)[:160]})") from None
    return proj.eval()
