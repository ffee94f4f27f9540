"""Collections, bundles, inventories and the day-zip label (spec/pds4.md §4, archive.md §2)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from lxml import etree

from xsm.labels import lidvid as L
from xsm.labels.bundle import (InventoryEntry, inventory_bytes, inventory_problems, make_bundle,
                               make_collection, read_inventory, write_readme)
from xsm.labels.generate import ModificationDetail, generate_label, make_zip_label
from xsm.labels.validate import validate_labels
from xsm.products.errors import ParameterError

NS = {"pds": "http://pds.nasa.gov/pds4/pds/v1"}
RAW = ["ch2_xsm_20210828_v1_level1.fits", "ch2_xsm_20210828_v1_level1.hk", "ch2_xsm_20210828_v1_level1.sa"]
CAL = ["ch2_xsm_20210828_v1_level2.gti", "ch2_xsm_20210828_v1_level2.lc", "ch2_xsm_20210828_v1_level2.pha"]


def lidvid_of(label: Path) -> str:
    root = etree.parse(str(label)).getroot()
    ia = root.find("pds:Identification_Area", NS)
    return f"{ia.findtext('pds:logical_identifier', namespaces=NS)}::{ia.findtext('pds:version_id', namespaces=NS)}"


@pytest.fixture
def bundle(products_dir, tmp_path) -> dict:
    """A release bundle in the PDS4 layout: data_raw/2021/08/28, data_calibrated/2021/08/28."""
    root = tmp_path / "bundle"
    out = {"root": root, "labels": []}
    members = {}
    for coll, names in (("raw", RAW), ("calibrated", CAL)):
        d = root / f"data_{coll}" / "2021" / "08" / "28"
        d.mkdir(parents=True)
        members[coll] = []
        for n in names:
            (d / n).write_bytes((products_dir / n).read_bytes())
            lab = generate_label(d / n)
            out["labels"].append(lab)
            members[coll].append(lidvid_of(lab))
    raw = make_collection(root / "data_raw", "raw", "1.0", members["raw"])
    cal = make_collection(root / "data_calibrated", "calibrated", "1.0",
                          [*members["calibrated"], InventoryEntry("S", members["raw"][0])])
    readme = write_readme(root, "Chandrayaan-2 XSM archive bundle\nsee collections")
    out["collections"] = [raw, cal]
    out["bundle"] = make_bundle(root, "1.0", [raw.lidvid, cal.lidvid], readme=readme)
    out["labels"] += [raw.label, cal.label, out["bundle"]]
    return out


def test_bundle_validates(bundle):
    findings = validate_labels([bundle["root"]])
    assert len(findings.labels) == 9
    assert findings.items == [], findings.to_json()


@pytest.mark.parametrize("im", ["1B00", "1O00"])
def test_collection_and_bundle_labels_validate_under_both_models(tmp_path, im):
    lv = L.lidvid(L.product_lid("20210828", 2, "lc"), "1.0")
    coll = make_collection(tmp_path / "data_calibrated", "calibrated", "1.0", [lv], im=im)
    b = make_bundle(tmp_path, "1.0", [coll.lidvid], im=im)
    findings = validate_labels([coll.label, b], data=True)
    # only the cross checks can complain: the product itself is not part of this call
    assert {f.rule for f in findings} <= {"bundle.inventory.missing"}, findings.to_json()
    assert not [f for f in findings if f.rule in ("xsd", "schematron")]


def test_inventory_format(bundle):
    cal = bundle["collections"][1]
    raw = cal.inventory.read_bytes()
    assert raw.endswith(b"\r\n") and raw.count(b"\r\n") == 4 and b"\n" not in raw.replace(b"\r\n", b"")
    lines = raw.decode("ascii").split("\r\n")[:-1]
    assert [ln[:2] for ln in lines] == ["P,", "P,", "P,", "S,"]
    assert all("::1.0" in ln for ln in lines)
    root = etree.parse(str(cal.label)).getroot()
    assert root.findtext(".//pds:Inventory/pds:records", namespaces=NS) == "4"
    assert root.findtext(".//pds:Inventory/pds:record_delimiter", namespaces=NS) == "Carriage-Return Line-Feed"
    assert root.findtext(".//pds:Field_Delimited[2]/pds:data_type", namespaces=NS) == "ASCII_LIDVID_LID"
    assert [e.reference for e in read_inventory(cal.inventory)][:3] == \
        [L.lidvid(L.product_lid_for_file(n), "1.0") for n in CAL]
    assert cal.lid == "urn:isro:isda:ch2_cho.xsm:data_calibrated" and cal.label.name == "collection_data_calibrated.xml"


def test_inventory_rules():
    p = L.lidvid(L.product_lid("20210828", 2, "lc"), "1.0")
    coll = L.COLLECTION_CALIBRATED
    assert inventory_problems([InventoryEntry("P", p)], coll) == []
    assert "must be a LIDVID" in inventory_problems([InventoryEntry("P", p.split("::")[0])], coll)[0]
    assert "not P or S" in inventory_problems([InventoryEntry("X", p)], coll)[0]
    assert "duplicate" in inventory_problems([InventoryEntry("P", p), InventoryEntry("P", p)], coll)[0]
    assert "two versions" in inventory_problems([InventoryEntry("P", p), InventoryEntry("P", p[:-3] + "2.0")], coll)[0]
    assert "does not belong" in inventory_problems([InventoryEntry("P", p)], L.COLLECTION_RAW)[0]
    with pytest.raises(ParameterError, match="invalid collection inventory"):
        inventory_bytes([InventoryEntry("P", "urn:isro:isda:BAD::1.0")])
    assert inventory_bytes([InventoryEntry("S", L.product_lid("20210828", 1, "fits"))]).endswith(b"\r\n")


def test_broken_inventory_is_reported(bundle):
    cal = bundle["collections"][1]
    data = cal.inventory.read_bytes()
    cal.inventory.write_bytes(data.replace(b"\r\n", b"\n"))
    rules = validate_labels([cal.label]).rules()
    assert {"inventory.crlf", "data.file.md5", "data.file.size"} <= rules


def test_cross_checks(bundle):
    # a product missing from the validated set, a bundle member missing
    labels = [p for p in bundle["labels"] if not p.name.endswith("_level2_gti.xml")
              and p.name != "collection_data_raw.xml"]
    rules = validate_labels(labels).rules()
    assert "bundle.inventory.missing" in rules and "bundle.member.missing" in rules
    # the same LIDVID twice
    extra = bundle["labels"][0].with_name("copy.xml")
    extra.write_bytes(bundle["labels"][0].read_bytes())
    rules = validate_labels(bundle["labels"] + [extra]).rules()
    assert "bundle.lidvid.unique" in rules


def test_versions_in_labels(tmp_path, products_dir):
    """Reprocessing: data change -> v2 file, version 2.0, history lists both versions."""
    name = "ch2_xsm_20210828_v2_level2.gti"
    (tmp_path / name).write_bytes((products_dir / "ch2_xsm_20210828_v1_level2.gti").read_bytes())
    hist = [ModificationDetail("2021-09-10", "1.0", "Created by XSM POC PRL"),
            ModificationDetail("2026-11-26", "2.0", "Reprocessed with CALDB 20251111")]
    label = generate_label(tmp_path / name, history=hist)
    assert label.name == "ch2_xsm_20210828_v2_level2_gti.xml"
    root = etree.parse(str(label)).getroot()
    assert root.findtext(".//pds:Identification_Area/pds:version_id", namespaces=NS) == "2.0"
    assert root.findtext(".//pds:logical_identifier", namespaces=NS).endswith("ch2_xsm_20210828_level2_gti")
    assert [e.text for e in root.iterfind(".//pds:Modification_Detail/pds:version_id", NS)] == ["1.0", "2.0"]
    assert validate_labels([label]).items == []
    # collections: the inventory changed -> next minor of the collection
    assert str(L.next_version("1.0", data_changed=False)) == "1.1"
    coll = make_collection(tmp_path, "calibrated", "1.1", [lidvid_of(label)],
                           history=[ModificationDetail("2021-09-10", "1.0", "first"),
                                    ModificationDetail("2026-11-26", "1.1", "gti 2.0")])
    root = etree.parse(str(coll.label)).getroot()
    assert [e.text for e in root.iterfind(".//pds:Modification_Detail/pds:version_id", NS)] == ["1.0", "1.1"]
    with pytest.raises(ParameterError, match="last Modification_Detail"):
        make_collection(tmp_path, "calibrated", "2.0", [lidvid_of(label)], history=hist[:1])


def test_day_zip_label(tmp_path, products_dir):
    zpath = tmp_path / "ch2_xsm_20210828_v1.zip"
    members = []
    with zipfile.ZipFile(zpath, "w") as z:
        for n in RAW + CAL:
            z.write(products_dir / n, f"ch2_xsm_20210828_v1/xsm/data/2021/08/28/{n}")
            members.append(L.lidvid(L.product_lid_for_file(n), "1.0"))
    for im in ("1B00", "1O00"):
        label = make_zip_label(zpath, members, im=im)
        assert label.name == "ch2_xsm_20210828_v1.xml"
        root = etree.parse(str(label)).getroot()
        assert etree.QName(root).localname == "Product_Zipped"
        assert root.findtext(".//pds:logical_identifier", namespaces=NS) == \
            "urn:isro:isda:ch2_cho.xsm:daywise_zip:ch2_xsm_20210828"
        refs = root.findall("pds:Internal_Reference", NS)
        assert len(refs) == 6 and {r.findtext("pds:reference_type", namespaces=NS) for r in refs} == {"zip_to_package"}
        assert validate_labels([label]).items == []
    with pytest.raises(L.LidError):
        make_zip_label(zpath, ["urn:isro:isda:ch2_cho.xsm:data_raw:x"])


def test_bundle_rules(tmp_path):
    lv = L.lidvid(L.COLLECTION_RAW, "1.0")
    with pytest.raises(ParameterError, match="LIDVID"):
        make_bundle(tmp_path, "1.0", [L.COLLECTION_RAW])
    with pytest.raises(ParameterError, match="twice"):
        make_bundle(tmp_path, "1.0", [lv, lv])
    with pytest.raises(ParameterError, match="not a collection of"):
        make_bundle(tmp_path, "1.0", ["urn:isro:isda:ch2_cho.iir:data_raw::1.0"])
    b = make_bundle(tmp_path, "1.0", [lv, (L.lidvid(L.collection_lid("document"), "1.0"), "document")])
    root = etree.parse(str(b)).getroot()
    assert [e.findtext("pds:reference_type", namespaces=NS) for e in root.iterfind("pds:Bundle_Member_Entry", NS)] == \
        ["bundle_has_data_collection", "bundle_has_document_collection"]


def test_bundle_directory_checks(bundle):
    d = bundle["root"] / "data_calibrated" / "2021" / "08" / "28"
    (d / "stray.dat").write_text("x")
    (d / "CH2_XSM_20210828_V1_LEVEL2.GTI").write_text("x")
    findings = validate_labels([bundle["root"]])
    assert {f.rule for f in findings} == {"bundle.file.unreferenced", "bundle.file.case"}
    assert any("stray.dat" in f.message for f in findings)
    # without a bundle label the directory rules do not apply (e.g. ../shared/realdata)
    assert validate_labels([d]).items == []


def test_unknown_context_reference_warns(product_copy):
    label = generate_label(product_copy("ch2_xsm_20210828_v1_level2.gti"))
    text = label.read_text().replace("mission.chandrayaan2::1.0", "mission.chandrayaan3::1.0")
    label.write_text(text)
    findings = validate_labels([label])
    assert [(f.rule, f.severity) for f in findings] == [("lid.context", "warning")]


def test_read_history_feeds_a_new_version(tmp_path, products_dir):
    from xsm.labels.generate import read_history

    v1 = tmp_path / "ch2_xsm_20210828_v1_level2.lc"
    v1.write_bytes((products_dir / v1.name).read_bytes())
    old = generate_label(v1, description="first release")
    v2 = tmp_path / "ch2_xsm_20210828_v2_level2.lc"
    v2.write_bytes((products_dir / v1.name).read_bytes())
    hist = read_history(old) + [ModificationDetail("2026-11-26", "2.0", "reprocessed")]
    new = generate_label(v2, history=hist)
    assert [(d.version_id, d.description) for d in read_history(new)] == [("1.0", "first release"),
                                                                          ("2.0", "reprocessed")]
    assert lidvid_of(new) == lidvid_of(old).replace("::1.0", "::2.0")


def test_bundle_root_layout(bundle):
    root = bundle["root"]
    (root / "notes.txt").write_text("x")
    (root / "ISDA").mkdir()
    findings = validate_labels([root])
    assert sorted(Path(f.location).name for f in findings if f.rule == "bundle.layout") == ["ISDA", "notes.txt"]
