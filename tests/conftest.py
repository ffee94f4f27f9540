"""Shared fixtures. Reference material is read in place through ``XSM_SHARED``.

A test that needs ``../shared`` fails loudly when it is missing; it never skips.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from xsm.products import settings


@pytest.fixture(scope="session")
def xsm_shared() -> Path:
    """The reference folder (``$XSM_SHARED``, default ``../shared``); fails if missing."""
    path = settings.shared_dir()
    if not (path / "spec" / "README.md").is_file():
        pytest.fail(f"reference material not found at {path}: set XSM_SHARED", pytrace=False)
    return path


@pytest.fixture(scope="session")
def golden_dir(xsm_shared: Path) -> Path:
    return xsm_shared / "golden" / "xsmdas-1.2"


@pytest.fixture(scope="session")
def real_caldb(xsm_shared: Path) -> Path:
    return xsm_shared / "caldb" / "xsm_caldb_20210628"


@pytest.fixture(scope="session")
def realdata_dir(xsm_shared: Path) -> Path:
    return xsm_shared / "realdata"


def run_fitsverify(path: Path, allow: tuple[str, ...] = ()) -> tuple[int, str]:
    """Run ``fitsverify`` on a file; returns (number of errors, full output).

    ``allow``: keywords whose "illegal format" errors are not counted (the compat mode's
    space-separated DATE-OBS/DATE-END, as XSMDAS 1.2 writes them). fitsverify is a required test
    tool (installed by ``.ci/run``); its absence fails.
    """
    exe = shutil.which("fitsverify")
    if exe is None:
        pytest.fail("fitsverify not installed (apt-get install fitsverify)", pytrace=False)
    out = subprocess.run([exe, "-e", str(path)], capture_output=True, text=True)
    text = out.stdout + out.stderr
    # the summary line "**** Verification found 0 warning(s) and 0 error(s). ****" gives the count
    # (the error lines themselves may come on stderr, after it); without one, count the lines
    summary = [ln.split() for ln in text.splitlines() if ln.strip().startswith("**** Verification found")]
    if summary:
        errors = sum(int(parts[parts.index("and") + 1]) for parts in summary)
    else:
        errors = sum(1 for ln in text.splitlines() if "*** Error:" in ln)
    allowed = sum(1 for line in text.splitlines() if "*** Error:" in line
                  and any(f", {k}:" in line for k in allow))
    return errors - allowed, text


@pytest.fixture
def fitsverify():
    """Callable asserting that a FITS file passes fitsverify with no errors."""

    def check(path: Path, allow: tuple[str, ...] = ()) -> None:
        n, text = run_fitsverify(Path(path), allow)
        assert n == 0, f"fitsverify found {n} error(s) in {path}:\n{text}"

    return check


def _header_mismatches(ref, new, ignore=("DATE", "FILENAME", "CHECKSUM", "DATASUM"), *,
                       rtol: float = 1e-12, atol: float = 1e-9, basename=()) -> list[str]:
    """Keywords of ``ref`` missing from ``new`` or with another value.

    HISTORY/COMMENT/blank cards and ``ignore`` are skipped; reals compare to ``rtol``/``atol``,
    strings without trailing blanks, keywords in ``basename`` by their file name only.
    """
    import numpy as np

    out = []
    for key in ref:
        if key in ("HISTORY", "COMMENT", "") or key in ignore:
            continue
        if key not in new:
            out.append(f"{key}: missing")
            continue
        a, b = ref[key], new[key]
        if key in basename:
            a, b = Path(str(a).strip()).name, Path(str(b).strip()).name
        if isinstance(a, float):
            ok = isinstance(b, (int, float)) and bool(np.isclose(a, b, rtol=rtol, atol=atol))
        elif isinstance(a, str):
            ok = a.strip() == str(b).strip()
        else:
            ok = a == b
        if not ok:
            out.append(f"{key}: {a!r} != {b!r}")
    return out


@pytest.fixture
def header_mismatches():
    """Callable ``(ref, new, ignore=..., *, rtol, atol, basename) -> list of differences``."""
    return _header_mismatches
