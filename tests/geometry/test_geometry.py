"""Sun geometry (``geometry.md``): analytic eclipses, field of view, CK gap, astropy cross-check."""
from __future__ import annotations

import math

import numpy as np
import pytest
import spiceypy
from spiceypy import cyice

from xsm.products import geometry as G
from xsm.products import kernels as K
from xsm.products.errors import InputFormatError
from xsm.products.provenance import Mode

from .helpers_geometry import DAY0, runs


def _beta_deg(orbit: K.OrbitModel, et: float) -> float:
    """Sun elevation above the (inertially fixed) orbit plane, seen from the Moon."""
    st = orbit.states(np.array([et]))[0]
    h = np.cross(st[:3], st[3:])
    sun = np.asarray(spiceypy.spkpos("SUN", et, "J2000", "NONE", "MOON")[0])
    return 90.0 - math.degrees(spiceypy.vsep(h, sun))


def _analytic_fraction(orbit: K.OrbitModel, beta_deg: float, et: float, total: bool = False) -> float:
    """Fraction of a circular orbit in which the Moon hides (part of) the Sun.

    The spacecraft at orbital angle u from the sub-solar projection sees the Sun at
    separation sigma from the Moon's centre with cos(sigma) = -cos(beta) cos(u); the Moon's
    angular radius is asin(R/r), the Sun's asin(R_sun/d).  Hidden (partly) when
    sigma < a_m + a_s (totally: sigma <= a_m - a_s): |u - 180| < acos(cos(a_m +- a_s)/cos(beta)).
    """
    d_sun = float(np.linalg.norm(spiceypy.spkpos("SUN", et, "J2000", "NONE", "MOON")[0]))
    a_m = math.asin(K.MOON_RADIUS_KM / orbit.radius_km)
    a_s = math.asin(K.SUN_RADIUS_KM / d_sun)
    lim = a_m - a_s if total else a_m + a_s
    return math.acos(math.cos(lim) / math.cos(math.radians(beta_deg))) / math.pi


