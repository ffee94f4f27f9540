"""Level 1 built from a simulated day: every simulated frame once, counts equal to the truth,
QA counters equal to the injected faults, sun angles equal to the truth geometry."""
from __future__ import annotations

import numpy as np
import pytest

from xsm.products import frame as frm, level0 as L0, level1 as L1, simulate as S


@pytest.fixture(scope="module")
def built(sim_day, tmp_path_factory):
    out = tmp_path_factory.mktemp("l1")
    return L0.build_level1(sim_day.packages, out)


def test_packages_match_level0_layout(sim_day):
    assert 2 <= len(sim_day.sessions) <= 6
    for s in sim_day.sessions:
        assert len(s.sid) == 36 and s.package.name == f"{s.sid}.tar" and s.trigger.is_file()
        manifest = L0.read_session_manifest(s.package)
        assert sorted(manifest) == ["00"]
        assert sorted(manifest["00"]) == ["ck", "pld", "sclk", "spk"]
        assert manifest["00"]["pld"] == f"{s.sid}_00.pld"
    # consecutive sessions overlap by minutes
    for a, b in zip(sim_day.sessions, sim_day.sessions[1:]):
        overlap = a.stop_met - b.start_met
        assert S.OVERLAP_RANGE_S[0] - 2 <= overlap <= S.OVERLAP_RANGE_S[1] + 2
    assert {s.ist for s in sim_day.sessions} == {False, True}


def test_level1_holds_every_simulated_frame_exactly_once(sim_day, built):
    tr = sim_day.truth
    assert len(built.days) == 1
    day = L1.read_level1(built.days[0].fits)
    fn = np.asarray(day.frame_number, dtype=np.int64)
    assert fn.size == tr["FrameNo"].size
    assert np.unique(fn).size == fn.size
    assert np.array_equal(np.sort(fn), np.sort(tr["FrameNo"]))
    # rows in time order, each at its true time (IST removed, time-tag jumps repaired)
    order = np.argsort(tr["FrameNo"])
    assert np.array_equal(fn, tr["FrameNo"][order])
    assert np.max(np.abs(day.time - tr["Time"][order])) < 1e-5
    assert np.array_equal(np.asarray(day.data), sim_day.frames[order])


def test_decoded_counts_equal_the_truth_exactly(sim_day, built):
    day = L1.read_level1(built.days[0].fits)
    words = frm.spectrum_words(day.data)
    assert int(words.sum()) == int(sim_day.truth["Counts"].sum())
    hk = L1.read_hk(built.days[0].hk)
    assert int(np.sum(hk.data["SpecEvents"], dtype=np.int64)) == int(sim_day.truth["Counts"].sum())
    assert int(np.sum(hk.data["CoarseChEvents"], dtype=np.int64)) == int(sim_day.truth["CoarseCounts"].sum())


def test_qa_counters_equal_the_injected_faults(sim_day, built):
    kinds = [f["kind"] for f in sim_day.faults]
    assert kinds.count("bad_crc") > 0 and kinds.count("time_jump") > 0 and kinds.count("lost_sync") > 0
    expected = sim_day.expected_qa()
    assert {k: built.totals[k] for k in expected} == expected
    # the same numbers are written in the truth file
    from astropy.io import fits
    with fits.open(sim_day.truth_path) as h:
        assert {k: h[0].header[f"QA {k}"] for k in expected} == expected


def test_sun_angles_from_the_session_kernels(sim_day, built, tmp_path):
    from xsm.products.geometry import make_sa_file

    path, angles = make_sa_file(built.days[0].fits, sim_day.metakernel, out=tmp_path / "day.sa")
    tr = sim_day.truth
    order = np.argsort(tr["FrameNo"])
    ok = angles.covered
    # the session CK gap gives "no geometry" rows there, the truth geometry elsewhere
    assert 0 < (~ok).sum() < ok.sum()
    # the session kernels sample the same orbit/attitude on their own grids (interpolation
    # differences of ~1e-4 deg); flags may differ only at their edges
    assert np.max(np.abs(angles.theta[ok] - tr["Theta"][order][ok])) < 2e-3
    for name, col in (("occult_flag", "OccultFlag"), ("fov_flag", "FovFlag")):
        a = np.asarray(getattr(angles, name))[ok]
        b = tr[col][order][ok]
        edges = np.count_nonzero(np.diff(b)) + 1
        assert np.count_nonzero(a != b) <= edges, name
