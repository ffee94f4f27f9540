"""Helpers shared by the level-2 GTI / light-curve / addspec tests (read in place, never copied)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

CASES = ("short_quiet", "short_flare", "calsource")


def case_files(golden_dir: Path, case: str) -> dict:
    d = golden_dir / case
    return {"dir": d, "fits": next(d.glob("*_level1.fits")), "hk": next(d.glob("*_level1.hk")),
            "sa": next(d.glob("*_level1.sa"))}


def read_table(path: Path, ext: str):
    with fits.open(path, memmap=False) as h:
        return np.array(h[ext].data), h[ext].header.copy()


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
