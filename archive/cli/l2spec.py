"""Spectral commands of ``xsm l2``: ``spectrum``, ``addspec``."""
from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:  # commands attach to the l2 group
    pass
