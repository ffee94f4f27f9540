"""Sun geometry of XSM with SPICE: the level-1 sun-angle (``.sa``) columns (``geometry.md``).

:func:`compute_sun_angles` takes MET values and kernels and returns :class:`SunAngles`, a
dataclass of arrays (one value per epoch):

* coverage is checked first (``geometry.md`` §7): ``spkcov`` of the spacecraft (and of the
  Sun, the Moon and the centre bodies of the spacecraft's segments), ``ckcov`` of the bus
  frame at INTERVAL level; epochs without coverage get the documented fill and are reported
  (count and intervals), never an exception;
* the covered epochs go through vectorised ``spiceypy.cyice`` calls (``deltet_v``,
  ``spkpos_v``, ``spkezr_v``, ``pxform_v``) and numpy; the occultation by the Moon uses the
  numpy test of §6 (equal to CSPICE ``occult`` codes, several times faster);
* CSPICE is not thread-safe: large inputs are split over worker **processes**, each loading
  its own kernels.

:func:`make_sa_table` turns the result into the level-1 table (columns of
``xsm.products.columns.SA_COLUMNS``) and :func:`sa_history` into the HISTORY lines of
``level1.md`` §4; :func:`make_sa_file` does everything from a level-1 science file.
"""
from __future__ import annotations

import logging
import math
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import spiceypy
from spiceypy import cyice
from spiceypy.utils.exceptions import SpiceyError

from xsm.products import kernels as K
from xsm.products.errors import InputFormatError, ParameterError
from xsm.products.provenance import Mode

log = logging.getLogger(__name__)

#: Fill values of rows without geometry (``geometry.md`` §7).
FILL = {"Theta": np.nan, "Phi": np.nan, "RamAngle": np.nan, "RA": np.nan, "DEC": np.nan,
        "AngRate": np.nan, "FovFlag": 0, "OccultFlag": 0, "DetPosR": K.DETPOS_DISTANCE_MM}
