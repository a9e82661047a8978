"""Evaluation helpers shared by validation, ``run_experiment``, the benchmark and the notebooks
(:func:`score_fusers` per degradation, :func:`compare_features` of teacher and student).

Metrics follow the papers' reading (see ``fusionlab.metrics``): the fused luma is put back
together with the visible CbCr (the colour image a user would save), and every image is
quantised to 8 bits and converted to gray exactly as when the PNGs are read back, so
numbers computed here equal ``fusionlab evaluate`` on the written files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from ..color import colorize, to_luma
from ..io import write_image
from ..metrics.evaluate import HEADLINE_METRICS



def pair_metrics(fused_y: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor,
                 metrics: Iterable[str] | None = HEADLINE_METRICS) -> dict[str, float]:
    """Metrics of one fused pair.

    Args:
        fused_y: ``(1, 1, H, W)`` fused luma in [0, 1] (or an RGB ``(1, 3, H, W)`` fused image).
        ir: ``(1, 1, H, W)`` in [0, 1]. vi: ``(1, 1|3, H, W)`` in [0, 1].
        metrics: names (default EN, VIF, Qabf, SSIM); None = the 12 of METRIC_NAMES.

    Returns:
        ``{metric: float}`` on the papers' scale.
    """
    from ..metrics import fusion_scores

    return fusion_scores(ir, vi, colorize(fused_y, vi) if fused_y.shape[1] == 1 else fused_y, metrics)


def baseline(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Pixel baselines on luma, from :mod:`fusionlab.models.baselines`: ``"mean"``
    ((IR + VI_Y) / 2), ``"max"`` (max(IR, VI_Y)) or ``"visible"`` (VI_Y)."""
    from ..models import baselines

    fns = {"mean": baselines.pixel_mean, "max": baselines.pixel_max, "visible": baselines.visible_only}
    if kind not in fns:
        raise ValueError(f"unknown baseline {kind!r} ({', '.join(fns)})")
    return fns[kind]


def evaluate_fuser(fuse: Callable[[dict], torch.Tensor], items: Sequence[dict],
                   metrics: Iterable[str] | None = HEADLINE_METRICS, samples_dir: str | Path | None = None,
                   max_samples: int = 4) -> tuple[dict[str, float], list[dict]]:
    """Run ``fuse(item) -> (1, 1, H, W) fused luma`` on every item (``ir``, ``vi``, ``name``).

    Returns ``(mean, per_image)``: the mean of each metric (NaN-aware) and one dict per
    image (``name`` + metrics). The first ``max_samples`` fused images (with the visible
    colours) are written to ``samples_dir/<name>.png`` when it is given.
    """
    rows = []
    for i, it in enumerate(items):
        with torch.no_grad():
            fused = fuse(it).detach().float().cpu().clamp(0, 1)
        row = {"name": it["name"], **pair_metrics(fused, it["ir"], it["vi"], metrics)}
        rows.append(row)
        if samples_dir is not None and i < max_samples:
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(it["name"]))
            write_image(Path(samples_dir) / f"{safe}.png", colorize(fused, it["vi"])[0])
    keys = [k for k in rows[0] if k != "name"] if rows else []
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
    return mean, rows


def model_fuser(model: torch.nn.Module, prior=None, device: torch.device | str = "cpu",
                tile: int | None = None) -> Callable[[dict], torch.Tensor]:
    """``item -> fused luma`` with a trained model (and its text prior, if any); ``tile``
    fuses large images in overlapping tiles (bounded memory)."""
    dev = torch.device(device)

    def fuse(it: dict) -> torch.Tensor:
        ir, vi = it["ir"].to(dev), it["vi"].to(dev)
        text = None
        if prior is not None:
            t = prior({"ir": ir, "vi": vi, "names": [it["name"]], "labels": [it.get("label", "normal")]})
            text = None if t is None else t.to(dev)
        vi_y = to_luma(vi)
        model.eval()
        if tile and max(ir.shape[-2:]) > tile:
            from ..models import sliding_window

            return sliding_window(model, ir, vi_y, text, tile=tile)
        return model(ir, vi_y, text)

    return fuse


def score_fusers(fusers: dict[str, Callable[[dict], torch.Tensor]], items: Sequence[dict],
                 metrics: Iterable[str] = HEADLINE_METRICS):
    """Mean metrics per (fuser, degradation label).

    Args:
        fusers: ``{name: fuse(item) -> fused luma (1, 1, H, W)}`` (e.g. :func:`model_fuser`).
        items: ``ir``, ``vi``, ``name`` and ``label`` each (e.g.
            :func:`fusionlab.data.degraded_items`).
        metrics: names (default: the headline metrics, EN VIF Qabf SSIM).

    Returns:
        pandas DataFrame with columns ``fuser``, ``label`` and one per metric.
    """
    import pandas as pd

    metrics = list(metrics or HEADLINE_METRICS)
    rows = []
    for fname, fuse in fusers.items():
        _, per = evaluate_fuser(fuse, items, metrics)
        for it, r in zip(items, per):
            rows.append({"fuser": fname, "label": it["label"], **{m: r[m] for m in metrics}})
    return pd.DataFrame(rows).groupby(["fuser", "label"], sort=False).mean().reset_index()


@torch.no_grad()
def compare_features(teacher, student, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None = None,
                     adapters=None) -> list[dict]:
    """Teacher vs student features, level by level (what L_feat compares).

    Args:
        teacher, student: FusionNets; ``ir`` ``(1, 1, H, W)``, ``vi`` ``(1, 1|3, H, W)`` in [0, 1].
        text: the teacher's text embedding ``(1, text_dim)`` or None.
        adapters: the learned 1x1 convolutions of the distillation loss
            (``trainer.criterion.adapters``), mapping teacher channels to student channels.

    Returns:
        one dict per level: ``teacher``, ``student`` (and ``adapted``) channel-mean absolute
        activation maps ``(h, w)`` numpy, ``channels`` ``(C_t, C_s)``, and with adapters
        ``cosine``: the mean per-pixel cosine between ``Down(F_t)`` and ``F_s`` (1 = same
        direction everywhere; what normalised L_feat pushes towards).
    """
    import torch.nn.functional as F

    vi_y = to_luma(vi)
    _, ft = teacher.eval()(ir, vi_y, text, return_features=True)
    _, fs = student.eval()(ir, vi_y, None, return_features=True)
    mapped = adapters(ft) if adapters is not None else [None] * len(ft)
    out = []
    for t, s, a in zip(ft, fs, mapped):
        d = {"teacher": t[0].abs().mean(0).numpy(), "student": s[0].abs().mean(0).numpy(),
             "channels": (int(t.shape[1]), int(s.shape[1]))}
        if a is not None:
            if a.shape[-2:] != s.shape[-2:]:
                a = F.interpolate(a, size=s.shape[-2:], mode="bilinear", align_corners=False)
            d["adapted"] = a[0].abs().mean(0).numpy()
            d["cosine"] = float(F.cosine_similarity(a, s.float(), dim=1).mean())
        out.append(d)
    return out