# --------------------------------------------------------------------------------------
# Occultation: analytic values
# --------------------------------------------------------------------------------------
def test_occulted_fraction_matches_analytic(angles_nogap, kset_nogap, spice_loaded):
    a = angles_nogap
    assert a.coverage.n_missing == 0
    spice_loaded([kset_nogap.metakernel])
    et_mid = float(K.met_to_et([a.time[len(a) // 2]])[0])
    beta = _beta_deg(kset_nogap.orbit, et_mid)
    expected = _analytic_fraction(kset_nogap.orbit, beta, et_mid)
    measured = a.occult_flag.mean()          # three whole orbits
    assert 0.3 < expected < 0.45
    assert measured == pytest.approx(expected, rel=0.01)
    # total occultation alone
    total = (a.occult_code == -3).mean()
    assert total == pytest.approx(_analytic_fraction(kset_nogap.orbit, beta, et_mid, total=True), rel=0.01)


def test_eclipse_durations_match_analytic(angles_nogap, kset_nogap, spice_loaded):
    a = angles_nogap
    spice_loaded([kset_nogap.metakernel])
    period = kset_nogap.orbit.period_s
    eclipses = [(i, j) for i, j in runs(a.occult_flag == 1) if i > 0 and j < len(a) - 1]
    assert len(eclipses) >= 2                 # whole eclipses inside the window
    for i, j in eclipses:
        et = float(K.met_to_et([0.5 * (a.time[i] + a.time[j])])[0])
        beta = _beta_deg(kset_nogap.orbit, et)
        expected = _analytic_fraction(kset_nogap.orbit, beta, et) * period
        measured = a.time[j] - a.time[i] + 1.0       # 1-s samples
        assert measured == pytest.approx(expected, rel=0.01), (i, j)
        # partial phases at both edges last seconds, not minutes (geometry.md §6)
        partial = (a.occult_code[i:j + 1] == -1).sum()
        assert 2 <= partial <= 60


def test_numpy_occultation_equals_cspice_occult(angles_nogap, kset_nogap, spice_loaded):
    """The numpy test of §6 reproduces CSPICE occult codes (negative = Moon in front)."""
    a = angles_nogap
    spice_loaded([kset_nogap.metakernel])
    edges = [k for i, j in runs(a.occult_flag == 1) for k in (i, j)]
    sel = np.unique(np.concatenate([np.arange(max(e - 30, 0), min(e + 30, len(a))) for e in edges]
                                   + [np.arange(0, len(a), 97)]))
    et = np.ascontiguousarray(K.met_to_et(a.time[sel]))
    codes = np.asarray(cyice.occult_v("SUN", "ELLIPSOID", "IAU_SUN", "MOON", "ELLIPSOID", "IAU_MOON",
                                      "LT", "-152", et))
    assert set(np.unique(codes)) <= {-3, -1, 0}
    assert (codes == -3).any() and (codes == -1).any() and (codes == 0).any()
    np.testing.assert_array_equal(codes, a.occult_code[sel])


# --------------------------------------------------------------------------------------
# Field of view, angles, columns
# --------------------------------------------------------------------------------------
def test_fovflag_agrees_with_the_ik_field_of_view(angles_nogap, kset_nogap, spice_loaded):
    a = angles_nogap
    spice_loaded([kset_nogap.metakernel])
    sel = np.arange(0, len(a), 7)
    et = np.ascontiguousarray(K.met_to_et(a.time[sel]))
    infov = np.asarray(cyice.fovtrg_v("CH2_XSM", "SUN", "POINT", " ", "LT+S", "-152", et)).astype(bool)
    flag = a.fov_flag[sel] == 1
    near_edge = np.abs(a.theta[sel] - 38.0) < 1e-6
    assert infov.any() and (~infov).any()
    np.testing.assert_array_equal(flag[~near_edge], infov[~near_edge])
    # FovFlag <=> Theta < 38 (float32 values as written)
    np.testing.assert_array_equal(a.fov_flag == 1, a.theta.astype(np.float32) < np.float32(38.0))


def test_realistic_fractions_and_ranges(angles_nogap):
    a = angles_nogap
    assert 0.25 <= a.fov_flag.mean() <= 0.75             # geometry.md §1
    assert not ((a.fov_flag == 1) & (a.occult_flag == 1)).any()
    # Phi in [-180, 0] for the default mounting (the half plane of the CALDB map, §8)
    assert np.all((a.phi >= -180.0) & (a.phi <= 0.0))
    assert np.all((a.theta >= 0) & (a.theta <= 180))
    assert np.all((a.ra > -180) & (a.ra <= 180)) and np.all(np.abs(a.dec) <= 90)
    assert np.all((a.ram_angle >= 0) & (a.ram_angle <= 180))
    assert np.ptp(a.ram_angle) > 30          # the yaw-steered bus turns the boresight


def test_detposr_default_compat_and_fill(angles_nogap, kset_nogap):
    a = angles_nogap
    inf = a.fov_flag == 1
    th = a.theta.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(a.detpos_r[inf], 3.2 * np.tan(np.radians(th[inf])), rtol=1e-12)
    assert np.all(a.detpos_r[~inf] == 3.2)
    assert a.detpos_r[inf].max() <= 3.2 * math.tan(math.radians(38.0))
    sub = a.time[:3000]
    c = G.compute_sun_angles(sub, kset_nogap, mode=Mode.XSMDAS_1_2, workers=1)
    ci = c.fov_flag == 1
    thc = c.theta.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(c.detpos_r[ci], 3.2 * np.tan(thc[ci] * 3.1415 / 180.0), rtol=1e-12)
    assert np.all(c.detpos_r[ci] < 3.2 * np.tan(np.radians(thc[ci])))     # quirk Q09


def test_angles_match_direct_spice_calls(angles_nogap, kset_nogap, spice_loaded):
    a = angles_nogap
    spice_loaded([kset_nogap.metakernel])
    for k in (0, 1234, 5000, 9999):
        et = float(K.met_to_et([a.time[k]])[0])
        s, _ = spiceypy.spkpos("SUN", et, "CH2_XSM", "LT+S", "-152")
        assert math.degrees(spiceypy.vsep(s, [0, 0, 1])) == pytest.approx(a.theta[k], abs=1e-8)
        assert math.degrees(math.atan2(s[1], s[0])) == pytest.approx(a.phi[k], abs=1e-8)
        b = spiceypy.pxform("CH2_XSM", "J2000", et) @ [0, 0, 1]
        _r, ra, dec = spiceypy.recrad(b)
        ra = math.degrees(ra)
        assert (ra - 360 if ra > 180 else ra) == pytest.approx(a.ra[k], abs=1e-8)
        assert math.degrees(dec) == pytest.approx(a.dec[k], abs=1e-8)
        st, _ = spiceypy.spkezr("-152", et, "J2000", "NONE", "MOON")
        assert math.degrees(spiceypy.vsep(st[3:], b)) == pytest.approx(a.ram_angle[k], abs=1e-8)


def _sep_arcsec(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between row vectors (atan2 of cross and dot: no arccos precision floor)."""
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=1), np.sum(a * b, axis=1))) * 3600


def test_fast_path_equals_direct_spice_calls(angles_nogap, kset_nogap, spice_loaded):
    """Interpolated barycentric Sun/Moon + numpy light time and stelab == spkpos_v LT+S, LT."""
    spice_loaded([kset_nogap.metakernel])
    et = np.ascontiguousarray(K.met_to_et(angles_nogap.time[::3]))
    fast = G._raw_geometry_fast(et, K.SUN_RADIUS_KM, K.MOON_RADIUS_KM)
    ref = G._raw_geometry_spice(et, K.SUN_RADIUS_KM, K.MOON_RADIUS_KM)
    assert _sep_arcsec(fast["s"], ref["s"]).max() < 1e-4
    np.testing.assert_array_equal(fast["code"], ref["code"])
    np.testing.assert_allclose(fast["ram"], ref["ram"], atol=1e-10)
    np.testing.assert_array_equal(fast["bore"], ref["bore"])


def test_worker_processes_give_identical_results(kset_nogap, angles_nogap, monkeypatch):
    monkeypatch.setattr(G, "MIN_ROWS_PER_WORKER", 1000)
    b = G.compute_sun_angles(angles_nogap.time, kset_nogap, workers=2)
    for name in ("theta", "phi", "fov_flag", "occult_flag", "detpos_r", "ram_angle", "ra", "dec",
                 "ang_rate"):
        np.testing.assert_array_equal(getattr(b, name), getattr(angles_nogap, name), err_msg=name)


# --------------------------------------------------------------------------------------
# Independent cross-check with astropy on de421
# --------------------------------------------------------------------------------------
def test_sun_direction_agrees_with_astropy_within_1_arcsec(angles_nogap, kset_nogap, spice_loaded):
    """Sun seen from the spacecraft, in the XSM frame, from astropy's de421 (no SPICE SPK).

    The spacecraft position relative to the Moon and the J2000 -> XSM rotation come from
    the mission SPK/CK (astropy cannot read them); the Sun and the Moon from astropy reading
    skyfield-data's de421.bsp, with light time iterated and first-order stellar aberration.
    """
    from astropy import units as u
    from astropy.coordinates import get_body_barycentric_posvel
    from astropy.time import Time
    from astropy.utils import iers

    iers.conf.auto_download = False
    a = angles_nogap
    idx = np.arange(0, len(a), 211)
    spice_loaded([kset_nogap.metakernel])
    et = np.ascontiguousarray(K.met_to_et(a.time[idx]))
    sc_rel_moon, _ = cyice.spkezr_v("-152", et, "J2000", "NONE", "MOON")
    sc_rel_moon = np.asarray(sc_rel_moon)
    m = np.asarray(cyice.pxform_v("J2000", "CH2_XSM", et))
    eph = str(K.planetary_spk_path().resolve())
    t = Time(57754.0 + a.time[idx] / 86400.0, format="mjd", scale="utc")
    moon_p, moon_v = get_body_barycentric_posvel("moon", t, ephemeris=eph)
    obs = moon_p.xyz.to_value(u.km).T + sc_rel_moon[:, :3]
    vobs = moon_v.xyz.to_value(u.km / u.s).T + sc_rel_moon[:, 3:]
    c = 299792.458
    lt = np.zeros(len(idx))
    for _ in range(4):
        sun_p, _v = get_body_barycentric_posvel("sun", t - lt * u.s, ephemeris=eph)
        rel = sun_p.xyz.to_value(u.km).T - obs
        lt = np.linalg.norm(rel, axis=1) / c
    d = rel / np.linalg.norm(rel, axis=1)[:, None]
    d = d + vobs / c                                  # stellar aberration, first order
    d /= np.linalg.norm(d, axis=1)[:, None]
    s_astropy = np.einsum("nij,nj->ni", m, d)
    th, ph = np.radians(a.theta[idx]), np.radians(a.phi[idx])
    s_ours = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=1)
    sep = _sep_arcsec(s_ours, s_astropy)
    print(f"astropy vs xsm Sun direction: max {sep.max():.2e} arcsec")
    assert sep.max() < 1.0, sep.max()
    # the same in J2000, independent of the CK: the Sun from the spacecraft
    sun_spice, _ = cyice.spkpos_v("SUN", et, "J2000", "LT+S", "-152")
    sun_spice = np.asarray(sun_spice)
    sep_j = _sep_arcsec(sun_spice / np.linalg.norm(sun_spice, axis=1)[:, None], d)
    assert sep_j.max() < 1.0, sep_j.max()


# --------------------------------------------------------------------------------------
# Coverage gaps: flagged rows and a report, never an exception
# --------------------------------------------------------------------------------------
def test_ck_gap_gives_fill_and_report_not_an_exception(kset_gap):
    met = DAY0 - 600.0 + np.arange(7200.0 + 1200.0)     # starts and ends outside the SPK too
    a = G.compute_sun_angles(met, kset_gap, workers=1)
    rep = a.coverage
    (g0, g1), = kset_gap.ck_gaps_met
    in_gap = (met > g0) & (met < g1)
    outside = (met < DAY0 - 60.0) | (met > DAY0 + 7200.0 + 60.0)
    assert not a.covered[in_gap].any() and not a.covered[outside].any()
    # everything else is covered, except within one CK step (8 s) of the gap
    near_gap = (met > g0 - 8.01) & (met < g1 + 8.01)
    assert a.covered[~near_gap & ~outside].all()
    assert rep.n_missing == int((~a.covered).sum())
    assert 600 <= rep.n_missing_by_kind["ck"] and rep.n_missing_by_kind["spk"] > 0
    # three runs: before the kernels, the CK gap, after the kernels
    assert len(rep.missing_intervals_met) == 3
    gap_run = rep.missing_intervals_met[1]
    assert gap_run[0] <= g0 + 1 and gap_run[1] >= g1 - 1 and gap_run[1] - gap_run[0] < 600 + 20
    bad = ~a.covered
    for col in ("theta", "phi", "ram_angle", "ra", "dec", "ang_rate"):
        assert np.isnan(getattr(a, col)[bad]).all(), col
    assert (a.fov_flag[bad] == 0).all() and (a.occult_flag[bad] == 0).all()
    assert (a.detpos_r[bad] == 3.2).all()
    assert "no geometry for" in rep.summary()
    assert np.isfinite(a.theta[a.covered]).all()


def test_no_coverage_at_all_is_not_an_exception(kset_gap):
    met = DAY0 + 86400.0 * 10 + np.arange(100.0)
    a = G.compute_sun_angles(met, kset_gap, workers=1)
    assert a.coverage.n_missing == 100 and not a.covered.any()
    assert np.isnan(a.theta).all() and (a.detpos_r == 3.2).all()


def test_ck_without_its_sclk_gives_fill_not_an_exception(kset_gap):
    st, se = kset_gap.static, kset_gap.session
    met = DAY0 + 0.5 + np.arange(600.0)
    a = G.compute_sun_angles(met, [st.metakernel, se.spk, se.ck], workers=1)
    assert a.coverage.n_missing == 600 and a.coverage.n_missing_by_kind["ck"] == 600
    assert a.coverage.unusable_kernels and "ch2_qib.bc" in a.coverage.unusable_kernels[0]
    assert np.isnan(a.theta).all()


def test_missing_kernels_are_one_line_errors(kset_gap, tmp_path):
    with pytest.raises(InputFormatError, match="not found"):
        G.compute_sun_angles([DAY0], [tmp_path / "nope.tm"])
    st = kset_gap.static
    no_ik = [st.lsk, st.pck, st.fk, st.planetary_spk, *kset_gap.session.files]
    with pytest.raises(InputFormatError, match="IK"):
        G.compute_sun_angles([DAY0], no_ik)
    no_pck = [st.lsk, st.fk, st.ik, st.planetary_spk, *kset_gap.session.files]
    with pytest.raises(InputFormatError, match="BODY10_RADII"):
        G.compute_sun_angles([DAY0], no_pck)
    bad = tmp_path / "foreign.bsp"
    bad.write_bytes(b"\x00" * 3000)
    with pytest.raises(InputFormatError, match="foreign.bsp"):
        G.compute_sun_angles([DAY0], [st.metakernel, bad])
    assert spiceypy.ktotal("ALL") == 0


def test_session_kernels_loaded_in_order(tmp_path, orbit):
    """Static meta-kernel + several sessions' kernels: coverage is the union."""
    static = K.write_static_kernels(tmp_path / "static")
    a = K.write_session_kernels(tmp_path, "s1_00", DAY0, DAY0 + 1800.0, orbit, pad_s=0.0)
    b = K.write_session_kernels(tmp_path, "s2_00", DAY0 + 1700.0, DAY0 + 3600.0, orbit, pad_s=0.0)
    met = DAY0 + 0.5 + np.arange(3599.0)
    ang = G.compute_sun_angles(met, [static.metakernel, a, b], workers=1)
    assert ang.coverage.n_missing == 0
    assert sorted(Path_names(ang.kernels.by_kind["spk"])) == ["s1_00_sv.bsp", "s2_00_sv.bsp"]
    assert Path_names(ang.kernels.by_kind["planetary_spk"]) == ["de421.bsp"]


def Path_names(paths):
    from pathlib import Path

    return [Path(p).name for p in paths]


# --------------------------------------------------------------------------------------
# AngRate (§5)
# --------------------------------------------------------------------------------------
def test_angrate_rule():
    t = np.array([0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0])
    th = np.array([10.0, 10.5, 11.5, 13.0, 20.0, 20.25, 21.0], dtype=np.float32)
    r = G.ang_rate(t, th)
    # row 1..3 differences; row 0 takes row 1; row 4 (after the gap) takes row 5; last = previous
    np.testing.assert_allclose(r, [0.5, 0.5, 1.0, 1.5, 0.25, 0.25, 0.25])
    th2 = th.copy()
    th2[2] = np.nan
    r2 = G.ang_rate(t, th2)
    assert np.isnan(r2[2]) and np.isnan(r2[3])


def test_sa_file_format_matches_the_golden_reference(short_quiet_l1, kset_gap, tmp_path, fitsverify):
    """The .sa written for a level-1 file: golden FORMAT (columns, units, keywords), row aligned."""
    from astropy.io import fits

    out = tmp_path / "ch2_xsm_20210905_v1_level1.sa"
    path, ang = G.make_sa_file(short_quiet_l1, [kset_gap.metakernel], out, workers=1)
    assert path == out and out.is_file()
    fitsverify(out)
    golden = short_quiet_l1.with_suffix(".sa")
    with fits.open(out) as h, fits.open(golden) as g, fits.open(short_quiet_l1) as l1:
        ours, ref = h["SUNANG"], g["SUNANG"]
        assert ours.columns.names == ref.columns.names
        assert ours.columns.formats == ref.columns.formats
        assert ours.columns.units == ref.columns.units
        assert ours.header["NAXIS1"] == ref.header["NAXIS1"] == 38
        for key in ("EXTNAME", "MISSION", "TELESCOP", "INSTRUME", "ORIGIN", "TIMESYS", "MJDREF",
                    "XSMDASVE", "TSTART", "TSTOP", "TELAPSE", "DATE-OBS", "DATE-END"):
            assert key in ours.header, key
        for key in ("MISSION", "TELESCOP", "INSTRUME", "CONTENT", "XSMDASVE"):
            assert h[0].header[key] == g[0].header[key], key
        # row-aligned with the science file, Time bit-identical (level1.md §6 rule 4)
        np.testing.assert_array_equal(ours.data["Time"], l1["DATA"].data["Time"])
        assert ours.header["TSTART"] == l1["DATA"].header["TSTART"]
        assert ours.header["NGEOMISS"] == ang.coverage.n_missing
        hist = [str(c) for c in ours.header["HISTORY"]]
        for word in ("l1file = ch2_xsm_20210905_v1_level1.fits", "dummy = no", "numfiles = 1",
                     "spkfile = ch2_sv.bsp", "ckfile = ch2_qib.bc", "sclkfile = ch2_sclk.tsc",
                     "planetary_spk = de421.bsp", "fk = ch2_xsm_v01.tf", "ik = ch2_xsm_v01.ti"):
            assert word in hist, word
        d = ours.data
        np.testing.assert_array_equal(d["FovFlag"] == 1, d["Theta"] < 38.0)
        np.testing.assert_allclose(d["Theta"], ang.theta.astype(np.float32))


def test_sa_rows_without_geometry_in_the_file(short_quiet_l1, tmp_path):
    """A level-1 file outside every kernel's span still gets its .sa, all rows filled (§7)."""
    from xsm.products.level1 import read_sa

    ks = K.write_kernel_set(tmp_path / "k", DAY0 + 86400.0, DAY0 + 90000.0, ck_gap=False)
    out = tmp_path / "x.sa"
    _, ang = G.make_sa_file(short_quiet_l1, ks, out, workers=1)
    t = read_sa(out)
    assert len(t) == len(ang) == ang.coverage.n_missing
    assert np.isnan(t["Theta"]).all() and (t["FovFlag"] == 0).all() and (t["DetPosR"] == 3.2).all()
