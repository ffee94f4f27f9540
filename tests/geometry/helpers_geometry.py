"""Constants and helpers of the geometry tests."""
from __future__ import annotations

import numpy as np

from xsm.products.met import day_start_met

#: 2021-09-05 00:00:00 UTC (the day of the short_quiet golden case).
DAY0 = day_start_met("2021-09-05")


def runs(flag: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of runs of True."""
    d = np.diff(np.concatenate([[0], np.asarray(flag).astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1))
