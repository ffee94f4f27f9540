"""The day simulator: realistic level-0 download sessions of XSM from a physical model.

``simulate_day(date, profile, seed, out_dir) -> SimulatedDay`` writes, for one UTC day (or a
part of it, for tests), the level-0 session packages of ``spec/level0.md`` §3 (``.pld``
segments, SPK/CK/SCLK, manifest, trigger file), the static kernels needed to process them,
and the truth per second beside them (``<YYYYMMDD>_truth.fits``).

Model [P] (follows ``golden/README.md`` "Synthetic model, in brief" closely)
--------------------------------------------------------------------------
* Sun: :mod:`xsm.products.solar` (isothermal background + GOES-like flares with the Fe-line
  complex) on the 3000-bin photon grid.
* Geometry: the synthetic orbit of :mod:`xsm.products.kernels` (100 km polar lunar orbit),
  evaluated per frame with :func:`xsm.products.geometry.compute_sun_angles` on a gap-free
  kernel set; the session CK of one session carries the kernel set's attitude gap, so
  level 1 shows "no geometry" rows there while the truth knows the Sun.
  The Sun contributes only when ``FovFlag = 1`` and ``OccultFlag = 0`` (the issue's
  "background only while occulted or out of the field").
* Area: :func:`xsm.products.effarea.effective_area` with the CALDB EFFAREAPAR/ABSCOEF at the
  frame's theta, phi, DetPosR (block-mid geometry, blocks of :data:`BLOCK_S` = 10 s during flares,
  :data:`BLOCK_S_QUIET` = 30 s otherwise, folded only where the Sun is in view; within a
  block the counts scale with the energy-independent collimator term of each second and the
  photon flux of each second). Be filter: 250 µm more Be along the slant path.
* Detector: Gaussian resolution σ = sqrt(0.054² + 0.12·0.00365·E) keV (175 eV FWHM at 5.9 keV),
  Si escape peak (1 %·(2/E) at E − 1.74 keV), soft lower threshold Φ((E − 0.88)/0.07).
  Counts go into PHA channels with the CALDB gain of the frame: channel c spans
  [c·g + o, (c+1)·g + o) with (g, o) = GAIN(TECCurrent, DetPosR) (the Sun) or CALGAIN(TEC)
  (calibration source and particle background). Words: 0-960 channels, 961 = channels
  961-1022 (overflow), 962 = channel 1023 and above (ULD) (``frame.md`` §4).
* Background: the shape of the CALDB 2020-01-28 background spectrum, 0.187 count/s, plus
  1 count/s in the ULD word, whenever the HV is on.
* Calibration source: Fe-55 Mn Kα 5.895 / Kβ 6.490 keV (ratio 0.137), 30 count/s incl. a 2 %
  low-energy shelf, while the wheel is commanded (manual) to CAL; the Sun is then blocked.
  Spans of 1 h or more get one 10-min period, starting 60 s into the first occultation after
  the first tenth of the span (calibrations are scheduled when the Sun is not seen).
* Filter wheel, auto mode: to Be when the previous second's expected open rate exceeds
  ``WindowUpperThresh`` (byte 30 -> 30000 count/s), back when the expected Be rate falls below
  ``WindowLowerThresh`` (byte 15 -> 1500 count/s); each move takes 2 frames with
  FrameDiscardFlag = 1 and MotorIRPos = 5 (no IR sensor lit), half the open area; the wheel stays
  at least ``WHEEL_MIN_DWELL_S`` (60 s) where the automatic mode put it.
* HV switch-on at the start of the span (off 15 s, 6-s ramp, no counts until on), detector
  cooling (DetTemperature, TECCurrent relax over ~90-150 s), a few isolated frame-discard
  frames.
* Counts: Poisson draws of the expected words (seeded ``numpy.random.Generator``), clipped at
  65535 (counter saturation, recorded in the truth). The 100 ms coarse words are the band sums
  of the same frame (Ch1-3 = PHA 40-183, 184-490, 491-962) split over the 10 sub-frames with a
  multinomial, so they agree with the spectrum exactly.
* Level 0: one frame per ``FRAME_PERIOD`` s; records carry DH_TIME = true MET in µs, DH_SEQ,
  and the UTC (or, for every second session, IST) time tag; consecutive sessions overlap by a
  few minutes; injected faults: corrupted records (bad CRC) and a few lost sync bytes, only
  inside overlaps where the other session holds a good copy, and isolated +1 s time-tag jumps
  that the repair rule of ``level0.md`` §4.1 pulls back. So level 1 holds every simulated
  frame exactly once, and :meth:`SimulatedDay.expected_qa` gives every session QA counter of
  ``level0.md`` §4.3 that the ingest must report (also written in the truth header).

Known simplifications [P]: the filter-wheel decisions use the expected (not the drawn) rates;
no dead time; the line equivalent widths are a smooth function of T fitted for flare
temperatures, so below ~3 MK the model's GOES flux per unit EM is lower than CHIANTI's (a quiet
day has realistic count rates and GOES levels, but its emission measures are too large).
"""
from __future__ import annotations

import datetime as _dt
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.special import ndtr

from xsm.products import effarea, frame as frm, solar
from xsm.products.errors import CalibrationError, ParameterError
from xsm.products.fitsio import atomic_path
from xsm.products.met import SECONDS_PER_DAY, datetime64_to_met
from xsm.products.pi import frame_gain, gain_table

log = logging.getLogger("xsm.simulate")

# ---------------------------------------------------------------- constants [P]

#: Seconds per spectral-shape block (block-mid geometry, temperature and gain) while flares
#: make more than 5 % of the 1-8 A flux; BLOCK_S_QUIET otherwise.
BLOCK_S = 10
BLOCK_S_QUIET = 30
#: Nominal frame period (s): the XSM clock runs 3 ppm fast of UTC.
FRAME_PERIOD = 0.999997
#: Measured-energy grid of the detector response (keV).
MEAS_DE = 0.005
MEAS_EMAX = 32.0
#: Resolution σ(E) = sqrt(NOISE² + FANO·W·E) keV.
RES_NOISE_KEV = 0.054
RES_FANO_W = 0.12 * 0.00365
#: Soft lower threshold Φ((E − LLD_KEV)/LLD_WIDTH_KEV).
LLD_KEV = 0.88
LLD_WIDTH_KEV = 0.07
#: Si K escape: fraction ESC_FRAC·(2 keV/E) at E − ESC_KEV for E > ESC_MIN_KEV.
ESC_FRAC = 0.01
ESC_KEV = 1.74
ESC_MIN_KEV = 1.84
#: Be filter of the filter wheel (cm).
BE_FILTER_CM = 0.025
#: Particle background: continuum rate (count/s), ULD rate (count/s).
BKG_RATE = 0.187
BKG_ULD_RATE = 1.0
#: Calibration source: rate (count/s), lines (keV), Kβ/Kα ratio, shelf fraction.
CAL_RATE = 30.0
CAL_LINES_KEV = (5.895, 6.490)
CAL_KB_RATIO = 0.137
CAL_SHELF = 0.02
#: Coarse bands (PHA words, inclusive).
COARSE_BANDS = ((40, 183), (184, 490), (491, 962))
#: Filter-wheel thresholds (bytes; HK values x1000 and x100 count/s).
WINDOW_UPPER_BYTE = 30
WINDOW_LOWER_BYTE = 15
WHEEL_MOVE_FRAMES = 2
#: Minimum time (frames) the wheel stays in a position chosen by the automatic mode.
WHEEL_MIN_DWELL_S = 60
#: HV switch-on: off for HV_OFF_S, ramp HV_RAMP_S.
HV_OFF_S = 15
HV_RAMP_S = 6
#: Frame states of the truth.
STATE_DET_OFF, STATE_SUN_OPEN, STATE_BE, STATE_CAL, STATE_MOVING, STATE_NO_SUN = 0, 1, 2, 3, 4, 5
STATE_NAMES = {0: "det_off", 1: "sun_open", 2: "be_filter", 3: "cal_source", 4: "wheel_moving",
               5: "occulted_or_out_of_fov"}
#: Monitor values (V) and reference DACs (mV).
HV_ON_V, HV_OFF_V = 1.451, 0.030
DETTEMP_V, DETTEMP_COLD_V, COOL_TAU_S = 2.05, 1.45, 90.0
TEC_V, TEC_HOT_V, TEC_TAU_S = 1.02, 1.75, 150.0
LV1_V, LV2_V = 3.300, 1.500
LLD_REF_MV, TEC_REF_MV = 400.3896, 600.5844


