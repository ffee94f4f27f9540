"""FITS file structure and its PDS4 description (``spec/pds4.md`` §1.3, §1.4, §3).

:func:`scan_fits` walks the 2880-byte blocks of a FITS file on disk and returns every HDU's
header offset and length, data offset and length, and for binary tables the columns with
their byte positions. It reads only the headers (never the table data), so it is fast on
180-MB level-1 files and reports what is *in the file*, not what a library makes of it.
Label generation and the validator's data checks both use it.

:func:`pds4_fields` maps the columns of a table to PDS4 ``Field_Binary`` /
``Group_Field_Binary`` descriptions (data type, length, repetitions, value offset).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from xsm.products.errors import InputFormatError

BLOCK = 2880
CARD = 80

#: TFORM code -> (PDS4 data_type, bytes per element) (``pds4.md`` §1.4).
PDS4_TYPES: dict[str, tuple[str, int]] = {
    "B": ("UnsignedByte", 1),
    "I": ("SignedMSB2", 2),
    "J": ("SignedMSB4", 4),
    "K": ("SignedMSB8", 8),
    "E": ("IEEE754MSBSingle", 4),
    "D": ("IEEE754MSBDouble", 8),
    "A": ("ASCII_String", 1),
    "L": ("ASCII_String", 1),  # 'T'/'F' bytes; not used by XSM
    "C": ("ComplexMSB8", 8),
    "M": ("ComplexMSB16", 16),
}
#: Bytes per element of every TFORM code (for record layout, including ones PDS4 cannot describe).
TFORM_WIDTH = {"L": 1, "X": 1, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8,
               "M": 16, "P": 8, "Q": 16}
_TFORM_RE = re.compile(r"^\s*(\d*)\s*([LXBIJKAEDCMPQ])(.*)$", re.I)

#: Label names of EXTNAMEs in ``header_<X>``/``data_<X>`` ids (``pds4.md`` §3); others as is.
OBJECT_NAMES = {"GTI": "GTI", "RATE": "Rate", "SPECTRUM": "Spectrum", "SPECRESP": "Specresp",
                "DATA": "Data", "HKPARAM": "HKParam", "SUNANG": "SunAng"}


@dataclass(frozen=True)
class Column:
    """One binary-table column as the header declares it."""

    number: int  # 1-based TTYPE index
    name: str
    tform: str
    code: str  # TFORM letter
    repeat: int
    location: int  # 1-based byte in the record
    width: int  # bytes of the whole column
    unit: str | None = None
    tscal: float | None = None
    tzero: float | None = None


@dataclass
class Hdu:
    """One HDU: where its header and data lie in the file, and its keywords."""

    index: int
    header_offset: int
    header_length: int  # multiple of 2880
    data_offset: int
    data_length: int  # unpadded bytes of the data (0 for an empty primary)
    cards: dict = field(default_factory=dict)
    columns: list[Column] = field(default_factory=list)

    @property
    def extname(self) -> str:
        return "Primary" if self.index == 0 else str(self.cards.get("EXTNAME", f"HDU{self.index}")).strip()

    @property
    def is_table(self) -> bool:
        return str(self.cards.get("XTENSION", "")).strip() == "BINTABLE"

    @property
    def naxis1(self) -> int:
        return int(self.cards.get("NAXIS1", 0))

    @property
    def naxis2(self) -> int:
        return int(self.cards.get("NAXIS2", 0))

    @property
    def padded_data_length(self) -> int:
        return -(-self.data_length // BLOCK) * BLOCK

    @property
    def object_name(self) -> str:
        return OBJECT_NAMES.get(self.extname.upper(), self.extname) if self.index else "Primary"


@dataclass
class FitsStructure:
    path: Path
    size: int
    hdus: list[Hdu]
    trailing_bytes: int = 0  # bytes after the last HDU (should be 0)

    @property
    def tables(self) -> list[Hdu]:
        return [h for h in self.hdus if h.is_table]

    def keyword(self, key: str, default=None):
        """First value of ``key`` in the primary header, else in the extensions."""
        for h in self.hdus:
            if key in h.cards:
                return h.cards[key]
        return default

    def ext_keyword(self, key: str, default=None):
        """First value of ``key`` in an extension (DATE-OBS, DATE-END live there)."""
        for h in self.hdus[1:]:
            if key in h.cards:
                return h.cards[key]
        return self.hdus[0].cards.get(key, default) if self.hdus else default


def _parse_value(raw: str):
    raw = raw.strip()
    if raw.startswith("'"):
        # string: '' is an escaped quote; the comment follows the closing quote
        out, i = [], 1
        while i < len(raw):
            c = raw[i]
            if c == "'":
                if i + 1 < len(raw) and raw[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(c)
            i += 1
        return "".join(out).rstrip()
    value = raw.split("/", 1)[0].strip()
    if value == "T":
        return True
    if value == "F":
        return False
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value.replace("D", "E").replace("d", "e"))
    except ValueError:
        return value


def _parse_tform(tform: str) -> tuple[int, str]:
    m = _TFORM_RE.match(tform)
    if not m:
        raise ValueError(f"unreadable TFORM {tform!r}")
    return (int(m.group(1)) if m.group(1) else 1), m.group(2).upper()


def _columns(cards: dict) -> list[Column]:
    cols = []
    loc = 1
    for n in range(1, int(cards.get("TFIELDS", 0)) + 1):
        tform = str(cards.get(f"TFORM{n}", "")).strip()
        repeat, code = _parse_tform(tform)
        width = -(-repeat // 8) if code == "X" else repeat * TFORM_WIDTH[code]
        cols.append(Column(number=n, name=str(cards.get(f"TTYPE{n}", f"COL{n}")).strip(), tform=tform,
                           code=code, repeat=repeat, location=loc, width=width,
                           unit=(str(cards[f"TUNIT{n}"]).strip() or None) if f"TUNIT{n}" in cards else None,
                           tscal=cards.get(f"TSCAL{n}"), tzero=cards.get(f"TZERO{n}")))
        loc += width
    return cols


def scan_fits(path: str | Path) -> FitsStructure:
    """Structure of a FITS file on disk (headers only; see module docstring).

    Raises
    ------
    InputFormatError
        when the file is missing, not FITS, or truncated.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        f = open(path, "rb")
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    hdus: list[Hdu] = []
    trailing = 0
    with f:
        pos = 0
        while pos < size:
            f.seek(pos)
            first = f.read(BLOCK)
            start_key = first[:8].decode("ascii", "replace").strip()
            if len(first) < BLOCK or start_key != ("SIMPLE" if pos == 0 else "XTENSION"):
                if pos == 0:
                    raise InputFormatError(f"{path}: not a FITS file (no SIMPLE card)")
                trailing = size - pos
                break
            cards: dict = {}
            block = first
            nblocks = 0
            done = False
            while not done:
                nblocks += 1
                for i in range(0, BLOCK, CARD):
                    card = block[i:i + CARD].decode("ascii", "replace")
                    key = card[:8].strip()
                    if key == "END":
                        done = True
                        break
                    if card[8:10] == "= " and key not in cards:
                        cards[key] = _parse_value(card[10:])
                if not done:
                    block = f.read(BLOCK)
                    if len(block) < BLOCK:
                        raise InputFormatError(f"{path}: truncated FITS header (HDU {len(hdus)})")
            header_length = nblocks * BLOCK
            naxis = int(cards.get("NAXIS", 0))
            nelem = 0
            if naxis > 0:
                nelem = 1
                for k in range(1, naxis + 1):
                    nelem *= int(cards.get(f"NAXIS{k}", 0))
            bits = abs(int(cards.get("BITPIX", 8)))
            data_length = bits // 8 * int(cards.get("GCOUNT", 1)) * (int(cards.get("PCOUNT", 0)) + nelem)
            hdu = Hdu(index=len(hdus), header_offset=pos, header_length=header_length,
                      data_offset=pos + header_length, data_length=data_length, cards=cards)
            if hdu.is_table:
                try:
                    hdu.columns = _columns(cards)
                except (ValueError, KeyError) as exc:
                    raise InputFormatError(f"{path}: HDU {hdu.index}: {exc}") from None
            hdus.append(hdu)
            pos = hdu.data_offset + hdu.padded_data_length
        if pos > size:
            raise InputFormatError(f"{path}: truncated FITS data (file ends at {size}, data needs {pos})")
    return FitsStructure(path=path, size=size, hdus=hdus, trailing_bytes=trailing)


