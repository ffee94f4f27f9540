"""The physical model: GOES classes, thermal spectrum, flare profiles."""
from __future__ import annotations

import numpy as np
import pytest

from xsm.products import solar
from xsm.products.errors import ParameterError


@pytest.mark.parametrize("cls, flux", [("A1", 1e-8), ("B2.5", 2.5e-7), ("C1.0", 1e-6), ("M5", 5e-5),
                                       ("x2.3", 2.3e-4)])
def test_goes_class_round_trip(cls, flux):
    assert solar.parse_goes_class(cls) == pytest.approx(flux)
    assert solar.goes_class(flux) == cls.upper() if "." in cls else cls.upper() + ".0"


@pytest.mark.parametrize("bad", ["Q1", "", "M-1", "M0"])
def test_bad_class_is_a_parameter_error(bad):
    with pytest.raises(ParameterError):
        solar.parse_goes_class(bad)


def test_goes_flux_table_matches_direct_integration():
    T = np.array([2.0, 5.0, 12.0, 25.0])
    em = np.array([1e49, 1e48, 1e48, 1e49])
    direct = solar.goes_flux_of_spectrum(solar.photon_spectrum(T, em))
    assert np.allclose(solar.goes_flux(T, em), direct, rtol=1e-4)


def test_m1_flare_relation():
    # 15 MK, 1e49 cm^-3 is an M1-M2 flare (observed T-EM-class relation)
    assert 1e-5 <= solar.goes_flux(15.0, 1e49) < 2e-5


def test_fe_line_complex_grows_with_temperature():
    ew = solar.line_equivalent_widths(np.array([5.0, 25.0]))
    fe = [ln[4] for ln in solar.LINES].index("Fe XXV")
    assert ew[1, fe] > 10 * ew[0, fe]
    spec = solar.photon_spectrum(25.0, 1e48)
    k = np.searchsorted(solar.PHOTON_EDGES, 6.7) - 1
    cont = solar.continuum(solar.PHOTON_ENERGY[k:k + 1], 25.0, 1e48)[0] * solar.PHOTON_WIDTH
    assert spec[k] > 3 * float(cont)      # the 6.7 keV line stands out of the continuum


def test_flare_profile_peaks_at_requested_flux_and_time():
    fl = solar.Flare(t_peak=5000.0, peak_flux=solar.parse_goes_class("X2"), rise_s=240, decay_s=1200)
    t = np.arange(0.0, 12000.0, 1.0)
    flux, T, em = solar.flare_profile(t, fl)
    assert flux.max() == pytest.approx(2e-4)
    assert t[flux.argmax()] == 5000.0
    assert t[T.argmax()] < 5000.0 < t[em.argmax()]          # T leads, EM lags the flux peak
    # rise of minutes, decay of tens of minutes
    half = t[flux >= 1e-4]
    assert 60 < 5000 - half[0] < 600 and 600 < half[-1] - 5000 < 3000
    # EM x goes_per_em(T) reproduces the flux
    assert np.allclose(solar.goes_flux(T, em), flux, rtol=1e-9)


def test_solar_model_is_deterministic_per_seed():
    a = solar.make_solar_model("active", 0.0, 86400.0, np.random.default_rng(3))
    b = solar.make_solar_model("active", 0.0, 86400.0, np.random.default_rng(3))
    assert a == b and len(a.flares) >= 4
    with pytest.raises(ParameterError):
        solar.make_solar_model("stormy", 0.0, 1.0, np.random.default_rng(0))


def test_span_core_without_kernels(real_caldb):
    """simulate_span on the kernel-free stand-in orbit: counts conserved, Sun only in view."""
    from xsm.products import frame as frm, simulate as S

    rng = np.random.default_rng(4)
    plan = S.SpanPlan(t0=152204400.3, n_frames=900, hv_on_at=None, discard_frames=[100])
    geo = S.analytic_geometry(plan.met, phase0=0.3)
    model = solar.make_solar_model("active", plan.t0, plan.t0 + 900, rng)
    sim = S.simulate_span(plan, model, geo, S.load_instrument(plan.t0, real_caldb), rng)
    words = frm.spectrum_words(sim.frames)
    assert np.array_equal(words.sum(axis=1), sim.truth["Counts"])
    nosun = (geo.fov == 0) | (geo.occult == 1)
    assert np.all(sim.truth["ExpSun"][nosun] == 0) and np.all(sim.truth["ExpSun"][~nosun] > 0)
    assert frm.decode_fields(sim.frames)["FrameDiscardFlag"][100] == 1
    # expected per-minute spectra add up to the per-frame expectations
    assert sim.expected_spectra.sum() == pytest.approx(sim.truth["ExpCounts"].sum(), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_full_day_session_plan(seed):
    """A full day: 2-6 sessions of 2-6 h, consecutive ones overlapping by minutes, covering every frame."""
    from xsm.products import simulate as S

    n = 86400
    bounds = S.plan_sessions(n, S.FRAME_PERIOD, np.random.default_rng(seed))
    assert 2 <= len(bounds) <= 6
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for a, b in bounds:
        assert 2 * 3600 <= (b - a) * S.FRAME_PERIOD <= 6 * 3600
    for (a0, b0), (a1, b1) in zip(bounds, bounds[1:]):
        overlap = (b0 - a1) * S.FRAME_PERIOD
        assert S.OVERLAP_RANGE_S[0] - 2 <= overlap <= S.OVERLAP_RANGE_S[1] + 2
