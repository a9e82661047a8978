"""FusionNet: the dual-stream U-shaped fusion network of DTPF (teacher and student alike).

::

    ir (B,1,H,W) --patch embed--> encoder_ir --+ 4 levels: f_ir[l]
    vi (B,1,H,W) --patch embed--> encoder_vi --+ 4 levels: f_vi[l]
    fused[l] = fusion_l(f_ir[l], f_vi[l])          one FUSION_MODULES entry, every level
    fused[l] = FiLM_l(fused[l], text)              only if text_dim is set and text is given
    decoder (level 4 -> 1, skip = fused[l]) -> refinement -> 3x3 conv -> + vi -> clamp

Teacher and student differ only in their :class:`FusionNetConfig` (width, FFN factor,
refinement depth, text branch); see :mod:`fusionlab.models.zoo` for the registered variants.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, InvalidTensorError, ShapeMismatchError
from . import kernels
from .blocks import Downsample, Upsample, make_blocks
from .film import FILM_MODES, FiLM
from .fusion import FUSION_MODULES
from .hub import HubMixin

LEVELS = 4
HEADS = ("residual", "blend")
#: initial sharpness k of the blend head: sigmoid(k (IR - VI)), a soft pixel maximum
BLEND_SHARPNESS = 100.0


@dataclass
class FusionNetConfig:
    """Everything that defines a FusionNet (saved in checkpoints, rebuilt on load).

    Attributes:
        dim: channels of level 1 (levels have dim, 2dim, 4dim, 8dim). Teacher 48, student 16.
        blocks: transformer blocks per level, encoder and decoder alike.
        heads: channel-attention heads per level.
        spatial_heads: window-attention heads per level (each ``head_dim`` wide).
        head_dim: channels per window-attention head.
        refinement: full-resolution refinement blocks after the decoder.
        ffn_factor: FFN expansion (2.66 teacher, 2.0 student).
        window: window-attention query window (keys come from the overlapping window).
        overlap: overlap ratio of the key windows (0.5: 8 -> 12).
        text_dim: width of the text embedding, or None for a network without text branch.
        fusion: name in :data:`~fusionlab.models.fusion.FUSION_MODULES`, used at every level.
        film: ``"paper"`` ((1+gamma)F+beta) or ``"reference"`` (gamma F+beta).
        cross_levels: levels (1-4) where ``scfm`` runs its cross-stream stage (the reference
            code: deepest only; ``(1, 2, 3, 4)`` everywhere). Other fusion modules ignore it.
        head: ``"residual"`` (paper: ``F = conv(x) + VI``) or ``"blend"`` (fusionlab's
            option: ``F = w IR + (1 - w) VI`` with a per-pixel weight
            ``w = sigmoid(k (IR - VI) + a)``; ``a`` comes from the output convolution, the
            sharpness ``k`` is learnt). With a zero output convolution the blend head starts
            as a soft pixel maximum instead of the visible image, and every output is a
            convex mix of the sources, so flat regions stay clean on short CPU schedules
            (a residual detail term added noise that the metrics punish: docs/training.md).
    """

    dim: int = 48
    blocks: tuple = (2, 2, 2, 2)
    heads: tuple = (1, 2, 4, 8)
    spatial_heads: tuple = (2, 2, 3, 4)
    head_dim: int = 16
    refinement: int = 4
    ffn_factor: float = 2.66
    window: int = 8
    overlap: float = 0.5
    text_dim: int | None = 512
    fusion: str = "scfm"
    film: str = "paper"
    cross_levels: tuple = (4,)
    head: str = "residual"

    def __post_init__(self):
        if self.head not in HEADS:
            raise ConfigError(f"model config head={self.head!r} is not one of {', '.join(HEADS)}")
        self.cross_levels = tuple(sorted(int(i) for i in self.cross_levels))
        if any(not 1 <= i <= LEVELS for i in self.cross_levels):
            raise ConfigError(f"model config cross_levels={list(self.cross_levels)}: levels are 1..{LEVELS}")
        for name in ("blocks", "heads", "spatial_heads"):
            v = tuple(int(i) for i in getattr(self, name))
            if len(v) != LEVELS:
                raise ConfigError(f"model config {name}={list(v)}: needs {LEVELS} values, one per level")
            setattr(self, name, v)
        if int(self.dim) < 1 or self.dim % 2:
            raise ConfigError(f"model config dim={self.dim}: must be a positive even number")
        for h, lvl in zip(self.heads, range(LEVELS)):
            if h < 1 or (self.dim * 2 ** lvl) % h:
                raise ConfigError(f"model config heads={list(self.heads)}: level {lvl + 1} has "
                                  f"{self.dim * 2 ** lvl} channels, not divisible by {h} heads")
        if self.text_dim is not None and int(self.text_dim) < 1:
            raise ConfigError(f"model config text_dim={self.text_dim}: must be None or a positive int")
        if self.fusion not in FUSION_MODULES:
            FUSION_MODULES.get(self.fusion)  # raises ConfigError naming the known modules
        if self.film not in FILM_MODES:
            raise ConfigError(f"model config film={self.film!r}: must be one of {', '.join(FILM_MODES)}")
        if self.window < 1 or not 0 <= self.overlap < 1:
            raise ConfigError(f"model config window={self.window}, overlap={self.overlap}: need window >= 1, 0 <= overlap < 1")
        if int(self.window * self.overlap) % 2:
            raise ConfigError(f"model config window={self.window}, overlap={self.overlap}: the key window grows by "
                              f"{int(self.window * self.overlap)} pixels, which must be even (half on each side)")

    def to_dict(self) -> dict:
        """Plain dict of builtins (lists for tuples): safe for YAML/JSON and weights_only loads."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "FusionNetConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown model config key(s) {unknown} (known: {', '.join(sorted(known))})")
        return cls(**d)


