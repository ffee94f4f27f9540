"""Level 0: the project's 2120-byte records, ``.pld`` files, session packages, and the ingest to
day-wise level-1 frames (``spec/level0.md``; frame content in ``frame.md``).

Layers
------
* **Records** (§1): :data:`REC_DTYPE` declares the record layout once (a numpy structured
  dtype over the 2120 bytes); :func:`encode_records` writes records (vectorised, with the
  CRC-32), :func:`crc32_rows` is a table-driven CRC-32 over ``(N, L)`` arrays (slicing by 16
  bytes with 16-bit tables, one numpy step per 16 bytes for all records at once).
* **Files** (§2, §3): :func:`locate_records` finds records in a byte buffer with
  resynchronisation (vectorised: aligned runs are taken whole; only the resync points are
  scanned); :func:`read_session` opens a ``.tar``/``.tar.gz`` package, checks its manifest
  (size, md5) and reads every ``.pld`` segment from memory. :func:`write_pld` /
  :func:`write_session` are the writers (tests, simulator).
* **Decoders** (§5): :class:`Decoder` subclasses register themselves (sunpy style,
  ``__init_subclass__``); :func:`decoder_for` asks each ``is_datasource_for`` in registration
  order. :class:`XsmL0V1Decoder` (``xsm-l0-v1``) reads this project's layout.
* **Ingest** (§4): :func:`ingest` rejects, deduplicates, orders, repairs time tags (§4.1),
  guards against outliers, splits into UTC days and sets DecodingStatusFlag
  (``level1.md`` §5); :func:`build_level1` writes the day files (science + housekeeping).

No per-record Python loop: a file is one ``uint8`` array (``np.frombuffer``); the only
Python loops run over resynchronisation points, byte blocks of the CRC, and the candidate
positions of the time-tag repair rule.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from xsm.products import columns as cols
from xsm.products import frame as fr
from xsm.products.errors import InputFormatError, ParameterError
from xsm.products.fitsio import atomic_path, history_block
from xsm.products.met import EPOCH, IST_OFFSET_S, SECONDS_PER_DAY, met_to_utc_string, utc_string_from_ns
from xsm.products.parallel import map_threads
from xsm.products.provenance import InputDigests, Mode, Provenance, file_md5, in_background, stream_digests

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# §1 The 2120-byte record
# --------------------------------------------------------------------------------------------
RECORD_SIZE = 2120
HEADER_SIZE = 60
TRAILER_SIZE = 12
CRC_SPAN = HEADER_SIZE + fr.FRAME_SIZE  # bytes 0-2107 are covered by the CRC
SYNC = 0x1ACFFC1D
SYNC_BYTES = SYNC.to_bytes(4, "big")
END_MARK = 0x58454E44  # "XEND"
FMT_VERSION = 1
PAYLOAD_ID = 0x5853  # "XS"

#: FLAGS bits (§1.1).
FLAG_TIME_IST = 1
FLAG_UTC_VALID = 2
FLAG_DH_VALID = 4
FLAG_SIMULATED = 8

#: The record layout (§1.1-1.3): name -> (numpy big-endian type, byte offset).
RECORD_FIELDS: dict[str, tuple[str | tuple, int]] = {
    "SYNC": (">u4", 0),
    "FMT_VERSION": ("u1", 4),
    "FLAGS": ("u1", 5),
    "HDR_LEN": (">u2", 6),
    "FRAME_LEN": (">u2", 8),
    "TRL_LEN": (">u2", 10),
    "REC_COUNT": (">u4", 12),
    "DH_SEQ": (">u4", 16),
    "PAYLOAD_ID": (">u2", 20),
    "STATION_ID": (">u2", 22),
    "DH_TIME": (">u8", 24),
    "UTC_YEAR": (">u2", 32),
    "UTC_MONTH": ("u1", 34),
    "UTC_DAY": ("u1", 35),
    "UTC_HOUR": ("u1", 36),
    "UTC_MINUTE": ("u1", 37),
    "UTC_SECOND": ("u1", 38),
    "UTC_NANOSEC": (">u4", 40),
    "ORBIT": (">u4", 44),
    "FRAME": (("u1", (fr.FRAME_SIZE,)), HEADER_SIZE),
    "CRC32": (">u4", 2108),
    "REC_COUNT2": (">u4", 2112),
    "END_MARK": (">u4", 2116),
}
REC_DTYPE = np.dtype({"names": list(RECORD_FIELDS), "formats": [v[0] for v in RECORD_FIELDS.values()],
                      "offsets": [v[1] for v in RECORD_FIELDS.values()], "itemsize": RECORD_SIZE})

# --------------------------------------------------------------------------------------------
# CRC-32/ISO-HDLC, vectorised over rows
# --------------------------------------------------------------------------------------------
_CRC_POLY = 0xEDB88320
_crc_cache: dict[int, np.ndarray] = {}


def _byte_table() -> np.ndarray:
    if 1 not in _crc_cache:
        t = np.arange(256, dtype=np.uint32)
        for _ in range(8):
            t = np.where(t & 1, (t >> 1) ^ np.uint32(_CRC_POLY), t >> 1).astype(np.uint32)
        _crc_cache[1] = t
    return _crc_cache[1]


def _block_tables(k: int) -> np.ndarray:
    """Tables (k/2, 65536): contribution of the 16-bit value at half-word i of a k-byte block."""
    if k not in _crc_cache:
        t8 = _byte_table()
        v = np.arange(65536, dtype=np.uint32)
        tabs = np.empty((k // 2, 65536), np.uint32)
        for i in range(k // 2):
            reg = np.zeros(65536, np.uint32)
            for pos in range(2 * i, k):
                b = (v & 0xFF) if pos == 2 * i else (v >> 8) if pos == 2 * i + 1 else 0
                reg = t8[(reg ^ b) & 0xFF] ^ (reg >> 8)
            tabs[i] = reg
        _crc_cache[k] = tabs
    return _crc_cache[k]


def crc32_rows(rows: np.ndarray, length: int | None = None, *, chunk: int = 1 << 14,
               threads: int = 2) -> np.ndarray:
    """CRC-32/ISO-HDLC (``zlib.crc32``) of the first ``length`` bytes of every row, vectorised.

    Parameters
    ----------
    rows : ndarray uint8 (N, L)
    length : int, optional
        Bytes per row to cover (default all).

    Returns
    -------
    ndarray uint32 (N,)

    Notes
    -----
    Table-driven, slicing by 16 bytes: the register is linear in the data, so the effect of a
    16-byte block is the XOR of eight 65536-entry tables indexed by its 16-bit half-words.
    Rows are processed in chunks, transposed so that each half-word column is contiguous.
    """
    rows = np.asarray(rows, dtype=np.uint8)
    n, width = rows.shape
    length = width if length is None else length
    if length > width:
        raise ValueError("crc32_rows: length must be <= the row width")
    if length % 2:  # an odd last byte goes through the byte table
        t8 = _byte_table()
        crc = crc32_rows(rows, length - 1, chunk=chunk, threads=threads) ^ np.uint32(0xFFFFFFFF)
        crc = t8[(crc ^ rows[:, length - 1]) & 0xFF] ^ (crc >> 8)
        return crc ^ np.uint32(0xFFFFFFFF)
    out = np.empty(n, np.uint32)
    if length == 0:
        out[:] = 0
        return out
    nblk, rem = divmod(length, 16)
    if rem and rem < 4:  # too short for a half-word block: finish byte by byte
        t8 = _byte_table()
        crc = crc32_rows(rows, length - rem, chunk=chunk, threads=threads) ^ np.uint32(0xFFFFFFFF)
        for k in range(length - rem, length):
            crc = t8[(crc ^ rows[:, k]) & 0xFF] ^ (crc >> 8)
        return crc ^ np.uint32(0xFFFFFFFF)
    t16 = _block_tables(16)
    trem = _block_tables(rem) if rem else None
    wpad = -(-length // 8) * 8  # row bytes rounded up to 8: transposed as uint64 words

    def one(a: int) -> None:
        part = rows[a:a + chunk]
        m = part.shape[0]
        if width == wpad and part.flags.c_contiguous:
            words = part.view("<u8")
        else:
            tmp = np.zeros((m, wpad), np.uint8)
            tmp[:, :length] = part[:, :length]
            words = tmp.view("<u8")
        w = np.ascontiguousarray(words[:, : wpad // 8].T)  # (wpad/8, m): 8-byte columns
        h = w.view(np.uint16).reshape(w.shape[0], m, 4)  # half-word k of column j: h[j, :, k]
        w32 = w.view(np.uint32).reshape(w.shape[0], m, 2)
        crc = np.full(m, 0xFFFFFFFF, np.uint32)
        for j in range(nblk + (1 if rem else 0)):
            tabs = t16 if j < nblk else trem
            x = crc ^ w32[2 * j, :, 0]
            acc = tabs[0][x & 0xFFFF]
            acc ^= tabs[1][x >> 16]
            for i in range(2, tabs.shape[0]):
                q, r = divmod(i, 4)
                acc ^= tabs[i][h[2 * j + q, :, r]]
            crc = acc
        out[a:a + m] = crc ^ np.uint32(0xFFFFFFFF)

    # numpy releases the GIL in the table lookups and XORs
    map_threads(one, range(0, n, chunk), threads)
    return out


# --------------------------------------------------------------------------------------------
# Writing records, .pld files and session packages (tests and simulator)
# --------------------------------------------------------------------------------------------
def utc_fields_from_ns(utc_ns) -> dict[str, np.ndarray]:
    """Calendar fields (year ... nanosec) of times given as int64 ns since the MET epoch."""
    t = EPOCH + np.asarray(utc_ns, dtype=np.int64).astype("timedelta64[ns]")
    y = t.astype("datetime64[Y]")
    mo = t.astype("datetime64[M]")
    d = t.astype("datetime64[D]")
    sod = (t - d).astype(np.int64)
    return {"UTC_YEAR": y.astype(np.int64) + 1970, "UTC_MONTH": (mo - y).astype(np.int64) + 1,
            "UTC_DAY": (d - mo).astype(np.int64) + 1, "UTC_HOUR": sod // 3_600_000_000_000,
            "UTC_MINUTE": sod // 60_000_000_000 % 60, "UTC_SECOND": sod // 1_000_000_000 % 60,
            "UTC_NANOSEC": sod % 1_000_000_000}


def met_to_ns(met) -> np.ndarray:
    """int64 ns since the MET epoch of MET values (rounded to the nearest ns)."""
    met = np.asarray(met, dtype=np.float64)
    whole = np.floor(met)
    return whole.astype(np.int64) * 1_000_000_000 + np.rint((met - whole) * 1e9).astype(np.int64)


def encode_records(frames, met=None, *, utc_ns=None, dh_time_us=None, dh_seq=None, ist: bool | np.ndarray = False,
                   utc_valid: bool | np.ndarray = True, leap_second=None, orbit: int = 0,
                   station_id: int = 0, simulated: bool = False, rec_count=None) -> np.ndarray:
    """Level-0 records ``(N, 2120)`` uint8 (§1) around frames, with a valid CRC-32.

    Parameters
    ----------
    frames : ndarray uint8 (N, 2048)
    met : array (N,), optional
        UTC time tags as MET (s); or give ``utc_ns`` (int64 ns since the epoch, exact).
    dh_time_us : array (N,), optional
        DH clock, µs (default: round(met x 1e6)); ``FLAGS.DH_VALID`` is set when given or derived.
    dh_seq : array (N,), optional
        DH packet sequence count (default 0, 1, ...), stored modulo 2**32.
    ist : bool or array
        Store the tag in IST (UTC + 5:30) and set ``TIME_IST``.
    utc_valid : bool or array
        ``UTC_VALID`` flag; records with False carry zero time fields.
    leap_second : array of bool, optional
        Write these records' tags as second 60 of the previous minute (an inserted leap
        second): their ``utc_ns`` must be the following 00 s instant.
    orbit, station_id : int
    simulated : bool
        Set the ``SIMULATED`` flag.
    rec_count : array (N,), optional
        ``REC_COUNT`` (default 0, 1, ...); ``REC_COUNT2`` is the same.
    """
    frames = fr.as_frames(frames)
    n = len(frames)
    if utc_ns is None:
        if met is None:
            raise ValueError("encode_records: give met or utc_ns")
        utc_ns = met_to_ns(met)
    utc_ns = np.broadcast_to(np.asarray(utc_ns, dtype=np.int64), (n,))
    ist = np.broadcast_to(np.asarray(ist, dtype=bool), (n,))
    valid = np.broadcast_to(np.asarray(utc_valid, dtype=bool), (n,))
    tag_ns = utc_ns + np.where(ist, int(IST_OFFSET_S) * 1_000_000_000, 0)
    leap = np.zeros(n, bool) if leap_second is None else np.broadcast_to(np.asarray(leap_second, bool), (n,))
    tag_ns = tag_ns - np.where(leap, 1_000_000_000, 0)
    f = utc_fields_from_ns(tag_ns)
    f["UTC_SECOND"] = np.where(leap, 60, f["UTC_SECOND"])
    if dh_time_us is None:
        dh_time_us = (utc_ns + 500) // 1000
    rec = np.zeros(n, dtype=REC_DTYPE)
    rec["SYNC"] = SYNC
    rec["FMT_VERSION"] = FMT_VERSION
    rec["FLAGS"] = (np.where(ist, FLAG_TIME_IST, 0) | np.where(valid, FLAG_UTC_VALID, 0)
                    | FLAG_DH_VALID | (FLAG_SIMULATED if simulated else 0))
    rec["HDR_LEN"], rec["FRAME_LEN"], rec["TRL_LEN"] = HEADER_SIZE, fr.FRAME_SIZE, TRAILER_SIZE
    count = np.arange(n, dtype=np.int64) if rec_count is None else np.asarray(rec_count, np.int64)
    rec["REC_COUNT"] = count % (1 << 32)
    rec["REC_COUNT2"] = count % (1 << 32)
    rec["DH_SEQ"] = (np.arange(n) if dh_seq is None else np.asarray(dh_seq, np.int64)) % (1 << 32)
    rec["PAYLOAD_ID"] = PAYLOAD_ID
    rec["STATION_ID"] = station_id
    rec["DH_TIME"] = np.asarray(dh_time_us, dtype=np.int64)
    for k, v in f.items():
        rec[k] = np.where(valid, v, 0)
    rec["ORBIT"] = orbit
    rec["FRAME"] = frames
    rec["END_MARK"] = END_MARK
    raw = rec.view(np.uint8).reshape(n, RECORD_SIZE)
    rec["CRC32"] = crc32_rows(raw, CRC_SPAN)
    return raw


#: Member-name suffixes of a segment's SPICE kernels in a session package (§3.2):
#: ``<SID>_<SS>`` + suffix.
SESSION_KERNEL_SUFFIX = {"spk": "_sv.bsp", "ck": "_qib.bc", "sclk": "_sclk.tsc"}


def write_pld(path: str | Path, records: np.ndarray | Iterable[np.ndarray], *, overwrite: bool = True) -> Path:
    """Write a ``.pld`` file: the plain concatenation of records (§2), atomically."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ParameterError(f"{path}: exists already")
    parts = [records] if isinstance(records, np.ndarray) else list(records)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for p in parts:
            np.ascontiguousarray(p, dtype=np.uint8).tofile(f)
    return path


