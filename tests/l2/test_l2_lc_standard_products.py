"""The one-read day API: every standard product of a day from one in-memory decode."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from xsm.products import gti as G
from xsm.products import level2 as L2
from xsm.products import lightcurve as L
from xsm.products.provenance import Mode

from .helpers_l2 import CASES, case_files


@pytest.mark.parametrize("case", CASES)
def test_l2_lc_standard_products_compat_equal_golden(golden_dir, real_caldb, tmp_path, case):
    """Compat: the one-decode products equal the separately made golden GTI, spectrum and LC."""
    f = case_files(golden_dir, case)
    day = L2.load_day(f["fits"])
    prod = L2.make_standard_products(day, real_caldb, L2.StandardParams(mode=Mode.XSMDAS_1_2))
    paths = L2.write_standard_products(prod, tmp_path)
    tag = f["fits"].name[8:16]
    assert {k: p.name for k, p in paths.items()} == {
        "gti": f"ch2_xsm_{tag}_v1_level2.gti", "pha": f"ch2_xsm_{tag}_v1_level2.pha",
        "arf": f"ch2_xsm_{tag}_v1_level2.arf", "lc": f"ch2_xsm_{tag}_v1_level2.lc",
        "hr": f"ch2_xsm_{tag}_v1_level2_hr.lc"}
    ref = G.read_gti(f["dir"] / "gti_std.gti")
    np.testing.assert_allclose(G.read_gti(paths["gti"]).pairs(), ref.pairs(), atol=1e-6, rtol=0)
    # type-II 60 s spectrum with ARF = the golden spec_pi_t2_60s
    with fits.open(paths["pha"]) as a, fits.open(f["dir"] / "spec_pi_t2_60s.pha") as b:
        np.testing.assert_array_equal(a[1].data["COUNTS"], b[1].data["COUNTS"])
        np.testing.assert_array_equal(a[1].data["EXPOSURE"], b[1].data["EXPOSURE"])
    with fits.open(paths["arf"]) as a, fits.open(f["dir"] / "spec_pi_t2_60s.arf") as b:
        np.testing.assert_allclose(a[1].data["SPECRESP"], b[1].data["SPECRESP"], rtol=1e-5, atol=1e-12)
    lc, ref_lc = L.read_lightcurve(paths["lc"]), L.read_lightcurve(f["dir"] / "lc_std_1s_0p5-15keV.lc")
    np.testing.assert_allclose(lc.bands[0].rate, ref_lc.bands[0].rate, rtol=1e-6)
    hr = L.read_lightcurve(paths["hr"])
    assert [b.extname for b in hr.bands] == ["RATE_BAND1", "RATE_BAND2", "RATE_BAND3"]
    assert hr.timedel == pytest.approx(0.1)
    sel = G.read_gti(paths["gti"]).contains(day.time)
    coarse = np.asarray(day.coarse[sel])
    assert np.sum(hr.bands[0].rate.astype(np.float64) * hr.bands[0].fracexp * 0.1) == \
        pytest.approx(coarse[:, :, 0].sum(), rel=1e-6)


def test_l2_lc_standard_products_default_mode(golden_dir, real_caldb, tmp_path, fitsverify):
    f = case_files(golden_dir, "short_flare")
    day = L2.load_day(f["fits"])
    prod = L2.make_standard_products(day, real_caldb, L2.StandardParams(mode=Mode.DEFAULT, seed=5))
    paths = L2.write_standard_products(prod, tmp_path)
    for kind, p in paths.items():
        fitsverify(p)
        assert fits.getheader(p, 1)["PROCMODE"] == "default"
    # total counts of the default spectrum = the compat spectrum's (Q10 words aside)
    c = fits.getdata(f["dir"] / "spec_pi_t2_60s.pha", 1)["COUNTS"].sum()
    d = fits.getdata(paths["pha"], 1)["COUNTS"].sum()
    assert abs(float(c) - float(d)) < 0.01 * float(c)
    assert any("Be-filter" in n for n in prod.notes)   # Q20 warning carried in the notes
    # archive recipe: area-corrected spectrum, no ARF
    prod2 = L2.make_standard_products(day, real_caldb, L2.StandardParams(spectrum="areascal",
                                                                         products=("gti", "pha")))
    assert prod2.spectrum.arf is None and prod2.lightcurve is None


def test_l2_lc_standard_products_empty_gti(golden_dir, real_caldb, tmp_path):
    """No good time: a valid, empty GTI and no other product (products.md §9)."""
    f = case_files(golden_dir, "short_flare")
    day = L2.load_day(f["fits"])
    prod = L2.make_standard_products(day, real_caldb, L2.StandardParams(filterfile=G.background_filter_path()))
    assert prod.gti.empty and prod.spectrum is None and prod.lightcurve is None
    paths = L2.write_standard_products(prod, tmp_path)
    assert list(paths) == ["gti"] and len(G.read_gti(paths["gti"])) == 0
