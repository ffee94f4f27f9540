"""LID/LIDVID rules and version increments (spec/pds4.md §2)."""
from __future__ import annotations

import pytest

from xsm.labels import lidvid as L


def test_isda_patterns():
    assert L.product_lid_for_file("ch2_xsm_20210828_v1_level2.lc") == \
        "urn:isro:isda:ch2_cho.xsm:data_calibrated:ch2_xsm_20210828_level2_lc"
    assert L.product_lid_for_file("ch2_xsm_20210828_v1_level2.gti") == \
        "urn:isro:isda:ch2_cho.xsm:data_calibrated:ch2_xsm_20210828_level2_gti"
    assert L.product_lid_for_file("ch2_xsm_20191104_v2_level1.fits") == \
        "urn:isro:isda:ch2_cho.xsm:data_raw:ch2_xsm_20191104_level1_fits"
    assert L.product_lid_for_file("ch2_xsm_20191104_v1_level1.hk").endswith(":data_raw:ch2_xsm_20191104_level1_hk")
    assert L.product_lid_for_file("ch2_xsm_20191104_v1_level1.sa").endswith(":data_raw:ch2_xsm_20191104_level1_sa")
    assert L.product_lid_for_file("ch2_xsm_20210828_v1.zip") == \
        "urn:isro:isda:ch2_cho.xsm:daywise_zip:ch2_xsm_20210828"
    assert L.label_name_for_file("ch2_xsm_20210828_v1_level2.pha") == "ch2_xsm_20210828_v1_level2_pha.xml"
    assert L.label_name_for_file("ch2_xsm_20210828_v3_level1.fits") == "ch2_xsm_20210828_v3_level1_fits.xml"
    assert L.label_name_for_file("ch2_xsm_20210828_v1_level2_hr.lc") == "ch2_xsm_20210828_v1_level2_hr_lc.xml"
    assert L.label_name_for_file("ch2_xsm_20210828_v1.zip") == "ch2_xsm_20210828_v1.xml"
    # the LID has no processing version
    assert L.product_lid_for_file("ch2_xsm_20210828_v2_level2.lc") == L.product_lid_for_file("ch2_xsm_20210828_v1_level2.lc")


def test_colon_counts_and_hierarchy():
    assert L.BUNDLE_LID.count(":") == 3
    assert L.collection_lid("raw").count(":") == 4
    assert L.collection_lid("calibrated") == "urn:isro:isda:ch2_cho.xsm:data_calibrated"
    lid = L.product_lid("20210828", 2, "lc")
    assert lid.count(":") == 5 and L.collection_of(lid) == L.COLLECTION_CALIBRATED
    assert L.level_of(L.BUNDLE_LID) == "bundle" and L.level_of(lid) == "product"


@pytest.mark.parametrize("bad, why", [
    ("urn:isro:isda:ch2_cho.xsm:Data_Raw:x", "upper-case"),
    ("urn:isro:isda:ch2_cho.xsm::1.0", "'::'"),
    ("urn:isro:isda:ch2 cho.xsm:data_raw:x", "not of the form"),
    ("isro:isda:ch2_cho.xsm:data_raw:x", "registered prefix"),
    ("urn:isro:isda:" + "x" * 250, "longer than 255"),
])
def test_malformed_lids(bad, why):
    problems = L.lid_problems(bad)
    assert any(why in p for p in problems), problems
    with pytest.raises(L.LidError, match="malformed LID"):
        L.check_lid(bad)


def test_level_colon_rule():
    assert any("5 colons" in p for p in L.lid_problems("urn:isro:isda:ch2_cho.xsm:data_raw", level="product"))
    assert L.lid_problems("urn:isro:isda:ch2_cho.xsm:data_raw", level="collection") == []


def test_versions():
    v = L.Version.parse("1.0")
    assert str(L.next_version(v, data_changed=True)) == "2.0"
    assert str(L.next_version(v, data_changed=False)) == "1.1"
    assert str(L.next_version("2.3", data_changed=True)) == "3.0"
    assert L.Version.parse("1.10") > L.Version.parse("1.9")
    assert L.file_version("3.1") == 3
    for bad in ("1", "v1", "1.0.0", "a.b", ""):
        with pytest.raises(L.LidError):
            L.Version.parse(bad)


def test_lidvid_round_trip():
    lv = L.lidvid(L.COLLECTION_RAW, "2.0")
    assert lv == "urn:isro:isda:ch2_cho.xsm:data_raw::2.0"
    assert L.split_lidvid(lv) == (L.COLLECTION_RAW, L.Version(2, 0))
    assert L.split_lidvid(L.COLLECTION_RAW) == (L.COLLECTION_RAW, None)
    assert L.is_lidvid(lv) and not L.is_lidvid(L.COLLECTION_RAW) and not L.is_lidvid("urn:x::1")


def test_file_identity():
    ident = L.parse_file_name("ch2_xsm_20210828_v2_level2_bkg.gti")
    assert (ident.day, ident.version, ident.level, ident.kind, ident.tag) == ("20210828", 2, 2, "gti", "bkg")
    assert ident.lid.endswith("ch2_xsm_20210828_level2_gti_bkg")
    assert L.parse_file_name("ch2_xsm_20210828_l1.pha") is None
    with pytest.raises(L.LidError):
        L.product_lid_for_file("foo.lc")