def session_id(first_met: float, *, station: str = "G26", orbit: int = 0, pass_index: int = 0) -> str:
    """The 36-character session identifier (§3.1) from the first record's UTC tag (MET)."""
    ns = int(met_to_ns(first_met))
    t = (EPOCH + np.timedelta64(ns, "ns")).astype("datetime64[ms]").item()
    if len(station) != 3:
        raise ParameterError(f"station code {station!r}: 3 characters expected")
    sid = (f"XSM01{station}CHO{orbit % 100000:05d}{pass_index % 100:02d}NNNN"
           f"{t:%y}{t.timetuple().tm_yday:03d}{t:%H%M%S}{t.microsecond // 1000:03d}")
    assert len(sid) == 36
    return sid


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()




def write_session(out_dir: str | Path, sid: str, segments: Sequence[np.ndarray | bytes | Path],
                  kernels: Mapping[int, Mapping[str, Path | bytes]] | None = None, *,
                  gzip: bool = False, trigger: bool = True) -> Path:
    """Write a session package ``<SID>.tar[.gz]`` (§3.2) and its ``<SID>.trg`` trigger.

    Parameters
    ----------
    segments : sequence
        Per segment ``SS`` = 00, 01, ...: records (N, 2120) array, raw bytes, or a ``.pld`` path.
    kernels : mapping, optional
        Segment index -> {"spk"|"ck"|"sclk": path or bytes}, stored as ``<SID>_<SS>_sv.bsp``,
        ``_qib.bc``, ``_sclk.tsc``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[tuple[str, bytes, str, str]] = []
    for i, seg in enumerate(segments):
        ss = f"{i:02d}"
        if isinstance(seg, np.ndarray):
            data = np.ascontiguousarray(seg, dtype=np.uint8).tobytes()
        elif isinstance(seg, (bytes, bytearray)):
            data = bytes(seg)
        else:
            data = Path(seg).read_bytes()
        files.append((f"{sid}_{ss}.pld", data, ss, "pld"))
        for kind, src in (kernels or {}).get(i, {}).items():
            kb = src if isinstance(src, (bytes, bytearray)) else Path(src).read_bytes()
            files.append((f"{sid}_{ss}{SESSION_KERNEL_SUFFIX[kind]}", bytes(kb), ss, kind))
    manifest = "".join(f"{n},{len(b)},{_md5(b)},{ss},{k}\r\n" for n, b, ss, k in files).encode()
    files.append((f"{sid}_manifest.csv", manifest, "", "manifest"))
    pkg = out_dir / f"{sid}.tar{'.gz' if gzip else ''}"
    with atomic_path(pkg) as tmp:
        with tarfile.open(tmp, "w:gz" if gzip else "w", format=tarfile.PAX_FORMAT) as tar:
            for name, data, _, _ in files:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    if trigger:
        # the trigger announces a complete package: written after it, itself atomically
        with atomic_path(out_dir / f"{sid}.trg") as tmp:
            tmp.write_text(f"size={pkg.stat().st_size}\nmd5={file_md5(pkg)}\n")
    return pkg


# --------------------------------------------------------------------------------------------
# §2 Locating records in a byte buffer (resynchronisation)
# --------------------------------------------------------------------------------------------
@dataclass
class Located:
    """Records found in a buffer: their start offsets and the counters of §2."""

    starts: np.ndarray  # int64 byte offsets of full records (SYNC at each)
    n_bad_sync: int = 0  # times the expected offset failed the SYNC check
    n_bytes_skipped: int = 0
    n_truncated: int = 0


def _sync_positions(buf: np.ndarray) -> np.ndarray:
    """Every offset where the 4 SYNC bytes start (first-byte candidates, then filtered)."""
    if len(buf) < 4:
        return np.zeros(0, np.int64)
    b = SYNC_BYTES
    c = np.flatnonzero(buf[:-3] == b[0])
    for k in (1, 2, 3):
        c = c[buf[c + k] == b[k]]
    return c.astype(np.int64)


def _has_sync(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """SYNC at each of the offsets ``pos`` (all with pos + 4 <= len(buf))."""
    ok = np.ones(len(pos), bool)
    for k in range(4):
        ok &= buf[pos + k] == SYNC_BYTES[k]
    return ok


def _crc_ok_at(buf: np.ndarray, pos: int) -> bool:
    rec = buf[pos:pos + RECORD_SIZE]
    if len(rec) < RECORD_SIZE:
        return False
    return zlib.crc32(rec[:CRC_SPAN].tobytes()) == int.from_bytes(rec[2108:2112].tobytes(), "big")


def locate_records(buf: np.ndarray) -> Located:
    """Find the records of a ``.pld`` byte buffer, resynchronising after lost sync (§2).

    Runs of records at 2120-byte spacing with SYNC at each are taken whole (vectorised). When
    the expected offset lacks SYNC, the scan moves forward to the next offset where SYNC
    matches **and** the CRC of the 2108 following bytes validates; after a record with a bad
    CRC the scan starts inside that record (so a record shortened by lost bytes does not
    hide its successor). Bytes belonging to no record are counted in ``n_bytes_skipped``; a
    trailing partial record (SYNC without room for a whole record) in ``n_truncated``.
    """
    n = len(buf)
    _sync: list[np.ndarray] = []

    def sync_list() -> np.ndarray:  # the global scan, only when a resync is needed
        if not _sync:
            _sync.append(_sync_positions(buf))
        return _sync[0]

    def is_sync(pos: int) -> bool:
        return pos + 4 <= n and bytes(buf[pos:pos + 4]) == SYNC_BYTES

    loc = Located(np.zeros(0, np.int64))
    runs: list[np.ndarray] = []

    def tail(covered: int) -> None:
        """Account for the bytes from ``covered`` to the end, which hold no whole good record."""
        sync = sync_list()
        c = sync[np.searchsorted(sync, covered):]
        c = c[c + RECORD_SIZE > n]
        if len(c):
            loc.n_truncated += 1
            loc.n_bytes_skipped += int(c[0]) - covered
        else:
            loc.n_bytes_skipped += n - covered

    pos, covered = 0, 0
    while pos < n:
        if pos + RECORD_SIZE > n:
            tail(pos)
            break
        if not is_sync(pos):
            loc.n_bad_sync += 1
            scan_from = pos
        else:
            kmax = (n - pos) // RECORD_SIZE
            chain = pos + RECORD_SIZE * np.arange(kmax, dtype=np.int64)
            ok = _has_sync(buf, chain)
            k = kmax if ok.all() else int(np.argmin(ok))
            runs.append(chain[:k])
            last = int(chain[k - 1])
            pos = covered = last + RECORD_SIZE
            if pos >= n:
                break
            if k == kmax:
                tail(pos)
                break
            loc.n_bad_sync += 1
            scan_from = pos if _crc_ok_at(buf, last) else last + 1
        # resynchronise: the next SYNC at or after scan_from whose CRC validates
        found = None
        sync = sync_list()
        for c in sync[np.searchsorted(sync, scan_from):]:
            c = int(c)
            if c + RECORD_SIZE > n:
                break
            if _crc_ok_at(buf, c):
                found = c
                break
        if found is None:
            tail(covered)
            break
        loc.n_bytes_skipped += max(0, found - covered)
        pos = found
    loc.starts = np.concatenate(runs) if runs else np.zeros(0, np.int64)
    return loc


def _gather(buf: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Records at ``starts`` as an (N, 2120) array: zero copy for one aligned run, else one
    concatenation of the contiguous runs."""
    if not len(starts):
        return np.zeros((0, RECORD_SIZE), np.uint8)
    brk = np.flatnonzero(np.diff(starts) != RECORD_SIZE) + 1
    bounds = np.concatenate([[0], brk, [len(starts)]])
    parts = [buf[int(starts[a]): int(starts[a]) + (b - a) * RECORD_SIZE].reshape(-1, RECORD_SIZE)
             for a, b in zip(bounds[:-1], bounds[1:])]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


