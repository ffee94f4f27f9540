"""The 2048-byte XSM frame ("PE data format V6"): layout, vectorised decoder, exact encoder.

Everything here follows ``spec/frame.md``. The layout is declared once, as two tables:

* :data:`FIELDS`: the multi-byte unsigned big-endian integer fields (name, byte offset,
  size in bytes), decoded to their **raw** integer values (ADC/DAC counts, microseconds,
  threshold bytes). Physical conversions (volts, seconds, ...) belong to the housekeeping
  decoder (:mod:`xsm.products.hk`), not here.
* :data:`BITS`: the single-bit status flags (name, byte, bit), ``frame.md`` §2.

Together with the 14-bit ``GuardBits`` (byte 54 and bits 7:2 of byte 55), the 100 ms coarse
block (bytes 56-115, :func:`coarse_words`) and the spectrum block (bytes 122-2047,
:func:`spectrum_words`), they cover every one of the 2048 bytes, so
``encode_frames(decode_fields(F), spectrum=spectrum_words(F), coarse=coarse_words(F))``
gives back ``F`` byte for byte, for any ``F`` (``tests/level1/test_frame.py``).

All decoding is vectorised over an ``(N, 2048)`` uint8 array (``frame.md`` §6): the 56
header bytes are copied once and viewed as big-endian 16-bit words; 32- and 48-bit fields are
assembled from those words; no per-frame Python loop.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Bytes in one XSM frame.
FRAME_SIZE = 2048

#: Monitor ADC gain, V/count (5 V over 12 bits), ``frame.md`` §1 [K].
MONITOR_ADC_GAIN = 0.00122070
#: Reference DAC gain, mV/count (5000 mV over 12 bits), ``frame.md`` §1 [K].
REFERENCE_DAC_GAIN = 1.22070
#: Window threshold scale factors (``frame.md`` §1): upper = byte x 1000, lower = byte x 100.
WINDOW_UPPER_SCALE = 1000
WINDOW_LOWER_SCALE = 100

#: Sync words written by the project's simulator [P] (``frame.md`` §1).
SIM_SYNC_UW = 0xEB90
SIM_SYNC_LW = 0x146F

#: First byte and number of the 100 ms coarse-block words (10 sub-frames x 3 bands).
COARSE_OFFSET = 56
N_SUBFRAMES = 10
N_BANDS = 3
#: Header end bytes (not decoded by the reference), ``frame.md`` §1.
HEADER_END_OFFSET = 116
#: First byte and number of 16-bit words of the spectrum block (``frame.md`` §4).
SPECTRUM_OFFSET = 122
N_SPECTRUM_WORDS = 963
#: Spectrum word holding the overflow sum (channels above the last recorded one, up to 1022).
OVERFLOW_WORD = 961
#: Spectrum word holding the ULD count (channel 1023, saturated events).
ULD_WORD = 962
#: Number of ordinary PHA channels recorded one by one (words 0 ... 960).
N_PHA_WORDS = 961


@dataclass(frozen=True)
class Field:
    """A multi-byte big-endian unsigned integer field of the frame."""

    name: str
    offset: int
    size: int  # bytes: 2, 4 or 6
    doc: str

    @property
    def max(self) -> int:
        return (1 << (8 * self.size)) - 1


@dataclass(frozen=True)
class Bit:
    """A one-bit status flag: bit ``bit`` (0 = LSB) of frame byte ``byte``."""

    name: str
    byte: int
    bit: int
    doc: str


#: Multi-byte fields, raw values (``frame.md`` §1). Names are the level-1 HK column names where
#: the HK column is this field (possibly converted); ``FPGAClock`` is the raw clock in µs
#: (HK ``FPGATime`` / science ``XSMTime`` = FPGAClock x 1e-6 s) and ``HeaderEnd`` the 6 header
#: end bytes as one 48-bit integer.
FIELDS: tuple[Field, ...] = (
    Field("SyncUW", 0, 2, "sync, upper word"),
    Field("SyncLW", 2, 2, "sync, lower word"),
    Field("FPGAClock", 4, 6, "XSM FPGA clock, µs (48 bit)"),
    Field("FrameNo", 10, 4, "frame (packet sequence) counter"),
    Field("EventCounter", 14, 4, "event trigger counter (slow counter)"),
    Field("EventDetected", 18, 4, "events detected"),
    Field("RampCounter", 22, 2, "ramp (reset) counter"),
    Field("HVMonitor", 24, 2, "HV monitor ADC counts"),
    Field("DetTemperature", 26, 2, "detector temperature monitor ADC counts"),
    Field("TECCurrent", 28, 2, "TEC current monitor ADC counts"),
    Field("LV1Monitor", 30, 2, "LV1 (+3.3 V) monitor ADC counts"),
    Field("LV2Monitor", 32, 2, "LV2 (+1.5 V) monitor ADC counts"),
    Field("Ch1Start", 34, 2, "coarse band 1 start channel"),
    Field("Ch1Stop", 36, 2, "coarse band 1 stop channel"),
    Field("Ch2Start", 38, 2, "coarse band 2 start channel"),
    Field("Ch2Stop", 40, 2, "coarse band 2 stop channel"),
    Field("Ch3Start", 42, 2, "coarse band 3 start channel"),
    Field("Ch3Stop", 44, 2, "coarse band 3 stop channel"),
    Field("LLDRefVoltage", 46, 2, "LLD reference DAC counts"),
    Field("TECRefVoltage", 48, 2, "TEC reference DAC counts"),
    Field("HeaderEnd", HEADER_END_OFFSET, 6, "header end bytes 116-121 (not decoded by the reference)"),
)

#: One-byte fields (raw bytes).
BYTE_FIELDS: tuple[Field, ...] = (
    Field("WindowUpperThresh", 50, 1, "window upper threshold byte (HK value = byte x 1000)"),
    Field("WindowLowerThresh", 51, 1, "window lower threshold byte (HK value = byte x 100)"),
)

#: Status bits (``frame.md`` §2).
BITS: tuple[Bit, ...] = (
    Bit("FrameDiscardFlag", 52, 0, "frame discard: filter-wheel mechanism moving"),
    Bit("IRPowerStatus", 52, 1, "IR sensor power: 0 on, 1 off"),
    Bit("ForceStepMode", 52, 2, "force-step mode"),
    Bit("StepModeDir", 52, 3, "step-mode direction: 0 clockwise, 1 anticlockwise"),
    Bit("IRPosCal", 52, 4, "IR-sensed position = CAL"),
    Bit("IRPosBe", 52, 5, "IR-sensed position = Be filter"),
    Bit("IRPosOpen", 52, 6, "IR-sensed position = OPEN"),
    Bit("IROperationMode", 52, 7, "IR operation mode"),
    Bit("ManualControlMode", 53, 0, "manual control mode"),
    Bit("AutoControlMode", 53, 1, "auto control mode"),
    Bit("SetPosCal", 53, 2, "commanded position = CAL"),
    Bit("SetPosBe", 53, 3, "commanded position = Be filter"),
    Bit("SetPosOpen", 53, 4, "commanded position = OPEN"),
    Bit("PileupRejMode", 53, 5, "pile-up rejection on"),
    Bit("PileupRejTimeBit", 53, 6, "pile-up rejection dead time: 0 -> 5 µs, 1 -> 10 µs"),
    Bit("MotorAutoTimeBit", 53, 7, "auto-movement decision time: 0 -> 100 ms, 1 -> 1000 ms"),
    Bit("CounterOperationMode", 55, 0, "counter operation mode"),
    Bit("StepOperationMode", 55, 1, "step operation mode"),
)

#: The 14-bit guard field: byte54 x 256 + (byte55 >> 2), ``frame.md`` §1; 0 expected.
GUARD_BITS = "GuardBits"
GUARD_BITS_MAX = (1 << 14) - 1

#: Value of a derived enum when its bits are inconsistent (``frame.md`` §2.1).
ENUM_INVALID = 5

#: Derived enums (``frame.md`` §2.1): for each, the bits meaning value 0, 1, 2 ("exactly one set").
#: ``MotorControlMode`` has a priority rule (force-step wins), handled in :func:`derive_enums`.
ENUMS: dict[str, tuple[str, str, str]] = {
    "MotorControlMode": ("AutoControlMode", "ManualControlMode", "ForceStepMode"),
    "MotorOperationMode": ("IROperationMode", "CounterOperationMode", "StepOperationMode"),
    "MotorSetPos": ("SetPosOpen", "SetPosCal", "SetPosBe"),
    "MotorIRPos": ("IRPosOpen", "IRPosCal", "IRPosBe"),
}

#: Readable names of the enum values.
ENUM_LABELS: dict[str, dict[int, str]] = {
    "MotorControlMode": {0: "auto", 1: "manual", 2: "force-step", 5: "invalid"},
    "MotorOperationMode": {0: "IR", 1: "counter", 2: "step", 5: "invalid"},
    "MotorSetPos": {0: "open", 1: "cal", 2: "Be", 5: "invalid"},
    "MotorIRPos": {0: "open", 1: "cal", 2: "Be", 5: "invalid"},
}

FIELD_NAMES = tuple(f.name for f in FIELDS + BYTE_FIELDS)
BIT_NAMES = tuple(b.name for b in BITS)
#: Every key :func:`decode_fields` returns, and :func:`encode_frames` accepts.
ALL_NAMES = FIELD_NAMES + BIT_NAMES + (GUARD_BITS,) + tuple(ENUMS)

_FIELD = {f.name: f for f in FIELDS + BYTE_FIELDS}
_BIT = {b.name: b for b in BITS}


def as_frames(data) -> np.ndarray:
    """``data`` as a C-contiguous ``(N, 2048)`` uint8 array (a single frame gives N = 1).

    Raises
    ------
    ValueError
        If the last axis is not 2048 bytes long.
    """
    a = np.asarray(data)
    if a.dtype != np.uint8:
        a = a.astype(np.uint8)
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2 or a.shape[1] != FRAME_SIZE:
        raise ValueError(f"frames must have shape (N, {FRAME_SIZE}), got {a.shape}")
    return a


def _header_words(f: np.ndarray) -> np.ndarray:
    """Bytes 0-55 of each frame as ``(N, 28)`` native uint32 (from big-endian 16-bit words)."""
    head = np.ascontiguousarray(f[:, :56])
    return head.view(">u2").astype(np.uint32)


def _field_from_words(w: np.ndarray, fld: Field) -> np.ndarray:
    k = fld.offset // 2
    if fld.size == 2:
        return w[:, k].astype(np.int64)
    if fld.size == 4:
        return (w[:, k].astype(np.int64) << 16) | w[:, k + 1]
    out = w[:, k].astype(np.int64) << 32
    out |= w[:, k + 1].astype(np.int64) << 16
    out |= w[:, k + 2]
    return out


def decode_fields(data) -> dict[str, np.ndarray]:
    """Decode every header field, status bit and derived enum of ``N`` frames.

    Parameters
    ----------
    data : array_like, uint8, shape (N, 2048)
        Raw XSM frames (level-1 ``DataArray``).

    Returns
    -------
    dict of str -> ndarray (N,)
        * every name of :data:`FIELDS` and :data:`BYTE_FIELDS`: raw unsigned value as int64
          (counts, µs, threshold bytes; no physical conversion);
        * every name of :data:`BITS`: 0/1 as uint8;
        * ``GuardBits``: byte54 x 256 + (byte55 >> 2) as int64;
        * the derived enums ``MotorControlMode``, ``MotorOperationMode``, ``MotorSetPos``,
          ``MotorIRPos`` as uint8 (:func:`derive_enums`).

    Notes
    -----
    ``frame.md`` §1, §2, §6. Vectorised: one copy of bytes 0-55, no per-frame loop.
    """
    f = as_frames(data)
    w = _header_words(f)
    out: dict[str, np.ndarray] = {}
    for fld in FIELDS:
        if fld.offset < 56:
            out[fld.name] = _field_from_words(w, fld)
    end = np.ascontiguousarray(f[:, HEADER_END_OFFSET:HEADER_END_OFFSET + 6]).view(">u2").astype(np.int64)
    out["HeaderEnd"] = (end[:, 0] << 32) | (end[:, 1] << 16) | end[:, 2]
    for fld in BYTE_FIELDS:
        out[fld.name] = f[:, fld.offset].astype(np.int64)
    for b in BITS:
        out[b.name] = (f[:, b.byte] >> b.bit) & np.uint8(1)
    out[GUARD_BITS] = (f[:, 54].astype(np.int64) << 6) | (f[:, 55] >> 2)
    out.update(derive_enums(out))
    return out


def derive_enums(bits: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The four derived motor/filter-wheel enums from the status bits (``frame.md`` §2.1).

    ``MotorControlMode``: force-step set -> 2 (wins); else auto only -> 0; manual only -> 1;
    else 5. The three others: exactly one of (value-0, value-1, value-2) bits set -> that
    value, else 5 (:data:`ENUM_INVALID`).
    """
    out: dict[str, np.ndarray] = {}
    for name, (b0, b1, b2) in ENUMS.items():
        x0 = np.asarray(bits[b0], dtype=np.uint8)
        x1 = np.asarray(bits[b1], dtype=np.uint8)
        x2 = np.asarray(bits[b2], dtype=np.uint8)
        if name == "MotorControlMode":
            val = np.where(x2 == 1, 2,
                           np.where((x0 == 1) & (x1 == 0), 0,
                                    np.where((x1 == 1) & (x0 == 0), 1, ENUM_INVALID)))
        else:
            n = x0.astype(np.int16) + x1 + x2
            val = np.where(n != 1, ENUM_INVALID, np.where(x0 == 1, 0, np.where(x1 == 1, 1, 2)))
        out[name] = val.astype(np.uint8)
    return out


