"""GTI algebra, filter-file parsing, user GTIs and the default-mode fixes on in-memory tables."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xsm.products import gti as G
from xsm.products.errors import InputFormatError, ParameterError
from xsm.products.provenance import Mode

C = Mode.XSMDAS_1_2
D = Mode.DEFAULT


def _hk(n=20, t0=1000.0):
    t = t0 + np.arange(n, dtype=float)
    return {
        "Time": t,
        "HVMonitor": np.full(n, 1.2, np.float32),
        "EventDetected": np.full(n, 500, np.int32),
        "SpecEvents": np.full(n, 500, np.int32),
        "DetTemperature": np.full(n, 2.0, np.float32),
        "MotorIRPos": np.zeros(n, np.uint8),
        "FrameDiscardFlag": np.zeros(n, np.uint8),
        "LV1Monitor": np.full(n, 3.3, np.float32),
        "LV2Monitor": np.full(n, 1.5, np.float32),
        "EventCounter": np.full(n, 600, np.int32),
    }


def _sa(n=20, t0=1000.0):
    return {"Time": t0 + np.arange(n, dtype=float), "Theta": np.full(n, 10.0, np.float32),
            "FovFlag": np.ones(n, np.uint8), "OccultFlag": np.zeros(n, np.uint8),
            "Phi": np.full(n, -90.0, np.float32)}


def _pairwise(a: G.GTI, b: G.GTI) -> G.GTI:
    out = []
    for s1, e1 in zip(a.start, a.stop):
        for s2, e2 in zip(b.start, b.stop):
            s, e = max(s1, s2), min(e1, e2)
            if s <= e:
                out.append((s, e))
    out = [p for p in out if p[0] != p[1]]
    return G.GTI.from_pairs(out) if out else G.GTI.empty()


def _sorted_disjoint(draw_list):
    v = np.cumsum(np.asarray(draw_list, dtype=float))
    return G.GTI(v[0::2], v[1::2]) if v.size >= 2 else G.GTI.empty()


gaps = st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=0, max_size=30).map(
    lambda x: x[: len(x) // 2 * 2])


@settings(max_examples=200, deadline=None)
@given(gaps, gaps)
def test_l2_gti_intersection_equals_pairwise(a, b):
    ga, gb = _sorted_disjoint(a), _sorted_disjoint(b)
    got, ref = G.intersect(ga, gb), _pairwise(ga, gb)
    np.testing.assert_array_equal(got.start, ref.start)
    np.testing.assert_array_equal(got.stop, ref.stop)
    assert got.is_sorted_disjoint()


def test_l2_gti_intersection_unsorted_user_pairs_pairwise():
    user = G.GTI.from_pairs([[50, 60], [0, 10], [5, 15]])
    g = G.GTI.from_pairs([[0, 100]])
    got = G.intersect(user, g)
    np.testing.assert_array_equal(got.pairs(), [[50, 60], [0, 10], [5, 15]])
    assert G.union(user).pairs().tolist() == [[0, 15], [50, 60]]


def test_l2_gti_intersection_rejects_inverted_interval():
    with pytest.raises(ParameterError):
        G.intersect(G.GTI.from_pairs([[5, 1]]), G.GTI.from_pairs([[0, 10]]))


def test_l2_gti_contains_is_strict():
    g = G.GTI.from_pairs([[10, 20], [30, 40]])
    t = np.array([10, 10.5, 20, 25, 30.0001, 39.9, 40, 50])
    assert g.contains(t).tolist() == [False, True, False, False, True, True, False, False]


def test_l2_gti_q14_continuity_last_gap():
    """Q14: compat never tests the gap between the last two rows; default does."""
    t = np.array([0.0, 1, 2, 3, 10])
    c = G.continuity_gti(t, C)
    d = G.continuity_gti(t, D)
    assert len(c) == 1 and np.isclose(c.stop[0], 10.99)
    assert len(d) == 2 and np.isclose(d.stop[0], 3.99) and np.isclose(d.start[1], 9.99)


def test_l2_gti_q14_mandatory_first_and_last_rows():
    t = np.arange(10.0)
    hv = np.full(10, 1.2, np.float32)
    ed = np.full(10, 100)
    se = np.full(10, 100)
    se[0] = 300      # bad first row
    se[9] = 300      # bad last row
    c = G.mandatory_gti(t, hv, ed, se, C)
    d = G.mandatory_gti(t, hv, ed, se, D)
    assert c.pairs().tolist() == [[-0.01, 9.99]]
    # default: [t0-0.01, t0-0.01] (zero length), then [t1-0.01, t9-0.01]
    assert np.allclose(d.pairs(), [[-0.01, -0.01], [0.99, 8.99]])
    full = G.GTI.from_pairs([[-100, 100]])
    assert np.allclose(G.intersect(full, d).pairs(), [[0.99, 8.99]])


def test_l2_gti_mandatory_hv_edge_and_glitch():
    t = np.arange(10.0)
    hv = np.array([0, 0, 0.5, 1.1, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2], np.float32)
    ed = np.full(10, 500)
    se = ed.copy()
    se[6] = 350   # |diff| = 150
    g = G.mandatory_gti(t, hv, ed, se, C)
    assert np.allclose(g.pairs(), [[-0.01, 2.99], [3.99, 5.99], [6.99, 9.99]])


def test_l2_gti_filter_semantics_float32_and_nan():
    hk = _hk(6)
    hk["DetTemperature"] = np.array([1.8, 1.79999, 2, np.nan, 2, 2], np.float32)
    ff = G.parse_filter_text("DetTemperature 1 1.8 -")
    good = G.filter_good_rows(ff, hk)
    assert good.tolist() == [True, False, True, False, True, True]
    # "- -" accepts everything, NaN included
    assert G.filter_good_rows(G.parse_filter_text("DetTemperature 1 - -"), hk).all()


def test_l2_gti_filter_integer_truncation_and_or_of_ranges():
    hk = _hk(6)
    hk["MotorIRPos"] = np.array([0, 1, 2, 5, 2, 0], np.uint8)
    ff = G.parse_filter_text("MotorIRPos 2 0 0.7 1.9 2.5")   # bounds truncated: [0,0] or [1,2]
    assert G.filter_good_rows(ff, hk).tolist() == [True, True, True, False, True, True]
    ff = G.parse_filter_text("MotorIRPos 2 0 0 2 2")
    assert G.filter_good_rows(ff, hk).tolist() == [True, False, True, False, True, True]


def test_l2_gti_filter_gti_runs_and_sun_params():
    hk, sa = _hk(10), _sa(10)
    sa["Theta"][3:5] = 40.0
    g = G.filter_gti(G.standard_filter_file(), hk, sa)
    assert np.allclose(g.pairs(), [[999.99, 1002.99], [1004.99, 1009.99]])
    # usesunang = no: SunTheta ignored
    g2 = G.filter_gti(G.standard_filter_file(), hk, sa, usesunang=False)
    assert np.allclose(g2.pairs(), [[999.99, 1009.99]])
    with pytest.raises(ParameterError):
        G.filter_gti(G.standard_filter_file(), hk, None)


@pytest.mark.parametrize("text,msg", [
    ("Foo 1 0 1", "unknown filter parameter"),
    ("hvmonitor 1 0 1", "unknown filter parameter"),
    ("HVMonitor 1 0 1 HVMonitor 1 0 1", "more than once"),
    ("HVMonitor 6 0 1 0 1 0 1 0 1 0 1 0 1", "not in 1..5"),
    ("HVMonitor 0", "not in 1..5"),
    ("HVMonitor 2 0 1 3", "missing bound"),
    ("HVMonitor 1 x 1", "neither a number"),
])
def test_l2_gti_filter_file_errors(text, msg):
    with pytest.raises(InputFormatError, match=msg):
        G.parse_filter_text(text, "f.dat")


def test_l2_gti_filter_comments_default_only():
    text = "# standard\nHVMonitor 1 1.0 -   # HV on\n"
    assert G.parse_filter_text(text, mode=D).ranges == {"HVMonitor": ((1.0, None),)}
    with pytest.raises(InputFormatError, match="unknown"):
        G.parse_filter_text(text, mode=C)


def test_l2_gti_all_37_names_accepted():
    text = "\n".join(f"{n} 1 - -" for n in G.FILTER_NAMES)
    ff = G.parse_filter_text(text)
    assert len(ff.ranges) == 37 == len(G.FILTER_NAMES)
    assert G.FILTER_NAMES[29] == "SunTheta" and G.FILTER_NAMES[-1] == "SunAngRate"


def test_l2_gti_q23_warning_lv2():
    ff = G.standard_filter_file()
    assert any("LV2" in w for w in G.filter_warnings(ff, C))
    assert G.filter_warnings(ff, D) == []
    bad = G.parse_filter_text("LV2Monitor 1 1.3 1.6")
    assert any("LV2" in w for w in G.filter_warnings(bad, D))


def test_l2_gti_user_gti_file(tmp_path):
    p = tmp_path / "user.txt"
    p.write_text("1002.5 1004.5\n1007.5 1008.5  1009.2 1100\n")
    hk, sa = _hk(20), _sa(20)
    r = G.make_gti(hk, sa, "std", usergti=p, mode=C)
    assert np.allclose(r.gti.pairs(), [[1002.5, 1004.5], [1007.5, 1008.5], [1009.2, 1019.99]])
    p.write_text("5 4\n")
    with pytest.raises(InputFormatError, match="tstart"):
        G.read_user_gti(p)
    p.write_text("1 2 3\n")
    with pytest.raises(InputFormatError, match="odd"):
        G.read_user_gti(p)


def test_l2_gti_empty_result_is_warning_not_error(tmp_path):
    hk, sa = _hk(10), _sa(10)
    sa["Theta"][:] = 60.0
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = G.make_gti(hk, sa, "std", mode=D)
    assert r.empty and any("empty" in str(x.message) for x in w)
    p = G.write_gti(r, tmp_path / "e.gti")
    assert len(G.read_gti(p)) == 0
