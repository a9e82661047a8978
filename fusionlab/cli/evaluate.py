"""`fusionlab evaluate` (not implemented yet)."""
from __future__ import annotations

HELP = "evaluate (not implemented yet)"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..errors import FusionlabError

    raise FusionlabError("'fusionlab evaluate' is not implemented yet")
