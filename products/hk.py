"""Housekeeping: the 38 ``.hk`` columns decoded from the science frames (``level1.md`` §3).

Vectorised over the whole day (``frame.md`` §6): one pass over the 56 header bytes, one
int64 sum over the spectrum block (no int64 copy of it), no per-frame loop. Conversions are
exactly the reference's: ``float32(counts x gain)`` with the gain in double precision;
integer columns cast to their FITS types (``1I`` and ``1J`` wrap like C casts);
``MotorAutoTime`` = 100 or 1000 stored modulo 256 (quirk Q05).
"""
from __future__ import annotations

import numpy as np
from astropy.io import fits

from xsm.products import columns as cols
from xsm.products import frame as fr
from xsm.products.level1 import TIME_KEYWORDS, Level1Day, Level1Table

#: Monitor ADC columns (V) and reference DAC columns (mV), with their gains.
ADC_COLUMNS = ("HVMonitor", "DetTemperature", "TECCurrent", "LV1Monitor", "LV2Monitor")
DAC_COLUMNS = ("LLDRefVoltage", "TECRefVoltage")
#: Raw integer fields copied unchanged (then cast to the column type).
RAW_COLUMNS = ("FrameNo", "SyncLW", "SyncUW", "EventCounter", "EventDetected", "RampCounter",
               "GuardBits", "Ch1Start", "Ch1Stop", "Ch2Start", "Ch2Stop", "Ch3Start", "Ch3Stop")
BIT_COLUMNS = ("IRPowerStatus", "FrameDiscardFlag", "StepModeDir", "PileupRejMode")

#: Stored ``MotorAutoTime`` value -> milliseconds (quirk Q05: 1000 is stored as 232).
MOTOR_AUTO_TIME_MS = {100: 100, 232: 1000}


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast int64 values to a FITS integer type the way a C cast does (two's-complement wrap)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        bits = 8 * dtype.itemsize
        return (np.asarray(values, dtype=np.int64) & ((1 << bits) - 1)).astype(
            np.dtype(f"u{dtype.itemsize}")).view(dtype)
    return np.asarray(values).astype(dtype)


def decode_hk_arrays(data, time=None, utc=None) -> np.ndarray:
    """The 38 housekeeping columns of frames ``data`` as a native structured array (``columns.HK``).

    ``time``/``utc`` fill ``Time``/``UTCString`` (zeros/blank when None).
    """
    f = fr.as_frames(data)
    n = len(f)
    spec = cols.HK
    out = np.zeros(n, dtype=spec.native_dtype)
    d = fr.decode_fields(f)
    if time is not None:
        out["Time"] = time
    if utc is not None:
        u = np.asarray(utc)
        out["UTCString"] = (np.char.encode(u, "ascii") if u.dtype.kind == "U" else u).astype("S30")
    out["FPGATime"] = d["FPGAClock"] * 1e-6
    for name in RAW_COLUMNS:
        out[name] = _cast(d[name], spec[name].native_dtype)
    for name in ADC_COLUMNS:
        out[name] = (d[name] * fr.MONITOR_ADC_GAIN).astype(np.float32)
    for name in DAC_COLUMNS:
        out[name] = (d[name] * fr.REFERENCE_DAC_GAIN).astype(np.float32)
    for name in fr.ENUMS:
        out[name] = d[name]
    for name in BIT_COLUMNS:
        out[name] = d[name]
    out["MotorAutoTime"] = _cast(np.where(d["MotorAutoTimeBit"] == 1, 1000, 100), np.uint8)  # Q05
    out["PileupRejTime"] = np.where(d["PileupRejTimeBit"] == 1, 10, 5)
    out["WindowLowerThresh"] = _cast(d["WindowLowerThresh"] * fr.WINDOW_LOWER_SCALE, np.int32)
    out["WindowUpperThresh"] = _cast(d["WindowUpperThresh"] * fr.WINDOW_UPPER_SCALE, np.int32)
    for name, v in fr.totals(f).items():
        out[name] = _cast(v, np.int32)
    return out


def decode_hk(day: Level1Day) -> Level1Table:
    """Housekeeping table of a level-1 day: all 38 columns, row-aligned with the science file.

    ``Time`` and ``UTCString`` are copied from the science rows; the header carries the
    science file's time keywords (``level1.md`` §6 rule 3), which :func:`write_hk` writes.
    """
    data = decode_hk_arrays(day.data, day.time, day.utc)
    header = fits.Header()
    for k in TIME_KEYWORDS:
        if k in day.header:
            header[k] = day.header[k]
    return Level1Table(data, header, None)


def motor_auto_time_ms(stored) -> np.ndarray:
    """Milliseconds of stored ``MotorAutoTime`` values (232 -> 1000, quirk Q05)."""
    s = np.asarray(stored).astype(np.int64)
    return np.where(s == 232, 1000, s)


def write_hk_for(l1file, out=None, *, overwrite: bool = False, mode=None):
    """Decode the housekeeping of a level-1 science file and write it (``xsm l1 hk``).

    Returns ``(path, rows)``. ``out`` defaults to the science file's sibling ``.hk``.
    """
    from pathlib import Path

    from xsm.products.fitsio import history_block
    from xsm.products.level1 import read_level1, write_hk
    from xsm.products.provenance import InputDigests, Mode, Provenance

    mode = mode or Mode.DEFAULT
    l1file = Path(l1file)
    day = read_level1(l1file)
    out = Path(out) if out else l1file.with_name(cols.sibling_name(l1file.name, "hk"))
    table = decode_hk(day)
    hist = history_block("XSM HKEXTRACT", [f"l1file = {l1file.name}", f"hkfile = {out.name}",
                                           f"clobber = {'yes' if overwrite else 'no'}"])
    path = write_hk(table, out, overwrite=overwrite, mode=mode, history=hist,
                    provenance=Provenance(step="hk", mode=mode, inputs=(l1file.name,)
                                          ).with_input_md5(InputDigests()([l1file])))
    return path, len(table)
