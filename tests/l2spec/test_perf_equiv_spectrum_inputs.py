"""The spectrum CLI's light reader (memory-mapped frames, a few HK/SA columns) sees the same day
as the full level-1 readers, and refuses a truncated science file with one line (a memory map of
a short file would otherwise fail later, on a page access)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from xsm.products import spectrum as S
from xsm.products.errors import InputFormatError
from xsm.products.level2 import load_day



def _case(golden_dir):
    d = golden_dir / "short_quiet"
    return (next(d.glob("*_level1.fits")), next(d.glob("*_level1.hk")), next(d.glob("*_level1.sa")))


def test_perf_equiv_spectrum_inputs_same_day(golden_dir):
    fits_, hk, sa = _case(golden_dir)
    day, hkc, sac = S.read_spectrum_inputs(fits_, hk, sa)
    full = load_day(fits_, hk, sa)
    np.testing.assert_array_equal(day.time, full.time)
    np.testing.assert_array_equal(np.asarray(day.data), full.l1.data)
    for c in hkc:
        np.testing.assert_array_equal(hkc[c], np.asarray(full.hk[c]))
    for c in sac:
        np.testing.assert_array_equal(sac[c], np.asarray(full.sa[c]))


def test_perf_equiv_spectrum_inputs_truncated(golden_dir, tmp_path):
    fits_, hk, sa = _case(golden_dir)
    cut = tmp_path / fits_.name
    cut.write_bytes(fits_.read_bytes()[:-5000])
    with warnings.catch_warnings(), pytest.raises(InputFormatError, match="truncated"):
        warnings.simplefilter("ignore")            # astropy's own "may have been truncated"
        S.read_spectrum_inputs(cut, hk, sa)
