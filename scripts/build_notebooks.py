#!/usr/bin/env python
"""Build the walkthrough notebooks (notebooks/NN_*.ipynb) from readable sources.

Each notebook is written as a plain Python file in the "percent" format (the one jupytext
and VS Code understand) under ``scripts/notebook_src/``::

    # %% [markdown]
    # # A title
    # Some narrative.

    # %% tags=["parameters"]
    preset = "ci"

    # %%
    print("a code cell")

so notebooks are reviewed as diffs of Python, not of JSON. This script turns them into
``.ipynb`` files with nbformat: no outputs, stable cell ids (``<stem>-NN``), the ``python3``
kernelspec (papermill and nbval need one).

Usage::

    python scripts/build_notebooks.py            # (re)write notebooks/NN_*.ipynb
    python scripts/build_notebooks.py --check    # exit 1 if a notebook differs from its source
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "scripts" / "notebook_src"
OUT = REPO / "notebooks"

_HEADER = re.compile(r"^# %%(?P<rest>.*)$")
_TAGS = re.compile(r"tags\s*=\s*(\[[^\]]*\])")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def parse_percent(text: str) -> list[dict]:
    """Percent-format source -> ``[{"type": "code"|"markdown", "source": str, "tags": [...]}]``.

    Lines before the first ``# %%`` header are ignored (a module docstring for reviewers).
    Markdown cells drop the leading ``# `` of each line.
    """
    cells: list[dict] = []
    cur: dict | None = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            rest = m.group("rest")
            tags = []
            t = _TAGS.search(rest)
            if t:
                tags = [str(x) for x in ast.literal_eval(t.group(1))]
            cur = {"type": "markdown" if "[markdown]" in rest else "code", "lines": [], "tags": tags}
            cells.append(cur)
            continue
        if cur is not None:
            cur["lines"].append(line)
    out = []
    for c in cells:
        lines = c["lines"]
        if c["type"] == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln[1:] if ln.startswith("#") else ln for ln in lines]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if lines:
            out.append({"type": c["type"], "source": "\n".join(lines), "tags": c["tags"]})
    return out


def build_notebook(src: Path) -> nbformat.NotebookNode:
    """One source file -> a notebook without outputs (deterministic: same input, same bytes)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for i, c in enumerate(parse_percent(src.read_text())):
        cell_id = f"{src.stem.split('_')[0]}-{i:02d}"
        if c["type"] == "markdown":
            cell = nbformat.v4.new_markdown_cell(c["source"], id=cell_id)
        else:
            cell = nbformat.v4.new_code_cell(c["source"], id=cell_id)
        if c["tags"]:
            cell.metadata["tags"] = c["tags"]
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that notebooks match their sources")
    ap.add_argument("names", nargs="*", help="build only these sources (stems, e.g. 01_data_and_degradations)")
    args = ap.parse_args(argv)
    sources = sorted(SRC.glob("[0-9][0-9]_*.py"))
    if args.names:
        sources = [s for s in sources if s.stem in args.names or s.stem.split("_")[0] in args.names]
    if not sources:
        print(f"no notebook sources found in {SRC}", file=sys.stderr)
        return 1
    stale = []
    for src in sources:
        target = OUT / f"{src.stem}.ipynb"
        text = render(build_notebook(src))
        if args.check:
            if not target.is_file() or target.read_text() != text:
                stale.append(target.name)
            continue
        if not target.is_file() or target.read_text() != text:
            tmp = target.with_suffix(".ipynb.tmp")
            tmp.write_text(text)
            tmp.replace(target)  # atomic: a half-written notebook never lands
            print(f"wrote {target.relative_to(REPO)}")
    if stale:
        print(f"out of date (run python scripts/build_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
