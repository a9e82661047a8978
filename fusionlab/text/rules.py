"""The ``rules`` captioner's brain: image statistics + documented thresholds.

Each image pair is measured with five cheap, interpretable statistics:

=================  =========================================================  =============
statistic          meaning                                                    used for
=================  =========================================================  =============
``vi_mean``        mean luma of the visible image, in [0, 1]                  low_light, over_exposure
``vi_clipped``     fraction of visible luma pixels above 0.95 (blown out)     over_exposure
``ir_range``       2nd-98th percentile range of the IR image                  ir_low_contrast
``ir_noise``       IR noise sigma, Immerkaer's Laplacian-difference estimate  ir_noise
``ir_stripes``     std of the high-passed IR column means (fixed pattern)     ir_noise
=================  =========================================================  =============

Every degradation gets a *severity* = how far its statistic is past its threshold
(a ratio, > 1 means "past"). The label is the FIRST degradation past its threshold in the
priority order :data:`PRIORITY` (visible illumination first, because it changes what the
scene shows most: a dark night pair whose infrared is also flat is "low_light"), or
``normal`` when none is past its threshold. The thresholds (:class:`RuleThresholds`) sit half-way between
clean and degraded synthetic pairs (``fusionlab.data.degrade``); measured on 128x128
pairs (seeds 1000-1029, min..max):

* ``vi_mean``: normal 0.45-0.54, low_light 0.05-0.14, over_exposure 0.80-0.98;
* ``vi_clipped``: normal 0.00, over_exposure 0.30-0.95;
* ``ir_range``: normal 0.32-0.74, ir_low_contrast 0.07-0.29;
* ``ir_noise``: normal 0.010, ir_noise 0.053-0.115; ``ir_stripes``: <= 0.015 vs 0.029-0.062.

On real MSRS test pairs the visible means are 0.06-0.19 for night (``N``) and 0.26-0.46 for
day (``D``) scenes, so the low-light threshold 0.22 separates them; MSRS infrared has a
small dynamic range (2-98 % range 0.14-0.48), so some day pairs are called
``ir_low_contrast``. See docs/text_priors.md for the confusion matrices.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..errors import InvalidTensorError
from ..color import to_luma

STAT_NAMES = ("vi_mean", "vi_clipped", "ir_range", "ir_noise", "ir_stripes")
#: Order in which degradations are checked; the first one past its threshold names the pair.
PRIORITY = ("low_light", "over_exposure", "ir_noise", "ir_low_contrast")


@dataclass
class RuleThresholds:
    """Thresholds of the rules captioner (see the module docstring for where they come from)."""

    low_light_mean: float = 0.22      # vi_mean below -> low_light
    over_exposure_mean: float = 0.72  # vi_mean above -> over_exposure
    over_exposure_clipped: float = 0.15  # vi_clipped above -> over_exposure
    ir_low_contrast_range: float = 0.30  # ir_range below -> ir_low_contrast
    ir_noise_sigma: float = 0.03      # ir_noise above -> ir_noise
    ir_stripes: float = 0.035         # ir_stripes above -> ir_noise (scene edges alone reach 0.025 on small images)


def _check(ir: torch.Tensor, vi: torch.Tensor) -> None:
    if ir.ndim != 4 or vi.ndim != 4 or ir.shape[0] != vi.shape[0] or ir.shape[-2:] != vi.shape[-2:]:
        raise InvalidTensorError(f"expected ir (B,1,H,W) and vi (B,C,H,W) of one size, got "
                                 f"{tuple(ir.shape)} and {tuple(vi.shape)}")
    if min(ir.shape[-2:]) < 3:
        raise InvalidTensorError(f"images must be at least 3x3 for the rules captioner, got {tuple(ir.shape)}")


def _quantile_range(x: torch.Tensor, lo: float = 0.02, hi: float = 0.98) -> torch.Tensor:
    flat = x.flatten(1)
    if flat.shape[1] > 262_144:  # torch.quantile sorts; a strided subsample is plenty
        flat = flat[:, :: math.ceil(flat.shape[1] / 262_144)]
    q = torch.quantile(flat, torch.tensor([lo, hi], dtype=flat.dtype, device=flat.device), dim=1)
    return q[1] - q[0]


@torch.no_grad()
def image_statistics(ir: torch.Tensor, vi: torch.Tensor) -> dict[str, torch.Tensor]:
    """Measure the rule statistics of a batch.

    Args:
        ir: ``(B, 1|3, H, W)`` infrared in [0, 1]. vi: ``(B, 1|3, H, W)`` visible in [0, 1].

    Returns:
        dict name -> ``(B,)`` float tensor, names :data:`STAT_NAMES`.
    """
    _check(ir, vi)
    ir, y = to_luma(ir.float()), to_luma(vi.float())
    # Immerkaer (1996): the 3x3 kernel below cancels smooth image structure (it is the
    # difference of two Laplacians), so the mean |response| measures pixel noise.
    k = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], device=ir.device).view(1, 1, 3, 3)
    noise = math.sqrt(math.pi / 2) / 6.0 * F.conv2d(ir, k).abs().mean(dim=(1, 2, 3))
    # Column stripes: column means minus their 9-column moving average.
    cols = ir.mean(dim=2)  # (B, 1, W)
    smooth = F.avg_pool1d(F.pad(cols, (4, 4), mode="replicate"), 9, stride=1) if cols.shape[-1] > 4 else cols
    return {
        "vi_mean": y.mean(dim=(1, 2, 3)),
        "vi_clipped": (y > 0.95).float().mean(dim=(1, 2, 3)),
        "ir_range": _quantile_range(ir),
        "ir_noise": noise,
        "ir_stripes": (cols - smooth).std(dim=(1, 2)),
    }


def severities(stats: dict[str, torch.Tensor], thr: RuleThresholds | None = None) -> dict[str, torch.Tensor]:
    """Severity ``(B,)`` per degradation: > 1 means past its threshold (ratio, higher = worse)."""
    t = thr or RuleThresholds()
    eps = 1e-6
    return {
        "low_light": t.low_light_mean / (stats["vi_mean"] + eps),
        "over_exposure": torch.maximum(stats["vi_mean"] / t.over_exposure_mean,
                                       stats["vi_clipped"] / t.over_exposure_clipped),
        "ir_low_contrast": t.ir_low_contrast_range / (stats["ir_range"] + eps),
        "ir_noise": torch.maximum(stats["ir_noise"] / t.ir_noise_sigma, stats["ir_stripes"] / t.ir_stripes),
    }


def classify_degradation(ir: torch.Tensor, vi: torch.Tensor, thr: RuleThresholds | None = None) -> list[str]:
    """Label each pair of a batch: the first degradation of :data:`PRIORITY` past its threshold, else ``normal``.

    Args:
        ir: ``(B, 1, H, W)`` in [0, 1]. vi: ``(B, 1|3, H, W)`` in [0, 1].

    Returns:
        ``B`` labels from :data:`fusionlab.data.DEGRADATIONS`.
    """
    sev = severities(image_statistics(ir, vi), thr)
    out = []
    for i in range(ir.shape[0]):
        out.append(next((n for n in PRIORITY if float(sev[n][i]) > 1.0), "normal"))
    return out


# ----------------------------------------------------------------------------- evaluation
def synthetic_degraded_pairs(n_per_class: int = 20, size: int = 128, seed: int = 1000):
    """Yield batches ``(ir, vi, labels, names)`` of synthetic pairs, each degradation on every pair.

    Pairs use seeds ``seed .. seed + n_per_class - 1`` (make_pair), degradations are drawn
    with a generator seeded by ``seed`` - the same call gives the same pixels.
    """
    from ..data import DEGRADATIONS, degrade_batch, make_pair

    pairs = [make_pair(seed + i, size, with_reference=False) for i in range(n_per_class)]
    ir = torch.stack([p["ir"] for p in pairs])
    vi = torch.stack([p["vi"] for p in pairs])
    g = torch.Generator().manual_seed(seed)
    for lab in DEGRADATIONS:
        d = degrade_batch(ir, vi, [lab] * n_per_class, g=g)
        yield d["ir"], d["vi"], d["labels"], [f"{p['name']}_{lab}" for p in pairs]


def confusion_matrix(true: list[str], pred: list[str], classes: list[str] | None = None):
    """pandas DataFrame of counts: rows = true label, columns = predicted label."""
    import pandas as pd

    classes = list(classes or sorted(set(true) | set(pred)))
    extra = sorted(set(pred) - set(classes))
    cols = classes + extra
    cm = pd.DataFrame(0, index=pd.Index(classes, name="true"), columns=pd.Index(cols, name="predicted"))
    for t, p in zip(true, pred):
        cm.loc[t, p] += 1
    return cm


def rules_confusion(n_per_class: int = 20, size: int = 128, seed: int = 1000,
                    thresholds: RuleThresholds | None = None, captioner=None):
    """Confusion matrix of a captioner (default: ``rules``) on synthetic degradations.

    Returns:
        ``(cm, accuracy)``: pandas DataFrame (rows true, columns predicted; classes
        :data:`fusionlab.data.DEGRADATIONS`) and the fraction correct.
    """
    from ..data import DEGRADATIONS
    from .captions import parse_event_type

    true, pred = [], []
    for ir, vi, labels, names in synthetic_degraded_pairs(n_per_class, size, seed):
        if captioner is None:
            pred += classify_degradation(ir, vi, thresholds)
        else:
            pred += [parse_event_type(c) for c in captioner.caption(ir, vi, names=names)]
        true += labels
    cm = confusion_matrix(true, pred, list(DEGRADATIONS))
    acc = sum(t == p for t, p in zip(true, pred)) / max(1, len(true))
    return cm, acc


def folder_statistics(root, thresholds: RuleThresholds | None = None, max_pairs: int | None = None):
    """Rule statistics, severities and the predicted label for every pair of a dataset folder.

    Args:
        root: dataset root with ``ir/`` and ``vi/`` (see fusionlab.data.resolve_layout).

    Returns:
        pandas DataFrame, one row per pair: ``name``, the :data:`STAT_NAMES` columns and ``label``.
    """
    import pandas as pd

    from ..data import find_pairs, resolve_layout
    from ..data.paired import load_pair

    ir_dir, vi_dir = resolve_layout(root)
    rows = []
    for name, ir_p, vi_p in find_pairs(ir_dir, vi_dir)[:max_pairs]:
        p = load_pair(ir_p, vi_p)
        ir, vi = p["ir"][None], p["vi"][None]
        st = image_statistics(ir, vi)
        row = {"name": name, **{k: float(v[0]) for k, v in st.items()}}
        row["label"] = classify_degradation(ir, vi, thresholds)[0]
        rows.append(row)
    return pd.DataFrame(rows)


def thresholds_dict(thr: RuleThresholds | None = None) -> dict:
    return asdict(thr or RuleThresholds())
