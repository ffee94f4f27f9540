"""Small XSM products for the label tests, written with the project's own writers.

Every product type xsm writes: level-1 ``.fits``/``.hk``/``.sa`` (``xsm.products.level1``),
level-2 ``.gti`` (``gti``), ``.lc`` standard and high-res (``lightcurve``), ``.pha`` type I and
type II with their ``.arf`` (``spectrum``, ``arf``). Values are arbitrary but deterministic;
the tests only need the files' exact formats.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

DAY = "20210828"
T0 = 146880000.66264  # MET of 2021-08-28 00:00:00.662640
N = 30


def _utc(met) -> np.ndarray:
    from xsm.products.met import met_to_utc_string

    return np.asarray(met_to_utc_string(np.asarray(met)))


def level1_files(out: Path, n: int = N) -> dict[str, Path]:
    """The three level-1 files of a short synthetic day."""
    from xsm.products import columns as cols
    from xsm.products import level1 as l1

    rng = np.random.default_rng(1)
    time = T0 + np.arange(n, dtype=np.float64)
    utc = _utc(time)
    data = rng.integers(0, 256, size=(n, 2048), dtype=np.uint8)
    day = l1.Level1Day(time=time, utc=utc, frame_number=np.arange(n, dtype=np.int64) + 2**31 - 5,
                       bdh_time=time + 0.5, xsm_time=np.arange(n) * 1.000001, data=data,
                       status=np.zeros(n, dtype=np.int16))
    paths = l1.level1_paths(out, DAY)
    l1.write_level1(day, paths["fits"])
    # as xsm.products.hk.decode_hk does: the housekeeping header carries the science file's
    # time keywords
    from astropy.io import fits

    science_header = fits.getheader(paths["fits"], 1)
    hk = l1.empty_table(cols.HK, n)
    for key in l1.TIME_KEYWORDS:
        hk.header[key] = science_header[key]
    for c in hk.data.dtype.names:
        if c == "UTCString":
            hk.data[c] = utc
        elif c == "Time":
            hk.data[c] = time
        else:
            hk.data[c] = (np.arange(n) % 7).astype(hk.data[c].dtype)
    l1.write_hk(hk, paths["hk"])
    sa = l1.empty_table(cols.SA, n)
    for c in sa.data.dtype.names:
        sa.data[c] = time if c == "Time" else (np.arange(n) % 3).astype(sa.data[c].dtype)
    l1.write_sa(sa, paths["sa"])
    return paths


def gti_file(out: Path) -> Path:
    from xsm.products import gti
    from xsm.products.provenance import Mode

    start = T0 + np.array([10.0, 100.0, 500.0])
    stop = start + np.array([50.0, 200.0, 20.0])
    res = gti.GtiResult(gti=gti.GTI(start, stop), obsexp=float(N), params=gti.GtiParams(),
                        filter=gti.FilterFile(ranges={}), mode=Mode.DEFAULT,
                        time_range=(T0, T0 + 86399.0))
    return gti.write_gti(res, out / f"ch2_xsm_{DAY}_v1_level2.gti")


def lc_file(out: Path, highres: bool = False) -> Path:
    from xsm.products import lightcurve as lcm

    n = 40
    rng = np.random.default_rng(2)
    t = T0 + np.arange(n) * (0.1 if highres else 1.0)
    names = ["RATE_BAND1", "RATE_BAND2", "RATE_BAND3"] if highres else ["RATE"]
    bands = [lcm.LightCurveBand(extname=nm, time=t.copy(), rate=rng.random(n).astype(np.float32) * 100,
                                error=rng.random(n).astype(np.float32), fracexp=np.ones(n, np.float32),
                                chstart=0, chstop=960) for nm in names]
    params = lcm.LightCurveParams(lctype="highres" if highres else "standard")
    lc = lcm.LightCurve(bands=bands, tstart=float(t[0]), tstop=float(t[-1] + 1), timedel=0.1 if highres else 1.0,
                        params=params, date_obs=str(_utc(t[0])), date_end=str(_utc(t[-1] + 1)), caldbver="20210628",
                        pistart=None if highres else 17, pistop=None if highres else 511,
                        e_min=None if highres else 0.5, e_max=None if highres else 15.0)
    name = f"ch2_xsm_{DAY}_v1_level2_hr.lc" if highres else f"ch2_xsm_{DAY}_v1_level2.lc"
    return lcm.write_lightcurve(lc, out / name)


def spectrum_files(out: Path, type2: bool = True) -> tuple[Path, Path]:
    """A PI spectrum (type II: 4 rows of 512 channels; type I: 1 row) with its ARF."""
    from xsm.products import arf as arfm
    from xsm.products import spectrum as sp
    from xsm.products.provenance import Provenance

    rows = 4 if type2 else 1
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 50, size=(rows, 512)).astype(np.int64)
    tstart = T0 + 60.0 * np.arange(rows)
    tstop = tstart + 60.0
    e = (0.1 + 0.01 * np.arange(3000)).astype(np.float32)
    arf = arfm.Arf(energ_lo=e, energ_hi=(e + np.float32(0.01)).astype(np.float32),
                   specresp=rng.random((rows, 3000)).astype(np.float32), type2=type2,
                   tstart=tstart, tstop=tstop)
    name = f"ch2_xsm_{DAY}_v1_level2.pha" if type2 else f"ch2_xsm_{DAY}_v1_level2_t1.pha"
    params = sp.SpectrumParams(spectype="time-resolved" if type2 else "time-integrated", tbinsize=60,
                               specfile=str(out / name))
    spec = sp.Spectrum(chantype="PI", type2=type2, counts=counts,
                       stat_err=np.sqrt(counts).astype(np.float32), sys_err=np.full((rows, 512), 0.02, np.float32),
                       exposure=np.full(rows, 60.0), tstart=tstart, tstop=tstop,
                       filt_status=np.zeros(rows, np.uint8), tstart_kw=float(tstart[0]), tstop_kw=float(tstop[-1]),
                       date_obs=str(_utc(tstart[0])), date_end=str(_utc(tstop[-1])), caldbver="20210628",
                       params=params, arf=arf, provenance=Provenance(step="spectrum", rng_seed=1))
    pha, arf_path = sp.write_spectrum(spec, out / name)
    return pha, arf_path


def all_products(out: Path) -> list[Path]:
    """Every product type xsm writes, in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    files = list(level1_files(out).values())
    files.append(gti_file(out))
    files.append(lc_file(out))
    files.append(lc_file(out, highres=True))
    files += list(spectrum_files(out, type2=True))
    files += list(spectrum_files(out, type2=False))
    return files
