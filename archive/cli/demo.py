"""`xsm demo`: Run the main job end to end on an embedded synthetic default."""
from __future__ import annotations

import typer

app = typer.Typer(help="Run the main job end to end on an embedded synthetic default.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="demo")
