"""Evidence from a grid: per-pair results, paired bootstrap intervals and verdicts.

A run's ``metrics.json`` holds one row per evaluation item (test pair x condition,
``per_image``). :func:`collect_pairs` gathers them for a whole grid into ``pairs.csv``
(beside ``results.csv``). From that table:

* :func:`paired_difference` -> the difference of one row to the reference row, paired by
  (seed, test pair): for every seed and pair the row's metric minus the reference's
  (conditions averaged within the unit, e.g. the four degradations of ``degraded``), its
  mean, and a 95 % bootstrap interval that resamples seeds and pairs independently (a
  crossed bootstrap: both the training randomness and the choice of test pairs vary);
* :func:`verdict` -> ``agrees`` / ``opposite`` (the interval excludes 0 and the sign is the
  paper's / the other one), ``inconclusive`` (the interval contains 0) or ``no paper value``
  (``not run`` for a row without finished runs);
* :func:`evidence_table` -> one line per (row, condition, metric): mean +- std over seeds,
  the paired difference with its interval, the paper's difference and the verdict;
* :func:`detectable_effect` -> the median half-width of the intervals: differences smaller
  than that are inside this preset's noise;
* :func:`clear_best` -> the row that beats every other row with intervals excluding 0
  (None when no row does: then nothing is bold).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .runner import METRICS_FILE, run_state

PAIRS_FILE = "pairs.csv"
#: the conditions of the report: clean pairs and the mean over the four degradations
REPORT_CONDITIONS = ("normal", "degraded")
DEGRADED = "degraded"
N_BOOT = 2000
VERDICTS = ("agrees", "opposite", "inconclusive", "no paper value", "not run")


# ----------------------------------------------------------------------------- per-pair table
def collect_pairs(runs, grid_dir: str | os.PathLike) -> pd.DataFrame:
    """Long table of every complete run's per-item metrics: ``run_id, row, label, seed,
    pair, condition`` + one column per metric (``condition`` = the degradation label of the
    item, ``normal`` for the clean pair)."""
    recs = []
    for run in runs:
        d = Path(grid_dir) / run.run_id
        if run_state(d) != "complete":
            continue
        try:
            data = json.loads((d / METRICS_FILE).read_text())
        except (OSError, ValueError):
            continue
        for r in data.get("per_image") or []:
            vals = {k: v for k, v in r.items() if k not in ("name", "pair", "label") and isinstance(v, (int, float))}
            recs.append({"run_id": run.run_id, "row": run.row, "label": run.label, "seed": run.seed,
                         "pair": r.get("pair", r.get("name")), "condition": r.get("label", "normal"), **vals})
    return pd.DataFrame.from_records(recs)


def read_pairs(path: str | os.PathLike) -> pd.DataFrame | None:
    """``pairs.csv`` as a DataFrame, or None when absent (older grids: no intervals)."""
    p = Path(path)
    return pd.read_csv(p) if p.is_file() else None


def _units(pairs: pd.DataFrame, label: str, metric: str, condition: str) -> pd.Series:
    """Metric per (seed, pair) unit of one row; ``degraded`` averages the degraded conditions."""
    d = pairs[pairs["label"] == label]
    d = d[d["condition"] != "normal"] if condition == DEGRADED else d[d["condition"] == condition]
    return d.groupby(["seed", "pair"])[metric].mean()


# ----------------------------------------------------------------------------- bootstrap
def crossed_bootstrap(diff: pd.Series, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of ``diff`` (index ``(seed, pair)``), resampling the
    seeds and the pairs independently with replacement (every resampled seed x resampled
    pair cell enters the mean). Deterministic for a given ``seed``."""
    table = diff.unstack("pair")  # seeds x pairs
    vals = table.to_numpy(dtype=float)
    if vals.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    ns, npairs = vals.shape
    si = rng.integers(0, ns, size=(n_boot, ns))
    pi = rng.integers(0, npairs, size=(n_boot, npairs))
    means = np.array([np.nanmean(vals[np.ix_(a, b)]) for a, b in zip(si, pi)])
    alpha = (1.0 - level) / 2
    return float(np.nanquantile(means, alpha)), float(np.nanquantile(means, 1 - alpha))


