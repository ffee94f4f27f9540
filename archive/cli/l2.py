"""`xsm l2`: Level-2 products: GTIs, spectra with ARFs, light curves, added spectra."""
from __future__ import annotations

import typer

app = typer.Typer(help="Level-2 products: GTIs, spectra with ARFs, light curves, added spectra.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="l2")
