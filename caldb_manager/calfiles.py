"""Typed readers of the XSM calibration files (``caldb.md`` §6, ``effarea.md``, ``spectrum.md``).

Each reader opens one file, checks its layout and returns a small frozen dataclass of numpy
arrays in the file's own dtypes (float32 columns stay float32, as the reference reads them).
A malformed file gives a one-line :class:`~xsm.products.errors.InputFormatError` naming it.

Columns are read **by position** where the reference does (EBOUNDS, GAIN, SYSERR, ABSCOEF,
EFFAREAPAR), after checking the names, so a file with renamed columns is refused rather than
silently misread.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.products.errors import InputFormatError
from xsm.products.fitsio import open_fits

# ------------------------------------------------------------------------------------------
# layout facts (one place; certify and synthetic import them)

#: Extensions and columns of each calibration type, in file order.
EBOUNDS_COLUMNS = ("CHANNEL", "E_MIN", "E_MAX")
GAIN_COLUMNS = ("TEC_CURRENT", "DETPOSR", "GAIN", "OFFSET")
GAIN_EXTENSIONS = ("GAIN", "CALGAIN")
ABSCOEF_COLUMNS = ("Energy", "BE", "SI", "SIO2")
#: ABSCOEF extensions in HDU order with their grid sizes (``effarea.md`` §1).
ABSCOEF_EXTENSIONS: tuple[tuple[str, int], ...] = (("PI_ENE", 512), ("PHA_ENE", 1024), ("RSP_ENE", 3000))
EFFAREAPAR_COLUMNS = ("DETX", "DETY", "Alpha", "Be_thick", "DeadSi_thick", "DeadSiO2_thick", "DetSi_thick")
EFFAREAPAR_KEYWORDS = ("DX", "DY", "NXBINS", "NYBINS", "XMIN", "YMIN")
SYSERR_COLUMNS = ("Channel", "SysErr")
RMF_MATRIX_COLUMNS = ("ENERG_LO", "ENERG_HI", "N_GRP", "F_CHAN", "N_CHAN", "MATRIX")

#: Number of PI channels (EBOUNDS rows, SYSERR rows).
N_PI = 512
#: The ARF / response energy grid: 3000 bins of 0.01 keV from 0.1 keV (``spectrum.md`` §11).
RSP_NBINS = 3000
RSP_ELO0 = 0.1
RSP_DE = 0.01


def rsp_energy_grid() -> tuple[np.ndarray, np.ndarray]:
    """(ENERG_LO, ENERG_HI) of the 3000-bin response grid, float64 keV."""
    lo = RSP_ELO0 + RSP_DE * np.arange(RSP_NBINS)
    return lo, lo + RSP_DE


# ------------------------------------------------------------------------------------------
# helpers

def _ext(hdul: fits.HDUList, name: str | int, path: Path, what: str) -> fits.BinTableHDU:
    try:
        hdu = hdul[name]
    except (KeyError, IndexError):
        names = [h.name for h in hdul]
        where = f"extension {name}" if isinstance(name, str) else f"HDU {name}"
        raise InputFormatError(f"{path}: {what} file has no {where} (found {names})") from None
    if not isinstance(hdu, fits.BinTableHDU):
        raise InputFormatError(f"{path}: {what} extension {hdu.name} is not a binary table")
    if hdu.data is None or len(hdu.data) == 0:
        raise InputFormatError(f"{path}: {what} extension {hdu.name} has no rows")
    return hdu


def _check_columns(hdu: fits.BinTableHDU, expected: tuple[str, ...], path: Path, what: str) -> None:
    names = list(hdu.columns.names)
    have = [n.upper() for n in names[:len(expected)]]
    if have != [e.upper() for e in expected]:
        raise InputFormatError(f"{path}: {what} extension {hdu.name} columns {names} "
                               f"(expected {list(expected)} in this order)")


def _col(hdu: fits.BinTableHDU, k: int, dtype=None) -> np.ndarray:
    """Column ``k`` (0-based) as a native-endian array."""
    a = np.asarray(hdu.data.field(k))
    a = a.astype(a.dtype.newbyteorder("="), copy=True)
    return a.astype(dtype, copy=False) if dtype is not None else a


def _key(hdu: fits.BinTableHDU, key: str, path: Path, what: str, kind=float):
    if key not in hdu.header:
        raise InputFormatError(f"{path}: {what} extension {hdu.name} lacks keyword {key}")
    try:
        return kind(hdu.header[key])
    except (TypeError, ValueError):
        raise InputFormatError(f"{path}: {what} keyword {key} = {hdu.header[key]!r} is not a number") from None


def _finite(path: Path, what: str, **arrays: np.ndarray) -> None:
    for name, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise InputFormatError(f"{path}: {what} column {name} has non-finite values")


# ------------------------------------------------------------------------------------------
# EBOUNDS

@dataclass(frozen=True)
class Ebounds:
    """PI channel boundaries (extension ``EBOUNDS``): CHANNEL (int16), E_MIN, E_MAX (float32 keV)."""

    path: Path
    channel: np.ndarray
    e_min: np.ndarray
    e_max: np.ndarray

    @property
    def n(self) -> int:
        return len(self.channel)

    @property
    def emin(self) -> np.float32:
        """E_MIN[0] (float32)."""
        return self.e_min[0]

    @property
    def emax(self) -> np.float32:
        """E_MAX[n-1] (float32)."""
        return self.e_max[-1]

    @property
    def delta(self) -> np.float32:
        """Bin width E_MAX[0] - E_MIN[0] computed in float32 (``spectrum.md`` §3)."""
        return np.float32(self.e_max[0] - self.e_min[0])


def read_ebounds(path: str | Path) -> Ebounds:
    path = Path(path)
    with open_fits(path, what="EBOUNDS file", memmap=False) as hdul:
        hdu = _ext(hdul, "EBOUNDS", path, "EBOUNDS")
        _check_columns(hdu, EBOUNDS_COLUMNS, path, "EBOUNDS")
        ch, lo, hi = _col(hdu, 0), _col(hdu, 1, np.float32), _col(hdu, 2, np.float32)
    _finite(path, "EBOUNDS", E_MIN=lo, E_MAX=hi)
    if np.any(hi <= lo) or np.any(np.diff(lo) <= 0):
        raise InputFormatError(f"{path}: EBOUNDS energies are not increasing (E_MIN < E_MAX, rows in order)")
    return Ebounds(path, ch, lo, hi)


# ------------------------------------------------------------------------------------------
# GAIN

@dataclass(frozen=True)
class GainTable:
    """One gain extension: a TEC-current x detector-radius grid of gain and offset.

    ``gain`` and ``offset`` have shape (NTEC, NRAD) (row = itec*NRAD + irad in the file);
    ``tec`` (NTEC,) and ``detposr`` (NRAD,) are the grid columns of the first radius / first TEC
    step. ``tecbinsize``/``radbinsize`` are float32, as the reference reads them.
    """

    extname: str
    ntec: int
    nrad: int
    tecbinsize: np.float32
    radbinsize: np.float32
    tec: np.ndarray
    detposr: np.ndarray
    gain: np.ndarray
    offset: np.ndarray

    @property
    def gain_rows(self) -> np.ndarray:
        """GAIN in file row order (flat, length NTEC*NRAD)."""
        return self.gain.reshape(-1)

    @property
    def offset_rows(self) -> np.ndarray:
        return self.offset.reshape(-1)

    def lookup(self, tec_current, detposr=None) -> tuple[np.ndarray, np.ndarray]:
        """(gain, offset) per frame by the reference's float32 truncation (``spectrum.md`` §4).

        ``detposr=None`` uses radius index 0 (the calibration source). Indices beyond the grid
        raise :class:`~xsm.products.errors.ParameterError` (the reference's fatal case).
        """
        from xsm.products.errors import ParameterError

        itec = np.trunc(np.asarray(tec_current, dtype=np.float32) / self.tecbinsize).astype(np.int64)
        if detposr is None:
            irad = np.zeros_like(itec)
        else:
            irad = np.trunc(np.asarray(detposr, dtype=np.float32) / self.radbinsize).astype(np.int64)
        bad = (itec < 0) | (itec >= self.ntec) | (irad < 0) | (irad >= self.nrad)
        if np.any(bad):
            i = int(np.flatnonzero(np.atleast_1d(bad))[0])
            raise ParameterError(f"gain grid {self.extname}: TEC/radius index ({np.atleast_1d(itec)[i]}, "
                                 f"{np.atleast_1d(irad)[i]}) outside {self.ntec}x{self.nrad}")
        return self.gain[itec, irad], self.offset[itec, irad]


@dataclass(frozen=True)
class GainFile:
    """A GAIN calibration file: the Sun (position-dependent) table and the CALGAIN table."""

    path: Path
    sun: GainTable
    cal: GainTable | None

    def table(self, sourcetype: str = "sun") -> GainTable:
        if sourcetype.lower() == "cal":
            if self.cal is None:
                raise InputFormatError(f"{self.path}: GAIN file has no CALGAIN extension")
            return self.cal
        return self.sun


def _gain_table(hdul: fits.HDUList, extname: str, path: Path) -> GainTable:
    hdu = _ext(hdul, extname, path, "GAIN")
    _check_columns(hdu, GAIN_COLUMNS, path, "GAIN")
    ntec = _key(hdu, "NTEC", path, "GAIN", int)
    nrad = _key(hdu, "NRAD", path, "GAIN", int)
    tb = np.float32(_key(hdu, "TECBINSIZE", path, "GAIN"))
    rb = np.float32(_key(hdu, "RADBINSIZE", path, "GAIN"))
    nrows = len(hdu.data)
    if ntec <= 0 or nrad <= 0 or nrows != ntec * nrad:
        raise InputFormatError(f"{path}: GAIN extension {extname} has {nrows} rows, not NTEC*NRAD = "
                               f"{ntec}*{nrad} = {ntec * nrad}")
    if not (tb > 0 and rb > 0):
        raise InputFormatError(f"{path}: GAIN extension {extname} bin sizes must be positive")
    tec, rad = _col(hdu, 0, np.float32), _col(hdu, 1, np.float32)
    g, o = _col(hdu, 2, np.float32), _col(hdu, 3, np.float32)
    _finite(path, f"GAIN {extname}", GAIN=g, OFFSET=o)
    return GainTable(extname, ntec, nrad, tb, rb, tec.reshape(ntec, nrad)[:, 0].copy(),
                     rad.reshape(ntec, nrad)[0, :].copy(), g.reshape(ntec, nrad), o.reshape(ntec, nrad))


def read_gain(path: str | Path) -> GainFile:
    path = Path(path)
    with open_fits(path, what="GAIN file", memmap=False) as hdul:
        sun = _gain_table(hdul, "GAIN", path)
        cal = _gain_table(hdul, "CALGAIN", path) if "CALGAIN" in hdul else None
    return GainFile(path, sun, cal)


# ------------------------------------------------------------------------------------------
# ABSCOEF

@dataclass(frozen=True)
class AbsCoefGrid:
    """Linear attenuation coefficients (cm^-1, float64) on one energy grid (centres, keV)."""

    extname: str
    energy: np.ndarray
    be: np.ndarray
    si: np.ndarray
    sio2: np.ndarray


@dataclass(frozen=True)
class AbsCoef:
    """The ABSCOEF file: the PI (512), PHA (1024) and response (3000) grids, by HDU position."""

    path: Path
    pi: AbsCoefGrid
    pha: AbsCoefGrid
    rsp: AbsCoefGrid

    def grid(self, which: str) -> AbsCoefGrid:
        """``'pi'``, ``'pha'`` or ``'rsp'`` (also the extension names)."""
        w = which.lower().replace("_ene", "")
        try:
            return {"pi": self.pi, "pha": self.pha, "rsp": self.rsp}[w]
        except KeyError:
            raise ValueError(f"unknown ABSCOEF grid {which!r} (pi, pha or rsp)") from None


def read_abscoef(path: str | Path) -> AbsCoef:
    path = Path(path)
    grids = []
    with open_fits(path, what="ABSCOEF file", memmap=False) as hdul:
        if len(hdul) < 4:
            raise InputFormatError(f"{path}: ABSCOEF file has {len(hdul) - 1} extension(s), expected 3 "
                                   f"({', '.join(n for n, _ in ABSCOEF_EXTENSIONS)})")
        for k, (name, size) in enumerate(ABSCOEF_EXTENSIONS, start=1):
            hdu = _ext(hdul, k, path, "ABSCOEF")
            _check_columns(hdu, ABSCOEF_COLUMNS, path, "ABSCOEF")
            if len(hdu.data) != size:
                raise InputFormatError(f"{path}: ABSCOEF HDU {k} ({hdu.name}) has {len(hdu.data)} rows, "
                                       f"expected {size} ({name})")
            e = _col(hdu, 0, np.float32)
            be, si, sio2 = (_col(hdu, j, np.float64) for j in (1, 2, 3))
            _finite(path, f"ABSCOEF {hdu.name}", Energy=e, BE=be, SI=si, SIO2=sio2)
            grids.append(AbsCoefGrid(hdu.name, e, be, si, sio2))
    return AbsCoef(path, *grids)


# ------------------------------------------------------------------------------------------
# EFFAREAPAR

@dataclass(frozen=True)
class EffAreaPar:
    """Effective-area parameters on the DETX x DETY cell grid (``effarea.md`` §3).

    Arrays are in file row order (row = xbin*NYBINS + ybin), float32; ``grid(name)`` reshapes to
    (NXBINS, NYBINS). Grid keywords: float values as written (``dx``, ``xmin``...).
    """

    path: Path
    dx: float
    dy: float
    nxbins: int
    nybins: int
    xmin: float
    ymin: float
    detx: np.ndarray
    dety: np.ndarray
    alpha: np.ndarray
    be_thick: np.ndarray
    deadsi_thick: np.ndarray
    deadsio2_thick: np.ndarray
    detsi_thick: np.ndarray

    def grid(self, name: str) -> np.ndarray:
        return getattr(self, name).reshape(self.nxbins, self.nybins)

    def row(self, k: int) -> dict[str, float]:
        """The five model parameters of row ``k``."""
        return {n: float(getattr(self, n)[k]) for n in
                ("alpha", "be_thick", "deadsi_thick", "deadsio2_thick", "detsi_thick")}


def read_effareapar(path: str | Path) -> EffAreaPar:
    path = Path(path)
    with open_fits(path, what="EFFAREAPAR file", memmap=False) as hdul:
        hdu = _ext(hdul, "EFFAREAPAR", path, "EFFAREAPAR")
        _check_columns(hdu, EFFAREAPAR_COLUMNS, path, "EFFAREAPAR")
        dx, dy = _key(hdu, "DX", path, "EFFAREAPAR"), _key(hdu, "DY", path, "EFFAREAPAR")
        nx, ny = _key(hdu, "NXBINS", path, "EFFAREAPAR", int), _key(hdu, "NYBINS", path, "EFFAREAPAR", int)
        xmin, ymin = _key(hdu, "XMIN", path, "EFFAREAPAR"), _key(hdu, "YMIN", path, "EFFAREAPAR")
        if nx <= 0 or ny <= 0 or len(hdu.data) != nx * ny:
            raise InputFormatError(f"{path}: EFFAREAPAR has {len(hdu.data)} rows, not NXBINS*NYBINS = "
                                   f"{nx}*{ny} = {nx * ny}")
        if not (dx > 0 and dy > 0):
            raise InputFormatError(f"{path}: EFFAREAPAR cell sizes DX, DY must be positive")
        cols = [_col(hdu, k, np.float32) for k in range(7)]
    _finite(path, "EFFAREAPAR", **dict(zip(EFFAREAPAR_COLUMNS, cols)))
    return EffAreaPar(path, dx, dy, nx, ny, xmin, ymin, *cols)


# ------------------------------------------------------------------------------------------
# SYSERR

@dataclass(frozen=True)
class SysErr:
    """Systematic error fraction per 9-bit PHA channel (``Channel`` int16, ``SysErr`` float32)."""

    path: Path
    channel: np.ndarray
    syserr: np.ndarray


def read_syserr(path: str | Path) -> SysErr:
    path = Path(path)
    with open_fits(path, what="SYSERR file", memmap=False) as hdul:
        hdu = _ext(hdul, "SYSERR", path, "SYSERR")
        _check_columns(hdu, SYSERR_COLUMNS, path, "SYSERR")
        ch, se = _col(hdu, 0), _col(hdu, 1, np.float32)
    _finite(path, "SYSERR", SysErr=se)
    if np.any(se < 0) or np.any(se > 1):
        raise InputFormatError(f"{path}: SYSERR fractions outside [0, 1]")
    return SysErr(path, ch, se)


# ------------------------------------------------------------------------------------------
# RMF / RSP

@dataclass(frozen=True)
class Response:
    """An OGIP response (RMF or RSP): energy grid, channel bounds and the dense matrix.

    ``matrix`` has shape (n_energies, n_channels), float32; for an RSP it includes the area (cm^2).
    """

    path: Path
    energ_lo: np.ndarray
    energ_hi: np.ndarray
    matrix: np.ndarray
    ebounds: Ebounds
    hduclas3: str


def read_response(path: str | Path) -> Response:
    """Read an RMF or RSP (``MATRIX`` or ``SPECRESP MATRIX`` extension and ``EBOUNDS``)."""
    path = Path(path)
    with open_fits(path, what="response file", memmap=False) as hdul:
        name = "MATRIX" if "MATRIX" in hdul else "SPECRESP MATRIX"
        hdu = _ext(hdul, name, path, "response")
        names = [n.upper() for n in hdu.columns.names]
        missing = [c for c in RMF_MATRIX_COLUMNS if c not in names]
        if missing:
            raise InputFormatError(f"{path}: response {name} lacks column(s) {', '.join(missing)}")
        eb_hdu = _ext(hdul, "EBOUNDS", path, "response")
        _check_columns(eb_hdu, EBOUNDS_COLUMNS, path, "response EBOUNDS")
        eb = Ebounds(path, _col(eb_hdu, 0), _col(eb_hdu, 1, np.float32), _col(eb_hdu, 2, np.float32))
        nchan = int(hdu.header.get("DETCHANS", eb.n))
        tlmin = int(hdu.header.get(f"TLMIN{names.index('F_CHAN') + 1}", 0))
        d = hdu.data
        lo = np.asarray(d["ENERG_LO"], dtype=np.float64)
        hi = np.asarray(d["ENERG_HI"], dtype=np.float64)
        ngrp = np.asarray(d["N_GRP"]).astype(np.int64)
        fch, nch, mat = d["F_CHAN"], d["N_CHAN"], d["MATRIX"]
        dense = np.zeros((len(lo), nchan), dtype=np.float32)
        try:
            fixed = isinstance(mat, np.ndarray) and mat.ndim == 2 and mat.shape[1] == nchan and np.all(ngrp <= 1) \
                and np.all(np.asarray(fch).reshape(len(lo), -1)[:, 0] == tlmin)
            if fixed:
                dense[:] = mat
            else:
                for i in range(len(lo)):  # variable-length groups: per-row, only for foreign files
                    f = np.atleast_1d(fch[i]).astype(int) - tlmin
                    n = np.atleast_1d(nch[i]).astype(int)
                    m = np.asarray(mat[i], dtype=np.float32).ravel()
                    pos = 0
                    for g in range(int(ngrp[i])):
                        dense[i, f[g]:f[g] + n[g]] = m[pos:pos + n[g]]
                        pos += n[g]
        except (IndexError, ValueError) as exc:
            raise InputFormatError(f"{path}: inconsistent response groups ({exc})") from None
        cls3 = str(hdu.header.get("HDUCLAS3", "")).strip()
    return Response(path, lo, hi, dense, eb, cls3)


# ------------------------------------------------------------------------------------------
# on-axis area table (not in the index)

def read_onaxis_area(path: str | Path) -> np.ndarray:
    """The 512 on-axis areas (cm^2) of ``xsm_onaxis_effective_area.txt`` (``caldb.md`` §6.8)."""
    path = Path(path)
    try:
        a = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except (OSError, ValueError) as exc:
        raise InputFormatError(f"{path}: not a readable on-axis area table ({str(exc).splitlines()[0]})") from None
    a = a.reshape(-1) if a.ndim == 1 else a[:, -1]
    if len(a) != N_PI:
        raise InputFormatError(f"{path}: on-axis area table has {len(a)} values, expected {N_PI}")
    return a


#: Reader of each code name (for certify and generic tools).
READERS = {
    "EBOUNDS": read_ebounds,
    "GAIN": read_gain,
    "ABSCOEF": read_abscoef,
    "EFFAREAPAR": read_effareapar,
    "SYSERR": read_syserr,
    "RMF": read_response,
    "RSP_OPEN": read_response,
    "RSP_BEFT": read_response,
}
