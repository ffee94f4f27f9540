"""`xsm archive`: Day-wise archive, releases for ISDA, verification, ingest."""
from __future__ import annotations

import typer

app = typer.Typer(help="Day-wise archive, releases for ISDA, verification, ingest.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="archive")
