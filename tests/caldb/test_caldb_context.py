"""Selections from the real CALDB 20210628 name the files XSMDAS 1.2 uses (``caldb.md`` §1, §5)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from xsm.caldb_manager.calfiles import (read_abscoef, read_ebounds, read_effareapar, read_gain,
                                        read_onaxis_area, read_syserr)
from xsm.caldb_manager.context import calibration_context
from xsm.products.errors import CalibrationError, InputFormatError, SelectionError
from xsm.products.met import mjd_to_met


def met_of(date: str) -> float:
    return float(mjd_to_met((dt.date.fromisoformat(date) - dt.date(1858, 11, 17)).days))


COMMON = {
    "EBOUNDS": "CH2xsmebounds20191214v01.fits",
    "ABSCOEF": "CH2xsmabscoef20200410v01.fits",
    "EFFAREAPAR": "CH2xsmeffareapar20210423v02.fits",
    "SYSERR": "CH2xsmsyserr20200410v01.fits",
}


@pytest.mark.parametrize("date, gain", [("2019-12-01", "CH2xsmgain20200330v03.fits"),
                                        ("2021-08-28", "CH2xsmgain20210401v01.fits")])
@pytest.mark.parametrize("rule", ["reference", "default"])
def test_real_selection_matches_xsmdas(real_caldb, date, gain, rule):
    ctx = calibration_context(met_of(date) + 3600.0, real_caldb, rule=rule)
    assert ctx.version == "20210628"
    assert ctx.basenames() == {**COMMON, "GAIN": gain}
    assert ctx.path("GAIN").name == gain
    # the RMF and RSP files are listed in the index but absent: reported, not fatal
    assert {c: p.name for c, p in ctx.missing.items()} == {
        "RMF": "CH2xsmresponse20200423v01.rmf",
        "RSP_OPEN": "CH2xsmrspwitharea_open20191214v01.rsp",
        "RSP_BEFT": "CH2xsmrspwitharea_beft20191214v01.rsp"}
    with pytest.raises(SelectionError, match="RMF selects CH2xsmresponse20200423v01.rmf"):
        ctx.path("RMF")


def test_gain_switch_boundary_reference_is_strict(real_caldb):
    """Data exactly at MJD 59014 use the old gain under the reference rule, the new one by default."""
    t = float(mjd_to_met(59014.0))
    assert calibration_context(t, real_caldb).path("GAIN").name == "CH2xsmgain20200330v03.fits"
    assert calibration_context(t, real_caldb, rule="default").path("GAIN").name == "CH2xsmgain20210401v01.fits"
    assert calibration_context(t + 1e-3, real_caldb).path("GAIN").name == "CH2xsmgain20210401v01.fits"
    expl = calibration_context(t, real_caldb).explain("GAIN")
    assert "not before the data" in expl and "-> row   2 CH2xsmgain20200330v03.fits" in expl


def test_default_rule_refuses_a_validity_start_inside_the_product(real_caldb):
    t = float(mjd_to_met(59014.0))
    with pytest.raises(SelectionError, match="split the product"):
        calibration_context(t - 100.0, real_caldb, rule="default", tstop=t + 100.0)


def test_unknown_code_and_missing_caldb(real_caldb, tmp_path, monkeypatch):
    ctx = calibration_context(met_of("2021-08-28"), real_caldb)
    with pytest.raises(SelectionError, match="no BKGSPEC entry"):
        ctx.path("BKGSPEC")
    monkeypatch.delenv("XSM_CALDB", raising=False)
    with pytest.raises(CalibrationError, match="XSM_CALDB"):
        calibration_context(0.0)
    with pytest.raises(SelectionError, match="xsmcaldb.indx"):
        calibration_context(0.0, tmp_path)


def test_loaders_on_real_files(real_caldb):
    eb = read_ebounds(real_caldb / COMMON["EBOUNDS"])
    assert eb.n == 512 and eb.emin == np.float32(0.5) and eb.emax == np.float32(17.396)
    assert eb.delta == np.float32(np.float32(0.533) - np.float32(0.5))
    g = read_gain(real_caldb / "CH2xsmgain20200330v03.fits")
    assert g.sun.gain.shape == (115, 34) and g.cal.gain.shape == (115, 1)
    assert g.sun.tecbinsize == np.float32(0.02) and g.sun.radbinsize == np.float32(0.1)
    assert 0.0160 < g.sun.gain.min() < g.sun.gain.max() < 0.0166
    g2 = read_gain(real_caldb / "CH2xsmgain20210401v01.fits")
    assert g2.cal.gain[0, 0] == np.float32(0.0165695) and g2.cal.offset[0, 0] == np.float32(-0.0015704)
    assert not np.array_equal(g.sun.gain, g2.sun.gain)
    a = read_abscoef(real_caldb / COMMON["ABSCOEF"])
    assert (len(a.pi.energy), len(a.pha.energy), len(a.rsp.energy)) == (512, 1024, 3000)
    assert a.rsp.be.dtype == np.float64 and a.pi.energy[0] == np.float32(0.5165)
    p = read_effareapar(real_caldb / COMMON["EFFAREAPAR"])
    assert (p.nxbins, p.nybins, p.dx, p.xmin) == (140, 70, 0.05, -3.5)
    assert p.grid("alpha").shape == (140, 70)
    assert 1.7 <= p.alpha.min() and p.alpha.max() <= 1.8
    s = read_syserr(real_caldb / COMMON["SYSERR"])
    assert len(s.syserr) == 512 and np.all(s.syserr[:26] == 0) and s.syserr.max() == np.float32(0.1)
    assert read_onaxis_area(real_caldb / "xsm_onaxis_effective_area.txt").max() == pytest.approx(0.003632, rel=1e-3)


def test_loaders_refuse_wrong_files_in_one_line(real_caldb):
    with pytest.raises(InputFormatError, match=r"CH2xsmebounds20191214v01.fits: GAIN file has no extension GAIN"):
        read_gain(real_caldb / COMMON["EBOUNDS"])
    with pytest.raises(InputFormatError, match="xsmcaldb.indx: ABSCOEF file has 1 extension"):
        read_abscoef(real_caldb / "xsmcaldb.indx")
    with pytest.raises(InputFormatError) as exc:
        read_syserr(real_caldb / "xsm_onaxis_effective_area.txt")
    assert "\n" not in str(exc.value)
