"""`xsm l1 build`, `xsm l1 hk` and `xsm demo` through typer's CliRunner."""
from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from xsm.archive.cli import app
from xsm.products import frame as fr
from xsm.products import level0 as L0
from xsm.products.level1 import read_hk, read_level1
from xsm.products.met import day_start_met

runner = CliRunner()


def _session(tmp, n=40):
    met = day_start_met("2021-09-05") + 3600.5 + np.arange(n)
    rec = L0.encode_records(fr.synthetic_frames(n, seed=2), met)
    kernels = {0: {"spk": b"spk", "ck": b"ck", "sclk": b"sclk"}}  # placeholders: no missing-kernel warning
    return L0.write_session(tmp, L0.session_id(met[0]), [rec], kernels)


def test_l1_build_json(tmp_path, fitsverify):
    pkg = _session(tmp_path / "in")
    r = runner.invoke(app, ["l1", "build", str(pkg), "--out", str(tmp_path / "out"), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout[r.stdout.index("{"):])
    (day,) = res["days"]
    assert day["date"] == "20210905" and day["n_rows"] == 40
    assert res["totals"]["n_valid"] == 40 and res["segments"][0]["stats"]["n_records_total"] == 40
    fitsverify(day["fits"])
    fitsverify(day["hk"])


def test_l1_build_table_output(tmp_path):
    pkg = _session(tmp_path / "in")
    r = runner.invoke(app, ["l1", "build", str(pkg), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "20210905" in r.output and "good fraction" in r.output


def test_l1_build_bad_input_exit_2_nothing_written(tmp_path):
    pkg = _session(tmp_path / "in")
    bad = tmp_path / "in" / "broken.tar"
    bad.write_bytes(pkg.read_bytes()[:5000])
    out = tmp_path / "out"
    r = runner.invoke(app, ["l1", "build", str(pkg), str(bad), "--out", str(out)])
    assert r.exit_code == 2
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "broken.tar" in lines[0] and "error" in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_l1_hk_from_golden(tmp_path, golden_dir, fitsverify):
    sci = next((golden_dir / "short_flare").glob("*_level1.fits"))
    out = tmp_path / "x.hk"
    r = runner.invoke(app, ["l1", "hk", str(sci), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"] == len(read_level1(sci))
    ref = read_hk(next((golden_dir / "short_flare").glob("*_level1.hk")))
    assert read_hk(out).data.tobytes() == ref.data.tobytes()
    fitsverify(out)
    r = runner.invoke(app, ["l1", "hk", str(sci), "--out", str(out)])
    assert r.exit_code == 2 and "exists" in r.output


def test_l1_hk_foreign_file(tmp_path):
    p = tmp_path / "foreign.fits"
    p.write_text("not fits at all")
    r = runner.invoke(app, ["l1", "hk", str(p), "--out", str(tmp_path / "x.hk")])
    assert r.exit_code == 2 and "foreign.fits" in r.output
    assert not (tmp_path / "x.hk").exists()
