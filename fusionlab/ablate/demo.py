"""Bundled example results, so the report notebook shows something real before any grid ran.

``fusionlab/ablate/examples/<ablation>/`` holds the ``results.csv`` of a real
``fusionlab ablate <ablation> --preset ci`` run (tiny synthetic data,
seconds of CPU training per run: the numbers say that the machinery works, not what the
method achieves) and the first fused sample of each seed-0 run (``<run id>/samples/*.png``).
The report notebook uses them only when ``runs/<ablation>/results.csv`` does not exist
and says so in a banner. :func:`bundle_example` (re)creates them from a runs folder.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError
from .results import RESULTS_FILE, read_results, write_results

EXAMPLES = Path(__file__).resolve().parent / "examples"


def example_dir(ablation: str) -> Path | None:
    """The bundled example folder of ``ablation``, or None when there is none."""
    d = EXAMPLES / ablation
    return d if (d / RESULTS_FILE).is_file() else None


def locate_results(ablation: str, runs_dir: str | os.PathLike = "runs", example_fallback: bool = True
                   ) -> tuple[Path, bool]:
    """``(grid_dir, is_example)``: ``runs_dir/<ablation>`` when it holds a results.csv, else
    the bundled example (when allowed and available).

    Raises:
        ConfigError: no results and no usable example.
    """
    grid_dir = Path(runs_dir) / ablation
    if (grid_dir / RESULTS_FILE).is_file():
        return grid_dir, False
    ex = example_dir(ablation) if example_fallback else None
    if ex is None:
        raise ConfigError(f"{grid_dir / RESULTS_FILE}: no results (run 'fusionlab ablate {ablation}')")
    return ex, True


def bundle_example(grid_dir: str | os.PathLike, dest: str | os.PathLike | None = None, samples: int = 1,
                   seeds: Sequence[int] | None = None) -> Path:
    """Copy a finished grid's table and the first ``samples`` fused images of every run (of
    ``seeds`` only, if given: keeps the package small) into ``dest`` (default: the
    package's ``examples/<ablation>``); nothing else is copied."""
    from ..viz.images import find_samples

    grid_dir = Path(grid_dir)
    df = read_results(grid_dir / RESULTS_FILE)
    dest = Path(dest) if dest else EXAMPLES / grid_dir.name
    if dest.exists():
        shutil.rmtree(dest)
    for rd, seed in zip(df["run_dir"], df["seed"]):
        if seeds is not None and int(seed) not in seeds:
            continue
        src = grid_dir / str(rd)
        for s in find_samples(src)[:samples]:  # the table holds the numbers: only images are copied
            target = dest / str(rd) / s.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, target)
    write_results(df, dest / RESULTS_FILE)
    if not (dest / RESULTS_FILE).is_file():
        raise ConfigError(f"{dest}: could not write the example table")
    return dest
