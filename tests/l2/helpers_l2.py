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


def quiet_lc_inputs(golden_dir: Path, real_caldb: Path):
    """(day, GTI, default-mode light-curve calibration) of the golden ``short_quiet`` case."""
    from xsm.caldb_manager.context import calibration_context
    from xsm.products import gti as G
    from xsm.products import lightcurve as L
    from xsm.products.level2 import load_day
    from xsm.products.provenance import Mode

    f = case_files(golden_dir, "short_quiet")
    day = load_day(f["fits"])
    gti = G.read_gti(f["dir"] / "gti_std.gti")
    return day, gti, L.lc_calibration(calibration_context(float(day.time[0]), real_caldb), Mode.DEFAULT)
