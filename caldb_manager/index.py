"""Calibration index files in both forms (``caldb.md`` §2, §3).

* The XSM index ``xsmcaldb.indx``: extension ``CIF`` with ``CAL_CNAM``, ``CAL_FILE``,
  ``REF_TIME`` (MJD), ``CAL_QUAL``, ``CAL_DESC`` and the keyword ``CALDBVER``.
* The full OGIP CIF (CAL/GEN/92-008) ``caldb.indx``: every column, including the nine
  boundary strings ``CAL_CBD`` that quzcif tests against a query expression.

Both read into one :class:`CalIndex` of :class:`IndexRow`; a row read from the XSM form gets
the OGIP columns filled from defaults (and remembers which form it came from), so either form
can be written from the same object. The header keywords of the ``CIF`` extension other than
the structural ones are kept in order, so reading and writing back loses nothing.
"""
from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.products.errors import InputFormatError
from xsm.products.fitsio import IDENTITY_CARDS, MISSION, empty_primary_hdu, open_fits, write_fits_atomic

#: File name of the XSM index inside a CALDB root.
XSM_INDEX_NAME = "xsmcaldb.indx"
#: File name of the full OGIP CIF written next to it (for HEASoft tools).
OGIP_INDEX_NAME = "caldb.indx"

#: Calibration-file extension keywords (``caldb.md`` §2): TELESCOP/INSTRUME of calibration files.
CAL_TELESCOP = "CH2_ORBITER"
CAL_INSTRUME = "XSM"

#: Quality flags (``caldb.md`` §3).
QUAL_GOOD = 0
QUAL_BAD = 1
QUAL_DUBIOUS = 2
QUAL_SUPERSEDED = 5

#: Number of boundary strings in a CIF row and their width.
N_CBD = 9
CBD_WIDTH = 70

#: XSM index columns: (name, TFORM) in file order.
XSM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("CAL_CNAM", "20A"),
    ("CAL_FILE", "40A"),
    ("REF_TIME", "D"),
    ("CAL_QUAL", "I"),
    ("CAL_DESC", "70A"),
)

#: OGIP CIF columns: (name, TFORM) in file order (``CAL_ORIG`` optional, written when any row has it).
OGIP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("TELESCOP", "10A"),
    ("INSTRUME", "10A"),
    ("DETNAM", "20A"),
    ("FILTER", "10A"),
    ("CAL_DEV", "20A"),
    ("CAL_DIR", "70A"),
    ("CAL_FILE", "40A"),
    ("CAL_CLAS", "3A"),
    ("CAL_DTYP", "4A"),
    ("CAL_CNAM", "20A"),
    ("CAL_CBD", f"{N_CBD * CBD_WIDTH}A{CBD_WIDTH}"),
    ("CAL_XNO", "I"),
    ("CAL_VSD", "10A"),
    ("CAL_VST", "8A"),
    ("REF_TIME", "D"),
    ("CAL_QUAL", "I"),
    ("CAL_DATE", "10A"),
    ("CAL_DESC", "70A"),
)
CAL_ORIG_COLUMN = ("CAL_ORIG", "20A")

#: Header keywords written by astropy itself (never copied from a read header).
_STRUCTURAL = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|T(TYPE|FORM|UNIT|DIM|NULL|SCAL|ZERO|DISP|LMIN|LMAX)\d+"
    r"|EXTNAME|CHECKSUM|DATASUM)$"
)

#: Keywords of a new XSM index (``caldb.md`` §2), in order.
XSM_INDEX_KEYWORDS: tuple[tuple[str, str, str], ...] = (
    ("MISSION", MISSION, "Name of mission/satellite"),
    ("TELESCOP", CAL_TELESCOP, "Name of mission/satellite"),
    ("INSTRUME", CAL_INSTRUME, "Name of Instrument/detector"),
    ("HDUCLASS", "OGIP", "OGIP Standard"),
    ("LONGSTRN", "OGIP 1.0", "The OGIP Long String Convention may be used"),
    ("ORIGIN", "PRL", "Origin of FITS file"),
    ("CREATOR", "xsmcaldbgen", "Software that created the FITS file"),
)

