"""`xsm pipeline`: Automated processing: inbox, stages, failures, re-runs."""
from __future__ import annotations

import typer

app = typer.Typer(help="Automated processing: inbox, stages, failures, re-runs.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="pipeline")