@dataclass(frozen=True)
class Pds4Field:
    """A ``Field_Binary``, or with ``repetitions > 1`` a ``Group_Field_Binary`` of one field."""

    name: str
    location: int  # field_location, or group_location for a group
    data_type: str
    field_length: int  # bytes of one element
    repetitions: int = 1
    unit: str | None = None
    description: str | None = None
    scaling_factor: float | None = None
    value_offset: float | None = None

    @property
    def is_group(self) -> bool:
        return self.repetitions > 1

    @property
    def group_length(self) -> int:
        return self.repetitions * self.field_length


def _num(value: float) -> float | int:
    f = float(value)
    return int(f) if f.is_integer() else f


def pds4_field(col: Column, *, name: str | None = None, unit: str | None = None,
               description: str | None = None) -> Pds4Field:
    """PDS4 description of one column (``pds4.md`` §1.4).

    ``nA`` is one ``ASCII_String`` of n bytes; any other code with repeat > 1 becomes a group.
    FITS unsigned columns (``I``/``J``/``K`` with TZERO = 2^15/2^31/2^63) keep the signed
    type of the stored bits with a ``value_offset`` (not ``UnsignedMSBn``).
    """
    if col.code in ("X", "P", "Q"):
        raise InputFormatError(f"column {col.name} (TFORM {col.tform}) cannot be described in a PDS4 "
                               "label (bit or variable-length column)")
    data_type, width = PDS4_TYPES[col.code]
    if col.code == "A":
        length, reps = col.repeat, 1
    elif col.code == "L":
        length, reps = 1, col.repeat
    else:
        length, reps = width, col.repeat
    scal = None if col.tscal in (None, 1, 1.0) else _num(col.tscal)
    zero = None if col.tzero in (None, 0, 0.0) else _num(col.tzero)
    return Pds4Field(name=name or col.name, location=col.location, data_type=data_type,
                     field_length=length, repetitions=reps, unit=unit, description=description,
                     scaling_factor=scal, value_offset=zero)


