"""Wichmann-Hill AS 183 (``spectrum.md`` §6): test vector, periods, vectorised = scalar."""
from __future__ import annotations

import math

import numpy as np

from xsm.products.wichmann_hill import (PERIODS, TEST_VECTOR, WichmannHill, deviates, deviates_at,
                                        draw_per_count)


def _scalar(n: int, skip: int = 0) -> list[float]:
    x, y, z = 5, 11, 17
    out = []
    for i in range(skip + n):
        x = (171 * x) % 30269
        y = (172 * y) % 30307
        z = (170 * z) % 30319
        if i >= skip:
            out.append(math.fmod(x / 30269 + y / 30307 + z / 30319, 1.0))
    return out


def test_test_vector_is_exact():
    assert deviates(0, 8).tolist() == list(TEST_VECTOR)


def test_vectorised_equals_scalar_across_all_periods():
    n = 40_000  # beyond every component period (30268, 30306, 15159)
    assert n > max(PERIODS)
    ref = np.array(_scalar(n))
    assert np.array_equal(deviates(0, n), ref)
    assert np.array_equal(deviates_at(np.arange(n)), ref)
    assert np.array_equal(deviates(31_000, 5_000), ref[31_000:36_000])


def test_stream_counter_carries_over_calls():
    wh = WichmannHill()
    a = wh.draw(3)
    b = wh.draw(10)
    wh.skip(7)
    c = wh.draw(5)
    ref = np.array(_scalar(25))
    assert np.array_equal(np.concatenate([a, b]), ref[:13])
    assert np.array_equal(c, ref[20:25])
    assert wh.count == 25


def test_periods_are_the_multiplicative_orders():
    for mul, mod, period in zip((171, 172, 170), (30269, 30307, 30319), PERIODS):
        assert pow(mul, period, mod) == 1
        assert all(pow(mul, d, mod) != 1 for d in range(1, period) if period % d == 0)


def test_draw_per_count_follows_c_order():
    counts = np.array([[0, 2, 1], [1, 0, 0]])
    wh = WichmannHill()
    u, idx = draw_per_count(counts, wh)
    assert idx.tolist() == [1, 1, 2, 3]
    assert np.array_equal(u, deviates(0, 4))
