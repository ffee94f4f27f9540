"""Level-1 files: the science ``.fits``, housekeeping ``.hk`` and sun-angle ``.sa`` (``spec/level1.md``).

Readers load whole columns (never per row) and tolerate the versions of the official files:
column names are matched case-insensitively, ``D``/``1D`` TFORMs alike, extra columns are kept,
and the extension is found by EXTNAME or, failing that, by its columns. Writers produce the
exact formats of ``level1.md`` (TFORM, TUNIT, the common keywords of §1, HISTORY) and write
through a temporary file renamed into place, so a failure leaves nothing behind.

Column facts live in :mod:`xsm.products.columns`; the housekeeping decoder in
:mod:`xsm.products.hk`.
"""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.products import columns as cols, settings
from xsm.products.errors import InputFormatError, ParameterError
from xsm.products.fitsio import (
    add_history,
    atomic_path,
    common_keywords,
    primary_hdu,
    provenance_history,
    provenance_keywords,
    time_keywords,
)
from xsm.products.frame import FRAME_SIZE
from xsm.products.met import met_to_utc_string
from xsm.products.provenance import Mode, Provenance

log = logging.getLogger(__name__)

#: Keywords copied from a source header into derived level-1 files (time keywords, ``time.md`` §5).
TIME_KEYWORDS = ("DATE-OBS", "DATE-END", "TSTART", "TSTOP", "TELAPSE")


# --------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------
@dataclass
class Level1Day:
    """The frames of one level-1 science file (``level1.md`` §2), one row per frame.

    Attributes
    ----------
    time : ndarray float64 (N,)
        ``Time``, MET s.
    utc : ndarray str (N,)
        ``UTCString`` (``YYYY-MM-DD hh:mm:ss.fffffffff``), trailing blanks stripped.
    frame_number : ndarray int64 (N,)
        ``FrameNumber`` as the **unsigned** 32-bit value (the file stores it signed).
    bdh_time, xsm_time : ndarray float64 (N,)
        ``BDHTime`` and ``XSMTime``, s.
    data : ndarray uint8 (N, 2048)
        ``DataArray``, the raw frames (C-contiguous).
    status : ndarray int16 (N,)
        ``DecodingStatusFlag`` (:class:`xsm.products.columns.DecodingStatus`).
    header : astropy.io.fits.Header
        Header of the ``DATA`` extension (empty for a day not read from a file).
    path : Path or None
    """

    time: np.ndarray
    utc: np.ndarray
    frame_number: np.ndarray
    bdh_time: np.ndarray
    xsm_time: np.ndarray
    data: np.ndarray
    status: np.ndarray
    header: fits.Header = field(default_factory=fits.Header)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.time)

    def __post_init__(self) -> None:
        n = len(self.time)
        for name in ("utc", "frame_number", "bdh_time", "xsm_time", "data", "status"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Level1Day.{name}: {len(getattr(self, name))} rows, expected {n}")
        if self.data.ndim != 2 or self.data.shape[1] != FRAME_SIZE or self.data.dtype != np.uint8:
            raise ValueError(f"Level1Day.data must be uint8 (N, {FRAME_SIZE}), got {self.data.dtype} "
                             f"{self.data.shape}")

    def select(self, index) -> Level1Day:
        """A new day with the rows ``index`` (mask or indices); header and path kept."""
        return Level1Day(self.time[index], self.utc[index], self.frame_number[index],
                         self.bdh_time[index], self.xsm_time[index], self.data[index],
                         self.status[index], self.header, self.path)

    @property
    def date_tag(self) -> str:
        """``YYYYMMDD`` of the first frame."""
        return str(self.utc[0])[:10].replace("-", "")


@dataclass
class Level1Table:
    """A housekeeping or sun-angle table: structured ``data`` with the official column names.

    ``table["MotorIRPos"]`` returns a column (case-insensitive name).
    """

    data: np.ndarray
    header: fits.Header = field(default_factory=fits.Header)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.data)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.data.dtype.names)

    def __getitem__(self, name: str) -> np.ndarray:
        for n in self.data.dtype.names:
            if n.lower() == name.lower():
                return self.data[n]
        raise KeyError(f"no column {name!r} (have {', '.join(self.data.dtype.names)})")

    def __contains__(self, name: str) -> bool:
        return any(n.lower() == name.lower() for n in self.data.dtype.names)


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------
def _find_table(hdul: fits.HDUList, spec: cols.TableSpec, path: Path, required: Iterable[str]):
    required = [r.lower() for r in required]
    try:
        hdu = hdul[spec.extname]
    except KeyError:
        hdu = None
        for h in hdul[1:]:
            if isinstance(h, fits.BinTableHDU) and all(
                    r in {n.lower() for n in h.columns.names} for r in required):
                hdu = h
                break
        if hdu is None:
            raise InputFormatError(
                f"{path}: not a level-1 {spec.kind} file (no {spec.extname} extension)") from None
    if not isinstance(hdu, fits.BinTableHDU):
        raise InputFormatError(f"{path}: extension {spec.extname} is not a binary table")
    names = {n.lower(): n for n in hdu.columns.names}
    missing = [r for r in required if r not in names]
    if missing:
        raise InputFormatError(f"{path}: extension {hdu.name} lacks column(s) {', '.join(missing)}")
    return hdu, names