# --- per-product label text (names, units, descriptions) -------------------------------------
# Level-2 names/units/descriptions as in ISDA's official labels [K]; other products use the
# FITS names and TUNITs (pds4.md §3 [P]). (pds_name or None, unit or "" (= none) or None
# (= TUNIT), description)
FIELD_TEXT: dict[str, dict[str, tuple[str | None, str | None, str]]] = {
    "gti": {
        "START": (None, "Sec", "Start time of Good Time Interval"),
        "STOP": (None, "Sec", "Stop time of Good Time Interval"),
    },
    "lc": {
        "TIME": ("Time", "Sec", "Time for the light curve"),
        "RATE": ("Rate", "", "Count rate"),
        "ERROR": ("Error", "", "Statistical error in count rate"),
        "FRACEXP": ("Fracexp", "", "Fractional exposure"),
    },
    "pha": {
        "SPEC_NUM": (None, "", "Spectrum sequence number"),
        "CHANNEL": (None, "DN", "Channel of X-ray Spectrum"),
        "COUNTS": (None, "", "Counts in the channel"),
        "STAT_ERR": (None, "", "Statistical Error on counts"),
        "SYS_ERR": (None, "", "Systematic Error on counts"),
        "EXPOSURE": (None, "Sec", "Exposure time of this spectrum"),
        "TSTART": (None, "Sec", "Start Time of this spectrum"),
        "TSTOP": (None, "Sec", "End time of this spectrum"),
        "FILT_STATUS": (None, "", "Filter Status (0-Open;2-Befilter)"),
    },
    "arf": {
        "ARF_NUM": (None, None, "ARF sequence number"),
        "ENERG_LO": (None, None, "Lower energy bound of the bin"),
        "ENERG_HI": (None, None, "Upper energy bound of the bin"),
        "SPECRESP": (None, None, "Effective area"),
    },
    "fits": {
        "TIME": (None, None, "Mission elapsed time of the frame (s since 2017-01-01T00:00:00 UTC)"),
        "UTCSTRING": (None, None, "UTC time of the frame"),
        "FRAMENUMBER": (None, None, "Frame counter"),
        "BDHTIME": (None, None, "Data handling clock time of the record"),
        "XSMTIME": (None, None, "XSM FPGA clock time"),
        "DATAARRAY": (None, None, "Raw 2048-byte XSM frame"),
        "DECODINGSTATUSFLAG": (None, None, "Decoding status bit mask (0 = clean)"),
    },
    "hk": {
        "TIME": (None, None, "Mission elapsed time of the frame"),
        "UTCSTRING": (None, None, "UTC time of the frame"),
    },
    "sa": {
        "TIME": (None, None, "Mission elapsed time of the frame"),
        "THETA": (None, None, "Polar angle of the Sun from the XSM boresight"),
        "PHI": (None, None, "Azimuth of the Sun in the XSM frame"),
        "FOVFLAG": (None, None, "1 = Sun in the field of view"),
        "OCCULTFLAG": (None, None, "1 = Sun occulted by the Moon"),
        "DETPOSR": (None, None, "Radial position of the Sun's spot on the detector"),
        "RAMANGLE": (None, None, "Angle between spacecraft velocity and boresight"),
        "RA": (None, None, "Right ascension of the boresight (J2000)"),
        "DEC": (None, None, "Declination of the boresight (J2000)"),
        "ANGRATE": (None, None, "Rate of change of Theta"),
    },
}


