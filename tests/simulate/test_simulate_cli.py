"""`xsm simulate day` through typer's CliRunner; determinism; bad input; the demo chain."""
from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from xsm.archive.cli import app

runner = CliRunner()


def _md5(p):
    return hashlib.md5(p.read_bytes()).hexdigest()


def _simulate(out, seed=2):
    return runner.invoke(app, ["simulate", "day", "2020-03-01", "--profile", "quiet", "--seed", str(seed),
                               "--hours", "0.5", "--start-hour", "5", "--out", str(out), "--json"])


def test_simulate_day_cli_is_deterministic(tmp_path, real_caldb, monkeypatch):
    monkeypatch.setenv("XSM_CALDB", str(real_caldb))
    r1 = _simulate(tmp_path / "a")
    assert r1.exit_code == 0, r1.output
    res = json.loads(r1.stdout)
    assert res["date"] == "2020-03-01" and res["frames"] > 1700 and len(res["sessions"]) == 2
    r2 = _simulate(tmp_path / "b")
    assert r2.exit_code == 0, r2.output
    names = sorted(p.name for p in (tmp_path / "a").glob("*.tar"))
    assert names == sorted(p.name for p in (tmp_path / "b").glob("*.tar"))
    for n in names:
        assert _md5(tmp_path / "a" / n) == _md5(tmp_path / "b" / n)
    # another seed, other data
    r3 = _simulate(tmp_path / "c", seed=3)
    assert r3.exit_code == 0
    other = sorted((tmp_path / "c").glob("*.tar"))
    assert [_md5(p) for p in other] != [_md5(tmp_path / "a" / n) for n in names]


@pytest.mark.parametrize("args, word", [
    (["2021-10-28", "--profile", "stormy"], "profile"),
    (["2021-13-45"], "date"),
    (["2016-06-01"], "epoch"),
    (["2021-10-28", "--flare-class", "Q7"], "class"),
    (["2021-10-28", "--hours", "30"], "span"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, word):
    r = runner.invoke(app, ["simulate", "day", *args, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert word in r.output and r.output.count("error:") == 1
    assert not list((tmp_path / "o").glob("*.tar")) if (tmp_path / "o").exists() else True


def test_demo_day_simulates_and_builds_level1_hk_and_sun_angle(tmp_path, real_caldb):
    """Issue 3 item 4 as a Python API (``xsm demo`` now runs the whole pipeline on simulated days)."""
    from xsm.products.simulate import demo_day

    res = demo_day(tmp_path, hours=0.5, caldb=real_caldb)
    assert res["frames_in_level1"] == res["frames_simulated"]
    (day,) = res["level1"]["days"]
    for k in ("fits", "hk", "sa"):
        assert (tmp_path / "level1" / day[k].split("/")[-1]).is_file()
    assert 0 < day["rows_without_geometry"] < day["n_rows"]        # the session CK gap
