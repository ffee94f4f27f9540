"""All standard level-2 products of a day from ONE in-memory decode (issue 5 item 5).

The archive and the CLI read the three level-1 files once (:func:`load_day`), then make every
standard product from the arrays in memory (:func:`make_standard_products`):

* the standard GTI (``gti.md``; the project's standard filter file, ``usesunang = yes``);
* a type-II PI spectrum, 60 s bins, with its type-II ARF (``spectrum.md``; or, with
  ``StandardParams(spectrum="areascal")``, the official archive recipe of ``products.md`` §9:
  area-corrected, no ARF);
* the standard light curve: 1 s, area scaling, energy selection 0.5-15 keV (``lightcurve.md``);
* the high-resolution light curve: 100 ms, three coarse bands.

Nothing is decoded twice: the spectrum words and the coarse counters are zero-copy big-endian
views of the frames (``frame.spectrum_view``/``coarse_words``), chunks are converted as they are
used. An empty GTI gives a valid, empty GTI and no other product (``products.md`` §9).

:func:`write_standard_products` writes them with the archive names
(``ch2_xsm_YYYYMMDD_vN_level2.gti/.pha/.arf/.lc`` and ``..._level2_hr.lc``);
:func:`standard_products` does read + make + write in one call (the ``xsm l2 standard`` command).
"""
from __future__ import annotations

import logging
import time as _time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xsm.products import frame
from xsm.products import gti as G
from xsm.products import lightcurve as LC
from xsm.products.columns import sibling_name
from xsm.products.errors import InputFormatError
from xsm.products.provenance import Mode

log = logging.getLogger("xsm.level2")


@dataclass
class DayData:
    """One level-1 day in memory: science frames, HK and SA tables (row-aligned)."""

    l1: object            # xsm.products.level1.Level1Day
    hk: object            # xsm.products.level1.Level1Table
    sa: object | None     # xsm.products.level1.Level1Table
    files: dict = field(default_factory=dict)   # kind -> Path (fits, hk, sa)

    @property
    def time(self) -> np.ndarray:
        return self.l1.time

    @property
    def words(self) -> np.ndarray:
        """(N, 963) zero-copy big-endian view of the spectrum words."""
        return frame.spectrum_view(self.l1.data)

    @property
    def coarse(self) -> np.ndarray:
        return frame.coarse_words(self.l1.data)

    def lc_day(self) -> LC.DayArrays:
        return LC.DayArrays(time=self.l1.time, spectra=self.words, hk=self.hk, sa=self.sa,
                            coarse=self.coarse, header=self.l1.header)

    @property
    def date_tag(self) -> str:
        name = Path(self.files.get("fits", "")).name
        if name.startswith("ch2_xsm_") and name[8:16].isdigit():
            return name[8:16]
        return self.l1.date_tag


def load_day(l1file: str | Path, hkfile: str | Path | None = None,
             safile: str | Path | None = None) -> DayData:
    """Read the three level-1 files once (HK and SA default to the science file's siblings)."""
    from xsm.products.level1 import check_aligned, read_hk, read_level1, read_sa

    l1file = Path(l1file)
    hkfile = Path(hkfile) if hkfile else l1file.with_name(sibling_name(l1file.name, "hk"))
    safile = Path(safile) if safile else l1file.with_name(sibling_name(l1file.name, "sa"))
    l1 = read_level1(l1file)
    hk = read_hk(hkfile)
    if not safile.exists():
        raise InputFormatError(f"{safile}: no such file (the standard products need the sun-angle file)")
    sa = read_sa(safile)
    for tab, path in ((hk, hkfile), (sa, safile)):
        check_aligned(tab["Time"], l1.time, path)
    return DayData(l1, hk, sa, {"fits": l1file, "hk": hkfile, "sa": safile})


@dataclass(frozen=True)
class StandardParams:
    """How the standard products are made (defaults: ``products.md`` §9 with an ARF spectrum)."""

    mode: Mode = Mode.DEFAULT
    seed: int | None = None
    filterfile: str | Path | None = None      # None = the project's standard filter file
    spectrum: str = "arf"                      # 'arf' (genarf) or 'areascal' (archive recipe)
    spec_tbinsize: int = 60
    lc_tbinsizesec: int = 1
    lc_enelow: float = 0.5
    lc_enehigh: float = 15.0
    hires_tbinsizems: int = 100
    version: int = 1
    products: tuple = ("gti", "pha", "lc", "hr")

    def names(self, date_tag: str) -> dict[str, str]:
        base = f"ch2_xsm_{date_tag}_v{self.version}_level2"
        return {"gti": base + ".gti", "pha": base + ".pha", "arf": base + ".arf",
                "lc": base + ".lc", "hr": base + "_hr.lc"}


@dataclass
class StandardProducts:
    gti: G.GtiResult
    spectrum: object | None = None       # xsm.products.spectrum.Spectrum
    lightcurve: LC.LightCurve | None = None
    hires: LC.LightCurve | None = None
    names: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    mode: Mode = Mode.DEFAULT