MJD_EPOCH = _dt.date(1858, 11, 17)


def mjd_to_vsd_vst(mjd: float) -> tuple[str, str]:
    """``(YYYY-MM-DD, hh:mm:ss)`` of an MJD (UTC, 86400 s days)."""
    days = int(np.floor(mjd))
    secs = int(round((mjd - days) * 86400.0))
    if secs >= 86400:
        days, secs = days + 1, secs - 86400
    d = MJD_EPOCH + _dt.timedelta(days=days)
    return d.isoformat(), f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"


def vsd_vst_to_mjd(vsd: str, vst: str = "00:00:00") -> float:
    """MJD of a validity start date ``YYYY-MM-DD`` and time ``hh:mm:ss``.

    Raises ValueError on a malformed value (callers add the file name).
    """
    d = _dt.date.fromisoformat(vsd.strip())
    h, m, s = (int(x) for x in (vst.strip() or "00:00:00").split(":"))
    return float((d - MJD_EPOCH).days) + (h * 3600 + m * 60 + s) / 86400.0


@dataclass(frozen=True)
class IndexRow:
    """One calibration-index row (the union of both forms' columns)."""

    cnam: str
    file: str
    ref_time: float
    qual: int = QUAL_GOOD
    desc: str = ""
    telescop: str = CAL_TELESCOP
    instrume: str = CAL_INSTRUME
    detnam: str = "NONE"
    filter: str = "NONE"
    cal_dev: str = "ONLINE"
    cal_dir: str = "."
    cal_clas: str = "BCF"
    cal_dtyp: str = "DATA"
    cbd: tuple[str, ...] = ("NONE",) * N_CBD
    xno: int = 1
    vsd: str = ""
    vst: str = ""
    cal_date: str = ""
    orig: str | None = None

    def __post_init__(self) -> None:
        if not self.vsd:
            vsd, vst = mjd_to_vsd_vst(self.ref_time)
            object.__setattr__(self, "vsd", vsd)
            if not self.vst:
                object.__setattr__(self, "vst", vst)
        if not self.vst:
            object.__setattr__(self, "vst", "00:00:00")
        cbd = tuple(self.cbd) + ("NONE",) * (N_CBD - len(self.cbd))
        object.__setattr__(self, "cbd", cbd[:N_CBD])

    @property
    def good(self) -> bool:
        return self.qual == QUAL_GOOD

    def relpath(self) -> Path:
        """Path of the file relative to the CALDB root (``CAL_DIR/CAL_FILE``)."""
        return Path(self.cal_dir or ".") / self.file

    def with_quality(self, qual: int) -> IndexRow:
        return replace(self, qual=int(qual))


@dataclass(frozen=True)
class CalIndex:
    """A calibration index: rows in file order, the release version and the header cards."""

    rows: tuple[IndexRow, ...]
    caldbver: str = ""
    form: str = "xsm"  # "xsm" or "ogip"
    #: Header cards of the CIF extension other than structural ones: (keyword, value, comment).
    cards: tuple[tuple[str, object, str], ...] = field(default=(), compare=False)
    path: Path | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.rows)

    def codes(self) -> list[str]:
        """Code names in order of first appearance."""
        seen: dict[str, None] = {}
        for r in self.rows:
            seen.setdefault(r.cnam.upper(), None)
        return list(seen)

    def rows_for(self, code: str) -> list[tuple[int, IndexRow]]:
        """(row number, row) of one code name (case-insensitive), in file order."""
        c = code.strip().upper()
        return [(i, r) for i, r in enumerate(self.rows) if r.cnam.strip().upper() == c]

    def files(self) -> list[str]:
        return [r.file for r in self.rows]

    def with_rows(self, rows: Iterable[IndexRow], caldbver: str | None = None) -> CalIndex:
        return replace(self, rows=tuple(rows), caldbver=self.caldbver if caldbver is None else caldbver)


# --------------------------------------------------------------------------------------------
# reading

def _str(v) -> str:
    if isinstance(v, bytes):
        v = v.decode("ascii", "replace")
    return str(v).rstrip()


