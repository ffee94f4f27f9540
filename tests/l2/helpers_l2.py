"""Helpers shared by the level-2 GTI / light-curve / addspec tests (read in place, never copied)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

CASES = ("short_quiet", "short_flare", "calsource")

#: fitsverify objects to the XSM DATE-OBS/DATE-END format ('YYYY-MM-DD hh:mm:ss.f', time.md §2,
#: a [K] format of every official XSM product). These two messages are the only ones accepted.
_DATE_FORMAT_ERR = ("DATE-OBS", "DATE-END")


def case_files(golden_dir: Path, case: str) -> dict:
    d = golden_dir / case
    return {"dir": d, "fits": next(d.glob("*_level1.fits")), "hk": next(d.glob("*_level1.hk")),
            "sa": next(d.glob("*_level1.sa"))}


def read_table(path: Path, ext: str):
    with fits.open(path, memmap=False) as h:
        return np.array(h[ext].data), h[ext].header.copy()


def fitsverify_errors(path: Path) -> list[str]:
    """Error blocks of ``fitsverify -e`` other than the XSM date-string format."""
    exe = shutil.which("fitsverify")
    if exe is None:
        pytest.fail("fitsverify not installed (apt-get install fitsverify)", pytrace=False)
    text = subprocess.run([exe, "-e", str(path)], capture_output=True, text=True).stdout
    errs = []
    for block in text.split("*** Error:")[1:]:
        head = block.strip().splitlines()[0]
        if any(k in head for k in _DATE_FORMAT_ERR) and "illegal format" in block:
            continue
        errs.append(head)
    return errs


def header_mismatches(ref: fits.Header, new: fits.Header, ignore=("DATE", "FILENAME", "CHECKSUM",
                                                                 "DATASUM")) -> list[str]:
    """Reference keywords missing from ``new`` or with another value (floats to 1e-9 relative)."""
    out = []
    for key in ref:
        if key in ("HISTORY", "COMMENT", "") or key in ignore:
            continue
        a = ref[key]
        if key not in new:
            out.append(f"{key}: missing")
            continue
        b = new[key]
        if isinstance(a, float) and isinstance(b, (float, int)):
            if not np.isclose(a, b, rtol=1e-12, atol=1e-9):
                out.append(f"{key}: {a!r} != {b!r}")
        elif isinstance(a, str):
            if a.strip() != str(b).strip():
                out.append(f"{key}: {a!r} != {b!r}")
        elif a != b:
            out.append(f"{key}: {a!r} != {b!r}")
    return out
