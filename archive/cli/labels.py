"""`xsm labels`: PDS4 labels: generate from products, validate offline, install schemas."""
from __future__ import annotations

import typer

app = typer.Typer(help="PDS4 labels: generate from products, validate offline, install schemas.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="labels")
