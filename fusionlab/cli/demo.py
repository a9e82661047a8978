"""`fusionlab demo` (not implemented yet)."""
from __future__ import annotations

HELP = "demo (not implemented yet)"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..errors import FusionlabError

    raise FusionlabError("'fusionlab demo' is not implemented yet")
