"""Threads for the level-2 reductions: one policy, one map.

The heavy reductions (light curves, spectra, effective areas) work on chunks of frames with
numpy calls that release the GIL, so threads share one in-memory day without copying it. Each
chunk that draws random numbers gets its own child generator (``rng.spawn``), made before the
work starts: results depend on the seed and the chunking only, never on the thread count or
the scheduling.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from xsm.products import settings

T = TypeVar("T")
R = TypeVar("R")


def map_threads(func: Callable[[T], R], items: Sequence[T], threads: int | None = None) -> list[R]:
    """``[func(x) for x in items]``, on up to ``threads`` threads (default
    :func:`xsm.products.settings.compute_threads`), results in the order of ``items``.

    One thread, or a single item, runs inline (no pool).
    """
    n = settings.compute_threads() if threads is None else max(1, int(threads))
    if n == 1 or len(items) < 2:
        return [func(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(n, len(items)), thread_name_prefix="xsm-compute") as ex:
        return list(ex.map(func, items))
