"""Light curves (``spec/lightcurve.md``; reference task ``xsmgenlc``).

Functional core
---------------
``make_lightcurve(day, gti, params, cal) -> LightCurve``
    Standard (1 s multiples, energy or channel selection, area scaling) or high-resolution
    (100 ms multiples, three coarse bands) light curve of an in-memory day.
    ``day`` is anything with ``time`` (float64[N], all level-1 rows), ``spectra`` (``(N, >=963)``
    PHA words, e.g. ``frame.spectrum_view(data)``), ``coarse`` (``(N, 10, 3)``, high-res only),
    ``hk`` and ``sa`` (row-aligned tables indexable by column name) and optionally ``header``
    (the level-1 science header, for compat DATE-OBS/DATE-END). :class:`DayArrays` is such an object.
``LCCalibration``
    What a standard light curve needs: the PI grid, the sun (and cal) gain tables, a relative-area
    function and the CALDB version/files. :func:`lc_calibration` builds it from a CALDB context.

Edges: :func:`write_lightcurve`, :func:`read_lightcurve` (project, golden and official files,
XSMDAS 1.50 included).

PI conversion and relative area come from the spectrum engineer's modules
(:mod:`xsm.products.pi`, :mod:`xsm.products.effarea`); nothing here re-implements them.

Modes (``quirks.md``): compat reproduces Q01 (TSTOP from the unfiltered file), Q06 (real values in
HISTORY, the garbage is not reproducible), Q08 (no -0.01 keV offset), Q11 (float32 accumulation in
the reference order), Q12 (unpropagated errors), Q16 (header layout), Q18 (CHSTART/CHSTOP with
energy selection) and Q24 (sun gain always). The default mode fixes them and draws PI with the
multinomial method (seeded numpy Generator) instead of the Wichmann-Hill stream.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.products import fitsio
from xsm.products.errors import InputFormatError, ParameterError, XsmError, warn_user
from xsm.products.float32sum import rank_in_run
from xsm.products.frame import rows_of
from xsm.products.gti import GTI
from xsm.products.met import MJDREF, date_obs_value, met_to_utc_string
from xsm.products.parallel import imap_threads
from xsm.products.provenance import Mode, Provenance

log = logging.getLogger("xsm.lightcurve")


#: t0 = first GTI frame - T0_OFFSET; t_end = last frame + TEND_OFFSET (``lightcurve.md`` §2).
T0_OFFSET = 0.001
TEND_OFFSET = 0.999
#: Duration of one coarse sub-sample (s) and their number per frame (``frame.md`` §3).
SUBSAMPLE = 0.1
N_SUB = 10
#: Frames processed per chunk. 1024 keeps a chunk's weight table (~4 MB) and per-cell arrays
#: near the CPU caches: on a day already in memory (the archive's one decode) it costs ~15 %
#: less CPU than 2048 (a whole ``xsm l2 lightcurve`` process measured the same either way).
CHUNK_FRAMES = 1024
#: Energy limit of ``enelow`` (keV; ``lightcurve.md`` §1).
ENELOW_MAX = 17.396
DEFAULT_SEED = 20210628


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class LightCurveParams:
    """Parameters of ``xsmgenlc`` (``lightcurve.md`` §1) plus the file names for HISTORY."""

    lctype: str = "standard"
    tbinsizesec: int = 1
    tbinsizems: int = 100
    areascal: bool = True
    enesel: bool = True
    enelow: float = 0.5
    enehigh: float = 15.0
    chstart: int = 0
    chstop: int = 960
    sourcetype: str = "sun"
    mode: Mode = Mode.DEFAULT
    seed: int | None = None
    l1file: str = "l1.fits"
    lcfile: str = "out.lc"
    hkfile: str = "l1.hk"
    safile: str = "l1.sa"
    gtifile: str = "l2.gti"
    eboundsfile: str = "CALDB"
    gainfile: str = "CALDB"
    abscoeffile: str = "CALDB"
    effareaparfile: str = "CALDB"
    clobber: bool = True

    @property
    def highres(self) -> bool:
        return self.lctype.lower() in ("high-res", "highres", "hires", "high_res")

    @property
    def timedel(self) -> float:
        return self.tbinsizems / 1000.0 if self.highres else float(self.tbinsizesec)

    def effective(self) -> LightCurveParams:
        """Validated parameters; high-res forces ``areascal`` and ``enesel`` off (§1)."""
        lt = self.lctype.lower()
        if lt not in ("standard", "high-res", "highres", "hires", "high_res"):
            raise ParameterError(f"lctype {self.lctype!r}: expected 'standard' or 'high-res'")
        if self.highres:
            ms = self.tbinsizems
            if int(ms) != ms or ms < 100 or int(ms) % 100:
                raise ParameterError(f"tbinsizems = {ms}: must be a multiple of 100, >= 100")
            return replace(self, lctype="high-res", areascal=False, enesel=False, tbinsizems=int(ms))
        if int(self.tbinsizesec) != self.tbinsizesec or self.tbinsizesec < 1:
            raise ParameterError(f"tbinsizesec = {self.tbinsizesec}: must be an integer >= 1")
        if self.enesel:
            if not (0.5 <= self.enelow <= self.enehigh) or not self.enelow < ENELOW_MAX:
                raise ParameterError(f"energy band {self.enelow}-{self.enehigh} keV: need "
                                     f"0.5 <= enelow <= enehigh and enelow < {ENELOW_MAX}")
        elif not (0 <= self.chstart <= self.chstop <= 1023):
            raise ParameterError(f"channels {self.chstart}-{self.chstop}: need "
                                 "0 <= chstart <= chstop <= 1023")
        if self.sourcetype.lower() not in ("sun", "cal"):
            raise ParameterError(f"sourcetype {self.sourcetype!r}: expected 'sun' or 'cal'")
        return replace(self, lctype="standard", tbinsizesec=int(self.tbinsizesec))


# --------------------------------------------------------------------------- inputs
@dataclass
class DayArrays:
    """A decoded day in memory (what :func:`make_lightcurve` reads)."""

    time: np.ndarray
    spectra: np.ndarray | None
    hk: Mapping
    sa: Mapping | None = None
    coarse: np.ndarray | None = None
    header: Mapping | None = None


RelArea = Callable[[np.ndarray, np.ndarray, np.ndarray, str], np.ndarray]


@dataclass(frozen=True)
class LCCalibration:
    """Calibration of a standard light curve.

    ``grid`` a :class:`xsm.products.pi.PIGrid`; ``gain_sun``/``gain_cal``
    :class:`xsm.products.pi.GainTable` (``GAIN``/``CALGAIN``); ``relarea(theta, phi, detposr,
    grid_name)`` -> float64[F, n] relative area on the ABSCOEF grid ``'PI_ENE'`` or ``'PHA_ENE'``
    (``effarea.md`` §4); ``version`` CALDBVER; ``files`` code -> basename.
    """

    grid: object = None
    gain_sun: object = None
    gain_cal: object = None
    relarea: RelArea | None = None
    version: str = ""
    files: dict = field(default_factory=dict)
    area: object = None          # xsm.products.effarea.AreaParams (fast default-mode path)
    coefs: dict = field(default_factory=dict)   # 'PI_ENE'/'PHA_ENE' -> effarea.AbsCoef


def lc_calibration(context, mode: Mode = Mode.DEFAULT, *, need_cal_gain: bool = False) -> LCCalibration:
    """Build :class:`LCCalibration` from a CALDB context (``.path(code)``, ``.version``).

    Uses :mod:`xsm.products.pi` for the grid and gain tables and :mod:`xsm.products.effarea`
    for the relative area.
    """
    from xsm.products import pi as PI

    files = {}

    def path(code):
        p = Path(context.path(code))
        files[code] = p.name
        return p

    with fitsio.open_fits(path("EBOUNDS"), what="EBOUNDS file", memmap=False) as h:
        ext = fitsio.require_extension(h, "EBOUNDS", h.filename())
        grid = PI.PIGrid.from_ebounds(np.array(ext.data.field(1)), np.array(ext.data.field(2)))
    gpath = path("GAIN")
    with fitsio.open_fits(gpath, what="gain file", memmap=False) as h:
        gain_sun = PI.gain_table(fitsio.require_extension(h, "GAIN", gpath), "GAIN")
        gain_cal = PI.gain_table(h["CALGAIN"], "CALGAIN") if "CALGAIN" in h else None
    relarea = area = None
    coefs: dict = {}
    try:
        abspath, effpath = path("ABSCOEF"), path("EFFAREAPAR")
    except XsmError:  # not selected (SelectionError): area files only needed with areascal
        abspath = effpath = None
    if abspath is not None:
        from xsm.products import effarea as EA

        area = EA.area_params(effpath)
        coefs = {"PI_ENE": EA.abs_coef(abspath, "PI"), "PHA_ENE": EA.abs_coef(abspath, "PHA")}
        relarea = _effarea_relarea(area, coefs, mode)
    return LCCalibration(grid=grid, gain_sun=gain_sun, gain_cal=gain_cal, relarea=relarea,
                         version=str(getattr(context, "version", "")), files=files, area=area,
                         coefs=coefs)


def _effarea_relarea(area, coefs: dict, mode: Mode) -> RelArea:
    """Relative-area function backed by :func:`xsm.products.effarea.relative_area` (§4)."""
    from xsm.products import effarea as EA

    def relarea(theta, phi, detposr, grid_name: str) -> np.ndarray:
        return EA.relative_area(theta, phi, detposr, area, coefs[grid_name], mode)

    return relarea


class _FastRelArea:
    """Relative area ``A/A0`` of ``effarea.md`` §4 evaluated with two exponentials per value.

    Same model and parameters as :func:`xsm.products.effarea.relative_area` (its per-frame terms
    and cells come from :func:`xsm.products.effarea.frame_terms`), regrouped as
    ``r = scale/A0 · exp(-B_cell(E)/c) · (1 - exp(-D_cell(E)/c))`` with ``B = μ_Be t_Be +
    μ_Si t_deadSi + μ_SiO2 t_SiO2`` and ``D = μ_Si t_det`` precomputed per cell: equal to the
    product form to ~1e-15 relative. Used by the default mode only (compat calls effarea itself).
    """

    def __init__(self, area, coef, lo: int, hi: int):
        from xsm.products import effarea as EA

        self.EA = EA
        self.area = area
        sl = slice(lo, hi)
        self.mbe, self.msi, self.msio = coef.be[sl], coef.si[sl], coef.sio2[sl]
        a0 = EA.onaxis_area(area, coef)[sl]
        self.good = a0 > EA.ONAXIS_MIN_AREA_CM2
        self.inv_a0 = np.where(self.good, 1.0 / np.where(self.good, a0, 1.0), 0.0)

    def __call__(self, theta, phi, detposr) -> np.ndarray:
        """Relative area r (F, nE)."""
        return 1.0 / self.inverse(theta, phi, detposr)

    def inverse(self, theta, phi, detposr, out: np.ndarray | None = None) -> np.ndarray:
        """1/r (F, nE) = A0/scale · exp(B/c) / (1 - exp(-D/c)), computed in place.

        ``out`` (optional, float64 (F, nE), may be a strided column slice of a larger array)
        receives the result: each frame group costs one multiply and one ``exp`` over the whole
        block, an ``expm1`` and a division only for the energies where ``1 - exp(-D/c)`` differs
        from 1, and two in-place scalings (no temporaries of the block's size).
        """
        EA, P = self.EA, self.area
        terms = EA.frame_terms(theta, phi, detposr, P, Mode.DEFAULT)
        F = terms.cell.size
        if out is None:
            out = np.empty((F, self.mbe.size))
        ucell, ci = np.unique(terms.cell, return_inverse=True)
        a0 = np.where(self.good, 1.0 / np.where(self.inv_a0 > 0, self.inv_a0, 1.0), 0.0)
        inv_scale = 1.0 / terms.scale
        for u, cell in enumerate(ucell):
            rows = None if ucell.size == 1 else np.flatnonzero(ci == u)
            if rows is not None and rows[-1] - rows[0] == rows.size - 1:
                rows = slice(int(rows[0]), int(rows[-1]) + 1)   # one run of frames: a view
            ic = terms.inv_c[:, None] if rows is None else terms.inv_c[rows][:, None]
            B = (float(P.be[cell]) * self.mbe + float(P.deadsi[cell]) * self.msi
                 + float(P.sio2[cell]) * self.msio)
            D = float(P.detsi[cell]) * self.msi
            if rows is None:
                r = out
            elif isinstance(rows, slice):
                r = out[rows]                      # computed in place
            else:
                r = np.empty((rows.size, B.size))  # scattered into out below
            np.multiply(ic, B[None, :], out=r)
            np.exp(r, out=r)
            # 1 - exp(-D/c) is exactly 1.0 in double once D/c > 40: skip those energies
            need = np.flatnonzero(D * float(np.min(ic)) <= 40.0)
            if need.size:
                # one contiguous run of energies (a view): inside it, energies with D/c > 40
                # get -expm1(-D/c) = 1.0 exactly, as if skipped
                need = slice(int(need[0]), int(need[-1]) + 1)
                t = np.multiply(ic, -D[None, need])
                np.expm1(t, out=t)
                np.negative(t, out=t)
                r[:, need] /= t
            r *= a0
            r *= (inv_scale[:, None] if rows is None else inv_scale[rows][:, None])
            if rows is not None and not isinstance(rows, slice):
                out[rows] = r
        if not self.good.all():
            out[:, ~self.good] = 1.0
        return out


# --------------------------------------------------------------------------- product
@dataclass
class LightCurveBand:
    """One extension: TIME (bin start), RATE, ERROR, FRACEXP and its channel/energy band."""

    extname: str
    time: np.ndarray
    rate: np.ndarray
    error: np.ndarray
    fracexp: np.ndarray
    chstart: int | None = None
    chstop: int | None = None

    def __len__(self) -> int:
        return int(self.time.size)


@dataclass
class LightCurve:
    bands: list
    tstart: float
    tstop: float
    timedel: float
    params: LightCurveParams
    date_obs: str = ""
    date_end: str = ""
    caldbver: str = ""
    caldb_files: dict = field(default_factory=dict)
    pistart: int | None = None
    pistop: int | None = None
    e_min: float | None = None
    e_max: float | None = None
    nframes: int = 0
    notes: list = field(default_factory=list)
    header: Mapping | None = None

    @property
    def mode(self) -> Mode:
        return self.params.mode

    @property
    def exposure(self) -> float:
        """Σ FRACEXP·TIMEDEL of the first band (``products.md`` §8)."""
        if not self.bands:
            return 0.0
        return float(np.sum(self.bands[0].fracexp.astype(np.float64)) * self.timedel)

    def __getitem__(self, extname: str) -> LightCurveBand:
        for b in self.bands:
            if b.extname == extname:
                return b
        raise KeyError(extname)


# --------------------------------------------------------------------------- helpers
def _col(table, name):
    try:
        return np.asarray(table[name])
    except (KeyError, ValueError, IndexError):
        raise InputFormatError(f"level-1 table lacks column {name}") from None


def time_range(t_all: np.ndarray, sel: np.ndarray, mode: Mode) -> tuple[float, float]:
    """t0 and t_end (``lightcurve.md`` §2): compat t_end from the unfiltered file (Q01)."""
    t0 = float(t_all[sel[0]]) - T0_OFFSET
    if mode == Mode.XSMDAS_1_2:
        t_end = float(t_all[-1]) + TEND_OFFSET   # Q01
    else:
        t_end = float(t_all[sel[-1]]) + TEND_OFFSET
    return t0, t_end


def _bins(t: np.ndarray, t0: float, dt: float, nbins: int) -> np.ndarray:
    return np.trunc((t - t0) / dt).astype(np.int64)


def pi_band(grid, enelow: float, enehigh: float) -> tuple[int, int]:
    """PIstart/PIstop (``lightcurve.md`` §3): trunc((E - Emin)/Δ) in double on float32 values."""
    emin, delta, emax = float(grid.emin), float(grid.delta), float(grid.emax)
    if not (emin <= enelow < emax and emin <= enehigh < emax):
        raise ParameterError(f"energy band {enelow}-{enehigh} keV outside the EBOUNDS range "
                             f"[{emin:g}, {emax:g}) keV")
    return int(np.trunc((enelow - emin) / delta)), int(np.trunc((enehigh - emin) / delta))


def _finish(bins: np.ndarray, csum: np.ndarray, var: np.ndarray | None, nsub: np.ndarray,
            dt: float, per_unit: float, t0: float, mode: Mode):
    """RATE, ERROR, FRACEXP of the bins with exposure (``lightcurve.md`` §3, §4)."""
    keep = np.flatnonzero(nsub > 0)
    n = nsub[keep].astype(np.float64)
    if mode == Mode.XSMDAS_1_2:
        frac = (n / per_unit).astype(np.float32)
        denom = np.float64(dt) * frac.astype(np.float64)
        c = csum[keep].astype(np.float64)
        rate = (c / denom).astype(np.float32)
        err = (np.sqrt(c) / denom).astype(np.float32)
    else:
        frac64 = n / per_unit
        denom = dt * frac64
        c = csum[keep].astype(np.float64)
        rate = (c / denom).astype(np.float32)
        v = c if var is None else var[keep]
        err = (np.sqrt(v) / denom).astype(np.float32)
        frac = frac64.astype(np.float32)
    time = t0 + keep.astype(np.float64) * dt
    return time, rate, err, frac


# --------------------------------------------------------------------------- standard
def _frame_gain(params: LightCurveParams, cal: LCCalibration, hk_sel, sa_sel):
    from xsm.products import pi as PI

    compat = params.mode == Mode.XSMDAS_1_2
    tec = _col(hk_sel, "TECCurrent")
    if compat or params.sourcetype.lower() == "sun":   # Q24: compat always uses the sun gain
        if sa_sel is None:
            raise ParameterError("energy selection with the sun gain needs the sun-angle (.sa) file")
        table, radius = cal.gain_sun, _col(sa_sel, "DetPosR")
    else:
        if cal.gain_cal is None:
            raise ParameterError("sourcetype = cal: the gain file has no CALGAIN extension")
        table, radius = cal.gain_cal, None
    # Q08: compat light curves do not apply the -0.01 keV spectrum offset
    return PI.frame_gain(tec, radius, table, offset_tweak=not compat)


def _standard(day, sel, params: LightCurveParams, cal: LCCalibration | None, t0, nbins, rng):
    """Per-bin sums C_j (and default-mode variances) of a standard light curve."""
    from xsm.products import pi as PI

    compat = params.mode == Mode.XSMDAS_1_2
    dt = float(params.tbinsizesec)
    t = day.time[sel].astype(np.float64)
    b = _bins(t, t0, dt, nbins)
    nframes = np.bincount(b, minlength=nbins)
    hk_sel = _take(day.hk, sel)
    sa_sel = _take(day.sa, sel) if day.sa is not None else None
    info: dict = {}
    if params.enesel:
        if cal is None or cal.grid is None:
            raise ParameterError("energy selection needs EBOUNDS and GAIN calibration")
        k1, k2 = pi_band(cal.grid, params.enelow, params.enehigh)
        info.update(pistart=k1, pistop=k2, e_min=float(cal.grid.emin) + k1 * float(cal.grid.delta),
                    e_max=float(cal.grid.emin) + (k2 + 1) * float(cal.grid.delta))
        fg = _frame_gain(params, cal, hk_sel, sa_sel)
        lo_c, hi_c = k1, k2 + 1
        grid_name = "PI_ENE"
    else:
        lo_c, hi_c = params.chstart, params.chstop + 1
        grid_name = "PHA_ENE"
    if params.areascal:
        if cal is None or cal.relarea is None:
            raise ParameterError("area scaling needs the ABSCOEF and EFFAREAPAR calibration")
        if sa_sel is None:
            raise ParameterError("area scaling needs the sun-angle (.sa) file")
        theta, phi, rpos = (_col(sa_sel, "Theta"), _col(sa_sel, "Phi"), _col(sa_sel, "DetPosR"))
        if np.any(~np.isfinite(theta)):
            raise ParameterError("a GTI frame has no sun geometry (NaN Theta): area scaling impossible")
    if params.enesel and not compat:
        csum, var = _default_energy_sums(day.spectra, sel, fg, cal, k1, k2, b, nbins, rng,
                                         (theta, phi, rpos) if params.areascal else None)
        return csum, var, nframes, info
    csum32 = np.zeros(nbins, dtype=np.float32)
    csum = np.zeros(nbins, dtype=np.float64)
    var = np.zeros(nbins, dtype=np.float64)
    spectra = day.spectra
    F = t.size
    dither = params.enesel and compat
    if dither:
        # bounded by counts (a flare's frames hold ten times more), each chunk entering the
        # one-deviate-per-count Wichmann-Hill stream at its own first draw (spectrum.md §6.3)
        from xsm.products.wichmann_hill import WichmannHill

        chunks = PI.chunks_by_counts(spectra, sel)
    else:
        chunks = [(a, min(F, a + CHUNK_FRAMES), 0) for a in range(0, F, CHUNK_FRAMES)]

    def terms(chunk):
        """Frames a..z: per-frame band terms n/r and n/r² (``(frames, channels)`` in compat,
        summed over the band otherwise)."""
        a, z, first_draw = chunk
        words = np.asarray(spectra[sel[a:z]]).astype(np.int64)
        if params.enesel:   # compat here: the default mode's energy selection is elsewhere
            pif = PI.pi_compat(words, fg.gain[a:z], fg.offset[a:z], cal.grid, WichmannHill(first_draw))
            n_band = pif.counts[:, lo_c:hi_c].astype(np.float64)
        else:
            full = np.zeros((z - a, 1024), dtype=np.float64)
            full[:, :words.shape[1]] = words[:, :1024]
            n_band = full[:, lo_c:hi_c]
        term = vterm = n_band
        if params.areascal:
            r = np.asarray(cal.relarea(theta[a:z], phi[a:z], rpos[a:z], grid_name),
                           dtype=np.float64)[:, lo_c:hi_c]
            term = n_band / r
            vterm = n_band / (r * r)
        if compat:
            return a, z, term, None
        return a, z, term.sum(axis=1), vterm.sum(axis=1)

    # chunks on threads, a few ahead; the sums here, in frame order (Q11 in compat)
    for a, z, term, vsum in imap_threads(terms, chunks):
        bb = b[a:z]
        if compat:
            _accumulate_f32(csum32, bb, term)
        else:
            csum += np.bincount(bb, weights=term, minlength=nbins)
            var += np.bincount(bb, weights=vsum, minlength=nbins)
    if compat:
        return csum32, None, nframes, info
    return csum, var, nframes, info


#: Categories of a 9-bit channel in :func:`_default_energy_sums`: all counts stay in PI bin k0
#: (or its bins have equal weights), X1 ~ Binomial(n, p1) move to k0 + 1, all n move (p1 = 1),
#: three bins or a grid edge (sequential binomials).
_CH_BASE, _CH_DRAW, _CH_MOVE, _CH_SEQUENTIAL = 0, 1, 2, 3


def _default_energy_sums(spectra, sel, fg, cal: LCCalibration, k1: int, k2: int, b, nbins: int,
                         rng: np.random.Generator, geometry=None, threads: int | None = None):
    """Default mode, energy selection: Σ n/r and Σ n/r² per bin (``lightcurve.md`` §3, Q12).

    Multinomial PHA -> PI of ``spectrum.md`` §14, drawn per frame (area scaling forbids grouping
    frames), but only for the (frame, 9-bit channel) cells that hold counts. The probabilities
    depend on the gain cell alone and are computed once per distinct cell. A channel whose
    dithered interval covers two PI bins inside the grid (the usual case, 2·gain ≈ Δ) puts its
    n counts in bin k0 and moves X1 ~ Binomial(n, p1) of them to k0 + 1; the draw is skipped
    when both bins have the same weight for every frame (both outside the band, or both inside
    it without area scaling), where X1 cannot change the sums, so it is exact. Other channels use
    the sequential-binomial form of the multinomial. The weights (1/r on the band's PI bins,
    :class:`_FastRelArea`) are one ``[frames x PI bins]`` array per chunk; the counts of all
    gain cells of a chunk are handled at once through flat (frame, channel) indices, and each
    frame's sums are one weighted ``bincount`` over its non-empty channels. Frame
    chunks run on ``threads`` threads, each with its own child generator (``rng.spawn``), so the
    result depends on the seed only.
    """
    from xsm.products import pi as PI
    from xsm.products.parallel import map_threads

    grid = cal.grid
    M = PI.LAST_CHANNEL // 2 + 1                      # 481 9-bit channels, Q10: words 961/962 dropped
    ucell, first, cinv = np.unique(fg.cell, return_index=True, return_inverse=True)
    k0u, pu = PI.channel_probabilities(fg.gain[first], fg.offset[first], grid, M)
    simple_u = (pu[..., 2] == 0) & (np.abs(pu[..., 0] + pu[..., 1] - 1.0) < 1e-12)
    p1u = pu[..., 1]
    fast = _FastRelArea(cal.area, cal.coefs["PI_ENE"], k1, k2 + 1) if geometry is not None else None
    F = sel.size
    starts = list(range(0, F, CHUNK_FRAMES))
    rngs = rng.spawn(len(starts)) if starts else []

    nfull = grid.n + 4          # padded weight table: column k + 1 holds PI bin k (k = -1 .. n + 2)
    # a PI bin's weight is the same for every frame when it is outside the band (0) or, without
    # area scaling, inside it (1): a two-bin channel whose two bins have equal weights contributes
    # n·W[k0] whatever its split, so it needs no draw (exact; with the defaults only the channels
    # straddling a band edge are drawn without area scaling, and none outside the band with it)
    inband = np.zeros(nfull, bool)
    inband[k1 + 1:k2 + 2] = True
    # per gain cell u and 9-bit channel m (tables flattened on u·M + m): first padded column of
    # the channel's PI bins, the column its unsplit counts go to (column 0 = PI bin -1, weight 0
    # since k1 >= 0, for three-bin channels, which are all handled by the sequential draws) and
    # the category; frames then need no grouping by cell
    idx0 = np.clip(k0u, -1, grid.n + 1) + 1
    split = inband[idx0] != inband[idx0 + 1] if fast is None else inband[idx0] | inband[idx0 + 1]
    cat = np.full(k0u.shape, _CH_BASE, np.int8)
    cat[simple_u & split & (p1u > 0) & (p1u < 1.0)] = _CH_DRAW
    cat[simple_u & split & (p1u >= 1.0)] = _CH_MOVE
    cat[~simple_u] = _CH_SEQUENTIAL
    base_col = np.where(simple_u, idx0, 0).ravel()
    next_col = (idx0 + 1).ravel()              # the column of PI bin k0 + 1
    any_move = bool(np.any(cat == _CH_MOVE))
    cat, k0f, p1f = cat.ravel(), k0u.ravel(), p1u.ravel()
    pf = pu.reshape(-1, pu.shape[-1])

    def work(i: int):
        a = starts[i]
        z = min(F, a + CHUNK_FRAMES)
        nz = z - a
        g = rngs[i]
        # 9-bit counts (int32) straight from the big-endian words, a view for one GTI interval
        n9 = PI.nine_bit(rows_of(spectra, sel[a:z]), Mode.DEFAULT)
        ci = cinv[a:z]
        # weights per frame and PI bin: 1/r inside the band, 0 outside
        W = np.empty((nz, nfull))
        W[:, :k1 + 1] = 0.0
        W[:, k2 + 2:] = 0.0
        if fast is None:
            W[:, k1 + 1:k2 + 2] = 1.0
        else:
            fast.inverse(*(gg[a:z] for gg in geometry), out=W[:, k1 + 1:k2 + 2])
        # the (frame, channel) cells holding counts, row-major (flat indices: several times
        # faster than a 2-D nonzero); everything below is per such cell, nothing per PI bin
        flat = np.flatnonzero(n9)
        f = flat // M                              # (np.divmod is slower here)
        m = flat - f * M
        cnt = n9.ravel()[flat].astype(np.int64)
        key = ci[f] * M + m if ucell.size > 1 else m
        cm = cat[key]
        # every count of a two-bin channel first goes to k0 (weight wa; three-bin channels point
        # at the zero column 0 and are all handled below) ...
        Wflat = W.ravel()
        row0 = f * nfull
        wa = Wflat[row0 + base_col[key]]
        wb = Wflat[row0 + next_col[key]]
        # ... then X1 ~ Binomial(n, p1) of them move to k0 + 1 (all of them when p1 = 1)
        x1 = np.where(cm == _CH_MOVE, cnt, 0) if any_move else np.zeros_like(cnt)
        # a single count is a Bernoulli draw: one uniform, ~10x cheaper than numpy's binomial
        # (same distribution; about a quarter of the draws at the usual rates)
        draw = cm == _CH_DRAW
        single = draw & (cnt == 1)
        dr = np.flatnonzero(single)
        x1[dr] = g.random(dr.size) < p1f[key[dr]]
        dr = np.flatnonzero(draw ^ single)
        x1[dr] = g.binomial(cnt[dr], p1f[key[dr]])
        d = wb - wa
        cf = np.bincount(f, weights=cnt * wa + x1 * d, minlength=nz)
        vf = np.bincount(f, weights=cnt * (wa * wa) + x1 * (d * (wb + wa)), minlength=nz)
        # other channels (three bins, grid edges): sequential binomials
        oc = np.flatnonzero(cm == _CH_SEQUENTIAL)
        if oc.size:
            ko = key[oc]
            rf = f[oc]
            rem = cnt[oc].astype(np.int64)
            po = pf[ko]
            pleft = np.ones(rem.size)
            for jj in range(3):
                pj = po[:, jj]
                with np.errstate(invalid="ignore", divide="ignore"):
                    q = np.where(pleft > 0, np.clip(pj / pleft, 0.0, 1.0), 0.0)
                xj = np.where(q >= 1.0, rem, 0)
                dd = (rem > 0) & (q > 0) & (q < 1.0)
                xj[dd] = g.binomial(rem[dd], q[dd])
                rem = rem - xj
                pleft = pleft - pj
                wc = Wflat[rf * nfull + np.clip(k0f[ko] + jj, -1, grid.n + 2) + 1]
                cf += np.bincount(rf, weights=xj * wc, minlength=nz)
                vf += np.bincount(rf, weights=xj * wc * wc, minlength=nz)
        return a, z, cf, vf

    csum = np.zeros(nbins)
    var = np.zeros(nbins)
    results = map_threads(work, range(len(starts)), threads)
    for a, z, cf, vf in results:
        bb = b[a:z]
        csum += np.bincount(bb, weights=cf, minlength=nbins)
        var += np.bincount(bb, weights=vf, minlength=nbins)
    return csum, var


def _accumulate_f32(acc: np.ndarray, bins: np.ndarray, term: np.ndarray) -> None:
    """Q11: float32 accumulator, one channel term at a time, frames in order, channels ascending;
    each addition evaluated in double and rounded to float32 (``lightcurve.md`` §3)."""
    rank = rank_in_run(bins)
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        m = rank == r
        bb = bins[m]
        tt = term[m]
        a = acc[bb].astype(np.float64)
        for k in range(tt.shape[1]):
            a = (a + tt[:, k]).astype(np.float32).astype(np.float64)
        acc[bb] = a.astype(np.float32)


def _take(table, idx):
    if table is None:
        return None
    if isinstance(table, Mapping):
        return {k: np.asarray(v)[idx] for k, v in table.items()}
    data = getattr(table, "data", None)
    if getattr(getattr(data, "dtype", None), "names", None):   # Level1Table
        return data[idx]
    return table[idx]


# --------------------------------------------------------------------------- high-res
def _highres(day, sel, params: LightCurveParams, t0, nbins):
    dt = params.tbinsizems / 1000.0
    t = day.time[sel].astype(np.float64)
    coarse = np.asarray(day.coarse[sel]).astype(np.int64)      # (F, 10, 3)
    ts = t[:, None] + SUBSAMPLE * np.arange(N_SUB)[None, :]
    b = np.trunc((ts - t0) / dt).astype(np.int64).ravel()
    ok = (b >= 0) & (b < nbins)
    nsub = np.bincount(b[ok], minlength=nbins)
    sums = [np.bincount(b[ok], weights=coarse[:, :, k].ravel()[ok], minlength=nbins) for k in range(3)]
    return sums, nsub


# --------------------------------------------------------------------------- the task
def make_lightcurve(day, gti: GTI, params: LightCurveParams, cal: LCCalibration | None = None,
                    *, rng: np.random.Generator | None = None) -> LightCurve:
    """A standard or high-resolution light curve of an in-memory day (``lightcurve.md``).

    Parameters
    ----------
    day : DayArrays-like
        ``time`` (all level-1 rows), ``spectra`` (standard), ``coarse`` (high-res), ``hk``, ``sa``.
    gti : GTI
        Frames with START < t < STOP are used (``gti.md`` §2.6).
    params : LightCurveParams
    cal : LCCalibration, optional
        Needed for energy selection and area scaling; its ``version`` is CALDBVER.
    rng : numpy Generator, optional
        Default mode only; default ``default_rng(params.seed or DEFAULT_SEED)``.
    """
    params = params.effective()
    mode = params.mode
    t_all = np.asarray(day.time, dtype=np.float64)
    sel = np.flatnonzero(gti.contains(t_all))
    notes: list[str] = []
    hdr = getattr(day, "header", None) or {}
    if sel.size == 0:
        raise ParameterError("no level-1 frame inside the GTI: no light curve can be made")
    t0, t_end = time_range(t_all, sel, mode)
    dt = params.timedel
    nbins = int(np.trunc((t_end - t0) / dt)) + 1
    info: dict = {}
    if params.highres:
        if day.coarse is None:
            raise ParameterError("high-res light curve needs the coarse (100 ms) counters")
        sums, nsub = _highres(day, sel, params, t0, nbins)
        hk = day.hk
        bands = []
        per_unit = dt / SUBSAMPLE
        for k in range(3):
            cs = np.asarray(_col(hk, f"Ch{k + 1}Start"))[sel]
            ce = np.asarray(_col(hk, f"Ch{k + 1}Stop"))[sel]
            if np.any(cs != cs[0]) or np.any(ce != ce[0]):
                distinct = sorted({(int(a), int(b)) for a, b in zip(cs, ce)})
                msg = (f"band {k + 1}: channel limits change inside the GTI "
                       f"({', '.join(f'{a}-{b}' for a, b in distinct)}); keywords give the first")
                warn_user(msg)
                notes.append(msg)
            s = sums[k]
            if mode == Mode.XSMDAS_1_2:
                s = s.astype(np.float32)
            time, rate, err, frac = _finish(np.arange(nbins), s, None, nsub, dt, per_unit, t0, mode)
            bands.append(LightCurveBand(f"RATE_BAND{k + 1}", time, rate, err, frac,
                                        int(cs[0]), int(ce[0])))
    else:
        if mode == Mode.DEFAULT and rng is None:
            rng = np.random.default_rng(params.seed if params.seed is not None else DEFAULT_SEED)
        csum, var, nframes, info = _standard(day, sel, params, cal, t0, nbins, rng)
        time, rate, err, frac = _finish(np.arange(nbins), csum, var, nframes, dt, dt, t0, mode)
        bands = [LightCurveBand("RATE", time, rate, err, frac, params.chstart, params.chstop)]
    if mode == Mode.XSMDAS_1_2 and "DATE-OBS" in hdr:
        date_obs, date_end = str(hdr["DATE-OBS"]), str(hdr.get("DATE-END", hdr["DATE-OBS"]))  # Q13
    else:
        date_obs, date_end = met_to_utc_string(t0), met_to_utc_string(t_end)
    if mode == Mode.DEFAULT and params.seed is None and not params.highres and params.enesel:
        params = replace(params, seed=DEFAULT_SEED)
    return LightCurve(bands=bands, tstart=t0, tstop=t_end, timedel=dt, params=params,
                      date_obs=date_obs, date_end=date_end,
                      caldbver=(cal.version if cal is not None else "") or "",
                      caldb_files=dict(cal.files) if cal is not None else {},
                      nframes=int(sel.size), notes=notes, header=hdr, **info)


# --------------------------------------------------------------------------- FITS edges
def _cards(h: fits.Header, cards) -> None:
    for c in cards:
        h[c[0]] = (c[1], c[2]) if len(c) > 2 else c[1]


def history_lines(lc: LightCurve) -> list[str]:
    """The reference HISTORY block (``products.md`` §7); Q06: real values, ``%lf``."""
    p = lc.params
    L = [f"l1file = {Path(p.l1file).name}", f"lcfile = {Path(p.lcfile).name}", f"lctype = {p.lctype}"]
    yn = fitsio.format_history_value
    if not p.highres:
        L += [f"areascal = {yn(p.areascal)}", f"enesel = {yn(p.enesel)}"]
        if p.enesel:
            L += [f"enelow = {float(p.enelow):f}", f"enehigh = {float(p.enehigh):f}",
                  f"eboundsfile = {p.eboundsfile}", f"gainfile = {p.gainfile}"]
        else:
            L += [f"chstart = {int(p.chstart):d}", f"chstop = {int(p.chstop):d}"]
        L.append(f"tbinsizesec = {int(p.tbinsizesec):d}")
    else:
        L.append(f"tbinsizems = {int(p.tbinsizems):d}")
    L.append(f"hkfile = {Path(p.hkfile).name}")
    if p.areascal or p.enesel:
        L.append(f"safile = {Path(p.safile).name}")
    L.append(f"gtifile = {Path(p.gtifile).name}")
    if p.areascal:
        L += [f"abscoeffile = {p.abscoeffile}", f"effareaparfile = {p.effareaparfile}"]
    L.append(f"clobber = {yn(p.clobber)}")
    return fitsio.history_block("XSMGENLC", L)


def _provenance(lc: LightCurve) -> Provenance:
    p = lc.params
    seed = p.seed if (p.mode == Mode.DEFAULT and not p.highres and p.enesel) else None
    return Provenance(step="lightcurve", mode=p.mode, caldb_version=lc.caldbver or None,
                      caldb_files=dict(lc.caldb_files), rng_seed=seed,
                      parameters={k: v for k, v in p.__dict__.items() if k != "mode"})


def lightcurve_hdulist(lc: LightCurve, filename: str, *, date: str | None = None,
                       provenance: Provenance | None = None) -> fits.HDUList:
    """The ``.lc`` file (``products.md`` §5) as an HDUList, in the mode's header layout."""
    mode = lc.mode
    compat = mode == Mode.XSMDAS_1_2
    creator = "xsmgenlc" if compat else "xsm.lightcurve"
    date = date or fitsio.date_keyword(mode)
    prov = provenance or _provenance(lc)
    hl = [fitsio.primary_hdu(filename, creator, "Light curve", date=date, mode=mode)]
    nb = len(lc.bands)
    for i, band in enumerate(lc.bands):
        first, last = i == 0, i == nb - 1
        cols = [fits.Column("TIME", "D", unit="s", array=band.time),
                fits.Column("RATE", "E", unit="count/s", array=band.rate),
                fits.Column("ERROR", "E", unit="counts/s", array=band.error),
                fits.Column("FRACEXP", "E", array=band.fracexp)]
        ext = fitsio.bintable_hdu(cols, name=band.extname)
        h = ext.header
        _cards(h, [("DATE-OBS", date_obs_value(lc.date_obs, mode), "Date observation start"),
                             ("DATE-END", date_obs_value(lc.date_end, mode), "Date observation end"),
                             ("TSTART", float(lc.tstart), "Start Time"),
                             ("TSTOP", float(lc.tstop), "Stop Time"),
                             ("TIMESYS", "UTC", "Time system"), ("MJDREF", MJDREF, "MJD reference")])
        for k, v in fitsio.common_keywords(filename, creator, date=date, mode=mode):
            if k in ("MISSION", "TELESCOP", "INSTRUME", "ORIGIN", "CREATOR"):
                h[k] = v
        _cards(h, [("HDUCLASS", "OGIP", "OGIP Standard"), ("HDUCLAS1", "LIGHTCURVE"),
                             ("HDUCLAS2", "TOTAL", "total lc")])
        if compat:   # Q16: TIMESYS written twice
            h.append(("TIMESYS", "UTC", "Time measured from"), useblanks=False, bottom=True)
        else:
            h["HDUCLAS3"] = ("RATE", "rate, not counts")
        _cards(h, [("TIMEREF", "LOCAL", "reference time"),
                             ("TIMEUNIT", "s", "unit for time keywords"),
                             ("TELAPSE", float(lc.tstop) - float(lc.tstart), "elapsed time"),
                             ("TIMEDEL", float(lc.timedel), "delta time")])
        p = lc.params
        if p.highres or compat or not p.enesel:   # Q18: compat keeps CHSTART/CHSTOP with enesel
            _cards(h, [("CHSTART", int(band.chstart), "PHA channel start"),
                                 ("CHSTOP", int(band.chstop), "PHA channel stop")])
        if not p.highres and p.enesel and not compat:
            _cards(h, [("E_MIN", float(lc.e_min), "[keV] lower edge of the energy band"),
                                 ("E_MAX", float(lc.e_max), "[keV] upper edge of the energy band"),
                                 ("PISTART", int(lc.pistart), "first PI channel"),
                                 ("PISTOP", int(lc.pistop), "last PI channel")])
        if first or not compat:
            h["XSMDASVE"] = (fitsio.XSMDASVE, "Version of XSMDAS that created this file")
        h["CALDBVER"] = (lc.caldbver, "Version of XSM CALDB used")
        h["EXTVER"] = 1
        if first or not compat:   # Q16: high-res compat has these only in the first extension
            h["FILENAME"] = filename
            h["DATE"] = date
        from xsm.products.provenance import SOFTWARE_VERSION

        h["XSMSWVER"] = SOFTWARE_VERSION
        if not compat:
            _cards(h, [("TIMEPIXR", 0.0, "TIME is the bin start"),
                                 ("EXPOSURE", lc.exposure, "[s] sum of FRACEXP*TIMEDEL")])
        fitsio.set_cards(h, fitsio.provenance_keywords(prov))
        if last or not compat:   # Q16: compat HISTORY only in the last extension
            fitsio.add_history(h, history_lines(lc))
            fitsio.add_history(h, [f"note: {n}" for n in lc.notes])
            fitsio.add_history(h, fitsio.provenance_history(prov))
        hl.append(ext)
    return fits.HDUList(hl)


def write_lightcurve(lc: LightCurve, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write the ``.lc`` file atomically."""
    path = Path(path)
    if not lc.params.lcfile or lc.params.lcfile == "out.lc":
        lc.params = replace(lc.params, lcfile=path.name)
    hdul = lightcurve_hdulist(lc, path.name)
    return fitsio.write_fits_atomic(hdul, path, overwrite=overwrite, checksum=lc.mode == Mode.DEFAULT)


def read_lc_inputs(l1file: str | Path, hkfile: str | Path, safile: str | Path | None,
                   params: LightCurveParams) -> DayArrays:
    """The level-1 columns a light curve needs, read without decoding anything else.

    Science ``Time`` and ``DataArray`` (memory-mapped, not copied), the HK columns
    (``TECCurrent`` and the coarse band limits) and, for area scaling or energy selection, the
    SA columns ``Theta``, ``Phi``, ``DetPosR``.
    """
    from xsm.products import frame
    from xsm.products.gti import read_columns
    from xsm.products.level1 import check_aligned

    p = params.effective()
    sci, sh = read_columns(l1file, "DATA", ["Time", "DataArray"], "level-1 science file",
                           mapped=("DataArray",))
    data = sci["DataArray"]       # frames stay in the (page-cached) map: only GTI rows are read
    if data.dtype != np.uint8:
        raise InputFormatError(f"{l1file}: DataArray is {data.dtype}, not bytes")
    hk_names = ["Time", "TECCurrent"] + [f"Ch{k}{e}" for k in (1, 2, 3) for e in ("Start", "Stop")]
    hk, _ = read_columns(hkfile, "HKPARAM", hk_names, "level-1 housekeeping file")
    sa = None
    if not p.highres and (p.areascal or p.enesel) and safile is not None:
        sa, _ = read_columns(safile, "SUNANG", ["Time", "Theta", "Phi", "DetPosR"], "level-1 sun-angle file")
    for tab, path in ((hk, hkfile), (sa, safile)):
        if tab is not None:
            check_aligned(tab["Time"], sci["Time"], path)
    return DayArrays(time=sci["Time"].astype(np.float64), spectra=frame.spectrum_view(data), hk=hk,
                     sa=sa, coarse=frame.coarse_words(data) if p.highres else None, header=sh)


def read_lightcurve(path: str | Path) -> LightCurve:
    """Read a ``.lc`` (standard or high-res; project, golden or official, XSMDAS 1.50 included)."""
    path = Path(path)
    with fitsio.open_fits(path, what="light curve", memmap=False) as hdul:
        exts = [h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)
                and h.name in ("RATE", "RATE_BAND1", "RATE_BAND2", "RATE_BAND3")]
        if not exts:
            raise InputFormatError(f"{path}: no RATE or RATE_BANDn extension")
        bands = []
        for e in exts:
            fitsio.require_columns(e, ["TIME", "RATE", "ERROR", "FRACEXP"], path)
            d = e.data
            bands.append(LightCurveBand(
                e.name, np.array(d["TIME"], np.float64), np.array(d["RATE"], np.float32),
                np.array(d["ERROR"], np.float32), np.array(d["FRACEXP"], np.float32),
                e.header.get("CHSTART"), e.header.get("CHSTOP")))
        h = exts[0].header
        procmode = h.get("PROCMODE", "xsmdas-1.2")
        mode = Mode.DEFAULT if procmode == "default" else Mode.XSMDAS_1_2
        hr = exts[0].name.startswith("RATE_BAND")
        timedel = float(h.get("TIMEDEL", 1.0))
        params = LightCurveParams(lctype="high-res" if hr else "standard", mode=mode,
                                  tbinsizems=int(round(timedel * 1000)) if hr else 100,
                                  tbinsizesec=max(1, int(round(timedel))) if not hr else 1,
                                  lcfile=path.name)
        return LightCurve(bands=bands, tstart=float(h.get("TSTART", np.nan)),
                          tstop=float(h.get("TSTOP", np.nan)), timedel=timedel, params=params,
                          date_obs=str(h.get("DATE-OBS", "")), date_end=str(h.get("DATE-END", "")),
                          caldbver=str(h.get("CALDBVER", "")), pistart=h.get("PISTART"),
                          pistop=h.get("PISTOP"), e_min=h.get("E_MIN"), e_max=h.get("E_MAX"),
                          header=h.copy())
