"""Gain lookup and PHA -> PI conversion (``spectrum.md`` §3-5, §14).

Two conversions, one per mode:

* compat (``Mode.XSMDAS_1_2``): per-count dithering with the Wichmann-Hill stream
  (:mod:`xsm.products.wichmann_hill`) in the reference's draw order, reference arithmetic
  (float32 ``pha``, double ``E``), overflow/ULD words converted like channels (Q10);
* default: the exactly equivalent multinomial draw per 9-bit channel (``spectrum.md`` §14) with a
  seeded numpy Generator; rows that share a gain cell may be summed before the draw, so the cost
  does not depend on the number of counts.

API used by other modules (light curves, level-2 day API, simulator)
--------------------------------------------------------------------
``OFFSET_TWEAK_KEV``
    The reference's extra -0.01 keV spectrum offset (Q08).
``PIGrid.from_ebounds(e_min, e_max)`` / ``pi_grid(ebounds)``
    The PI grid (float32 ``emin``, ``delta``, ``emax``; ``n``); ``grid.bin_of(E)``.
``GainTable``; ``gain_table(obj)``
    The gain/offset grid of one extension (``GAIN`` sun or ``CALGAIN`` cal). ``gain_table`` adapts a
    CALDB loader object or an extension of an open gain file.
``gain_cells(tec, detposr, table) -> int64[N]``
    Table row of each frame (``itec*NRAD + irad``, float32 divisions; ``irad = 0`` when NRAD = 1).
``frame_gain(tec, detposr, table, *, gaincorfactor=1, offsetcorfactor=0, offset_tweak=True)``
    -> :class:`FrameGain` (``gain``, ``offset`` float64 per frame and ``cell``). ``offset_tweak``
    adds ``OFFSET_TWEAK_KEV`` (spectra always; light curves only in default mode, Q08).
``apply_stale_gain(fg, opens_bin)``
    Q02 for compat type-II spectra: bin-opening frames get the previous non-opening frame's gain.
``pi_compat(spec, gain, offset, grid, wh, *, syserr=None, nchunk=...)``
    Per-frame PI counts of an ``(F, C)`` PHA count array (C = 963 words or 1024), consuming ``wh`` in
    the reference order; returns :class:`PIFrames` (``counts`` int32[F, n], ``syssum`` float32[F, n]
    or None, ``out`` int64[F] counts outside the grid). Chunk the frames yourself for a whole flare
    day (the stream carries on across calls).
``pi_default(counts9, gain, offset, grid, rng, *, syserr=None)``
    Multinomial draw for an ``(G, M)`` array of 9-bit channel counts (M <= 512, channel m covers PHA
    2m, 2m+1) with one gain per row (a frame, or a group of frames sharing a gain cell and an output
    bin); returns :class:`PIFrames` with float64 ``syssum``.
``nine_bit(spec, mode)``
    ``(F, 1024|963)`` PHA words -> ``(F, 481|512)`` 9-bit channel counts; default mode drops the
    overflow (961) and ULD (962) words (Q10).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xsm.products.errors import CalibrationError, InputFormatError
from xsm.products.provenance import Mode
from xsm.products.wichmann_hill import WichmannHill

#: Extra offset (keV) the reference adds to every CALDB offset in spectra ("for now"), Q08.
OFFSET_TWEAK_KEV = -0.01
#: Q02: gain and offset of a compat type-II bin-opening frame before any other frame was seen.
Q02_INITIAL_GAIN = 0.0163
Q02_INITIAL_OFFSET = 0.0
#: PHA word indices of the overflow sum and the ULD count (``frame.md`` §4, Q10).
OVERFLOW_WORD = 961
ULD_WORD = 962
#: Last real PHA channel.
LAST_CHANNEL = 960


# --------------------------------------------------------------------------- PI grid
@dataclass(frozen=True)
class PIGrid:
    """The PI energy grid from EBOUNDS (``spectrum.md`` §3): values are float32 numbers."""

    emin: float
    delta: float
    emax: float
    n: int

    @classmethod
    def from_ebounds(cls, e_min, e_max) -> PIGrid:
        e_min = np.asarray(e_min, dtype=np.float32)
        e_max = np.asarray(e_max, dtype=np.float32)
        if e_min.ndim != 1 or e_min.size == 0 or e_min.size != e_max.size:
            raise InputFormatError("EBOUNDS: E_MIN/E_MAX must be two equal, non-empty vectors")
        delta = np.float32(e_max[0] - e_min[0])  # float32 difference
        if not delta > 0:
            raise InputFormatError("EBOUNDS: first bin has no width")
        return cls(float(e_min[0]), float(delta), float(e_max[-1]), int(e_min.size))

    def bin_of(self, energy) -> np.ndarray:
        """PI bin (int64) of energies (keV, float64), -1 outside ``[emin, emax)``."""
        e = np.asarray(energy, dtype=np.float64)
        k = np.trunc((e - self.emin) / self.delta)
        ok = (e >= self.emin) & (e < self.emax) & (k < self.n)
        return np.where(ok, k, -1).astype(np.int64)

    def nominal_lo(self) -> np.ndarray:
        return self.emin + self.delta * np.arange(self.n)


def pi_grid(ebounds) -> PIGrid:
    """PIGrid from a CALDB EBOUNDS loader object (attributes ``e_min``/``e_max``) or a table."""
    if isinstance(ebounds, PIGrid):
        return ebounds
    for a, b in (("e_min", "e_max"), ("E_MIN", "E_MAX"), ("emin", "emax")):
        if hasattr(ebounds, a):
            return PIGrid.from_ebounds(getattr(ebounds, a), getattr(ebounds, b))
    # a FITS table / record array: columns by number (2 E_MIN, 3 E_MAX)
    data = getattr(ebounds, "data", ebounds)
    return PIGrid.from_ebounds(data.field(1), data.field(2))


# --------------------------------------------------------------------------- gain grid
@dataclass(frozen=True)
class GainTable:
    """One gain extension: ``gain``/``offset`` float32 of NTEC*NRAD rows, row = itec*NRAD + irad."""

    gain: np.ndarray
    offset: np.ndarray
    ntec: int
    nrad: int
    tec_binsize: float  # float32 value
    rad_binsize: float  # float32 value
    extname: str = "GAIN"

    def __post_init__(self) -> None:
        if self.gain.size != self.ntec * self.nrad or self.offset.size != self.gain.size:
            raise InputFormatError(
                f"gain table {self.extname}: NAXIS2 = {self.gain.size} is not NTEC*NRAD = "
                f"{self.ntec}*{self.nrad}")


def gain_table(obj, extname: str = "GAIN") -> GainTable:
    """Adapt a gain source to :class:`GainTable`.

    Accepts a GainTable, an object with attributes (``gain``, ``offset``, ``ntec``, ``nrad``,
    ``tec_binsize``/``tecbinsize``, ``rad_binsize``/``radbinsize``), an object holding such
    tables as attributes ``sun``/``cal`` or ``gain``/``calgain`` (pick with ``extname``), or an
    astropy BinTableHDU of a gain file (columns 3 GAIN, 4 OFFSET by number).
    """
    if isinstance(obj, GainTable):
        return obj
    ext = extname.upper()
    # container of two grids
    for attr in ((("cal", "calgain") if ext == "CALGAIN" else ("sun", "gain_grid", "grid"))):
        sub = getattr(obj, attr, None)
        if sub is not None and not isinstance(sub, np.ndarray):
            return gain_table(sub, ext)
    if ext == "CALGAIN" and hasattr(obj, "calgain") and not isinstance(obj.calgain, np.ndarray):
        return gain_table(obj.calgain, ext)
    if hasattr(obj, "header") and hasattr(obj, "data"):  # BinTableHDU
        h = obj.header
        try:
            ntec, nrad = int(h["NTEC"]), int(h["NRAD"])
            tb, rb = float(h["TECBINSIZE"]), float(h["RADBINSIZE"])
        except KeyError as exc:
            raise InputFormatError(f"gain extension {obj.name}: missing keyword {exc}") from None
        return GainTable(np.asarray(obj.data.field(2), np.float32), np.asarray(obj.data.field(3), np.float32),
                         ntec, nrad, float(np.float32(tb)), float(np.float32(rb)), obj.name)

    def pick(*names):
        for n in names:
            if hasattr(obj, n):
                return getattr(obj, n)
        raise InputFormatError(f"gain table object {type(obj).__name__} lacks {names[0]}")

    return GainTable(
        np.asarray(pick("gain", "GAIN"), np.float32).ravel(),
        np.asarray(pick("offset", "OFFSET"), np.float32).ravel(),
        int(pick("ntec", "NTEC")), int(pick("nrad", "NRAD")),
        float(np.float32(pick("tec_binsize", "tecbinsize", "TECBINSIZE"))),
        float(np.float32(pick("rad_binsize", "radbinsize", "RADBINSIZE"))),
        str(getattr(obj, "extname", ext)),
    )


@dataclass(frozen=True)
class FrameGain:
    """Gain (keV/channel) and offset (keV) of each frame, float64, and the table row used."""

    gain: np.ndarray
    offset: np.ndarray
    cell: np.ndarray


def gain_cells(tec, detposr, table: GainTable) -> np.ndarray:
    """Table row of each frame: ``trunc(TEC/TECBINSIZE)*NRAD + trunc(R/RADBINSIZE)`` (float32)."""
    tec32 = np.asarray(tec, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        itec_f = np.trunc(tec32 / np.float32(table.tec_binsize))
        if table.nrad == 1 or detposr is None:
            irad_f = np.zeros_like(itec_f)
        else:
            irad_f = np.trunc(np.asarray(detposr, dtype=np.float32) / np.float32(table.rad_binsize))
    bad = ~np.isfinite(itec_f) | ~np.isfinite(irad_f) | (itec_f < 0) | (irad_f < 0) \
        | (itec_f >= table.ntec) | (irad_f >= table.nrad)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise CalibrationError(
            f"gain table {table.extname}: frame {i} (TECCurrent = {float(tec32.ravel()[i]):g} V"
            + ("" if detposr is None else f", DetPosR = {float(np.asarray(detposr).ravel()[i]):g} mm")
            + f") is outside the grid of {table.ntec} x {table.nrad} cells ({int(bad.sum())} frame(s))")
    return itec_f.astype(np.int64) * table.nrad + irad_f.astype(np.int64)


def frame_gain(tec, detposr, table: GainTable, *, gaincorfactor: float = 1.0,
               offsetcorfactor: float = 0.0, offset_tweak: bool = True) -> FrameGain:
    """Gain and offset per frame (``spectrum.md`` §4): CALDB float32 promoted to double."""
    table = gain_table(table)
    cell = gain_cells(tec, detposr, table)
    gain = table.gain[cell].astype(np.float64) * float(gaincorfactor)
    offset = table.offset[cell].astype(np.float64) + float(offsetcorfactor)
    if offset_tweak:
        offset = offset + OFFSET_TWEAK_KEV
    return FrameGain(gain, offset, cell)


def apply_stale_gain(fg: FrameGain, opens_bin) -> FrameGain:
    """Q02 (compat type II): each bin-opening frame takes the gain of the most recent frame that
    did not open its bin; before any, ``Q02_INITIAL_GAIN``/``Q02_INITIAL_OFFSET``."""
    opens = np.asarray(opens_bin, dtype=bool)
    n = opens.size
    idx = np.where(~opens, np.arange(n), -1)
    last = np.maximum.accumulate(idx) if n else idx  # most recent non-opening frame at or before i
    gain, offset = fg.gain.copy(), fg.offset.copy()
    o = np.flatnonzero(opens)
    src = last[o]
    have = src >= 0
    gain[o[have]] = fg.gain[src[have]]
    offset[o[have]] = fg.offset[src[have]]
    gain[o[~have]] = Q02_INITIAL_GAIN
    offset[o[~have]] = Q02_INITIAL_OFFSET
    return FrameGain(gain, offset, fg.cell)


# --------------------------------------------------------------------------- conversion
@dataclass
class PIFrames:
    """PI counts of each input row: ``counts`` int[R, n]; ``syssum`` the systematic sums
    (float32 in compat, float64 in default) or None; ``out`` counts outside the PI grid."""

    counts: np.ndarray
    syssum: np.ndarray | None
    out: np.ndarray


def nine_bit(spec, mode: Mode = Mode.DEFAULT) -> np.ndarray:
    """9-bit channel counts (``(F, M)``, int32 for int32 words, else int64) of PHA words ``spec`` (``(F, >=963)``).

    Default mode uses channels 0-960 only (M = 481; channel 480 holds PHA 960 alone); compat keeps
    the overflow and ULD words (M = 482; 961 pairs with 960, 962 is channel 481).
    """
    spec = np.asarray(spec)
    F = spec.shape[0]
    # 16-bit words: pair sums fit int32 when the words come as int32 (less memory traffic)
    odt = np.int32 if spec.dtype.itemsize <= 4 and np.issubdtype(spec.dtype, np.integer) else np.int64
    last = LAST_CHANNEL if mode == Mode.DEFAULT else ULD_WORD
    out = np.empty((F, last // 2 + 1), dtype=odt)
    # dtype: add in odt, not in the words' type (uint16 pair sums would wrap at 65536)
    np.add(spec[:, 0:last:2], spec[:, 1:last:2], out=out[:, :-1], dtype=odt)
    out[:, -1] = spec[:, last]
    return out


def _segmented_f32_sum(keys: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """float32 sequential sums of ``values`` per key, in the order given (reference rounding)."""
    out = np.zeros(size, dtype=np.float32)
    if keys.size == 0:
        return out
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    v = values[order].astype(np.float32)
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    lengths = np.diff(np.r_[starts, k.size])
    seg_keys = k[starts]
    acc = np.zeros(starts.size, dtype=np.float32)
    # process segments longest-first so the active set is a prefix
    by_len = np.argsort(-lengths, kind="stable")
    starts, lengths, seg_keys = starts[by_len], lengths[by_len], seg_keys[by_len]
    nact = starts.size
    for j in range(int(lengths[0])):
        while nact and lengths[nact - 1] <= j:
            nact -= 1
        acc[:nact] += v[starts[:nact] + j]
    out[seg_keys] = acc
    return out


#: Counts per chunk of frames in compat dithering: each count in flight holds ~100 bytes of
#: per-count arrays (index, deviate, energy, bin), so a chunk stays near 50 MB (as fast as 1e6).
COMPAT_CHUNK_COUNTS = 500_000


def chunks_by_counts(words, rows: np.ndarray, budget: int | None = None) -> list[tuple[int, int, int]]:
    """Ranges ``(a, b, first_draw)`` of ``rows`` holding about ``budget`` counts each.

    ``words``: the ``(N, 963)`` spectrum words (a big-endian view is fine); ``rows``: the frames
    used, in order. ``first_draw`` is the number of counts before ``rows[a]``: where a chunk
    enters the compat dithering's one deviate per count stream (``spectrum.md`` §6.3), so
    chunks can be dithered independently. A frame with more than ``budget`` counts is a chunk
    of its own.
    """
    budget = COMPAT_CHUNK_COUNTS if budget is None else int(budget)
    F = rows.size
    totals = np.empty(F, dtype=np.int64)
    for a in range(0, F, 16384):
        b = min(F, a + 16384)
        totals[a:b] = np.asarray(words[rows[a:b]]).sum(axis=1, dtype=np.int64)
    c = np.cumsum(totals)
    out = []
    a = 0
    while a < F:
        base = int(c[a - 1]) if a else 0
        b = min(F, max(int(np.searchsorted(c, base + budget, side="right")), a + 1))
        out.append((a, b, base))
        a = b
    return out


def pi_compat(spec, gain, offset, grid: PIGrid, wh: WichmannHill, *, syserr=None,
              chunk_counts: int = 20_000_000) -> PIFrames:
    """Reference PHA -> PI dithering of ``(F, C)`` PHA counts (C = 963 words or 1024).

    Every count consumes one deviate of ``wh``: frames in order, PHA index ascending, one draw per
    count (``spectrum.md`` §6.3), including counts that fall outside the grid and the overflow/ULD
    words. ``pha = float32(2*floor(c/2) + 2u)``, ``E = pha*gain + offset`` in double,
    ``k = trunc((E - Emin)/Delta)``. ``syserr`` (512 float32 fractions by 9-bit channel) gives
    per-frame float32 systematic sums accumulated per count in draw order.
    """
    spec = np.asarray(spec)
    F, C = spec.shape
    gain = np.asarray(gain, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    n = grid.n
    counts = np.zeros((F, n), dtype=np.int32)
    syssum = np.zeros((F, n), dtype=np.float32) if syserr is not None else None
    out = np.zeros(F, dtype=np.int64)
    if syserr is not None:
        syserr = np.asarray(syserr, dtype=np.float32)
        sys_by_c = syserr[np.minimum(np.arange(C) // 2, syserr.size - 1)]
    per_frame = spec.sum(axis=1, dtype=np.int64)
    # split frames into chunks of at most chunk_counts draws
    bounds = [0]
    csum = np.cumsum(per_frame)
    while bounds[-1] < F:
        base = csum[bounds[-1] - 1] if bounds[-1] > 0 else 0
        nxt = int(np.searchsorted(csum, base + chunk_counts, side="right"))
        bounds.append(max(nxt, bounds[-1] + 1))
    bounds[-1] = F
    emin, delta, emax = np.float64(grid.emin), np.float64(grid.delta), np.float64(grid.emax)
    for a, b in zip(bounds[:-1], bounds[1:]):
        flat = spec[a:b].ravel().astype(np.int64)
        tot = int(flat.sum())
        if tot == 0:
            continue
        idx = np.repeat(np.arange(flat.size, dtype=np.int64), flat)
        u = wh.draw(tot)
        f = idx // C
        c = idx - f * C
        pha = (2 * (c // 2) + 2.0 * u).astype(np.float32)  # right side in double, stored float32
        e = pha.astype(np.float64) * gain[a + f] + offset[a + f]
        k = np.trunc((e - emin) / delta)
        ok = (e >= emin) & (e < emax) & (k < n)  # k = n (E within 4e-8 keV of Emax) is dropped
        key = f[ok] * n + k[ok].astype(np.int64)
        counts[a:b] = np.bincount(key, minlength=(b - a) * n).reshape(b - a, n)
        out[a:b] = np.bincount(f[~ok], minlength=b - a)
        if syssum is not None:
            syssum[a:b] = _segmented_f32_sum(key, sys_by_c[c[ok]], (b - a) * n).reshape(b - a, n)
    return PIFrames(counts, syssum, out)


def _probabilities(lo, width, grid: PIGrid):
    """First PI bin and the probabilities of bins k0..k0+2 for intervals ``[lo, lo + width)``."""
    emin, delta, emax = np.float64(grid.emin), np.float64(grid.delta), np.float64(grid.emax)
    hi = lo + width
    k0 = np.floor((lo - emin) / delta).astype(np.int64)
    p = np.empty(lo.shape + (3,), dtype=np.float64)
    for j in range(3):
        k = k0 + j
        blo = emin + k * delta
        bhi = np.minimum(blo + delta, emax)
        ov = np.minimum(hi, bhi)
        ov -= np.maximum(lo, blo)
        np.maximum(ov, 0.0, out=ov)
        ov[(k < 0) | (k >= grid.n)] = 0.0
        ov /= width
        p[..., j] = ov
    return k0, p


def channel_probabilities(gain, offset, grid: PIGrid, nchan: int):
    """Where 9-bit channel m of each row lands: first PI bin ``k0`` (int64[R, M]) and the
    probabilities ``p`` (float64[R, M, 3]) of bins k0, k0+1, k0+2 (0 for bins outside the grid).

    Channel m spans ``[2m*gain + offset, (2m+2)*gain + offset)`` uniformly (``spectrum.md`` §14).
    """
    gain = np.asarray(gain, dtype=np.float64)[:, None]
    offset = np.asarray(offset, dtype=np.float64)[:, None]
    m = np.arange(nchan, dtype=np.float64)[None, :]
    lo = 2.0 * m * gain + offset
    return _probabilities(lo, np.broadcast_to(2.0 * gain, lo.shape), grid)


def pi_default(counts9, gain, offset, grid: PIGrid, rng: np.random.Generator, *,
               syserr=None) -> PIFrames:
    """Multinomial PHA -> PI for ``(R, M)`` 9-bit counts, one gain/offset per row (§14).

    Each row may be one frame or the sum of frames that share a gain cell and an output bin.
    Only non-empty (row, channel) cells are drawn: sequential binomials over the (at most three)
    PI bins a channel overlaps. Returns int64 counts, float64 ``syssum`` (``n_k * SysErr[m]``) and
    the counts lost outside the grid.
    """
    n9 = np.asarray(counts9, dtype=np.int64)
    R, M = n9.shape
    n = grid.n
    nz = np.flatnonzero(n9)
    row, m = np.divmod(nz, M)
    remaining = n9.ravel()[nz]
    g = np.asarray(gain, dtype=np.float64)[row]
    lo = 2.0 * m * g + np.asarray(offset, dtype=np.float64)[row]
    k0, p = _probabilities(lo, 2.0 * g, grid)
    sys9 = None if syserr is None else np.asarray(syserr, dtype=np.float64)[:M][m]
    width = n + 3  # guard columns for k0 + 2 near the top
    counts = np.zeros(R * width, dtype=np.int64)
    syssum = np.zeros(R * width, dtype=np.float64) if syserr is not None else None
    pleft = np.ones(nz.size)
    base = row * width
    keys, draws, sys_w = [], [], []
    for j in range(3):
        pj = p[:, j]
        with np.errstate(invalid="ignore", divide="ignore"):
            q = np.where(pleft > 0, np.clip(pj / pleft, 0.0, 1.0), 0.0)
        act = np.flatnonzero((remaining > 0) & (q > 0))
        if act.size:
            draw = rng.binomial(remaining[act], q[act])
            remaining[act] -= draw
            keys.append(base[act] + np.clip(k0[act] + j, 0, width - 1))
            draws.append(draw)
            if syssum is not None:
                sys_w.append(draw * sys9[act])
        pleft = pleft - pj
    if keys:   # one sum over the three bins' draws (not three full-size passes)
        key = np.concatenate(keys)
        counts = np.bincount(key, weights=np.concatenate(draws), minlength=R * width).astype(np.int64)
        if syssum is not None:
            syssum = np.bincount(key, weights=np.concatenate(sys_w), minlength=R * width)
    out = np.bincount(row, weights=remaining, minlength=R).astype(np.int64)
    counts = counts.reshape(R, width)[:, :n]
    return PIFrames(counts, None if syssum is None else syssum.reshape(R, width)[:, :n], out)
