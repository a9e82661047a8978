"""`fusionlab fuse` (not implemented yet)."""
from __future__ import annotations

HELP = "fuse (not implemented yet)"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..errors import FusionlabError

    raise FusionlabError("'fusionlab fuse' is not implemented yet")
