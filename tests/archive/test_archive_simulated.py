"""A simulated three-day archive (one hour a day) from level-0 sessions to a release."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from xsm.archive.build import build_day
from xsm.archive.catalog import run_query
from xsm.archive.query import find
from xsm.archive.release import make_release
from xsm.archive.verify import verify
from xsm.products.met import parse_time

DAYS = [("2024-05-01", "quiet", None), ("2024-05-02", "active", None), ("2024-05-03", "quiet", "M1")]


@pytest.fixture(scope="module")
def sim(tmp_path_factory, real_caldb):
    from xsm.products.simulate import simulate_day

    base = tmp_path_factory.mktemp("sim")
    root = base / "archive"
    out = {"root": root, "days": {}}
    for d, profile, cls in DAYS:
        sd = simulate_day(d, profile, seed=7, out_dir=base / d, start_s=36000, duration_s=3600,
                          caldb=real_caldb, flare_class=cls)
        res = build_day(root, d, sessions=sd.packages, kernels=sd.metakernel, caldb=real_caldb)
        out["days"][d] = (sd, res)
    return out


def test_simulated_days_built_labelled_valid(sim):
    for d, (sd, res) in sim["days"].items():
        assert res.changed and res.version == 1 and res.sun
        assert {p.kind for p in res.products} == {"fits", "hk", "sa", "gti", "pha", "lc"}
    rep = verify(sim["root"])
    assert rep.ok, "\n".join(map(str, rep.problems))
    assert rep.labels == 21 and rep.files == 42


def test_sessions_in_orbit_wise_table(sim):
    root = sim["root"]
    rows = run_query(root, "SELECT L0File, SessionId, Station, Orbit, n_records_total, n_valid, "
                           "good_fraction, Days FROM xsmorbitdata ORDER BY L0File").as_dicts()
    sessions = {s.sid: s for sd, _ in sim["days"].values() for s in sd.sessions}
    assert sorted(r["SessionId"] for r in rows) == sorted(sessions)
    for r in rows:
        s = sessions[r["SessionId"]]
        assert (r["Station"], r["Orbit"]) == (s.station, s.orbit)
        assert r["n_records_total"] >= s.n_records - 5  # a few corrupted records are injected
        assert r["n_valid"] > 0 and 0 < r["good_fraction"] <= 1
        assert r["L0File"].startswith(r["SessionId"]) and r["Station"] == r["SessionId"][5:8]
        assert len(r["Days"]) == 1
    days = run_query(root, "SELECT DayOfObs, Segments, TotalExposure FROM xsmdaywisedata ORDER BY 1").rows
    for day, segs, total in days:
        mine = [r["L0File"] for r in rows if r["Days"] == [day]]
        assert sorted(segs) == sorted(mine)
        assert total == pytest.approx(3600, abs=2)


def test_rebuild_from_sessions_is_a_noop(sim, real_caldb):
    d = "2024-05-02"
    sd, _ = sim["days"][d]
    before = run_query(sim["root"], "SELECT path, md5 FROM products ORDER BY path").rows
    res = build_day(sim["root"], d, sessions=sd.packages, kernels=sd.metakernel, caldb=real_caldb)
    assert not res.changed
    assert run_query(sim["root"], "SELECT path, md5 FROM products ORDER BY path").rows == before


def test_flare_found_in_the_simulated_flare_day(sim):
    sd, _ = sim["days"]["2024-05-03"]
    t_peak = float(sd.truth["Time"][np.argmax(sd.truth["GoesFlux"])])
    res = find(sim["root"], flare_class="C5")
    assert [r["day"] for r in res.rows] == ["20240503"]
    f = res.rows[0]
    assert abs(f["tpeak"] - t_peak) < 120
    # the class estimate (flares.CLASS_METHOD) is within a factor 2 of the simulated M1
    assert 5e-6 <= f["goes_flux"] <= 2e-5, f["class"]
    # the CLI, as JSON
    out = CliRunner().invoke(__import__("xsm.archive.cli", fromlist=["app"]).app,
                             ["find", "--flare-class", "C5", "-A", str(sim["root"]), "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)[0]["day"] == "20240503"
    rates = find(sim["root"], tfrom=parse_time("2024-05-01"), tto=parse_time("2024-05-04"),
                 min_rate=float(f["peak_rate"]) * 0.5)
    assert [r["day"] for r in rates.rows] == ["20240503"]


def test_release_of_the_simulated_archive(sim):
    r = make_release(sim["root"], "sim_001", "2024-05-01", "2024-05-03")
    assert r.days == ["20240501", "20240502", "20240503"]
    assert len(r.changes) == 21 and {c["kind"] for c in r.changes} == {"new"}
    assert (r.path / "bundle" / "bundle_xsm.xml").is_file()