#: pi as the reference used it for DetPosR (quirk Q09, ``geometry.md`` §4, compat mode).
PI_COMPAT = 3.1415
#: Aberration correction of the Sun direction (``geometry.md`` §3).
ABCORR_SUN = "LT+S"
#: Rows per worker process below which no process is started.
MIN_ROWS_PER_WORKER = 20000
#: Gap (s) after which AngRate restarts (``geometry.md`` §5).
ANGRATE_GAP_S = 1.5


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------
@dataclass
class CoverageReport:
    """Which epochs lacked geometry and why (``geometry.md`` §7).

    Attributes
    ----------
    n_total, n_missing : int
        Epochs given; epochs without geometry (filled).
    missing_intervals_met : list of (float, float)
        First and last MET of each run of consecutive rows without geometry.
    n_missing_by_kind : dict
        ``'spk'``, ``'ck'``: epochs outside the SPK (spacecraft/planets) or CK windows.
    spk_windows_met, ck_windows_met : list of (float, float)
        The coverage windows found (MET), after union over files.
    unusable_kernels : list of str
        Kernels that could not be used (e.g. a CK without its SCLK), with the reason.
    """

    n_total: int = 0
    n_missing: int = 0
    missing_intervals_met: list[tuple[float, float]] = field(default_factory=list)
    n_missing_by_kind: dict[str, int] = field(default_factory=dict)
    spk_windows_met: list[tuple[float, float]] = field(default_factory=list)
    ck_windows_met: list[tuple[float, float]] = field(default_factory=list)
    unusable_kernels: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: how many epochs lack geometry and when."""
        if not self.n_missing:
            return f"geometry for all {self.n_total} epochs"
        from xsm.products.met import met_to_utc_string

        spans = ", ".join(f"{met_to_utc_string(a)[:19]}..{met_to_utc_string(b)[11:19]}"
                          for a, b in self.missing_intervals_met[:5])
        more = "" if len(self.missing_intervals_met) <= 5 else f" (+{len(self.missing_intervals_met) - 5} more)"
        kinds = ", ".join(f"{k} {v}" for k, v in self.n_missing_by_kind.items() if v)
        bad = f"; unusable kernels: {', '.join(self.unusable_kernels)}" if self.unusable_kernels else ""
        return (f"no geometry for {self.n_missing} of {self.n_total} epochs ({kinds}): "
                f"{spans}{more}{bad}")


@dataclass
class LoadedKernels:
    """Kernel files by kind (basenames go into HISTORY; ``level1.md`` §4)."""

    files: list[Path] = field(default_factory=list)          # what was furnsh'ed, in order
    by_kind: dict[str, list[str]] = field(default_factory=dict)  # kind -> basenames


@dataclass
class SunAngles:
    """The sun-angle columns of ``geometry.md`` §3, one value per epoch (float64 degrees).

    ``covered`` is False for epochs without geometry (they hold the fill of §7).
    ``occult_code`` holds the CSPICE ``occult`` convention: -3 total, -1 partial, 0 clear.
    """

    time: np.ndarray
    theta: np.ndarray
    phi: np.ndarray
    fov_flag: np.ndarray
    occult_flag: np.ndarray
    detpos_r: np.ndarray
    ram_angle: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    ang_rate: np.ndarray
    covered: np.ndarray
    occult_code: np.ndarray
    coverage: CoverageReport
    kernels: LoadedKernels
    mode: Mode = Mode.DEFAULT
    fov_half_angle_deg: float = K.FOV_HALF_ANGLE_DEG
    detpos_distance_mm: float = K.DETPOS_DISTANCE_MM

    def __len__(self) -> int:
        return len(self.time)


# --------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------
def kernel_files(kernels) -> list[Path]:
    """Kernel files to load, in order, from a KernelSet, a path or a sequence of both."""
    if isinstance(kernels, K.KernelSet):
        return [kernels.metakernel]
    if isinstance(kernels, (K.StaticKernels,)):
        return [kernels.metakernel]
    if isinstance(kernels, K.SessionKernels):
        return list(kernels.files)
    if isinstance(kernels, (str, os.PathLike)):
        return [Path(kernels)]
    out: list[Path] = []
    for k in kernels:
        out += kernel_files(k)
    return out


_BINARY_SUFFIXES = {".bsp", ".bc", ".bpc", ".bds"}


def _classify(path: str, ftype: str) -> str:
    ext = Path(path).suffix.lower()
    if ftype == "META":
        return "mk"
    if ftype == "SPK":
        return "spk"
    if ftype == "CK":
        return "ck"
    if ftype == "PCK":
        return "pck"
    return {".tls": "lsk", ".tpc": "pck", ".tf": "fk", ".ti": "ik", ".tsc": "sclk",
            ".tm": "mk"}.get(ext, "text")


def _load(files: Sequence[Path]) -> LoadedKernels:
    """furnsh every file; a missing or unreadable kernel is a one-line InputFormatError."""
    for f in files:
        if not Path(f).is_file():
            raise InputFormatError(f"{f}: kernel file not found")
        try:
            spiceypy.furnsh(str(f))
        except SpiceyError as exc:
            spiceypy.kclear()
            raise InputFormatError(f"{f}: cannot load kernel ({exc.short or 'SPICE error'}: "
                                   f"{_first_line(exc)})") from None
    out = LoadedKernels(files=[Path(f) for f in files])
    for i in range(spiceypy.ktotal("ALL")):
        path, ftype, _src, _h = spiceypy.kdata(i, "ALL")
        if Path(path).suffix.lower() in _BINARY_SUFFIXES and ftype == "TEXT":
            # furnsh silently takes a foreign file (e.g. the .npy "de421" packages, zeros)
            # as an empty text kernel; every look-up would fail later (geometry.md §9)
            spiceypy.kclear()
            raise InputFormatError(f"{path}: not a SPICE binary kernel (loaded as an empty text kernel)")
        kind = _classify(path, ftype)
        out.by_kind.setdefault(kind, []).append(path)
    # planetary SPKs = SPK files without the spacecraft
    for p in list(out.by_kind.get("spk", [])):
        ids = spiceypy.spkobj(p)
        if K.SPACECRAFT_ID not in set(ids):
            out.by_kind["spk"].remove(p)
            out.by_kind.setdefault("planetary_spk", []).append(p)
    return out


def _first_line(exc: SpiceyError) -> str:
    for line in str(exc.long or exc.value or exc).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _has(name: str) -> bool:
    """True if the kernel-pool variable exists (numeric or string)."""
    with spiceypy.no_found_check():
        _n, _typ, found = spiceypy.dtpool(name)
    return bool(found)


def _require_pool(name: str, what: str) -> None:
    if not _has(name):
        raise InputFormatError(f"kernel pool lacks {name}: load the {what}")


def _instrument_constants() -> tuple[float, float, int]:
    """(FOV half angle deg, DETPOS distance mm, CK frame ID of the bus) from the FK/IK."""
    ins = K.XSM_FRAME_ID
    _require_pool(f"TKFRAME_{ins}_RELATIVE", "frame kernel (FK) defining CH2_XSM")
    fov = K.FOV_HALF_ANGLE_DEG
    if _has(f"INS{ins}_FOV_REF_ANGLE"):
        fov = float(spiceypy.gdpool(f"INS{ins}_FOV_REF_ANGLE", 0, 1)[0])
        units = (spiceypy.gcpool(f"INS{ins}_FOV_ANGLE_UNITS", 0, 1) or ["DEGREES"])[0].upper()
        if units.startswith("RAD"):
            fov = math.degrees(fov)
    else:
        raise InputFormatError(f"kernel pool lacks INS{ins}_FOV_REF_ANGLE: load the XSM instrument kernel (IK)")
    dist = K.DETPOS_DISTANCE_MM
    if _has(f"INS{ins}_DETPOS_DISTANCE"):
        dist = float(spiceypy.gdpool(f"INS{ins}_DETPOS_DISTANCE", 0, 1)[0])
    rel = spiceypy.gcpool(f"TKFRAME_{ins}_RELATIVE", 0, 1)[0]
    bus = spiceypy.namfrm(rel)
    if bus == 0:
        raise InputFormatError(f"frame {rel} (relative frame of CH2_XSM) is not defined in the FK")
    _center, fclass, class_id = spiceypy.frinfo(bus)
    if fclass != 3:
        raise InputFormatError(f"frame {rel} is not a CK frame (class {fclass})")
    return fov, dist, int(class_id)


# --------------------------------------------------------------------------------------
# Coverage (geometry.md §7)
# --------------------------------------------------------------------------------------
def _window_list(cell) -> list[tuple[float, float]]:
    return [tuple(spiceypy.wnfetd(cell, i)) for i in range(spiceypy.wncard(cell))]


def _spk_centres(path: str, body: int) -> set[int]:
    """Centre bodies of the segments of ``body`` in an SPK (from the segment summaries)."""
    centres: set[int] = set()
    handle = spiceypy.dafopr(path)
    try:
        spiceypy.dafbfs(handle)
        found = spiceypy.daffna()
        while found:
            dc, ic = spiceypy.dafus(spiceypy.dafgs(), 2, 6)
            if ic[0] == body:
                centres.add(int(ic[1]))
            found = spiceypy.daffna()
    finally:
        spiceypy.dafcls(handle)
    return centres


def _spk_window(files: Sequence[str], body: int):
    cell = spiceypy.cell_double(20000)
    for f in files:
        if body in set(spiceypy.spkobj(f)):
            spiceypy.spkcov(f, body, cell)
    return cell


def _intersect(a, b):
    return spiceypy.wnintd(a, b)


def _mask(et: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
    m = np.zeros(len(et), bool)
    if not windows:
        return m
    starts = np.array([w[0] for w in windows])
    stops = np.array([w[1] for w in windows])
    i = np.searchsorted(starts, et, side="right") - 1
    ok = i >= 0
    m[ok] = et[ok] <= stops[i[ok]]
    return m


def _runs(met: np.ndarray, bad: np.ndarray) -> list[tuple[float, float]]:
    if not bad.any():
        return []
    b = bad.astype(np.int8)
    d = np.diff(np.concatenate([[0], b, [0]]))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1) - 1
    return [(float(met[s]), float(met[e])) for s, e in zip(starts, stops)]


def check_coverage(met: np.ndarray, et: np.ndarray, loaded: LoadedKernels, bus_id: int,
                   ck_tolerance: float = 0.0) -> tuple[np.ndarray, CoverageReport]:
    """Boolean mask of epochs with SPK and CK coverage, and the report (``geometry.md`` §7)."""
    spk_all = loaded.by_kind.get("spk", []) + loaded.by_kind.get("planetary_spk", [])
    sc = _spk_window(spk_all, K.SPACECRAFT_ID)
    bodies = {10, 301}
    for f in loaded.by_kind.get("spk", []):
        bodies |= _spk_centres(f, K.SPACECRAFT_ID)
    bodies -= {0}
    planets = None
    for b in sorted(bodies):
        w = _spk_window(spk_all, b)
        planets = w if planets is None else _intersect(planets, w)
    spk_win = _intersect(sc, planets) if planets is not None else sc
    ck = spiceypy.cell_double(200000)
    unusable: list[str] = []
    for f in loaded.by_kind.get("ck", []):
        try:
            if bus_id in set(spiceypy.ckobj(f)):
                spiceypy.ckcov(f, bus_id, False, "INTERVAL", ck_tolerance, "TDB", ck)
        except SpiceyError as exc:
            # e.g. no SCLK for the CK's clock: the CK gives no coverage (geometry.md §7);
            # a session with unusable kernels still gets its rows, filled
            unusable.append(f"{Path(f).name}: {exc.short or 'SPICE error'}")
            log.warning("CK %s unusable (%s): its epochs get no geometry", Path(f).name, exc.short)
    spk_w = _window_list(spk_win)
    ck_w = _window_list(ck)
    m_spk = _mask(et, spk_w)
    m_ck = _mask(et, ck_w)
    ok = m_spk & m_ck
    rep = CoverageReport(
        n_total=len(met), n_missing=int((~ok).sum()),
        missing_intervals_met=_runs(met, ~ok),
        n_missing_by_kind={"spk": int((~m_spk).sum()), "ck": int((~m_ck).sum())},
        spk_windows_met=[tuple(K.et_to_met(np.array(w))) for w in spk_w],
        ck_windows_met=[tuple(K.et_to_met(np.array(w))) for w in ck_w],
        unusable_kernels=unusable,
    )
    return ok, rep


# --------------------------------------------------------------------------------------
# The vectorised core (runs in this process or in a worker process)
# --------------------------------------------------------------------------------------
def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=1)
    return v / n[:, None], n


def _raw_geometry_spice(et: np.ndarray, sun_radius: float, moon_radius: float) -> dict[str, np.ndarray]:
    """Sun direction (XSM), boresight (J2000), ram angle and occultation code: direct calls.

    ``spkpos_v`` of the Sun (``LT+S`` and ``LT``) and the Moon (``LT``) from the spacecraft,
    ``spkezr_v`` of the spacecraft relative to the Moon (geometric velocity for RamAngle),
    ``pxform_v`` J2000 -> CH2_XSM (``geometry.md`` §3, §6).
    """
    et = np.ascontiguousarray(et, dtype=np.float64)
    sc = str(K.SPACECRAFT_ID)
    sun_j, _ = cyice.spkpos_v("SUN", et, "J2000", ABCORR_SUN, sc)
    m = np.asarray(cyice.pxform_v("J2000", K.XSM_FRAME, et))
    s_hat, _ = _unit(np.asarray(sun_j))
    sun_lt, _ = cyice.spkpos_v("SUN", et, "J2000", "LT", sc)
    moon_lt, _ = cyice.spkpos_v("MOON", et, "J2000", "LT", sc)
    st, _ = cyice.spkezr_v(sc, et, "J2000", "NONE", "MOON")
    return _finish(m, s_hat, np.asarray(sun_lt), np.asarray(moon_lt), np.asarray(st)[:, 3:],
                   sun_radius, moon_radius)


#: Speed of light, km/s (SPICE clight()).
CLIGHT = 299792.458
#: Step (s) of the Sun/Moon barycentric grids interpolated by :func:`_raw_geometry`.
GRID_STEP_S = 60.0


def _hermite(grid: np.ndarray, state: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cubic Hermite interpolation of positions (and their derivative) from (N, 6) states."""
    h = grid[1] - grid[0]
    i = np.clip(((t - grid[0]) // h).astype(np.int64), 0, len(grid) - 2)
    x = ((t - grid[i]) / h)[:, None]
    p0, p1 = state[i, :3], state[i + 1, :3]
    m0, m1 = state[i, 3:] * h, state[i + 1, 3:] * h
    x2, x3 = x * x, x * x * x
    pos = ((2 * x3 - 3 * x2 + 1) * p0 + (x3 - 2 * x2 + x) * m0 + (-2 * x3 + 3 * x2) * p1
           + (x3 - x2) * m1)
    vel = ((6 * x2 - 6 * x) * p0 + (3 * x2 - 4 * x + 1) * m0 + (-6 * x2 + 6 * x) * p1
           + (3 * x2 - 2 * x) * m1) / h
    return pos, vel


def _stelab(pobj: np.ndarray, vobs: np.ndarray) -> np.ndarray:
    """Stellar aberration as CSPICE ``stelab``: rotate pobj about u x v/c by asin|u x v/c|."""
    u, _ = _unit(pobj)
    hvec = np.cross(u, vobs / CLIGHT)
    sinphi = np.linalg.norm(hvec, axis=1)
    k = hvec / np.where(sinphi > 0, sinphi, 1.0)[:, None]
    phi = np.arcsin(sinphi)[:, None]
    return pobj * np.cos(phi) + np.cross(k, pobj) * np.sin(phi)


def _raw_geometry_fast(et: np.ndarray, sun_radius: float, moon_radius: float) -> dict[str, np.ndarray]:
    """As :func:`_raw_geometry_spice` with two vectorised SPICE calls per epoch instead of five.

    The spacecraft state relative to the Moon (``spkezr_v``) and the J2000 -> CH2_XSM
    rotation (``pxform_v``) are evaluated at every epoch; the barycentric Sun and Moon come
    from ``spkezr_v`` on a 60 s grid with cubic Hermite interpolation (error < 1 mm).  Light
    time (``LT``) is iterated as CSPICE does and stellar aberration (``+S``) is CSPICE's
    ``stelab`` formula, in numpy.  Agrees with the direct calls to ~1e-9 deg (tests).
    """
    et = np.ascontiguousarray(et, dtype=np.float64)
    sc = str(K.SPACECRAFT_ID)
    st, _ = cyice.spkezr_v(sc, et, "J2000", "NONE", "MOON")
    st = np.asarray(st)
    m = np.asarray(cyice.pxform_v("J2000", K.XSM_FRAME, et))          # (N,3,3) J2000 -> XSM
    # grid nodes on absolute multiples of the step: chunks in worker processes give
    # bit-identical results to one process
    g0 = math.floor((et.min() - 900.0) / GRID_STEP_S) * GRID_STEP_S
    grid = g0 + GRID_STEP_S * np.arange(int((et.max() + GRID_STEP_S - g0) // GRID_STEP_S) + 2)
    grid = np.ascontiguousarray(grid)
    moon_g, _ = cyice.spkezr_v("MOON", grid, "J2000", "NONE", "SSB")
    sun_g, _ = cyice.spkezr_v("SUN", grid, "J2000", "NONE", "SSB")
    moon_g, sun_g = np.asarray(moon_g), np.asarray(sun_g)
    moon_p, moon_v = _hermite(grid, moon_g, et)
    obs = moon_p + st[:, :3]
    vobs = moon_v + st[:, 3:]

    def apparent(state_g: np.ndarray, p_geo: np.ndarray) -> np.ndarray:
        # CSPICE "LT": one-way light time by (converging) iteration
        lt = np.linalg.norm(p_geo - obs, axis=1) / CLIGHT
        for _ in range(2):
            p, _v = _hermite(grid, state_g, et - lt)
            lt = np.linalg.norm(p - obs, axis=1) / CLIGHT
        p, _v = _hermite(grid, state_g, et - lt)
        return p - obs

    sun_p, _ = _hermite(grid, sun_g, et)
    sun_lt = apparent(sun_g, sun_p)
    moon_lt = apparent(moon_g, moon_p)
    s_hat, _ = _unit(_stelab(sun_lt, vobs))
    return _finish(m, s_hat, sun_lt, moon_lt, st[:, 3:], sun_radius, moon_radius)


def _finish(m, s_hat, sun_lt, moon_lt, vel_rel_moon, sun_radius, moon_radius) -> dict[str, np.ndarray]:
    s_xsm = np.einsum("nij,nj->ni", m, s_hat)
    bore = m[:, 2, :]                                                  # XSM +Z in J2000
    su, ds = _unit(sun_lt)
    mu, dm = _unit(moon_lt)
    a_s = np.arcsin(np.clip(sun_radius / ds, -1, 1))
    a_m = np.arcsin(np.clip(moon_radius / dm, -1, 1))
    sep = np.arccos(np.clip(np.sum(su * mu, axis=1), -1.0, 1.0))
    code = np.zeros(len(s_hat), np.int8)
    code[sep < a_m + a_s] = -1
    code[sep <= a_m - a_s] = -3
    code[dm > ds] = 0     # the Moon behind the Sun cannot hide it (never at the Moon)
    v_hat, _ = _unit(vel_rel_moon)
    ram = np.degrees(np.arccos(np.clip(np.sum(v_hat * bore, axis=1), -1.0, 1.0)))
    return {"s": s_xsm, "bore": bore, "ram": ram, "code": code}


#: The implementation used by :func:`compute_sun_angles` (``_raw_geometry_spice`` is the
#: slower direct-call reference the tests compare it with).
_raw_geometry = _raw_geometry_fast


def _worker(files: list[str], et: np.ndarray, radii: tuple[float, float]) -> dict[str, np.ndarray]:
    """Worker process: own kernel pool (CSPICE state is per process), compute, unload."""
    spiceypy.kclear()
    for f in files:
        spiceypy.furnsh(f)
    try:
        return _raw_geometry(et, *radii)
    finally:
        spiceypy.kclear()


def _radius(body: int, default: float) -> float:
    name = f"BODY{body}_RADII"
    if not _has(name):
        raise InputFormatError(f"kernel pool lacks {name}: load a PCK with the Sun and Moon radii")
    r = spiceypy.gdpool(name, 0, 3)
    return float(np.mean(r))


def default_workers(max_workers: int = 4) -> int:
    """Worker processes worth starting: idle CPUs (CPU count less the 1-min load), 1..4.

    On a saturated machine extra processes only add start-up and contention.
    """
    cpus = os.cpu_count() or 1
    try:
        idle = cpus - os.getloadavg()[0]
    except (AttributeError, OSError):
        idle = cpus
    return int(max(1, min(max_workers, cpus, round(idle))))


def _compute(et: np.ndarray, files: list[Path], workers: int, radii: tuple[float, float]):
    n = len(et)
    if workers <= 1 or n < 2 * MIN_ROWS_PER_WORKER:
        return _raw_geometry(et, *radii)
    workers = min(workers, n // MIN_ROWS_PER_WORKER)
    chunks = np.array_split(et, workers)
    methods = multiprocessing.get_all_start_methods()
    # fork is fastest; with other threads running (progress bars, samplers) fork is unsafe,
    # so use a fresh interpreter then (each worker loads its own kernels in any case)
    if "fork" in methods and threading.active_count() == 1:
        ctx = multiprocessing.get_context("fork")
    else:
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    fs = [str(f) for f in files]
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
        parts = list(ex.map(_worker, [fs] * workers, chunks, [radii] * workers))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def ang_rate(time: np.ndarray, theta32: np.ndarray) -> np.ndarray:
    """AngRate of ``geometry.md`` §5 from float32 Theta (deg/s).

    Row i with a predecessor at most 1.5 s earlier: (Theta[i] - Theta[i-1]) / (t[i] - t[i-1]);
    the first row and the first row after a gap take the next row's value; the last row
    takes the previous row's value.  NaN Theta gives NaN.
    """
    t = np.asarray(time, dtype=np.float64)
    th = np.asarray(theta32, dtype=np.float32).astype(np.float64)
    n = len(t)
    out = np.full(n, np.nan)
    if n < 2:
        return out
    dt = np.diff(t)
    cont = dt <= ANGRATE_GAP_S
    rate = np.full(n, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate[1:] = np.where(cont, np.diff(th) / dt, np.nan)
    out[1:] = rate[1:]
    # first row of the file and first rows after a gap: the next row's value
    first = np.concatenate([[True], ~cont])
    idx = np.flatnonzero(first)
    nxt = np.minimum(idx + 1, n - 1)
    out[idx] = np.where(nxt < n, rate[nxt], np.nan)
    # last row: the previous row's value
    out[n - 1] = out[n - 2]
    return out


def compute_sun_angles(met, kernels, *, mode: Mode = Mode.DEFAULT, workers: int | None = None,
                       occultation: str = "partial", ck_tolerance: float = 0.0) -> SunAngles:
    """Sun angles of XSM at MET epochs (``geometry.md`` §2-§7).

    Parameters
    ----------
    met : array of float64
        MET of each row (s), e.g. the level-1 ``Time`` column (increasing for AngRate).
    kernels : KernelSet, path or sequence
        Meta-kernels and/or kernel files, loaded in the given order (session kernels oldest
        first, so that newer downloads win, ``geometry.md`` §1).
    mode : Mode
        DEFAULT, or XSMDAS_1_2 (DetPosR with pi = 3.1415, quirk Q09).
    workers : int, optional
        Worker processes (default :func:`default_workers`: the idle CPUs, at most 4; one
        process below 40 000 rows).
    occultation : {'partial', 'total'}
        OccultFlag = 1 when any part of the disc is hidden (default) or only when all of it.
    ck_tolerance : float
        ``ckcov`` tolerance (s), the one of later pointing look-ups.

    Returns
    -------
    SunAngles
        Rows without SPK or CK coverage hold the fill of §7 and are counted and listed in
        ``coverage``.

    Raises
    ------
    InputFormatError
        A kernel is missing or unreadable, or a required kernel kind (LSK, PCK radii, FK,
        IK) is not loaded.

    Notes
    -----
    The CSPICE kernel pool is process-global: this function clears it (``kclear``), loads
    ``kernels``, and clears it again on return.
    """
    if occultation not in ("partial", "total"):
        raise ParameterError(f"occultation = {occultation!r}: use 'partial' or 'total'")
    met = np.ascontiguousarray(np.asarray(met, dtype=np.float64))
    files = kernel_files(kernels)
    n = len(met)
    if workers is None:
        workers = default_workers()
    spiceypy.kclear()
    try:
        loaded = _load(files)
        _require_pool("DELTET/DELTA_AT", "leap-second kernel (LSK)")
        fov, dist, bus_id = _instrument_constants()
        radii = (_radius(10, K.SUN_RADIUS_KM), _radius(301, K.MOON_RADIUS_KM))
        if not loaded.by_kind.get("sclk") and not _has(f"SCLK01_COEFFICIENTS_{-K.SCLK_ID}"):
            log.warning("no SCLK kernel loaded: CK coverage cannot be checked")
        et = K.met_to_et(met)
        try:
            ok, report = check_coverage(met, et, loaded, bus_id, ck_tolerance)
        except SpiceyError as exc:
            raise InputFormatError(f"kernel coverage check failed ({exc.short}: {_first_line(exc)})") from None
        idx = np.flatnonzero(ok)
        raw = None
        if len(idx):
            try:
                raw = _compute(et[idx], loaded.files, workers, radii)
            except SpiceyError as exc:
                raise InputFormatError(
                    f"SPICE geometry failed near MET {met[idx[0]]:.3f} ({exc.short}: {_first_line(exc)})"
                ) from None
    finally:
        spiceypy.kclear()
    theta = np.full(n, np.nan)
    phi = np.full(n, np.nan)
    ram = np.full(n, np.nan)
    ra = np.full(n, np.nan)
    dec = np.full(n, np.nan)
    code = np.zeros(n, np.int8)
    if raw is not None:
        s = raw["s"]
        theta[idx] = np.degrees(np.arccos(np.clip(s[:, 2], -1.0, 1.0)))
        phi[idx] = np.degrees(np.arctan2(s[:, 1], s[:, 0]))
        b = raw["bore"]
        ra[idx] = np.degrees(np.arctan2(b[:, 1], b[:, 0]))
        dec[idx] = np.degrees(np.arcsin(np.clip(b[:, 2], -1.0, 1.0)))
        ram[idx] = raw["ram"]
        code[idx] = raw["code"]
    # Phi in (-180, 180]: arctan2 gives [-180, 180]; -180 exactly becomes +180
    phi[phi == -180.0] = 180.0
    ra[ra == -180.0] = 180.0
    theta32 = theta.astype(np.float32)
    with np.errstate(invalid="ignore"):
        fov_flag = (theta32 < np.float32(fov)).astype(np.uint8)
    pi = PI_COMPAT if mode == Mode.XSMDAS_1_2 else math.pi
    detpos = np.full(n, dist)
    inf = fov_flag == 1
    detpos[inf] = dist * np.tan(theta32[inf].astype(np.float64) * pi / 180.0)
    occ = (code < 0) if occultation == "partial" else (code == -3)
    rate = ang_rate(met, theta32)
    if report.n_missing:
        log.info(report.summary())     # the caller reports it (CLI: one warning line)
    return SunAngles(time=met, theta=theta, phi=phi, fov_flag=fov_flag,
                     occult_flag=occ.astype(np.uint8), detpos_r=detpos, ram_angle=ram, ra=ra,
                     dec=dec, ang_rate=rate, covered=ok, occult_code=code, coverage=report,
                     kernels=loaded, mode=mode, fov_half_angle_deg=fov, detpos_distance_mm=dist)


# --------------------------------------------------------------------------------------
# Level-1 table and file
# --------------------------------------------------------------------------------------
def make_sa_table(angles: SunAngles, level1_header=None):
    """The level-1 sun-angle table (``level1.md`` §4) of :class:`SunAngles`.

    Returns an ``xsm.products.level1.Level1Table`` with the columns of ``columns.SA``;
    float columns are float32 degrees; ``Time`` is copied bit-identical.
    """
    from xsm.products import columns as cols
    from xsm.products.level1 import empty_table

    t = empty_table(cols.SA, len(angles))
    d = t.data
    d["Time"] = angles.time
    d["Theta"] = angles.theta
    d["Phi"] = angles.phi
    d["FovFlag"] = angles.fov_flag
    d["OccultFlag"] = angles.occult_flag
    d["DetPosR"] = angles.detpos_r
    d["RamAngle"] = angles.ram_angle
    d["RA"] = angles.ra
    d["DEC"] = angles.dec
    d["AngRate"] = angles.ang_rate
    if level1_header is not None:
        t.header = level1_header.copy()
    return t


def sa_history(angles: SunAngles, l1file: str, safile: str, *, clobber: bool = False,
               metakernel: str = "CALDB") -> list[str]:
    """HISTORY lines of the ``.sa`` file (``level1.md`` §4) plus the project's kernel lines."""
    from xsm.products.fitsio import history_block

    by = angles.kernels.by_kind
    spk = [Path(p).name for p in by.get("spk", [])]
    ck = [Path(p).name for p in by.get("ck", [])]
    sclk = [Path(p).name for p in by.get("sclk", [])]
    nfiles = max(len(spk), len(ck), len(sclk))
    lines = [f"l1file = {Path(l1file).name}", f"safile = {Path(safile).name}", "dummy = no",
             f"numfiles = {nfiles}"]
    for i in range(nfiles):
        lines += [f"spkfile = {spk[i] if i < len(spk) else '-'}",
                  f"ckfile = {ck[i] if i < len(ck) else '-'}",
                  f"sclkfile = {sclk[i] if i < len(sclk) else '-'}"]
    mks = [Path(p).name for p in by.get("mk", [])]
    lines.append(f"mkfile = {', '.join(mks) if mks else metakernel}")
    lines.append(f"clobber = {'yes' if clobber else 'no'}")
    for kind in ("lsk", "pck", "fk", "ik", "planetary_spk"):
        for p in by.get(kind, []):
            lines.append(f"{kind} = {Path(p).name}")
    lines.append("occultflag = any part of the disc hidden by the Moon")
    lines.append(f"NGEOMISS = {angles.coverage.n_missing}")
    for a, b in angles.coverage.missing_intervals_met[:20]:
        lines.append(f"no geometry MET {a:.3f} - {b:.3f}")
    return history_block("xsmcalsa", lines)


def make_sa_file(l1file: str | Path, kernels, out: str | Path | None = None, *,
                 mode: Mode = Mode.DEFAULT, overwrite: bool = False, workers: int | None = None,
                 occultation: str = "partial", digests=None) -> tuple[Path, SunAngles]:
    """Compute the sun angles of a level-1 science file and write its ``.sa`` file.

    ``out`` defaults to the science file's name with ``.sa``; returns (path, angles). The md5
    of the level-1 file and of the kernels are recorded in the provenance block; pass the
    run's :class:`~xsm.products.provenance.InputDigests` as ``digests`` to hash each file once
    per run.
    """
    from xsm.products.level1 import read_level1, write_sa
    from xsm.products.provenance import InputDigests, Provenance

    l1file = Path(l1file)
    day = read_level1(l1file)
    if out is None:
        out = l1file.with_suffix(".sa")
    out = Path(out)
    angles = compute_sun_angles(day.time, kernels, mode=mode, workers=workers, occultation=occultation)
    table = make_sa_table(angles, day.header)
    prov = Provenance(step="sunangle", mode=mode,
                      parameters={"occultation": occultation},
                      inputs=(l1file.name, *[p.name for p in angles.kernels.files])
                      ).with_input_md5((digests or InputDigests())([l1file, *angles.kernels.files]))
    cards = [("NGEOMISS", angles.coverage.n_missing)]
    history = sa_history(angles, l1file.name, out.name, clobber=overwrite)
    path = write_sa(table, out, overwrite=overwrite, mode=mode, history=history, provenance=prov,
                    cards=cards, level1_header=day.header)
    return path, angles
