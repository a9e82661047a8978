"""Views of run folders: one run's outputs, and two runs' fused images side by side (built
from the drawing primitives of :mod:`fusionlab.viz.images`).

* :func:`run_images` - ``{"<label> · seed <s>": sample path}`` for the ok runs of a results
  table (one sample name, e.g. ``syn_00000.png``);
* :class:`RunCompare` - ipywidgets viewer: choose any two runs (rows x seeds) and a sample,
  see the fused images side by side or with a wipe slider;
* :func:`compare_runs_figure` - the same comparison as a static figure (HTML exports,
  terminals, papers);
* :func:`show_run` - a run folder's metrics as a table and its fused samples as a figure.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..viz.images import ImageCompare, find_samples, show_images, side_by_side


def _ok_runs(df: pd.DataFrame) -> pd.DataFrame:
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    return ok.sort_values(["row", "seed"], kind="stable")


def run_name(label: str, seed) -> str:
    return f"{label} · seed {seed}"


def sample_names(df: pd.DataFrame, grid_dir: str | os.PathLike) -> list[str]:
    """Sample file names (relative to their samples folder) present in every ok run with samples."""
    common: list[str] | None = None
    for rd in _ok_runs(df)["run_dir"]:
        found = find_samples(Path(grid_dir) / rd)
        if not found:
            continue
        base = found[0].parent
        names = [str(p.relative_to(base)) if p.parent == base else p.name for p in found]
        common = names if common is None else [n for n in common if n in names]
    return common or []


def run_images(df: pd.DataFrame, grid_dir: str | os.PathLike, sample: str | None = None) -> dict[str, Path]:
    """``{run name: path of its fused sample}`` for ok runs (first common sample by default)."""
    names = sample_names(df, grid_dir)
    if not names:
        return {}
    sample = sample or names[0]
    out = {}
    for _, r in _ok_runs(df).iterrows():
        for p in find_samples(Path(grid_dir) / r["run_dir"]):
            if p.name == Path(sample).name:
                out[run_name(r["label"], r["seed"])] = p
                break
    return out


def default_pair(df: pd.DataFrame) -> tuple[str, str] | None:
    """Reference row vs the first other row, same seed (the comparison a reader wants first)."""
    ok = _ok_runs(df)
    if len(ok) < 2:
        return None
    ref = ok[ok["reference"]] if "reference" in ok.columns and ok["reference"].any() else ok.tail(1)
    r = ref.iloc[0]
    others = ok[(ok["label"] != r["label"]) & (ok["seed"] == r["seed"])]
    o = others.iloc[0] if len(others) else ok[ok["run_id"] != r["run_id"]].iloc[0]
    return run_name(o["label"], o["seed"]), run_name(r["label"], r["seed"])


def compare_runs_figure(df: pd.DataFrame, grid_dir: str | os.PathLike, a: str | None = None, b: str | None = None,
                        sample: str | None = None):
    """Static side-by-side of two runs' fused sample (defaults: :func:`default_pair`).
    Returns None when fewer than two runs have samples."""
    images = run_images(df, grid_dir, sample)
    pair = default_pair(df)
    if len(images) < 2 or pair is None:
        return None
    a, b = a or pair[0], b or pair[1]
    name = Path(images[a]).name
    return side_by_side(images[a], images[b], titles=(a, b), suptitle=f"fused sample {name}")


class RunCompare:
    """Pick two runs and a sample; compare their fused images (see :class:`ImageCompare`).

    ``RunCompare(results_df, "runs/fusion_modules").widget`` in a notebook cell.
    """

    def __init__(self, df: pd.DataFrame, grid_dir: str | os.PathLike, width: int = 640):
        import ipywidgets as w

        self.df, self.grid_dir = df, Path(grid_dir)
        self.samples = sample_names(df, grid_dir)
        if not self.samples:
            raise ValueError(f"{grid_dir}: no ok run with fused samples to compare")
        pair = default_pair(df)
        self.compare = ImageCompare(run_images(df, grid_dir, self.samples[0]), *(pair or (None, None)), width=width)
        self.sample = w.Dropdown(options=self.samples, value=self.samples[0], description="sample")
        self.sample.observe(self._on_sample, names="value")
        self.widget = w.VBox([self.sample, self.compare.widget])

    def _on_sample(self, change) -> None:
        self.compare.images = run_images(self.df, self.grid_dir, change["new"])
        self.compare._cache.clear()
        self.compare.refresh()

    def _repr_mimebundle_(self, **kwargs):  # the widget + a static picture (HTML exports show it)
        from ..viz.images import png_bytes, widget_bundle

        return widget_bundle(self.widget, lambda: png_bytes(self.compare.composite()), type(self).__name__, **kwargs)


def show_run(out_dir: str | os.PathLike, max_images: int = 4):
    """A finished run folder -> ``(metrics DataFrame, Figure of fused samples or None)``."""
    d = Path(out_dir)
    metrics = {}
    p = d / "metrics.json"
    if p.is_file():
        from .runner import flatten_metrics

        metrics = flatten_metrics(json.loads(p.read_text()))
    table = pd.DataFrame({"value": metrics}).rename_axis("metric")
    samples = find_samples(d)[:max_images]
    fig = show_images(samples, [s.name for s in samples], suptitle=f"fused samples in {d.name}") if samples else None
    return table, fig
