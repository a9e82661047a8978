"""The walkthrough notebooks and their sources (scripts/notebook_src, scripts/build_notebooks.py);
nbval itself runs the notebooks (make test)."""
from __future__ import annotations

import json
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


def test_notebooks_are_built_from_their_sources(capsys):
    assert _load_build().main(["--check"]) == 0, capsys.readouterr().err


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


# ----------------------------------------------------------------------------- two-way pairing
NINE = WALKTHROUGHS + ["ablation_report", "run_experiment"]


def test_every_notebook_has_a_source():
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    sources = sorted(p.stem for p in (REPO / "scripts" / "notebook_src").glob("*.py"))
    assert notebooks == sources == sorted(NINE)


@pytest.fixture
def pair_dirs(tmp_path, monkeypatch):
    """A scratch copy of two pairs (a walkthrough with positional ids, run_experiment with
    JupyterLab's random ids); the builder's folders point at it."""
    import shutil

    b = _load_build()
    src, out = tmp_path / "src", tmp_path / "nb"
    src.mkdir(), out.mkdir()
    for stem in ("00_quickstart", "run_experiment"):
        shutil.copy(REPO / "scripts" / "notebook_src" / f"{stem}.py", src)
        shutil.copy(REPO / "notebooks" / f"{stem}.ipynb", out)
    monkeypatch.setattr(b, "SRC", src)
    monkeypatch.setattr(b, "OUT", out)
    monkeypatch.setattr(b, "REPO", tmp_path)
    assert b.main(["--check"]) == 0
    return b, src, out


def _touch_newer(newer, older):
    import os

    t = older.stat().st_mtime
    os.utime(newer, (t + 10, t + 10))


def test_notebook_edit_flows_back_to_source(pair_dirs):
    import nbformat

    b, src, out = pair_dirs
    nb_path = out / "run_experiment.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    ids_before = [c.id for c in nb.cells]
    # what a JupyterLab session leaves: an edited cell, outputs, execution metadata, a new cell
    code = next(c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
    code.source += "\nprint('edited in JupyterLab')"
    code.outputs = [nbformat.v4.new_output("stream", text="hi\n")]
    code.execution_count = 3
    code.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    new = nbformat.v4.new_markdown_cell("## A note added in the lab", id="labcell1")
    nb.cells.insert(2, new)
    nbformat.write(nb, nb_path)
    _touch_newer(nb_path, src / "run_experiment.py")
    assert b.main(["--check"]) == 1

    assert b.main(["--sync"]) == 0
    text = (src / "run_experiment.py").read_text()
    assert "print('edited in JupyterLab')" in text
    assert '# %% [markdown] id="labcell1"\n# ## A note added in the lab' in text
    assert "iopub" not in text and text.startswith('"""Source of notebooks/run_experiment.ipynb')
    rebuilt = nbformat.read(nb_path, as_version=4)
    assert [c.id for c in rebuilt.cells] == ids_before[:2] + ["labcell1"] + ids_before[2:]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in rebuilt.cells if c.cell_type == "code")
    assert all("execution" not in c.metadata for c in rebuilt.cells)
    assert rebuilt.cells[1].metadata["tags"] == ["parameters"]
    assert b.main(["--check"]) == 0
    assert b.main(["--sync"]) == 0 and (src / "run_experiment.py").read_text() == text  # a no-op now


