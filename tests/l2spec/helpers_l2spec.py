"""Helpers of the spectrum tests: golden runs parsed from ``commands.txt``, cached day inputs."""
from __future__ import annotations

import functools
import shlex

import numpy as np
import pytest

from xsm.products import settings
from xsm.products.gti import read_gti
from xsm.products.level1 import read_hk, read_level1, read_sa
from xsm.products.provenance import Mode
from xsm.products.spectrum import SpectrumParams, load_spec_cal, make_spectrum

CASES = ("short_quiet", "short_flare", "calsource")
GOLDEN = settings.shared_dir() / "golden" / "xsmdas-1.2"
CALDB = settings.shared_dir() / "caldb" / "xsm_caldb_20210628"

def genspec_runs(case: str) -> list[dict]:
    """Every ``xsmgenspec`` run of a golden case as a dict of parameters (``commands.txt``)."""
    path = GOLDEN / case / "commands.txt"
    if not path.is_file():
        pytest.fail(f"golden case missing: {path} (set XSM_SHARED)", pytrace=False)
    runs = []
    for line in path.read_text().splitlines():
        if not line.startswith("xsmgenspec "):
            continue
        runs.append(dict(tok.split("=", 1) for tok in shlex.split(line)[1:]))
    return runs


def all_runs() -> list[tuple[str, str]]:
    return [(c, r["specfile"]) for c in CASES for r in genspec_runs(c)]


def params_of(run: dict, mode: Mode, **over) -> SpectrumParams:
    yes = lambda k: run.get(k, "no") == "yes"  # noqa: E731
    kw = dict(spectype=run["spectype"], chantype=run["chantype"], sourcetype=run.get("sourcetype", "sun"),
              genarf=yes("genarf"), areascal=yes("areascal"), tstart=float(run["tstart"]),
              tstop=float(run["tstop"]), tbinsize=int(run["tbinsize"]),
              gaincorfactor=float(run["gaincorfactor"]), offsetcorfactor=float(run["offsetcorfactor"]),
              addsyserror=yes("addsyserror"), clobber=yes("clobber"), mode=mode, l1file=run["l1file"],
              specfile=run["specfile"], arffile=run["arffile"], hkfile=run["hkfile"], safile=run["safile"],
              gtifile=run["gtifile"], eboundsfile=run["eboundsfile"], gainfile=run["gainfile"],
              abscoeffile=run["abscoeffile"], effareaparfile=run["effareaparfile"],
              syserrfile=run["syserrfile"])
    kw.update(over)
    return SpectrumParams(**kw).validated()


@functools.lru_cache(maxsize=4)
def case_inputs(case: str):
    d = GOLDEN / case
    return (read_level1(next(d.glob("*_level1.fits"))), read_hk(next(d.glob("*_level1.hk"))),
            read_sa(next(d.glob("*_level1.sa"))))


def run_spectrum(case: str, run: dict, mode: Mode, **over):
    day, hk, sa = case_inputs(case)
    p = params_of(run, mode, **over)
    gti = read_gti(GOLDEN / case / run["gtifile"])
    t0 = p.tstart if (p.tstart or p.tstop) else float(day.time[0]) - 0.0001
    cal = load_spec_cal(CALDB, t0, p)
    return make_spectrum(day, hk, sa, gti, p, cal)


def find_run(case: str, specfile: str) -> dict:
    return next(r for r in genspec_runs(case) if r["specfile"] == specfile)


def chi2_pvalue(a, b) -> float:
    """Two-sample chi-square p-value of two count spectra (channels with counts)."""
    from scipy.stats import chi2

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    m = (a + b) > 0
    stat = np.sum((a[m] - b[m]) ** 2 / (a[m] + b[m]))
    return float(chi2.sf(stat, int(m.sum())))
