"""The three level-2 selections of one session (``archive.md`` §3.1, session process).

* **sun**: standard filter, calibrated area-corrected PI spectrum (type II, 60 s) and the
  area-scaled 1 s light curve (0.5-15 keV), through :mod:`xsm.products.level2`;
* **raw**: the whole observation, uncalibrated: GTI = continuity ∩ mandatory (an empty filter
  file), type-I PHA spectrum, PHA-channel light curve (channels 0-960), no area scaling;
* **cal**: the calibration source: the calibration filter (``MotorIRPos 1 1 1`` + HV,
  temperature, LV and FrameDiscard ranges), ``usesunang = no``, ``sourcetype = cal``, type-I PI
  spectrum; only when the GTI is not empty.

One in-memory read of the level-1 files feeds all three (:func:`make_selections`, pure), the
writer (:func:`write_selections`) knows the file names. The calibration spectrum is returned
with its energy grid for the Fe-55 line fit of the summary pages.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xsm.products.provenance import Mode

log = logging.getLogger(__name__)

#: Selections in the order they are made and written.
SELECTIONS = ("sun", "raw", "cal")
#: PHA channels of the uncalibrated light curve (``lightcurve.md`` §1 channel selection).
RAW_CHANNELS = (0, 960)
#: MotorIRPos value of the calibration source (``frame.md``).
CAL_POSITION = 1
#: An empty filter file: GTI = continuity ∩ mandatory.
EMPTY_FILTER_NAME = "empty_filterfile"


@dataclass
class Selection:
    """The products of one selection: GTI result, spectrum, light curve (any may be None)."""

    name: str
    gti: object | None = None
    spectrum: object | None = None
    lightcurve: object | None = None
    energy: np.ndarray | None = None     # keV, channel centres of a PI spectrum
    notes: list[str] = field(default_factory=list)

    @property
    def exposure(self) -> float:
        """Exposure of the GTI (s); 0 without one."""
        return float(self.gti.gti.exposure) if self.gti is not None else 0.0


def _quiet(fn, *a, notes: list[str], what: str, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*a, **kw)
    notes += [f"{what}: {w.message}" for w in caught]
    return out


def pi_energies(grid) -> np.ndarray:
    """Channel-centre energies (keV) of a :class:`xsm.products.pi.PIGrid`."""
    return float(grid.emin) + (np.arange(grid.n) + 0.5) * float(grid.delta)


def make_selections(day, caldb, mode: Mode = Mode.DEFAULT) -> dict[str, Selection]:
    """The sun, raw and cal selections of an in-memory level-1 day (no file written).

    Parameters
    ----------
    day : xsm.products.level2.DayData
        Science frames, HK and SA tables of one session day (row-aligned).
    caldb : path or None
        CALDB root.
    mode : Mode

    Returns
    -------
    dict
        ``{"sun": Selection, "raw": Selection, "cal": Selection}``; the cal selection has no
        products when the calibration source was never in view.
    """
    from xsm.caldb_manager.context import calibration_context
    from xsm.products import gti as G
    from xsm.products import level2 as L2
    from xsm.products import lightcurve as LC
    from xsm.products import spectrum as S

    rule = mode   # the selection rule of the processing mode (select.normalise_rule)
    t0 = float(day.time[0]) - 1e-4
    out: dict[str, Selection] = {}

    # sun: the archive recipe (area-corrected PI spectrum, area-scaled light curve)
    sun = Selection("sun")
    prod = L2.make_standard_products(day, caldb, L2.StandardParams(mode=mode, spectrum="areascal",
                                                                   products=("gti", "pha", "lc")))
    sun.gti, sun.spectrum, sun.lightcurve = prod.gti, prod.spectrum, prod.lightcurve
    sun.notes += prod.notes
    out["sun"] = sun

    # raw: whole observation, uncalibrated
    raw = Selection("raw")
    empty = G.parse_filter_text("", name=EMPTY_FILTER_NAME, mode=mode)
    raw.gti = _quiet(G.make_gti, day.hk, None, empty, usesunang=False, mode=mode,
                     hk_header=getattr(day.hk, "header", None), notes=raw.notes, what="raw gti")
    if np.any(raw.gti.gti.contains(day.time)):
        sp = S.SpectrumParams(spectype="time-integrated", chantype="PHA", sourcetype="sun", genarf=False,
                              areascal=False, mode=mode)
        cal = S.load_spec_cal(caldb, t0, sp, rule=rule)
        raw.spectrum = _quiet(S.make_spectrum, day.l1, day.hk, None, raw.gti.gti, sp, cal, words=day.words,
                              notes=raw.notes, what="raw pha")
        lp = LC.LightCurveParams(lctype="standard", tbinsizesec=1, areascal=False, enesel=False,
                                 chstart=RAW_CHANNELS[0], chstop=RAW_CHANNELS[1], mode=mode)
        ctx = calibration_context(t0, caldb, rule=rule)
        raw.lightcurve = _quiet(LC.make_lightcurve, day.lc_day(), raw.gti.gti, lp, LC.lc_calibration(ctx, mode),
                                notes=raw.notes, what="raw lc")
    out["raw"] = raw

    # cal: the calibration source, when it was in view
    calsel = Selection("cal")
    motor = np.asarray(day.hk["MotorIRPos"])
    if np.any(motor == CAL_POSITION):
        calsel.gti = _quiet(G.make_gti, day.hk, None, G.calibration_filter_file(mode), usesunang=False,
                            mode=mode, hk_header=getattr(day.hk, "header", None), notes=calsel.notes,
                            what="cal gti")
        if np.any(calsel.gti.gti.contains(day.time)):
            sp = S.SpectrumParams(spectype="time-integrated", chantype="PI", sourcetype="cal", genarf=False,
                                  areascal=False, mode=mode)
            cal = S.load_spec_cal(caldb, t0, sp, rule=rule)
            calsel.spectrum = _quiet(S.make_spectrum, day.l1, day.hk, None, calsel.gti.gti, sp, cal,
                                     words=day.words, notes=calsel.notes, what="cal pha")
            calsel.energy = pi_energies(cal.grid)
    out["cal"] = calsel
    for s in (raw, calsel):  # the sun selection's notes are logged by xsm.products.level2
        for n in s.notes:
            log.info("%s", n)
    return out


def selection_names(date_tag: str, segment: str, selection: str) -> dict[str, str]:
    """File names of a session's selection products (``<segment>_<YYYYMMDD>_<sel>.<kind>``)."""
    base = f"{segment}_{date_tag}_{selection}"
    return {"gti": base + ".gti", "pha": base + ".pha", "lc": base + ".lc"}


