"""Every column of the three level-1 files, once: name, TFORM, unit, in order (``spec/level1.md``).

Also the file-level facts of level 1 (EXTNAME, reference CREATOR, CONTENT, file-name pattern)
and the DecodingStatusFlag bits (``level1.md`` §5). Readers, writers, the housekeeping decoder,
the PDS4 label generator and the catalog import these; nothing else spells them out.
"""
from __future__ import annotations

import datetime as _dt
import enum
import re
from dataclasses import dataclass

import numpy as np

#: numpy dtypes (big-endian, as in FITS) of the single-letter TFORM codes (``spec/README.md``).
_TFORM_DTYPE = {"L": "i1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_TFORM_RE = re.compile(r"^(\d*)([A-Z])$")


@dataclass(frozen=True)
class Column:
    """One FITS binary-table column.

    Attributes
    ----------
    name : str
        Official TTYPE spelling.
    tform : str
        TFORM exactly as the reference writes it (``'D'`` in the science file, ``'1D'`` in the
        housekeeping and sun-angle files).
    unit : str or None
        TUNIT, or None when the reference writes none.
    doc : str
        Content, short.
    """

    name: str
    tform: str
    unit: str | None = None
    doc: str = ""

    @property
    def repeat(self) -> int:
        r, _ = _TFORM_RE.match(self.tform).groups()
        return int(r) if r else 1

    @property
    def code(self) -> str:
        return _TFORM_RE.match(self.tform).group(2)

    @property
    def fits_dtype(self) -> np.dtype:
        """Big-endian numpy dtype of one cell (``S<n>`` for strings, subarray for vectors)."""
        if self.code == "A":
            return np.dtype(f"S{self.repeat}")
        base = np.dtype(_TFORM_DTYPE[self.code])
        return base if self.repeat == 1 else np.dtype((base, (self.repeat,)))

    @property
    def native_dtype(self) -> np.dtype:
        """The same dtype in native byte order (what readers return)."""
        dt = self.fits_dtype
        if dt.subdtype is not None:
            base, shape = dt.subdtype
            return np.dtype((base.newbyteorder("="), shape))
        return dt.newbyteorder("=") if dt.kind not in "SU" else dt

    @property
    def nbytes(self) -> int:
        return self.fits_dtype.itemsize


@dataclass(frozen=True)
class TableSpec:
    """A level-1 file: its one binary-table extension and the keywords that name it."""

    kind: str  # 'fits', 'hk', 'sa' (also the file suffix)
    extname: str
    creator: str  # reference task name (compat mode); default mode writes 'xsm.<step>'
    step: str  # project step name (CREATOR = 'xsm.<step>' in default mode)
    content: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def __getitem__(self, name: str) -> Column:
        for c in self.columns:
            if c.name.lower() == name.lower():
                return c
        raise KeyError(name)

    @property
    def fits_dtype(self) -> np.dtype:
        """Big-endian structured dtype of one row: exactly the FITS row layout (NAXIS1 bytes)."""
        return np.dtype([(c.name, c.fits_dtype) for c in self.columns])

    @property
    def native_dtype(self) -> np.dtype:
        """Native-endian structured dtype of one row (the ``data`` of a ``Level1Table``)."""
        return np.dtype([(c.name, c.native_dtype) for c in self.columns])

    @property
    def row_bytes(self) -> int:
        return sum(c.nbytes for c in self.columns)

    def offsets(self) -> dict[str, int]:
        """0-based byte offset of each column in a row (PDS4 ``field_location`` = offset + 1)."""
        out, pos = {}, 0
        for c in self.columns:
            out[c.name] = pos
            pos += c.nbytes
        return out


#: Level-1 science file ``.fits``, extension ``DATA`` (``level1.md`` §2).
SCIENCE_COLUMNS: tuple[Column, ...] = (
    Column("Time", "D", "s", "MET of the frame (after time-tag repair)"),
    Column("UTCString", "30A", None, "Time as YYYY-MM-DD hh:mm:ss.fffffffff"),
    Column("FrameNumber", "J", None, "frame counter, frame bytes 10-13 (signed; >= 2**31 wraps)"),
    # BDHTime and XSMTime are in s, but the reference-format files carry no TUNIT for them
    Column("BDHTime", "D", None, "DH clock time of the record, s"),
    Column("XSMTime", "D", None, "XSM FPGA clock, frame bytes 4-9 x 1e-6, s"),
    Column("DataArray", "2048B", None, "the raw XSM frame"),
    Column("DecodingStatusFlag", "I", None, "bit mask, level1.md §5"),
)

#: Housekeeping file ``.hk``, extension ``HKPARAM``: all 38 columns in order (``level1.md`` §3).
HK_COLUMNS: tuple[Column, ...] = (
    Column("Time", "1D", "s", "= science Time"),
    Column("UTCString", "30A", None, "= science UTCString"),
    Column("FPGATime", "1D", "s", "bytes 4-9 x 1e-6"),
    Column("FrameNo", "1J", None, "bytes 10-13"),
    Column("SyncLW", "1J", None, "bytes 2-3"),
    Column("SyncUW", "1J", None, "bytes 0-1"),
    Column("EventCounter", "1J", None, "bytes 14-17"),
    Column("EventDetected", "1J", None, "bytes 18-21"),
    Column("RampCounter", "1I", None, "bytes 22-23"),
    Column("HVMonitor", "1E", "V", "bytes 24-25 x 0.00122070"),
    Column("DetTemperature", "1E", "V", "bytes 26-27 x 0.00122070 (a voltage)"),
    Column("TECCurrent", "1E", "V", "bytes 28-29 x 0.00122070"),
    Column("LV1Monitor", "1E", "V", "bytes 30-31 x 0.00122070"),
    Column("LV2Monitor", "1E", "V", "bytes 32-33 x 0.00122070"),
    Column("LLDRefVoltage", "1E", "mV", "bytes 46-47 x 1.22070"),
    Column("TECRefVoltage", "1E", "mV", "bytes 48-49 x 1.22070"),
    Column("MotorControlMode", "1B", None, "0 auto, 1 manual, 2 force-step, 5 invalid"),
    Column("MotorOperationMode", "1B", None, "0 IR, 1 counter, 2 step, 5 invalid"),
    Column("MotorSetPos", "1B", None, "0 open, 1 cal, 2 Be, 5 invalid"),
    Column("MotorIRPos", "1B", None, "0 open, 1 cal, 2 Be, 5 invalid"),
    Column("IRPowerStatus", "1B", None, "0 on, 1 off"),
    Column("FrameDiscardFlag", "1B", None, "1 = mechanism moving"),
    Column("MotorAutoTime", "1B", "ms", "100 or 1000 stored modulo 256 (1000 -> 232, quirk Q05)"),
    Column("StepModeDir", "1B", None, "0 clockwise, 1 anticlockwise"),
    Column("WindowLowerThresh", "1J", None, "byte 51 x 100"),
    Column("WindowUpperThresh", "1J", None, "byte 50 x 1000"),
    Column("PileupRejMode", "1B", None, "0 off, 1 on"),
    Column("PileupRejTime", "1B", "us", "5 or 10"),
    Column("GuardBits", "1I", None, "byte54*256 + (byte55 >> 2); 0 expected"),
    Column("Ch1Start", "1I", None, "bytes 34-35"),
    Column("Ch1Stop", "1I", None, "bytes 36-37"),
    Column("Ch2Start", "1I", None, "bytes 38-39"),
    Column("Ch2Stop", "1I", None, "bytes 40-41"),
    Column("Ch3Start", "1I", None, "bytes 42-43"),
    Column("Ch3Stop", "1I", None, "bytes 44-45"),
    Column("CoarseChEvents", "1J", None, "sum of the 30 coarse words"),
    Column("SpecEvents", "1J", None, "sum of spectrum words 0-962"),
    Column("ULDEvents", "1J", None, "spectrum word 962"),
)

#: Sun-angle file ``.sa``, extension ``SUNANG`` (``level1.md`` §4).
SA_COLUMNS: tuple[Column, ...] = (
    Column("Time", "1D", "s", "= science Time"),
    Column("Theta", "1E", "degree", "polar angle of the Sun from the XSM boresight"),
    Column("Phi", "1E", "degree", "azimuth of the Sun in the XSM frame, (-180, 180]"),
    Column("FovFlag", "1B", None, "1 = Sun in the field of view"),
    Column("OccultFlag", "1B", None, "1 = Sun occulted by the Moon"),
    Column("DetPosR", "1E", "mm", "radial position of the Sun's spot on the detector"),
    Column("RamAngle", "1E", "degree", "angle between spacecraft velocity and boresight"),
    Column("RA", "1E", "degree", "right ascension of the boresight (J2000), (-180, 180]"),
    Column("DEC", "1E", "degree", "declination of the boresight (J2000)"),
    Column("AngRate", "1E", "degree/s", "rate of change of Theta"),
)

SCIENCE = TableSpec("fits", "DATA", "xsml1gen", "l1", "L1 Science file", SCIENCE_COLUMNS)
HK = TableSpec("hk", "HKPARAM", "xsmhkextract", "hk", "HK data", HK_COLUMNS)
SA = TableSpec("sa", "SUNANG", "xsmcalsa", "sunangle", "Sun Angle", SA_COLUMNS)
SPECS = {s.kind: s for s in (SCIENCE, HK, SA)}

#: Row lengths of ``level1.md`` (2108, 140, 38 bytes).
assert SCIENCE.row_bytes == 2108 and HK.row_bytes == 140 and SA.row_bytes == 38

#: Level-1 file name: ``ch2_xsm_YYYYMMDD_v<version>_level1.<kind>`` (``level1.md``).
LEVEL1_NAME = "ch2_xsm_{date}_v{version}_level1.{kind}"
LEVEL1_NAME_RE = re.compile(r"^ch2_xsm_(\d{8})_v(\d+)_level1\.(fits|hk|sa)$")


def level1_name(date: _dt.date | str, kind: str = "fits", version: int = 1) -> str:
    """File name of a level-1 file of ``date`` (a date or ``YYYYMMDD``)."""
    if kind not in SPECS:
        raise ValueError(f"kind must be one of {', '.join(SPECS)}")
    tag = date if isinstance(date, str) else date.strftime("%Y%m%d")
    return LEVEL1_NAME.format(date=tag, version=version, kind=kind)


def sibling_name(path_name: str, kind: str) -> str:
    """The name of the ``.hk``/``.sa``/``.fits`` file of the same day and version."""
    m = LEVEL1_NAME_RE.match(path_name)
    if not m:
        stem = path_name.rsplit(".", 1)[0]
        return f"{stem}.{kind}"
    return level1_name(m.group(1), kind, int(m.group(2)))


class DecodingStatus(enum.IntFlag):
    """DecodingStatusFlag bits of the level-1 science file (``level1.md`` §5) [P]; 0 = clean."""

    TIME_REPAIRED = 1  # bit 0: Time changed by the time-tag repair rule
    DUPLICATE = 2  # bit 1: identical copies received in more than one download
    DUP_CONFLICT = 4  # bit 2: differing copies with the same key; most recent session kept
    SYNC_MISMATCH = 8  # bit 3: SyncUW/SyncLW differ from the configured expected values
    GUARD_BITS = 16  # bit 4: GuardBits != 0
    DISCONTINUITY = 32  # bit 5: FrameNo != previous + 1, or XSMTime step outside 1 +- 0.01 s
    IST_CONVERTED = 64  # bit 6: time tag was IST and has been converted
    NO_CHECKSUM = 128  # bit 7: source layout had no checksum to verify
