"""Sun-geometry commands: ``xsm l1 sunangle`` and ``xsm simulate kernels``."""
from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:  # commands attach to the l1 and simulate groups
    pass
