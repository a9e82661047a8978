"""The walkthrough notebooks and their sources (scripts/notebook_src, scripts/build_notebooks.py);
nbval itself runs the notebooks (make test)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support import REPO


WALKTHROUGHS = ["00_quickstart", "01_data_and_degradations", "02_metrics_explained", "03_teacher_and_text_priors",
                "04_distillation", "05_efficiency", "06_ablations"]


def _load_build():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_notebooks
    finally:
        sys.path.pop(0)
    return build_notebooks


def test_parse_percent_format():
    b = _load_build()
    cells = b.parse_percent('"""doc"""\n# %% [markdown]\n# # Title\n# text\n\n# %% tags=["parameters"]\nx = 1\n\n'
                            '# %%\n# a comment\nprint(x)\n')
    assert [c["type"] for c in cells] == ["markdown", "code", "code"]
    assert cells[0]["source"] == "# Title\ntext" and cells[1]["tags"] == ["parameters"]
    assert cells[2]["source"] == "# a comment\nprint(x)"


def test_notebooks_are_built_from_their_sources():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "build_notebooks.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", WALKTHROUGHS)
def test_walkthrough_notebook_structure(name):
    path = REPO / "notebooks" / f"{name}.ipynb"
    if not path.is_file():
        pytest.skip(f"{path.name} not written yet")
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one papermill parameters cell"
    assert "FUSIONLAB_PRESET" in "".join(params[0]["source"])
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "stored without outputs"
    assert nb["cells"][0]["cell_type"] == "markdown" and "".join(nb["cells"][0]["source"]).startswith("# ")


def _code_cells(name):
    nb = json.loads((REPO / "notebooks" / f"{name}.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("name", WALKTHROUGHS)
def test_walkthroughs_check_with_asserts_not_markers(name):
    # notebooks are stored without outputs, so nbval compares nothing: the checks are asserts
    code = "\n".join(_code_cells(name))
    assert "NBVAL_" not in code, "NBVAL markers do nothing in output-free notebooks; use asserts"
    assert "\nassert " in "\n" + code, f"{name} checks nothing: add asserts next to the numbers it prints"


def test_a_changed_expected_value_fails_the_notebook_check():
    """The fixed-pair cell of 01 passes as stored and fails when one expected value is edited
    (what `make test` would report for a changed number)."""
    cell = next(c for c in _code_cells("01_data_and_degradations") if '"IR mean": 0.360' in c)
    exec(compile(cell, "01-fixed-pair", "exec"), {"__name__": "nb"})
    with pytest.raises(AssertionError, match="IR mean"):
        exec(compile(cell.replace('"IR mean": 0.360', '"IR mean": 0.370'), "01-edited", "exec"), {"__name__": "nb"})
