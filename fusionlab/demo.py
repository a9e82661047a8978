"""The main job: fuse the embedded synthetic pairs with the shipped student, score it, draw it.

``fusionlab demo --out DIR`` (and ``make demo``) runs :func:`run_demo`, which leaves in DIR:

* ``inputs/{ir,vi}/syn_XXXXX.png`` — the synthetic pairs (same layout as real datasets);
* ``fused/syn_XXXXX.png`` — colour fusions by the distilled student;
* ``metrics.csv`` — one row per (image, method) with the paper metrics, for the student and
  the pixel-mean / pixel-max baselines; ``summary.csv`` — the mean per method;
* ``overview.png`` — IR | VI | mean | max | student for the first pairs;
* ``real/`` — when the shared real data is present (``$FUSIONLAB_SHARED/data``, see
  :func:`fusionlab.dirs.shared_dir`), one real MSRS night pair (:data:`REAL_PAIR`) fused the
  same way: its scores are rows ``real:...`` of ``metrics.csv`` (not in ``summary.csv``,
  which stays the mean over the seeded synthetic pairs) and it is the last overview row.

No download and no GPU needed; a few seconds to a minute on 2 CPU cores.
"""
from __future__ import annotations

from pathlib import Path

import torch



#: the real pair the demo adds when ../shared is present: a night scene whose pedestrian is
#: visible only in the infrared image
REAL_PAIR = ("msrs/test", "00004N")