# --------------------------------------------------------------------------------------------
# §5 Decoder interface
# --------------------------------------------------------------------------------------------
#: QA counters of §4.3 (the orbit-wise table's columns), in order.
QA_COUNTERS = ("n_records_total", "n_valid", "n_bad_sync", "n_bad_crc", "n_truncated", "n_bytes_skipped",
               "n_no_time", "n_leapsec_dropped", "n_duplicates", "n_dup_conflicts", "n_time_repaired",
               "n_time_outliers")
#: Further counters the project keeps (reasons of rejection not named in §4.3).
EXTRA_COUNTERS = ("n_bad_header", "n_bad_utc", "n_time_collisions", "n_saturated_frames")


def empty_stats() -> dict[str, int | float]:
    s: dict[str, int | float] = {k: 0 for k in QA_COUNTERS + EXTRA_COUNTERS}
    s["good_fraction"] = 0.0
    return s


def finish_stats(s: dict) -> dict:
    s["good_fraction"] = float(s["n_valid"]) / s["n_records_total"] if s["n_records_total"] else 0.0
    return s


@dataclass
class Level0Batch:
    """What a decoder returns for one file (§5): the valid records, as arrays.

    ``met`` is UTC-based MET (IST removed); ``utc_ns`` the same instant in integer ns since
    the MET epoch (for the 9-digit ``UTCString``). ``leap`` marks tags with second 60.
    """

    frames: np.ndarray  # (N, 2048) uint8
    met: np.ndarray  # (N,) float64
    utc_valid: np.ndarray  # (N,) bool
    dh_time: np.ndarray  # (N,) float64 s, NaN if absent
    dh_seq: np.ndarray  # (N,) int64, -1 if absent
    rec_index: np.ndarray  # (N,) int64, position in the source file
    crc_checked: np.ndarray  # (N,) bool
    source: str
    stats: dict
    utc_ns: np.ndarray | None = None  # (N,) int64
    ist: np.ndarray | None = None  # (N,) bool
    leap: np.ndarray | None = None  # (N,) bool
    dh_time_us: np.ndarray | None = None  # (N,) int64 raw DH clock (-1 if absent)
    decoder: str = ""

    def __len__(self) -> int:
        return len(self.met)

    def __post_init__(self) -> None:
        n = len(self.met)
        if self.utc_ns is None:
            self.utc_ns = met_to_ns(np.where(np.isfinite(self.met), self.met, 0.0))
        if self.ist is None:
            self.ist = np.zeros(n, bool)
        if self.leap is None:
            self.leap = np.zeros(n, bool)
        if self.dh_time_us is None:
            self.dh_time_us = np.where(np.isfinite(self.dh_time), np.rint(np.nan_to_num(self.dh_time) * 1e6),
                                       -1).astype(np.int64)


