"""`xsm serve`: Serve the summary pages read-only."""
from __future__ import annotations

import typer

app = typer.Typer(help="Serve the summary pages read-only.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="serve")