def real_pair(size: tuple[int, int]):
    """``(name, ir, vi)`` of :data:`REAL_PAIR` resized to ``size`` (H, W), or None when the
    shared data is absent."""
    import torch.nn.functional as F

    from .data import PairedFolder
    from .dirs import shared_dir

    root = shared_dir() / "data" / REAL_PAIR[0]
    if not root.is_dir():
        return None
    ds = PairedFolder(root, names=[REAL_PAIR[1]])
    item = ds[0]
    ir, vi = (F.interpolate(t[None], size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
              for t in (item["ir"], item["vi"]))
    return f"real:{REAL_PAIR[0].split('/')[0]}/{REAL_PAIR[1]}", ir, vi


def baseline_fusions(ir: torch.Tensor, vi: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pixel-mean and pixel-max fusion in Y (VI colour kept): ``(B,1,H,W)``, ``(B,C,H,W)`` -> ``(B,C,H,W)``."""
    from .color import fuse_in_luma
    from .models.baselines import pixel_max, pixel_mean

    return {"mean": fuse_in_luma(pixel_mean, ir, vi), "max": fuse_in_luma(pixel_max, ir, vi)}


def run_demo(out: str | Path = "demo_output", n: int = 6, size: tuple[int, int] = (240, 320),
             checkpoint: str | Path | None = None, seed0: int = 100, device: str | None = None,
             progress: bool = True) -> dict:
    """Run the demo; returns ``{"summary": DataFrame, "out": Path, ...}`` (see module docstring)."""
    import pandas as pd
    from tqdm.auto import tqdm

    from .data import PairedFolder, write_synthetic_folder
    from .device import default_device
    from .errors import CheckpointError
    from .io import atomic_path, atomic_write_text, write_image
    from .metrics import SUMMARY_METRICS, evaluate, to_metric_scale
    from .models import SHIPPED_STUDENT, fuse_pair

    out = Path(out)
    dev = default_device(device)
    ckpt = Path(checkpoint) if checkpoint else SHIPPED_STUDENT
    if not ckpt.exists():
        raise CheckpointError(f"{ckpt}: checkpoint not found (train one with scripts/train_shipped_student.py "
                              "or pass --checkpoint)")
    from .api import load_model

    model = load_model(ckpt, map_location=dev)  # a .pt checkpoint or a save_pretrained folder
    info = {"model": model.name}

    root = write_synthetic_folder(out / "inputs", n=n, size=size, seed0=seed0, with_reference=False)
    ds = PairedFolder(root)
    pairs = [(ds[i]["name"], ds[i]["ir"][None], ds[i]["vi"][None]) for i in range(len(ds))]
    real = real_pair(size)
    if real is not None:
        pairs.append(real)
    rows, shown = [], []
    for name, ir, vi in tqdm(pairs, desc="demo", disable=not progress):
        ir, vi = ir.to(dev), vi.to(dev)
        with torch.no_grad():
            fused = fuse_pair(model, ir, vi).clamp(0, 1)
        if name.startswith("real:"):
            for folder, img in (("ir", ir), ("vi", vi), ("fused", fused)):
                write_image(out / "real" / folder / f"{REAL_PAIR[1]}.png", img[0])
        else:
            write_image(out / "fused" / f"{name}.png", fused[0])
        methods = {**baseline_fusions(ir, vi), "student": fused}
        names = list(methods)
        k = len(names)  # score all methods of this pair in one batched call
        table = evaluate(to_metric_scale(ir).repeat(k, 1, 1, 1), to_metric_scale(vi).repeat(k, 1, 1, 1),
                         torch.cat([to_metric_scale(methods[m]) for m in names]), metrics=list(SUMMARY_METRICS))
        for method, vals in zip(names, table.to_dict("records")):
            rows.append({"image": name, "method": method, **{m: float(v) for m, v in vals.items()}})
        if len(shown) < 3 or name.startswith("real:"):
            shown.append((name, ir[0].cpu(), vi[0].cpu(), {k: v[0].cpu() for k, v in methods.items()}))

    df = pd.DataFrame(rows)
    with atomic_path(out / "metrics.csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")
    synthetic = df[~df["image"].str.startswith("real:")]
    summary = synthetic.drop(columns="image").groupby("method", sort=False).mean()
    with atomic_path(out / "summary.csv") as tmp:
        summary.to_csv(tmp, float_format="%.4f")
    _overview(out / "overview.png", shown, summary)
    atomic_write_text(out / "README.txt", (
        f"fusionlab demo: {n} synthetic pairs fused by {ckpt.name} ({info.get('model', '?')}).\n"
        "inputs/      the ir/ + vi/ pairs (synthetic, seeded: the same on every machine)\n"
        "fused/       the student's colour fusions (PNG)\n"
        "metrics.csv  EN SD SF AG MI SCD VIF Qabf SSIM per image and method (student, pixel mean, pixel max)\n"
        "summary.csv  the mean of each method\n"
        "overview.png IR | VI | mean | max | student for the first pairs\n"
        + ("real/        one real MSRS pair (ir, vi, fused), scored in metrics.csv as real:...\n" if real else "")))
    return {"out": out, "summary": summary, "metrics": df, "checkpoint": ckpt}


def _overview(path: Path, shown, summary) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io import atomic_path

    cols = ["IR", "VI", "mean", "max", "student"]
    fig, axes = plt.subplots(len(shown), len(cols), figsize=(3.0 * len(cols), 2.4 * len(shown) + 0.4),
                             squeeze=False)
    for r, (name, ir, vi, methods) in enumerate(shown):
        imgs = [ir, vi, methods["mean"], methods["max"], methods["student"]]
        for c, (title, img) in enumerate(zip(cols, imgs)):
            ax = axes[r][c]
            arr = img.permute(1, 2, 0).numpy() if img.shape[0] == 3 else img[0].numpy()
            ax.imshow(arr.clip(0, 1), cmap=None if img.shape[0] == 3 else "gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                label = title
                if title in summary.index:
                    s = summary.loc[title]
                    label = f"{title}\nVIF {s['VIF']:.2f}  Qabf {s['Qabf']:.2f}"
                ax.set_title(label, fontsize=10)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle("fusionlab demo: IR/VI pairs fused by the distilled student (column scores: synthetic pairs)",
                 fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
