"""Adding spectra: golden cases (compat), the ten user spectra of 2021-09, checks and fixes."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

from xsm.products import addspec as A
from xsm.products.errors import InputFormatError, XsmWarning
from xsm.products.met import date_obs_value
from xsm.products.provenance import Mode

from .helpers_l2 import CASES

C, D = Mode.XSMDAS_1_2, Mode.DEFAULT


@pytest.mark.parametrize("case", CASES)
def test_l2_add_golden_compat(golden_dir, tmp_path, case, header_mismatches):
    d = golden_dir / case
    out = tmp_path / "spec_added.pha"
    added, s, a = A.addspec(d / "addspec_list.txt", out, mode=C, caldbver="20210628")
    assert a == tmp_path / "spec_added.arf"
    with fits.open(d / "spec_added.pha") as ref, fits.open(s) as new:
        for col in ("CHANNEL", "COUNTS", "STAT_ERR", "SYS_ERR"):
            np.testing.assert_array_equal(new[1].data[col], ref[1].data[col], err_msg=col)
        for i in (0, 1):
            assert header_mismatches(ref[i].header, new[i].header,
                                     ignore=("DATE", "FILENAME")) == [], f"HDU {i}"
        assert list(new[1].header["HISTORY"])[:len(ref[1].header["HISTORY"])] == \
            list(ref[1].header["HISTORY"])
    with fits.open(d / "spec_added.arf") as ref, fits.open(a) as new:
        for col in ("ENERG_LO", "ENERG_HI", "SPECRESP"):
            np.testing.assert_array_equal(new[1].data[col], ref[1].data[col], err_msg=col)
        for i in (0, 1):
            assert header_mismatches(ref[i].header, new[i].header,
                                     ignore=("DATE", "FILENAME")) == [], f"HDU {i}"


@pytest.mark.parametrize("case", CASES)
def test_l2_add_golden_default_mode(golden_dir, tmp_path, case, fitsverify):
    d = golden_dir / case
    added, s, a = A.addspec(d / "addspec_list.txt", tmp_path / "x.pha", mode=D)
    ref = fits.getdata(d / "spec_added.pha", 1)
    np.testing.assert_array_equal(fits.getdata(s, 1)["COUNTS"], ref["COUNTS"])
    h = fits.getheader(s, 1)
    assert h["COUNTS" if False else "TFORM2"] == "1J"          # integer counts, nothing lost
    assert h["ARFWEIGH"] == "EXPOSURE" and h["HDUCLAS4"] == "TYPE:I" and h["PROCMODE"] == "default"
    # Q19-like: default writes the RMF basename
    assert h["RESPFILE"] == "CH2xsmresponse20200423v01.rmf"
    # Q22: CALDBVER from the inputs
    assert h["CALDBVER"] == "20210628"
    fitsverify(s)
    fitsverify(a)


def test_l2_add_user_spectra_independent(realdata_dir, tmp_path, fitsverify):
    """The ten official user spectra of 2021-09: counts, exposure, errors and ARF recomputed here."""
    d = realdata_dir / "user_spectra_202109"
    phas = sorted(d.glob("*.pha"))
    assert len(phas) == 10
    with warnings.catch_warnings():
        warnings.simplefilter("error", XsmWarning)   # consistent inputs: no warning at all
        added, s, a = A.addspec(phas, tmp_path / "sep2021.pha", mode=D)
    C_, F_, T_, R_ = [], [], [], []
    for p in phas:
        with fits.open(p) as h:
            C_.append(h[1].data["COUNTS"].astype(np.float64))
            F_.append(h[1].data["SYS_ERR"].astype(np.float64))
            T_.append(float(h[1].header["EXPOSURE"]))
            with fits.open(d / h[1].header["ANCRFILE"]) as ar:
                R_.append(ar[1].data["SPECRESP"].astype(np.float64))
    C_, F_, T_, R_ = map(np.array, (C_, F_, T_, R_))
    counts = C_.sum(0)
    with fits.open(s) as h:
        got = h[1].data
        assert h[1].header["EXPOSURE"] == T_.sum()
        np.testing.assert_array_equal(got["COUNTS"], counts)
        assert counts.max() > 2 ** 24 or h[1].header["TFORM2"] == "1J"
        np.testing.assert_allclose(got["STAT_ERR"], np.sqrt(counts), rtol=1e-7)
        sys = np.divide((C_ * F_).sum(0), counts, out=np.zeros_like(counts), where=counts > 0)
        np.testing.assert_allclose(got["SYS_ERR"], sys, rtol=1e-6, atol=1e-9)
        assert h[1].header["TSTART"] == fits.getheader(phas[0], 1)["TSTART"]
        assert h[1].header["TSTOP"] == fits.getheader(phas[-1], 1)["TSTOP"]
        assert h[1].header["DATE-OBS"] == date_obs_value(fits.getheader(phas[0], 1)["DATE-OBS"], D)
        assert h[1].header["ANCRFILE"] == "sep2021.arf"
    arf = (T_[:, None] * R_).sum(0) / T_.sum()
    with fits.open(a) as h:
        np.testing.assert_allclose(h[1].data["SPECRESP"], arf, rtol=2e-7, atol=1e-30)
        np.testing.assert_allclose(h[1].data["ENERG_LO"], 0.1 + 0.01 * np.arange(3000), rtol=1e-6)
    assert added.arf_spread is not None and added.arf_spread > 0
    # counts weighting (default option): weights = counts in 1.5-12 keV
    added_c, s2, a2 = A.addspec(phas, tmp_path / "sep2021c.pha", mode=D, arf_weighting="counts")
    m = A._counts_band_mask(512, A.COUNTS_WEIGHT_BAND)
    w = C_[:, m].sum(1)
    np.testing.assert_allclose(fits.getdata(a2, 1)["SPECRESP"], (w[:, None] * R_).sum(0) / w.sum(), atol=1e-30,
                               rtol=2e-7)
    assert fits.getheader(a2, 1)["ARFWEIGH"] == "COUNTS"
    fitsverify(s)
    fitsverify(a)


def _copy_spec(src, dst, *, drop_rows=0, chantype=None, respfile=None, exposure=None):
    with fits.open(src) as h:
        if drop_rows:
            h[1] = fits.BinTableHDU(h[1].data[:-drop_rows], header=h[1].header)
        if chantype:
            h[1].header["CHANTYPE"] = chantype
        if respfile:
            h[1].header["RESPFILE"] = respfile
        if exposure is not None:
            h[1].header["EXPOSURE"] = exposure
        h.writeto(dst)
    return dst


@pytest.mark.parametrize("mode", list(Mode))
def test_l2_add_refuses_mismatched_channels_and_chantype(golden_dir, tmp_path, mode):
    d = golden_dir / "short_quiet"
    p1 = d / "spec_pi_t1_half1.pha"
    p2 = _copy_spec(d / "spec_pi_t1_half2.pha", tmp_path / "h2.pha", drop_rows=12)
    (tmp_path / "spec_pi_t1_half2.arf").write_bytes((d / "spec_pi_t1_half2.arf").read_bytes())
    with pytest.raises(InputFormatError, match="500 channels.*different channels"):
        A.addspec([p1, p2], tmp_path / "o.pha", mode=mode)
    p3 = _copy_spec(d / "spec_pi_t1_half2.pha", tmp_path / "h3.pha", chantype="PHA")
    with pytest.raises(InputFormatError, match="CHANTYPE 'PHA'.*PI and PHA"):
        A.addspec([p1, p3], tmp_path / "o.pha", mode=mode)
    assert not (tmp_path / "o.pha").exists()


def test_l2_add_default_checks(golden_dir, tmp_path):
    d = golden_dir / "short_quiet"
    p1 = d / "spec_pi_t1_half1.pha"
    (tmp_path / "spec_pi_t1_half2.arf").write_bytes((d / "spec_pi_t1_half2.arf").read_bytes())
    p2 = _copy_spec(d / "spec_pi_t1_half2.pha", tmp_path / "r.pha", respfile="other.rmf")
    with pytest.raises(InputFormatError, match="RESPFILE"):
        A.addspec([p1, p2], tmp_path / "o.pha", mode=D)
    A.addspec([p1, p2], tmp_path / "o.pha", mode=C)   # the reference uses the first silently
    p3 = _copy_spec(d / "spec_pi_t1_half2.pha", tmp_path / "e.pha", exposure=0.0)
    with pytest.raises(InputFormatError, match="EXPOSURE"):
        A.addspec([p1, p3], tmp_path / "o2.pha", mode=D)
    with pytest.raises(InputFormatError, match="type-II"):
        A.addspec([p1, d / "spec_pi_t2_60s.pha"], tmp_path / "o3.pha", mode=D, addarf=False)
    # the same spectrum twice: overlapping times warned about
    with pytest.warns(XsmWarning, match="overlap"):
        A.addspec([p1, p1], tmp_path / "o4.pha", mode=D)


def test_l2_add_q15_absolute_arf_path(golden_dir, tmp_path):
    """Q15: an absolute ANCRFILE is used as is (the reference prefixes the spectrum directory)."""
    d = golden_dir / "short_quiet"
    with fits.open(d / "spec_pi_t1_half2.pha") as h:
        h[1].header["ANCRFILE"] = str(d / "spec_pi_t1_half2.arf")
        h.writeto(tmp_path / "abs.pha")
    added, s, a = A.addspec([d / "spec_pi_t1_half1.pha", tmp_path / "abs.pha"], tmp_path / "o.pha", mode=D)
    ref = fits.getdata(d / "spec_added.arf", 1)["SPECRESP"]
    np.testing.assert_allclose(fits.getdata(a, 1)["SPECRESP"], ref, rtol=2e-7)


def test_l2_add_q22_caldbver(golden_dir, tmp_path):
    d = golden_dir / "short_quiet"
    ins = [d / "spec_pi_t1_half1.pha", d / "spec_pi_t1_half2.pha"]
    _, s, _ = A.addspec(ins, tmp_path / "c.pha", mode=C, caldbver="20991231")
    assert fits.getheader(s, 1)["CALDBVER"] == "20991231"   # Q22: the installed CALDB's version
    _, s, _ = A.addspec(ins, tmp_path / "d.pha", mode=D, caldbver="20991231")
    assert fits.getheader(s, 1)["CALDBVER"] == "20210628"   # default: the inputs' common value


def test_l2_add_q12_area_corrected_errors(golden_dir, tmp_path):
    """Q12: added area-corrected spectra propagate STAT_ERR in quadrature in the default mode."""
    d = golden_dir / "short_quiet"
    p = d / "spec_pi_t1_areascal.pha"
    added_d = A.add_spectra([A.read_input_spectrum(p)] * 2,
                            A.AddSpecParams(mode=D, addarf=False))
    added_c = A.add_spectra([A.read_input_spectrum(p)] * 2, A.AddSpecParams(mode=C, addarf=False))
    se = fits.getdata(p, 1)["STAT_ERR"].astype(np.float64)
    np.testing.assert_allclose(added_d.stat_err, np.sqrt(2) * se, rtol=1e-6)
    np.testing.assert_allclose(added_c.stat_err, np.sqrt(added_c.counts.astype(np.float64)), rtol=1e-6)
