"""Effective-area model (``effarea.md``): on-axis table, grouped sums equal frame-by-frame sums."""
from __future__ import annotations

import numpy as np

from xsm.products import effarea
from xsm.products.provenance import Mode

from .helpers_l2spec import CALDB

PRM = effarea.area_params(CALDB / "CH2xsmeffareapar20210423v02.fits")
ABS = CALDB / "CH2xsmabscoef20200410v01.fits"


def test_onaxis_area_equals_the_caldb_table():
    a0 = effarea.onaxis_area(PRM, effarea.abs_coef(ABS, "PI"))
    table = np.loadtxt(CALDB / "xsm_onaxis_effective_area.txt").ravel()[-512:]
    np.testing.assert_allclose(a0, table, rtol=1e-7)
    assert 0.00362 < a0.max() < 0.00364


def test_grouped_area_sums_equal_frame_by_frame_sums():
    n = 3000
    t = np.arange(n)
    th = 20 + 15 * np.sin(2 * np.pi * t / 7200)
    ph = -90 + 50 * np.sin(2 * np.pi * t / 5000)
    r = np.minimum(3.2 * np.tan(np.radians(th)), 3.35)
    g = t // 60
    coef = effarea.abs_coef(ABS, "RSP")
    for mode in (Mode.DEFAULT, Mode.XSMDAS_1_2):
        got = effarea.summed_area(th, ph, r, g, g.max() + 1, PRM, coef, mode)
        ref = np.add.reduceat(effarea.effective_area(th, ph, r, PRM, coef, mode), np.arange(0, n, 60), axis=0)
        m = ref > 1e-38
        rtol = 1e-12 if mode == Mode.DEFAULT else 1e-6  # compat: float32 sequential sums (Q11)
        np.testing.assert_allclose(got[m], ref[m], rtol=rtol)
        assert np.all(got[~m] < 1e-37)


def test_relative_area_is_one_on_axis_and_falls_off_axis():
    coef = effarea.abs_coef(ABS, "PI")
    r = effarea.relative_area(np.array([0.0, 30.0, 45.0]), np.array([-90.0] * 3), np.array([0.0, 1.85, 3.2]),
                              PRM, coef, Mode.DEFAULT)
    k = slice(100, 300)  # 3.8-10.4 keV
    assert np.allclose(r[0, k], 1.0, rtol=2e-2)
    assert np.all(r[1, k] < 0.9) and np.all(r[2, k] < r[1, k])
