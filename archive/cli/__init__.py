"""The ``xsm`` command line (typer + rich): one app, one sub-module per area.

Each area module under ``xsm.archive.cli`` exposes ``register(app)`` that adds its
command group (or commands) to the main app. Commands only parse arguments, call the
Python API and render results.
"""
from __future__ import annotations

import importlib

import typer

from xsm.archive.cli.common import console, setup_logging
from xsm.products.provenance import SOFTWARE_VERSION

#: Area modules, each with ``register(app)``; order = order in ``xsm --help``.
AREAS = ("l1", "l2", "caldb", "labels", "archive", "query", "pipeline", "simulate", "demo", "serve",
         # modules adding commands to groups defined above:
         "geometry",  # l1 sunangle, simulate kernels
         "l2spec")  # l2 spectrum, l2 addspec

app = typer.Typer(
    name="xsm",
    help="Archive and data products of the Chandrayaan-2 Solar X-ray Monitor (XSM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"xsm {SOFTWARE_VERSION}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv: debug)."),
) -> None:
    setup_logging(verbose)


for _area in AREAS:
    importlib.import_module(f"xsm.archive.cli.{_area}").register(app)


def main() -> None:
    """Entry point of the ``xsm`` console script."""
    app()
