"""``xsm l2 spectrum`` end to end: compat output equals golden; bad input exits 2, writes nothing."""
from __future__ import annotations

import numpy as np
from astropy.io import fits
from typer.testing import CliRunner

from xsm.archive.cli import app
from xsm.products.arf import read_arf
from xsm.products.spectrum import read_spectrum

from .helpers_l2spec import CALDB, GOLDEN

runner = CliRunner()
CASE = GOLDEN / "short_quiet"
L1 = next(CASE.glob("*_level1.fits"))


def _args(out, *extra):
    return ["l2", "spectrum", str(L1), "--gti", str(CASE / "gti_std.gti"), "--caldb", str(CALDB),
            "-o", str(out), *extra]


def test_cli_compat_type2_equals_golden(tmp_path):
    out = tmp_path / "spec_pi_t2_60s.pha"
    res = runner.invoke(app, _args(out, "--tbinsize", "60", "--compat", "xsmdas-1.2"))
    assert res.exit_code == 0, res.output
    ref = fits.getdata(CASE / "spec_pi_t2_60s.pha", "SPECTRUM")
    me = fits.getdata(out, "SPECTRUM")
    assert np.array_equal(me["COUNTS"], ref["COUNTS"])
    assert np.array_equal(me["SYS_ERR"], ref["SYS_ERR"])
    arf = read_arf(tmp_path / "spec_pi_t2_60s.arf")
    ref_arf = read_arf(CASE / "spec_pi_t2_60s.arf")
    assert arf.type2 and arf.nrows == ref_arf.nrows == 13
    np.testing.assert_allclose(arf.specresp, ref_arf.specresp, rtol=1e-6, atol=1e-30)


def test_cli_default_type1_pha_and_area(tmp_path, fitsverify):
    out = tmp_path / "t1.pha"
    res = runner.invoke(app, _args(out, "--spectype", "time-integrated", "--no-genarf", "--areascal"))
    assert res.exit_code == 0, res.output
    s = read_spectrum(out)
    assert not s.type2 and s.nchan == 512 and s.exposure[0] == 728
    h = fits.getheader(out, "SPECTRUM")
    assert h["RESPFILE"] == "CH2xsmrspwitharea_open20191214v01.rsp" and h["ANCRFILE"] == ""
    fitsverify(out)
    out2 = tmp_path / "pha.pha"
    res = runner.invoke(app, _args(out2, "--spectype", "time-integrated", "--chantype", "PHA"))
    assert res.exit_code == 0, res.output
    s2 = read_spectrum(out2)
    assert s2.nchan == 1024 and s2.chantype == "PHA" and not (tmp_path / "pha.arf").exists()
    assert int(s2.counts.sum()) == 409545


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "x.pha"
    res = runner.invoke(app, ["l2", "spectrum", str(tmp_path / "missing.fits"), "--gti",
                              str(CASE / "gti_std.gti"), "--caldb", str(CALDB), "-o", str(out)])
    assert res.exit_code == 2
    assert not out.exists()
    res = runner.invoke(app, _args(out, "--genarf", "--areascal"))
    assert res.exit_code == 2 and not out.exists()
    res = runner.invoke(app, _args(out, "--tstart", "1", "--tstop", "2"))
    assert res.exit_code == 2 and not out.exists()
    res = runner.invoke(app, _args(out, "--spectype", "sometimes"))
    assert res.exit_code == 2 and not out.exists()
    assert list(tmp_path.iterdir()) == []
