"""Good time intervals (``spec/gti.md``; reference task ``xsmgtigen``).

Functional core
---------------
* :class:`GTI` -- sorted arrays ``start``/``stop`` (MET, float64); ``GTI.exposure``,
  ``GTI.contains(t)`` (strict ``START < t < STOP``, ``gti.md`` §2.6).
* :func:`continuity_gti`, :func:`mandatory_gti`, :func:`filter_gti` -- the three GTIs of §2.1-2.3,
  vectorised over the rows of a day.
* :func:`intersect` -- §2.5, the reference's pairwise semantics (A outer, B inner, zero-length
  pieces removed) computed with ``searchsorted`` for sorted disjoint inputs.
* :func:`parse_filter_file` -> :class:`FilterFile` (37 parameter names, §3), and the project's own
  filter files :func:`standard_filter_file`, :func:`background_filter_file`,
  :func:`calibration_filter_file` (package data ``xsm/products/data``).
* :func:`read_user_gti` (ASCII ``tstart tstop`` pairs, §2.4).
* :func:`make_gti` -- the whole task on in-memory HK and SA tables -> :class:`GtiResult`.

Edges: :func:`write_gti` / :func:`read_gti` (``.gti`` of §4, official files included).

HK and SA tables are anything indexable by column name (numpy structured arrays, FITS_rec,
``dict`` of arrays); their dtypes decide the comparison semantics of filter bounds (§2.3).

Modes: the default fixes Q14 (first/last rows tested), Q13 (DATE-OBS/END from TSTART/TSTOP),
Q23 (filter warnings compare both bounds) and accepts ``#`` comments in filter files; an empty
result is a valid, empty GTI (with a warning) in both modes, where the reference writes no file.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.products import fitsio
from xsm.products.errors import InputFormatError, ParameterError, warn_user
from xsm.products.provenance import Mode, Provenance

log = logging.getLogger("xsm.gti")


#: Edge convention (§2): an interval of frames a..b is [t[a] - OFFSET1, t[b] + OFFSET2].
OFFSET1 = 0.01
OFFSET2 = 1.0 - OFFSET1
#: Continuity: a gap larger than this (s) between rows breaks the GTI (§2.1).
MAX_GAP = 1.5
#: Mandatory: |EventDetected - SpecEvents| >= this marks a bad row (§2.2).
MAX_COUNTER_MISMATCH = 100
#: HV switch-on edge threshold (V), compared in float32 (§2.2).
HV_ON = np.float32(1.0)

DATA_DIR = Path(__file__).resolve().parent / "data"

#: The 37 filter parameters in the reference order: (name, table, column) (§3.2).
FILTER_PARAMETERS: tuple[tuple[str, str, str], ...] = tuple(
    [(n, "hk", n) for n in (
        "EventCounter", "EventDetected", "RampCounter", "HVMonitor", "DetTemperature", "TECCurrent",
        "LV1Monitor", "LV2Monitor", "LLDRefVoltage", "TECRefVoltage", "MotorControlMode",
        "MotorOperationMode", "MotorSetPos", "MotorIRPos", "IRPowerStatus", "FrameDiscardFlag",
        "MotorAutoTime", "StepModeDir", "WindowLowerThresh", "WindowUpperThresh", "PileupRejMode",
        "PileupRejTime", "Ch1Start", "Ch1Stop", "Ch2Start", "Ch2Stop", "Ch3Start", "Ch3Stop",
        "ULDEvents")]
    + [("SunTheta", "sa", "Theta"), ("SunPhi", "sa", "Phi"), ("SunFovFlag", "sa", "FovFlag"),
       ("SunOccultFlag", "sa", "OccultFlag"), ("RamAngle", "sa", "RamAngle"), ("RA", "sa", "RA"),
       ("DEC", "sa", "DEC"), ("SunAngRate", "sa", "AngRate")]
)
FILTER_NAMES = tuple(p[0] for p in FILTER_PARAMETERS)
_PARAM = {p[0]: p for p in FILTER_PARAMETERS}

#: Recommended ranges checked (with a warning) by the reference (§3.1).
RECOMMENDED = {
    "HVMonitor": (1.0, None),
    "DetTemperature": (1.8, None),
    "LV1Monitor": (3.1, 3.4),
    "LV2Monitor": (1.4, 1.6),
    "FrameDiscardFlag": (0.0, 0.0),
}


# --------------------------------------------------------------------------- GTI container
@dataclass(frozen=True)
class GTI:
    """Good time intervals: float64 arrays ``start`` and ``stop`` (MET, s) of equal length."""

    start: np.ndarray
    stop: np.ndarray
    header: Mapping | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        s = np.ascontiguousarray(self.start, dtype=np.float64).reshape(-1)
        e = np.ascontiguousarray(self.stop, dtype=np.float64).reshape(-1)
        if s.shape != e.shape:
            raise ParameterError("GTI: START and STOP have different lengths")
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "stop", e)

    @classmethod
    def empty(cls) -> GTI:
        return cls(np.empty(0), np.empty(0))

    @classmethod
    def from_pairs(cls, pairs) -> GTI:
        a = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
        return cls(a[:, 0], a[:, 1])

    def __len__(self) -> int:
        return int(self.start.size)

    @property
    def exposure(self) -> float:
        """Σ (STOP − START)."""
        return float(np.sum(self.stop - self.start))

    @property
    def tstart(self) -> float:
        return float(self.start[0]) if len(self) else float("nan")

    @property
    def tstop(self) -> float:
        return float(self.stop[-1]) if len(self) else float("nan")

    def pairs(self) -> np.ndarray:
        return np.column_stack([self.start, self.stop])

    def is_sorted_disjoint(self) -> bool:
        """Starts and stops non-decreasing and no interval beginning before the previous stop."""
        if len(self) < 2:
            return True
        return bool(np.all(self.start[1:] >= self.stop[:-1]) and np.all(self.stop >= self.start))

    def contains(self, t) -> np.ndarray:
        """Boolean mask: t inside some interval, strictly (``START < t < STOP``, §2.6)."""
        t = np.asarray(t, dtype=np.float64)
        if len(self) == 0:
            return np.zeros(t.shape, dtype=bool)
        if self.is_sorted_disjoint():
            # the last interval whose START < t; then check t < STOP
            k = np.searchsorted(self.start, t, side="left") - 1
            ok = k >= 0
            kk = np.where(ok, k, 0)
            return ok & (t < self.stop[kk]) & (t > self.start[kk])
        mask = np.zeros(t.shape, dtype=bool)
        for s, e in zip(self.start, self.stop):
            mask |= (t > s) & (t < e)
        return mask

    def clip(self, tstart: float, tstop: float) -> GTI:
        """GTI ∩ [tstart, tstop] (``spectrum.md`` §2.3)."""
        return intersect(self, GTI(np.array([tstart]), np.array([tstop])))


def _check_intervals(g: GTI, what: str) -> None:
    bad = np.flatnonzero(g.start > g.stop)
    if bad.size:
        i = int(bad[0])
        raise ParameterError(f"{what}: interval {i} has START {g.start[i]!r} > STOP {g.stop[i]!r}")


def intersect(a: GTI, b: GTI) -> GTI:
    """Intersection of two GTIs (``gti.md`` §2.5).

    The reference emits, for every pair (a_i, b_j) in order (A outer, B inner), the overlap
    ``[max(starts), min(stops)]`` and removes the zero-length pieces afterwards. For sorted,
    disjoint inputs the candidate partners of a_i form the contiguous range found with
    ``searchsorted``, which gives the same intervals in the same order without an O(n·m) loop.
    Other inputs (e.g. unsorted user GTIs) use the pairwise definition directly.
    """
    _check_intervals(a, "GTI")
    _check_intervals(b, "GTI")
    if len(a) == 0 or len(b) == 0:
        return GTI.empty()
    if a.is_sorted_disjoint() and b.is_sorted_disjoint():
        lo = np.searchsorted(b.stop, a.start, side="right")   # first b with stop > a.start
        hi = np.searchsorted(b.start, a.stop, side="left")    # b with start < a.stop
        n = np.maximum(hi - lo, 0)
        ia = np.repeat(np.arange(len(a)), n)
        offs = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        ib = np.repeat(lo, n) + offs
    else:
        ia, ib = np.meshgrid(np.arange(len(a)), np.arange(len(b)), indexing="ij")
        ia, ib = ia.ravel(), ib.ravel()
    s = np.maximum(a.start[ia], b.start[ib])
    e = np.minimum(a.stop[ia], b.stop[ib])
    keep = s < e
    return GTI(s[keep], e[keep])


def union(g: GTI) -> GTI:
    """Sorted, merged version of an arbitrary set of intervals (default-mode user GTIs)."""
    if len(g) == 0:
        return g
    order = np.lexsort((g.stop, g.start))
    s, e = g.start[order], g.stop[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(s.size, dtype=bool)
    new[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(new)
    ends = np.append(idx[1:], s.size) - 1
    return GTI(s[idx], run_end[ends])


# --------------------------------------------------------------------------- the three GTIs
def _col(table, name: str, what: str = "HK") -> np.ndarray:
    try:
        return np.asarray(table[name])
    except (KeyError, ValueError, IndexError):
        raise InputFormatError(f"{what} table: no column {name}") from None


def continuity_gti(t, mode: Mode = Mode.DEFAULT) -> GTI:
    """Continuity GTI (§2.1): broken where consecutive rows are more than 1.5 s apart.

    Compat (Q14): the gap between rows n−2 and n−1 is not tested.
    """
    t = np.asarray(t, dtype=np.float64)
    n = t.size
    if n == 0:
        return GTI.empty()
    last = n - 1 if mode == Mode.XSMDAS_1_2 else n   # i = 1 .. last-1
    i = np.arange(1, max(last, 1))
    brk = i[(t[i] - t[i - 1]) > MAX_GAP]
    starts = np.concatenate([[t[0] - OFFSET1], t[brk] - OFFSET1])
    stops = np.concatenate([t[brk - 1] + OFFSET2, [t[n - 1] + OFFSET2]])
    return GTI(starts, stops)


def mandatory_rows_bad(hv, event_detected, spec_events, mode: Mode = Mode.DEFAULT) -> np.ndarray:
    """Boolean mask of the rows the mandatory GTI excludes (§2.2)."""
    hv = np.asarray(hv).astype(np.float32, copy=False)
    ed = np.asarray(event_detected).astype(np.int64)
    se = np.asarray(spec_events).astype(np.int64)
    n = hv.size
    bad = np.zeros(n, dtype=bool)
    if n == 0:
        return bad
    edge = np.zeros(n, dtype=bool)
    edge[1:] = (hv[1:] > HV_ON) & (hv[:-1] < HV_ON)
    mism = np.abs(ed - se) >= MAX_COUNTER_MISMATCH
    bad = edge | mism
    if mode == Mode.XSMDAS_1_2:   # Q14: rows 0 and n-1 never tested
        bad[0] = False
        bad[n - 1] = False
    return bad


def mandatory_gti(t, hv, event_detected, spec_events, mode: Mode = Mode.DEFAULT) -> GTI:
    """Mandatory GTI (§2.2): excludes HV switch-on edges and counter mismatches.

    A bad row i closes the interval at t[i] − 0.01 and opens the next at t[i+1] − 0.01.
    Consecutive bad rows leave zero-length intervals, removed by :func:`intersect`.
    """
    t = np.asarray(t, dtype=np.float64)
    n = t.size
    if n == 0:
        return GTI.empty()
    b = np.flatnonzero(mandatory_rows_bad(hv, event_detected, spec_events, mode))
    last_bad = b.size > 0 and b[-1] == n - 1
    nxt = b[b < n - 1] + 1
    starts = np.concatenate([[t[0] - OFFSET1], t[nxt] - OFFSET1])
    stops = np.concatenate([t[b] - OFFSET1, [] if last_bad else [t[n - 1] + OFFSET2]])
    return GTI(starts, stops)


def runs_gti(t, good) -> GTI:
    """GTI of the runs of consecutive good rows a..b: [t[a] − 0.01, t[b] + 0.99] (§2.3)."""
    t = np.asarray(t, dtype=np.float64)
    g = np.asarray(good, dtype=bool)
    if not g.any():
        return GTI.empty()
    d = np.diff(np.concatenate([[False], g, [False]]).astype(np.int8))
    a = np.flatnonzero(d == 1)
    b = np.flatnonzero(d == -1) - 1
    return GTI(t[a] - OFFSET1, t[b] + OFFSET2)


# --------------------------------------------------------------------------- filter files
@dataclass(frozen=True)
class FilterFile:
    """A parsed filter file (§3): parameter name -> tuple of (min, max) ranges (None = open).

    ``lines`` are the file's lines verbatim (for the HISTORY block), ``name`` its base name.
    """

    ranges: dict
    lines: tuple = ()
    name: str = "filterfile"

    def names(self) -> list[str]:
        return list(self.ranges)


_TOKEN_RE = re.compile(r"\S+")


def parse_filter_text(text: str, name: str = "filterfile", mode: Mode = Mode.DEFAULT) -> FilterFile:
    """Parse the whitespace-token format of §3.1; errors name the file and the problem.

    Default mode accepts ``#`` comments (to the end of the line); compat mode rejects them as
    the reference does (``#`` is then an unknown parameter name).
    """
    lines = tuple(text.splitlines())
    if mode == Mode.DEFAULT:
        body = "\n".join(line.split("#", 1)[0] for line in lines)
    else:
        body = text
    tokens = _TOKEN_RE.findall(body)
    ranges: dict[str, tuple] = {}
    i = 0

    def bound(tok: str) -> float | None:
        if tok == "-":
            return None
        try:
            return float(tok)
        except ValueError:
            raise InputFormatError(f"{name}: bound {tok!r} is neither a number nor '-'") from None

    while i < len(tokens):
        pname = tokens[i]
        if pname not in _PARAM:
            raise InputFormatError(f"{name}: unknown filter parameter {pname!r} "
                                   f"(names are case-sensitive, see gti.md §3.2)")
        if pname in ranges:
            raise InputFormatError(f"{name}: parameter {pname} given more than once")
        if i + 1 >= len(tokens):
            raise InputFormatError(f"{name}: parameter {pname} lacks the number of ranges")
        try:
            nr = int(tokens[i + 1])
            if str(nr) != tokens[i + 1].lstrip("+"):
                raise ValueError
        except ValueError:
            raise InputFormatError(f"{name}: parameter {pname}: number of ranges "
                                   f"{tokens[i + 1]!r} is not an integer") from None
        if not 1 <= nr <= 5:
            raise InputFormatError(f"{name}: parameter {pname}: number of ranges {nr} not in 1..5")
        vals = tokens[i + 2: i + 2 + 2 * nr]
        if len(vals) < 2 * nr:
            raise InputFormatError(f"{name}: parameter {pname}: missing bound(s)")
        rr = []
        for k in range(nr):
            lo, hi = bound(vals[2 * k]), bound(vals[2 * k + 1])
            rr.append((lo, hi))
        ranges[pname] = tuple(rr)
        i += 2 + 2 * nr
    return FilterFile(ranges=ranges, lines=lines, name=name)


def parse_filter_file(path: str | Path, mode: Mode = Mode.DEFAULT) -> FilterFile:
    """Read and parse a filter file (§3.1)."""
    path = Path(path)
    text = fitsio.read_text_input(path, what="filter file")
    return parse_filter_text(text, path.name, mode)


def standard_filter_path() -> Path:
    """The project's standard filter file (``gti.md`` §3.3)."""
    return DATA_DIR / "std_filterfile.dat"


def background_filter_path() -> Path:
    """The project's background filter file (``gti.md`` §3.4)."""
    return DATA_DIR / "bkg_filterfile.dat"


def calibration_filter_path() -> Path:
    """The project's calibration-source filter file (standard HK ranges, MotorIRPos = 1) [P]."""
    return DATA_DIR / "cal_filterfile.dat"


def standard_filter_file(mode: Mode = Mode.DEFAULT) -> FilterFile:
    return parse_filter_file(standard_filter_path(), mode)


def background_filter_file(mode: Mode = Mode.DEFAULT) -> FilterFile:
    return parse_filter_file(background_filter_path(), mode)


def calibration_filter_file(mode: Mode = Mode.DEFAULT) -> FilterFile:
    return parse_filter_file(calibration_filter_path(), mode)


FILTER_ALIASES = {"std": standard_filter_path, "standard": standard_filter_path,
                  "bkg": background_filter_path, "background": background_filter_path,
                  "cal": calibration_filter_path, "calibration": calibration_filter_path}


def resolve_filter(spec: str | Path | FilterFile | None, mode: Mode = Mode.DEFAULT) -> FilterFile:
    """A FilterFile from a FilterFile, a path, or one of ``std``/``bkg``/``cal`` (None = std).

    A string equal to an alias always means the project's filter, even when a file or folder of
    that name is in the working directory (``./std`` names such a file); a :class:`~pathlib.Path`
    is always a path.
    """
    if isinstance(spec, FilterFile):
        return spec
    if spec is None:
        return standard_filter_file(mode)
    if isinstance(spec, str) and spec.lower() in FILTER_ALIASES:
        return parse_filter_file(FILTER_ALIASES[spec.lower()](), mode)
    return parse_filter_file(Path(spec), mode)


def filter_warnings(ff: FilterFile, mode: Mode = Mode.DEFAULT) -> list[str]:
    """Warnings about ranges differing from the recommended ones (§3.1; Q23 in compat)."""
    out = []
    labels = {"HVMonitor": "HV Monitor", "DetTemperature": "Detector Temperature",
              "LV1Monitor": "LV1 Monitor", "LV2Monitor": "LV2 Monitor",
              "FrameDiscardFlag": "Frame Discard Flag"}
    for pname, (rlo, rhi) in RECOMMENDED.items():
        if pname not in ff.ranges:
            continue
        lo, hi = ff.ranges[pname][0]
        if mode == Mode.XSMDAS_1_2 and pname in ("LV2Monitor", "FrameDiscardFlag"):
            # Q23: the reference compares the lower bound with both recommended bounds
            differs = lo != rlo or lo != rhi
        else:
            differs = len(ff.ranges[pname]) != 1 or lo != rlo or hi != rhi
        if differs:
            out.append(f"Parameter ranges given for {labels[pname]} are not the recommended values")
    return out


def _cast_bound(value: float, dtype: np.dtype):
    """Bound cast to the column's own type (§2.3): float32, integer truncation, unsigned 8-bit."""
    if dtype.kind == "f":
        return dtype.type(value)
    iv = int(np.trunc(value))
    if dtype.kind == "u" and dtype.itemsize == 1:
        return iv % 256
    return iv


def filter_good_rows(ff: FilterFile, hk, sa=None, usesunang: bool = True) -> np.ndarray:
    """Boolean mask of rows where every listed parameter lies in one of its ranges (§2.3)."""
    n = len(_col(hk, "Time"))
    good = np.ones(n, dtype=bool)
    for pname, rr in ff.ranges.items():
        _, table, column = _PARAM[pname]
        if table == "sa":
            if not usesunang:
                continue
            if sa is None:
                raise ParameterError(f"filter parameter {pname} needs the sun-angle (.sa) file")
            v = _col(sa, column, "SA")
        else:
            v = _col(hk, column, "HK")
        v = v.astype(v.dtype.newbyteorder("="), copy=False)
        ok = np.zeros(n, dtype=bool)
        for lo, hi in rr:
            m = np.ones(n, dtype=bool)
            if lo is not None:
                m &= v >= _cast_bound(lo, v.dtype)
            if hi is not None:
                m &= v <= _cast_bound(hi, v.dtype)
            ok |= m   # NaN fails any comparison, hence any range with a bound
        good &= ok
    return good


def filter_gti(ff: FilterFile, hk, sa=None, usesunang: bool = True) -> GTI:
    """Filter GTI (§2.3)."""
    return runs_gti(_col(hk, "Time"), filter_good_rows(ff, hk, sa, usesunang))


# --------------------------------------------------------------------------- user GTI
def read_user_gti(path: str | Path) -> GTI:
    """User GTI: whitespace-separated ``tstart tstop`` MET pairs (§2.4); ``#`` starts a comment."""
    path = Path(path)
    text = fitsio.read_text_input(path, what="user GTI file")
    toks = " ".join(line.split("#", 1)[0] for line in text.splitlines()).split()
    try:
        vals = np.array([float(x) for x in toks], dtype=np.float64)
    except ValueError as exc:
        raise InputFormatError(f"{path}: not a list of MET pairs ({exc})") from None
    if vals.size % 2:
        raise InputFormatError(f"{path}: odd number of values ({vals.size}); expected tstart tstop pairs")
    g = GTI(vals[0::2], vals[1::2])
    bad = np.flatnonzero(g.start > g.stop)
    if bad.size:
        i = int(bad[0])
        raise InputFormatError(f"{path}: pair {i + 1} has tstart {g.start[i]!r} > tstop {g.stop[i]!r}")
    return g


# --------------------------------------------------------------------------- the task
@dataclass(frozen=True)
class GtiParams:
    """Parameters of the GTI task (``gti.md`` §1), as they appear in HISTORY."""

    hkfile: str = "hk"
    safile: str | None = "sa"
    gtifile: str = "gti"
    filterfile: str = "std_filterfile.dat"
    usergtifile: str = "-"
    usesunang: bool = True
    clobber: bool = True


@dataclass(frozen=True)
class GtiResult:
    """A computed GTI with what its file needs (``gti.md`` §4)."""

    gti: GTI
    obsexp: float
    params: GtiParams
    filter: FilterFile
    mode: Mode
    hk_header: Mapping | None = None
    time_range: tuple = (float("nan"), float("nan"))
    warnings: tuple = ()
    parts: dict = field(default_factory=dict, repr=False)

    @property
    def empty(self) -> bool:
        return len(self.gti) == 0


def make_gti(hk, sa=None, filterfile: str | Path | FilterFile | None = None, *,
             usergti: GTI | str | Path | None = None, usesunang: bool = True,
             mode: Mode = Mode.DEFAULT, hk_header: Mapping | None = None,
             params: GtiParams | None = None) -> GtiResult:
    """All of ``xsmgtigen`` on in-memory tables (§2): continuity ∩ mandatory ∩ filter [∩ user].

    ``hk`` needs Time, HVMonitor, EventDetected, SpecEvents and the filter's HK columns;
    ``sa`` (row-aligned) the filter's sun-angle columns when ``usesunang``. An empty result is
    returned (not raised) and a warning issued.
    """
    ff = resolve_filter(filterfile, mode)
    t = _col(hk, "Time").astype(np.float64)
    warns = filter_warnings(ff, mode)
    if sa is not None and usesunang and len(_col(sa, "Time", "SA")) != t.size:
        raise InputFormatError(f"HK ({t.size} rows) and SA ({len(_col(sa, 'Time', 'SA'))} rows) "
                               "files differ in length")
    if not usesunang and any(_PARAM[n][1] == "sa" for n in ff.ranges):
        warns.append("usesunang = no: sun-angle parameters of the filter file are ignored")
    cont = continuity_gti(t, mode)
    mand = mandatory_gti(t, _col(hk, "HVMonitor"), _col(hk, "EventDetected"),
                         _col(hk, "SpecEvents"), mode)
    filt = filter_gti(ff, hk, sa, usesunang)
    g = intersect(cont, mand)
    g = intersect(g, filt)
    user = None
    if usergti is not None and not (isinstance(usergti, str) and usergti in ("-", "")):
        user = usergti if isinstance(usergti, GTI) else read_user_gti(usergti)
        if mode == Mode.DEFAULT:
            user = union(user)   # overlapping user pairs would double-count exposure
        g = intersect(user, g)
    if len(g) == 0:
        warns.append("no good time interval for the requested parameter ranges: the GTI is empty")
    for w in warns:
        warn_user(w)
    if params is None:
        params = GtiParams(filterfile=ff.name, usesunang=usesunang,
                           usergtifile="-" if user is None else str(getattr(usergti, "name", "user")))
    tr = (float(t[0]), float(t[-1])) if t.size else (float("nan"), float("nan"))
    return GtiResult(gti=g, obsexp=float(t.size), params=params, filter=ff, mode=mode,
                     hk_header=hk_header, time_range=tr, warnings=tuple(warns),
                     parts={"continuity": cont, "mandatory": mand, "filter": filt, "user": user})


# --------------------------------------------------------------------------- FITS edges
#: HK columns every GTI needs (continuity and mandatory GTIs).
MANDATORY_COLUMNS = ("Time", "HVMonitor", "EventDetected", "SpecEvents")


def read_columns(path: str | Path, extname: str, names, what: str, *,
                 mapped: tuple[str, ...] = ()) -> tuple[dict, fits.Header]:
    """Only the named columns of one extension (native byte order) and its header.

    A light reader for the level-2 tasks, which need a few columns of the 38 HK columns: no
    string decoding, memory-mapped file. Columns named in ``mapped`` whose type has no byte
    order (e.g. the uint8 ``DataArray``) are returned as read-only views of the memory map, not
    copied (the map outlives the closed file; the data section is checked to be complete so a
    truncated file fails here, not on a later page access).
    """
    path = Path(path)
    with fitsio.open_fits(path, what=what, memmap=True) as hdul:
        ext = fitsio.require_extension(hdul, extname, path)
        fitsio.require_columns(ext, names, path)
        if mapped:
            info = ext.fileinfo()
            if path.stat().st_size < info["datLoc"] + info["datSpan"]:
                raise InputFormatError(f"{path}: the {extname} data section is truncated")
        data = ext.data
        out = {}
        for n in names:
            a = np.asarray(data[n])
            if n in mapped and a.dtype.isnative:
                out[n] = a
            else:
                out[n] = a.astype(a.dtype.newbyteorder("="))
        return out, ext.header.copy()


def read_gti_inputs(hkfile: str | Path, safile: str | Path | None, ff: FilterFile,
                    usesunang: bool = True) -> tuple[dict, dict | None, fits.Header]:
    """The HK and SA columns a GTI with filter ``ff`` needs: (hk, sa or None, HK header)."""
    hk_names = list(MANDATORY_COLUMNS) + [_PARAM[n][2] for n in ff.ranges if _PARAM[n][1] == "hk"]
    hk, hh = read_columns(hkfile, "HKPARAM", list(dict.fromkeys(hk_names)), "level-1 housekeeping file")
    sa = None
    sa_names = [_PARAM[n][2] for n in ff.ranges if _PARAM[n][1] == "sa"]
    if usesunang and safile is not None:
        sa, _ = read_columns(safile, "SUNANG", ["Time"] + sa_names, "level-1 sun-angle file")
    return hk, sa, hh


def history_lines(result: GtiResult) -> list[str]:
    """The reference HISTORY block (§5) with the filter file verbatim."""
    p = result.params
    lines = [f"hkfile = {Path(p.hkfile).name}", f"gtifile = {Path(p.gtifile).name}",
             f"usesunang = {'yes' if p.usesunang else 'no'}"]
    if p.usesunang:
        lines.append(f"safile = {Path(p.safile or '-').name}")
    lines += [f"filterfile = {Path(p.filterfile).name}",
              f"usergtifile = {p.usergtifile if p.usergtifile == '-' else Path(p.usergtifile).name}",
              f"clobber = {'yes' if p.clobber else 'no'}"]
    out = fitsio.history_block("XSMGTIGEN", lines)
    out += ["--------------  Filterfile  ---------------", *result.filter.lines,
            "-------------------------------------------"]
    return out


def gti_hdulist(result: GtiResult, filename: str, *, provenance: Provenance | None = None,
                date: str | None = None) -> fits.HDUList:
    """The ``.gti`` file of §4 as an HDUList."""
    mode = result.mode
    compat = mode == Mode.XSMDAS_1_2
    creator = "xsmgtigen" if compat else "xsm.gti"
    prov = provenance or Provenance(step="gti", mode=mode, parameters=result.params.__dict__)
    date = date or fitsio.date_keyword(mode)
    g = result.gti
    prim = fitsio.primary_hdu(filename, creator, "", date=date, mode=mode)
    cols = [fits.Column("START", "D", unit="s", array=g.start),
            fits.Column("STOP", "D", unit="s", array=g.stop)]
    ext = fitsio.bintable_hdu(cols, name="GTI")
    h = ext.header
    if len(g):
        tstart, tstop = g.tstart, g.tstop
    else:
        tstart, tstop = result.time_range
        if not np.isfinite(tstart):
            tstart = tstop = 0.0
    hh = result.hk_header or {}
    if compat and "DATE-OBS" in hh:   # Q13: copied from the HK header
        date_obs, date_end = str(hh["DATE-OBS"]), str(hh.get("DATE-END", hh["DATE-OBS"]))
    else:
        date_obs = date_end = None
    fitsio.set_cards(h, fitsio.time_keywords(tstart, tstop, date_obs, date_end, telapse=False, mode=mode))
    for k, v in fitsio.common_keywords(filename, creator, date=date, mode=mode):
        if k not in ("FILENAME", "DATE"):
            h[k] = v
    h["EXTVER"] = 1
    h["FILENAME"] = filename
    h["DATE"] = date
    h["TELAPSE"] = float(tstop) - float(tstart)
    h["EXPOSURE"] = g.exposure
    h["OBSEXP"] = float(result.obsexp)
    if not compat:
        fitsio.set_cards(h, [("HDUCLASS", "OGIP"), ("HDUCLAS1", "GTI"), ("HDUCLAS2", "STANDARD"),
                             ("TIMEUNIT", "s")])
    fitsio.set_cards(h, fitsio.provenance_keywords(prov))
    fitsio.add_history(h, history_lines(result))
    fitsio.add_history(h, fitsio.provenance_history(prov))
    return fits.HDUList([prim, ext])


def write_gti(result: GtiResult, path: str | Path, *, overwrite: bool = True,
              provenance: Provenance | None = None) -> Path:
    """Write the ``.gti`` file atomically (an empty GTI gives a valid file with zero rows)."""
    path = Path(path)
    hdul = gti_hdulist(result, path.name, provenance=provenance)
    return fitsio.write_fits_atomic(hdul, path, overwrite=overwrite,
                                    checksum=result.mode == Mode.DEFAULT)


def read_gti(path: str | Path) -> GTI:
    """Read a ``.gti`` file (project, golden or official): extension GTI, START/STOP."""
    path = Path(path)
    with fitsio.open_fits(path, what="GTI file", memmap=False) as hdul:
        try:
            ext = hdul["GTI"]
        except KeyError:
            ext = next((h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)), None)
            if ext is None:
                raise InputFormatError(f"{path}: no GTI extension") from None
        fitsio.require_columns(ext, ["START", "STOP"], path)
        data = ext.data
        if data is None or len(data) == 0:
            return GTI(np.empty(0), np.empty(0), header=ext.header.copy())
        return GTI(np.array(data["START"], dtype=np.float64), np.array(data["STOP"], dtype=np.float64),
                   header=ext.header.copy())
