"""Spectra (reference task ``xsmgenspec``; ``spec/spectrum.md``, ``products.md`` §2-3).

Functional core
---------------
* :class:`SpectrumParams` -- the task parameters (``spectrum.md`` §1) and the mode.
* :class:`SpecCal` / :func:`load_spec_cal` -- the calibration a run needs (PI grid, gain table,
  SYSERR, effective-area parameters, ABSCOEF grids, CALDBVER, RMF/RSP names).
* :func:`select_frames` -- frame selection of §2 (GTI ∩ [tstart, tstop], strict GTI edges).
* :func:`make_spectrum(day, hk, sa, gti, params, cal) -> Spectrum` -- pure; type I or II, PI or PHA,
  area-corrected or with an ARF (:class:`xsm.products.arf.Arf` on ``Spectrum.arf``).

Edges: :func:`write_spectrum` (and its ARF), :func:`read_spectrum`.

Modes
-----
``Mode.XSMDAS_1_2`` reproduces XSMDAS 1.2: Wichmann-Hill dithering in the reference draw order,
overflow/ULD words converted (Q10), stale gain of bin-opening frames (Q02), float32 sequential
accumulation (Q11), unpropagated area-corrected errors (Q12), full RMF path (Q19), FILT_STATUS 0
(Q20), TLMIN1/TLMAX1 on SPEC_NUM (Q21), DATE-OBS/END of the level-1 file (Q13).
The default mode fixes all of these and dithers with the multinomial method (§14), summing frames
that share a gain cell and an output row before the draw (cost independent of the counts).

COUNTS: compat writes float32 (``E``) as the reference. Default writes integer counts as ``J``
(int32) so that no count is lost to float rounding, and area-corrected counts as ``E``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.products import arf as arfmod
from xsm.products import effarea, fitsio, pi
from xsm.products.errors import InputFormatError, ParameterError, warn_user
from xsm.products.float32sum import accumulate_rows_f32
from xsm.products.frame import rows_of, spectrum_view
from xsm.products.met import met_to_utc_string
from xsm.products.parallel import imap_threads, map_threads
from xsm.products.provenance import Mode, Provenance
from xsm.products.wichmann_hill import WichmannHill

log = logging.getLogger("xsm.spectrum")

#: Channels of a PI spectrum (EBOUNDS size) and of a PHA spectrum.
N_PHA = 1024
#: Frames per chunk in the default mode. Area-corrected spectra draw per frame on dense
#: (frames x channels) arrays: 512 frames keep them near the CPU caches (2048 cost ~15 % more);
#: grouped spectra work on few rows per chunk, and 8192 measured faster there than 4096.
DEFAULT_CHUNK_FRAMES = 8192
AREA_CHUNK_FRAMES = 512
#: FILT_STATUS / FILTER of the frames' MotorIRPos (default mode, Q20).
FILTER_NAMES = {0: "OPEN", 1: "CAL", 2: "BE", 3: "MIXED"}
MIXED = 3
#: Default seed of the default mode's numpy Generator (recorded as RNGSEED).
DEFAULT_SEED = 20210628


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class SpectrumParams:
    """Parameters of ``xsmgenspec`` (``spectrum.md`` §1) plus the mode and the RNG seed.

    File-name fields only feed HISTORY (base names are written).
    """

    spectype: str = "time-resolved"
    chantype: str = "PI"
    sourcetype: str = "sun"
    genarf: bool = True
    areascal: bool = False
    tstart: float = 0.0
    tstop: float = 0.0
    tbinsize: int = 100
    gaincorfactor: float = 1.0
    offsetcorfactor: float = 0.0
    addsyserror: bool = True
    clobber: bool = True
    mode: Mode = Mode.DEFAULT
    seed: int = DEFAULT_SEED
    dety_policy: str = "clamp"
    l1file: str = "-"
    specfile: str = "-"
    arffile: str = "default"
    hkfile: str = "-"
    safile: str = "-"
    gtifile: str = "-"
    eboundsfile: str = "CALDB"
    gainfile: str = "CALDB"
    abscoeffile: str = "CALDB"
    effareaparfile: str = "CALDB"
    syserrfile: str = "CALDB"

    @property
    def type2(self) -> bool:
        return self.spectype.lower() == "time-resolved"

    @property
    def is_pi(self) -> bool:
        return self.chantype.upper() == "PI"

    @property
    def cal_source(self) -> bool:
        return self.sourcetype.lower() == "cal"

    @property
    def compat(self) -> bool:
        return self.mode == Mode.XSMDAS_1_2

    @property
    def needs_sa(self) -> bool:
        return (self.is_pi and not self.cal_source) or self.areascal or self.genarf

    def validated(self) -> SpectrumParams:
        """Checked and normalised copy (compat: Q03 forces areascal off when genarf)."""
        st = self.spectype.lower()
        if st not in ("time-resolved", "time-integrated"):
            raise ParameterError(f"spectype {self.spectype!r}: use time-resolved or time-integrated")
        ct = self.chantype.upper()
        if ct not in ("PI", "PHA"):
            raise ParameterError(f"chantype {self.chantype!r}: use PI or PHA")
        src = self.sourcetype.lower()
        if src not in ("sun", "cal"):
            raise ParameterError(f"sourcetype {self.sourcetype!r}: use sun or cal")
        if int(self.tbinsize) != self.tbinsize or self.tbinsize < 1:
            raise ParameterError(f"tbinsize {self.tbinsize!r}: must be an integer >= 1 s")
        if self.dety_policy not in effarea.DETY_POLICIES:
            raise ParameterError(f"dety_policy {self.dety_policy!r}: use clamp or mirror")
        genarf, areascal = bool(self.genarf), bool(self.areascal)
        if ct == "PHA":
            genarf = False
        if genarf and areascal:
            if self.mode == Mode.XSMDAS_1_2:
                areascal = False  # Q03: areascal is never read when genarf = yes
            else:
                raise ParameterError("genarf = yes and areascal = yes are exclusive")
        return replace(self, spectype=st, chantype=ct, sourcetype=src, genarf=genarf,
                       areascal=areascal, tbinsize=int(self.tbinsize))


# --------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class SpecCal:
    """Calibration of one spectrum run."""

    version: str = ""
    grid: pi.PIGrid | None = None
    gain: pi.GainTable | None = None
    syserr: np.ndarray | None = None
    area: effarea.AreaParams | None = None
    coef: dict = field(default_factory=dict)  # 'PI' / 'PHA' / 'RSP' -> AbsCoef
    rmf: str = ""  # path of the RMF as resolved (compat RESPFILE)
    rsp_open: str = ""
    files: dict = field(default_factory=dict)  # code -> basename (provenance)


def load_spec_cal(caldb, met: float, params: SpectrumParams, *, rule: str | None = None) -> SpecCal:
    """Load the calibration ``params`` needs from a CALDB (root path or a CalibrationContext)."""
    from xsm.caldb_manager import calfiles
    from xsm.caldb_manager.context import CalibrationContext, calibration_context

    params = params.validated()
    if isinstance(caldb, CalibrationContext):
        ctx = caldb
    else:
        # the mode's selection rule unless told (XSMDAS 1.2's in compat mode: select.normalise_rule)
        ctx = calibration_context(met, caldb, rule=params.mode if rule is None else rule)
    files: dict[str, str] = {}

    def path(code: str) -> Path:
        p = ctx.path(code)
        files[code] = p.name
        return p

    def name_only(code: str) -> str:
        if code in ctx.files:
            files[code] = ctx.files[code].name
            return str(ctx.files[code])
        missing = getattr(ctx, "missing", {})
        if code in missing:
            files[code] = Path(missing[code]).name
            return str(missing[code])
        return ""

    grid = gain = sys = area = None
    coef: dict = {}
    if params.is_pi:
        grid = pi.pi_grid(calfiles.read_ebounds(path("EBOUNDS")))
        gfile = calfiles.read_gain(path("GAIN"))
        gain = pi.gain_table(gfile, "CALGAIN" if params.cal_source else "GAIN")
        if params.addsyserror:
            sys = np.asarray(calfiles.read_syserr(path("SYSERR")).syserr, dtype=np.float32)
    if params.genarf or params.areascal:
        area = effarea.area_params(calfiles.read_effareapar(path("EFFAREAPAR")))
        ab = calfiles.read_abscoef(path("ABSCOEF"))
        coef = {g: effarea.abs_coef(ab, g) for g in ("PI", "PHA", "RSP")}
    rmf = name_only("RMF") if params.genarf else ""
    rsp = name_only("RSP_OPEN") if params.areascal else ""
    return SpecCal(ctx.version, grid, gain, sys, area, coef, rmf, rsp, files)


# --------------------------------------------------------------------------- selection
@dataclass(frozen=True)
class FrameSelection:
    rows: np.ndarray  # level-1 row indices used, in order
    tstart: float
    tstop: float
    gti_start: np.ndarray
    gti_stop: np.ndarray


def select_frames(time, gti, tstart: float = 0.0, tstop: float = 0.0) -> FrameSelection:
    """Frames of a spectrum (``spectrum.md`` §2): GTI ∩ [tstart, tstop], START < t < STOP."""
    t = np.asarray(time, dtype=np.float64)
    if t.size == 0:
        raise InputFormatError("level-1 file has no frames")
    d0, d1 = float(t[0]), float(t[-1]) + 1.0
    if tstart == 0 and tstop == 0:
        tstart, tstop = d0 - 0.0001, d1 - 0.0001
    else:
        if tstop <= tstart:
            raise ParameterError(f"tstop {tstop!r} <= tstart {tstart!r}")
        if tstart < d0 or tstop > d1:
            raise ParameterError(f"[{tstart}, {tstop}] is not inside the data span [{d0}, {d1}]")
    gs, ge = _gti_arrays(gti)
    # intersection with [tstart, tstop] (gti.md §2.5: zero-length pieces dropped)
    s = np.maximum(gs, tstart)
    e = np.minimum(ge, tstop)
    keep = e > s
    s, e = s[keep], e[keep]
    if s.size == 0:
        raise ParameterError(f"no good time in [{tstart}, {tstop}] (GTI ∩ time range is empty)")
    inside = np.zeros(t.size, dtype=bool)
    k = np.searchsorted(s, t, side="left") - 1
    ok = k >= 0
    kk = np.where(ok, k, 0)
    inside = ok & (t > s[kk]) & (t < e[kk])
    inside &= (t >= tstart) & (t < tstop)
    rows = np.flatnonzero(inside)
    if rows.size == 0:
        raise ParameterError(f"no frame inside the good time in [{tstart}, {tstop}]")
    return FrameSelection(rows, float(tstart), float(tstop), s, e)


def _gti_arrays(gti) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(gti, "start") and hasattr(gti, "stop"):
        s, e = np.asarray(gti.start, np.float64), np.asarray(gti.stop, np.float64)
    else:
        a = np.asarray(gti, dtype=np.float64).reshape(-1, 2)
        s, e = a[:, 0], a[:, 1]
    order = np.argsort(s, kind="stable")
    return s[order], e[order]


# --------------------------------------------------------------------------- product
@dataclass
class Spectrum:
    """A type-I (one row) or type-II spectrum; arrays are per row."""

    chantype: str
    type2: bool
    counts: np.ndarray  # float32 (compat, area mode) or int64 (default PI/PHA counts)
    stat_err: np.ndarray  # float32 [R, n]
    sys_err: np.ndarray  # float32 [R, n]
    exposure: np.ndarray  # float64 [R]
    tstart: np.ndarray  # float64 [R]
    tstop: np.ndarray  # float64 [R]
    filt_status: np.ndarray  # uint8 [R]
    mode: Mode = Mode.DEFAULT
    tstart_kw: float = 0.0
    tstop_kw: float = 0.0
    date_obs: str = ""
    date_end: str = ""
    respfile: str = ""
    ancrfile: str = ""
    caldbver: str = ""
    areascal: bool = False
    params: SpectrumParams | None = None
    keywords: dict = field(default_factory=dict)
    arf: arfmod.Arf | None = None
    provenance: Provenance | None = None
    #: counts that fell outside the PI grid (both modes; written as OUTCNTS in default mode)
    lost: int = 0
    #: Σ SpecEvents (all 963 words) of the frames used
    events: int = 0

    @property
    def nchan(self) -> int:
        return int(self.counts.shape[1])

    @property
    def nrows(self) -> int:
        return int(self.counts.shape[0])

    @property
    def total_counts(self) -> float:
        return float(np.sum(self.counts, dtype=np.float64))


def _col(table, name: str) -> np.ndarray:
    data = getattr(table, "data", table)
    try:
        return np.asarray(data[name])
    except (KeyError, ValueError, IndexError):
        raise InputFormatError(f"table lacks column {name}") from None


def make_spectrum(day, hk, sa, gti, params: SpectrumParams, cal: SpecCal, *, words=None) -> Spectrum:
    """Make a spectrum from an in-memory level-1 day (pure: no file access).

    ``day``: a :class:`xsm.products.level1.Level1Day` (``time``, ``data`` uint8[N, 2048],
    ``header``); ``hk``/``sa``: tables indexable by column name, row-aligned with ``day``
    (``sa`` may be None when not needed); ``gti``: a :class:`xsm.products.gti.GTI` or (K, 2) pairs;
    ``words``: optional ``(N, 963)`` spectrum words of ``day.data`` (a view or decoded array).
    """
    p = params.validated()
    compat = p.compat
    time = np.asarray(day.time, dtype=np.float64)
    n_rows_total = time.size
    for tab, what in ((hk, "HK"),) + (((sa, "SA"),) if p.needs_sa else ()):
        if tab is None:
            raise ParameterError(f"{what} table required for this spectrum")
        if len(_col(tab, "Time")) != n_rows_total:
            raise InputFormatError(f"{what} rows ({len(_col(tab, 'Time'))}) are not aligned with the "
                                   f"level-1 rows ({n_rows_total})")
    sel = select_frames(time, gti, p.tstart, p.tstop)
    rows = sel.rows
    t = time[rows]
    F = rows.size

    # output rows
    if p.type2:
        kbin = np.trunc((t - sel.tstart) / p.tbinsize).astype(np.int64)
        ub, row = np.unique(kbin, return_inverse=True)
        row_tstart = sel.tstart + ub * float(p.tbinsize)
        row_tstop = sel.tstart + (ub + 1) * float(p.tbinsize)
    else:
        kbin = np.zeros(F, dtype=np.int64)
        row = np.zeros(F, dtype=np.int64)
        row_tstart = np.array([sel.gti_start[0]])
        row_tstop = np.array([sel.gti_stop[-1]])
    R = row_tstart.size
    exposure = np.bincount(row, minlength=R).astype(np.float64)

    motor = _col(hk, "MotorIRPos")[rows].astype(np.int64)
    filt = _filter_status(motor, row, R)
    if not compat and np.any(motor == 2):
        warn_user(f"{int(np.sum(motor == 2))} Be-filter frame(s) enter the spectrum; the response "
                  "is the open-filter one (no Be correction, quirk Q20)")

    need_sa = p.needs_sa
    theta = phi = detposr = None
    if need_sa:
        theta = _col(sa, "Theta")[rows]
        phi = _col(sa, "Phi")[rows]
        detposr = _col(sa, "DetPosR")[rows]

    nchan = cal.grid.n if p.is_pi else N_PHA
    if p.is_pi and nchan != 512:
        raise InputFormatError(f"EBOUNDS has {nchan} channels; spectra need 512 (PI) or 1024 (PHA)")

    # gain per frame
    fg = None
    if p.is_pi:
        fg = pi.frame_gain(_col(hk, "TECCurrent")[rows], None if p.cal_source else detposr, cal.gain,
                           gaincorfactor=p.gaincorfactor, offsetcorfactor=p.offsetcorfactor,
                           offset_tweak=True)
        if compat and p.type2:
            opens = np.r_[True, kbin[1:] != kbin[:-1]]
            fg = pi.apply_stale_gain(fg, opens)  # Q02

    # relative area on the channel grid (area mode)
    rel_coef = None
    if p.areascal:
        rel_coef = cal.coef["PI" if p.is_pi else "PHA"]
        a0 = effarea.onaxis_area(cal.area, rel_coef)

    data = day.data
    extra: dict = {}
    if compat:
        counts = np.zeros((R, nchan), dtype=np.float32)
        syssum = np.zeros((R, nchan), dtype=np.float32)
        lost = events = 0

        def dither(chunk: tuple[int, int, int]):
            """Per-frame float32 counts (and syssums) of frames a..b: one Wichmann-Hill stream,
            entered at the chunk's first draw, so chunks can run on threads (§6.3 order kept)."""
            a, b, first_draw = chunk
            w = _word_block(data, rows[a:b], words)
            lost_here = 0
            if p.is_pi:
                pf = pi.pi_compat(w, fg.gain[a:b], fg.offset[a:b], cal.grid, WichmannHill(first_draw),
                                  syserr=cal.syserr if p.addsyserror else None)
                fc = pf.counts.astype(np.float32)
                fs = pf.syssum if pf.syssum is not None else None
                lost_here = int(pf.out.sum())
            else:
                fc = np.zeros((b - a, N_PHA), dtype=np.float32)
                fc[:, :w.shape[1]] = w
                fs = None
            if p.areascal:
                r = _relative(theta[a:b], phi[a:b], detposr[a:b], cal, rel_coef, a0, p)
                fc = (fc / r).astype(np.float32)
                if fs is not None:
                    fs = (fs / r).astype(np.float32)
            return a, b, fc, fs, int(w.sum(dtype=np.int64)), lost_here

        chunks = pi.chunks_by_counts(spectrum_view(data) if words is None else words, rows)
        # chunks dithered on threads, a few ahead; their float32 sums (Q11) accumulated here in
        # frame order, as the reference does
        for a, b, fc, fs, n_events, n_lost in imap_threads(dither, chunks):
            events += n_events
            lost += n_lost
            accumulate_rows_f32(counts, row[a:b], fc)
            if fs is not None:
                accumulate_rows_f32(syssum, row[a:b], fs)
        stat = np.sqrt(counts).astype(np.float32)  # Q12: sqrt of scaled counts
        with np.errstate(invalid="ignore", divide="ignore"):
            syserr = np.where(counts > 0, syssum / counts, 0).astype(np.float32)
        if not (p.is_pi and p.addsyserror):
            syserr = np.zeros_like(counts)
    else:
        area = p.areascal
        counts = np.zeros((R, nchan), dtype=np.float64 if area else np.int64)
        syssum = np.zeros((R, nchan), dtype=np.float64)
        var = np.zeros((R, nchan), dtype=np.float64) if area else None
        step = AREA_CHUNK_FRAMES if area else DEFAULT_CHUNK_FRAMES
        starts = range(0, F, step)
        # one child generator per chunk, made before the work: the draws depend on the seed and
        # the chunking only, not on which thread runs which chunk
        rngs = np.random.default_rng(p.seed).spawn(len(starts))

        def chunk(i: int):
            """(output rows, their counts, variances, syssums, (events, ovf, uld, out)) of one chunk."""
            a = starts[i]
            b = min(F, a + step)
            w = _word_block(data, rows[a:b], words)
            ovf_here = int(w[:, pi.OVERFLOW_WORD].sum(dtype=np.int64))
            uld_here = int(w[:, pi.ULD_WORD].sum(dtype=np.int64))
            rchunk = row[a:b]
            lost_here = 0
            if p.is_pi:
                n9 = pi.nine_bit(w, Mode.DEFAULT)   # int32 pair sums straight from the words
                # every word is a channel (0 ... 960, all in n9), the overflow or the ULD
                tallies = (int(n9.sum(dtype=np.int64)) + ovf_here + uld_here, ovf_here, uld_here)
                if area:
                    grows = rchunk
                    gsum, ggain, goff = n9, fg.gain[a:b], fg.offset[a:b]
                else:  # frames sharing (row, gain cell) are summed before the draw (§14)
                    key = rchunk * (cal.gain.gain.size + 1) + fg.cell[a:b]
                    first, gsum = _group_sum(key, n9)
                    grows, ggain, goff = rchunk[first], fg.gain[a:b][first], fg.offset[a:b][first]
                pf = pi.pi_default(gsum, ggain, goff, cal.grid, rngs[i],
                                   syserr=cal.syserr if p.addsyserror else None)
                lost_here = int(pf.out.sum())
                fc = pf.counts
                fs = pf.syssum
            else:
                tallies = (int(w.sum(dtype=np.int64)), ovf_here, uld_here)
                grows = rchunk
                fc = np.zeros((b - a, N_PHA), dtype=np.int64)
                fc[:, :w.shape[1]] = w
                fs = None
            tallies += (lost_here,)
            if not area:
                return grows, fc, None, fs, tallies
            # one row per frame here, frames ordered by output row: each row is one run
            r = _relative(theta[a:b], phi[a:b], detposr[a:b], cal, rel_coef, a0, p)
            first = np.flatnonzero(np.r_[True, grows[1:] != grows[:-1]])
            q = fc / r
            c_rows = np.add.reduceat(q, first, axis=0)
            q /= r
            v_rows = np.add.reduceat(q, first, axis=0)
            s_rows = None if fs is None else np.add.reduceat(fs / r, first, axis=0)
            return grows[first], c_rows, v_rows, s_rows, tallies

        ovf = uld = out = events = 0
        sums = map_threads(chunk, range(len(starts)))
        for grows, c_rows, v_rows, s_rows, (n_ev, n_ovf, n_uld, n_out) in sums:
            events += n_ev
            ovf += n_ovf
            uld += n_uld
            out += n_out
            if area:  # output rows are distinct within a chunk
                counts[grows] += c_rows
                var[grows] += v_rows
                if s_rows is not None:
                    syssum[grows] += s_rows
            else:
                np.add.at(counts, grows, c_rows)
                if s_rows is not None:
                    np.add.at(syssum, grows, s_rows)
        stat = np.sqrt(var if area else counts).astype(np.float32)  # Q12 fixed
        with np.errstate(invalid="ignore", divide="ignore"):
            syserr = np.where(counts > 0, syssum / counts, 0).astype(np.float32)
        if not (p.is_pi and p.addsyserror):
            syserr = np.zeros((R, nchan), dtype=np.float32)
        if p.is_pi:
            extra.update(OVFCNTS=ovf, ULDCNTS=uld, OUTCNTS=out)
        lost = out
        codes = sorted({int(v) for v in filt})
        extra["FILTER"] = FILTER_NAMES[codes[0]] if len(codes) == 1 else "MIXED"

    # times and names
    if p.type2:
        ts_kw, te_kw = float(row_tstart[0]), float(row_tstop[-1])
    else:
        ts_kw, te_kw = float(sel.gti_start[0]), float(sel.gti_stop[-1])
    l1h = getattr(day, "header", None) or {}
    if compat and "DATE-OBS" in l1h:  # Q13
        date_obs, date_end = str(l1h["DATE-OBS"]), str(l1h.get("DATE-END", l1h["DATE-OBS"]))
    else:
        date_obs, date_end = met_to_utc_string(ts_kw), met_to_utc_string(te_kw)

    arf = None
    respfile = ancrfile = ""
    if p.genarf:
        arf = arfmod.make_arf(theta, phi, detposr, row, exposure, cal.area, cal.coef["RSP"], mode=p.mode,
                              type2=p.type2, tstart=row_tstart, tstop=row_tstop, dety_policy=p.dety_policy)
        respfile = cal.rmf if compat else Path(cal.rmf).name  # Q19
        ancrfile = Path(_arf_name(p)).name
    elif p.areascal and p.is_pi:
        respfile = Path(cal.rsp_open).name if cal.rsp_open else ""

    prov = Provenance(step="spectrum", mode=p.mode, caldb_version=cal.version, caldb_files=dict(cal.files),
                      parameters={k: v for k, v in p.__dict__.items() if k != "mode"},
                      rng_seed=None if compat else int(p.seed),
                      inputs=tuple(Path(x).name for x in (p.l1file, p.hkfile, p.safile, p.gtifile)))
    if compat:
        filt = np.zeros(R, dtype=np.uint8)
    return Spectrum(p.chantype, p.type2, counts, stat, syserr, exposure, row_tstart, row_tstop,
                    filt.astype(np.uint8), p.mode, ts_kw, te_kw, date_obs, date_end, respfile, ancrfile,
                    cal.version, p.areascal, p, extra, arf, prov, lost=lost, events=events)


