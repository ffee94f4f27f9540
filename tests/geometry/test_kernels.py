"""The synthetic kernel set (``geometry.md`` §1, §9): content, frames, clock, orbit, CK gap."""
from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import spiceypy

from xsm.products import kernels as K
from xsm.products.errors import ParameterError

from .helpers_geometry import DAY0


def test_kernel_set_files_and_metakernel(kset_gap, spice_loaded):
    names = {p.name for p in kset_gap.files}
    assert {"naif0012.tls", "ch2_xsm_pck_v01.tpc", "ch2_xsm_v01.tf", "ch2_xsm_v01.ti", "de421.bsp",
            "ch2_sclk.tsc", "ch2_sv.bsp", "ch2_qib.bc"} == names
    assert all(p.is_file() for p in kset_gap.files)
    # the planetary ephemeris is the installed skyfield-data file, not a copy or a download
    assert kset_gap.static.planetary_spk == K.planetary_spk_path()
    spice_loaded([kset_gap.metakernel])
    assert spiceypy.ktotal("ALL") == 9          # the meta-kernel and its 8 kernels
    assert spiceypy.bodn2c("CH2_XSM") == K.XSM_FRAME_ID
    assert spiceypy.bodn2c("CHANDRAYAAN-2") == -152
    assert np.allclose(spiceypy.bodvrd("SUN", "RADII", 3)[1], 696000.0)
    assert np.allclose(spiceypy.bodvrd("MOON", "RADII", 3)[1], 1737.4)
    # IAU_SUN and IAU_MOON exist
    spiceypy.pxform("IAU_SUN", "J2000", 683000000.0)
    spiceypy.pxform("IAU_MOON", "J2000", 683000000.0)


def test_metakernel_long_paths_are_continued(tmp_path, spice_loaded):
    deep = tmp_path / ("a_rather_long_directory_name_" * 4)
    st = K.write_static_kernels(deep)
    text = st.metakernel.read_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "+'" in text
    spice_loaded([st.metakernel])
    files = {spiceypy.kdata(i, "ALL")[0] for i in range(spiceypy.ktotal("ALL"))}
    assert str(st.fk.resolve()) in files


def test_kernels_are_deterministic(tmp_path, orbit):
    a = K.write_kernel_set(tmp_path / "a", DAY0, DAY0 + 3600.0, orbit=orbit)
    b = K.write_kernel_set(tmp_path / "b", DAY0, DAY0 + 3600.0, orbit=orbit)
    for pa, pb in zip(a.files, b.files):
        assert hashlib.md5(pa.read_bytes()).digest() == hashlib.md5(pb.read_bytes()).digest(), pa.name


def test_xsm_frame_mounting(kset_gap, spice_loaded):
    """pxform(CH2_XSM -> bus) @ z is the intended boresight; tkfram gives the matrix (§9)."""
    spice_loaded([kset_gap.metakernel])
    m = kset_gap.orbit.mounting.matrix()
    assert np.allclose(m.T @ m, np.eye(3), atol=1e-14)
    et = float(K.met_to_et([DAY0 + 100.0])[0])
    got = spiceypy.pxform("CH2_XSM", "CH2_SPACECRAFT", et)
    t, d = math.radians(20.0), math.radians(10.0)
    boresight = np.array([-math.sin(t) * math.cos(d), math.sin(d), math.cos(t) * math.cos(d)])
    assert np.allclose(got @ [0, 0, 1], boresight, atol=1e-12)
    assert np.allclose(got, m, atol=1e-12)
    rot, frame = spiceypy.tkfram(K.XSM_FRAME_ID)
    assert frame == K.BUS_FRAME_ID
    assert np.allclose(rot, m, atol=1e-12)


def test_ik_field_of_view(kset_gap, spice_loaded):
    spice_loaded([kset_gap.metakernel])
    shape, frame, bsight, _n, bounds = spiceypy.getfov(K.XSM_FRAME_ID, 4)
    assert shape == "CIRCLE" and frame == "CH2_XSM"
    assert np.allclose(bsight, [0, 0, 1])
    half = math.degrees(spiceypy.vsep(bsight, bounds[0]))
    assert half == pytest.approx(38.0, abs=1e-9)
    assert spiceypy.gdpool("INS-152500_DETPOS_DISTANCE", 0, 1)[0] == 3.2


