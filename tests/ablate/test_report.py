"""The ablation report: paper tables with the best value in bold, the figures, run views and the
HTML report (fusionlab.ablate.report / views, drawn with fusionlab.viz)."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from fusionlab.ablate import (RunCompare, best_rows, compare_runs_figure, delta_plot, metric_plot, paper_table,  # noqa: E402
                              read_results, render_report, run_grid, seed_deltas, show_run, style_paper_table)
from fusionlab.ablate.demo import bundle_example, locate_results  # noqa: E402
from fusionlab.errors import ConfigError  # noqa: E402
from fusionlab.viz import find_samples  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _results() -> pd.DataFrame:
    recs = []
    for i, (label, ref, en, paper) in enumerate([("a", False, [6.0, 6.2], 6.70), ("ref", True, [6.5, 6.6], 6.75)]):
        for seed, v in enumerate(en):
            recs.append({"run_id": f"{label}{seed}", "row": i, "label": label, "seed": seed, "status": "ok",
                         "reference": ref, "EN": v, "VIF": v / 6, "paper_EN": paper, "paper_VIF": paper / 6,
                         "run_dir": f"{label}{seed}"})
    return pd.DataFrame(recs)


def test_metric_and_delta_plots():
    df = _results()
    fig = metric_plot(df)
    assert [ax.get_title() for ax in fig.axes] == ["EN", "VIF"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "ref"]
    d = seed_deltas(df)
    en = d[d["metric"] == "EN"]
    assert sorted(en[(en["label"] == "a") & (en["source"] == "measured")]["delta"]) == pytest.approx([-0.5, -0.4])
    assert en[(en["label"] == "a") & (en["source"] == "paper")]["delta"].item() == pytest.approx(-0.05)
    fig = delta_plot(df)
    assert fig.axes[0].get_title() == "ΔEN vs 'ref'" and len(fig.axes[0].patches) >= 2


def test_grid_report_viewer_and_html(tmp_path):
    out = run_grid(FIXTURES / "fake_grid.yaml", preset="ci", runs_dir=tmp_path, notebook=FIXTURES / "fake_run.ipynb",
                   progress=False)
    grid_dir = out.grid_dir
    df = read_results(out.results_path)
    assert [p.name for p in find_samples(grid_dir / df["run_dir"][0])] == ["syn_00000.png"]
    table, fig = show_run(grid_dir / df["run_dir"][0])
    assert table.loc["EN", "value"] == pytest.approx(df["EN"][0]) and fig is not None
    rc = RunCompare(df, grid_dir)
    assert rc.compare.a.value == "variant A · seed 0" and rc.compare.b.value == "variant B · seed 0"  # vs reference
    assert len(rc.compare.a.options) == 4 and rc.samples == ["syn_00000.png"]
    assert base64.b64decode(rc._repr_mimebundle_()["image/png"])[:4] == b"\x89PNG"  # HTML exports show it
    assert compare_runs_figure(df, grid_dir) is not None

    html = render_report(FIXTURES / "fake_grid.yaml", runs_dir=tmp_path, out=tmp_path / "report.html")
    text = html.read_text()
    assert "fake_grid: Fixture table" in text and "Bundled example" not in text
    assert "6.750" in text and "variant B" in text and "± " in text  # paper number and measured mean ± std
    # at the floors (ipykernel 6.5: IPython 7, jupyter_client 7) each base64 payload ends with a
    # newline (binascii.b2a_base64), which browsers ignore in a URL: allow whitespace
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"', text)
    assert len(pngs) >= 3  # metric plot, delta plot, fused-image comparison
    assert all(base64.b64decode(p, validate=False)[:4] == b"\x89PNG" for p in pngs)
    assert (tmp_path / "report.ipynb").is_file() and "def " not in text.split("<body", 1)[1][:2000]

    # the bundled-example fallback: used only when there are no results, and labelled
    ex = bundle_example(grid_dir, tmp_path / "examples" / "fake_grid")
    assert sorted(p.name for p in ex.iterdir() if p.is_file()) == ["results.csv"]
    assert len(list(ex.rglob("syn_00000.png"))) == 4 and not list(ex.rglob("run.ipynb"))
    assert locate_results("fake_grid", tmp_path) == (tmp_path / "fake_grid", False)
    with pytest.raises(ConfigError, match="no results"):
        locate_results("fake_grid", tmp_path / "nothing", example_fallback=False)


def test_best_value_is_the_lowest_for_lower_is_better_metrics():
    """Nabf and MSE are better when lower (read from the metrics registry): the table bolds the lowest."""
    df = _results()
    df["Nabf"], df["paper_Nabf"] = [0.02, 0.03, 0.20, 0.30], 0.1
    df["MSE"], df["paper_MSE"] = [900.0, 950.0, 400.0, 420.0], 500.0
    best = best_rows(df, ["EN", "Nabf", "MSE"])
    assert best == {"EN": "ref", "Nabf": "a", "MSE": "ref"}
    html = style_paper_table(paper_table(df, ["EN", "Nabf", "MSE"]), df, ["EN", "Nabf", "MSE"]).to_html()
    selectors = " ".join(re.findall(r"([^{}]+)\{[^}]*font-weight: bold", html))
    cols = list(paper_table(df, ["EN", "Nabf", "MSE"]).columns)
    bold = {(cols[int(c)], int(r)) for r, c in re.findall(r"_row(\d+)_col(\d+)", selectors)}
    assert bold == {("EN", 1), ("Nabf", 0), ("MSE", 1)}  # rows: 0 = "a", 1 = "ref"


def test_report_markdown_prints_the_evidence_of_the_shipped_example(tmp_path, capsys):
    """`fusionlab report GRID --runs DIR --markdown`: one line per row x condition x metric, the
    reference row marked, numbers equal to :func:`evidence`; a missing grid folder is one error."""
    from pathlib import Path

    import fusionlab.ablate
    from fusionlab.ablate import evidence, read_pairs, read_results
    from fusionlab.cli import main

    example = Path(fusionlab.ablate.__file__).parent / "examples" / "text_guidance"
    (tmp_path / "text_guidance").symlink_to(example)
    assert main(["report", "text_guidance", "--runs", str(tmp_path), "--markdown"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    table = evidence(read_results(example / "results.csv"), read_pairs(example / "pairs.csv"),
                     ["EN", "VIF", "Qabf"])
    assert len(lines) == 2 + len(table)
    ref = [ln for ln in lines if ln.endswith("| reference |")]
    assert len(ref) == len(table[table["verdict"] == "reference"])
    first = table.iloc[0]
    assert f"{first['mean']:.3f} ± {first['std']:.3f}" in lines[2]
    assert main(["report", "text_guidance", "--runs", str(tmp_path / "none"), "--markdown"]) != 0
    assert "no results" in capsys.readouterr().err
