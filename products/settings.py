"""The one place where xsm reads its environment.

Environment variables
---------------------
XSM_SHARED
    Reference material beside the project (``../shared`` from the project root by default).
XSM_PDS4_SCHEMAS
    Directory holding the PDS4 schema files (``.xsd``, ``.sch``).
XSM_CALDB
    Root of the CALDB to use (a directory with an index file).
XSM_DATA_DIR
    User data directory (installed schemas, caches). Default ``~/.local/share/xsm``.
XSM_ORIGIN
    Value of the ORIGIN keyword (default ``'PRLPOC'``).
XSM_THREADS
    Threads of the level-2 reductions (default: the CPU count, at most 4).
XSM_FSYNC
    Set and non-empty: large product writers fsync before the rename.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """Reference material directory (``$XSM_SHARED`` or ``../shared`` from the project root)."""
    env = os.environ.get("XSM_SHARED")
    return Path(env) if env else (PROJECT_ROOT.parent / "shared")


def data_dir() -> Path:
    """User data directory for installed schemas and caches."""
    env = os.environ.get("XSM_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "xsm"


def pds4_schema_dir() -> Path | None:
    """Directory of PDS4 schema files, or None when not configured or installed."""
    env = os.environ.get("XSM_PDS4_SCHEMAS")
    if env:
        return Path(env)
    installed = data_dir() / "pds4"
    if installed.is_dir():
        return installed
    return None


def caldb_dir() -> Path | None:
    """CALDB root from ``$XSM_CALDB``, or None."""
    env = os.environ.get("XSM_CALDB")
    return Path(env) if env else None


def origin() -> str:
    """Value of the ORIGIN keyword."""
    return os.environ.get("XSM_ORIGIN", "PRLPOC")


def fsync() -> bool:
    """Whether large product writers fsync before the rename (``$XSM_FSYNC`` set and non-empty)."""
    return bool(os.environ.get("XSM_FSYNC"))


def compute_threads() -> int:
    """Threads for the chunked level-2 reductions: ``$XSM_THREADS``, else the CPU count (at
    most 4: beyond that the chunks' memory grows faster than the gain)."""
    from xsm.products.errors import ParameterError

    env = os.environ.get("XSM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ParameterError(f"XSM_THREADS={env!r}: give a positive integer")
        return n
    return max(1, min(4, os.cpu_count() or 1))