def test_source_edit_flows_to_notebook_with_stable_ids(pair_dirs):
    import nbformat

    b, src, out = pair_dirs
    src_path, nb_path = src / "00_quickstart.py", out / "00_quickstart.ipynb"
    before = nbformat.read(nb_path, as_version=4)
    text = src_path.read_text()
    # edit one cell's text and insert a new cell near the top (no id in the source)
    text = text.replace("# # 00 · Quickstart", "# # 00 · Quickstart (edited)", 1)
    first_code = text.index('# %% tags=["parameters"]')
    text = text[:first_code] + "# %%\nprint('a new cell')\n\n" + text[first_code:]
    src_path.write_text(text)
    _touch_newer(src_path, nb_path)

    assert b.main(["--sync"]) == 0
    after = nbformat.read(nb_path, as_version=4)
    assert "(edited)" in after.cells[0].source and after.cells[1].source == "print('a new cell')"
    assert after.cells[0].id == before.cells[0].id  # an edited cell keeps its id
    assert [c.id for c in after.cells[2:]] == [c.id for c in before.cells[1:]]  # shifted cells keep theirs
    assert len({c.id for c in after.cells}) == len(after.cells)
    assert b.main(["--check"]) == 0
    assert src_path.read_text() == text  # the build did not touch the source

    # notebook -> source keeps the ids that now differ from the positional default
    assert b.main(["--from-notebooks", "00"]) == 0
    exported = src_path.read_text()
    assert f'# %% id="{after.cells[1].id}"' in exported and '# %% id="00-01" tags=["parameters"]' in exported
    assert b.main(["--check"]) == 0
    nb_path.unlink()  # a fresh build from the source alone gives the same ids
    assert b.main([]) == 0
    assert [c.id for c in nbformat.read(nb_path, as_version=4).cells] == [c.id for c in after.cells]


def test_check_names_a_notebook_without_source(pair_dirs):
    import shutil

    b, src, out = pair_dirs
    shutil.copy(REPO / "notebooks" / "ablation_report.ipynb", out)
    assert b.main(["--check"]) == 1
    assert b.main(["--from-notebooks", "ablation_report"]) == 0
    assert "# %matplotlib inline" in (src / "ablation_report.py").read_text()  # magics stay runnable Python
    assert b.main(["--check"]) == 0
    assert (out / "ablation_report.ipynb").read_text() == (REPO / "notebooks" / "ablation_report.ipynb").read_text()


# ----------------------------------------------------------------------------- rendered pages
def test_render_pages_with_pictures(tmp_path, monkeypatch):
    """scripts/render_notebooks.py without a kernel: execution is replaced by a notebook as
    papermill leaves it (a widget bundle + stored widget state, a big matplotlib PNG)."""
    import base64
    import io
    import re

    import nbformat
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import render_notebooks as r
    finally:
        sys.path.pop(0)
    src = tmp_path / "nb"
    src.mkdir()
    for stem in ("00_tiny", "01_other"):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {stem}")]), src / f"{stem}.ipynb")
    monkeypatch.setattr(r, "NOTEBOOKS", src)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 1600, 3), dtype=np.uint8)).save(buf, "PNG")
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    view = {"model_id": "m1", "version_major": 2, "version_minor": 0}

    def fake_execute(nb_path, out_path, preset, timeout, kernel):
        nb = nbformat.read(nb_path, as_version=4)
        cell = nbformat.v4.new_code_cell("show(widget)")
        cell.outputs = [nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": view, "image/png": png, "text/plain": "widget"})]
        nb.cells.append(cell)
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
            "version_major": 2, "version_minor": 0, "state": {"m1": {"model_name": "VBoxModel", "state": {}}}}}
        nbformat.write(nb, out_path)
        return 1.5, None

    monkeypatch.setattr(r, "execute", fake_execute)
    out = tmp_path / "pages"
    assert r.main(["00", "--preset", "ci", "--out", str(out), "--max-side", "800"]) == 0
    html = (out / "00_tiny.html").read_text()
    pngs = re.findall(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(pngs) == 1 and Image.open(io.BytesIO(base64.b64decode(pngs[0]))).size == (800, 200)
    assert '<link rel="stylesheet" href="notebook.css">' in html and len(html) < 60_000 + len(pngs[0])
    assert ".jp-Notebook" in (out / "notebook.css").read_text()
    assert r.main(["01", "--preset", "ci", "--out", str(out)]) == 0  # a second subset adds its row
    index = (out / "README.md").read_text()
    assert "[00_tiny.html](00_tiny.html)" in index and "[01_other.html](01_other.html)" in index
    with pytest.raises(SystemExit, match="no walkthrough named 07"):
        r.main(["07", "--out", str(out)])


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
