"""Ingest of the official products of ``realdata`` and searches over them."""
from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from xsm.archive import meta
from xsm.archive.catalog import run_query
from xsm.archive.ingest import ingest
from xsm.archive.query import find, parse_bound
from xsm.products.met import parse_time


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, realdata_dir):
    root = tmp_path_factory.mktemp("ingested")
    rep = ingest(root, realdata_dir)
    return root, rep


def test_ingest_indexes_every_file_and_reports_absent_ones(ingested, realdata_dir):
    root, rep = ingested
    files = sorted(p for p in realdata_dir.rglob("*") if p.is_file())
    assert len(rep.files) == len(files)
    assert sorted(rep.days) == ["20210828", "20210908", "20260315"]
    # the official .pha files are named by their labels but are not in realdata
    assert sorted(p.rsplit("/", 1)[1] for p in rep.missing) == [
        "ch2_xsm_20210828_v1_level2.pha", "ch2_xsm_20210908_v1_level2.pha"]
    assert rep.mismatched == []


def test_catalog_rows_match_files_and_labels(ingested, realdata_dir):
    root, _ = ingested
    rows = run_query(root, "SELECT path, size, md5, sha256, lid, vid, kind, version FROM products").as_dicts()
    by_path = {r["path"]: r for r in rows}
    lc = realdata_dir / "20210828" / "ch2_xsm_20210828_v1_level2.lc"
    r = by_path[str(lc.resolve())]
    md5, sha, size = meta.file_hashes(lc)
    assert (r["md5"], r["sha256"], r["size"]) == (md5, sha, size)
    label = meta.read_label(realdata_dir / "20210828" / "ch2_xsm_20210828_v1_level2_lc.xml")
    assert label.files[0]["md5_checksum"] == md5 and label.files[0]["file_size"] == size
    assert r["lid"] == "urn:isro:isda:ch2_cho.xsm:data_calibrated:ch2_xsm_20210828_level2_lc"
    assert r["vid"] == "1.0" and r["kind"] == "lc" and r["version"] == 1


def test_daywise_rows_from_official_gti(ingested, realdata_dir):
    root, _ = ingested
    day = run_query(root, "SELECT * FROM xsmdaywisedata WHERE DayOfObs = '20210828'").as_dicts()[0]
    h = fits.getheader(realdata_dir / "20210828" / "ch2_xsm_20210828_v1_level2.gti", 1)
    assert day["SunExposure"] == h["EXPOSURE"] and day["TotalExposure"] == h["OBSEXP"]
    assert day["StartTime"] == h["DATE-OBS"] and day["CaldbVer"] == "20210628"


def _count_above(path, lo, hi, thr):
    d = fits.getdata(path, 1)
    sel = (d["TIME"] >= lo) & (d["TIME"] < hi) & (d["RATE"] >= thr)
    return int(sel.sum()), float(d["RATE"][sel].max())


def test_find_min_rate_answers_from_the_official_light_curves(ingested, realdata_dir):
    root, _ = ingested
    lo, hi = parse_bound("2021-08-28"), parse_bound("2021-09-09", end=True)
    res = find(root, tfrom=lo, tto=hi, min_rate=1000)
    assert res.what == "rates"
    assert [r["day"] for r in res.rows] == ["20210828", "20210908"]
    for r in res.rows:
        lc = realdata_dir / r["day"] / f"ch2_xsm_{r['day']}_v1_level2.lc"
        n, peak = _count_above(lc, lo, hi, 1000)
        assert r["n_seconds"] == n
        assert r["peak_rate"] == pytest.approx(peak)


def test_find_cli_json_csv_and_table(ingested):
    from xsm.archive.cli import app

    root, _ = ingested
    runner = CliRunner()
    out = runner.invoke(app, ["find", "--from", "2021-08-28", "--to", "2021-09-09",
                              "--min-rate", "1000", "-A", str(root), "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [r["day"] for r in rows] == ["20210828", "20210908"]
    out = runner.invoke(app, ["find", "--from", "MJD 59454", "--to", str(parse_time("2021-09-10")),
                              "--min-rate", "1000", "-A", str(root), "--csv"])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[0].startswith("day,first_time")
    assert len(out.stdout.splitlines()) == 3
    out = runner.invoke(app, ["find", "--product", "gti", "-A", str(root)])
    assert out.exit_code == 0 and "2 products" in out.stdout


def test_find_flare_class_and_exposure(ingested):
    root, _ = ingested
    res = find(root, flare_class="C1")
    assert res.what == "flares" and res.rows
    assert all(r["goes_flux"] >= 1e-6 for r in res.rows)
    assert all(r["class"][0] in "CMX" for r in res.rows)
    # the 2026 day has no GTI: its exposure comes from the light curve
    days = find(root, min_exposure=70_000).rows
    assert "20210828" not in [d["day"] for d in days]
    pha = find(root, flare_class="C1", product="lc")
    assert pha.what == "products" and {r["kind"] for r in pha.rows} == {"lc"}


def test_query_cli_refuses_writes(ingested):
    from xsm.archive.cli import app

    root, _ = ingested
    out = CliRunner().invoke(app, ["query", "DELETE FROM products", "-A", str(root)])
    assert out.exit_code == 2
    out = CliRunner().invoke(app, ["query", "SELECT count(*) AS n FROM products", "-A", str(root), "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)[0]["n"] > 0


def test_ingest_missing_dir_is_bad_input(tmp_path):
    from xsm.archive.cli import app

    out = CliRunner().invoke(app, ["archive", "ingest", str(tmp_path / "nope"), "-A", str(tmp_path / "a")])
    assert out.exit_code == 2
