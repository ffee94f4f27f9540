"""Shared pieces of the ``xsm`` command line: console, error handling, JSON output, progress.

Only the CLI imports rich. A command parses its options, calls one library function and
renders the result; :func:`handle_errors` turns an :class:`~xsm.products.errors.XsmError`
into one red line and the error's exit code (2 for bad input). Other exceptions keep their
traceback (they are bugs). Set ``XSM_DEBUG=1`` to re-raise XsmErrors too.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from xsm.products.errors import ParameterError, XsmError
from xsm.products.provenance import Mode

console = Console()
err_console = Console(stderr=True)


def exit_with_error(message: str, code: int = 1) -> None:
    """Print one red line on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(func: Callable) -> Callable:
    """Decorator for commands: XsmError -> one red line + its exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except XsmError as exc:
            if os.environ.get("XSM_DEBUG"):
                raise
            exit_with_error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                            exc.exit_code)

    return wrapper


def attach_command(group: typer.Typer, name: str, func: Callable) -> None:
    """Add ``func`` (with :func:`handle_errors`) as command ``name`` of another area's ``group``,
    once: the root app may be built more than once in a process, the groups are shared."""
    if not any(c.name == name for c in group.registered_commands):
        group.command(name)(handle_errors(func))


def print_json(obj: Any) -> None:
    """Machine-readable output on stdout (no rich markup)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str, sort_keys=False) + "\n")
    sys.stdout.flush()


def print_table(rows: Sequence[dict], columns: Sequence[str] | None = None, title: str | None = None,
                overflow: str = "ellipsis") -> None:
    """A rich table of dict rows (``overflow="fold"`` wraps long cells instead of cutting them)."""
    from rich.table import Table   # here, not at the top: most commands print no table

    columns = list(columns or (rows[0].keys() if rows else []))
    table = Table(title=title)
    for c in columns:
        table.add_column(str(c), overflow=overflow)
    for r in rows:
        table.add_row(*["" if r.get(c) is None else str(r.get(c)) for c in columns])
    console.print(table)


@contextmanager
def progress_bar(description: str, total: float | None = None, *, disable: bool = False):
    """A rich progress bar; yields ``advance(n=1, total=None)`` to feed library callbacks."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=err_console, transient=True, disable=disable) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: float = 1, total: float | None = None) -> None:
            if total is not None:
                progress.update(task, total=total)
            progress.advance(task, n)

        yield advance


def setup_logging(verbose: int = 0) -> None:
    from rich.logging import RichHandler

    level = logging.WARNING - 10 * min(verbose, 2)
    logger = logging.getLogger("xsm")
    logger.handlers[:] = [RichHandler(console=err_console, show_path=False)]
    logger.setLevel(level)


def split_list(values: Iterable[str] | None) -> list[str]:
    """Accept repeated options and comma-separated values alike."""
    out: list[str] = []
    for v in values or []:
        out += [x for x in v.split(",") if x]
    return out


#: Help text of every command's ``--compat`` option (one definition for the whole CLI).
COMPAT_HELP = "'xsmdas-1.2' reproduces XSMDAS 1.2 exactly, defects included (spec/quirks.md)."


def compat_option(help: str = COMPAT_HELP):
    """The ``--compat MODE`` option; parse its value with :func:`mode_of`."""
    return typer.Option(None, "--compat", metavar="xsmdas-1.2", help=help)


def seed_option():
    """The ``--seed`` option of the default mode's random generator."""
    return typer.Option(None, help="Seed of the default mode's random generator.")


def clobber_option():
    """``--clobber/--no-clobber`` (on by default, as in XSMDAS; checked by :func:`refuse_existing`)."""
    return typer.Option(True, "--clobber/--no-clobber", help="Overwrite existing outputs.")


@contextmanager
def warnings_shown():
    """Collect the library's warnings of a block and print each once, in yellow, at its end."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        err_console.print(f"[yellow]warning:[/] {w.message}", highlight=False, soft_wrap=True)


def mode_of(compat: str | None) -> Mode:
    """Processing mode of a ``--compat`` value: None -> DEFAULT, 'xsmdas-1.2' -> XSMDAS_1_2."""
    if compat in (None, "", "default"):
        return Mode.DEFAULT
    if compat.lower() in ("xsmdas-1.2", "xsmdas_1_2", "1.2"):
        return Mode.XSMDAS_1_2
    raise ParameterError(f"--compat {compat!r}: the only compatibility mode is xsmdas-1.2")


def level1_sibling(path: Path, ext: str) -> Path:
    """The level-1 file beside ``path`` with extension ``ext`` (``.fits``, ``.hk``, ``.sa``).

    Like :func:`xsm.products.columns.sibling_name`, without importing numpy: the commands use it
    to start hashing their inputs before the heavy imports.
    """
    name = path.name
    for known in (".fits", ".hk", ".sa"):
        if name.endswith(known):
            return path.with_name(name[: -len(known)] + ext)
    return path.with_name(path.stem + ext)


def refuse_existing(path: Path, clobber: bool) -> None:
    """Refuse before any work when ``path`` exists and ``clobber`` is off (the writers refuse too)."""
    if path.exists() and not clobber:
        raise ParameterError(f"{path}: exists already (use --clobber)")