def write_selections(sel: dict[str, Selection], out_dir: str | Path, date_tag: str, segment: str,
                     checkpoint=None) -> dict[str, dict[str, Path]]:
    """Write every product of the selections into ``out_dir``; returns ``{sel: {kind: path}}``.

    ``checkpoint(name)`` is called after each selection (the pipeline's crash-test hook).
    """
    from xsm.products import gti as G
    from xsm.products import lightcurve as LC
    from xsm.products import spectrum as S

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, dict[str, Path]] = {}
    for name in SELECTIONS:
        s = sel.get(name)
        if s is None or s.gti is None:
            continue
        names = selection_names(date_tag, segment, name)
        got = {"gti": G.write_gti(s.gti, out_dir / names["gti"])}
        if s.spectrum is not None:
            got["pha"] = S.write_spectrum(s.spectrum, out_dir / names["pha"], overwrite=True)[0]
        if s.lightcurve is not None:
            got["lc"] = LC.write_lightcurve(s.lightcurve, out_dir / names["lc"])
        if s.energy is not None and s.spectrum is not None:
            np.savez(out_dir / f"{segment}_{date_tag}_{name}_spectrum.npz", energy=s.energy,
                     counts=np.asarray(s.spectrum.counts, dtype=np.float64).sum(axis=0))
        paths[name] = {k: Path(v) for k, v in got.items()}
        if checkpoint is not None:
            checkpoint(f"level2:{name}")
    return paths
