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
])
def test_every_compat_option_refuses_an_unknown_mode_in_one_line(argv, tmp_path, golden_dir):
    case = golden_dir / "short_quiet"
    sub = {"fits": str(case / "ch2_xsm_20210905_v1_level1.fits"), "hk": str(case / "ch2_xsm_20210905_v1_level1.hk"),
           "dir": str(case), "tmp": str(tmp_path)}
    r = runner.invoke(app, [a.format(**sub) for a in argv] + ["--compat", "xsmdas-9"])
    assert r.exit_code == 2, r.output
    assert "only compatibility mode is xsmdas-1.2" in r.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "x.gti").exists()


def test_missing_input_is_one_red_line_exit_2(tmp_path):
    r = runner.invoke(app, ["l1", "hk", str(tmp_path / "nope.fits")])
    assert r.exit_code == 2
    assert "nope.fits" in r.output and "Traceback" not in r.output
