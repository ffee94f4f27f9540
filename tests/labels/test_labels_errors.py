"""Broken labels are reported with the rule they break (spec/pds4.md §5)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lxml import etree

from xsm.labels.generate import generate_label
from xsm.labels.validate import validate_labels
from xsm.schemas.locator import SchemaNotFoundError

NS = {"pds": "http://pds.nasa.gov/pds4/pds/v1"}


@pytest.fixture
def lc_pair(realdata_dir, tmp_path) -> Path:
    """The official 2021-08-28 light curve and its label, copied into a fresh folder."""
    src = realdata_dir / "20210828"
    for name in ("ch2_xsm_20210828_v1_level2.lc", "ch2_xsm_20210828_v1_level2_lc.xml"):
        shutil.copyfile(src / name, tmp_path / name)
    return tmp_path / "ch2_xsm_20210828_v1_level2_lc.xml"


@pytest.fixture
def pha_pair(product_copy) -> Path:
    """A type-II spectrum of ours (vector columns) and its label."""
    return generate_label(product_copy("ch2_xsm_20210828_v1_level2.pha"))


def mutate(label: Path, xpath: str, value: str, index: int = 0) -> Path:
    tree = etree.parse(str(label))
    el = tree.getroot().xpath(xpath, namespaces=NS)[index]
    el.text = value
    tree.write(str(label), xml_declaration=True, encoding="UTF-8")
    return label


def errors(label: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in validate_labels([label]).errors:
        out.setdefault(f.rule, []).append(f.message)
    return out


def test_untouched_copy_is_clean(lc_pair, pha_pair):
    assert errors(lc_pair) == {}
    assert errors(pha_pair) == {}


def test_wrong_header_offset(lc_pair):
    found = errors(mutate(lc_pair, "//pds:Header[2]/pds:offset", "2881"))
    assert "data.header.offset" in found
    assert "2881" in found["data.header.offset"][0]


def test_wrong_header_length(lc_pair):
    assert "data.header.length" in errors(mutate(lc_pair, "//pds:Header[2]/pds:object_length", "2880"))


def test_wrong_table_offset(lc_pair):
    found = errors(mutate(lc_pair, "//pds:Table_Binary/pds:offset", "5760"))
    assert "data.table.offset" in found


def test_wrong_md5(lc_pair):
    found = errors(mutate(lc_pair, "//pds:md5_checksum", "0" * 32))
    assert list(found) == ["data.file.md5"]
    assert "4aa0ff44fdcf975c61e42205497b3e46" in found["data.file.md5"][0]


def test_wrong_size(lc_pair):
    assert list(errors(mutate(lc_pair, "//pds:file_size", "1241281"))) == ["data.file.size"]


def test_wrong_record_count(lc_pair):
    found = errors(mutate(lc_pair, "//pds:Table_Binary/pds:records", "61554"))
    assert list(found) == ["data.table.records"]
    assert "NAXIS2 = 61555" in found["data.table.records"][0]
    found = errors(mutate(lc_pair, "//pds:File/pds:records", "5"))
    assert "data.file.records" in found


def test_wrong_record_length_and_field(lc_pair):
    found = errors(mutate(lc_pair, "//pds:Record_Binary/pds:record_length", "24"))
    assert "data.record.length" in found
    found = errors(mutate(lc_pair, "//pds:Record_Binary/pds:record_length", "20"))
    assert found == {}
    found = errors(mutate(lc_pair, "//pds:Field_Binary[2]/pds:field_location", "10"))
    assert "data.field.location" in found or "data.field.overlap" in found
    mutate(lc_pair, "//pds:Field_Binary[2]/pds:field_location", "9")
    found = errors(mutate(lc_pair, "//pds:Field_Binary[2]/pds:data_type", "SignedMSB4"))
    assert list(found) == ["data.field.type"]
    mutate(lc_pair, "//pds:Field_Binary[2]/pds:data_type", "IEEE754MSBSingle")
    found = errors(mutate(lc_pair, "//pds:Field_Binary[4]/pds:field_location", "19"))
    assert "data.field.location" in found  # 19 + 4 - 1 > 20


def test_group_errors(pha_pair):
    found = errors(mutate(pha_pair, "//pds:Group_Field_Binary[2]/pds:group_length", "2044"))
    assert "data.group.length" in found
    mutate(pha_pair, "//pds:Group_Field_Binary[2]/pds:group_length", "2048")
    found = errors(mutate(pha_pair, "//pds:Group_Field_Binary[1]/pds:repetitions", "511"))
    assert "data.group.repetitions" in found
    mutate(pha_pair, "//pds:Group_Field_Binary[1]/pds:repetitions", "512")
    found = errors(mutate(pha_pair, "//pds:Record_Binary/pds:groups", "3"))
    assert "data.record.fields" in found


def test_malformed_lid(lc_pair):
    found = errors(mutate(lc_pair, "//pds:logical_identifier",
                          "urn:isro:isda:ch2_cho.xsm:data_calibrated:CH2_xsm_20210828_level2_lc"))
    assert "lid.syntax" in found
    assert "upper-case" in found["lid.syntax"][0]
    found = errors(mutate(lc_pair, "//pds:logical_identifier", "urn:isro:isda:ch2_cho.xsm:ch2_xsm_20210828_level2_lc"))
    assert "lid.syntax" in found and "schematron" in found  # 4 colons: the 1B00 Schematron rule too
    assert any("urn:agencyId:authorityId:bundleID:collectionID:productID" in m for m in found["schematron"])
    found = errors(mutate(lc_pair, "//pds:logical_identifier", "urn:isro:isda:ch2_cho.xsm:data_calibrated::lc"))
    assert "lid.syntax" in found


def test_bad_version_id_and_reference(lc_pair):
    found = errors(mutate(lc_pair, "//pds:Identification_Area/pds:version_id", "1"))
    assert "lid.version" in found and "xsd" in found
    mutate(lc_pair, "//pds:Identification_Area/pds:version_id", "1.0")
    found = errors(mutate(lc_pair, "//pds:lidvid_reference", "urn:isro:isda:context:investigation:mission.chandrayaan2"))
    assert "lid.reference" in found


def test_missing_file(lc_pair):
    (lc_pair.parent / "ch2_xsm_20210828_v1_level2.lc").unlink()
    found = errors(lc_pair)
    assert list(found) == ["data.file.missing"]


def test_case_sensitive_file_name(lc_pair):
    found = errors(mutate(lc_pair, "//pds:file_name", "CH2_xsm_20210828_v1_level2.lc"))
    assert "data.file.missing" in found


def test_schema_violation(lc_pair):
    found = errors(mutate(lc_pair, "//pds:Primary_Result_Summary/pds:purpose", "Fun"))
    assert "xsd" in found or "schematron" in found


def test_time_order(lc_pair):
    found = errors(mutate(lc_pair, "//pds:start_date_time", "2021-08-29T00:00:00.000Z"))
    assert "label.time" in found


def test_truncated_data_file(lc_pair):
    data = lc_pair.parent / "ch2_xsm_20210828_v1_level2.lc"
    data.write_bytes(data.read_bytes()[:-2880])
    found = errors(lc_pair)
    assert {"data.file.size", "data.file.md5", "data.fits"} <= set(found)


def test_extra_bytes_after_fits(lc_pair):
    data = lc_pair.parent / "ch2_xsm_20210828_v1_level2.lc"
    data.write_bytes(data.read_bytes() + b"\0" * 2880)
    found = errors(lc_pair)
    assert "data.file.extent" in found


def test_malformed_xml_is_a_finding_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text('<?xml version="1.0"?>\n<Product_Observational>\n  <oops>\n</Product_Observational>\n')
    findings = validate_labels([bad])
    assert [(f.rule, f.location) for f in findings] == [("xml.malformed", f"{bad}:4")]
    assert "not well-formed XML" in findings.items[0].message


def test_wrong_model_declarations(lc_pair):
    text = lc_pair.read_text()
    lc_pair.write_text(text.replace("PDS4_PDS_1B00.sch", "PDS4_PDS_1O00.sch"))
    found = errors(lc_pair)
    assert "label.model" in found
    lc_pair.write_text(text.replace('schematypens="http://purl.oclc.org/dsdl/schematron"', 'schematypens="x"'))
    assert "label.model" in errors(lc_pair)
    lc_pair.write_text(text.replace("<information_model_version>1.11.0.0", "<information_model_version>1.24.0.0"))
    assert "label.model" in errors(lc_pair)


def test_missing_schemas_say_how_to_install(lc_pair, tmp_path, monkeypatch):
    empty = tmp_path / "no-schemas"
    empty.mkdir()
    monkeypatch.setenv("XSM_PDS4_SCHEMAS", str(empty))
    with pytest.raises(SchemaNotFoundError, match="xsm labels schemas install --from"):
        validate_labels([lc_pair], require_schemas=True)
    # without require_schemas: one warning with the same hint (tests/labels/test_fresh_labels_noschema.py)
    found = validate_labels([lc_pair])
    assert found.ok and "xsm labels schemas install --from" in found.warnings[0].message


def test_value_offset_must_match_tzero(lc_pair):
    text = lc_pair.read_text()
    lc_pair.write_text(text.replace("<unit>Sec</unit>", "<unit>Sec</unit><value_offset>1</value_offset>", 1))
    found = errors(lc_pair)
    assert list(found) == ["data.field.scaling"]
    assert "TZERO absent" in found["data.field.scaling"][0]


def test_content_read_back(lc_pair, pha_pair):
    """Optional pds4.md §5 #8: tables read through the label equal astropy's reading."""
    assert validate_labels([lc_pair, pha_pair], content=True).items == []
    text = lc_pair.read_text()
    # a label describing other bytes (scaling) reads other values: caught by both checks
    lc_pair.write_text(text.replace("<unit>Sec</unit>", "<unit>Sec</unit><scaling_factor>2</scaling_factor>", 1))
    findings = validate_labels([lc_pair], content=True)
    assert "data.field.scaling" in findings.rules()
    # the read-back on its own sees the difference too
    from xsm.labels import validate as V

    ctx = V._Ctx(lc_pair)
    V._check_content(lc_pair, lc_pair.parent / "ch2_xsm_20210828_v1_level2.lc", ctx)
    assert [f.rule for f in ctx.items] == ["data.content"] and "Time" in ctx.items[0].message


def test_xsd_still_checked_without_the_schematron_skeleton(lc_pair, xsm_shared, tmp_path, monkeypatch):
    """Schema files with the XSDs but no ISO skeleton: the Schematron rules are skipped (one
    warning says so), the XSD check still runs and finds an element out of place."""
    only_xsd = tmp_path / "xsd-only"
    shutil.copytree(xsm_shared / "pds4" / "schemas", only_xsd / "schemas")
    monkeypatch.setenv("XSM_PDS4_SCHEMAS", str(only_xsd))
    clean = validate_labels([lc_pair])
    assert clean.errors == [] and len(clean.warnings) == 1
    assert "Schematron checks skipped" in clean.warnings[0].message
    assert "XSD and Schematron" not in clean.warnings[0].message
    tree = etree.parse(str(lc_pair))
    etree.SubElement(tree.getroot().find("pds:Identification_Area", NS), f"{{{NS['pds']}}}no_such_element")
    tree.write(str(lc_pair), xml_declaration=True, encoding="UTF-8")
    assert "xsd" in {f.rule for f in validate_labels([lc_pair]).errors}