def _kept_cards(header: fits.Header) -> tuple[tuple[str, object, str], ...]:
    out = []
    for card in header.cards:
        key = card.keyword
        if not key or _STRUCTURAL.match(key):
            continue
        out.append((key, card.value, card.comment))
    return tuple(out)


def read_index(path: str | Path) -> CalIndex:
    """Read an index in either form (detected from its columns).

    Raises :class:`InputFormatError` (one line, naming the file) on anything malformed.
    """
    path = Path(path)
    with open_fits(path, what="calibration index", memmap=False) as hdul:
        try:
            hdu = hdul["CIF"]
        except KeyError:
            if (len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU)
                    or "CAL_CNAM" not in [n.upper() for n in hdul[1].columns.names]):
                raise InputFormatError(f"{path}: no CIF extension (not a calibration index; found "
                                       f"{[h.name for h in hdul]})") from None
            hdu = hdul[1]
        if not isinstance(hdu, fits.BinTableHDU):
            raise InputFormatError(f"{path}: CIF extension is not a binary table")
        names = [n.upper() for n in hdu.columns.names]
        missing = [c for c in ("CAL_CNAM", "CAL_FILE", "REF_TIME", "CAL_QUAL") if c not in names]
        if missing:
            raise InputFormatError(f"{path}: CIF extension lacks column(s) {', '.join(missing)}")
        form = "ogip" if {"CAL_DIR", "CAL_CBD", "CAL_VSD"} <= set(names) else "xsm"
        data = hdu.data
        n = 0 if data is None else len(data)
        header = hdu.header
        caldbver = _str(header.get("CALDBVER", ""))
        cards = _kept_cards(header)
        rows = []
        try:
            col = {name: data[name] for name in hdu.columns.names} if n else {}
            ucol = {k.upper(): v for k, v in col.items()}
            for i in range(n):
                kw: dict = dict(
                    cnam=_str(ucol["CAL_CNAM"][i]),
                    file=_str(ucol["CAL_FILE"][i]),
                    ref_time=float(ucol["REF_TIME"][i]),
                    qual=int(ucol["CAL_QUAL"][i]),
                    desc=_str(ucol["CAL_DESC"][i]) if "CAL_DESC" in ucol else "",
                )
                if form == "ogip":
                    cbd_raw = ucol["CAL_CBD"][i]
                    if isinstance(cbd_raw, (str, bytes)):
                        s = _str(cbd_raw).ljust(N_CBD * CBD_WIDTH)
                        cbd = tuple(s[k * CBD_WIDTH:(k + 1) * CBD_WIDTH].rstrip() for k in range(N_CBD))
                    else:
                        cbd = tuple(_str(x) for x in cbd_raw)
                    kw.update(
                        telescop=_str(ucol["TELESCOP"][i]) if "TELESCOP" in ucol else CAL_TELESCOP,
                        instrume=_str(ucol["INSTRUME"][i]) if "INSTRUME" in ucol else CAL_INSTRUME,
                        detnam=_str(ucol["DETNAM"][i]) if "DETNAM" in ucol else "NONE",
                        filter=_str(ucol["FILTER"][i]) if "FILTER" in ucol else "NONE",
                        cal_dev=_str(ucol["CAL_DEV"][i]) if "CAL_DEV" in ucol else "ONLINE",
                        cal_dir=_str(ucol["CAL_DIR"][i]),
                        cal_clas=_str(ucol["CAL_CLAS"][i]) if "CAL_CLAS" in ucol else "BCF",
                        cal_dtyp=_str(ucol["CAL_DTYP"][i]) if "CAL_DTYP" in ucol else "DATA",
                        cbd=cbd,
                        xno=int(ucol["CAL_XNO"][i]) if "CAL_XNO" in ucol else 1,
                        vsd=_str(ucol["CAL_VSD"][i]),
                        vst=_str(ucol["CAL_VST"][i]) if "CAL_VST" in ucol else "00:00:00",
                        cal_date=_str(ucol["CAL_DATE"][i]) if "CAL_DATE" in ucol else "",
                        orig=(_str(ucol["CAL_ORIG"][i]) or None) if "CAL_ORIG" in ucol else None,
                    )
                rows.append(IndexRow(**kw))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise InputFormatError(f"{path}: malformed CIF row ({str(exc).splitlines()[0]})") from None
    for i, r in enumerate(rows):
        if not r.cnam or not r.file:
            raise InputFormatError(f"{path}: CIF row {i + 1} has an empty CAL_CNAM or CAL_FILE")
        if not np.isfinite(r.ref_time):
            raise InputFormatError(f"{path}: CIF row {i + 1} has a non-finite REF_TIME")
    return CalIndex(rows=tuple(rows), caldbver=caldbver, form=form, cards=cards, path=path)


