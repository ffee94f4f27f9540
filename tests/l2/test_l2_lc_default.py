"""Default-mode light curve internals: fast relative area, multinomial path, reproducibility."""
from __future__ import annotations

import numpy as np
import pytest

from xsm.products import effarea as EA
from xsm.products import gti as G
from xsm.products import lightcurve as L
from xsm.products import pi as PI
from xsm.products.provenance import Mode

from .helpers_l2 import quiet_lc_inputs

D = Mode.DEFAULT


@pytest.fixture(scope="module")
def quiet(golden_dir, real_caldb):
    return quiet_lc_inputs(golden_dir, real_caldb)


def test_l2_lc_fast_relarea_equals_effarea(quiet):
    day, gti, cal = quiet
    sa = day.sa
    sel = np.flatnonzero(gti.contains(day.time))
    th, ph, r = (np.asarray(sa[c])[sel] for c in ("Theta", "Phi", "DetPosR"))
    ref = EA.relative_area(th, ph, r, cal.area, cal.coefs["PI_ENE"], D)
    fast = L._FastRelArea(cal.area, cal.coefs["PI_ENE"], 0, 512)(th, ph, r)
    np.testing.assert_allclose(fast, ref, rtol=1e-12)


def test_l2_lc_default_reproducible_and_thread_independent(quiet, monkeypatch):
    day, gti, cal = quiet
    p = L.LightCurveParams(mode=D, seed=11)
    a = L.make_lightcurve(day.lc_day(), gti, p, cal).bands[0]
    monkeypatch.setattr(L, "CHUNK_FRAMES", 100)   # many chunks, run on two threads
    b = L.make_lightcurve(day.lc_day(), gti, p, cal).bands[0]
    c = L.make_lightcurve(day.lc_day(), gti, L.LightCurveParams(mode=D, seed=12), cal).bands[0]
    np.testing.assert_array_equal(a.fracexp, b.fracexp)
    assert not np.array_equal(a.rate, c.rate)            # another seed, another draw
    d = L.make_lightcurve(day.lc_day(), gti, p, cal).bands[0]
    np.testing.assert_array_equal(b.rate, d.rate)        # same seed and chunking: identical
    for threads in ("1", "3"):                           # whatever the thread count
        monkeypatch.setenv("XSM_THREADS", threads)
        e = L.make_lightcurve(day.lc_day(), gti, p, cal).bands[0]
        np.testing.assert_array_equal(b.rate, e.rate)
        np.testing.assert_array_equal(b.error, e.error)


@pytest.mark.parametrize("band", [(1.0, 5.0), (1.2, 1.3), (6.0, 7.0)])
def test_l2_lc_default_band_counts_match_expectation(quiet, band):
    """The multinomial band counts agree with Σ n·P(band) computed from the dithering intervals."""
    day, gti, cal = quiet
    lo, hi = band
    lc = L.make_lightcurve(day.lc_day(), gti, L.LightCurveParams(mode=D, areascal=False, enelow=lo,
                                                                 enehigh=hi), cal).bands[0]
    got = float(np.sum(lc.rate.astype(np.float64) * lc.fracexp))
    sel = np.flatnonzero(gti.contains(day.time))
    k1, k2 = L.pi_band(cal.grid, lo, hi)
    hk, sa = day.hk, day.sa
    fg = PI.frame_gain(np.asarray(hk["TECCurrent"])[sel], np.asarray(sa["DetPosR"])[sel], cal.gain_sun,
                       offset_tweak=True)
    n9 = PI.nine_bit(np.asarray(day.words[sel]).astype(np.int64), D)
    k0, p = PI.channel_probabilities(fg.gain, fg.offset, cal.grid, n9.shape[1])
    k = k0[..., None] + np.arange(3)
    pin = np.where((k >= k1) & (k <= k2), p, 0.0).sum(-1)
    mean = float(np.sum(n9 * pin))
    var = float(np.sum(n9 * pin * (1 - pin)))
    assert abs(got - mean) < 5 * np.sqrt(var) + 1e-9


def test_l2_lc_q11_float32_accumulation():
    """Q11: compat sums a bin in float32 one channel at a time; default keeps every count."""
    n = 6
    spectra = np.zeros((n, 963), np.int64)
    spectra[:, :961] = 60001                      # 57.7 million counts per frame (> 2**24)
    day = L.DayArrays(time=1000.0 + np.arange(n), spectra=spectra, hk={"Time": 1000.0 + np.arange(n)})
    gti = G.GTI.from_pairs([[999.0, 1010.0]])
    exact = 961 * 60001
    kw = dict(enesel=False, areascal=False, chstart=0, chstop=960)
    c = L.make_lightcurve(day, gti, L.LightCurveParams(mode=Mode.XSMDAS_1_2, **kw)).bands[0]
    d = L.make_lightcurve(day, gti, L.LightCurveParams(mode=D, **kw)).bands[0]
    assert np.all(d.rate == np.float32(exact))
    assert np.all(c.rate != np.float32(exact))       # float32 rounding at every addition
    assert abs(float(c.rate[0]) - exact) / exact < 1e-4