#: Nominal energy (keV) of PHA channels 0-960 (RampCounter: deposited energy / 380 keV + 14).
_CHANNEL_KEV = np.arange(961) * 0.0163 + 0.03


# ---------------------------------------------------------------- calibration inputs

@dataclass(frozen=True)
class Instrument:
    """The calibration the simulator folds with (CALDB arrays + file names)."""

    area_params: effarea.AreaParams
    abscoef: effarea.AbsCoef           # RSP grid (3000)
    gain_sun: object                   # pi.GainTable
    gain_cal: object
    bkg_density: np.ndarray            # counts per keV (normalised to 1) on the measured grid
    caldb_version: str
    caldb_files: dict[str, str]


def _bkg_shape(path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(energy keV, density) of the background continuum: the CALDB background spectrum
    (PI grid 0.5 + 0.033 k) or, without one, a flat-ish power law."""
    e = 0.5 + 0.033 * (np.arange(512) + 0.5)
    if path is not None and Path(path).is_file():
        from astropy.io import fits

        with fits.open(path) as h:
            d = np.asarray(h[1].data["COUNTS"], dtype=np.float64)
        # smooth (the file holds a day of counts) and floor to keep a continuum
        k = np.ones(9) / 9.0
        d = np.convolve(d, k, mode="same")
        d = np.where(e < 1.0, 0.0, d)
        if d.sum() > 0:
            return e, d / d.sum() / 0.033
    d = np.where(e < 1.0, 0.0, e ** -0.5)
    return e, d / d.sum() / 0.033


def load_instrument(met: float, caldb: str | Path | None = None) -> Instrument:
    """Select and load the calibration files valid at ``met`` from a CALDB.

    ``caldb`` defaults to ``$XSM_CALDB``, else a synthetic CALDB (:func:`default_caldb`).
    """
    from astropy.io import fits

    root = Path(caldb) if caldb else default_caldb(None)
    from xsm.caldb_manager.context import calibration_context

    ctx = calibration_context(met, root)
    with fits.open(ctx.path("GAIN")) as h:
        g_sun = gain_table(h["GAIN"])
        g_cal = gain_table(h["CALGAIN"]) if "CALGAIN" in h else g_sun
    params = effarea.area_params(ctx.path("EFFAREAPAR"))
    coef = effarea.abs_coef(ctx.path("ABSCOEF"), "RSP")
    bkg = None
    for p in sorted((Path(ctx.root) / "bkgspec").glob("*bkg*.pha")) if (Path(ctx.root) / "bkgspec").is_dir() else []:
        bkg = p
    e, d = _bkg_shape(bkg)
    grid = _meas_grid()[1]
    dens = np.interp(grid, e, d, left=0.0, right=0.0)
    dens /= dens.sum() * MEAS_DE
    files = {c: p.name for c, p in ctx.files.items() if c in ("GAIN", "EFFAREAPAR", "ABSCOEF")}
    if bkg is not None:
        files["BKGSPEC"] = bkg.name
    return Instrument(params, coef, g_sun, g_cal, dens, ctx.version, files)


# ---------------------------------------------------------------- detector response

def _meas_grid() -> tuple[np.ndarray, np.ndarray]:
    edges = np.arange(0.0, MEAS_EMAX + MEAS_DE / 2, MEAS_DE)
    return edges, 0.5 * (edges[:-1] + edges[1:])


def resolution_sigma(energy) -> np.ndarray:
    """Gaussian σ (keV) of the energy resolution at ``energy`` keV."""
    return np.sqrt(RES_NOISE_KEV ** 2 + RES_FANO_W * np.asarray(energy, dtype=np.float64))


def lld_efficiency(energy) -> np.ndarray:
    """Soft lower-threshold efficiency at measured energy ``energy`` keV."""
    return ndtr((np.asarray(energy, dtype=np.float64) - LLD_KEV) / LLD_WIDTH_KEV)


_RESPONSE: sparse.csr_matrix | None = None


def response_matrix() -> sparse.csr_matrix:
    """Sparse (3000 photon bins x measured-grid bins) redistribution: probability that a photon
    of the bin is measured in each 5-eV measured bin (resolution, escape peak, lower threshold).
    """
    global _RESPONSE
    if _RESPONSE is not None:
        return _RESPONSE
    edges, centres = _meas_grid()
    nm = centres.size
    e = solar.PHOTON_ENERGY
    rows, cols, vals = [], [], []
    for comp_E, comp_w in _components(e):
        sig = resolution_sigma(np.maximum(comp_E, 0.05))
        lo = np.floor((comp_E - 7 * sig) / MEAS_DE).astype(np.int64)
        width = int(np.ceil(14 * sig.max() / MEAS_DE)) + 2
        j = lo[:, None] + np.arange(width)[None, :]
        jc = np.clip(j, 0, nm)
        cdf = ndtr((edges[jc] - comp_E[:, None]) / sig[:, None])
        p = np.diff(cdf, axis=1)
        jj = j[:, :-1]
        ok = (jj >= 0) & (jj < nm) & (p > 1e-12)
        r = np.broadcast_to(np.arange(e.size)[:, None], jj.shape)
        rows.append(r[ok])
        cols.append(jj[ok])
        vals.append((p * comp_w[:, None])[ok])
    m = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(e.size, nm))
    m = m @ sparse.diags(lld_efficiency(centres))
    _RESPONSE = m.tocsr()
    return _RESPONSE


def _components(e: np.ndarray):
    """(measured-energy centre, weight) per photon bin: the photopeak and the Si escape peak."""
    esc = np.where(e > ESC_MIN_KEV, ESC_FRAC * np.minimum(1.0, 2.0 / e), 0.0)
    yield e, 1.0 - esc
    yield np.maximum(e - ESC_KEV, 0.0), esc


_RESPONSE_T: sparse.csr_matrix | None = None


def fold(counts_photon: np.ndarray) -> np.ndarray:
    """Measured-energy density (counts per 5-eV bin) of counts per photon bin, shape (n, 3000)."""
    global _RESPONSE_T
    if _RESPONSE_T is None:
        _RESPONSE_T = response_matrix().T.tocsr()
    x = np.ascontiguousarray(np.atleast_2d(np.asarray(counts_photon, dtype=np.float64)).T)
    return np.ascontiguousarray((_RESPONSE_T @ x).T)


def channel_words(meas: np.ndarray, gain, offset) -> np.ndarray:
    """Expected spectrum words (n, 963) of measured densities (n, M) with gains/offsets (n,).

    Channel c spans [c·g + o, (c+1)·g + o) (density piecewise constant in each 5-eV bin);
    word 961 = channels 961-1022, word 962 = channel 1023 and everything above.
    """
    meas = np.atleast_2d(meas)
    n, m = meas.shape
    cdf = np.zeros((n, m + 1))
    np.cumsum(meas, axis=1, out=cdf[:, 1:])
    g = np.asarray(gain, dtype=np.float64).reshape(-1, 1)
    o = np.asarray(offset, dtype=np.float64).reshape(-1, 1)
    edges = np.arange(1024)[None, :] * g + o                  # lower edges of channels 0..1023
    x = np.clip(edges / MEAS_DE, 0, m)
    i0 = np.minimum(np.floor(x).astype(np.int64), m - 1)
    f = x - i0
    c0 = np.take_along_axis(cdf, i0, axis=1)
    c1 = np.take_along_axis(cdf, i0 + 1, axis=1)
    at = c0 + f * (c1 - c0)                                  # CDF at each lower edge
    total = cdf[:, -1:]
    words = np.empty((n, frm.N_SPECTRUM_WORDS))
    words[:, :961] = at[:, 1:962] - at[:, :961]
    words[:, 961] = at[:, 1023] - at[:, 961]
    words[:, 962] = total[:, 0] - at[:, 1023]
    return np.clip(words, 0.0, None)


def cal_source_density() -> np.ndarray:
    """Measured-energy density of the Fe-55 source (normalised to 1 count)."""
    edges, centres = _meas_grid()
    out = np.zeros(centres.size)
    for E, w in ((CAL_LINES_KEV[0], 1.0), (CAL_LINES_KEV[1], CAL_KB_RATIO)):
        s = resolution_sigma(E)
        out += w * np.diff(ndtr((edges - E) / s))
        out += w * ESC_FRAC * (2.0 / E) * np.diff(ndtr((edges - (E - ESC_KEV)) / s))
    shelf = np.where((centres > 0.9) & (centres < CAL_LINES_KEV[0]), 1.0, 0.0)
    out = out / out.sum() * (1 - CAL_SHELF) + shelf / shelf.sum() * CAL_SHELF
    out *= lld_efficiency(centres)
    return out / out.sum()


# ---------------------------------------------------------------- geometry

@dataclass
class Geometry:
    """Per-frame sun geometry used by the simulator (and stored in the truth)."""

    theta: np.ndarray
    phi: np.ndarray
    detposr: np.ndarray
    fov: np.ndarray
    occult: np.ndarray


def analytic_geometry(met, *, period_s: float = 7080.0, phase0: float = 0.0) -> Geometry:
    """A kernel-free stand-in orbit (``golden/README.md`` model): θ sinusoidal over the orbit,
    occulted for orbit phases 0.55-0.92, φ in [−145°, −35°], DetPosR = 3.2·tan θ (3.2 out of FOV)."""
    met = np.asarray(met, dtype=np.float64)
    ph = ((met / period_s) + phase0) % 1.0
    theta = 25.0 + 20.0 * np.sin(2 * np.pi * ph)
    phi = -90.0 + 55.0 * np.cos(2 * np.pi * ph)
    fov = (theta < 38.0).astype(np.uint8)
    occ = ((ph >= 0.55) & (ph < 0.92)).astype(np.uint8)
    det = np.where(fov == 1, 3.2 * np.tan(np.radians(theta)), 3.2)
    return Geometry(theta, phi, det.astype(np.float32).astype(np.float64), fov, occ)


def kernel_geometry(met, kernels) -> Geometry:
    """Geometry from SPICE kernels via :func:`xsm.products.geometry.compute_sun_angles`.

    Frames without coverage (none with the gap-free kernel set the simulator uses for the truth)
    get values interpolated from covered neighbours, so the physics never sees a NaN.
    """
    from xsm.products.geometry import compute_sun_angles

    t = np.asarray(met, dtype=np.float64)
    sa = compute_sun_angles(t, kernels)
    vals = {"theta": np.asarray(sa.theta, np.float64), "phi": np.asarray(sa.phi, np.float64),
            "detposr": np.asarray(sa.detpos_r, np.float64), "fov": np.asarray(sa.fov_flag, np.uint8),
            "occult": np.asarray(sa.occult_flag, np.uint8)}
    bad = ~np.asarray(sa.covered, bool)
    if bad.all():
        raise CalibrationError("simulator: the kernels give no geometry for the simulated span")
    if bad.any():
        for k in ("theta", "phi", "detposr"):
            vals[k] = np.where(bad, np.interp(t, t[~bad], vals[k][~bad]), vals[k])
        vals["occult"] = np.where(bad, np.rint(np.interp(t, t[~bad], vals["occult"][~bad])), vals["occult"])
        from xsm.products.kernels import FOV_HALF_ANGLE_DEG   # (spiceypy: imported when needed)

        vals["fov"] = np.where(bad, vals["theta"] < FOV_HALF_ANGLE_DEG, vals["fov"])
    return Geometry(vals["theta"], vals["phi"], vals["detposr"], vals["fov"].astype(np.uint8),
                    vals["occult"].astype(np.uint8))


# ---------------------------------------------------------------- the span simulation

@dataclass
class SpanPlan:
    """What happens in a simulated span (all times MET s)."""

    t0: float
    n_frames: int
    frame_period: float = FRAME_PERIOD
    hv_on_at: float | None = None                      # HV switch-on time (None: on all along)
    cal_periods: list[tuple[float, float]] = field(default_factory=list)
    discard_frames: list[int] = field(default_factory=list)
    fpga0_us: int = 2_345_678_500_000 // 1000
    frame_no0: int = 1

    @property
    def met(self) -> np.ndarray:
        return self.t0 + np.arange(self.n_frames) * self.frame_period


@dataclass
class SimulatedFrames:
    """Frames of a span and the truth per frame."""

    frames: np.ndarray                  # (N, 2048) uint8
    met: np.ndarray                     # (N,) true MET of each frame
    truth: dict[str, np.ndarray]        # per-frame columns
    expected_spectra: np.ndarray        # (n_minutes, 963) expected words summed per 60 frames
    model: solar.SolarModel
    instrument: Instrument


def _moving_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving mean over ``width`` samples (shorter windows at the ends)."""
    c = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    i = np.arange(x.size)
    lo = np.maximum(i - width // 2, 0)
    hi = np.minimum(i + width // 2 + 1, x.size)
    return (c[hi] - c[lo]) / (hi - lo)


def _hk_series(plan: SpanPlan, rng: np.random.Generator, geo: Geometry) -> dict[str, np.ndarray]:
    """HK monitor ADC counts per frame (HV, temperature, TEC current, LV1, LV2)."""
    t = plan.met
    n = t.size
    adc = lambda v: np.clip(np.rint(np.asarray(v) / frm.MONITOR_ADC_GAIN), 0, 4095).astype(np.int64)  # noqa: E731
    noise = lambda: rng.integers(-1, 2, n)  # noqa: E731
    if plan.hv_on_at is None:
        since = np.full(n, 1e9)
    else:
        since = t - plan.hv_on_at
    hv = np.where(since < 0, HV_OFF_V, np.where(since < HV_RAMP_S, HV_OFF_V + (HV_ON_V - HV_OFF_V)
                                                   * np.clip(since, 0, None) / HV_RAMP_S, HV_ON_V))
    cool = np.exp(-np.clip(since + HV_OFF_S, 0, None) / COOL_TAU_S)
    det_t = DETTEMP_V - (DETTEMP_V - DETTEMP_COLD_V) * cool
    tec_cool = np.exp(-np.clip(since + HV_OFF_S, 0, None) / TEC_TAU_S)
    # heat load: a little more TEC current while the Sun is in view
    sun = ((geo.fov == 1) & (geo.occult == 0)).astype(float)
    sun = _moving_mean(sun, 301)
    tec = TEC_V + 0.03 * sun + (TEC_HOT_V - TEC_V) * tec_cool
    return {
        "HVMonitor": np.clip(adc(hv) + noise(), 0, 4095),
        "DetTemperature": np.clip(adc(det_t) + noise(), 0, 4095),
        "TECCurrent": np.clip(adc(tec) + noise(), 0, 4095),
        "LV1Monitor": np.clip(adc(LV1_V) + noise(), 0, 4095),
        "LV2Monitor": np.clip(adc(LV2_V) + noise(), 0, 4095),
        "hv_on": since >= HV_RAMP_S,
    }


def _hysteresis(up: np.ndarray, down: np.ndarray, min_dwell: int = 0) -> np.ndarray:
    """Boolean state: set at an ``up`` sample, cleared at a ``down`` sample (up wins ties); after a
    change the state is kept at least ``min_dwell`` samples. Loops over the changes only."""
    n = up.size
    ups = np.flatnonzero(up)
    downs = np.flatnonzero(down & ~up)
    state = np.zeros(n, bool)
    t, on, start = 0, False, 0
    while t < n:
        ev = downs if on else ups
        k = int(np.searchsorted(ev, t))
        if k == ev.size:
            break
        j = int(ev[k])
        if on:
            state[start:j] = True
        else:
            start = j
        on = not on
        t = j + max(int(min_dwell), 1)
    if on:
        state[start:] = True
    return state


def _blocks(n: int, flare_frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectral-shape blocks: ``BLOCK_S_QUIET``-s windows, split into ``BLOCK_S``-s blocks where
    flares make more than 5 % of the 1-8 A flux. Returns (block of each frame, mid frame of each block)."""
    w = np.arange(n) // BLOCK_S_QUIET
    nw = int(w[-1]) + 1 if n else 0
    split = np.bincount(w, weights=(flare_frac > 0.05), minlength=nw) > 0
    per = BLOCK_S_QUIET // BLOCK_S
    nsub = np.where(split, per, 1)
    first = np.concatenate([[0], np.cumsum(nsub)[:-1]])
    sub = np.where(split[w], (np.arange(n) % BLOCK_S_QUIET) // BLOCK_S, 0)
    blk = first[w] + sub
    starts = np.flatnonzero(np.r_[True, np.diff(blk) != 0])
    ends = np.r_[starts[1:], n]
    return blk, np.minimum((starts + ends) // 2, n - 1)


def simulate_span(plan: SpanPlan, model: solar.SolarModel, geo: Geometry, instrument: Instrument,
                  rng: np.random.Generator, *, chunk_frames: int = 3600,
                  progress=None) -> SimulatedFrames:
    """Simulate the frames of ``plan`` (functional core: arrays in, arrays out)."""
    t = plan.met
    n = t.size
    hk = _hk_series(plan, rng, geo)
    tec_v = (hk["TECCurrent"] * frm.MONITOR_ADC_GAIN).astype(np.float32)
    detposr32 = geo.detposr.astype(np.float32)
    g_sun = frame_gain(tec_v, detposr32, instrument.gain_sun, offset_tweak=False)
    g_cal = frame_gain(tec_v, None, instrument.gain_cal, offset_tweak=False)

    # ---- solar model per second
    comp = model.components(t)
    nph = (solar.photon_rate_per_em(comp["bg_T"]) * comp["bg_em"])
    for fl in model.flares:
        f, T, em = solar.flare_profile(t, fl)
        nph = nph + np.where(em > 0, solar.photon_rate_per_em(T) * em, 0.0)
    sun_vis = ((geo.fov == 1) & (geo.occult == 0) & hk["hv_on"]).astype(np.float64)

    # ---- block shapes: photon spectrum x area at block mid, folded
    with np.errstate(divide="ignore", invalid="ignore"):
        flare_frac = np.where(comp["goes"] > 0, comp["fl_flux"] / comp["goes"], 0.0)
    blk, mid = _blocks(n, flare_frac)
    nb = mid.size
    vis_blk = np.bincount(blk, weights=sun_vis, minlength=nb) > 0
    # collimator (energy independent) factor per second
    terms = effarea.frame_terms(geo.theta, geo.phi, geo.detposr, instrument.area_params)
    scale_s = terms.scale
    cos_mid = np.cos(np.radians(geo.theta[mid]))

    def block_pa(bsel: np.ndarray) -> np.ndarray:
        """Photon spectrum x open area (counts per photon bin) at the mid of blocks ``bsel``."""
        ph = model.photon_spectra(t[mid[bsel]])
        ph *= effarea.effective_area(geo.theta[mid[bsel]], geo.phi[mid[bsel]], geo.detposr[mid[bsel]],
                                     instrument.area_params, instrument.abscoef)
        return ph

    def be_trans(bsel: np.ndarray) -> np.ndarray:
        return np.exp(-instrument.abscoef.be[None, :] * BE_FILTER_CM / cos_mid[bsel][:, None])

    # first pass: count rates per block (open, Be) without folding (efficiency per photon bin)
    eff = np.asarray(response_matrix().sum(axis=1)).ravel()
    rate_open_blk = np.zeros(nb)
    rate_be_blk = np.zeros(nb)
    vis_ids = np.flatnonzero(vis_blk)             # blocks with the Sun in view at some second
    # photon spectrum x open area of those blocks, kept (float32) for the folding pass
    pa_cache = np.empty((vis_ids.size, solar.N_PHOTON_BINS), dtype=np.float32)
    row_of = np.full(nb, -1, dtype=np.int64)
    row_of[vis_ids] = np.arange(vis_ids.size)
    for b0 in range(0, vis_ids.size, 512):
        bsel = vis_ids[b0:b0 + 512]
        pa = block_pa(bsel)
        pa_cache[b0:b0 + bsel.size] = pa
        rate_open_blk[bsel] = pa @ eff
        rate_be_blk[bsel] = (pa * be_trans(bsel)) @ eff
    # per-second multiplier relative to the block mid
    with np.errstate(divide="ignore", invalid="ignore"):
        mult = np.where(scale_s[mid][blk] > 0, scale_s / scale_s[mid][blk], 0.0) * nph / nph[mid][blk]
    mult = np.nan_to_num(mult) * sun_vis

    # ---- expected open-wheel words per frame (sun part) and rate per frame
    cal_d = cal_source_density()
    bkg_words_cache: dict[int, np.ndarray] = {}
    cal_words_cache: dict[int, np.ndarray] = {}

    def per_cell(cache, dens, cells, gains, offsets):
        out = np.empty((cells.size, frm.N_SPECTRUM_WORDS))
        for c in np.unique(cells):
            if c not in cache:
                i = int(np.flatnonzero(cells == c)[0])
                cache[c] = channel_words(dens[None, :], gains[i:i + 1], offsets[i:i + 1])[0]
            out[cells == c] = cache[c]
        return out

    rate_open = rate_open_blk[blk] * mult                        # expected sun count rate, open
    rate_be = rate_be_blk[blk] * mult
    bkg_total = BKG_RATE + BKG_ULD_RATE
    lower = WINDOW_LOWER_BYTE * frm.WINDOW_LOWER_SCALE
    upper = WINDOW_UPPER_BYTE * frm.WINDOW_UPPER_SCALE

    # ---- wheel: calibration periods (manual), auto Be filter (hysteresis on the previous second)
    in_cal = np.zeros(n, bool)
    for a, b in plan.cal_periods:
        in_cal |= (t >= a) & (t < b)
    up = np.concatenate([[False], (rate_open + bkg_total)[:-1] > upper]) & ~in_cal
    down = np.concatenate([[True], (rate_be + bkg_total)[:-1] < lower]) | in_cal
    be = _hysteresis(up, down, WHEEL_MIN_DWELL_S) & ~in_cal
    pos = np.where(in_cal, 1, np.where(be, 2, 0)).astype(np.int64)     # commanded position
    change = np.flatnonzero(np.diff(pos) != 0) + 1
    moving = np.zeros(n, bool)
    for k in range(WHEEL_MOVE_FRAMES):
        moving[np.minimum(change + k, n - 1)] = True
    ir_pos = np.where(moving, frm.ENUM_INVALID, pos)
    discard = moving.copy()
    discard[[i for i in plan.discard_frames if 0 <= i < n]] = True

    state = np.full(n, STATE_SUN_OPEN)
    state[(ir_pos == 2)] = STATE_BE
    state[sun_vis == 0] = STATE_NO_SUN
    state[moving] = STATE_MOVING
    state[ir_pos == 1] = STATE_CAL
    state[~hk["hv_on"]] = STATE_DET_OFF
    sun_factor = np.where(ir_pos == 1, 0.0, np.where(moving, 0.5, 1.0)) * hk["hv_on"]

    # ---- expected words and counts, in chunks of frames
    words = np.zeros((n, frm.N_SPECTRUM_WORDS), dtype=np.uint16)
    exp_sun = np.zeros(n)
    exp_cal = np.zeros(n)
    exp_bkg = np.zeros(n)
    saturated = np.zeros(n, bool)
    energy_dep = np.zeros(n)
    nmin = int(math.ceil(n / 60))
    expected_min = np.zeros((nmin, frm.N_SPECTRUM_WORDS))
    uld = np.zeros(frm.N_SPECTRUM_WORDS)
    uld[frm.ULD_WORD] = 1.0
    ncell = int(max(g_sun.cell.max(initial=0), 0)) + 1
    for s0 in range(0, n, chunk_frames):
        sl = slice(s0, min(n, s0 + chunk_frames))
        idx = np.arange(sl.start, sl.stop)
        factor = mult[idx] * sun_factor[idx]
        lam_sun = np.zeros((idx.size, frm.N_SPECTRUM_WORDS))
        live = factor > 0                                    # seconds that see the Sun
        if live.any():
            il = idx[live]
            b = blk[il]
            use_be = ir_pos[il] == 2
            bch = np.unique(b)                               # blocks of this chunk, folded here
            pa = pa_cache[row_of[bch]].astype(np.float64)
            meas_open = fold(pa)
            be_rows = np.unique(b[use_be])
            meas_be = {}
            if be_rows.size:
                k = np.searchsorted(bch, be_rows)
                mb = fold(pa[k] * be_trans(be_rows))
                meas_be = {int(x): mb[j] for j, x in enumerate(be_rows)}
            # one channelisation per (block, wheel, gain cell), scaled per second
            key = (b.astype(np.int64) * 2 + use_be) * ncell + g_sun.cell[il]
            uk, first, inv = np.unique(key, return_index=True, return_inverse=True)
            rb = b[first]
            meas = meas_open[np.searchsorted(bch, rb)]
            ube = use_be[first]
            if ube.any():
                meas = meas.copy()
                for k in np.flatnonzero(ube):
                    meas[k] = meas_be[int(rb[k])]
            w_unique = channel_words(meas, g_sun.gain[il][first], g_sun.offset[il][first])
            lam_sun[live] = w_unique[inv.ravel()] * factor[live][:, None]
        cells = g_cal.cell[idx]
        lam_bkg = per_cell(bkg_words_cache, instrument.bkg_density * MEAS_DE, cells,
                           g_cal.gain[idx], g_cal.offset[idx]) * BKG_RATE + uld * BKG_ULD_RATE
        lam_bkg *= hk["hv_on"][idx][:, None]
        lam_cal = per_cell(cal_words_cache, cal_d, cells, g_cal.gain[idx], g_cal.offset[idx]) \
            * (CAL_RATE * (ir_pos[idx] == 1) * hk["hv_on"][idx])[:, None]
        exp_sun[idx] = lam_sun.sum(1)
        lam = lam_sun            # in place: the sun part is no longer needed
        lam += lam_bkg
        lam += lam_cal
        exp_bkg[idx] = lam_bkg.sum(1)
        exp_cal[idx] = lam_cal.sum(1)
        starts = np.flatnonzero((idx % 60 == 0) | (idx == idx[0]))
        expected_min[idx[starts] // 60] += np.add.reduceat(lam, starts, axis=0)
        cnt = rng.poisson(lam)
        sat = cnt > 0xFFFF
        if sat.any():
            saturated[idx[sat.any(axis=1)]] = True
            cnt = np.minimum(cnt, 0xFFFF)
        words[idx] = cnt
        energy_dep[idx] = cnt[:, :961] @ _CHANNEL_KEV
        if progress:
            progress(sl.stop - sl.start)

    spec_events = words.sum(axis=1, dtype=np.int64)
    # ---- coarse bands: band sums split over 10 sub-frames (multinomial, uniform in the second)
    band = np.stack([words[:, a:b + 1].sum(axis=1, dtype=np.int64) for a, b in COARSE_BANDS], axis=1)
    coarse = rng.multinomial(band, np.full(frm.N_SUBFRAMES, 1.0 / frm.N_SUBFRAMES))   # (n, 3, 10)
    coarse = np.ascontiguousarray(coarse.transpose(0, 2, 1))
    if coarse.max(initial=0) > 0xFFFF:
        coarse = np.minimum(coarse, 0xFFFF)

    # ---- other frame fields
    ramp = np.clip(14 + np.rint(energy_dep / 380.0), 0, 0xFFFF).astype(np.int64)
    pileup = rng.poisson(spec_events.astype(np.float64) ** 2 * 5e-6)
    noise_trig = rng.poisson(2.0, n) * hk["hv_on"]
    fpga = plan.fpga0_us + np.rint(np.arange(n) * plan.frame_period * 1e6).astype(np.int64)
    manual = in_cal | (np.concatenate([in_cal[1:], [False]]))
    fields = {
        "SyncUW": frm.SIM_SYNC_UW, "SyncLW": frm.SIM_SYNC_LW,
        "FPGAClock": fpga,
        "FrameNo": (plan.frame_no0 + np.arange(n)) % (1 << 32),
        "EventCounter": np.minimum(spec_events + pileup + noise_trig, (1 << 32) - 1),
        "EventDetected": spec_events,
        "RampCounter": ramp,
        "HVMonitor": hk["HVMonitor"], "DetTemperature": hk["DetTemperature"],
        "TECCurrent": hk["TECCurrent"], "LV1Monitor": hk["LV1Monitor"], "LV2Monitor": hk["LV2Monitor"],
        "Ch1Start": COARSE_BANDS[0][0], "Ch1Stop": COARSE_BANDS[0][1],
        "Ch2Start": COARSE_BANDS[1][0], "Ch2Stop": COARSE_BANDS[1][1],
        "Ch3Start": COARSE_BANDS[2][0], "Ch3Stop": COARSE_BANDS[2][1],
        "LLDRefVoltage": int(round(LLD_REF_MV / frm.REFERENCE_DAC_GAIN)),
        "TECRefVoltage": int(round(TEC_REF_MV / frm.REFERENCE_DAC_GAIN)),
        "WindowUpperThresh": WINDOW_UPPER_BYTE, "WindowLowerThresh": WINDOW_LOWER_BYTE,
        "FrameDiscardFlag": discard.astype(np.uint8),
        "IRPowerStatus": 0, "IROperationMode": 1,
        "MotorControlMode": np.where(manual, 1, 0),
        "MotorSetPos": pos, "MotorIRPos": ir_pos,
        "PileupRejMode": 1, "PileupRejTimeBit": 0, "MotorAutoTimeBit": 0,
    }
    frames = frm.encode_frames(fields, spectrum=words, coarse=coarse, n=n)

    truth = {
        "Time": t, "FrameNo": fields["FrameNo"].astype(np.int64), "XSMTime": fpga * 1e-6,
        "State": state.astype(np.int16), "MotorIRPos": ir_pos.astype(np.int16),
        "FrameDiscard": discard.astype(np.int16), "HVOn": hk["hv_on"].astype(np.int16),
        "Theta": geo.theta, "Phi": geo.phi, "DetPosR": geo.detposr,
        "FovFlag": geo.fov.astype(np.int16), "OccultFlag": geo.occult.astype(np.int16),
        "GoesFlux": comp["goes"], "GoesFluxFlares": comp["fl_flux"],
        "TBackground": comp["bg_T"], "EMBackground": comp["bg_em"],
        "TFlare": comp["fl_T"], "EMFlare": comp["fl_em"],
        "PhotonFlux": nph,
        "Gain": g_sun.gain, "Offset": g_sun.offset, "CalGain": g_cal.gain, "CalOffset": g_cal.offset,
        "RateOpen": rate_open, "RateBe": rate_be,
        "ExpSun": exp_sun, "ExpCal": exp_cal, "ExpBkg": exp_bkg,
        "ExpCounts": exp_sun + exp_cal + exp_bkg,
        "Counts": spec_events, "CoarseCounts": coarse.sum(axis=(1, 2), dtype=np.int64),
        "Saturated": saturated.astype(np.int16),
    }
    return SimulatedFrames(frames, t, truth, expected_min, model, instrument)


# ---------------------------------------------------------------- the day: sessions and truth

#: Ground-station codes used for session identifiers (``level0.md`` §3.1).
STATIONS = ("G26", "D18", "M65", "GDS")
#: Garbage bytes inserted before a record for a "lost sync" fault.
LOST_SYNC_BYTES = 37
#: MET of Chandrayaan-2's lunar orbit insertion (2019-08-20), origin of the orbit numbers.
LOI_MET = 83030400.0
#: Overlap between consecutive sessions (s): drawn in this range.
OVERLAP_RANGE_S = (180.0, 600.0)


@dataclass(frozen=True)
class SessionInfo:
    """One simulated download session (``level0.md`` §3)."""

    sid: str
    package: Path
    trigger: Path
    first: int            # index of its first frame in the day's frames
    stop: int             # one past its last frame
    start_met: float
    stop_met: float
    ist: bool
    station: str
    orbit: int
    kernel_files: tuple[Path, ...] = ()

    @property
    def n_records(self) -> int:
        return self.stop - self.first


@dataclass
class SimulatedDay:
    """What :func:`simulate_day` wrote, and the truth."""

    date: str
    profile: str
    seed: int
    out_dir: Path
    sessions: list[SessionInfo]
    static_kernels: object                 # kernels.StaticKernels
    metakernel: Path                       # static + every session's kernels, oldest first
    truth_path: Path
    truth: dict[str, np.ndarray]
    flares: list[solar.Flare]
    faults: list[dict]
    frames: np.ndarray | None = None       # (N, 2048), only with keep_frames=True

    def expected_qa(self) -> dict[str, int]:
        """The session QA counters (``level0.md`` §4.3) that ingesting every session must report."""
        kinds = [f["kind"] for f in self.faults]
        overlap = sum(max(0, a.stop - b.first) for a, b in zip(self.sessions, self.sessions[1:]))
        return {"n_records_total": sum(s.n_records for s in self.sessions),
                "n_bad_crc": kinds.count("bad_crc"), "n_bad_sync": kinds.count("lost_sync"),
                "n_bytes_skipped": LOST_SYNC_BYTES * kinds.count("lost_sync"),
                "n_duplicates": overlap - kinds.count("bad_crc"),
                "n_time_repaired": kinds.count("time_jump"), "n_dup_conflicts": 0,
                "n_time_outliers": 0, "n_truncated": 0, "n_no_time": 0, "n_leapsec_dropped": 0}

    @property
    def packages(self) -> list[Path]:
        return [s.package for s in self.sessions]

    @property
    def n_frames(self) -> int:
        return int(self.truth["Time"].size)

    def peak_class(self) -> str:
        return solar.goes_class(float(np.max(self.truth["GoesFlux"])))

    def to_dict(self) -> dict:
        return {"date": self.date, "profile": self.profile, "seed": self.seed, "out_dir": str(self.out_dir),
                "frames": self.n_frames, "counts": int(self.truth["Counts"].sum()),
                "peak_goes_class": self.peak_class(),
                "flares": [{"t_peak": f.t_peak, "class": f.goes_class, "T_peak_MK": round(f.T_peak, 2)}
                           for f in self.flares],
                "sessions": [{"sid": s.sid, "package": str(s.package), "records": s.n_records,
                              "start_met": s.start_met, "stop_met": s.stop_met, "ist": s.ist}
                             for s in self.sessions],
                "truth": str(self.truth_path), "metakernel": str(self.metakernel),
                "faults": len(self.faults), "expected_qa": self.expected_qa()}


def _parse_date(date) -> tuple[str, float]:
    """('YYYY-MM-DD', MET of 00:00:00 UTC) of a date string / date."""
    if isinstance(date, (_dt.date, _dt.datetime)):
        d = _dt.date(date.year, date.month, date.day)
    else:
        try:
            d = _dt.date.fromisoformat(str(date).strip()[:10])
        except ValueError:
            raise ParameterError(f"date {date!r}: expected YYYY-MM-DD") from None
    met0 = float(datetime64_to_met(np.datetime64(d.isoformat(), "ns")))
    if met0 < 0:
        raise ParameterError(f"date {d}: before the MET epoch 2017-01-01")
    return d.isoformat(), met0


def plan_sessions(n_frames: int, frame_period: float, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Split ``n_frames`` frames into 2-6 download sessions that overlap by minutes.

    A full day gets 5 or 6 sessions of about 4-5 h (2-6 h each); a shorter span two or three
    sessions. Returns (first, stop) frame indices per session; consecutive sessions share
    ``OVERLAP_RANGE_S`` worth of frames.
    """
    span = n_frames * frame_period
    if span >= 20 * 3600:
        ns = int(rng.integers(5, 7))
    elif span >= 8 * 3600:
        ns = int(np.clip(math.ceil(span / (5 * 3600)), 2, 6))
    else:
        ns = 2 if span < 3 * 3600 else 3
    cuts = np.linspace(0, n_frames, ns + 1)
    jitter = rng.uniform(-0.08, 0.08, ns - 1) * (n_frames / ns)
    cuts[1:-1] += jitter
    out = []
    for k in range(ns):
        ov = rng.uniform(*OVERLAP_RANGE_S) / frame_period
        a = int(round(cuts[k])) if k == 0 else int(round(cuts[k] - ov / 2))
        b = int(round(cuts[k + 1])) if k == ns - 1 else int(round(cuts[k + 1] + ov / 2))
        out.append((max(0, a), min(n_frames, b)))
    return out


def _pick_isolated(rng, lo: int, hi: int, k: int, avoid: np.ndarray, margin: int = 5) -> list[int]:
    """Up to ``k`` indices in [lo, hi) at least ``margin`` apart from each other and from ``avoid``."""
    out: list[int] = []
    if hi - lo <= 2 * margin:
        return out
    cand = rng.permutation(np.arange(lo + margin, hi - margin))
    for c in cand[: 50 * k]:
        if all(abs(c - x) > margin for x in out) and not np.any(np.abs(avoid - c) <= margin):
            out.append(int(c))
        if len(out) == k:
            break
    return sorted(out)


def simulate_day(date, profile: str = "active", seed: int = 0, out_dir: str | Path = ".", *,
                 caldb: str | Path | None = None, flare_class: str | None = None,
                 flare_peak_met: float | None = None, start_s: float = 0.0,
                 duration_s: float = SECONDS_PER_DAY, faults: bool = True,
                 keep_frames: bool = False, progress=None) -> SimulatedDay:
    """Simulate the level-0 download sessions of one UTC day (or of a part of it).

    Parameters
    ----------
    date : str or date
        The UTC day, ``YYYY-MM-DD``.
    profile : {'quiet', 'active', 'flare'}
        Solar activity (:data:`xsm.products.solar.PROFILES`).
    seed : int
        Seed of the ``numpy.random.Generator``: the same seed gives the same files.
    out_dir : path
        Output folder: ``<SID>.tar`` + ``<SID>.trg`` per session, ``kernels/`` (static kernels,
        the session kernels unpacked and ``xsm_day.tm``), ``<YYYYMMDD>_truth.fits``.
    caldb : path, optional
        CALDB root (default ``$XSM_CALDB``, else a synthetic CALDB written into
        ``out_dir/caldb``, :func:`default_caldb`).
    flare_class : str, optional
        Class of the big flare (``'M5'``, ``'X2.3'``); any profile then has one.
    flare_peak_met : float, optional
        Its peak time (default: a time in the middle half of the span with the Sun in view).
    start_s, duration_s : float
        Simulate only [day + start_s, day + start_s + duration_s) (tests use an hour or two).
    faults : bool
        Inject corrupted records, lost sync bytes and time-tag jumps (default True).
    keep_frames : bool
        Keep the (N, 2048) frames in the result.
    progress : callable, optional
        ``progress(n, total=None)``, called as frames are made.
    """
    from xsm.products import kernels as K

    day, met_day = _parse_date(date)
    if not (0 <= start_s < SECONDS_PER_DAY and 60 <= duration_s and start_s + duration_s <= SECONDS_PER_DAY):
        raise ParameterError(f"start_s/duration_s = {start_s}/{duration_s}: the span must lie inside the day "
                             "and last at least 60 s")
    if profile not in solar.PROFILES:
        raise ParameterError(f"profile {profile!r}: expected one of {', '.join(solar.PROFILES)}")
    if flare_class is not None:
        solar.parse_goes_class(flare_class)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    span0 = met_day + start_s
    span1 = span0 + duration_s
    t0 = span0 + float(rng.uniform(0.05, 0.95))
    n = int(math.floor((span1 - 1e-6 - t0) / FRAME_PERIOD)) + 1
    if progress:
        progress(0, total=n)

    # ---- geometry from a gap-free kernel set (the truth); sessions get the gap
    kdir = out / "kernels"
    orbit = K.orbit_model(met_day, beta_deg=float(rng.uniform(20.0, 40.0)))
    static = K.write_static_kernels(kdir, mounting=orbit.mounting)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="xsm-sim-") as tmp:
        truth_ks = K.write_kernel_set(tmp, span0 - 120, span1 + 120, orbit=orbit, ck_gap=False)
        plan = SpanPlan(t0=t0, n_frames=n)
        geo = kernel_geometry(plan.met, truth_ks)
    ck_gap = K.default_ck_gap(span0, span1, length_s=min(600.0, 0.05 * duration_s))

    # ---- the events of the span
    met = plan.met
    plan.hv_on_at = t0 + HV_OFF_S
    visible = (geo.fov == 1) & (geo.occult == 0)
    if duration_s >= 3600:
        # one calibration-source period of 10 min while the Sun is occulted (as operations do)
        occ = np.flatnonzero(~visible & (met > t0 + 0.1 * duration_s))
        if occ.size:
            a = met[occ[0]] + 60.0
            plan.cal_periods = [(a, a + 600.0)]
    plan.discard_frames = sorted(int(i) for i in rng.choice(np.arange(100, n - 10), size=min(3, max(0, n - 110)),
                                                            replace=False)) if n > 200 else []
    plan.fpga0_us = int(rng.integers(1_000_000, 5_000_000_000))
    plan.frame_no0 = int(rng.integers(1, 1_000_000))
    if flare_peak_met is None and (flare_class or solar.PROFILES[profile]["big"]):
        mid = np.flatnonzero(visible & (met > span0 + 0.25 * duration_s) & (met < span0 + 0.75 * duration_s))
        if mid.size == 0:
            mid = np.flatnonzero(visible)
        if mid.size:
            # peak well inside a visible stretch: the middle of the longest visible run
            runs = np.split(mid, np.flatnonzero(np.diff(mid) > 1) + 1)
            best = max(runs, key=len)
            flare_peak_met = float(met[best[len(best) // 2]])
    model = solar.make_solar_model(profile, span0, span1, rng, flare_class=flare_class,
                                   flare_peak=flare_peak_met)
    instrument = load_instrument(span0, caldb if caldb else default_caldb(out / "caldb"))
    sim = simulate_span(plan, model, geo, instrument, rng, progress=(lambda k: progress(k)) if progress else None)

    # ---- sessions
    bounds = plan_sessions(n, FRAME_PERIOD, rng)
    sessions, fault_log = _write_sessions(sim, bounds, out, kdir, orbit, ck_gap, rng, faults=faults)
    mk = kdir / "xsm_day.tm"
    session_files = [p for s in sessions for p in s.kernel_files]
    with atomic_path(mk) as tmp:
        tmp.write_text(K.metakernel_text([*static.files, *session_files],
                                         comment=f"xsm simulated day {day}: static kernels + session kernels, oldest first."))
    truth_path = out / f"{day.replace('-', '')}_truth.fits"
    res = SimulatedDay(date=day, profile=profile, seed=seed, out_dir=out, sessions=sessions,
                       static_kernels=static, metakernel=mk, truth_path=truth_path, truth=sim.truth,
                       flares=list(model.flares), faults=fault_log,
                       frames=sim.frames if keep_frames else None)
    write_truth(truth_path, sim, sessions, fault_log, day=day, profile=profile, seed=seed, ck_gap=ck_gap,
                expected_qa=res.expected_qa())
    return res


#: Columns of the truth extension SECONDS: name -> (unit, meaning). One row per simulated frame.
TRUTH_COLUMNS: dict[str, tuple[str, str]] = {
    "Time": ("s", "true MET of the frame (the level-1 Time after IST removal and tag repair)"),
    "FrameNo": ("", "frame counter written in the frame (level-1 FrameNumber)"),
    "XSMTime": ("s", "XSM FPGA clock of the frame"),
    "State": ("", "0 det off, 1 Sun open, 2 Be filter, 3 cal source, 4 wheel moving, 5 no Sun"),
    "MotorIRPos": ("", "filter-wheel IR position written (5 = moving)"),
    "FrameDiscard": ("", "FrameDiscardFlag written"),
    "HVOn": ("", "1 when the HV is on (counts possible)"),
    "Theta": ("deg", "true Sun angle from the boresight (gap-free kernels)"),
    "Phi": ("deg", "true Sun azimuth"),
    "DetPosR": ("mm", "true spot radius"),
    "FovFlag": ("", "Sun in the 38 deg field"),
    "OccultFlag": ("", "Sun (partly) hidden by the Moon"),
    "GoesFlux": ("W m-2", "model GOES 1-8 A flux (background + flares)"),
    "GoesFluxFlares": ("W m-2", "model GOES 1-8 A flux of the flares"),
    "TBackground": ("MK", "temperature of the background component"),
    "EMBackground": ("cm-3", "emission measure of the background component"),
    "TFlare": ("MK", "EM-weighted temperature of the flares"),
    "EMFlare": ("cm-3", "emission measure of the flares"),
    "PhotonFlux": ("ph cm-2 s-1", "model photon flux 1-15 keV at 1 AU"),
    "Gain": ("keV/chan", "CALDB GAIN(TECCurrent, DetPosR) used for the Sun"),
    "Offset": ("keV", "CALDB offset used for the Sun (channel c spans [c g + o, (c+1) g + o))"),
    "CalGain": ("keV/chan", "CALDB CALGAIN(TECCurrent) used for the source and background"),
    "CalOffset": ("keV", "CALDB CALGAIN offset"),
    "RateOpen": ("count/s", "expected Sun rate with the wheel open"),
    "RateBe": ("count/s", "expected Sun rate with the Be filter"),
    "ExpSun": ("count", "expected Sun counts of the frame"),
    "ExpCal": ("count", "expected calibration-source counts"),
    "ExpBkg": ("count", "expected particle-background counts (incl. ULD)"),
    "ExpCounts": ("count", "ExpSun + ExpCal + ExpBkg"),
    "Counts": ("count", "drawn counts = sum of the 963 spectrum words written (SpecEvents)"),
    "CoarseCounts": ("count", "sum of the 30 coarse words written (CoarseChEvents)"),
    "Saturated": ("", "1 when a spectrum word was clipped at 65535"),
}


def write_truth(path: Path, sim: SimulatedFrames, sessions: list[SessionInfo], faults: list[dict], *,
                day: str, profile: str, seed: int, ck_gap: tuple[float, float] | None = None,
                expected_qa: dict[str, int] | None = None) -> Path:
    """The truth beside the sessions: FITS with extensions SECONDS (one row per simulated frame,
    columns :data:`TRUTH_COLUMNS`), SPECTRA (expected words per 60 frames), FLARES, SESSIONS and
    FAULTS (injected bad CRCs, lost sync bytes, time-tag jumps); the primary header holds the
    seed, profile, CALDB files, peak class and the expected session QA counters."""
    from astropy.io import fits

    from xsm.products.fitsio import write_fits_atomic
    from xsm.products.provenance import SOFTWARE_VERSION

    tr = sim.truth
    cols = []
    for k, v in tr.items():
        v = np.asarray(v)
        fmt = "D" if v.dtype.kind == "f" else ("K" if v.dtype.itemsize > 2 else "I")
        unit = TRUTH_COLUMNS.get(k, ("", ""))[0]
        cols.append(fits.Column(name=k, format=fmt, array=v, unit=unit or None))
    sec = fits.BinTableHDU.from_columns(cols, name="SECONDS")
    for i, k in enumerate(tr, 1):
        if k in TRUTH_COLUMNS:
            sec.header.comments[f"TTYPE{i}"] = TRUTH_COLUMNS[k][1][:47]
    nmin = sim.expected_spectra.shape[0]
    spec = fits.BinTableHDU.from_columns([
        fits.Column(name="FIRST_FRAME", format="K", array=np.arange(nmin) * 60),
        fits.Column(name="TSTART", format="D", array=tr["Time"][np.arange(nmin) * 60]),
        fits.Column(name="NFRAMES", format="J", array=np.minimum(60, tr["Time"].size - np.arange(nmin) * 60)),
        fits.Column(name="EXPECTED", format=f"{frm.N_SPECTRUM_WORDS}D", array=sim.expected_spectra),
    ], name="SPECTRA")
    fl = sim.model.flares
    flares = fits.BinTableHDU.from_columns([
        fits.Column(name="T_PEAK", format="D", array=np.array([f.t_peak for f in fl], dtype=float)),
        fits.Column(name="PEAK_FLUX", format="D", array=np.array([f.peak_flux for f in fl], dtype=float)),
        fits.Column(name="CLASS", format="8A", array=np.array([f.goes_class for f in fl], dtype="U8")),
        fits.Column(name="T_PEAK_MK", format="D", array=np.array([f.T_peak for f in fl], dtype=float)),
        fits.Column(name="RISE_S", format="D", array=np.array([f.rise_s for f in fl], dtype=float)),
        fits.Column(name="DECAY_S", format="D", array=np.array([f.decay_s for f in fl], dtype=float)),
    ], name="FLARES")
    sess = fits.BinTableHDU.from_columns([
        fits.Column(name="SID", format="36A", array=np.array([s.sid for s in sessions], dtype="U36")),
        fits.Column(name="FIRST_FRAME", format="K", array=np.array([s.first for s in sessions], dtype=np.int64)),
        fits.Column(name="STOP_FRAME", format="K", array=np.array([s.stop for s in sessions], dtype=np.int64)),
        fits.Column(name="START_MET", format="D", array=np.array([s.start_met for s in sessions])),
        fits.Column(name="STOP_MET", format="D", array=np.array([s.stop_met for s in sessions])),
        fits.Column(name="IST", format="I", array=np.array([int(s.ist) for s in sessions], dtype=np.int16)),
        fits.Column(name="ORBIT", format="J", array=np.array([s.orbit for s in sessions], dtype=np.int32)),
    ], name="SESSIONS")
    fa = fits.BinTableHDU.from_columns([
        fits.Column(name="SID", format="36A", array=np.array([f["sid"] for f in faults], dtype="U36")),
        fits.Column(name="KIND", format="16A", array=np.array([f["kind"] for f in faults], dtype="U16")),
        fits.Column(name="RECORD", format="K", array=np.array([f["record"] for f in faults], dtype=np.int64)),
        fits.Column(name="FRAME", format="K", array=np.array([f["frame"] for f in faults], dtype=np.int64)),
    ], name="FAULTS")
    prim = fits.PrimaryHDU()
    h = prim.header
    h["CREATOR"] = ("xsm simulate day", "software that wrote this file")
    h["XSMSWVER"] = SOFTWARE_VERSION
    h["SIMDATE"] = (day, "simulated UTC day")
    h["PROFILE"] = (profile, "solar activity profile")
    h["RNGSEED"] = (int(seed), "numpy Generator seed")
    h["CALDBVER"] = sim.instrument.caldb_version
    for i, (code, name) in enumerate(sorted(sim.instrument.caldb_files.items()), 1):
        h[f"CALFIL{i:02d}"] = (f"{code}={name}", "calibration file used")
    h["BLOCK_S"] = (BLOCK_S, "s per spectral-shape block (flares)")
    h["BLOCK_SQ"] = (BLOCK_S_QUIET, "s per spectral-shape block (no flare)")
    h["FRPERIOD"] = (FRAME_PERIOD, "frame period (s)")
    if ck_gap:
        h["CKGAP0"] = (ck_gap[0], "MET start of the session CK gap")
        h["CKGAP1"] = (ck_gap[1], "MET stop of the session CK gap")
    h["NFRAMES"] = int(tr["Time"].size)
    h["NCOUNTS"] = (int(tr["Counts"].sum()), "sum of every spectrum word of every frame")
    h["PEAKFLUX"] = (float(np.max(tr["GoesFlux"])), "peak GOES 1-8 A flux (W m-2)")
    h["PEAKCLAS"] = (solar.goes_class(float(np.max(tr["GoesFlux"]))), "peak GOES class")
    for k, v in (expected_qa or {}).items():
        h[f"HIERARCH QA {k}"] = (int(v), "expected QA counter")
    h["COMMENT"] = "SYNTHETIC DATA (not flight data): truth of xsm simulate day"
    for k, v in STATE_NAMES.items():
        h[f"STATE{k}"] = v
    write_fits_atomic(fits.HDUList([prim, sec, spec, flares, sess, fa]), path, overwrite=True)
    return path


def read_truth(path: str | Path) -> dict[str, np.ndarray]:
    """Per-frame truth columns of a truth file (extension SECONDS)."""
    from astropy.io import fits

    with fits.open(path) as h:
        d = h["SECONDS"].data
        return {n: np.array(d[n]) for n in d.columns.names}


# ---------------------------------------------------------------- level-0 records and packages

def _write_sessions(sim: SimulatedFrames, bounds: list[tuple[int, int]], out: Path, kdir: Path, orbit,
                    ck_gap, rng: np.random.Generator, *, faults: bool = True):
    """Write every session package; return (sessions, fault log)."""
    from xsm.products import kernels as K
    from xsm.products import level0 as L0

    met = sim.met
    dh_time = np.rint(met * 1e6).astype(np.int64)
    dh_seq0 = int(rng.integers(0, 1 << 31))
    sessions: list[SessionInfo] = []
    fault_log: list[dict] = []
    period = orbit.period_s
    for k, (a, b) in enumerate(bounds):
        idx = np.arange(a, b)
        tag = met[idx].copy()
        frames = sim.frames[idx]
        ist = (k % 2 == 1)
        station = STATIONS[int(rng.integers(0, len(STATIONS)))]
        orb = 1 + int((met[a] - LOI_MET) // period)
        sid = L0.session_id(float(met[a]), station=station, orbit=orb)
        overl = np.zeros(b - a, bool)
        if k > 0:
            overl |= idx < bounds[k - 1][1]
        if k < len(bounds) - 1:
            overl |= idx >= bounds[k + 1][0]
        bad_crc: list[int] = []
        junk_at: int | None = None
        if faults:
            # isolated +1 s time-tag jumps, away from overlaps, edges and each other
            avoid = np.flatnonzero(overl)
            for j in _pick_isolated(rng, 0, b - a, 2, avoid, margin=10):
                tag[j] += 1.0
                fault_log.append({"sid": sid, "kind": "time_jump", "record": j, "frame": a + j})
            # corrupted records and lost sync bytes only where the neighbour session has a copy;
            # never the same frame in two sessions (the other session's copy stays good)
            cand = np.flatnonzero(overl)
            taken = {f["frame"] for f in fault_log if f["kind"] == "bad_crc"}
            cand = np.array([c for c in cand if (a + c) not in taken and 2 < c < b - a - 3], dtype=np.int64)
            if cand.size >= 4:
                pick = sorted(int(c) for c in rng.choice(cand, size=3, replace=False))
                bad_crc = pick[:2]
                junk_at = pick[2]
        recs = L0.encode_records(frames, tag, dh_time_us=dh_time[idx], dh_seq=(dh_seq0 + idx) % (1 << 32),
                                 ist=ist, orbit=orb, station_id=26 + k, simulated=True)
        for j in bad_crc:
            recs[j, L0.HEADER_SIZE + 1000] ^= 0xFF   # a flipped frame byte: the CRC no longer matches
            fault_log.append({"sid": sid, "kind": "bad_crc", "record": j, "frame": a + j})
        if junk_at is not None:
            segment = b"".join([recs[:junk_at].tobytes(), rng.integers(0, 256, LOST_SYNC_BYTES, dtype=np.uint8).tobytes(),
                                recs[junk_at:].tobytes()])
            fault_log.append({"sid": sid, "kind": "lost_sync", "record": junk_at, "frame": a + junk_at})
        else:
            segment = recs
        seg = f"{sid}_00"
        sk = K.write_session_kernels(kdir, seg, float(met[a]), float(met[b - 1]) + 1.0, orbit,
                                     ck_gaps_met=[ck_gap] if ck_gap else ())
        pkg = L0.write_session(out, sid, [segment], {0: {"spk": sk.spk, "ck": sk.ck, "sclk": sk.sclk}})
        trg = out / f"{sid}.trg"
        kept = [sk.sclk, sk.spk, sk.ck]
        sessions.append(SessionInfo(sid=sid, package=pkg, trigger=trg, first=a, stop=b,
                                    start_met=float(met[a]), stop_met=float(met[b - 1]), ist=ist,
                                    station=station, orbit=orb, kernel_files=tuple(kept)))
    return sessions, fault_log


# ---------------------------------------------------------------- the demo chain

#: Where :func:`default_caldb` keeps its synthetic CALDB when given no folder (under
#: :func:`xsm.products.settings.data_dir`).
SYNTHETIC_CALDB_SUBDIR = "caldb_synthetic"


def default_caldb(fallback_dir: str | Path | None = None) -> Path:
    """The CALDB the simulator uses: ``$XSM_CALDB``, else a synthetic CALDB.

    The synthetic CALDB (``xsm caldb init --synthetic``) is written into ``fallback_dir``, or
    ``<data dir>/caldb_synthetic`` when None, unless one is there already. The real CALDB is
    used only when configured (``$XSM_CALDB``) or passed explicitly by the caller.
    """
    from xsm.caldb_manager.index import XSM_INDEX_NAME
    from xsm.caldb_manager.layout import current_version
    from xsm.caldb_manager.publish import init_synthetic
    from xsm.products import settings

    env = settings.caldb_dir()
    if env is not None:
        return Path(env)
    root = Path(fallback_dir) if fallback_dir is not None else settings.data_dir() / SYNTHETIC_CALDB_SUBDIR
    if current_version(root) is None and not (root / XSM_INDEX_NAME).exists():
        init_synthetic(root)
    return root


def demo_day(out_dir: str | Path, *, date: str = "2021-10-28", profile: str = "flare", seed: int = 0,
             hours: float = 24.0, caldb: str | Path | None = None, flare_class: str | None = None,
             progress=None) -> dict:
    """``xsm demo``: simulate a day -> level-0 sessions -> level-1 science, housekeeping, sun angle.

    Writes ``out_dir/level0`` (sessions, kernels, truth), ``out_dir/level1`` (``.fits``, ``.hk``,
    ``.sa`` per day) and returns a summary (paths, QA totals, truth checks).
    """
    from xsm.products.geometry import make_sa_file
    from xsm.products.level0 import build_level1

    out = Path(out_dir)
    root = Path(caldb) if caldb else default_caldb(out / "caldb")
    sim = simulate_day(date, profile, seed, out / "level0", caldb=root, flare_class=flare_class,
                       duration_s=hours * 3600.0, progress=progress)
    res = build_level1(sim.packages, out / "level1", overwrite=True)
    days = []
    for d in res.days:
        sa, angles = make_sa_file(d.fits, sim.metakernel, overwrite=True)
        days.append({**d.as_dict(), "sa": str(sa), "rows_without_geometry": int(angles.coverage.n_missing)})
    return {"simulated": sim.to_dict(), "level0": [str(p) for p in sim.packages],
            "level1": {"days": days, "totals": res.totals}, "caldb": str(root),
            "frames_simulated": sim.n_frames, "frames_in_level1": int(sum(d.n_rows for d in res.days))}