class EndConv(nn.Conv2d):
    """The U-Net's first and last 3x3 convs (one input / one output channel): an ``nn.Conv2d``
    (same parameters, hooks, autograd) that runs :func:`~fusionlab.models.kernels.end_conv`'s
    C code at inference, where torch's oneDNN is slow for these shapes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kernels.end_conv(self, x) if kernels.enabled() else super().forward(x)


class Encoder(nn.Module):
    """One stream: 3x3 patch embedding then 4 levels of blocks with 2x downsampling between.

    ``(B, 1, H, W)`` -> list of 4 features ``(B, dim * 2**l, H / 2**l, W / 2**l)``.
    """

    def __init__(self, cfg: FusionNetConfig):
        super().__init__()
        d = cfg.dim
        self.patch_embed = EndConv(1, d, 3, padding=1, bias=False)
        self.levels = nn.ModuleList(
            make_blocks(cfg.blocks[l], d * 2 ** l, cfg.heads[l], cfg.spatial_heads[l], cfg.head_dim,
                        cfg.window, cfg.overlap, cfg.ffn_factor) for l in range(LEVELS))
        self.down = nn.ModuleList(Downsample(d * 2 ** l) for l in range(LEVELS - 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        x = self.patch_embed(x)
        for l in range(LEVELS):
            if l:
                x = self.down[l - 1](x)
            x = self.levels[l](x)
            feats.append(x)
        return feats


class FusionNet(HubMixin, nn.Module):
    """Dual-stream text-guidable fusion network; one calling convention for every variant.

    ``model(ir, vi, text=None) -> fused``

    Args:
        ir: infrared ``(B, 1, H, W)`` in [0, 1], any ``H, W`` (reflect-padded internally to
            a multiple of 8 and cropped back).
        vi: visible luma (Y) ``(B, 1, H, W)`` in [0, 1]; colour is handled by
            :func:`fusionlab.models.fuse_pair`.
        text: ``(B, text_dim)`` (or ``(text_dim,)``, shared by the batch) text embeddings,
            or None. None skips the FiLM modulation (the network's non-text behaviour); models
            built with ``text_dim=None`` have no text branch and ignore ``text``, so one
            training loop can drive teacher and student alike.
        return_features: also return the 4 decoder features used for feature distillation.

    Returns:
        fused ``(B, 1, H, W)`` in [0, 1] (clamped; in training mode the clamp passes
        gradients straight through so saturated pixels still learn), and with
        ``return_features`` a list of 4 tensors, deepest first:
        ``(B, feature_channels[i], H'/2**(3-i), W'/2**(3-i))`` with ``H', W'`` the padded size.

    ``save_pretrained(folder)`` / ``FusionNet.from_pretrained(folder or hub id)`` (safetensors
    + config.json + model card) come from :class:`~fusionlab.models.hub.HubMixin`.
    """

    def __init__(self, config: FusionNetConfig | None = None, name: str = "custom"):
        super().__init__()
        cfg = config or FusionNetConfig()
        self.config, self.name = cfg, name
        d = cfg.dim
        ch = [d * 2 ** l for l in range(LEVELS)]
        self.encoder_ir = Encoder(cfg)
        self.encoder_vi = Encoder(cfg)
        self.fusion = nn.ModuleList(
            FUSION_MODULES.build(cfg.fusion, dim=ch[l], **FUSION_MODULES.accepted(cfg.fusion, dict(
                channel_heads=cfg.heads[l], spatial_heads=cfg.spatial_heads[l], head_dim=cfg.head_dim,
                window=cfg.window, overlap=cfg.overlap, cross=(l + 1) in cfg.cross_levels)))
            for l in range(LEVELS))
        self.film = (nn.ModuleList(FiLM(cfg.text_dim, ch[l], cfg.film) for l in range(LEVELS))
                     if cfg.text_dim is not None else None)

        def blocks(n, c, l):
            return make_blocks(n, c, cfg.heads[l], cfg.spatial_heads[l], cfg.head_dim, cfg.window,
                               cfg.overlap, cfg.ffn_factor)

        # decoder, deepest level first; level 1 keeps the concatenation (2 * dim channels)
        self.decoder = nn.ModuleList([blocks(cfg.blocks[3], ch[3], 3), blocks(cfg.blocks[2], ch[2], 2),
                                      blocks(cfg.blocks[1], ch[1], 1), blocks(cfg.blocks[0], 2 * d, 0)])
        self.up = nn.ModuleList([Upsample(ch[3]), Upsample(ch[2]), Upsample(ch[1])])
        self.reduce = nn.ModuleList([nn.Conv2d(2 * ch[2], ch[2], 1, bias=False),
                                     nn.Conv2d(2 * ch[1], ch[1], 1, bias=False)])
        self.refinement = blocks(cfg.refinement, 2 * d, 0)
        self.output = EndConv(2 * d, 1, 3, padding=1, bias=False)
        if cfg.head == "blend":
            self.blend_sharpness = nn.Parameter(torch.tensor(BLEND_SHARPNESS))
        #: channels of the 4 features returned with ``return_features=True`` (deepest first)
        self.feature_channels = (ch[3], ch[2], ch[1], 2 * d)
        #: H and W are padded to a multiple of this (3 downsamplings)
        self.pad_multiple = 2 ** (LEVELS - 1)
        #: run in channels-last memory format: LayerNorm and 1x1 convs need no copies (faster on CPU)
        self.channels_last = True

    # ------------------------------------------------------------------ checks
    def _check(self, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None):
        check_luma_pair(ir, vi, self.name)
        for nm, t in (("ir", ir), ("vi", vi)) if not _tracing() else ():  # a traced graph cannot branch on values
            if not torch.isfinite(t).all():  # NaN would silently propagate to every output pixel
                raise InvalidTensorError(f"{self.name}: {nm} holds {int((~torch.isfinite(t)).sum())} NaN/inf values")
        if text is None or self.film is None:
            return None
        if not isinstance(text, torch.Tensor):
            raise InvalidTensorError(f"{self.name}: text must be a (B, {self.config.text_dim}) tensor of "
                                     f"embeddings, got {type(text).__name__}")
        if text.ndim == 1:
            text = text[None].expand(ir.shape[0], -1)
        if text.ndim != 2 or text.shape[1] != self.config.text_dim or text.shape[0] != ir.shape[0]:
            raise InvalidTensorError(f"{self.name}: text must have shape ({ir.shape[0]}, {self.config.text_dim}), "
                                     f"got {tuple(text.shape)}")
        return text.to(ir.device)

    # ------------------------------------------------------------------ forward
    def forward(self, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None = None,
                return_features: bool = False):
        text = self._check(ir, vi, text)
        h, w = ir.shape[-2:]
        ir_p, vi_p = pad_to_multiple(ir, self.pad_multiple), pad_to_multiple(vi, self.pad_multiple)
        if self.channels_last:
            ir_p = ir_p.contiguous(memory_format=torch.channels_last)
            vi_p = vi_p.contiguous(memory_format=torch.channels_last)
        f_ir, f_vi = self.encoder_ir(ir_p), self.encoder_vi(vi_p)
        fused = [self.fusion[l](f_ir[l], f_vi[l]) for l in range(LEVELS)]
        if text is not None:
            fused = [self.film[l](fused[l], text) for l in range(LEVELS)]

        feats = []
        x = self.decoder[0](fused[3])
        feats.append(x)
        for i, l in enumerate((2, 1, 0)):  # levels 3, 2, 1
            x = torch.cat([self.up[i](x), fused[l]], dim=1)
            if l:  # level 1 keeps both halves (2 * dim channels)
                x = self.reduce[i](x)
            x = self.decoder[i + 1](x)
            feats.append(x)
        x = self.refinement(x)
        if self.config.head == "blend":
            weight = torch.sigmoid(self.blend_sharpness * (ir - vi) + self.output(x)[..., :h, :w])
            out = weight * ir + (1 - weight) * vi
        else:
            out = (self.output(x) + vi_p)[..., :h, :w]
        out = clamp01(out, straight_through=self.training)
        out = out.contiguous()
        return (out, feats) if return_features else out

    def extra_repr(self) -> str:
        return f"name={self.name!r}, config={self.config}"


# ----------------------------------------------------------------------------- helpers
def _tracing() -> bool:
    """True while torch.export / torch.compile / torch.jit trace the model."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()


def check_luma_pair(ir: torch.Tensor, vi: torch.Tensor, what: str) -> None:
    """The calling convention of every fusion model: ``ir`` and ``vi`` are ``(B, 1, H, W)``
    tensors of one shape; a one-line InvalidTensorError / ShapeMismatchError otherwise."""
    for nm, t in (("ir", ir), ("vi", vi)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4 or t.shape[1] != 1:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            hint = " (use fusionlab.models.fuse_pair for RGB visible images)" if nm == "vi" else ""
            raise InvalidTensorError(f"{what}: {nm} must be a (B, 1, H, W) tensor, got {shape}{hint}")
    if ir.shape != vi.shape:
        raise ShapeMismatchError(f"{what}: ir {tuple(ir.shape)} and vi {tuple(vi.shape)} differ in shape")


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` at the bottom/right to multiples of ``multiple``.

    Reflect padding (mirrors content, no artificial edge); replicate when the image is too
    small to reflect. Crop back with ``y[..., :H, :W]``.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def clamp01(x: torch.Tensor, straight_through: bool = False) -> torch.Tensor:
    """Clamp to [0, 1]; with ``straight_through`` the gradient is the identity (values still clamped)."""
    if not straight_through:
        return x.clamp(0.0, 1.0)
    return x + (x.clamp(0.0, 1.0) - x).detach()


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["FusionNetConfig", "FusionNet", "Encoder", "check_luma_pair", "pad_to_multiple", "clamp01", "count_parameters", "LEVELS"]
