"""`xsm labels generate | validate | schemas install` (typer CliRunner)."""
from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from xsm.archive.cli import app
from xsm.schemas import locator

runner = CliRunner()


def test_generate_and_validate(product_copy, tmp_path):
    data = product_copy("ch2_xsm_20210828_v1_level2.lc")
    res = runner.invoke(app, ["labels", "generate", str(data)])
    assert res.exit_code == 0, res.output
    label = data.with_name("ch2_xsm_20210828_v1_level2_lc.xml")
    assert label.is_file() and str(label) in res.output
    res = runner.invoke(app, ["labels", "validate", str(label)])
    assert res.exit_code == 0, res.output
    assert "0 error(s)" in res.output
    res = runner.invoke(app, ["labels", "validate", str(label), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["errors"] == 0
    res = runner.invoke(app, ["labels", "generate", str(data), "--im", "1O00", "--out", str(tmp_path / "x.xml")])
    assert res.exit_code == 0 and "1.24.0.0" in (tmp_path / "x.xml").read_text()


def test_validate_reports_errors_with_nonzero_exit(realdata_dir):
    label = realdata_dir / "20210828" / "ch2_xsm_20210828_v1_level2_pha.xml"
    res = runner.invoke(app, ["labels", "validate", str(label), "--json"])
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert out["errors"] == 1 and out["findings"][0]["rule"] == "data.file.missing"
    assert set(out["findings"][0]) >= {"rule", "severity", "location", "message"}
    res = runner.invoke(app, ["labels", "validate", str(label)])
    assert res.exit_code == 1 and "data.file.missing" in res.output


def test_malformed_xml_gives_a_clear_message(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<Product_Observational><x></Product_Observational>")
    res = runner.invoke(app, ["labels", "validate", str(bad)])
    assert res.exit_code == 1
    assert "xml.malformed" in res.output and "Traceback" not in res.output
    assert f"error: {bad}:1: not well-formed XML" in res.output
    res = runner.invoke(app, ["labels", "validate", str(tmp_path / "missing.xml")])
    assert res.exit_code == 2 and "missing.xml: no such label file" in res.output


def test_bad_input_is_one_line_exit_2(tmp_path):
    res = runner.invoke(app, ["labels", "generate", str(tmp_path / "nope.lc")])
    assert res.exit_code == 2 and res.exception is None or isinstance(res.exception, SystemExit)
    assert "nope.lc" in res.output and "Traceback" not in res.output
    notfits = tmp_path / "ch2_xsm_20210828_v1_level2.lc"
    notfits.write_text("hello")
    res = runner.invoke(app, ["labels", "generate", str(notfits)])
    assert res.exit_code == 2 and "not a FITS file" in res.output


def test_missing_schemas_message(product_copy, tmp_path, monkeypatch):
    label = runner.invoke(app, ["labels", "generate", str(product_copy("ch2_xsm_20210828_v1_level2.gti"))])
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("XSM_PDS4_SCHEMAS", str(empty))
    # by default: the data checks run, one warning says the schemas were skipped and how to install them
    res = runner.invoke(app, ["labels", "validate", "--json", label.output.strip()])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["errors"] == 0 and [f["rule"] for f in out["findings"]] == ["schema.unavailable"]
    assert "xsm labels schemas install --from" in out["findings"][0]["message"]
    # full validation demanded: refused, with the same hint
    res = runner.invoke(app, ["labels", "validate", "--require-schemas", label.output.strip()])
    assert res.exit_code == 2
    assert "xsm labels schemas install --from" in res.output


def test_schemas_install(pds4_dir, tmp_path, monkeypatch, product_copy):
    data_dir = tmp_path / "userdata"
    monkeypatch.setenv("XSM_DATA_DIR", str(data_dir))
    monkeypatch.delenv("XSM_PDS4_SCHEMAS")
    res = runner.invoke(app, ["labels", "schemas", "install", "--from", str(pds4_dir)])
    assert res.exit_code == 0, res.output
    dest = data_dir / "pds4"
    assert (dest / "pds" / "v1" / "PDS4_PDS_1B00.xsd").read_bytes() == \
        (pds4_dir / "schemas" / "pds" / "v1" / "PDS4_PDS_1B00.xsd").read_bytes()
    assert (dest / "schematron_xslt2" / "iso_svrl_for_xslt2.xsl").is_file()
    sums = (dest / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 4 + 4 and all(len(line.split("  ")[0]) == 64 for line in sums)
    assert locator.verify_installed(dest) == []
    # the installed copy is what the validator uses now
    assert locator.schema_dir() == dest
    assert locator.xsd_path("1B00") == dest / "pds" / "v1" / "PDS4_PDS_1B00.xsd"
    label = runner.invoke(app, ["labels", "generate", str(product_copy("ch2_xsm_20210828_v1_level2.gti"))])
    res = runner.invoke(app, ["labels", "validate", label.output.strip()])
    assert res.exit_code == 0, res.output
    # a changed file is noticed
    (dest / "pds" / "v1" / "PDS4_PDS_1O00.sch").write_text("changed")
    assert locator.verify_installed(dest) == ["pds/v1/PDS4_PDS_1O00.sch: checksum differs from installation"]
    res = runner.invoke(app, ["labels", "schemas", "install", "--from", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "not a directory" in res.output


def test_install_needs_schema_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "readme").write_text("x")
    res = runner.invoke(app, ["labels", "schemas", "install", "--from", str(src), "--dest", str(tmp_path / "d")])
    assert res.exit_code == 2 and "no PDS4 schema pair" in res.output


def test_locator_layouts(pds4_dir, tmp_path):
    # the ../shared/pds4 layout, from either its root or its schemas/ folder
    for base in (pds4_dir, pds4_dir / "schemas"):
        assert locator.xsd_path("1O00", base).name == "PDS4_PDS_1O00.xsd"
        assert [p.name for p in locator.skeleton_paths(base)] == \
            ["iso_dsdl_include.xsl", "iso_abstract_expand.xsl", "iso_svrl_for_xslt2.xsl"]
    assert locator.resolve_url("https://pds.nasa.gov/pds4/pds/v1/PDS4_PDS_1B00.sch", pds4_dir).name == "PDS4_PDS_1B00.sch"
    assert locator.model("1.11.0.0").im == "1B00"
    assert locator.catalog_path().is_file()
    shutil.copytree(pds4_dir / "schemas", tmp_path / "only-xsd")
    try:
        locator.skeleton_paths(tmp_path / "only-xsd")
    except locator.SchemaNotFoundError as exc:
        assert "iso_dsdl_include.xsl" in str(exc) and "install" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("missing skeleton not reported")
