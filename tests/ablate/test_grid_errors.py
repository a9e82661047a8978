"""Grid files: a good one is accepted; every bad one fails with one line naming the file and the
key (CLI and Python), and no path leaves the grid's folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from fusionlab import errors as E
from support import GOOD_GRID, assert_error

# one torch thread (fixture in conftest.py): tiny models on tiny images, a busy 2-core machine
pytestmark = pytest.mark.usefixtures("one_thread")


GRID_CASES = {
    # name: (replace old -> new in GOOD_GRID, or full text), regex of the error line
    "unknown_top_key": (("seeds: [0]", "seeds: [0]\ncolour: red"), r"colour: unknown key"),
    "unknown_param": (("{fusion: scfm}", "{fusoin: scfm}"), r"rows\[1\]\.params\.fusoin: unknown key"),
    "unknown_fusion": (("{fusion: scfm}", "{fusion: scmf}"), r"rows\[1\]\.params\.fusion = 'scmf': unknown fusion"),
    "bad_seed": (("seeds: [0]", "seeds: [-1]"), r"seeds = \[-1\]: expected a non-empty list of integers"),
    "bad_width": (("text_prior: oracle}", "text_prior: oracle, width: 0}"), r"base\.width = 0: expected an? "),
    "bad_stage": (("stage: teacher", "stage: teach"), r"base\.stage = 'teach': expected one of"),
    "bad_yaml": (("rows:", "rows: [\n"), r"invalid YAML at line \d+"),
    "not_a_mapping": ("- just\n- a list\n", r"must be a YAML mapping"),
    "duplicate_rows": (("{fusion: concat_conv1x1}", "{fusion: scfm}"), r"identical params"),
    "path_escape": (("text_prior: oracle}", "text_prior: oracle, data: ../../etc}"),
                    r"base\.data = '\.\./\.\./etc': a relative path may not leave"),
    "name_escape": (("name: rel_grid", "name: ../../outside"), r"name = '\.\./\.\./outside'"),
    "python_tag": (("description: reliability test grid",
                    "description: !!python/object/apply:os.system ['touch {marker}']"),
                   r"invalid YAML at line 2 \(could not determine a constructor"),
}


def _grid_text(case: str, marker: Path) -> str:
    change, _ = GRID_CASES[case]
    if isinstance(change, str):
        return change
    old, new = change
    assert old in GOOD_GRID
    return GOOD_GRID.replace(old, new.replace("{marker}", str(marker)), 1)


def test_good_grid_is_accepted(run_cli, tmp_path):
    (tmp_path / "g.yaml").write_text(GOOD_GRID)
    rc, out, err = run_cli("ablate", tmp_path / "g.yaml", "--dry-run", "--runs", tmp_path / "runs", "--preset", "ci")
    assert rc == 0, err
    assert "rel_grid [ci]: 2 runs" in out


@pytest.mark.parametrize("case", sorted(GRID_CASES))
def test_bad_grid_files(run_cli, tmp_path, case):
    from fusionlab.ablate import load_grid

    marker = tmp_path / "pwned"
    grid = tmp_path / "grids" / f"{case}.yaml"
    grid.parent.mkdir()
    grid.write_text(_grid_text(case, marker))
    what = GRID_CASES[case][1]
    res = run_cli("ablate", grid, "--dry-run", "--runs", tmp_path / "runs", "--preset", "ci")
    assert_error(res, 1, "ablate", grid, what=what)
    with pytest.raises(E.ConfigError, match=what):
        load_grid(grid)
    assert not marker.exists() and not (tmp_path / "runs").exists()


def test_grid_paths_cannot_escape(tmp_path, monkeypatch):
    """Relative paths resolve inside the grid's folder; '..' escapes and names with separators are refused."""
    from fusionlab.ablate import expand, parse_grid
    from fusionlab.ablate.grid import resolve_path

    base = {"name": "g", "rows": [{"label": "a", "params": {"data": "sub/data"}}]}
    grid = parse_grid(base, "g.yaml", tmp_path / "g.yaml")
    run = expand(grid, "ci")[0]
    assert run.resolved_params(grid)["data"] == str((tmp_path / "sub/data").resolve())
    for evil in ("../x", "a/../../x", "..", "sub/../../../etc/passwd"):
        with pytest.raises(E.ConfigError, match="may not leave"):
            parse_grid({**base, "rows": [{"label": "a", "params": {"caption_file": evil}}]}, "g.yaml",
                       tmp_path / "g.yaml")
        with pytest.raises(E.ConfigError, match="may not leave"):
            resolve_path(evil, grid, "data")
    for evil_name in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(E.ConfigError, match="name"):
            parse_grid({**base, "name": evil_name}, "g.yaml")
    monkeypatch.delenv("FUSIONLAB_NO_SUCH_VAR", raising=False)
    with pytest.raises(E.ConfigError, match="FUSIONLAB_NO_SUCH_VAR is not set"):
        resolve_path("$FUSIONLAB_NO_SUCH_VAR/data", grid, "data")