def _group_sum(key: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``values`` rows by ``key``: (index of the first row of each group, sums).

    Groups are in ascending key order. Frames come in time order, so equal keys mostly form
    runs: the runs are summed in place first (``reduceat``, no gather of the big array), then
    only the run sums are sorted and merged; same groups and sums as sorting every row.
    """
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    runs = np.add.reduceat(values, starts, axis=0)
    rkey = key[starts]
    if rkey.size < 2 or np.all(rkey[1:] > rkey[:-1]):   # every key one run, ascending
        return starts, runs
    order = np.argsort(rkey, kind="stable")
    k = rkey[order]
    gst = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    return starts[order[gst]], np.add.reduceat(runs[order], gst, axis=0)


def _arf_name(p: SpectrumParams) -> str:
    if p.arffile in ("", "default", None):
        return str(p.specfile)[:-4] + ".arf"
    return str(p.arffile)


def _filter_status(motor: np.ndarray, row: np.ndarray, R: int) -> np.ndarray:
    """Per row: the MotorIRPos shared by all its frames (0 open, 1 cal, 2 Be) or 3 (Q20 fix)."""
    lo = np.full(R, np.iinfo(np.int64).max)
    hi = np.full(R, np.iinfo(np.int64).min)
    np.minimum.at(lo, row, motor)
    np.maximum.at(hi, row, motor)
    return np.where((lo == hi) & (lo <= 2) & (lo >= 0), lo, MIXED).astype(np.uint8)


def _relative(theta, phi, detposr, cal: SpecCal, coef, a0, p: SpectrumParams) -> np.ndarray:
    a = effarea.effective_area(theta, phi, detposr, cal.area, coef, p.mode, dety_policy=p.dety_policy)
    good = a0 > effarea.ONAXIS_MIN_AREA_CM2
    if p.compat:
        a[:, good] /= a0[good]
    else:
        a *= np.where(good, 1.0 / np.where(good, a0, 1.0), 0.0)[None, :]
    if not good.all():
        a[:, ~good] = 1.0
    return a


def _word_block(data, rows: np.ndarray, words) -> np.ndarray:
    """The spectrum words of the ascending frame indices ``rows``, as stored (big-endian uint16,
    or ``words``' type): a view when they are one run of frames (one GTI interval), else a copy.
    """
    return rows_of(spectrum_view(data) if words is None else words, rows)


# --------------------------------------------------------------------------- FITS edges
@dataclass
class DayColumns:
    """The level-1 columns a spectrum needs (a light stand-in for ``Level1Day``)."""

    time: np.ndarray
    data: np.ndarray  # uint8[N, 2048] (may be a memory map)
    header: fits.Header
    path: Path | None = None


#: HK and SA columns used by spectra.
HK_COLUMNS = ("Time", "TECCurrent", "MotorIRPos")
SA_COLUMNS = ("Time", "Theta", "Phi", "DetPosR")


def read_spectrum_inputs(l1file, hkfile, safile=None) -> tuple[DayColumns, dict, dict | None]:
    """Read only what a spectrum needs from the level-1 science, HK and SA files.

    Faster than the full level-1 readers for the CLI (no string columns, no copy of unused columns);
    the science frames stay memory-mapped and are decoded chunk by chunk.
    """
    def table(path, extname, columns):
        path = Path(path)
        hdul = fitsio.open_fits(path, what=f"level-1 {extname} file")
        try:
            ext = hdul[extname] if extname in hdul else hdul[1]
        except (KeyError, IndexError):
            raise InputFormatError(f"{path}: no {extname} table") from None
        fitsio.require_columns(ext, columns, path)
        info = ext.fileinfo()
        if path.stat().st_size < info["datLoc"] + info["datSpan"]:   # the map would fault later
            raise InputFormatError(f"{path}: the {ext.name} data section is truncated")
        d = ext.data
        if d is None or len(d) == 0:
            raise InputFormatError(f"{path}: the {ext.name} table has no rows")
        return ext, d

    ext, d = table(l1file, "DATA", ("Time", "DataArray"))
    data = d["DataArray"]
    if data.ndim != 2 or data.shape[1] != 2048:
        raise InputFormatError(f"{l1file}: DataArray is not 2048 bytes per row")
    day = DayColumns(np.array(d["Time"], dtype=np.float64), data, ext.header.copy(), Path(l1file))
    _, h = table(hkfile, "HKPARAM", HK_COLUMNS)
    hk = {c: np.array(h[c]) for c in HK_COLUMNS}
    sa = None
    if safile is not None:
        _, a = table(safile, "SUNANG", SA_COLUMNS)
        sa = {c: np.array(a[c]) for c in SA_COLUMNS}
    return day, hk, sa


def history_lines(p: SpectrumParams) -> list[str]:
    """The reference HISTORY block (``products.md`` §7)."""
    v = fitsio.format_history_value
    name = lambda x: Path(str(x)).name  # noqa: E731
    lines = [f"l1file = {name(p.l1file)}", f"specfile = {name(p.specfile)}", f"spectype = {p.spectype}",
             f"chantype = {p.chantype}"]
    if p.is_pi:
        lines.append(f"sourcetype = {p.sourcetype}")
    lines += [f"genarf = {v(p.genarf)}", f"arffile = {name(_arf_name(p)) if p.genarf else 'none'}",
              f"areascal = {v(p.areascal)}", f"Tstart = {float(p.tstart):f}", f"Tstop = {float(p.tstop):f}"]
    if p.type2:
        lines.append(f"Tbinsize = {int(p.tbinsize):d}")
    lines += [f"addsyserror = {v(p.addsyserror)}", f"hkfile = {name(p.hkfile)}"]
    if p.needs_sa:
        lines.append(f"safile = {name(p.safile)}")
    lines.append(f"gtifile = {name(p.gtifile)}")
    cal_name = lambda x: x if str(x).upper() == "CALDB" else name(x)  # noqa: E731
    if p.is_pi:
        lines += [f"eboundsfile = {cal_name(p.eboundsfile)}", f"gainfile = {cal_name(p.gainfile)}",
                  f"gaincorfactor = {float(p.gaincorfactor):f}",
                  f"offsetcorfactor = {float(p.offsetcorfactor):f}"]
    if p.genarf or p.areascal:
        lines += [f"abscoeffile = {cal_name(p.abscoeffile)}",
                  f"effareaparfile = {cal_name(p.effareaparfile)}"]
    lines.append(f"clobber = {v(p.clobber)}")
    return fitsio.history_block("XSMGENSPEC", lines)


def spectrum_hdulist(spec: Spectrum, filename: str, *, date: str | None = None) -> fits.HDUList:
    """The ``.pha`` file (``products.md`` §2-3) as an HDUList."""
    p = spec.params
    mode = spec.mode
    compat = mode == Mode.XSMDAS_1_2
    creator = "xsmgenspec" if compat else (spec.provenance.creator if spec.provenance else "xsm.spectrum")
    date = date or fitsio.date_keyword(mode)
    n = spec.nchan
    R = spec.nrows
    integer = np.issubdtype(spec.counts.dtype, np.integer)
    if integer and spec.counts.size and spec.counts.max() > np.iinfo(np.int32).max:
        raise ParameterError("a channel holds more than 2**31 counts")
    cform = "J" if integer else "E"
    counts = spec.counts.astype(np.int32 if integer else np.float32)
    prim = fitsio.primary_hdu(filename, creator, "Type II PHA file" if spec.type2 else "Type-I PHA file",
                              date=date, mode=mode)
    if spec.type2:
        chan = np.broadcast_to(np.arange(n, dtype=np.int32), (R, n))
        cols = [fits.Column("SPEC_NUM", "1J", array=np.arange(R, dtype=np.int32)),
                fits.Column("CHANNEL", f"{n}J", array=chan),
                fits.Column("COUNTS", f"{n}{cform}", array=counts),
                fits.Column("STAT_ERR", f"{n}E", array=spec.stat_err),
                fits.Column("SYS_ERR", f"{n}E", array=spec.sys_err),
                fits.Column("EXPOSURE", "1D", array=spec.exposure),
                fits.Column("TSTART", "1D", array=spec.tstart),
                fits.Column("TSTOP", "1D", array=spec.tstop),
                fits.Column("FILT_STATUS", "1B", array=spec.filt_status)]
    else:
        cols = [fits.Column("CHANNEL", "1J", array=np.arange(n, dtype=np.int32)),
                fits.Column("COUNTS", f"1{cform}", array=counts[0]),
                fits.Column("STAT_ERR", "1E", array=spec.stat_err[0]),
                fits.Column("SYS_ERR", "1E", array=spec.sys_err[0])]
    if not compat:
        cols[1 if not spec.type2 else 2].unit = "count"
        if spec.type2:
            for c in cols[5:8]:
                c.unit = "s"
    ext = fitsio.bintable_hdu(cols, name="SPECTRUM")
    h = ext.header
    cards = fitsio.time_keywords(spec.tstart_kw, spec.tstop_kw, spec.date_obs, spec.date_end, telapse=False,
                                 mode=mode)
    common = [(k, v) for k, v in fitsio.common_keywords(filename, creator, date=date, mode=mode)
              if k not in ("FILENAME", "DATE", "CONTENT")]
    cards += common
    cards += fitsio.PHA_CLASS_CARDS
    if spec.type2:
        cards += [("HDUCLAS4", "TYPE:II"), ("HDUCLAS5", "TG")]
    elif not compat:
        cards.append(("HDUCLAS4", "TYPE:I"))
    if spec.type2 and not compat:
        cards += [("TLMIN2", 0), ("TLMAX2", n - 1)]  # Q21 fixed
    else:
        cards += [("TLMIN1", 0), ("TLMAX1", n - 1)]
    cards += [("DETCHANS", n), ("AREASCAL", 1.0), ("BACKSCAL", 1.0), ("CORRSCAL", 1.0),
              ("BACKFILE", "none")]
    if not spec.type2:
        cards.append(("EXPOSURE", float(spec.exposure[0])))
    cards += [("RESPFILE", spec.respfile), ("ANCRFILE", spec.ancrfile), ("CHANTYPE", spec.chantype),
              ("POISSERR", False), ("CALDBVER", spec.caldbver), ("EXTVER", 1),
              ("FILENAME", filename), ("DATE", date),
              ("TELAPSE", float(spec.tstop_kw) - float(spec.tstart_kw))]
    if not compat:
        cards += [("CORRFILE", "NONE")] + [(k, v) for k, v in spec.keywords.items()]
    for k, v in cards:
        if isinstance(v, str) and len(v) > 68:
            h.set(k, v)  # astropy writes CONTINUE cards (OGIP long-string convention)
        else:
            h[k] = v
    if spec.provenance is not None:
        fitsio.set_cards(h, fitsio.provenance_keywords(spec.provenance))
    fitsio.add_history(h, history_lines(p))
    if spec.provenance is not None:
        fitsio.add_history(h, fitsio.provenance_history(spec.provenance))
    return fits.HDUList([prim, ext])


def write_spectrum(spec: Spectrum, path: str | Path | None = None, *, arf_path: str | Path | None = None,
                   overwrite: bool | None = None) -> tuple[Path, Path | None]:
    """Write the spectrum (and its ARF when it has one) atomically. Returns (pha, arf or None)."""
    p = spec.params
    path = Path(path or p.specfile)
    overwrite = p.clobber if overwrite is None else overwrite
    date = fitsio.date_keyword(spec.mode)
    arf_out = None
    if spec.arf is not None:
        arf_out = Path(arf_path) if arf_path is not None else path.parent / Path(_arf_name(replace(p, specfile=str(path)))).name
        if spec.ancrfile != arf_out.name:
            spec = replace(spec, ancrfile=arf_out.name)
    hdul = spectrum_hdulist(spec, path.name, date=date)
    if arf_out is not None:
        ahdul = arfmod.arf_hdulist(
            spec.arf, arf_out.name, creator=hdul[0].header["CREATOR"], prov=spec.provenance,
            history=history_lines(p), tstart=spec.tstart_kw, tstop=spec.tstop_kw,
            date_obs=spec.date_obs, date_end=spec.date_end, caldbver=spec.caldbver, date=date)
        fitsio.write_fits_atomic(ahdul, arf_out, overwrite=overwrite, checksum=spec.mode == Mode.DEFAULT)
    fitsio.write_fits_atomic(hdul, path, overwrite=overwrite, checksum=spec.mode == Mode.DEFAULT)
    return path, arf_out


def read_spectrum(path: str | Path) -> Spectrum:
    """Read a type-I or type-II PI/PHA spectrum (ours, golden or official)."""
    path = Path(path)
    with fitsio.open_fits(path, what="spectrum", memmap=False) as hdul:
        ext = fitsio.require_extension(hdul, "SPECTRUM", path)
        fitsio.require_columns(ext, ["CHANNEL", "COUNTS"], path)
        h = ext.header
        d = ext.data
        counts = np.array(d["COUNTS"])
        type2 = counts.ndim == 2
        if not type2:
            counts = counts[None, :]
        R, n = counts.shape
        def get(name, default):
            if name in ext.columns.names:
                a = np.array(d[name], dtype=np.float32)
                return a if type2 else a[None, :]
            return np.full((R, n), default, dtype=np.float32)
        stat = get("STAT_ERR", 0.0) if "STAT_ERR" in ext.columns.names else np.sqrt(counts).astype(np.float32)
        syse = get("SYS_ERR", 0.0)
        if type2:
            exposure = np.array(d["EXPOSURE"], np.float64)
            ts, te = np.array(d["TSTART"], np.float64), np.array(d["TSTOP"], np.float64)
            fs = np.array(d["FILT_STATUS"], np.uint8) if "FILT_STATUS" in ext.columns.names else np.zeros(R, np.uint8)
        else:
            exposure = np.array([float(h.get("EXPOSURE", 0.0))])
            ts, te = np.array([float(h.get("TSTART", 0.0))]), np.array([float(h.get("TSTOP", 0.0))])
            fs = np.zeros(1, np.uint8)
        mode = Mode.XSMDAS_1_2 if h.get("PROCMODE") == Mode.XSMDAS_1_2.value else Mode.DEFAULT
        keywords = {k: h[k] for k in h if k and k not in ("HISTORY", "COMMENT", "")}
        return Spectrum(str(h.get("CHANTYPE", "PI")).strip(), type2, counts, stat, syse, exposure, ts, te, fs,
                        mode, float(h.get("TSTART", 0.0)), float(h.get("TSTOP", 0.0)),
                        str(h.get("DATE-OBS", "")), str(h.get("DATE-END", "")),
                        str(h.get("RESPFILE", "")), str(h.get("ANCRFILE", "")), str(h.get("CALDBVER", "")),
                        False, None, keywords)
