"""The reference's float32 running sums (quirk Q11), vectorised across independent sums.

XSMDAS 1.2 accumulates spectra, areas and light curves in float32, one frame after another: each
addition is evaluated in double and rounded to float32, so the result depends on the order of
the terms. These helpers keep that order within each sum and work on all sums at once: step k
adds the k-th term of every sum.
"""
from __future__ import annotations

import numpy as np


def rank_in_run(keys: np.ndarray) -> np.ndarray:
    """0 for the first element of each run of equal ``keys``, 1 for the second, ..."""
    if keys.size == 0:
        return keys
    new = np.r_[True, keys[1:] != keys[:-1]]
    start = np.maximum.accumulate(np.where(new, np.arange(keys.size), 0))
    return np.arange(keys.size) - start


def accumulate_rows_f32(acc: np.ndarray, rows: np.ndarray, block: np.ndarray) -> None:
    """``acc[rows[i]] = float32(float64(acc[rows[i]]) + block[i])`` for i in order, in place.

    ``acc``: float32 ``(R, E)``; ``rows``: non-decreasing row of each term (int, ``(n,)``);
    ``block``: the terms ``(n, E)`` (any float type). Many short rows: one vectorised step per
    term position within a row; few long rows of float32 terms: one ``add.accumulate`` per row.
    """
    rows = np.asarray(rows)
    if rows.size == 0:
        return
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ends = np.r_[starts[1:], rows.size]
    if block.dtype == np.float32 and starts.size <= int((ends - starts).max()):
        # few long rows: one ordered float32 accumulate per row (for float32 terms, rounding the
        # double sum to float32 is the float32 sum: double has more than 2 x 24 + 2 bits)
        for a, b in zip(starts, ends):
            g = rows[a]
            stack = np.concatenate([acc[g][None, :], block[a:b]], axis=0)
            acc[g] = np.add.accumulate(stack, axis=0, dtype=np.float32)[-1]
        return
    rank = rank_in_run(rows)
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        m = np.flatnonzero(rank == r)
        g = rows[m]
        acc[g] = (acc[g].astype(np.float64) + block[m]).astype(np.float32)