# --------------------------------------------------------------------------------------------
# writing

def _header_cards(index: CalIndex, form: str, filename: str) -> list[tuple[str, object, str]]:
    """Header cards of the written CIF extension: the kept ones, or the defaults of a new index."""
    if index.cards:
        cards = list(index.cards)
    else:
        cards = list(XSM_INDEX_KEYWORDS)
        cards.append(("CALDBVER", index.caldbver, "Version number"))
        cards.append(("FILENAME", filename, "File name"))
        cards.append(("CONTENT", "CIF FILE", "File content"))
    keys = [c[0] for c in cards]

    def put(key: str, value, comment: str = "") -> None:
        if key in keys:
            i = keys.index(key)
            cards[i] = (key, value, cards[i][2] or comment)
        else:
            cards.append((key, value, comment))
            keys.append(key)

    put("CALDBVER", index.caldbver, "Version number")
    if form == "ogip":
        put("CIFVERSN", "1.1", "CIF format version")
        put("TELESCOP", cards[keys.index("TELESCOP")][1] if "TELESCOP" in keys else CAL_TELESCOP)
        put("INSTRUME", cards[keys.index("INSTRUME")][1] if "INSTRUME" in keys else CAL_INSTRUME)
    elif "CIFVERSN" in keys:
        i = keys.index("CIFVERSN")
        del cards[i], keys[i]
    if "FILENAME" in keys:
        put("FILENAME", filename)
    return cards


