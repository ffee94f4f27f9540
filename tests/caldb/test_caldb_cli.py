"""`xsm caldb ...` (typer CliRunner): select, context, init, certify, publish, versions, diff,
history, affected, verify, cif."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from xsm.archive.cli import app
from xsm.caldb_manager.index import read_index
from xsm.caldb_manager.synthetic import write_gain

runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, ["caldb", *map(str, args)], env=env)


def test_select_real_caldb_json_and_explanation(real_caldb):
    res = run("select", "GAIN", "--time", "2019-12-01T00:00:00", "--caldb", real_caldb, "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["chosen"] == ["CH2xsmgain20200330v03.fits"] and d["version"] == "20210628"
    assert d["paths"] == [str(real_caldb / "CH2xsmgain20200330v03.fits")]
    assert [c["verdict"].split(" ")[0] for c in d["candidates"]] == ["chosen", "REF_TIME"]
    res = run("select", "gain", "--time", "2021-08-28", "--caldb", real_caldb, "--rule", "reference")
    assert res.exit_code == 0 and "-> row   9 CH2xsmgain20210401v01.fits" in res.stdout
    res = run("select", "GAIN", "--time", "MJD 59014", "--caldb", real_caldb, "--rule", "reference")
    assert "not before the data" in res.stdout and "-> row   2" in res.stdout
    # nothing valid: exit 1 with the explanation
    res = run("select", "GAIN", "--time", "2016-01-01", "--caldb", real_caldb)
    assert res.exit_code == 1 and "nothing selected" in res.stdout


def test_context_env_and_missing_files(real_caldb):
    res = run("context", "--time", "2021-08-28T10:00:00", env={"XSM_CALDB": str(real_caldb)})
    assert res.exit_code == 0, res.output
    assert "CH2xsmgain20210401v01.fits" in res.stdout and "MISSING" in res.stdout
    res = run("context", "--time", "2021-08-28", "--caldb", real_caldb, "--json")
    d = json.loads(res.stdout)
    assert d["version"] == "20210628" and d["files"]["EBOUNDS"].endswith("CH2xsmebounds20191214v01.fits")
    assert set(d["missing"]) == {"RMF", "RSP_OPEN", "RSP_BEFT"}
    res = run("context", "--time", "not-a-time", "--caldb", real_caldb)
    assert res.exit_code == 2 and "not an ISO UTC time" in res.output
    res = run("context", "--time", "2021-08-28", env={"XSM_CALDB": ""})
    assert res.exit_code != 0


def test_init_certify_publish_versions_diff_history_affected(tmp_path):
    root = tmp_path / "caldb"
    res = run("init", "--synthetic", root)
    assert res.exit_code == 0, res.output
    assert (root / "xsmcaldb.indx").is_file() and (root / "caldb.indx").is_file()
    res = run("init", "--synthetic", root)
    assert res.exit_code == 2 and "already a CALDB" in res.output
    res = run("certify", root)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("PASS CALDB 20260101")

    new = write_gain(tmp_path / "CH2xsmgain20260301v01.fits", 59500.0, 0.002)
    res = run("certify", new, "--caldb", root, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)[0]["ok"] is True
    res = run("publish", new, "--version", "20260301", "--caldb", root, "--note", "drift")
    assert res.exit_code == 0, res.output
    assert "published CALDB version 20260301 (parent 20260101)" in res.stdout
    # twice: refused, exit code of a certification error
    res = run("publish", new, "--version", "20260302", "--caldb", root)
    assert res.exit_code == 1 and "already published" in res.output
    res = run("certify", new, "--caldb", root)
    assert res.exit_code == 1 and "is already published" in res.stdout
    # an explicit validity start and code
    other = write_gain(tmp_path / "g.fits", 59600.0, 0.004)
    res = run("publish", other, "--version", "20260302", "--caldb", root, "--ref-time", "g.fits=2022-01-01",
              "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["added"][0]["ref_time"] == 59580.0

    res = run("versions", "--caldb", root, "--json")
    vs = json.loads(res.stdout)
    assert [v["version"] for v in vs] == ["20260101", "20260301", "20260302"] and vs[-1]["current"]
    res = run("diff", "20260101", "20260302", "--caldb", root, "--json")
    d = json.loads(res.stdout)
    assert [r["file"] for r in d["added"]] == ["CH2xsmgain20260301v01.fits", "g.fits"]
    res = run("diff", "20260101", "20260302", "--caldb", root)
    assert res.exit_code == 0 and "added" in res.stdout
    res = run("history", "GAIN", "--caldb", root, "--json")
    assert [e["file"] for e in json.loads(res.stdout)][-2:] == ["CH2xsmgain20260301v01.fits", "g.fits"]
    res = run("affected", "20260101", "20260302", "--caldb", root, "--json")
    ivs = json.loads(res.stdout)
    assert [(i["code"], i["start_mjd"], i["stop_mjd"], i["new_file"]) for i in ivs] == [
        ("GAIN", 59500.0, 59580.0, "CH2xsmgain20260301v01.fits"), ("GAIN", 59580.0, None, "g.fits")]
    res = run("affected", "20260101", "20260302", "--caldb", root)
    assert res.exit_code == 0 and "2021-10-13" in res.stdout
    res = run("verify", "--caldb", root)
    assert res.exit_code == 0 and "consistent" in res.stdout
    res = run("context", "--time", "2021-08-28", "--caldb", root, "--version", "20260101", "--json")
    assert json.loads(res.stdout)["version"] == "20260101"
    res = run("context", "--time", "2021-08-28", "--caldb", root, "--version", "nope")
    assert res.exit_code != 0 and "no CALDB version 'nope'" in res.output


def test_certify_failing_file_and_cif_conversion(real_caldb, tmp_path):
    res = run("certify", real_caldb / "xsmcaldb.indx", "--no-fitsverify")
    assert res.exit_code == 0 and "is listed but not present" in res.stdout
    junk = tmp_path / "junk.fits"
    junk.write_text("junk")
    res = run("certify", junk)
    assert res.exit_code == 1 and "FAIL junk.fits" in res.stdout
    out = tmp_path / "caldb.indx"
    res = run("cif", real_caldb, out)
    assert res.exit_code == 0, res.output
    cif = read_index(out)
    assert cif.form == "ogip" and len(cif) == 9
    gain = cif.rows[1]
    assert gain.cbd[:2] == ('TEC("0.0-2.5")V', 'DETPOSR("0-3.2")mm') and gain.cal_clas == "BCF"
