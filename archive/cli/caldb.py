"""`xsm caldb`: The calibration database: index, selection by time, publishing, certifying."""
from __future__ import annotations

import typer

app = typer.Typer(help="The calibration database: index, selection by time, publishing, certifying.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="caldb")
