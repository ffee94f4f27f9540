"""`xsm simulate kernels` and `xsm l1 sunangle` through typer's CliRunner."""
from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from xsm.archive.cli import app

runner = CliRunner()


def test_simulate_kernels_and_sunangle(tmp_path, short_quiet_l1, fitsverify):
    kdir = tmp_path / "kernels"
    r = runner.invoke(app, ["simulate", "kernels", str(kdir), "--start", "2021-09-05T09:00:00",
                            "--stop", "2021-09-05T11:00:00", "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    mk = info["metakernel"]
    assert mk.endswith("xsm_kernels.tm") and len(info["files"]) == 8
    assert len(info["ck_gaps_met"]) == 1
    out = tmp_path / "day.sa"
    r = runner.invoke(app, ["l1", "sunangle", str(short_quiet_l1), "--kernels", mk, "--out", str(out),
                            "--json", "--workers", "1"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["rows"] == 1795 and res["sa_file"] == str(out)
    # the CK gap (40 % into 09:00-11:00 = 09:48-09:58) is before the file: full coverage
    assert res["rows_without_geometry"] == 0
    fitsverify(out)
    # existing output without --clobber: exit 2, file untouched
    before = out.read_bytes()
    r = runner.invoke(app, ["l1", "sunangle", str(short_quiet_l1), "-k", mk, "-o", str(out)])
    assert r.exit_code == 2
    assert out.read_bytes() == before
    r = runner.invoke(app, ["l1", "sunangle", str(short_quiet_l1), "-k", mk, "-o", str(out), "--clobber"])
    assert r.exit_code == 0, r.output


def test_sunangle_reports_missing_geometry(tmp_path, short_quiet_l1):
    kdir = tmp_path / "k"
    # kernels 10:10-10:20 only: most rows of the 10:00-10:30 file have no geometry
    r = runner.invoke(app, ["simulate", "kernels", str(kdir), "--start", "2021-09-05T10:10:00",
                            "--stop", "2021-09-05T10:20:00", "--no-gap"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "x.sa"
    r = runner.invoke(app, ["l1", "sunangle", str(short_quiet_l1), "-k", str(kdir / "xsm_kernels.tm"),
                            "-o", str(out), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "no geometry for" in r.output
    from xsm.products.level1 import read_sa

    t = read_sa(out)
    assert np.isnan(t["Theta"]).sum() > 1000


def test_sunangle_bad_input_exit_2_nothing_written(tmp_path, short_quiet_l1):
    out = tmp_path / "x.sa"
    r = runner.invoke(app, ["l1", "sunangle", str(short_quiet_l1), "-k", str(tmp_path / "none.tm"),
                            "-o", str(out)])
    assert r.exit_code == 2
    assert "none.tm" in r.output and len(r.output.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob("*.part"))
    foreign = tmp_path / "foreign.fits"
    foreign.write_bytes(b"not a fits file" * 100)
    r = runner.invoke(app, ["l1", "sunangle", str(foreign), "-k", str(tmp_path / "none.tm"), "-o", str(out)])
    assert r.exit_code == 2 and "foreign.fits" in r.output
    assert not out.exists()
