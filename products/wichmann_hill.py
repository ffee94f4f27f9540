"""The Wichmann-Hill generator (Applied Statistics algorithm AS 183), vectorised.

XSMDAS 1.2 dithers PHA -> PI with AS 183 (``spectrum.md`` §6). The compatibility mode
(``Mode.XSMDAS_1_2``) must consume exactly the same stream in exactly the same order, so this
module reproduces it bit for bit.

Generator
---------
Three integer states seeded ``x = 5, y = 11, z = 17`` once per task run. Each draw advances
``x = 171x mod 30269``, ``y = 172y mod 30307``, ``z = 170z mod 30319`` and returns
``fmod(x/30269 + y/30307 + z/30319, 1.0)`` (double precision, summed left to right).

The three components are independent cycles with periods 30268, 30306 and 15159, so draw ``n``
(0-based) is a gather from three precomputed tables (``spectrum.md`` §6.2)::

    u[n] = fmod(X[n % 30268]/30269 + Y[n % 30306]/30307 + Z[n % 15159]/30319, 1.0)

API used by others
------------------
``WichmannHill()``
    A fresh stream (one per product in compat mode; never share one between products).
``wh.draw(n) -> float64[n]``
    The next ``n`` deviates; the running counter ``wh.count`` advances by ``n``.
``wh.skip(n)``
    Advance without producing values.
``deviates(start, n) -> float64[n]``
    Draws ``start .. start+n-1`` of a fresh stream (stateless).
``draw_per_count(counts, wh) -> (u, index)``
    For an ``(F, C)`` integer count array, one deviate per count in the reference order (frames in
    row order, channels ascending, one draw per count) and the flat C-order index (frame*C + channel)
    of each draw. This is the draw order of ``spectrum.md`` §6.3.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

SEED = (5, 11, 17)
MODULI = (30269, 30307, 30319)
MULTIPLIERS = (171, 172, 170)
#: Multiplicative orders of the three components (``spectrum.md`` §6.2).
PERIODS = (30268, 30306, 15159)

#: The first eight deviates of a fresh stream (``spectrum.md`` §6.1 test vector).
TEST_VECTOR = (0.18599430950614637, 0.7721349810232898, 0.5683068291775055, 0.30390115512131644,
               0.6801391588822217, 0.9724196496677635, 0.6156375994896139, 0.22555784592207906)


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-component contributions ``state/modulus`` for one full period, starting at draw 0."""
    out = []
    for seed, mod, mul, period in zip(SEED, MODULI, MULTIPLIERS, PERIODS):
        states = np.empty(period, dtype=np.int64)
        s = seed
        for k in range(period):
            s = (mul * s) % mod
            states[k] = s
        if (mul * s) % mod != states[0]:  # pragma: no cover - mathematical invariant
            raise AssertionError("Wichmann-Hill period table is inconsistent")
        t = states / float(mod)
        t.setflags(write=False)
        out.append(t)
    return out[0], out[1], out[2]


def deviates_at(n: np.ndarray) -> np.ndarray:
    """Deviates of draw numbers ``n`` (0-based, int64 array) of a fresh stream."""
    x, y, z = _tables()
    n = np.asarray(n, dtype=np.int64)
    s = x[n % PERIODS[0]] + y[n % PERIODS[1]]
    s += z[n % PERIODS[2]]
    return np.fmod(s, 1.0, out=s)


def deviates(start: int, n: int) -> np.ndarray:
    """Draws ``start`` .. ``start + n - 1`` of a fresh stream."""
    if n <= 0:
        return np.empty(0, dtype=np.float64)
    x, y, z = _tables()
    s = _cyclic(x, start, n)
    s += _cyclic(y, start, n)
    s += _cyclic(z, start, n)
    return np.fmod(s, 1.0, out=s)


def _cyclic(table: np.ndarray, start: int, n: int) -> np.ndarray:
    """``table[(start + arange(n)) % len(table)]`` without a modulo per element."""
    p = table.size
    first = start % p
    reps = -(-(first + n) // p)  # ceil
    if reps == 1:
        return table[first:first + n].copy()
    return np.tile(table, reps)[first:first + n]


class WichmannHill:
    """A Wichmann-Hill AS 183 stream with the XSMDAS seeds and a running draw counter."""

    def __init__(self, start: int = 0) -> None:
        self.count = int(start)

    def draw(self, n: int) -> np.ndarray:
        """The next ``n`` deviates (float64)."""
        u = deviates(self.count, int(n))
        self.count += int(n)
        return u

    def skip(self, n: int) -> None:
        """Advance the stream by ``n`` draws."""
        self.count += int(n)

    def random(self) -> float:
        """One deviate (scalar), for tests and tiny uses."""
        return float(self.draw(1)[0])


def draw_per_count(counts: np.ndarray, wh: WichmannHill) -> tuple[np.ndarray, np.ndarray]:
    """One deviate per count of ``counts`` (``(F, C)`` non-negative ints), in reference order.

    Returns ``(u, flat_index)``: ``u[j]`` is the deviate of draw j and ``flat_index[j]`` the
    C-order flat index ``frame*C + channel`` of the count it belongs to.
    """
    counts = np.asarray(counts)
    flat = counts.ravel()
    total = int(flat.sum(dtype=np.int64))
    index = np.repeat(np.arange(flat.size, dtype=np.int64), flat.astype(np.int64))
    return wh.draw(total), index
