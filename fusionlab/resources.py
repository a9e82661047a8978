"""Files fusionlab ships besides code: YAML training configs, ablation grids (with the caption
file one of them reads) and the run / report notebooks of the ablation workbench.

Git holds ONE copy of each: the configs inside the package (``fusionlab/configs/``), the
grids and notebooks in the top-level folders of the checkout (``ablations/``,
``notebooks/``), which ``setup.py`` maps into the wheel as ``fusionlab/ablations`` and
``fusionlab/notebooks``. So:

* installed from a wheel: the folders inside the package are used;
* run from a source checkout (editable install, ``PYTHONPATH=.``): the top-level folders.

``shipped_dir("ablations")`` returns whichever exists. Both layouts keep ``notebooks/`` and
``ablations/`` siblings, so a notebook's ``../ablations`` works in either.
"""
from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
#: the shipped data folders (names are the same in the checkout and in the wheel)
KINDS = ("configs", "ablations", "notebooks")


def _checkout_root() -> Path | None:
    """The source checkout this package was imported from, or None (installed wheel)."""
    root = PACKAGE_DIR.parent
    pyproject = root / "pyproject.toml"
    try:
        if pyproject.is_file() and 'name = "fusionlab"' in pyproject.read_text():
            return root
    except OSError:
        pass
    return None


def shipped_dir(kind: str) -> Path:
    """Folder of shipped ``kind`` files (``configs``, ``ablations`` or ``notebooks``).

    Raises:
        ConfigError: unknown kind, or neither the package nor a checkout has the folder
            (a broken install).
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown kind of shipped files {kind!r} (known: {', '.join(KINDS)})")
    inside = PACKAGE_DIR / kind
    if inside.is_dir():
        return inside
    root = _checkout_root()
    if root is not None and (root / kind).is_dir():
        return root / kind
    raise ConfigError(f"fusionlab's shipped {kind}/ folder is missing (looked in {inside}"
                      + (f" and {root / kind}" if root else "") + "); reinstall fusionlab")


def require_extra(extra: str, *modules: str) -> None:
    """Raise a one-line UsageError naming ``pip install 'fusionlab[extra]'`` if a module is missing."""
    import importlib.util

    from .errors import UsageError

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"this needs {', '.join(missing)} from the '{extra}' extra: pip install 'fusionlab[{extra}]'")


def shipped_file(kind: str, name: str) -> Path:
    """``shipped_dir(kind) / name`` (not checked for existence)."""
    return shipped_dir(kind) / name
