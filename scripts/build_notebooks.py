#!/usr/bin/env python
"""Keep the notebooks (notebooks/*.ipynb) and their readable sources paired, both ways.

Every notebook has a source in the jupytext "percent" format (the one jupytext, VS Code and
PyCharm open as a notebook) under ``scripts/notebook_src/<stem>.py``::

    \"\"\"Optional module docstring for reviewers (kept, never a cell).\"\"\"

    # %% [markdown]
    # # A title
    # Some narrative.

    # %% tags=["parameters"]
    preset = "ci"

    # %%
    print("a code cell")

so notebooks are reviewed as diffs of Python, not of JSON. jupytext reads and writes the
cells; this script adds what jupytext leaves out: stored notebooks have no outputs, the
``python3`` kernelspec (papermill and nbval need one) and stable cell ids.

Cell ids: a header may name its id (``# %% id="9439aff8"``); a cell without one keeps the id
of the same cell in the current notebook (cells are matched by content, an edited cell by
position among its neighbours), and a new cell gets ``<prefix>-<index>`` (``03-07``). Going
back, a source names an id only where it differs from that positional default, so the
walkthrough sources stay free of ids.

Usage::

    python scripts/build_notebooks.py                  # sources -> notebooks (rewrite changed ones)
    python scripts/build_notebooks.py --check          # exit 1 if a notebook and its source differ
    python scripts/build_notebooks.py --from-notebooks # notebooks -> sources (after editing in JupyterLab)
    python scripts/build_notebooks.py --sync           # per pair, the newer file (mtime) wins
    python scripts/build_notebooks.py --sync 03 run_experiment   # only these (stem or NN prefix)

After ``--from-notebooks``/``--sync`` the notebook is rewritten from its new source too, so
outputs and volatile metadata (execution times, collapsed/scrolled) are dropped.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import hashlib
import os
import re
import sys
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "scripts" / "notebook_src"
OUT = REPO / "notebooks"

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# jupytext writes no YAML header: the notebook metadata is fixed here (KERNELSPEC).
TEXT_FORMAT = {"extension": ".py", "format_name": "percent", "notebook_metadata_filter": "-all",
               "cell_metadata_filter": "all"}
# Cell metadata that records a session, not content (JupyterLab, papermill, VS Code).
VOLATILE_CELL_METADATA = {"execution", "ExecuteTime", "collapsed", "scrolled", "jupyter", "papermill", "vscode",
                          "trusted"}
_CELL_HEADER = re.compile(r"^# %%", re.M)


# ----------------------------------------------------------------------------- sources
def split_preamble(text: str) -> tuple[str, str]:
    """Source text -> ``(preamble, cells)``: everything before the first ``# %%`` header (a
    module docstring for reviewers, never a cell) and the rest."""
    m = _CELL_HEADER.search(text)
    if m is None:
        return text, ""
    return text[:m.start()], text[m.start():]


def default_preamble(stem: str) -> str:
    return f'"""Source of notebooks/{stem}.ipynb (build/sync with scripts/build_notebooks.py)."""\n\n'


def id_prefix(stem: str) -> str:
    """``03_teacher_and_text_priors`` -> ``03``; ``run_experiment`` -> ``run_experiment``."""
    head = stem.split("_")[0]
    return head if head.isdigit() else stem


def positional_id(stem: str, index: int) -> str:
    return f"{id_prefix(stem)}-{index:02d}"


def parse_percent(text: str) -> list[dict]:
    """Percent-format source -> ``[{"type": "code"|"markdown", "source": str, "tags": [...], "id": str|None}]``
    (jupytext's reading; the preamble before the first header is ignored)."""
    _, body = split_preamble(text)
    nb = jupytext.reads(body, fmt=dict(TEXT_FORMAT))
    return [{"type": c.cell_type, "source": c.source, "tags": list(c.metadata.get("tags", [])),
             "id": c.metadata.get("id")} for c in nb.cells]


def _clean_metadata(meta: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in meta.items() if k not in VOLATILE_CELL_METADATA}


def _assign_ids(stem: str, cells: list, explicit: list[str | None], previous) -> list[str]:
    """Ids for ``cells`` (see module docstring): explicit > matched in ``previous`` > positional."""
    ids: list[str | None] = list(explicit)
    taken = {i for i in ids if i}
    if previous is not None and previous.cells:
        old_keys = [(c.cell_type, c.source) for c in previous.cells]
        new_keys = [(c.cell_type, c.source) for c in cells]
        matcher = difflib.SequenceMatcher(a=old_keys, b=new_keys, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag not in ("equal", "replace"):
                continue
            # equal: the same cells; replace: edited cells, paired in order (an edit keeps the id)
            for oi, ni in zip(range(i1, i2), range(j1, j2)):
                if tag == "replace" and previous.cells[oi].cell_type != cells[ni].cell_type:
                    continue
                old_id = previous.cells[oi].get("id")
                if ids[ni] is None and old_id and old_id not in taken:
                    ids[ni] = old_id
                    taken.add(old_id)
    for i, c in enumerate(cells):
        if ids[i] is not None:
            continue
        candidate = positional_id(stem, i)
        if candidate in taken:  # an inserted cell whose positional id a kept cell still uses
            digest = hashlib.sha1(c.source.encode()).hexdigest()
            candidate, k = f"{candidate}-{digest[:6]}", 0
            while candidate in taken:
                k += 1
                candidate = f"{positional_id(stem, i)}-{digest[:6]}{k}"
        ids[i] = candidate
        taken.add(candidate)
    return ids  # type: ignore[return-value]


def build_notebook(src: Path | str, previous: nbformat.NotebookNode | None = None,
                   stem: str | None = None) -> nbformat.NotebookNode:
    """A source (path or text) -> a notebook without outputs, with stable cell ids.

    Deterministic: the same source and ``previous`` notebook give the same bytes.
    ``previous`` (the notebook currently on disk) lends its ids to unchanged and edited cells.
    """
    if isinstance(src, Path):
        stem = stem or src.stem
        text = src.read_text()
    else:
        text = src
    if not stem:
        raise ValueError("build_notebook: pass stem= with a source text")
    _, body = split_preamble(text)
    parsed = jupytext.reads(body, fmt=dict(TEXT_FORMAT))
    explicit = [c.metadata.get("id") for c in parsed.cells]
    ids = _assign_ids(stem, parsed.cells, explicit, previous)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for c, cell_id in zip(parsed.cells, ids):
        meta = _clean_metadata({k: v for k, v in c.metadata.items() if k != "id"})
        if c.cell_type == "markdown":
            cell = nbformat.v4.new_markdown_cell(c.source, id=cell_id)
        elif c.cell_type == "raw":
            cell = nbformat.v4.new_raw_cell(c.source, id=cell_id)
        else:
            cell = nbformat.v4.new_code_cell(c.source, id=cell_id)
        cell.metadata.update(meta)
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def export_source(nb: nbformat.NotebookNode, stem: str, preamble: str | None = None) -> str:
    """A notebook -> its percent-format source text (inputs, tags/metadata, non-default ids).

    Outputs, execution counts and volatile metadata are dropped; ``preamble`` (default: a
    one-line docstring naming the notebook) is put before the first cell.
    """
    text_nb = nbformat.v4.new_notebook()
    for i, c in enumerate(nb.cells):
        meta = _clean_metadata(dict(c.get("metadata", {})))
        meta.pop("id", None)
        cid = c.get("id")
        if cid and cid != positional_id(stem, i):
            meta = {"id": cid, **meta}
        if c.cell_type == "markdown":
            cell = nbformat.v4.new_markdown_cell(c.source)
        elif c.cell_type == "raw":
            cell = nbformat.v4.new_raw_cell(c.source)
        else:
            cell = nbformat.v4.new_code_cell(c.source)
        cell.metadata = meta
        text_nb.cells.append(cell)
    text_nb.metadata = {"jupytext": {"notebook_metadata_filter": "-all", "cell_metadata_filter": "all"}}
    body = jupytext.writes(text_nb, fmt=dict(TEXT_FORMAT))
    return (default_preamble(stem) if preamble is None else preamble) + body


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


# ----------------------------------------------------------------------------- pairs
class Pair:
    """A source ``scripts/notebook_src/<stem>.py`` and its notebook ``notebooks/<stem>.ipynb``."""

    def __init__(self, stem: str, src_dir: Path = SRC, out_dir: Path = OUT):
        self.stem = stem
        self.source = src_dir / f"{stem}.py"
        self.notebook = out_dir / f"{stem}.ipynb"

    def read_notebook(self) -> nbformat.NotebookNode | None:
        if not self.notebook.is_file():
            return None
        return nbformat.read(self.notebook, as_version=4)

    def built_text(self) -> str:
        """What the notebook should contain given the source (ids lent by the current notebook)."""
        return render(build_notebook(self.source, previous=self.read_notebook(), stem=self.stem))

    def in_sync(self) -> bool:
        return (self.source.is_file() and self.notebook.is_file()
                and self.notebook.read_text() == self.built_text())

    def newer(self) -> str:
        """``"source"`` or ``"notebook"``: the side modified last (a missing side is older)."""
        if not self.notebook.is_file():
            return "source"
        if not self.source.is_file():
            return "notebook"
        return "notebook" if self.notebook.stat().st_mtime > self.source.stat().st_mtime else "source"

    def write_notebook(self) -> bool:
        text = self.built_text()
        if self.notebook.is_file() and self.notebook.read_text() == text:
            return False
        _atomic_write(self.notebook, text)
        return True

    def write_source(self) -> bool:
        nb = self.read_notebook()
        if nb is None:
            raise FileNotFoundError(self.notebook)
        preamble = split_preamble(self.source.read_text())[0] if self.source.is_file() else None
        text = export_source(nb, self.stem, preamble)
        if self.source.is_file() and self.source.read_text() == text:
            return False
        _atomic_write(self.source, text)
        return True


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # a half-written file never lands


def all_pairs(src_dir: Path = SRC, out_dir: Path = OUT) -> list[Pair]:
    """Every source and every notebook (a notebook without a source is listed too)."""
    stems = {p.stem for p in src_dir.glob("*.py") if not p.name.startswith("_")}
    stems |= {p.stem for p in out_dir.glob("*.ipynb")}
    return [Pair(s, src_dir, out_dir) for s in sorted(stems)]


def select(pairs: list[Pair], names: list[str]) -> list[Pair]:
    if not names:
        return pairs
    picked = [p for p in pairs if p.stem in names or id_prefix(p.stem) in names]
    unknown = [n for n in names if not any(p.stem == n or id_prefix(p.stem) == n for p in pairs)]
    if unknown:
        raise SystemExit(f"no notebook named {', '.join(unknown)} (known: {', '.join(p.stem for p in pairs)})")
    return picked


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only check that every notebook matches its source")
    mode.add_argument("--from-notebooks", action="store_true",
                      help="notebooks -> sources (then rebuild the notebooks from them)")
    mode.add_argument("--sync", action="store_true", help="for each pair that differs, the newer side wins")
    ap.add_argument("names", nargs="*", help="only these notebooks (stems, or NN prefixes such as 03)")
    args = ap.parse_args(argv)
    pairs = select(all_pairs(SRC, OUT), args.names)
    if not pairs:
        print(f"no notebook sources found in {SRC}", file=sys.stderr)
        return 1
    problems = []
    for p in pairs:
        rel_src, rel_nb = os.path.relpath(p.source, REPO), os.path.relpath(p.notebook, REPO)
        if args.check:
            if not p.source.is_file():
                problems.append(f"{rel_nb} has no source (run: python scripts/build_notebooks.py --from-notebooks "
                                f"{p.stem})")
            elif not p.in_sync():
                problems.append(f"{rel_nb} differs from {rel_src}")
            continue
        direction = "source"
        if args.from_notebooks:
            direction = "notebook"
        elif args.sync:
            if p.source.is_file() and p.notebook.is_file() and p.in_sync():
                continue
            direction = p.newer()
        if direction == "notebook":
            if not p.notebook.is_file():
                problems.append(f"{rel_nb} does not exist")
                continue
            if p.write_source():
                print(f"wrote {rel_src} (from {rel_nb})")
        elif not p.source.is_file():
            problems.append(f"{rel_nb} has no source: use --from-notebooks {p.stem}")
            continue
        if p.write_notebook():
            print(f"wrote {rel_nb}")
    if problems:
        hint = "" if not args.check else "\n(fix: python scripts/build_notebooks.py [--sync | --from-notebooks])"
        print("\n".join(problems) + hint, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
