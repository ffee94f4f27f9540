"""Threads for the level-2 reductions: one policy, one map.

The heavy reductions (light curves, spectra, effective areas) work on chunks of frames with
numpy calls that release the GIL, so threads share one in-memory day without copying it. Each
chunk that draws random numbers gets its own child generator (``rng.spawn``), made before the
work starts: results depend on the seed and the chunking only, never on the thread count or
the scheduling.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from xsm.products import settings

T = TypeVar("T")
R = TypeVar("R")


def imap_threads(func: Callable[[T], R], items: Sequence[T], threads: int | None = None) -> Iterator[R]:
    """``func(x)`` for each of ``items``, in order, computed on up to ``threads`` threads
    (default :func:`xsm.products.settings.compute_threads`) at most ``threads`` items ahead of
    the consumer: memory stays bounded, and the consumer's own work on result i (an ordered
    float32 sum, say) overlaps the computation of the next ones.

    One thread, or a single item, runs inline (no pool).
    """
    n = settings.compute_threads() if threads is None else max(1, int(threads))
    if n == 1 or len(items) < 2:
        for x in items:
            yield func(x)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(n, len(items)), thread_name_prefix="xsm-compute") as ex:
        pending: deque = deque()
        todo = iter(items)
        for x in todo:
            pending.append(ex.submit(func, x))
            if len(pending) >= n:
                break
        while pending:
            result = pending.popleft().result()
            for x in todo:
                pending.append(ex.submit(func, x))
                break
            yield result


def map_threads(func: Callable[[T], R], items: Sequence[T], threads: int | None = None) -> list[R]:
    """``[func(x) for x in items]`` on threads (see :func:`imap_threads`), in the order of ``items``."""
    return list(imap_threads(func, items, threads))