def test_sclk_counts_seconds_from_the_met_epoch(kset_gap, spice_loaded):
    spice_loaded([kset_gap.metakernel])
    met = DAY0 + np.array([0.0, 1234.5, 7200.0])
    et = K.met_to_et(met)
    ticks = np.array([spiceypy.sce2c(-152, e) for e in et])
    # tick rate 65536/s; TDB seconds differ from MET by the TDB-TT periodic term (< 2 ms)
    assert np.all(np.abs(ticks / 65536.0 - met) < 2e-3)
    assert np.allclose(np.diff(ticks) / 65536.0, np.diff(met), atol=1e-6)
    back = np.array([spiceypy.sct2e(-152, t) for t in ticks])
    assert np.allclose(back, et, atol=1e-6)


def test_met_to_et_check_values(spice_loaded):
    """``time.md`` §1 check values."""
    spice_loaded([K.leapseconds_path()])
    et = K.met_to_et([0.0, 146880000.66264])
    assert et[0] == pytest.approx(536500869.1839298, abs=1e-6)
    assert et[1] == pytest.approx(683380869.8453277, abs=1e-6)
    assert np.allclose(K.et_to_met(et), [0.0, 146880000.66264], atol=1e-7)


def test_orbit_is_a_100km_circular_polar_orbit(kset_nogap, spice_loaded):
    spice_loaded([kset_nogap.metakernel])
    orbit = kset_nogap.orbit
    met = DAY0 + np.arange(0.0, 6 * 3600.0, 37.0)
    et = np.ascontiguousarray(K.met_to_et(met))
    st = np.array([spiceypy.spkezr("-152", e, "J2000", "NONE", "MOON")[0] for e in et[::20]])
    r = np.linalg.norm(st[:, :3], axis=1)
    assert np.allclose(r, 1737.4 + 100.0, atol=1e-6)
    assert orbit.period_s == pytest.approx(2 * math.pi * math.sqrt(1837.4**3 / K.MOON_GM))
    assert 7000 < orbit.period_s < 7100          # ~118 min
    # polar: the orbit normal is perpendicular to the IAU_MOON pole
    h = np.cross(st[0, :3], st[0, 3:]).copy()
    pole = spiceypy.pxform("IAU_MOON", "J2000", et[0])[:, 2].copy()
    assert abs(math.degrees(spiceypy.vsep(h, pole)) - 90.0) < 1e-6
    # beta (Sun above the orbit plane) at the anchor epoch
    sun = np.array(spiceypy.spkpos("SUN", et[0], "J2000", "NONE", "MOON")[0])
    beta = 90.0 - math.degrees(spiceypy.vsep(h, sun))
    assert beta == pytest.approx(30.0, abs=1e-3)


def test_ck_has_one_gap_visible_only_at_interval_level(kset_gap, spice_loaded):
    spice_loaded([kset_gap.metakernel])
    ck = str(kset_gap.session.ck)
    assert list(spiceypy.ckobj(ck)) == [K.BUS_FRAME_ID]
    seg = spiceypy.ckcov(ck, K.BUS_FRAME_ID, False, "SEGMENT", 0.0, "TDB")
    itv = spiceypy.ckcov(ck, K.BUS_FRAME_ID, False, "INTERVAL", 0.0, "TDB")
    assert spiceypy.wncard(seg) == 1
    assert spiceypy.wncard(itv) == 2
    gap_et = (spiceypy.wnfetd(itv, 0)[1], spiceypy.wnfetd(itv, 1)[0])
    gap_met = K.et_to_met(np.array(gap_et))
    (g0, g1), = kset_gap.ck_gaps_met
    # the data gap contains the requested gap and exceeds it by less than one CK step (8 s)
    assert gap_met[0] <= g0 < gap_met[0] + 8.0 + 1e-3
    assert gap_met[1] - 8.0 - 1e-3 < g1 <= gap_met[1]
    # no pointing inside the gap, pointing outside it
    sclk = spiceypy.sce2c(-152, float(K.met_to_et([0.5 * (g0 + g1)])[0]))
    with spiceypy.no_found_check():
        *_, found = spiceypy.ckgp(K.BUS_FRAME_ID, sclk, 0.0, "J2000")
    assert not found
    sclk = spiceypy.sce2c(-152, float(K.met_to_et([g0 - 100.0])[0]))
    with spiceypy.no_found_check():
        *_, found = spiceypy.ckgp(K.BUS_FRAME_ID, sclk, 0.0, "J2000")
    assert found


