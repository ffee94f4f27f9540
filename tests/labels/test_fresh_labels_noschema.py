"""Label validation on a fresh machine: no PDS4 schema files configured or installed.

The XSD/Schematron checks are skipped and reported by ONE ``schema.unavailable`` warning naming
how to install the schemas; every other check (XML, LID/LIDVID, the data checks) still runs.
``require_schemas=True`` refuses instead.
"""
from __future__ import annotations

import pytest
from lxml import etree

from xsm.labels import validate as V
from xsm.labels.generate import generate_label
from xsm.schemas.locator import SchemaNotFoundError

NS = {"pds": "http://pds.nasa.gov/pds4/pds/v1"}
PRODUCTS = ("ch2_xsm_20210828_v1_level2.pha", "ch2_xsm_20210828_v1_level1.fits")


@pytest.fixture(params=["unset", "empty-dir"])
def no_schemas(request, monkeypatch, tmp_path):
    """No schema directory at all (nothing configured, installed or shared), or an empty one."""
    monkeypatch.setenv("XSM_SHARED", str(tmp_path / "nonexistent"))
    monkeypatch.setenv("XSM_DATA_DIR", str(tmp_path / "userdata"))
    if request.param == "unset":
        monkeypatch.delenv("XSM_PDS4_SCHEMAS", raising=False)
    else:
        (tmp_path / "empty").mkdir()
        monkeypatch.setenv("XSM_PDS4_SCHEMAS", str(tmp_path / "empty"))
    return request.param


def _labels(product_copy) -> list:
    return [generate_label(product_copy(name), "1B00") for name in PRODUCTS]


def test_data_checks_run_and_one_warning_says_schemas_were_skipped(product_copy, no_schemas):
    labels = _labels(product_copy)
    f = V.validate_labels(labels)
    assert f.ok and f.labels == [str(p) for p in labels]
    assert [x.rule for x in f.items] == [V.SCHEMA_UNAVAILABLE]
    w = f.items[0]
    assert w.severity == V.WARNING and "\n" not in w.message
    assert "XSD and Schematron checks skipped for 1B00" in w.message
    assert "xsm labels schemas install --from" in w.message and "XSM_PDS4_SCHEMAS" in w.message
    f.raise_if_errors()  # warnings do not fail validation


def test_wrong_md5_and_bad_lid_still_caught_without_schemas(product_copy, no_schemas):
    labels = _labels(product_copy)
    tree = etree.parse(str(labels[0]))
    tree.find(".//pds:md5_checksum", NS).text = "0" * 32
    tree.find(".//pds:logical_identifier", NS).text = "urn:isro:isda:ch2_cho.xsm:Bad Lid"
    tree.write(str(labels[0]), xml_declaration=True, encoding="UTF-8")
    with open(labels[1], "ab") as fh:  # the data file is fine; its label loses its end tag
        fh.truncate(labels[1].stat().st_size - 30)
    f = V.validate_labels(labels)
    assert not f.ok
    by_label = {str(p): {x.rule for x in f.for_label(p)} for p in labels}
    assert "data.file.md5" in by_label[str(labels[0])] and "lid.syntax" in by_label[str(labels[0])]
    assert by_label[str(labels[1])] == {"xml.malformed"}
    assert [x.rule for x in f.warnings] == [V.SCHEMA_UNAVAILABLE]
    assert not f.rules() & {"xsd", "schematron", "schema.missing"}


def test_require_schemas_refuses_with_install_hint(product_copy, no_schemas):
    labels = _labels(product_copy)
    with pytest.raises(SchemaNotFoundError, match="xsm labels schemas install --from"):
        V.validate_labels(labels, require_schemas=True)


def test_with_schemas_there_is_no_warning(product_copy):
    """The autouse ``pds4_env`` points at the official schemas: full validation, no warning."""
    f = V.validate_labels(_labels(product_copy), require_schemas=True)
    assert f.ok and V.SCHEMA_UNAVAILABLE not in f.rules(None)
