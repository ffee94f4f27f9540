"""`xsm simulate`: Synthetic SPICE kernels and level-0 download sessions."""
from __future__ import annotations

import typer

app = typer.Typer(help="Synthetic SPICE kernels and level-0 download sessions.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="simulate")