def pds4_fields(hdu: Hdu, kind: str | None = None) -> list[Pds4Field]:
    """PDS4 fields of a binary-table HDU, in record order, with the product's names and text."""
    text = FIELD_TEXT.get(kind or "", {})
    out = []
    for col in hdu.columns:
        name, unit, desc = text.get(col.name.upper(), (None, None, None))
        if unit is None:
            unit = col.unit
        out.append(pds4_field(col, name=name or col.name, unit=unit or None, description=desc))
    return out


#: Product kind by EXTNAME of the first table (when the file name says nothing).
KIND_BY_EXTNAME = {"GTI": "gti", "RATE": "lc", "RATE_BAND1": "lc", "SPECTRUM": "pha",
                   "SPECRESP": "arf", "DATA": "fits", "HKPARAM": "hk", "SUNANG": "sa"}
LEVEL_BY_KIND = {"fits": 1, "hk": 1, "sa": 1, "gti": 2, "pha": 2, "lc": 2, "arf": 2}


def product_kind(structure: FitsStructure) -> str:
    """``fits``/``hk``/``sa``/``gti``/``pha``/``lc``/``arf`` from the file name or first EXTNAME."""
    ext = structure.path.suffix.lstrip(".").lower()
    if ext in LEVEL_BY_KIND:
        return ext
    for h in structure.tables:
        kind = KIND_BY_EXTNAME.get(h.extname.upper())
        if kind:
            return kind
    raise InputFormatError(f"{structure.path}: not an XSM product (extension {ext!r}, "
                           f"EXTNAMEs {[h.extname for h in structure.hdus[1:]]})")


def file_size(path: str | Path) -> int:
    return os.stat(path).st_size