def _open(path: str | Path, what: str) -> tuple[Path, fits.HDUList]:
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=True)
            hdul.verify("silentfix")
            _ = [h.header for h in hdul]
        for w in caught:
            if "truncated" in str(w.message):
                hdul.close()
                raise InputFormatError(f"{path}: truncated {what} ({str(w.message).splitlines()[0]})")
    except InputFormatError:
        raise
    except Exception as exc:  # astropy raises many types for a foreign/truncated file
        raise InputFormatError(f"{path}: not a readable {what} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return path, hdul


def _strings(col) -> np.ndarray:
    a = np.asarray(col)
    if a.dtype.kind == "S":
        a = np.char.decode(a, "ascii")
    return np.char.rstrip(a.astype(str))


def read_level1(path: str | Path) -> Level1Day:
    """Read a level-1 science file (``ch2_xsm_YYYYMMDD_v1_level1.fits``) whole.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Level1Day

    Raises
    ------
    InputFormatError
        Missing, truncated or foreign file; no ``DATA`` table with ``Time`` and ``DataArray``.

    Notes
    -----
    Tolerates version differences: a missing ``UTCString`` is derived from ``Time``, missing
    ``XSMTime``/``FrameNumber`` are decoded from the frames, a missing ``BDHTime`` is NaN and a
    missing ``DecodingStatusFlag`` is 0.
    """
    from xsm.products.frame import frame_number, xsm_time

    path, hdul = _open(path, "level-1 science file")
    with hdul:
        hdu, names = _find_table(hdul, cols.SCIENCE, path, ("Time", "DataArray"))
        try:
            d = hdu.data
            n = 0 if d is None else len(d)
            if n == 0:
                raise InputFormatError(f"{path}: the {hdu.name} table has no rows")
            data = np.ascontiguousarray(d[names["dataarray"]], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != FRAME_SIZE:
                raise InputFormatError(f"{path}: DataArray is not {FRAME_SIZE} bytes per row")
            time = np.asarray(d[names["time"]], dtype=np.float64)
            utc = _strings(d[names["utcstring"]]) if "utcstring" in names else met_to_utc_string(time)
            if "framenumber" in names:
                fn = np.asarray(d[names["framenumber"]]).astype(np.int64) & 0xFFFFFFFF
            else:
                fn = frame_number(data)
            xt = (np.asarray(d[names["xsmtime"]], dtype=np.float64) if "xsmtime" in names
                  else xsm_time(data))
            bt = (np.asarray(d[names["bdhtime"]], dtype=np.float64) if "bdhtime" in names
                  else np.full(n, np.nan))
            st = (np.asarray(d[names["decodingstatusflag"]]).astype(np.int16)
                  if "decodingstatusflag" in names else np.zeros(n, np.int16))
            header = hdu.header.copy()
        except InputFormatError:
            raise
        except Exception as exc:  # truncated data section
            raise InputFormatError(f"{path}: cannot read the {hdu.name} table ({exc})") from None
    return Level1Day(time, utc, fn, bt, xt, data, st, header, path)


def _read_table(path: str | Path, spec: cols.TableSpec, what: str) -> Level1Table:
    path, hdul = _open(path, what)
    with hdul:
        hdu, names = _find_table(hdul, spec, path, ("Time",))
        missing = [c.name for c in spec.columns if c.name.lower() not in names]
        if missing:
            raise InputFormatError(f"{path}: extension {hdu.name} lacks column(s) {', '.join(missing)}")
        try:
            d = hdu.data
            n = 0 if d is None else len(d)
            extras = [nm for nm in hdu.columns.names if nm.lower() not in {c.lower() for c in spec.names}]
            ext_cols = []
            for nm in extras:
                a = np.asarray(d[nm])
                ext_cols.append((nm, a.dtype.newbyteorder("=") if a.dtype.kind not in "SU" else a.dtype,
                                 a.shape[1:]))
            dtype = np.dtype(list(spec.native_dtype.descr) + [(nm, dt, sh) for nm, dt, sh in ext_cols])
            out = np.empty(n, dtype=dtype)
            for c in spec.columns:
                a = np.asarray(d[names[c.name.lower()]])
                if c.code == "A":
                    a = np.char.encode(_strings(a), "ascii") if a.dtype.kind == "U" else a
                out[c.name] = a
            for nm, _, _ in ext_cols:
                out[nm] = np.asarray(d[nm])
            header = hdu.header.copy()
        except InputFormatError:
            raise
        except Exception as exc:
            raise InputFormatError(f"{path}: cannot read the {hdu.name} table ({exc})") from None
    return Level1Table(out, header, path)


def read_hk(path: str | Path) -> Level1Table:
    """Read a level-1 housekeeping file (extension ``HKPARAM``, 38 columns, ``level1.md`` §3).

    ``data`` is a native-endian structured array with the official column names and types
    (``columns.HK``; ``UTCString`` as bytes ``S30``), plus any extra columns of the file.
    ``MotorAutoTime`` keeps the stored value (232 means 1000 ms, quirk Q05; see
    :func:`xsm.products.hk.motor_auto_time_ms`).
    """
    return _read_table(path, cols.HK, "level-1 housekeeping file")


def read_sa(path: str | Path) -> Level1Table:
    """Read a level-1 sun-angle file (extension ``SUNANG``, 10 columns, ``level1.md`` §4)."""
    return _read_table(path, cols.SA, "level-1 sun-angle file")


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------
def _time_cards_from_rows(time: np.ndarray, utc: np.ndarray | None, mode: Mode) -> list[tuple[str, object]]:
    if len(time) == 0:
        raise ParameterError("a level-1 file needs at least one row (level1.md §6 rule 6)")
    def text(v) -> str:   # a UTCString read from a file is bytes: its text, not "b'...'"
        return (v.decode("ascii") if isinstance(v, bytes) else str(v)).rstrip()

    u0, u1 = (None, None) if utc is None else (text(utc[0]), text(utc[-1]))
    return time_keywords(float(time[0]), float(time[-1]), u0, u1, mode=mode)


def _time_cards_from_header(header: fits.Header | None, time, utc, mode: Mode) -> list[tuple[str, object]]:
    if header is not None and all(k in header for k in ("DATE-OBS", "DATE-END", "TSTART", "TSTOP")):
        return time_keywords(float(header["TSTART"]), float(header["TSTOP"]),
                             str(header["DATE-OBS"]), str(header["DATE-END"]), mode=mode)
    return _time_cards_from_rows(time, utc, mode)


def _ext_header(spec: cols.TableSpec, n: int, filename: str, creator: str, mode: Mode,
                time_cards, cards: Sequence[tuple[str, object]], history: Sequence[str],
                provenance: Provenance | None, date: str | None) -> fits.Header:
    h = fits.Header()
    h["XTENSION"] = ("BINTABLE", "binary table extension")
    h["BITPIX"] = (8, "array data type")
    h["NAXIS"] = (2, "number of array dimensions")
    h["NAXIS1"] = (spec.row_bytes, "length of dimension 1")
    h["NAXIS2"] = (n, "length of dimension 2")
    h["PCOUNT"] = (0, "number of group parameters")
    h["GCOUNT"] = (1, "number of groups")
    h["TFIELDS"] = (len(spec.columns), "number of table fields")
    for i, c in enumerate(spec.columns, 1):
        h[f"TTYPE{i}"] = c.name
        h[f"TFORM{i}"] = c.tform
        if c.unit:
            h[f"TUNIT{i}"] = c.unit
    h["EXTNAME"] = spec.extname
    h["EXTVER"] = 1
    for k, v in common_keywords(filename, creator, date=date, mode=mode):
        h[k] = v
    for k, v in time_cards:
        h[k] = v
    prov = provenance or Provenance(step=spec.step, mode=mode)
    for k, v in provenance_keywords(prov):
        h[k] = v
    for k, v in cards:
        h[k] = v
    add_history(h, history)
    add_history(h, provenance_history(prov))
    return h


#: Rows per block when the data section is written from a row-producing function.
WRITE_BLOCK_ROWS = 8192


def _write(path: str | Path, spec: cols.TableSpec, rec, *, time_cards, overwrite: bool,
           mode: Mode, history: Sequence[str], provenance: Provenance | None,
           cards: Sequence[tuple[str, object]] = (), creator: str | None = None,
           date: str | None = None) -> Path:
    """Write one level-1 file: empty primary HDU + one binary table whose rows are ``rec``.

    ``rec`` is an array with the big-endian row dtype ``spec.fits_dtype`` (its bytes are the
    FITS data section, no astropy table copy), or ``(n, rows)`` with ``rows(a, b)`` returning
    rows ``a:b`` in that dtype (written block by block: a day never exists twice in memory).
    Atomic: temporary file, rename.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ParameterError(f"{path}: exists already (use --clobber/overwrite to replace it)")
    if isinstance(rec, np.ndarray):
        n, arr = len(rec), rec
        rows = lambda a, b: arr[a:b]  # noqa: E731
    else:
        n, rows = rec
    if creator is None:
        creator = spec.creator if mode == Mode.XSMDAS_1_2 else f"xsm.{spec.step}"
    prim = primary_hdu(path.name, creator, spec.content, date=date, mode=mode)
    ext = _ext_header(spec, n, path.name, creator, mode, time_cards, cards, history,
                      provenance, date)
    nbytes = n * spec.row_bytes
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(prim.header.tostring().encode("ascii"))
        f.write(ext.tostring().encode("ascii"))
        for a in range(0, n, WRITE_BLOCK_ROWS):
            try:
                block = rows(a, min(n, a + WRITE_BLOCK_ROWS))
            except ParameterError as exc:   # a bad value of the rows: say which file
                raise ParameterError(f"{path}: {exc}") from None
            if block.dtype != spec.fits_dtype:
                raise TypeError(f"rows must have dtype {spec.fits_dtype}")
            f.write(memoryview(np.ascontiguousarray(block)).cast("B"))
        pad = (-nbytes) % 2880
        if pad:
            f.write(b"\0" * pad)
        f.flush()
        if settings.fsync():
            os.fsync(f.fileno())
    return path


def _utc_bytes(utc: np.ndarray) -> np.ndarray:
    a = np.asarray(utc)
    try:
        return a.astype("S30")  # ASCII by construction (time.md §2)
    except UnicodeEncodeError:
        raise ParameterError("UTCString values must be ASCII") from None


def science_rows(day: Level1Day, a: int = 0, b: int | None = None) -> np.ndarray:
    """The big-endian FITS rows (``columns.SCIENCE.fits_dtype``) of rows ``a:b`` of a day."""
    sl = slice(a, len(day) if b is None else b)
    rec = np.empty(sl.stop - sl.start, dtype=cols.SCIENCE.fits_dtype)
    rec["Time"] = day.time[sl]
    rec["UTCString"] = _utc_bytes(day.utc[sl])
    rec["FrameNumber"] = (np.asarray(day.frame_number[sl], dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    rec["BDHTime"] = day.bdh_time[sl]
    rec["XSMTime"] = day.xsm_time[sl]
    rec["DataArray"] = day.data[sl]
    rec["DecodingStatusFlag"] = day.status[sl]
    return rec


def check_aligned(time: np.ndarray, expect: np.ndarray | None, path: Path) -> None:
    """Row alignment with the science file (``level1.md`` §6 rules 4-5)."""
    if expect is None:
        return
    expect = np.asarray(expect, dtype=np.float64)
    if len(time) != len(expect):
        raise ParameterError(f"{path}: {len(time)} rows, the science file has {len(expect)}")
    if not np.array_equal(np.asarray(time, dtype=np.float64).view(np.int64), expect.view(np.int64)):
        raise ParameterError(f"{path}: Time differs from the science file's Time")


def _check_times(time: np.ndarray, path: Path) -> None:
    if len(time) > 1 and not np.all(np.diff(time) > 0):
        raise ParameterError(f"{path}: Time must be strictly increasing (level0.md §4 step 8)")


def write_level1(day: Level1Day, path: str | Path, *, overwrite: bool = False,
                 mode: Mode = Mode.DEFAULT, history: Sequence[str] = (),
                 provenance: Provenance | None = None, cards: Sequence[tuple[str, object]] = (),
                 date: str | None = None) -> Path:
    """Write the level-1 science file (``level1.md`` §2) of ``day``.

    Parameters
    ----------
    day : Level1Day
    path : str or Path
        Target; by convention ``ch2_xsm_YYYYMMDD_v1_level1.fits``.
    overwrite : bool
        Replace an existing file (else :class:`ParameterError`).
    mode : Mode
        ``DEFAULT``: ``CREATOR = 'xsm.l1'``, DATE in UTC; ``XSMDAS_1_2``: ``'xsml1gen'``, local DATE.
    history : sequence of str
        HISTORY lines (input sessions, decoder, QA counters: ``level1.md`` §6 rule 7).
    provenance : Provenance, optional
        Adds PROCMODE and the ``XSM PROVENANCE`` HISTORY block.
    cards : sequence of (keyword, value)
        Extra extension keywords.

    Returns
    -------
    Path

    Notes
    -----
    DATE-OBS/DATE-END/TSTART/TSTOP/TELAPSE from the first and last rows (``time.md`` §5).
    """
    path = Path(path)
    _check_times(day.time, path)
    return _write(path, cols.SCIENCE, (len(day), lambda a, b: science_rows(day, a, b)),
                  time_cards=_time_cards_from_rows(day.time, day.utc, mode), overwrite=overwrite,
                  mode=mode, history=history, provenance=provenance, cards=cards, date=date)


def table_rows(table: Level1Table | np.ndarray, spec: cols.TableSpec, path: Path | None = None) -> np.ndarray:
    """Big-endian FITS rows of ``spec`` from a structured array (names matched case-insensitively);
    ``path``, the file being written, prefixes the error messages."""
    data = table.data if isinstance(table, Level1Table) else table
    have = {n.lower(): n for n in data.dtype.names}
    missing = [c.name for c in spec.columns if c.name.lower() not in have]
    if missing:
        raise ParameterError(f"{path or spec.extname}: {spec.extname} table lacks column(s) {', '.join(missing)}")
    rec = np.empty(len(data), dtype=spec.fits_dtype)
    for c in spec.columns:
        a = data[have[c.name.lower()]]
        try:
            rec[c.name] = _utc_bytes(a) if c.code == "A" else a
        except ParameterError as exc:
            raise ParameterError(f"{path or spec.extname}: {exc}") from None
    return rec


def write_hk(table: Level1Table, path: str | Path, *, overwrite: bool = False,
             mode: Mode = Mode.DEFAULT, history: Sequence[str] = (),
             provenance: Provenance | None = None, cards: Sequence[tuple[str, object]] = (),
             date: str | None = None, expect_time: np.ndarray | None = None) -> Path:
    """Write the level-1 housekeeping file (``level1.md`` §3): 38 columns, ``HKPARAM``.

    ``expect_time``: the science file's ``Time`` column, checked as in :func:`write_sa`.

    The time keywords are those of ``table.header`` (copied from the science file by
    :func:`xsm.products.hk.decode_hk`) or, if absent, from the first and last rows.
    """
    path = Path(path)
    _check_times(np.asarray(table["Time"]), path)
    check_aligned(np.asarray(table["Time"]), expect_time, path)
    rec = table_rows(table, cols.HK, path)
    return _write(path, cols.HK, rec,
                  time_cards=_time_cards_from_header(table.header, rec["Time"], rec["UTCString"], mode),
                  overwrite=overwrite, mode=mode, history=history, provenance=provenance,
                  cards=cards, date=date)


def write_sa(table: Level1Table, path: str | Path, *, overwrite: bool = False,
             mode: Mode = Mode.DEFAULT, history: Sequence[str] = (),
             provenance: Provenance | None = None, cards: Sequence[tuple[str, object]] = (),
             date: str | None = None, level1_header: fits.Header | None = None,
             expect_time: np.ndarray | None = None) -> Path:
    """Write the level-1 sun-angle file (``level1.md`` §4): 10 columns, ``SUNANG``.

    ``expect_time``: the science file's ``Time`` column; when given, the rows must be the
    same number with bit-identical times (``level1.md`` §6 rules 4-5), else ParameterError.

    Time keywords: DATE-OBS/DATE-END copied from ``level1_header`` (the science file's DATA
    header) or ``table.header``; TSTART/TSTOP/TELAPSE from the first and last rows
    (``time.md`` §5). HISTORY lines (``l1file``, ``safile``, kernels, ...) come from the caller.
    """
    path = Path(path)
    time = np.asarray(table["Time"], dtype=np.float64)
    _check_times(time, path)
    check_aligned(time, expect_time, path)
    rec = table_rows(table, cols.SA, path)
    src = level1_header if level1_header is not None else table.header
    if src is not None and "DATE-OBS" in src and "DATE-END" in src:
        tc = time_keywords(float(time[0]), float(time[-1]), str(src["DATE-OBS"]), str(src["DATE-END"]),
                           mode=mode)
    else:
        tc = _time_cards_from_rows(time, None, mode)
    return _write(path, cols.SA, rec, time_cards=tc, overwrite=overwrite, mode=mode,
                  history=history, provenance=provenance, cards=cards, date=date)


def empty_table(spec: cols.TableSpec, n: int) -> Level1Table:
    """A zero-filled :class:`Level1Table` of ``n`` rows with the columns of ``spec``."""
    return Level1Table(np.zeros(n, dtype=spec.native_dtype))


def level1_paths(out_dir: str | Path, date_tag: str, version: int = 1) -> dict[str, Path]:
    """The three level-1 paths of a day: ``{'fits': ..., 'hk': ..., 'sa': ...}``."""
    out_dir = Path(out_dir)
    return {k: out_dir / cols.level1_name(date_tag, k, version) for k in cols.SPECS}
