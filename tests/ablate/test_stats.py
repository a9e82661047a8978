"""Paired bootstrap intervals, verdicts and "clearly best" on synthetic per-pair results
(fusionlab.ablate.stats): the logic the shipped reports' conclusions rest on."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fusionlab.ablate.report import best_rows, condition_table, evidence
from fusionlab.ablate.stats import (clear_best, crossed_bootstrap, detectable_effect, evidence_table,
                                    format_evidence, paired_difference, verdict)

CONDITIONS = ("normal", "low_light", "ir_noise")


def _pairs(effects: dict[str, float], noise: float = 0.05, seeds=(0, 1, 2), n_pairs: int = 8,
           degraded_effects: dict[str, float] | None = None, rng_seed: int = 0) -> pd.DataFrame:
    """Per-pair table: VIF = pair difficulty + seed offset + row effect + noise."""
    rng = np.random.default_rng(rng_seed)
    pair_level = rng.normal(0.8, 0.2, n_pairs)
    recs = []
    for row, (label, eff) in enumerate(effects.items()):
        for s in seeds:
            offset = rng.normal(0, noise)
            for p in range(n_pairs):
                for c in CONDITIONS:
                    e = eff if c == "normal" else (degraded_effects or effects)[label]
                    recs.append({"run_id": f"{label}{s}", "row": row, "label": label, "seed": s, "pair": f"p{p}",
                                 "condition": c, "VIF": pair_level[p] + offset + e + rng.normal(0, noise)})
    return pd.DataFrame(recs)


def _results(pairs: pd.DataFrame, paper: dict[str, float], reference: str) -> pd.DataFrame:
    clean = pairs[pairs["condition"] == "normal"]
    runs = clean.groupby(["run_id", "row", "label", "seed"], as_index=False)["VIF"].mean()
    runs["status"], runs["reference"] = "ok", runs["label"] == reference
    runs["paper_VIF"] = runs["label"].map(paper)
    runs["run_dir"] = runs["run_id"]
    return runs


def test_verdict_rules():
    assert verdict(0.01, 0.05, 0.08) == "agrees"
    assert verdict(-0.05, -0.01, -0.08) == "agrees"
    assert verdict(0.01, 0.05, -0.08) == "opposite"
    assert verdict(-0.01, 0.05, 0.08) == "inconclusive"  # the interval contains 0
    assert verdict(math.nan, math.nan, 0.08) == "inconclusive"
    assert verdict(0.01, 0.05, None) == verdict(0.01, 0.05, math.nan) == "no paper value"
    assert verdict(0.01, 0.05, 0.0) == "no paper value"  # a zero paper difference has no direction


def test_bootstrap_is_deterministic_and_covers_the_mean():
    diff = _pairs({"a": 0.1, "ref": 0.0}).pipe(
        lambda d: d[d.condition == "normal"].set_index(["label", "seed", "pair"])["VIF"])
    d = (diff["a"] - diff["ref"])
    lo, hi = crossed_bootstrap(d, n_boot=500, seed=3)
    assert (lo, hi) == crossed_bootstrap(d, n_boot=500, seed=3)  # same seed, same interval
    assert lo < d.mean() < hi and lo > 0  # a true effect of 0.1 with noise 0.05 is detected


def test_paired_difference_detects_real_effects_and_not_noise():
    pairs = _pairs({"worse": -0.1, "same": 0.0, "ref": 0.0}, degraded_effects={"worse": -0.1, "same": 0.0, "ref": 0.3})
    worse = paired_difference(pairs, "worse", "ref", "VIF", "normal", n_boot=500)
    assert worse["units"] == 24 and worse["delta"] == pytest.approx(-0.1, abs=0.04) and worse["hi"] < 0
    same = paired_difference(pairs, "same", "ref", "VIF", "normal", n_boot=500)
    assert same["lo"] < 0 < same["hi"]  # no effect: the interval contains 0
    # degraded = the mean over the degraded conditions: there the reference is 0.3 better
    deg = paired_difference(pairs, "same", "ref", "VIF", "degraded", n_boot=500)
    assert deg["delta"] == pytest.approx(-0.3, abs=0.04) and deg["hi"] < 0 and deg["units"] == 24


def test_evidence_table_verdicts_and_detectable_effect():
    pairs = _pairs({"worse": -0.1, "same": 0.0, "flipped": 0.2, "ref": 0.0})
    paper = {"worse": 0.9, "same": 0.95, "flipped": 0.9, "ref": 1.0}
    ev = evidence_table(_results(pairs, paper, "ref"), pairs, ["VIF"], "ref", n_boot=500)
    v = ev[ev.condition == "normal"].set_index("label")["verdict"].to_dict()
    assert v == {"worse": "agrees", "same": "inconclusive", "flipped": "opposite", "ref": "reference"}
    assert ev[ev.condition == "degraded"]["paper_delta"].isna().all()  # the paper has no degraded numbers
    row = ev[(ev.label == "worse") & (ev.condition == "normal")].iloc[0]
    assert row["seeds"] == 3 and row["paper_delta"] == pytest.approx(-0.1) and row["lo"] < row["delta"] < row["hi"]
    half = detectable_effect(ev).set_index(["condition", "metric"])["half_width"]
    assert 0 < half[("normal", "VIF")] < 0.1
    text = format_evidence(ev)
    assert text.loc[0, "Δ to reference [95 % CI]"].startswith("-0.1") and "±" in text.loc[0, "mean ± std"]


def test_bold_only_when_the_best_row_is_clearly_best():
    clear = _pairs({"a": 0.0, "b": 0.05, "best": 0.3})
    assert clear_best(clear, ["a", "b", "best"], "VIF", n_boot=500) == "best"
    noisy = _pairs({"a": 0.0, "b": 0.01, "c": 0.0}, noise=0.1)
    assert clear_best(noisy, ["a", "b", "c"], "VIF", n_boot=500) is None  # inside the noise: nothing bold
    assert clear_best(clear, ["a", "b", "best"], "VIF", lower_is_better=True, n_boot=500) is None
    res = _results(noisy, {}, "c")
    assert best_rows(res, ["VIF"], noisy) == {}


def test_report_helpers_on_per_pair_tables():
    pairs = _pairs({"a": -0.2, "ref": 0.0})
    res = _results(pairs, {"a": 0.9, "ref": 1.0}, "ref")
    ev = evidence(res, pairs, ["VIF"])
    assert set(ev["condition"]) == {"normal", "degraded"}
    assert ev[(ev.label == "a") & (ev.condition == "normal")]["verdict"].item() == "agrees"
    runs_only = evidence(res, None, ["VIF"])  # no pairs.csv: run means, seeds only, clean only
    assert set(runs_only["condition"]) == {"normal"}
    t = condition_table(res, pairs, "VIF")
    assert list(t.columns) == ["clean", "low_light", "ir_noise", "degraded"] and list(t.index) == ["a", "ref"]
    assert "±" in t.loc["a", "clean"]
