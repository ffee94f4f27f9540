"""The synthetic CALDB: every type in the real formats, certified, physically sane (``caldb.md`` §6)."""
from __future__ import annotations

import numpy as np
import pytest

from xsm.caldb_manager import calfiles as cf
from xsm.caldb_manager.certify import certify_file, certify_release
from xsm.caldb_manager.context import calibration_context
from xsm.caldb_manager.publish import verify, versions
from xsm.products.met import mjd_to_met


def test_synthetic_caldb_passes_certify_and_fitsverify(synthetic_caldb, fitsverify):
    rel = certify_release(synthetic_caldb)  # runs fitsverify on every file too
    assert rel.ok, rel.summary()
    assert rel.missing == []
    assert all(not r.warnings for r in rel.files), rel.summary()
    assert not rel.findings, rel.summary()
    for r in rel.files:
        fitsverify(r.path)
    assert verify(synthetic_caldb) == []
    [v] = versions(synthetic_caldb)
    assert v.current and v.files == 9


def test_synthetic_index_mirrors_the_real_release(synthetic_caldb, real_caldb):
    from xsm.caldb_manager.index import read_index

    syn, real = read_index(synthetic_caldb / "xsmcaldb.indx"), read_index(real_caldb / "xsmcaldb.indx")
    assert [r.cnam for r in syn.rows] == [r.cnam for r in real.rows]
    assert [r.ref_time for r in syn.rows if r.cnam == "GAIN"] == [57754.0, 59014.0]
    early = calibration_context(float(mjd_to_met(58818.0)), synthetic_caldb)  # 2019-12-01
    late = calibration_context(float(mjd_to_met(59454.0)), synthetic_caldb)  # 2021-08-28
    assert early.path("GAIN").name.endswith("v01.fits") and late.path("GAIN").name.endswith("v02.fits")
    assert set(late.files) == {"EBOUNDS", "GAIN", "ABSCOEF", "EFFAREAPAR", "RMF", "SYSERR", "RSP_OPEN", "RSP_BEFT"}
    assert late.missing == {}


def test_synthetic_files_read_with_the_loaders_and_match_real_grids(synthetic_caldb, real_caldb):
    ctx = calibration_context(float(mjd_to_met(59454.0)), synthetic_caldb)
    eb, eb_real = cf.read_ebounds(ctx.path("EBOUNDS")), cf.read_ebounds(real_caldb / "CH2xsmebounds20191214v01.fits")
    assert np.array_equal(eb.e_min, eb_real.e_min) and np.array_equal(eb.e_max, eb_real.e_max)
    g = cf.read_gain(ctx.path("GAIN"))
    assert g.sun.gain.shape == (115, 34) and g.cal.gain.shape == (115, 1)
    assert 0.0160 < g.sun.gain.min() and g.sun.gain.max() < 0.0167
    p, p_real = cf.read_effareapar(ctx.path("EFFAREAPAR")), cf.read_effareapar(
        real_caldb / "CH2xsmeffareapar20210423v02.fits")
    assert np.array_equal(p.detx, p_real.detx) and np.array_equal(p.dety, p_real.dety)
    assert 1.7 - 1e-6 <= p.alpha.min() and p.alpha.max() <= 1.8 + 1e-6
    assert 0.0008 <= p.be_thick.min() and p.be_thick.max() <= 0.00108 + 1e-9
    s = cf.read_syserr(ctx.path("SYSERR"))
    assert np.all(s.syserr[:26] == 0) and s.syserr.max() == np.float32(0.1)


def test_synthetic_physics_close_to_the_real_calibration(synthetic_caldb, real_caldb):
    """Absorption coefficients within 20 % of the real tables over 1-15 keV; on-axis area within 15 %
    (6 % above 2 keV) and the same peak."""
    a = cf.read_abscoef(synthetic_caldb / "CH2xsmabscoef20260101v01.fits")
    b = cf.read_abscoef(real_caldb / "CH2xsmabscoef20200410v01.fits")
    for grid in ("pi", "pha", "rsp"):
        assert np.allclose(a.grid(grid).energy, b.grid(grid).energy)
    e = a.rsp.energy
    band = (e > 1.0) & (e < 15.0) & (np.abs(e - 1.839) > 0.02)
    for m in ("be", "si", "sio2"):
        ratio = getattr(a.rsp, m)[band] / getattr(b.rsp, m)[band]
        assert 0.8 < ratio.min() and ratio.max() < 1.2, m
    area = cf.read_onaxis_area(synthetic_caldb / "xsm_onaxis_effective_area.txt")
    real = cf.read_onaxis_area(real_caldb / "xsm_onaxis_effective_area.txt")
    sel = real > 1e-4
    assert np.allclose(area[sel], real[sel], rtol=0.15)
    e_pi = a.pi.energy
    assert np.allclose(area[e_pi > 2.0], real[e_pi > 2.0], rtol=0.06)
    assert area.max() == pytest.approx(real.max(), rel=0.01)


