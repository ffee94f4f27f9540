"""The fast default-mode light-curve path draws the multinomial of ``spectrum.md`` §14 exactly.

:func:`xsm.products.lightcurve._default_energy_sums` skips the draws whose outcome cannot change
the result (a channel's two PI bins with equal weights: both outside the band, or both inside it
without area scaling) and works on flat (frame, channel) indices for all gain cells of a chunk at
once. These tests compare it with a direct per-frame reference built from
:func:`xsm.products.pi.channel_probabilities` and the relative area of
:func:`xsm.products.effarea.relative_area`: the sums must be unbiased to within the (tiny) noise
of the PI split itself, and without area scaling the channels inside the band are counted exactly.
"""
from __future__ import annotations

import numpy as np
import pytest

from xsm.products import effarea as EA
from xsm.products import lightcurve as L
from xsm.products import pi as PI
from xsm.products.level2 import load_day
from xsm.products.provenance import Mode

from .helpers_l2 import case_files, quiet_lc_inputs

D = Mode.DEFAULT


@pytest.fixture(scope="module")
def quiet(golden_dir, real_caldb):
    day, gti, cal = quiet_lc_inputs(golden_dir, real_caldb)
    return day, np.flatnonzero(gti.contains(day.time)), cal


def _reference(day, sel, cal, k1, k2, areascal):
    """Per-frame expectation and split variance of Σ_k n_k w_k (w = 1/r in the band, else 0)."""
    hk, sa = day.hk, day.sa
    th, ph, rp = (np.asarray(sa[c])[sel] for c in ("Theta", "Phi", "DetPosR"))
    fg = PI.frame_gain(np.asarray(hk["TECCurrent"])[sel], rp, cal.gain_sun, offset_tweak=True)
    n9 = PI.nine_bit(np.asarray(day.words[sel]).astype(np.int64), D).astype(np.float64)
    k0, p = PI.channel_probabilities(fg.gain, fg.offset, cal.grid, n9.shape[1])
    w = np.zeros((sel.size, cal.grid.n + 4))
    if areascal:
        r = EA.relative_area(th, ph, rp, cal.area, cal.coefs["PI_ENE"], D)
        w[:, k1 + 1:k2 + 2] = 1.0 / r[:, k1:k2 + 1]
    else:
        w[:, k1 + 1:k2 + 2] = 1.0
    cols = np.clip(k0[..., None] + np.arange(3), -1, cal.grid.n + 2) + 1
    wk = np.take_along_axis(w[:, None, :], cols.reshape(sel.size, 1, -1), axis=2).reshape(cols.shape)
    m1 = (p * wk).sum(-1)
    m2 = (p * wk * wk).sum(-1)
    mean = (n9 * m1).sum(1)
    m4 = (p * wk ** 4).sum(-1)
    split_var = np.maximum(n9 * (m2 - m1 * m1), 0.0).sum(1)
    var2 = np.maximum(n9 * (m4 - m2 * m2), 0.0).sum()
    return mean, split_var, ((n9 * m2).sum(1), var2), fg, (th, ph, rp)


@pytest.mark.parametrize("areascal", [True, False])
@pytest.mark.parametrize("band", [(0.5, 15.0), (1.2, 1.3), (3.0, 7.0)])
def test_perf_equiv_lc_fast_sums_unbiased(quiet, monkeypatch, areascal, band):
    day, sel, cal = quiet
    k1, k2 = L.pi_band(cal.grid, *band)
    mean, split_var, (var_mean, var2), fg, geo = _reference(day, sel, cal, k1, k2, areascal)
    monkeypatch.setattr(L, "CHUNK_FRAMES", 64)            # several chunks and gain cells per chunk
    b = np.arange(sel.size)                               # one frame per bin
    cf, vf = L._default_energy_sums(day.words, sel, fg, cal, k1, k2, b, sel.size,
                                    np.random.default_rng(5), geo if areascal else None, threads=2)
    # the total is unbiased within the PI-split noise (far below the Poisson error)
    sigma = np.sqrt(split_var.sum())
    assert abs(cf.sum() - mean.sum()) <= 5 * sigma + 1e-9 * mean.sum()
    # frame by frame, no deviation beyond what the split allows
    z = np.abs(cf - mean) / np.sqrt(split_var + 1e-24)
    assert np.all((z < 8) | (np.abs(cf - mean) < 1e-9 * np.maximum(mean, 1)))
    # the variance term Σ n_k w_k² has the expectation Σ n Σ p w²
    assert abs(vf.sum() - var_mean.sum()) <= 5 * np.sqrt(var2) + 1e-9 * var_mean.sum()
    if not areascal:
        # counts are integers; only channels straddling a band edge are split at random
        np.testing.assert_array_equal(cf, np.round(cf))
        np.testing.assert_array_equal(cf, vf)


def test_perf_equiv_lc_split_frequency(quiet):
    """Many identical frames: the fraction moved into the band follows Binomial(n, p1)."""
    day, sel, cal = quiet
    k1, k2 = L.pi_band(cal.grid, 1.2, 1.3)
    one = sel[:1]
    F = 4000
    rows = np.repeat(one, F)
    fg = PI.frame_gain(np.asarray(day.hk["TECCurrent"])[rows], np.asarray(day.sa["DetPosR"])[rows],
                       cal.gain_sun, offset_tweak=True)
    k0, p = PI.channel_probabilities(fg.gain[:1], fg.offset[:1], cal.grid, 481)
    # the channel straddling the lower band edge: k0 = k1 - 1, two bins
    m = int(np.flatnonzero((k0[0] == k1 - 1) & (p[0, :, 2] == 0) & (p[0, :, 1] > 0))[0])
    words = np.zeros((1, 963), np.int64)
    words[0, 2 * m] = 7
    spectra = np.repeat(words, F, axis=0)
    cf, _ = L._default_energy_sums(spectra, np.arange(F), fg, cal, k1, k2, np.arange(F), F,
                                   np.random.default_rng(9), None, threads=1)
    p1 = float(p[0, m, 1])
    counts = np.bincount(cf.astype(np.int64), minlength=8)[:8]
    from scipy.stats import binom, chisquare

    expected = binom.pmf(np.arange(8), 7, p1) * F
    ok = expected > 5
    obs, exp = counts[ok], expected[ok]
    assert chisquare(obs, exp * obs.sum() / exp.sum()).pvalue > 1e-4


def test_perf_equiv_lc_inputs_mapped_frames(golden_dir, tmp_path):
    """``read_lc_inputs`` keeps DataArray in the memory map: same words as a full read; a
    truncated science file is refused at once with a one-line error."""
    import warnings

    from xsm.products.errors import InputFormatError

    f = case_files(golden_dir, "short_quiet")
    p = L.LightCurveParams()
    day = L.read_lc_inputs(f["fits"], f["hk"], f["sa"], p)
    full = load_day(f["fits"])
    np.testing.assert_array_equal(np.asarray(day.spectra), np.asarray(full.words))
    np.testing.assert_array_equal(day.time, full.time)
    cut = tmp_path / f["fits"].name
    cut.write_bytes(f["fits"].read_bytes()[:-5000])
    with warnings.catch_warnings(), pytest.raises(InputFormatError, match="truncated"):
        warnings.simplefilter("ignore")            # astropy's own "may have been truncated"
        L.read_lc_inputs(cut, f["hk"], f["sa"], p)
