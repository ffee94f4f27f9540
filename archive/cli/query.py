"""`xsm query`: Query the DuckDB product catalog."""
from __future__ import annotations

import typer

app = typer.Typer(help="Query the DuckDB product catalog.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="query")