def paired_difference(pairs: pd.DataFrame, label: str, reference: str, metric: str, condition: str = "normal",
                      n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """``label`` minus ``reference`` on ``metric``, paired by (seed, pair).

    Returns ``{delta, lo, hi, units}``: the mean difference over the shared units, its 95 %
    crossed-bootstrap interval (:func:`crossed_bootstrap`) and the number of units.
    """
    a, b = _units(pairs, label, metric, condition), _units(pairs, reference, metric, condition)
    diff = (a - b).dropna()
    if diff.empty:
        return {"delta": math.nan, "lo": math.nan, "hi": math.nan, "units": 0}
    lo, hi = crossed_bootstrap(diff, n_boot, seed)
    return {"delta": float(diff.mean()), "lo": lo, "hi": hi, "units": int(len(diff))}


def verdict(lo: float, hi: float, paper_delta: float | None) -> str:
    """Compare a measured interval with the paper's difference (both "row minus reference",
    higher-is-better metrics): ``inconclusive`` when the interval contains 0 (or is NaN),
    else ``agrees`` / ``opposite`` by sign; ``no paper value`` when the paper has no
    difference for this row (or reports none: a paper difference of exactly 0 has no
    direction)."""
    if paper_delta is None or (isinstance(paper_delta, float) and math.isnan(paper_delta)) or paper_delta == 0:
        return "no paper value"
    if math.isnan(lo) or math.isnan(hi) or lo <= 0.0 <= hi:
        return "inconclusive"
    return "agrees" if (lo > 0) == (paper_delta > 0) else "opposite"


# ----------------------------------------------------------------------------- tables
def _paper_values(results: pd.DataFrame, metric: str) -> dict[str, float]:
    col = f"paper_{metric}"
    if col not in results.columns:
        return {}
    s = pd.to_numeric(results.drop_duplicates("label").set_index("label")[col], errors="coerce")
    return {k: float(v) for k, v in s.items() if not math.isnan(v)}


def evidence_table(results: pd.DataFrame, pairs: pd.DataFrame, metrics: Sequence[str], reference: str,
                   conditions: Sequence[str] = REPORT_CONDITIONS, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """One line per (row label, condition, metric), rows in grid order.

    Columns: ``label, condition, metric, mean, std, seeds`` (mean and std over seeds of the
    run means on that condition), ``delta, lo, hi, units`` (paired difference to
    ``reference``; NaN on the reference row), ``paper_delta`` (the paper's difference,
    clean condition only: the paper reports no degraded numbers) and ``verdict``.
    """
    order = list(results.sort_values(["row", "label"], kind="stable")["label"].drop_duplicates())
    recs = []
    for m in metrics:
        paper = _paper_values(results, m)
        for cond in conditions:
            for label in order:
                units = _units(pairs, label, m, cond)
                per_seed = units.groupby("seed").mean()
                rec = {"label": label, "condition": cond, "metric": m, "mean": float(per_seed.mean()) if len(per_seed)
                       else math.nan, "std": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else math.nan,
                       "seeds": int(len(per_seed))}
                if label == reference:
                    rec.update(delta=math.nan, lo=math.nan, hi=math.nan, units=int(len(units)), paper_delta=math.nan,
                               verdict="reference")
                else:
                    rec.update(paired_difference(pairs, label, reference, m, cond, n_boot, seed))
                    pd_ = (paper[label] - paper[reference]) if cond == "normal" and label in paper and reference in paper \
                        else math.nan
                    rec["paper_delta"] = pd_
                    # a row without finished runs (e.g. skipped at this preset) has no evidence at all
                    rec["verdict"] = verdict(rec["lo"], rec["hi"], pd_) if len(units) else "not run"
                recs.append(rec)
    return pd.DataFrame.from_records(recs)


def detectable_effect(evidence: pd.DataFrame) -> pd.DataFrame:
    """Per (condition, metric): the median half-width of the rows' intervals, i.e. roughly
    the smallest difference to the reference this preset can tell from noise."""
    e = evidence.dropna(subset=["lo", "hi"])
    e = e.assign(half_width=(e["hi"] - e["lo"]) / 2)
    return e.groupby(["condition", "metric"], sort=False)["half_width"].median().reset_index()


def clear_best(pairs: pd.DataFrame, labels: Sequence[str], metric: str, condition: str = "normal",
               lower_is_better: bool = False, n_boot: int = N_BOOT, seed: int = 0) -> str | None:
    """The row with the best mean whose paired interval against EVERY other row excludes 0
    in its favour; None when no row is clearly best (then no cell is bold)."""
    means = {lab: _units(pairs, lab, metric, condition).mean() for lab in labels}
    means = {k: v for k, v in means.items() if not math.isnan(v)}
    if len(means) < 2:
        return None
    best = (min if lower_is_better else max)(means, key=means.get)
    for other in means:
        if other == best:
            continue
        d = paired_difference(pairs, best, other, metric, condition, n_boot, seed)
        if lower_is_better and not d["hi"] < 0 or not lower_is_better and not d["lo"] > 0:
            return None
    return best


def format_evidence(evidence: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The evidence table as strings: ``mean ± std``, ``Δ [lo, hi]``, paper Δ, verdict."""
    def num(v):
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.{digits}f}"

    out = pd.DataFrame({
        "variant": evidence["label"], "condition": evidence["condition"], "metric": evidence["metric"],
        "mean ± std": [("–" if math.isnan(m) else f"{m:.{digits}f}" + ("" if math.isnan(s) else f" ± {s:.{digits}f}"))
                       for m, s in zip(evidence["mean"], evidence["std"])],
        "seeds": evidence["seeds"],
        "Δ to reference [95 % CI]": [("–" if math.isnan(d) else f"{num(d)} [{num(lo)}, {num(hi)}]")
                                     for d, lo, hi in zip(evidence["delta"], evidence["lo"], evidence["hi"])],
        "paper Δ": [num(v) for v in evidence["paper_delta"]],
        "verdict": evidence["verdict"],
    })
    return out
