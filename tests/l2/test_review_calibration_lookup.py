"""Review pass: light-curve calibration treats only a CALDB selection failure of the area files as
"not needed"; the spectrum's calibration lookup calls calibration_context once (no TypeError retry)."""
import pytest

from xsm.caldb_manager import context as C
from xsm.products import lightcurve as L
from xsm.products import spectrum as S
from xsm.products.errors import SelectionError
from xsm.products.met import day_start_met
from xsm.products.provenance import Mode

MET = day_start_met("2021-09-05") + 3600.0


class _Ctx:
    """A real context whose ABSCOEF lookup fails with ``exc``."""

    def __init__(self, real, exc):
        self.real, self.exc, self.version = real, exc, real.version

    def path(self, code):
        if code == "ABSCOEF":
            raise self.exc
        return self.real.path(code)


def test_review_lc_calibration_without_area_files(real_caldb):
    real = C.calibration_context(MET, real_caldb)
    cal = L.lc_calibration(_Ctx(real, SelectionError("no ABSCOEF")), Mode.DEFAULT)
    assert cal.relarea is None and cal.area is None and cal.coefs == {}
    assert cal.grid is not None and cal.gain_sun is not None


def test_review_lc_calibration_does_not_swallow_bugs(real_caldb):
    real = C.calibration_context(MET, real_caldb)
    with pytest.raises(RuntimeError, match="a bug"):
        L.lc_calibration(_Ctx(real, RuntimeError("a bug")), Mode.DEFAULT)


def test_review_load_spec_cal_calls_the_context_once(monkeypatch):
    calls = []

    def broken(*args, **kw):
        calls.append(kw)
        raise TypeError("a bug inside calibration_context")

    monkeypatch.setattr(C, "calibration_context", broken)
    with pytest.raises(TypeError, match="a bug"):
        S.load_spec_cal("/nonexistent", MET, S.SpectrumParams(), rule="latest")
    assert calls == [{"rule": "latest"}]
