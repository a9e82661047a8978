"""The bundled examples (fusionlab/ablate/examples/<grid>/) match their grid files: the same
run ids, labels, seeds and parameters as expanding ablations/<grid>.yaml at the example's
preset. Editing a grid row without remaking its example fails here
(``fusionlab report ablations/<grid>.yaml --runs RUNS --example``)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from fusionlab.ablate import expand, load_grid, read_results
from fusionlab.ablate.demo import EXAMPLES
from fusionlab.ablate.stats import PAIRS_FILE
from support import REPO

EXAMPLE_DIRS = sorted(p for p in EXAMPLES.iterdir() if (p / "results.csv").is_file())


def test_there_are_examples():
    assert {p.name for p in EXAMPLE_DIRS} >= {"text_guidance"}


@pytest.mark.parametrize("example", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_example_matches_its_grid(example):
    grid = load_grid(REPO / "ablations" / f"{example.name}.yaml")
    df = read_results(example / "results.csv")
    presets = set(df["preset"].astype(str))
    assert len(presets) == 1, f"{example.name}: one preset per example, got {presets}"
    runs = expand(grid, presets.pop())
    want = {(r.run_id, r.label, int(r.seed), json.dumps(r.params, sort_keys=True)) for r in runs}
    have = {(str(i), str(lab), int(s), str(p)) for i, lab, s, p in zip(df["run_id"], df["label"], df["seed"], df["params"])}
    assert have == want, f"{example.name}: the example is stale; remake it from a grid run"
    if (example / PAIRS_FILE).is_file():  # per-pair results belong to runs of this table
        pairs = pd.read_csv(example / PAIRS_FILE)
        assert set(pairs["run_id"]) <= set(df["run_id"]) and len(pairs)
        ok = df[df["status"] == "ok"]
        assert set(pairs["run_id"]) == set(ok["run_id"])