def enum_bits(name: str, value) -> dict[str, np.ndarray]:
    """The status bits that encode derived-enum value(s) ``value`` of enum ``name``.

    The inverse of :func:`derive_enums` for the valid values 0, 1, 2 (exactly the one bit set);
    :data:`ENUM_INVALID` (5) gives all three bits clear (which decodes to 5 again). For the
    operation mode, no bit also decodes as 5.
    """
    if name not in ENUMS:
        raise KeyError(f"{name!r} is not a derived enum ({', '.join(ENUMS)})")
    v = np.asarray(value)
    bad = ~np.isin(v, (0, 1, 2, ENUM_INVALID))
    if np.any(bad):
        raise ValueError(f"{name}: values must be 0, 1, 2 or 5, got {np.unique(v[bad])}")
    return {b: (v == i).astype(np.uint8) for i, b in enumerate(ENUMS[name])}


def spectrum_view(data) -> np.ndarray:
    """The spectrum block as a zero-copy ``(N, 963)`` big-endian uint16 view (``frame.md`` §4).

    Use it for sums with ``dtype=np.int64`` without materialising an int64 copy of a day.
    """
    f = as_frames(data)
    return f[:, SPECTRUM_OFFSET:].view(">u2")


def rows_of(words: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``words[rows]`` for ascending frame indices ``rows``: a view when they are one run of
    frames (one GTI interval), else a copy (a day's words may be a memory map)."""
    if rows.size and int(rows[-1]) - int(rows[0]) == rows.size - 1:
        return words[int(rows[0]):int(rows[-1]) + 1]
    return np.asarray(words[rows])


def spectrum_words(data, dtype=np.int64) -> np.ndarray:
    """The 963 spectrum words of each frame, ``(N, 963)`` (``frame.md`` §4).

    Word ``k`` is at bytes ``122 + 2k``, ``123 + 2k``:

    * words 0 ... 960: counts in PHA channel k (10-bit ADC channel);
    * word 961 (:data:`OVERFLOW_WORD`): **overflow**, the total counts of the channels above the
      last individually recorded one, up to channel 1022;
    * word 962 (:data:`ULD_WORD`): **ULD**, counts in channel 1023 (saturated events).

    The reference puts these words into a 1024-channel PHA array by word index, so in its
    products "PHA channel 961" is the overflow and "962" the ULD (quirk Q10); use
    :func:`pha_array` for that layout.
    """
    return spectrum_view(data).astype(dtype)


def pha_array(data, dtype=np.int64) -> np.ndarray:
    """The reference's 1024-channel PHA array: ``spec[k] = word k`` (k <= 962), zeros above."""
    words = spectrum_view(data)
    out = np.zeros((words.shape[0], 1024), dtype=dtype)
    out[:, :N_SPECTRUM_WORDS] = words
    return out


def coarse_words(data, dtype=np.int64) -> np.ndarray:
    """The 100 ms coarse light-curve counts, ``(N, 10, 3)``: ``[:, j, b - 1]`` = sub-frame j, band b.

    Follows ``frame.md`` §3: the count of band b (1, 2, 3) in sub-frame j (0 ... 9) is the
    big-endian 16-bit word at byte ``56 + 6 j + 2 (b - 1)``, i.e. the block is stored
    sub-frame-major (j outer, band inner), which is exactly a C-order reshape to (10, 3).
    Sub-frame j covers the 100 ms starting at the frame time + 0.1 j s. Band b counts
    events with PHA channel in [ChbStart, ChbStop] of the same frame.
    """
    f = as_frames(data)
    block = f[:, COARSE_OFFSET:COARSE_OFFSET + 2 * N_SUBFRAMES * N_BANDS].view(">u2")
    return block.reshape(-1, N_SUBFRAMES, N_BANDS).astype(dtype)


def totals(data) -> dict[str, np.ndarray]:
    """``SpecEvents`` (sum of words 0-962), ``ULDEvents`` (word 962), ``CoarseChEvents``
    (sum of the 30 coarse words), int64 (``frame.md`` §4)."""
    f = as_frames(data)
    spec = spectrum_view(f)
    coarse = f[:, COARSE_OFFSET:COARSE_OFFSET + 60].view(">u2")
    return {
        "CoarseChEvents": coarse.sum(axis=1, dtype=np.int64),
        "SpecEvents": spec.sum(axis=1, dtype=np.int64),
        "ULDEvents": spec[:, ULD_WORD].astype(np.int64),
    }


def _column(values, n: int, name: str, vmax: int) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim == 0:
        a = np.full(n, a)
    if a.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {a.shape}")
    a = a.astype(np.int64) if a.dtype.kind in "biuf" else a
    if a.dtype.kind == "f":
        raise ValueError(f"{name}: integer values expected")
    if np.any(a < 0) or np.any(a > vmax):
        raise ValueError(f"{name}: values must lie in 0 ... {vmax}")
    return a


def _put(out: np.ndarray, offset: int, size: int, values: np.ndarray) -> None:
    v = values.astype(np.uint64)
    for i in range(size):  # loop over the <= 6 bytes of a field, not over frames
        out[:, offset + i] = (v >> np.uint64(8 * (size - 1 - i))) & np.uint64(0xFF)


def encode_frames(fields: Mapping[str, object] | None = None, *, spectrum=None, coarse=None,
                  n: int | None = None) -> np.ndarray:
    """Build ``N`` raw frames, the exact inverse of :func:`decode_fields`, :func:`spectrum_words`
    and :func:`coarse_words`.

    Parameters
    ----------
    fields : mapping of name -> int or array (N,), optional
        Any key of :data:`ALL_NAMES`: raw field values (:data:`FIELDS`, :data:`BYTE_FIELDS`),
        status bits (:data:`BITS`), ``GuardBits``, or derived enums (``MotorIRPos`` ...). An
        enum is first turned into its bits (:func:`enum_bits`); bits given explicitly win over
        the enum's. Missing names are 0. Scalars are broadcast.
    spectrum : array_like (N, 963), optional
        Spectrum words (0 ... 65535); default zeros.
    coarse : array_like (N, 10, 3), optional
        Coarse counts ``[frame, sub-frame j, band b - 1]``; default zeros.
    n : int, optional
        Number of frames when it cannot be inferred from the arrays.

    Returns
    -------
    ndarray, uint8, shape (N, 2048)

    Raises
    ------
    KeyError
        For an unknown field name.
    ValueError
        For a value out of range or an inconsistent shape.
    """
    fields = dict(fields or {})
    unknown = [k for k in fields if k not in ALL_NAMES]
    if unknown:
        raise KeyError(f"unknown frame field(s): {', '.join(unknown)}")
    if n is None:
        for v in list(fields.values()) + [spectrum, coarse]:
            if v is not None and np.ndim(v) >= 1:
                n = len(v)
                break
        else:
            n = 1
    out = np.zeros((n, FRAME_SIZE), dtype=np.uint8)
    bits: dict[str, object] = {}
    for name in ENUMS:
        if name in fields:
            bits.update(enum_bits(name, np.broadcast_to(np.asarray(fields[name]), (n,))))
    bits.update({k: v for k, v in fields.items() if k in _BIT})
    for name, value in fields.items():
        if name in _FIELD:
            fld = _FIELD[name]
            _put(out, fld.offset, fld.size, _column(value, n, name, fld.max))
    for name, value in bits.items():
        b = _BIT[name]
        out[:, b.byte] |= (_column(value, n, name, 1).astype(np.uint8) << b.bit)
    if GUARD_BITS in fields:
        g = _column(fields[GUARD_BITS], n, GUARD_BITS, GUARD_BITS_MAX)
        out[:, 54] = (g >> 6).astype(np.uint8)
        out[:, 55] |= ((g & 0x3F) << 2).astype(np.uint8)
    if spectrum is not None:
        s = np.asarray(spectrum)
        if s.shape != (n, N_SPECTRUM_WORDS):
            raise ValueError(f"spectrum: expected shape ({n}, {N_SPECTRUM_WORDS}), got {s.shape}")
        if s.size and (s.min() < 0 or s.max() > 0xFFFF):
            raise ValueError("spectrum: words must lie in 0 ... 65535")
        out[:, SPECTRUM_OFFSET:] = s.astype(">u2").view(np.uint8).reshape(n, 2 * N_SPECTRUM_WORDS)
    if coarse is not None:
        c = np.asarray(coarse)
        if c.shape != (n, N_SUBFRAMES, N_BANDS):
            raise ValueError(f"coarse: expected shape ({n}, {N_SUBFRAMES}, {N_BANDS}), got {c.shape}")
        if c.size and (c.min() < 0 or c.max() > 0xFFFF):
            raise ValueError("coarse: words must lie in 0 ... 65535")
        out[:, COARSE_OFFSET:COARSE_OFFSET + 60] = c.astype(">u2").reshape(n, 30).view(np.uint8)
    return out


def split_frames(data) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """``(decode_fields(F), spectrum_words(F), coarse_words(F))``: everything in a frame.

    ``encode_frames(f, spectrum=s, coarse=c)`` of the result gives ``F`` back exactly.
    """
    f = as_frames(data)
    return decode_fields(f), spectrum_words(f), coarse_words(f)


def xsm_time(data) -> np.ndarray:
    """XSM FPGA clock of each frame in seconds (bytes 4-9 x 1e-6), float64."""
    f = as_frames(data)
    w = _header_words(f)
    return _field_from_words(w, _FIELD["FPGAClock"]) * 1e-6


def frame_number(data) -> np.ndarray:
    """Frame counter (bytes 10-13), unsigned value as int64."""
    f = as_frames(data)
    w = _header_words(f)
    return _field_from_words(w, _FIELD["FrameNo"])


def synthetic_frames(n: int, *, seed: int = 0, first_frame_no: int = 1, clock_start_us: int = 1_000_000,
                     rate: float = 800.0) -> np.ndarray:
    """``n`` simple, deterministic synthetic frames (for the demo and tests; not a physical model).

    A Poisson spectrum of a falling power law times a soft threshold (``rate`` count/s on
    average), coarse bands (PHA 40-183, 184-490, 491-962) split over the 10 sub-frames with a
    multinomial so they sum to the band totals, nominal housekeeping (HV on, IR mode, auto
    control, wheel open, pile-up rejection 5 µs), consecutive frame numbers and a 1 s clock.
    The simulator (``xsm.products.simulate``) makes physically realistic days.
    """
    rng = np.random.default_rng(seed)
    ch = np.arange(N_SPECTRUM_WORDS, dtype=np.float64)
    shape = (1 + ch / 60.0) ** -3.0 / (1 + np.exp(-(ch - 55.0) / 4.0))
    shape[OVERFLOW_WORD] = shape[900:961].sum() * 0.2
    shape[ULD_WORD] = shape.sum() * 1e-3
    shape /= shape.sum()
    spec = rng.poisson(rate * shape, size=(n, N_SPECTRUM_WORDS))
    bands = ((40, 183), (184, 490), (491, 962))
    coarse = np.zeros((n, N_SUBFRAMES, N_BANDS), np.int64)
    for b, (lo, hi) in enumerate(bands):
        tot = spec[:, lo:hi + 1].sum(axis=1)
        coarse[:, :, b] = rng.multinomial(tot, np.full(N_SUBFRAMES, 1 / N_SUBFRAMES))
    events = spec.sum(axis=1)
    fields = {
        "SyncUW": SIM_SYNC_UW, "SyncLW": SIM_SYNC_LW,
        "FPGAClock": clock_start_us + 1_000_000 * np.arange(n, dtype=np.int64),
        "FrameNo": (first_frame_no + np.arange(n, dtype=np.int64)) % (1 << 32),
        "EventCounter": events + rng.poisson(3, n), "EventDetected": events,
        "RampCounter": (np.arange(n) * 7) % 65536,
        "HVMonitor": 1640, "DetTemperature": 1620, "TECCurrent": 950, "LV1Monitor": 2703,
        "LV2Monitor": 1229, "LLDRefVoltage": 120, "TECRefVoltage": 1500,
        "Ch1Start": bands[0][0], "Ch1Stop": bands[0][1], "Ch2Start": bands[1][0], "Ch2Stop": bands[1][1],
        "Ch3Start": bands[2][0], "Ch3Stop": bands[2][1],
        "WindowUpperThresh": 30, "WindowLowerThresh": 15,
        "MotorControlMode": 0, "MotorOperationMode": 0, "MotorSetPos": 0, "MotorIRPos": 0,
        "PileupRejMode": 1,
    }
    return encode_frames(fields, spectrum=spec, coarse=coarse, n=n)