def test_ck_attitude_follows_the_model(kset_nogap, spice_loaded):
    """Nadir-pointing yaw-steered bus: +X to the Moon, Sun in the +X/+Z half plane."""
    spice_loaded([kset_nogap.metakernel])
    met = DAY0 + np.arange(100.0, 6000.0, 13.7)
    et = np.ascontiguousarray(K.met_to_et(met))
    from spiceypy import cyice

    c = np.asarray(cyice.pxform_v("J2000", "CH2_SPACECRAFT", et))
    moon, _ = cyice.spkpos_v("MOON", et, "J2000", "NONE", "-152")
    sun, _ = cyice.spkpos_v("SUN", et, "J2000", "NONE", "-152")
    moon_b = np.einsum("nij,nj->ni", c, np.asarray(moon))
    sun_b = np.einsum("nij,nj->ni", c, np.asarray(sun))
    ang = np.degrees(np.arccos(moon_b[:, 0] / np.linalg.norm(moon_b, axis=1)))
    assert ang.max() < 0.05                       # +X at the Moon within jitter + interpolation
    s = sun_b / np.linalg.norm(sun_b, axis=1)[:, None]
    assert np.all(np.abs(s[:, 1]) < 1e-3) and np.all(s[:, 2] > 0)
    model = kset_nogap.orbit.attitude(et)
    err = np.degrees(np.arccos(np.clip((np.einsum("nij,nij->n", c, model) - 1) / 2, -1, 1)))
    assert err.max() < 0.005


def test_session_kernels_agree_where_sessions_overlap(tmp_path, orbit, spice_loaded):
    a = K.write_session_kernels(tmp_path, "XSM01G26CHO0000100NNNN21248000000000_00", DAY0,
                                DAY0 + 3 * 3600.0, orbit)
    b = K.write_session_kernels(tmp_path, "XSM01G26CHO0000200NNNN21248023000000_00",
                                DAY0 + 2.5 * 3600.0, DAY0 + 5 * 3600.0, orbit,
                                ck_gaps_met=[(DAY0 + 4 * 3600.0, DAY0 + 4 * 3600.0 + 300.0)])
    assert a.spk.name.endswith("_00_sv.bsp") and a.ck.name.endswith("_00_qib.bc")
    assert a.sclk.name.endswith("_00_sclk.tsc")
    assert b.ck_gaps_met and not a.ck_gaps_met
    static = K.write_static_kernels(tmp_path / "static")
    met = DAY0 + 2.5 * 3600.0 + np.arange(0.0, 1800.0, 61.0)
    out = []
    for s in (a, b):
        spice_loaded([static.metakernel, *s.files])
        et = np.ascontiguousarray(K.met_to_et(met))
        from spiceypy import cyice

        pos, _ = cyice.spkpos_v("-152", et, "J2000", "NONE", "MOON")
        c = np.asarray(cyice.pxform_v("J2000", "CH2_XSM", et))
        out.append((np.asarray(pos), c))
    assert np.allclose(out[0][0], out[1][0], atol=1e-6)
    assert np.allclose(out[0][1], out[1][1], atol=1e-5)


def test_bad_parameters(tmp_path):
    with pytest.raises(ParameterError):
        K.write_kernel_set(tmp_path, DAY0, DAY0 - 10.0)
    with pytest.raises(ParameterError):
        K.orbit_model(DAY0, beta_deg=0.0)
