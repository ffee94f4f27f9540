"""The CLI shell: version, one-line errors with exit code 2, one --compat option everywhere."""
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xsm.archive.cli import app
from xsm.archive.cli.common import mode_of
from xsm.products.errors import ParameterError
from xsm.products.provenance import SOFTWARE_VERSION, Mode

runner = CliRunner()


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and SOFTWARE_VERSION in r.output


def test_mode_of():
    assert mode_of(None) is Mode.DEFAULT
    assert mode_of("xsmdas-1.2") is Mode.XSMDAS_1_2
    with pytest.raises(ParameterError, match="only compatibility mode"):
        mode_of("xsmdas-9")


@pytest.mark.parametrize("argv", [
    ["l1", "hk", "{fits}"],
    ["l1", "sunangle", "{fits}", "-k", "{fits}"],
    ["archive", "build-day", "2021-09-05", "--level1", "{dir}", "-A", "{tmp}/a"],
    ["pipeline", "run", "--inbox", "{tmp}/inbox", "-A", "{tmp}/a"],
    ["l2", "gti", "{hk}", "-o", "{tmp}/x.gti"],
    ["l2", "spectrum", "{fits}", "--gti", "{dir}/gti_std.gti", "-o", "{tmp}/x.pha"],
    ["l2", "lightcurve", "{fits}", "--gti", "{dir}/gti_std.gti", "-o", "{tmp}/x.lc"],
])
def test_every_compat_option_refuses_an_unknown_mode_in_one_line(argv, tmp_path, golden_dir):
    case = golden_dir / "short_quiet"
    sub = {"fits": str(case / "ch2_xsm_20210905_v1_level1.fits"), "hk": str(case / "ch2_xsm_20210905_v1_level1.hk"),
           "dir": str(case), "tmp": str(tmp_path)}
    r = runner.invoke(app, [a.format(**sub) for a in argv] + ["--compat", "xsmdas-9"])
    assert r.exit_code == 2, r.output
    assert "only compatibility mode is xsmdas-1.2" in r.output
    assert not any(tmp_path.iterdir())


def test_missing_input_is_one_red_line_exit_2(tmp_path):
    r = runner.invoke(app, ["l1", "hk", str(tmp_path / "nope.fits")])
    assert r.exit_code == 2
    assert "nope.fits" in r.output and "Traceback" not in r.output


def test_level2_commands_record_their_inputs_md5(tmp_path, golden_dir, real_caldb):
    """products.md §7: the XSM PROVENANCE block lists every input file with its md5."""
    from astropy.io import fits

    from xsm.products.provenance import file_md5

    case = golden_dir / "short_quiet"
    l1, hk, sa = list((case / f"ch2_xsm_20210905_v1_level1.{e}" for e in ("fits", "hk", "sa")))
    gti = case / "gti_std.gti"
    runs = {
        "x.gti": ["l2", "gti", str(hk), "-o", str(tmp_path / "x.gti")],
        "x.pha": ["l2", "spectrum", str(l1), "--gti", str(gti), "-o", str(tmp_path / "x.pha"),
                  "--caldb", str(real_caldb)],
        "x.lc": ["l2", "lightcurve", str(l1), "--gti", str(gti), "-o", str(tmp_path / "x.lc"),
                 "--caldb", str(real_caldb)],
    }
    expect = {"x.gti": [hk, sa], "x.pha": [l1, hk, sa, gti], "x.lc": [l1, hk, sa, gti]}
    for name, argv in runs.items():
        r = runner.invoke(app, argv)
        assert r.exit_code == 0, r.output
        history = "\n".join(str(h) for h in fits.getheader(tmp_path / name, -1)["HISTORY"])
        for f in expect[name]:
            assert f.name in history and file_md5(f) in history, (name, f.name)


@pytest.mark.parametrize("cmd", [["l2", "gti", "{hk}"], ["l2", "spectrum", "{fits}", "--gti", "{gti}"],
                                 ["l2", "lightcurve", "{fits}", "--gti", "{gti}"]])
def test_existing_output_refused_before_any_work_with_no_clobber(cmd, tmp_path, golden_dir):
    case = golden_dir / "short_quiet"
    out = tmp_path / "out.fits"
    out.write_bytes(b"keep me")
    sub = {"hk": str(case / "ch2_xsm_20210905_v1_level1.hk"), "fits": str(case / "ch2_xsm_20210905_v1_level1.fits"),
           "gti": str(case / "gti_std.gti")}
    r = runner.invoke(app, [a.format(**sub) for a in cmd] + ["-o", str(out), "--no-clobber"])
    assert r.exit_code == 2 and "exists already" in r.output
    assert out.read_bytes() == b"keep me"