def test_synthetic_rmf_and_rsp(synthetic_caldb):
    rmf = cf.read_response(synthetic_caldb / "CH2xsmresponse20260101v01.rmf")
    assert rmf.matrix.shape == (3000, 512) and rmf.hduclas3 == "REDIST"
    lo, hi = cf.rsp_energy_grid()
    assert np.allclose(rmf.energ_lo, lo, atol=1e-6) and np.allclose(rmf.energ_hi, hi, atol=1e-6)
    sums = rmf.matrix.sum(axis=1, dtype=np.float64)
    assert sums.max() <= 1.0 + 1e-5
    inside = (lo > 2.0) & (hi < 15.0)
    assert np.all(sums[inside] > 0.98)  # only the low-energy tail below 0.5 keV escapes
    # photopeak at the line energy; FWHM ~ 0.17 keV at 5.9 keV (Fano + 120 eV noise)
    k = int(round((5.9 - 0.105) / 0.01))
    row = rmf.matrix[k]
    centre = 0.5 * (rmf.ebounds.e_min + rmf.ebounds.e_max)
    assert abs(centre[np.argmax(row)] - 5.9) < 0.033
    half = centre[row >= row.max() / 2]
    assert 0.13 < half.max() - half.min() + 0.033 < 0.23
    # low-energy tail: counts well below the peak
    assert 0.005 < row[centre < 5.0].sum() < 0.05
    rsp = cf.read_response(synthetic_caldb / "CH2xsmrspwitharea_open20260101v01.rsp")
    beft = cf.read_response(synthetic_caldb / "CH2xsmrspwitharea_beft20260101v01.rsp")
    assert rsp.hduclas3 == "FULL" and 0.0030 < rsp.matrix.sum(axis=1).max() < 0.0037
    assert np.all(beft.matrix.sum(axis=1) <= rsp.matrix.sum(axis=1) + 1e-12)
    assert beft.matrix[k].sum() < rsp.matrix[k].sum()


def test_certify_refuses_broken_files_with_reasons(synthetic_caldb, tmp_path):
    from astropy.io import fits

    src = synthetic_caldb / "CH2xsmgain20260101v01.fits"
    with fits.open(src) as h:
        h["GAIN"].header["NTEC"] = 114
        del h["GAIN"].header["CVSD0001"]
        h["CALGAIN"].header["CCNM0001"] = "EBOUNDS"
        h.writeto(tmp_path / "bad_gain.fits", checksum=True)
    rep = certify_file(tmp_path / "bad_gain.fits", code="GAIN")
    assert not rep.ok
    text = rep.reasons()
    assert "GAIN lacks CVSD0001" in text
    assert "CCNM0001 = 'EBOUNDS', not GAIN" in text
    assert "NTEC*NRAD" in text
    with fits.open(synthetic_caldb / "CH2xsmresponse20260101v01.rmf") as h:
        h["MATRIX"].data["MATRIX"][100] *= 3
        h.writeto(tmp_path / "bad.rmf")
    rep = certify_file(tmp_path / "bad.rmf", code="RMF", fitsverify=False)
    assert not rep.ok and "RMF rows sum above 1" in rep.reasons()
    with fits.open(synthetic_caldb / "CH2xsmebounds20260101v01.fits") as h:
        h[1].data["E_MIN"][10] = 3.0
        h.writeto(tmp_path / "eb.fits")
    rep = certify_file(tmp_path / "eb.fits", fitsverify=False)
    assert not rep.ok and "not increasing" in rep.reasons()
    # a corrupted byte: the checksum catches it
    data = bytearray((synthetic_caldb / "CH2xsmsyserr20260101v01.fits").read_bytes())
    data[-100] ^= 0x01
    (tmp_path / "corrupt.fits").write_bytes(bytes(data))
    rep = certify_file(tmp_path / "corrupt.fits", fitsverify=False)
    assert not rep.ok and "[fits]" in rep.reasons()
    (tmp_path / "junk.fits").write_text("junk")
    rep = certify_file(tmp_path / "junk.fits")
    assert not rep.ok and "[open]" in rep.reasons()


def test_real_caldb_passes_certify_missing_files_reported(real_caldb):
    rel = certify_release(real_caldb)
    assert rel.ok, rel.summary()
    assert sorted(rel.missing) == ["CH2xsmresponse20200423v01.rmf", "CH2xsmrspwitharea_beft20191214v01.rsp",
                                   "CH2xsmrspwitharea_open20191214v01.rsp"]
    assert len(rel.files) == 6 and all(r.ok for r in rel.files)
    text = rel.summary()
    assert "REF_TIME 57750.00000 but CVSD0001/CVST0001 2017-01-01" in text  # reported as warning
    assert "is not OGIP syntax" in text


@pytest.mark.parametrize("code", ["EBOUNDS", "ABSCOEF", "EFFAREAPAR", "SYSERR"])
def test_certify_detects_the_type(synthetic_caldb, code):
    ctx = calibration_context(float(mjd_to_met(59454.0)), synthetic_caldb)
    rep = certify_file(ctx.path(code), fitsverify=False)
    assert rep.ok and rep.code == code
    wrong = "GAIN" if code != "GAIN" else "EBOUNDS"
    assert not certify_file(ctx.path(code), code=wrong, fitsverify=False).ok


def test_release_with_a_tie_fails_certification(synthetic_caldb, tmp_path):
    import shutil

    from xsm.caldb_manager.index import IndexRow, read_index, write_index

    for name in ("CH2xsmgain20260101v01.fits", "CH2xsmgain20260101v02.fits"):
        shutil.copyfile(synthetic_caldb / name, tmp_path / name)
    idx = read_index(synthetic_caldb / "xsmcaldb.indx")
    rows = (IndexRow("GAIN", "CH2xsmgain20260101v01.fits", 57754.0), IndexRow("GAIN", "CH2xsmgain20260101v02.fits",
                                                                               57754.0))
    write_index(idx.with_rows(rows), tmp_path / "xsmcaldb.indx")
    rel = certify_release(tmp_path, fitsverify=False)
    assert not rel.ok
    assert any(f.check == "tie" and "2 good GAIN rows share REF_TIME 57754" in f.message for f in rel.findings)
    # and the row whose file says 2020-06-14 is reported against its REF_TIME
    assert any(f.check == "validity" and "CH2xsmgain20260101v02.fits" in f.message for f in rel.findings)
