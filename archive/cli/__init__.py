"""The ``xsm`` command line (typer + rich): one app, one sub-module per area.

Each area module under ``xsm.archive.cli`` exposes ``register(app)`` that adds its
command group (or commands) to the main app. Commands only parse arguments, call the
Python API and render results.

``xsm <command> ...`` imports and builds only the area modules of ``<command>``
(:data:`COMMANDS`): a short task such as ``xsm l2 gti`` does not pay for building the
other forty commands. ``xsm --help``, an unknown command and the module attribute ``app``
(used by tests with typer's ``CliRunner``) get the whole app.
"""
from __future__ import annotations

import importlib
import sys

import typer

from xsm.archive.cli.common import console, setup_logging

#: Top-level command -> the area modules that define it and the commands under it, in
#: ``xsm --help`` order. ``geometry`` adds ``l1 sunangle`` and ``simulate kernels``,
#: ``l2spec`` adds ``l2 spectrum`` (a test checks this table against the commands the modules
#: register).
COMMANDS: dict[str, tuple[str, ...]] = {
    "l1": ("l1", "geometry"),
    "l2": ("l2", "l2spec"),
    "caldb": ("caldb",),
    "labels": ("labels",),
    "archive": ("archive",),
    "query": ("query",),
    "find": ("query",),
    "addspec": ("query",),
    "pipeline": ("pipeline",),
    "simulate": ("simulate", "geometry"),
    "demo": ("demo",),
    "serve": ("serve",),
}

#: Every area module, in registration order.
AREAS: tuple[str, ...] = tuple(dict.fromkeys(m for mods in COMMANDS.values() for m in mods))


def _version(value: bool) -> None:
    if value:
        from xsm.products.provenance import SOFTWARE_VERSION

        console.print(f"xsm {SOFTWARE_VERSION}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv: debug)."),
) -> None:
    setup_logging(verbose)


def build_app(areas: tuple[str, ...] = AREAS) -> typer.Typer:
    """A root ``xsm`` app with the commands of ``areas`` (default: all of them)."""
    root = typer.Typer(
        name="xsm",
        help="Archive and data products of the Chandrayaan-2 Solar X-ray Monitor (XSM).",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    root.callback()(_root)
    for area in areas:
        importlib.import_module(f"xsm.archive.cli.{area}").register(root)
    return root


def _requested_command(argv: list[str]) -> str | None:
    """The top-level command of ``argv`` (the first word that is not a root option), or None."""
    for word in argv:
        if not word.startswith("-"):
            return word
        if word in ("--help", "--version"):
            return None
    return None


def __getattr__(name: str):
    # ``app``: the whole app, built on first use (PEP 562), then kept
    if name == "app":
        globals()["app"] = full = build_app()
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Commands that only read inputs and write product files: they leave without the interpreter's
#: teardown (see :func:`_leave`).
QUICK_EXIT_COMMANDS = frozenset({"l1", "l2"})


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _leave(code: int) -> None:
    """Exit now, skipping the interpreter's teardown of every loaded module and object (about
    0.1 s once numpy and astropy are loaded, a fifth of a short task like ``xsm l2 gti``).

    What a normal exit guarantees still holds: logging is flushed, the ``atexit`` handlers run
    (temporary folders of ``weakref.finalize``, for instance), stdout and stderr are flushed.
    With a non-daemon thread still alive, the normal exit (which waits for it) is used instead.
    """
    import atexit
    import logging
    import os
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    logging.shutdown()
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is None:   # not CPython: keep the normal exit
        sys.exit(code)
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed pipe (| head) or stream: nothing more to say
            pass
    os._exit(code)


def main() -> None:
    """Entry point of the ``xsm`` console script."""
    command = _requested_command(sys.argv[1:])
    try:
        build_app(COMMANDS[command] if command in COMMANDS else AREAS)()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    if command in QUICK_EXIT_COMMANDS:
        _leave(code)
    sys.exit(code)