def index_hdulist(index: CalIndex, form: str | None = None, filename: str | None = None) -> fits.HDUList:
    """The HDUList of an index in ``form`` (``'xsm'`` or ``'ogip'``; default the index's own)."""
    form = form or index.form
    if form not in ("xsm", "ogip"):
        raise ValueError(f"unknown index form {form!r} (xsm or ogip)")
    rows = index.rows
    filename = filename or (OGIP_INDEX_NAME if form == "ogip" else XSM_INDEX_NAME)
    if form == "xsm":
        specs = list(XSM_COLUMNS)
        values = {
            "CAL_CNAM": [r.cnam for r in rows],
            "CAL_FILE": [r.file for r in rows],
            "REF_TIME": np.array([r.ref_time for r in rows], dtype=np.float64),
            "CAL_QUAL": np.array([r.qual for r in rows], dtype=np.int16),
            "CAL_DESC": [r.desc for r in rows],
        }
    else:
        specs = list(OGIP_COLUMNS)
        values = {
            "TELESCOP": [r.telescop for r in rows],
            "INSTRUME": [r.instrume for r in rows],
            "DETNAM": [r.detnam for r in rows],
            "FILTER": [r.filter for r in rows],
            "CAL_DEV": [r.cal_dev for r in rows],
            "CAL_DIR": [r.cal_dir for r in rows],
            "CAL_FILE": [r.file for r in rows],
            "CAL_CLAS": [r.cal_clas for r in rows],
            "CAL_DTYP": [r.cal_dtyp for r in rows],
            "CAL_CNAM": [r.cnam for r in rows],
            "CAL_CBD": np.array([[c[:CBD_WIDTH] for c in r.cbd] for r in rows], dtype=f"U{CBD_WIDTH}").reshape(
                len(rows), N_CBD),
            "CAL_XNO": np.array([r.xno for r in rows], dtype=np.int16),
            "CAL_VSD": [r.vsd for r in rows],
            "CAL_VST": [r.vst for r in rows],
            "REF_TIME": np.array([r.ref_time for r in rows], dtype=np.float64),
            "CAL_QUAL": np.array([r.qual for r in rows], dtype=np.int16),
            "CAL_DATE": [r.cal_date for r in rows],
            "CAL_DESC": [r.desc for r in rows],
        }
        if any(r.orig is not None for r in rows):
            specs.append(CAL_ORIG_COLUMN)
            values["CAL_ORIG"] = [r.orig or "" for r in rows]
    cols = []
    for name, tform in specs:
        width = re.match(r"^(\d+)A", tform)
        if name == "CAL_CBD":
            # 9 strings of 70 characters, blank padded as CFITSIO writes them
            flat = np.array(["".join(c[:CBD_WIDTH].ljust(CBD_WIDTH) for c in r.cbd) for r in rows],
                            dtype=f"S{N_CBD * CBD_WIDTH}")
            cols.append(fits.Column(name=name, format=tform, array=flat))
        elif width:
            # blank padding (as CFITSIO); a value longer than the nominal width widens the column
            w = max([int(width.group(1))] + [len(v) for v in values[name]])
            arr = np.array([v.ljust(w) for v in values[name]], dtype=f"S{w}")
            cols.append(fits.Column(name=name, format=f"{w}A", array=arr))
        else:
            cols.append(fits.Column(name=name, format=tform, array=values[name]))
    hdu = fits.BinTableHDU.from_columns(cols, name="CIF")
    if form == "ogip":
        # the substring convention rAw; TDIM lets readers without it see 9 strings too
        k = [n for n, _ in specs].index("CAL_CBD") + 1
        hdu.header.insert(f"TFORM{k}", (f"TDIM{k}", f"({CBD_WIDTH},{N_CBD})"), after=True)
    for key, value, comment in _header_cards(index, form, filename):
        if key in ("COMMENT", "HISTORY"):
            hdu.header.add_comment(value) if key == "COMMENT" else hdu.header.add_history(value)
        else:
            hdu.header.append(fits.Card(key, value, comment), end=True)
    primary = empty_primary_hdu()
    for key, value, comment in IDENTITY_CARDS:
        primary.header[key] = (value, comment)
    return fits.HDUList([primary, hdu])


def write_index(index: CalIndex, path: str | Path, form: str | None = None) -> Path:
    """Write ``index`` to ``path`` atomically (temporary file + rename), with CHECKSUM/DATASUM."""
    path = Path(path)
    hdul = index_hdulist(index, form=form, filename=path.name)
    return write_fits_atomic(hdul, path, overwrite=True, checksum=True)


def from_xsm_and_files(index: CalIndex, headers: Mapping[str, fits.Header]) -> CalIndex:
    """An OGIP-form index completed from the calibration files' own CALDB keywords.

    ``headers`` maps CAL_FILE to the header of its first calibration extension; each row gets
    CAL_CLAS/CAL_DTYP/CAL_CBD/CAL_DESC-independent fields from ``CCLS0001``, ``CDTP0001`` and the
    ``CBDn0001`` keywords. REF_TIME stays the index's (authoritative, ``caldb.md`` §2).
    """
    rows = []
    for r in index.rows:
        h = headers.get(r.file)
        if h is None:
            rows.append(replace(r))
            continue
        cbd = tuple(str(h.get(f"CBD{k}0001", "NONE")).strip() or "NONE" for k in range(1, N_CBD + 1))
        rows.append(replace(r, cal_clas=str(h.get("CCLS0001", r.cal_clas)).strip(),
                            cal_dtyp=str(h.get("CDTP0001", r.cal_dtyp)).strip(), cbd=cbd))
    return replace(index, rows=tuple(rows), form="ogip", cards=())


def rows_equivalent(a: Sequence[IndexRow], b: Sequence[IndexRow], form: str = "xsm") -> bool:
    """Whether two row lists carry the same content for the columns of ``form``."""
    if len(a) != len(b):
        return False
    if form == "xsm":
        key = lambda r: (r.cnam, r.file, r.ref_time, r.qual, r.desc)  # noqa: E731
        return [key(r) for r in a] == [key(r) for r in b]
    return list(a) == list(b)
