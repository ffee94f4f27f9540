"""`xsm l1`: Level-0 sessions to day-wise level-1 files (science, housekeeping, sun angle)."""
from __future__ import annotations

import typer

app = typer.Typer(help="Level-0 sessions to day-wise level-1 files (science, housekeeping, sun angle).", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="l1")