class Decoder:
    """Base of level-0 decoders (§5). Subclasses with a ``name`` register themselves.

    A decoder implements :meth:`is_datasource_for` (a cheap check of a file's first bytes and
    name) and :meth:`decode` (the whole buffer, vectorised) returning a :class:`Level0Batch`.
    """

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[Decoder]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            Decoder.registry[cls.name] = cls

    @classmethod
    def is_datasource_for(cls, name: str, head: bytes) -> bool:  # pragma: no cover - abstract
        return False

    def decode(self, buf: np.ndarray, source: str) -> Level0Batch:  # pragma: no cover - abstract
        raise NotImplementedError

    def probe(self, path: str | Path) -> bool:
        with open(path, "rb") as f:
            return self.is_datasource_for(Path(path).name, f.read(1 << 16))

    def read(self, path: str | Path) -> Level0Batch:
        path = Path(path)
        return self.decode(np.fromfile(path, dtype=np.uint8), path.name)


def decoder_for(name: str, head: bytes, decoder: str | None = None) -> Decoder:
    """The decoder named ``decoder``, or the first registered one that recognises the data."""
    if decoder is not None:
        try:
            return Decoder.registry[decoder]()
        except KeyError:
            raise ParameterError(f"unknown level-0 decoder {decoder!r} "
                                 f"(known: {', '.join(Decoder.registry)})") from None
    for cls in Decoder.registry.values():
        if cls.is_datasource_for(name, head):
            return cls()
    raise InputFormatError(f"{name}: not a level-0 file of a known layout "
                           f"(decoders: {', '.join(Decoder.registry)})")


def _calendar(year, month, day, hour, minute, second, nanosec):
    """(valid, ns since MET epoch) of calendar fields, vectorised; second 60 allowed as valid."""
    y = year.astype(np.int64)
    mo = month.astype(np.int64)
    d = day.astype(np.int64)
    ok = (y >= 1970) & (y <= 2200) & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= 31)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 60) & (nanosec <= 999_999_999)
    ys = np.where(ok, y, 2017)
    ms = np.where(ok, mo, 1)
    ds = np.where(ok, d, 1)
    ym = ((ys - 1970) * 12 + ms - 1).astype("datetime64[M]")
    date = ym.astype("datetime64[D]") + (ds - 1).astype("timedelta64[D]")
    ok &= date.astype("datetime64[M]") == ym
    days = (date - np.datetime64("2017-01-01", "D")).astype(np.int64)
    sec = days * 86400 + hour.astype(np.int64) * 3600 + minute.astype(np.int64) * 60 + second.astype(np.int64)
    return ok, sec * 1_000_000_000 + nanosec.astype(np.int64)


