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
