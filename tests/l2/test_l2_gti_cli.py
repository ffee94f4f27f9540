"""`xsm l2 gti`, `xsm l2 lightcurve`, `xsm l2 addspec`, `xsm l2 standard` through the CLI."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from xsm.archive.cli import app
from xsm.products import gti as G
from xsm.products import lightcurve as L

from .helpers_l2 import case_files

runner = CliRunner()


@pytest.fixture
def env(real_caldb, monkeypatch):
    monkeypatch.setenv("XSM_CALDB", str(real_caldb))


def test_l2_gti_cli_compat_and_filters(golden_dir, tmp_path, env):
    f = case_files(golden_dir, "short_quiet")
    out = tmp_path / "g.gti"
    r = runner.invoke(app, ["l2", "gti", str(f["hk"]), "-o", str(out), "--compat", "xsmdas-1.2"])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(G.read_gti(out).pairs(), G.read_gti(f["dir"] / "gti_std.gti").pairs(),
                               atol=1e-6, rtol=0)
    r = runner.invoke(app, ["l2", "gti", str(f["hk"]), "-o", str(tmp_path / "b.gti"), "-f", "bkg"])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(G.read_gti(tmp_path / "b.gti").pairs(),
                               G.read_gti(f["dir"] / "gti_bkg.gti").pairs(), atol=1e-6, rtol=0)
    # an empty GTI is a warning and a valid file, exit 0
    g = case_files(golden_dir, "short_flare")
    r = runner.invoke(app, ["l2", "gti", str(g["hk"]), "-o", str(tmp_path / "e.gti"), "-f", "bkg"])
    assert r.exit_code == 0 and "empty" in r.output
    assert len(G.read_gti(tmp_path / "e.gti")) == 0


def test_l2_gti_cli_bad_input_exit_2(golden_dir, tmp_path, env):
    f = case_files(golden_dir, "short_quiet")
    bad = tmp_path / "bad.dat"
    bad.write_text("HVMonitor 1 1.0 -\nFoo 1 0 1\n")
    r = runner.invoke(app, ["l2", "gti", str(f["hk"]), "-o", str(tmp_path / "x.gti"), "-f", str(bad)])
    assert r.exit_code == 2 and "unknown filter parameter 'Foo'" in r.output
    assert not (tmp_path / "x.gti").exists()
    r = runner.invoke(app, ["l2", "gti", str(tmp_path / "none.hk"), "-o", str(tmp_path / "x.gti")])
    assert r.exit_code == 2 and "no such file" in r.output


def test_l2_gti_cli_lightcurve_and_standard(golden_dir, tmp_path, env):
    f = case_files(golden_dir, "calsource")
    out = tmp_path / "l.lc"
    r = runner.invoke(app, ["l2", "lightcurve", str(f["fits"]), "-o", str(out), "--gti",
                            str(f["dir"] / "gti_std.gti"), "--compat", "xsmdas-1.2"])
    assert r.exit_code == 0, r.output
    a, b = L.read_lightcurve(out), L.read_lightcurve(f["dir"] / "lc_std_1s_0p5-15keV.lc")
    np.testing.assert_allclose(a.bands[0].rate, b.bands[0].rate, rtol=1e-6)
    r = runner.invoke(app, ["l2", "lightcurve", str(f["fits"]), "-o", str(tmp_path / "h.lc"), "--gti",
                            str(f["dir"] / "gti_std.gti"), "--lctype", "high-res", "--tbinsizems", "150"])
    assert r.exit_code == 2 and "multiple of 100" in r.output
    r = runner.invoke(app, ["l2", "standard", str(f["fits"]), "-o", str(tmp_path / "std")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "std").iterdir()) == [
        "ch2_xsm_20200301_v1_level2.arf", "ch2_xsm_20200301_v1_level2.gti",
        "ch2_xsm_20200301_v1_level2.lc", "ch2_xsm_20200301_v1_level2.pha",
        "ch2_xsm_20200301_v1_level2_hr.lc"]


def test_l2_gti_cli_addspec(golden_dir, tmp_path, env):
    d = golden_dir / "short_flare"
    r = runner.invoke(app, ["l2", "addspec", "--list", str(d / "addspec_list.txt"), "-o",
                            str(tmp_path / "s.pha")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "s.arf").exists()
    r = runner.invoke(app, ["l2", "addspec", str(d / "spec_pi_t1.pha"), str(d / "spec_pha_t1.pha"),
                            "-o", str(tmp_path / "t.pha"), "--no-addarf"])
    assert r.exit_code == 2 and "channels" in r.output


def test_filter_alias_wins_over_a_same_named_path(tmp_path, monkeypatch):
    """``std`` means the project's standard filter even with a folder ``std`` in the working
    directory (the standard-products output folder is called that); ``./std`` is the path."""
    (tmp_path / "std").mkdir()
    monkeypatch.chdir(tmp_path)
    assert G.resolve_filter("std") == G.standard_filter_file()
    assert G.resolve_filter("bkg") == G.background_filter_file()
    with pytest.raises(Exception, match="std"):
        G.resolve_filter("./std")