class XsmL0V1Decoder(Decoder):
    """The project's record layout ``xsm-l0-v1`` (§1): 2120-byte records with CRC-32."""

    name = "xsm-l0-v1"

    @classmethod
    def is_datasource_for(cls, name: str, head: bytes) -> bool:
        return SYNC_BYTES in head[: 1 << 16] or (name.endswith(".pld") and len(head) == 0)

    def decode(self, buf: np.ndarray, source: str) -> Level0Batch:
        buf = np.asarray(buf, dtype=np.uint8).reshape(-1)
        loc = locate_records(buf)
        starts = loc.starts
        s = empty_stats()
        s["n_bad_sync"], s["n_bytes_skipped"], s["n_truncated"] = loc.n_bad_sync, loc.n_bytes_skipped, loc.n_truncated
        raw = _gather(buf, starts)
        rec = raw.view(REC_DTYPE).reshape(-1)
        crc_ok = crc32_rows(raw, CRC_SPAN) == rec["CRC32"]
        trailer_ok = (rec["END_MARK"] == END_MARK) & (rec["REC_COUNT2"] == rec["REC_COUNT"])
        header_ok = ((rec["FMT_VERSION"] == FMT_VERSION) & (rec["HDR_LEN"] == HEADER_SIZE)
                     & (rec["FRAME_LEN"] == fr.FRAME_SIZE) & (rec["TRL_LEN"] == TRAILER_SIZE)
                     & (rec["PAYLOAD_ID"] == PAYLOAD_ID))
        flags = rec["FLAGS"]
        utc_valid = (flags & FLAG_UTC_VALID) != 0
        cal_ok, tag_ns = _calendar(rec["UTC_YEAR"], rec["UTC_MONTH"], rec["UTC_DAY"], rec["UTC_HOUR"],
                                   rec["UTC_MINUTE"], rec["UTC_SECOND"], rec["UTC_NANOSEC"])
        bad_crc = ~crc_ok | (crc_ok & header_ok & ~trailer_ok)
        bad_header = crc_ok & ~header_ok
        bad_utc = crc_ok & header_ok & trailer_ok & utc_valid & ~cal_ok
        valid = crc_ok & header_ok & trailer_ok & ~(utc_valid & ~cal_ok)
        s["n_records_total"] = int(len(rec) + loc.n_truncated)
        s["n_bad_crc"] = int(bad_crc.sum())
        s["n_bad_header"] = int(bad_header.sum())
        s["n_bad_utc"] = int(bad_utc.sum())
        s["n_valid"] = int(valid.sum())
        idx = np.flatnonzero(valid)
        every = len(idx) == len(rec)

        def pick(a):  # valid rows of a record column (no copy when every record is valid)
            return a if every else a[idx]

        flg = pick(rec["FLAGS"])
        ist = (flg & FLAG_TIME_IST) != 0
        utc_ns = pick(tag_ns) - np.where(ist, int(IST_OFFSET_S) * 1_000_000_000, 0)
        whole = utc_ns // 1_000_000_000
        met = whole.astype(np.float64) + (utc_ns - whole * 1_000_000_000) * 1e-9
        dh_valid = (flg & FLAG_DH_VALID) != 0
        dh_us = np.where(dh_valid, pick(rec["DH_TIME"]).astype(np.int64), -1)
        if s["n_valid"] == 0 and len(buf):
            raise InputFormatError(f"{source}: no valid level-0 record in {len(buf)} bytes "
                                   f"({s['n_bad_crc']} bad CRC, {loc.n_bytes_skipped} bytes without sync)")
        finish_stats(s)
        return Level0Batch(
            frames=pick(rec["FRAME"]),  # a strided view into the buffer when every record is valid
            met=met, utc_valid=(flg & FLAG_UTC_VALID) != 0,
            dh_time=np.where(dh_valid, dh_us * 1e-6, np.nan), dh_seq=pick(rec["DH_SEQ"]).astype(np.int64),
            rec_index=(starts[idx] // RECORD_SIZE).astype(np.int64),
            crc_checked=np.ones(len(idx), bool), source=source, stats=s, utc_ns=utc_ns, ist=ist,
            leap=pick(rec["UTC_SECOND"]) == 60, dh_time_us=dh_us, decoder=self.name)


# --------------------------------------------------------------------------------------------
# §3 Session packages
# --------------------------------------------------------------------------------------------
@dataclass
class Segment:
    """One ``.pld`` segment of a session (decoded) with the names of its kernels."""

    session: str  # package (or .pld) file name
    name: str  # .pld name
    batch: Level0Batch
    kernels: dict[str, str] = field(default_factory=dict)  # kind -> member name


def _decode_bytes(data: bytes, name: str, decoder: str | None) -> Level0Batch:
    dec = decoder_for(name, data[: 1 << 16], decoder)
    return dec.decode(np.frombuffer(data, dtype=np.uint8), name)


def read_session(path: str | Path, *, decoder: str | None = None) -> list[Segment]:
    """Read a session package (``.tar``/``.tar.gz``) or a bare ``.pld`` file.

    The package's manifest is checked (every listed file present with its size and md5, each
    segment with its ``.pld``) before anything is decoded; a bad package raises
    :class:`InputFormatError` naming the file and the problem (§3.2).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    if tarfile.is_tarfile(path) if path.stat().st_size else False:
        return _read_package(path, decoder)
    if path.suffix in (".tar", ".gz", ".tgz"):
        raise InputFormatError(f"{path}: not a readable tar package")
    data = path.read_bytes()
    if not data:
        raise InputFormatError(f"{path}: empty file")
    try:
        batch = _decode_bytes(data, path.name, decoder)
    except InputFormatError as exc:
        msg = str(exc)
        raise InputFormatError(msg if msg.startswith(str(path)) else f"{path}: {msg.split(': ', 1)[-1]}") from None
    return [Segment(path.name, path.name, batch)]


def verify_session_package(path: str | Path) -> dict[str, dict[str, str]]:
    """Check a session package against its manifest (§3.2) without decoding it.

    Returns ``{segment SS: {kind: member name}}``. Raises :class:`InputFormatError` naming the
    package and the problem: damaged tar, no manifest, a listed file missing or with another
    size or md5, a segment without its ``.pld``.
    """
    segs, _, check_digests = _check_package(Path(path), keep=frozenset())
    check_digests()
    return segs


def _check_package(path: Path, keep: frozenset[str]
                   ) -> tuple[dict[str, dict[str, str]], dict[str, bytes], Callable[[], None]]:
    """Read a package's members against its manifest: segments, the bytes of the ``keep`` kinds,
    and the md5 check (run it once the caller's work overlapping the hashing is done)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            mans = [n for n in members if n.endswith("_manifest.csv")]
            if len(mans) != 1:
                raise InputFormatError(f"{path}: session package without exactly one *_manifest.csv")
            rows = list(csv.reader(io.StringIO(tar.extractfile(members[mans[0]]).read().decode("ascii"))))
            contents: dict[str, bytes] = {}
            segs: dict[str, dict[str, str]] = {}
            digests = {}
            for row in rows:
                if not row:
                    continue
                if len(row) != 5:
                    raise InputFormatError(f"{path}: manifest line {','.join(row)!r} has not 5 fields")
                name, size, md5, ss, kind = row
                if name not in members:
                    raise InputFormatError(f"{path}: {name} listed in the manifest is missing")
                if members[name].size != int(size):
                    raise InputFormatError(f"{path}: {name} does not match the manifest (size)")
                if kind in keep:
                    data = contents[name] = tar.extractfile(members[name]).read()
                    # md5 of large segments runs beside the decoding (hashlib releases the GIL)
                    digests[name] = (md5, in_background(_md5, data) if len(data) > (1 << 22) else _md5(data))
                else:  # only checked: hashed in chunks, never held whole
                    with tar.extractfile(members[name]) as f:
                        digests[name] = (md5, stream_digests(f, ("md5",))["md5"])
                segs.setdefault(ss, {})[kind] = name
    except InputFormatError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise InputFormatError(f"{path}: damaged session package ({str(exc).splitlines()[0]})") from None
    for ss in sorted(segs):
        if "pld" not in segs[ss]:
            raise InputFormatError(f"{path}: segment {ss} has no .pld")

    def check_digests() -> None:
        for name, (want, got) in digests.items():
            got = got if isinstance(got, str) else got.result()
            if got != want.lower():
                raise InputFormatError(f"{path}: {name} does not match the manifest (md5)")

    return segs, contents, check_digests


def _read_package(path: Path, decoder: str | None) -> list[Segment]:
    segs, contents, check_digests = _check_package(path, keep=frozenset({"pld"}))
    out = []
    for ss in sorted(segs):
        kinds = segs[ss]
        missing = [k for k in SESSION_KERNEL_SUFFIX if k not in kinds]
        if missing:
            log.warning("%s: segment %s lacks kernel(s) %s; its .sa rows will have no geometry",
                        path.name, ss, ", ".join(missing))
        try:
            batch = _decode_bytes(contents[kinds["pld"]], kinds["pld"], decoder)
        except InputFormatError as exc:
            raise InputFormatError(f"{path}: {exc}") from None
        out.append(Segment(path.name, kinds["pld"], batch, {k: v for k, v in kinds.items() if k != "pld"}))
    check_digests()
    return out


def read_session_manifest(package: str | Path) -> dict[str, dict[str, str]]:
    """The manifest of a package: {segment SS: {kind: member name}} (no checks)."""
    try:
        with tarfile.open(package, "r:*") as tar:
            man = next(m for m in tar.getmembers() if m.name.endswith("_manifest.csv"))
            rows = list(csv.reader(io.StringIO(tar.extractfile(man).read().decode("ascii"))))
    except (StopIteration, tarfile.TarError, OSError, EOFError) as exc:
        raise InputFormatError(f"{package}: no readable manifest ({exc})") from None
    segs: dict[str, dict[str, str]] = {}
    for row in rows:
        if len(row) == 5:
            segs.setdefault(row[3], {})[row[4]] = row[0]
    return segs


# --------------------------------------------------------------------------------------------
# §4 Ingest
# --------------------------------------------------------------------------------------------
def _round_half_away(v: np.ndarray) -> np.ndarray:
    """C ``round()`` converted to int: sign(v) * floor(|v| + 0.5)."""
    return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int64)


def repair_time_tags(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference time-tag repair rule (§4.1), applied in order and in place on a copy.

    Parameters
    ----------
    t : ndarray float64
        Time (MET) in acquisition order.
    x : ndarray float64
        XSMTime of the same frames.

    Returns
    -------
    (t_repaired, changed) : float64 array, bool array

    Notes
    -----
    The condition is evaluated for all positions with numpy; only the candidate positions
    (and the position after each repair, whose differences the repair changed) are walked.
    """
    t = np.array(t, dtype=np.float64, copy=True)
    x = np.asarray(x, dtype=np.float64)
    n = len(t)
    changed = np.zeros(n, bool)
    if n < 3:
        return t, changed
    R = _round_half_away

    def cond(i: np.ndarray):
        td1 = R(t[i + 1] - t[i])
        xd1 = R(x[i + 1] - x[i])
        td2 = R(t[i + 2] - t[i + 1])
        xd2 = R(x[i + 2] - x[i + 1])
        return (td1 != xd1) & (xd1 > 0) & (xd2 > 0) & (x[i] != 0), td1, td2, xd1, xd2

    idx = np.arange(n - 2)
    c, *_ = cond(idx)
    cands = list(np.flatnonzero(c))
    k, forced = 0, None
    while k < len(cands) or forced is not None:
        if forced is not None and (k >= len(cands) or forced <= cands[k]):
            i = forced
            if k < len(cands) and cands[k] == forced:
                k += 1
            forced = None
        else:
            i = int(cands[k])
            k += 1
        if i > n - 3:
            continue
        ok, td1, td2, xd1, xd2 = cond(np.array([i]))
        if not ok[0]:
            continue
        if td2[0] != xd2[0]:
            t[i + 1] = t[i + 2] - xd2[0]
            changed[i + 1] = True
            forced = i + 1  # the differences seen at i+1 changed
        elif td1[0] == 0:
            t[i] = t[i + 1] - xd1[0]
            changed[i] = True
    return t, changed


@dataclass
class DayFrames:
    """The frames of one UTC day after ingest, ready for :func:`xsm.products.level1.write_level1`."""

    date: str  # YYYYMMDD
    day: object  # Level1Day


@dataclass
class IngestResult:
    days: list[DayFrames]
    segments: list[dict]  # one row per segment: session, L0File, decoder, stats
    totals: dict


def _concat(segments: Sequence[Segment]):
    b = [s.batch for s in segments]
    cat = lambda name: np.concatenate([getattr(x, name) for x in b]) if b else np.zeros(0)  # noqa: E731
    seg_id = np.concatenate([np.full(len(x), i, np.int64) for i, x in enumerate(b)]) if b else np.zeros(0, np.int64)
    return {k: cat(k) for k in ("met", "utc_valid", "dh_time", "dh_seq", "crc_checked", "utc_ns", "ist",
                                "leap", "dh_time_us", "rec_index")}, seg_id


def ingest(segments: Sequence[Segment], *, mode: Mode = Mode.DEFAULT, expected_sync: tuple[int, int] | None = None,
           outlier_limit_s: float = 10.0) -> IngestResult:
    """Level-0 segments -> day-wise level-1 frames (§4 steps 2-8, DecodingStatusFlag of ``level1.md`` §5).

    Parameters
    ----------
    segments : sequence of Segment
        In session order; for conflicting copies the segment of the **most recent session**
        wins, where recency is the latest DH clock of a session, then the input order.
    mode : Mode
        ``XSMDAS_1_2`` skips the outlier guard (step 6, not in the reference).
    expected_sync : (SyncUW, SyncLW), optional
        Expected frame sync words; mismatches get bit 3. None = not checked.

    Returns
    -------
    IngestResult
        ``days`` in date order; ``segments`` rows with the §4.3 counters per segment;
        ``totals`` summed over segments.
    """
    from xsm.products.level1 import Level1Day

    seg_stats = [dict(s.batch.stats) for s in segments]
    arrays, seg_id = _concat(segments)
    if len(segments) == 1:
        frames = segments[0].batch.frames  # possibly a strided view into the file buffer
    else:
        frames = np.concatenate([s.batch.frames for s in segments]) if segments else np.zeros((0, 2048), np.uint8)
    n0 = len(seg_id)
    # session recency: latest DH clock, then input order
    sessions = list(dict.fromkeys(s.session for s in segments))
    sess_of_seg = np.array([sessions.index(s.session) for s in segments], np.int64)
    sess_id = sess_of_seg[seg_id] if n0 else np.zeros(0, np.int64)
    latest = np.full(len(sessions), -np.inf)
    if n0:
        dh = np.where(np.isfinite(arrays["dh_time"]), arrays["dh_time"], arrays["met"])
        np.maximum.at(latest, sess_id, dh)
    order_s = np.lexsort((np.arange(len(sessions)), latest))
    recency = np.empty(len(sessions), np.int64)
    recency[order_s] = np.arange(len(sessions))
    rec_rank = recency[sess_id] if n0 else np.zeros(0, np.int64)

    def count(name, mask):
        for i, c in zip(*np.unique(seg_id[mask], return_counts=True)):
            seg_stats[int(i)][name] += int(c)

    # step 2: reject
    no_time = ~arrays["utc_valid"]
    leap = arrays["leap"] & ~no_time
    count("n_no_time", no_time)
    count("n_leapsec_dropped", leap)
    if leap.any():
        log.info("%d record(s) with a leap-second tag (second 60) dropped", int(leap.sum()))
    keep = ~(no_time | leap)
    # step 3: deduplicate; key = (DH_TIME, FrameNo, XSMTime) or (round(met, 3), FrameNo, XSMTime)
    f = fr.decode_fields(frames)
    fno, clock = f["FrameNo"], f["FPGAClock"]
    has_dh = arrays["dh_time_us"] >= 0
    key0 = np.where(has_dh, arrays["dh_time_us"], np.rint(arrays["met"] * 1000).astype(np.int64))
    idx = np.flatnonzero(keep)
    o = idx[np.lexsort((rec_rank[idx], clock[idx], fno[idx], key0[idx], has_dh[idx]))]
    k0, k1, k2, k3 = key0[o], fno[o], clock[o], has_dh[o]
    new_group = np.ones(len(o), bool)
    new_group[1:] = (k0[1:] != k0[:-1]) | (k1[1:] != k1[:-1]) | (k2[1:] != k2[:-1]) | (k3[1:] != k3[:-1])
    gid = np.cumsum(new_group) - 1
    last_of_group = np.ones(len(o), bool)
    last_of_group[:-1] = new_group[1:]
    keeper_pos = np.flatnonzero(last_of_group)  # most recent copy of each group (sorted by rank)
    status = np.zeros(n0, np.int16)
    dropped = o[~last_of_group]
    if len(dropped):
        keeper_of = o[keeper_pos[gid[~last_of_group]]]
        same = (frames[dropped] == frames[keeper_of]).all(axis=1)
        count("n_duplicates", np.isin(np.arange(n0), dropped[same]))
        count("n_dup_conflicts", np.isin(np.arange(n0), dropped[~same]))
        np.bitwise_or.at(status, keeper_of[same], np.int16(cols.DecodingStatus.DUPLICATE))
        np.bitwise_or.at(status, keeper_of[~same], np.int16(cols.DecodingStatus.DUP_CONFLICT))
        for a, b in zip(dropped[~same][:20], keeper_of[~same][:20]):
            log.warning("differing copies of frame %d (XSMTime %.6f): %s record %d dropped, %s record %d kept",
                        fno[a], clock[a] * 1e-6, segments[seg_id[a]].name, arrays["rec_index"][a],
                        segments[seg_id[b]].name, arrays["rec_index"][b])
    kept = o[last_of_group]
    # step 4: order by (DH_TIME, DH_SEQ); by MET without a DH clock
    dh_key = np.where(has_dh[kept], arrays["dh_time_us"][kept].astype(np.float64), arrays["met"][kept] * 1e6)
    kept = kept[np.lexsort((arrays["dh_seq"][kept], dh_key))]
    # step 5: repair time tags over the whole ordered sequence
    met = arrays["met"][kept]
    xsm_t = clock[kept] * 1e-6
    met_rep, changed = repair_time_tags(met, xsm_t)
    status[kept[changed]] |= np.int16(cols.DecodingStatus.TIME_REPAIRED)
    count("n_time_repaired", np.isin(np.arange(n0), kept[changed]))
    met_all = arrays["met"].copy()
    met_all[kept] = met_rep
    # step 6: outlier guard per segment (not in compat mode)
    if mode != Mode.XSMDAS_1_2:
        good = np.ones(len(kept), bool)
        dh_s = arrays["dh_time"][kept]
        sk = seg_id[kept]
        for s in np.unique(sk):
            m = (sk == s) & np.isfinite(dh_s)
            if m.sum() == 0:
                continue
            d = met_rep[m] - dh_s[m]
            off = np.median(d)
            bad = np.abs(d - off) > outlier_limit_s
            sub = np.flatnonzero(m)[bad]
            good[sub] = False
        count("n_time_outliers", np.isin(np.arange(n0), kept[~good]))
        kept = kept[good]
    # flags from the frame and the source
    if expected_sync is not None:
        bad_sync = (f["SyncUW"] != expected_sync[0]) | (f["SyncLW"] != expected_sync[1])
        status[bad_sync] |= np.int16(cols.DecodingStatus.SYNC_MISMATCH)
    status[f["GuardBits"] != 0] |= np.int16(cols.DecodingStatus.GUARD_BITS)
    status[arrays["ist"]] |= np.int16(cols.DecodingStatus.IST_CONVERTED)
    status[~arrays["crc_checked"]] |= np.int16(cols.DecodingStatus.NO_CHECKSUM)
    # UTC strings: from the tag's own ns field; re-derived from the MET for repaired frames
    # steps 7-8: day, stable sort by MET, strictly increasing Time
    t_k = met_all[kept]
    order = np.argsort(t_k, kind="stable")
    kept, t_k = kept[order], t_k[order]
    dup_t = np.zeros(len(kept), bool)
    dup_t[1:] = t_k[1:] == t_k[:-1]
    if dup_t.any():
        count("n_time_collisions", np.isin(np.arange(n0), kept[dup_t]))
        kept, t_k = kept[~dup_t], t_k[~dup_t]
    day_no = np.floor(t_k / SECONDS_PER_DAY).astype(np.int64)
    days: list[DayFrames] = []
    for dn in np.unique(day_no):
        rows = kept[day_no == dn]
        t = met_all[rows]
        utc = utc_string_from_ns(EPOCH + arrays["utc_ns"][rows].astype("timedelta64[ns]"))
        rep = (status[rows] & cols.DecodingStatus.TIME_REPAIRED) != 0
        if rep.any():
            utc = utc.astype("U29")
            utc[rep] = met_to_utc_string(t[rep])
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and np.all(np.diff(rows) == 1):
            data = np.ascontiguousarray(frames[rows[0]:rows[-1] + 1])  # one copy of a slice
        else:
            data = frames[rows]
        # saturated words: QA only (frame.md §4)
        sat = (fr.spectrum_view(data) == 0xFFFF).any(axis=1)
        count("n_saturated_frames", np.isin(np.arange(n0), rows[sat]))
        fno_d = fno[rows]
        clk = clock[rows] * 1e-6
        st = status[rows].copy()
        disc = np.zeros(len(rows), bool)
        disc[1:] = (fno_d[1:] != (fno_d[:-1] + 1) % (1 << 32)) | (np.abs(np.diff(clk) - 1.0) > 0.01)
        st[disc] |= np.int16(cols.DecodingStatus.DISCONTINUITY)
        date = str((np.datetime64("2017-01-01", "D") + dn)).replace("-", "")
        day = Level1Day(time=t, utc=np.asarray(utc, dtype="U29"), frame_number=fno_d, bdh_time=arrays["dh_time"][rows],
                        xsm_time=clk, data=data, status=st)
        days.append(DayFrames(date, day))
    rows_out = []
    totals = empty_stats()
    for s, st in zip(segments, seg_stats):
        finish_stats(st)
        rows_out.append({"session": s.session, "L0File": s.name, "decoder": s.batch.decoder,
                         "kernels": dict(s.kernels), "stats": st})
        for k in QA_COUNTERS + EXTRA_COUNTERS:
            totals[k] += st[k]
    finish_stats(totals)
    return IngestResult(days, rows_out, totals)


# --------------------------------------------------------------------------------------------
# build_level1: sessions -> day files
# --------------------------------------------------------------------------------------------
@dataclass
class DayFiles:
    date: str
    fits: Path
    hk: Path | None
    n_rows: int
    tstart: float
    tstop: float

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


@dataclass
class BuildResult:
    days: list[DayFiles]
    segments: list[dict]
    totals: dict

    def as_dict(self) -> dict:
        return {"days": [d.as_dict() for d in self.days], "segments": self.segments, "totals": self.totals}


def level1_history(segments: Sequence[dict], totals: Mapping, decoders: Iterable[str], mode: Mode) -> list[str]:
    """HISTORY lines of a level-1 file (``level1.md`` §6 rule 7): sessions, decoder, QA."""
    lines = [f"mode = {mode.value}", f"decoder = {', '.join(sorted(set(decoders)))}"]
    seen = []
    for s in segments:
        if s["L0File"] not in seen:
            seen.append(s["L0File"])
            lines.append(f"l0file = {s['L0File']} ({s['session']})")
    lines += [f"{k} = {totals[k]}" for k in QA_COUNTERS + EXTRA_COUNTERS]
    lines.append(f"good_fraction = {totals['good_fraction']:.6f}")
    return history_block("XSM L1GEN", lines)


SESSION_PATTERNS = ("*.tar", "*.tar.gz", "*.tgz", "*.pld")


def expand_sessions(sessions: Iterable[str | Path]) -> list[Path]:
    """Input paths with each folder replaced by its packages and ``.pld`` files (sorted by name)."""
    out: list[Path] = []
    for s in sessions:
        p = Path(s)
        if p.is_dir():
            found = sorted({q for pat in SESSION_PATTERNS for q in p.glob(pat)}, key=lambda q: q.name)
            if not found:
                raise InputFormatError(f"{p}: folder without level-0 packages or .pld files")
            out += found
        else:
            out.append(p)
    return out


def build_level1(sessions: Sequence[str | Path], out_dir: str | Path, *, mode: Mode = Mode.DEFAULT,
                 version: int = 1, decoder: str | None = None, expected_sync: tuple[int, int] | None = None,
                 overwrite: bool = False, hk: bool = True, days: Iterable[str] | None = None,
                 progress: Callable[..., None] | None = None) -> BuildResult:
    """Level-0 sessions -> day-wise level-1 science (``.fits``) and housekeeping (``.hk``) files.

    Parameters
    ----------
    sessions : sequence of path
        Session packages (``.tar``, ``.tar.gz``) or bare ``.pld`` files, in download order; a
        folder stands for its packages and ``.pld`` files.
    out_dir : path
        Output folder (created).
    mode : Mode
    version : int
        Processing version in the file names (``v1``).
    decoder : str, optional
        Force a registered decoder; default: the first whose ``is_datasource_for`` accepts.
    expected_sync : (SyncUW, SyncLW), optional
        Expected frame sync words (DecodingStatusFlag bit 3); None = not checked.
    overwrite : bool
        Replace existing day files; otherwise an existing target is an error (before any write).
    hk : bool
        Also write the housekeeping files.
    days : iterable of ``YYYYMMDD``, optional
        Only write these days.
    progress : callable, optional
        ``progress(n, total=None)`` advanced once per input and per written file.

    Returns
    -------
    BuildResult
        Written day files, one QA row per segment (§4.3 counters), totals.

    Raises
    ------
    InputFormatError
        A truncated, foreign or damaged input (named); nothing is written.
    """
    from xsm.products.hk import decode_hk
    from xsm.products.level1 import level1_paths, write_hk, write_level1

    out_dir = Path(out_dir)
    paths = expand_sessions(sessions)
    if not paths:
        raise ParameterError("no level-0 session given")
    total_steps = len(paths)
    if progress:
        progress(0, total=total_steps)
    segs: list[Segment] = []
    for p in paths:  # read and check every input before writing anything
        segs += read_session(p, decoder=decoder)
        if progress:
            progress(1)
    res = ingest(segs, mode=mode, expected_sync=expected_sync)
    want = None if days is None else {d.replace("-", "") for d in days}
    todo = [d for d in res.days if want is None or d.date in want]
    if progress:
        progress(0, total=total_steps + len(todo) * (2 if hk else 1))
    targets = {d.date: level1_paths(out_dir, d.date, version) for d in todo}
    if not overwrite:
        exist = [str(t[k]) for t in targets.values() for k in (("fits", "hk") if hk else ("fits",)) if t[k].exists()]
        if exist:
            raise ParameterError(f"{exist[0]}: exists already (use --overwrite to replace it)")
    history = level1_history(res.segments, res.totals, [s.batch.decoder for s in segs], mode)
    # the packages were just read (pages cached): hash each once for the provenance block
    prov = Provenance(step="l1", mode=mode, inputs=tuple(p.name for p in paths)
                      ).with_input_md5(InputDigests()(paths))
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".xsm-l1-", dir=out_dir))
    written: list[DayFiles] = []
    try:
        staged: list[tuple[Path, Path]] = []
        for d in todo:
            t = targets[d.date]
            sf = write_level1(d.day, stage / t["fits"].name, mode=mode, history=history, provenance=prov)
            staged.append((sf, t["fits"]))
            if progress:
                progress(1)
            hp = None
            if hk:
                table = decode_hk(_with_time_header(d.day))
                hf = write_hk(table, stage / t["hk"].name, mode=mode,
                              history=history_block("XSM HKEXTRACT", [f"l1file = {t['fits'].name}",
                                                                      f"hkfile = {t['hk'].name}"]),
                              provenance=dataclasses.replace(prov, step="hk"), expect_time=d.day.time)
                staged.append((hf, t["hk"]))
                hp = t["hk"]
                if progress:
                    progress(1)
            written.append(DayFiles(d.date, t["fits"], hp, len(d.day), float(d.day.time[0]), float(d.day.time[-1])))
        for src, dst in staged:
            os.replace(src, dst)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log.info("level 1: %d day(s) from %d segment(s): %s", len(written), len(segs),
             ", ".join(f"{w.date} ({w.n_rows} rows)" for w in written))
    return BuildResult(written, res.segments, res.totals)


def _with_time_header(day):
    """The day with the time keywords of its science file in ``header`` (for decode_hk)."""
    from astropy.io import fits

    h = fits.Header()
    h["DATE-OBS"] = str(day.utc[0])
    h["DATE-END"] = str(day.utc[-1])
    h["TSTART"] = float(day.time[0])
    h["TSTOP"] = float(day.time[-1])
    h["TELAPSE"] = float(day.time[-1]) - float(day.time[0])
    return dataclasses.replace(day, header=h)


# --------------------------------------------------------------------------------------------
# A small synthetic hour end to end (the first ``xsm demo``; the demo now simulates a whole day
# with ``xsm.products.simulate``, this stays as a fast self-contained example and test input)
# --------------------------------------------------------------------------------------------
def write_demo_sessions(out_dir: str | Path, *, start: str = "2021-09-05 23:30:00.25", duration_s: int = 3600,
                        overlap_s: int = 300, seed: int = 0) -> list[Path]:
    """Two overlapping level-0 session packages of synthetic frames (deterministic, seeded).

    The second session repeats the last ``overlap_s`` seconds of the first (an overlapping
    download) and carries IST time tags. The default hour crosses a UTC midnight.
    """
    from xsm.products.met import parse_time

    t0 = parse_time(start)
    n = int(duration_s)
    frames = fr.synthetic_frames(n, seed=seed)
    met = t0 + np.arange(n, dtype=np.float64)
    half = n // 2
    a_end = min(n, half + overlap_s)
    dh_us = met_to_ns(met) // 1000 - 1_000_000  # a DH clock 1 s behind UTC
    out_dir = Path(out_dir)
    first = encode_records(frames[:a_end], met[:a_end], dh_time_us=dh_us[:a_end], dh_seq=np.arange(a_end),
                           simulated=True, orbit=4242, station_id=26)
    second = encode_records(frames[half:], met[half:], dh_time_us=dh_us[half:], dh_seq=np.arange(half, n),
                            ist=True, simulated=True, orbit=4243, station_id=18)
    return [write_session(out_dir, session_id(met[0], station="G26", orbit=4242), [first]),
            write_session(out_dir, session_id(met[half], station="D18", orbit=4243), [second])]


def run_demo(out_dir: str | Path, *, seed: int = 0, overwrite: bool = True,
             progress: Callable[..., None] | None = None) -> dict:
    """A synthetic hour -> two overlapping level-0 sessions -> level-1 science + housekeeping."""
    out_dir = Path(out_dir)
    sessions = write_demo_sessions(out_dir / "level0", seed=seed)
    res = build_level1(sessions, out_dir / "level1", overwrite=overwrite, progress=progress)
    return {"level0": [str(p) for p in sessions], "level1": res.as_dict()}
