"""9-bit channel sums are the same whatever the word type the fast paths hand over.

The one-decode products pass zero-copy big-endian uint16 views of the frames
(``frame.spectrum_view``) where the file readers pass int32/int64 copies: the pair sums must not
wrap at 65536 (two full 16-bit words sum to 131070).
"""
from __future__ import annotations

import numpy as np
import pytest

from xsm.products import pi as PI
from xsm.products.provenance import Mode


@pytest.mark.parametrize("mode", [Mode.DEFAULT, Mode.XSMDAS_1_2])
def test_perf_equiv_nine_bit_word_types(mode):
    rng = np.random.default_rng(3)
    words = rng.integers(0, 65536, size=(5, 963)).astype(np.int64)
    words[0, :] = 65535                                     # every pair sum above 65535
    ref = PI.nine_bit(words, mode)
    assert ref[0, 0] == 131070
    for dt in (">u2", "<u2", np.int32):
        got = PI.nine_bit(words.astype(dt), mode)
        np.testing.assert_array_equal(got, ref)
        assert got.dtype.itemsize >= 4