def make_standard_products(day: DayData, caldb=None, params: StandardParams = StandardParams()
                           ) -> StandardProducts:
    """Every standard product of ``day`` from the arrays in memory (no file is read but CALDB)."""
    from xsm.caldb_manager.context import calibration_context
    from xsm.products import spectrum as S

    mode = params.mode
    names = params.names(day.date_tag)
    fn = {k: Path(v).name for k, v in day.files.items()}
    tm: dict[str, float] = {}
    notes: list[str] = []
    t = _time.perf_counter()
    gti_params = G.GtiParams(hkfile=fn.get("hk", "hk"), safile=fn.get("sa", "sa"), gtifile=names["gti"],
                             filterfile=Path(params.filterfile).name if params.filterfile
                             else G.standard_filter_path().name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gres = G.make_gti(day.hk, day.sa, params.filterfile or G.standard_filter_path(),
                          usesunang=day.sa is not None, mode=mode,
                          hk_header=getattr(day.hk, "header", None), params=gti_params)
    notes += [f"gti: {w.message}" for w in caught]
    tm["gti"] = _time.perf_counter() - t
    out = StandardProducts(gti=gres, names=names, notes=notes, timings=tm, mode=mode)
    if gres.empty or not np.any(gres.gti.contains(day.time)):
        notes.append("empty GTI: the day has no calibrated products besides the GTI")
        return out
    hist = dict(l1file=fn.get("fits", "l1"), hkfile=fn.get("hk", "hk"), safile=fn.get("sa", "sa"),
                gtifile=names["gti"])
    if "pha" in params.products:
        t = _time.perf_counter()
        arf = params.spectrum == "arf"
        sp = S.SpectrumParams(spectype="time-resolved", chantype="PI", sourcetype="sun", genarf=arf,
                              areascal=not arf, tbinsize=int(params.spec_tbinsize), mode=mode,
                              specfile=names["pha"], arffile=names["arf"] if arf else "default",
                              **({"seed": params.seed} if params.seed is not None else {}), **hist)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cal = S.load_spec_cal(caldb, float(day.time[0]) - 0.0001, sp, rule=mode)
            out.spectrum = S.make_spectrum(day.l1, day.hk, day.sa, gres.gti, sp, cal, words=day.words)
        notes += [f"pha: {w.message}" for w in caught]
        tm["pha"] = _time.perf_counter() - t
    lday = day.lc_day()
    if "lc" in params.products:
        t = _time.perf_counter()
        t0 = float(day.time[gres.gti.contains(day.time)][0]) - LC.T0_OFFSET
        ctx = calibration_context(t0, caldb, rule=mode)
        lp = LC.LightCurveParams(lctype="standard", tbinsizesec=params.lc_tbinsizesec, areascal=True,
                                 enesel=True, enelow=params.lc_enelow, enehigh=params.lc_enehigh,
                                 mode=mode, seed=params.seed, lcfile=names["lc"], **hist)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out.lightcurve = LC.make_lightcurve(lday, gres.gti, lp, LC.lc_calibration(ctx, mode))
        notes += [f"lc: {w.message}" for w in caught]
        tm["lc"] = _time.perf_counter() - t
    if "hr" in params.products:
        t = _time.perf_counter()
        hp = LC.LightCurveParams(lctype="high-res", tbinsizems=params.hires_tbinsizems, mode=mode,
                                 lcfile=names["hr"], **hist)
        caldbver = out.lightcurve.caldbver if out.lightcurve is not None else ""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out.hires = LC.make_lightcurve(lday, gres.gti, hp, LC.LCCalibration(version=caldbver))
        notes += [f"hr: {w.message}" for w in caught]
        tm["hr"] = _time.perf_counter() - t
    for n in notes:
        log.warning("%s", n)
    return out


def write_standard_products(prod: StandardProducts, out_dir: str | Path, *,
                            overwrite: bool = True) -> dict[str, Path]:
    """Write the products with the archive names; returns kind -> path."""
    from xsm.products import spectrum as S

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = prod.names
    paths = {"gti": G.write_gti(prod.gti, out_dir / n["gti"], overwrite=overwrite)}
    if prod.spectrum is not None:
        pha, arf = S.write_spectrum(prod.spectrum, out_dir / n["pha"], arf_path=out_dir / n["arf"],
                                    overwrite=overwrite)
        paths["pha"] = pha
        if arf is not None:
            paths["arf"] = arf
    if prod.lightcurve is not None:
        paths["lc"] = LC.write_lightcurve(prod.lightcurve, out_dir / n["lc"], overwrite=overwrite)
    if prod.hires is not None:
        paths["hr"] = LC.write_lightcurve(prod.hires, out_dir / n["hr"], overwrite=overwrite)
    return paths


def standard_products(l1file: str | Path, out_dir: str | Path, *, hkfile=None, safile=None, caldb=None,
                      params: StandardParams = StandardParams(), overwrite: bool = True
                      ) -> tuple[StandardProducts, dict[str, Path]]:
    """Read a day once, make every standard product, write them (``xsm l2 standard``).

    The products record the md5 of the three level-1 files (hashed while the products are made).
    """
    from xsm.products.provenance import digests_in_background, recorded_inputs

    day = load_day(l1file, hkfile, safile)
    md5 = digests_in_background(day.files.values())
    prod = make_standard_products(day, caldb, params)
    with recorded_inputs(md5.result()):
        return prod, write_standard_products(prod, out_dir, overwrite=overwrite)


__all__ = ["DayData", "StandardParams", "StandardProducts", "load_day", "make_standard_products",
           "write_standard_products", "standard_products"]
