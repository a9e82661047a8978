"""`fusionlab report` (not implemented yet)."""
from __future__ import annotations

HELP = "report (not implemented yet)"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..errors import FusionlabError

    raise FusionlabError("'fusionlab report' is not implemented yet")
