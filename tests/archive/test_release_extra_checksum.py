"""Release extras (``archive.md`` §6): the bundle's checksum manifest with its ``Product_Ancillary``
label in ``miscellaneous/`` (validated with XSD + Schematron as part of the release), and the
deep-archive packages. Raw products only (``make_level2`` monkeypatched): fast."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from xsm.archive import meta
from xsm.archive.build import build_day
from xsm.archive.release import make_release
from xsm.archive.verify import verify
from xsm.labels.bundle import read_inventory
from xsm.labels.checksum import CHECKSUM_MANIFEST_LID, md5deep_bytes, transfer_manifest_bytes
from xsm.labels.validate import validate_labels
from xsm.products.errors import ParameterError

NS = {"pds": "http://pds.nasa.gov/pds4/pds/v1"}
PDATE = dt.date(2026, 1, 2)


@pytest.fixture(scope="module")
def released(tmp_path_factory, golden_dir, real_caldb, xsm_shared):
    from xsm.archive import build

    mp = pytest.MonkeyPatch()
    mp.setattr(build, "make_level2", lambda *a, **k: {})  # raw products only
    root = tmp_path_factory.mktemp("rel") / "archive"
    try:
        build_day(root, "2021-09-05", level1=golden_dir / "short_quiet", caldb=real_caldb, processing_date=PDATE)
        r1 = make_release(root, "rel_a", "2021-09-05", "2021-09-05")
        r2 = make_release(root, "rel_b", "2021-09-05", "2021-09-05", deep_archive=True)
    finally:
        mp.undo()
    return root, r1, r2


def test_checksum_manifest_lists_every_bundle_file(released):
    _root, r1, _ = released
    misc = r1.path / "bundle" / "miscellaneous"
    data = (misc / "checksums_001.md5").read_bytes()
    lines = data.split(b"\r\n")
    assert lines[-1] == b"" and b"\n" not in data.replace(b"\r\n", b"")
    listed = {}
    for line in lines[:-1]:
        md5, rel = line.decode("ascii").split("  ", 1)
        listed[rel] = md5
        assert meta.file_hashes(r1.path / "bundle" / rel)[0] == md5
    files = {p.relative_to(r1.path / "bundle").as_posix() for p in (r1.path / "bundle").rglob("*") if p.is_file()}
    # everything but the manifest itself, its label and the miscellaneous collection files
    assert files - set(listed) == {"miscellaneous/checksums_001.md5", "miscellaneous/checksums_001.xml",
                                   "miscellaneous/collection_miscellaneous.xml",
                                   "miscellaneous/collection_miscellaneous_inventory.csv"}
    assert "bundle_xsm.xml" in listed and "data_raw/collection_data_raw.xml" in listed


def test_checksum_label_is_product_ancillary_and_release_validates(released):
    _root, r1, r2 = released
    lab = etree.parse(str(r1.path / "bundle/miscellaneous/checksums_001.xml")).getroot()
    assert etree.QName(lab).localname == "Product_Ancillary"
    cm = lab.find("pds:File_Area_Ancillary/pds:Checksum_Manifest", NS)
    assert cm.findtext("pds:parsing_standard_id", namespaces=NS) == "MD5Deep 4.n"
    assert cm.findtext("pds:record_delimiter", namespaces=NS) == "Carriage-Return Line-Feed"
    f = lab.find("pds:File_Area_Ancillary/pds:File", NS)
    md5 = meta.file_hashes(r1.path / "bundle/miscellaneous/checksums_001.md5")[0]
    assert f.findtext("pds:md5_checksum", namespaces=NS) == md5
    assert lab.findtext("pds:Identification_Area/pds:logical_identifier", namespaces=NS) == CHECKSUM_MANIFEST_LID
    assert lab.findtext("pds:Identification_Area/pds:version_id", namespaces=NS) == "1.0"
    # the second release: version 2.0, the miscellaneous collection 1.1, bundle references it
    inv = read_inventory(r2.path / "bundle/miscellaneous/collection_miscellaneous_inventory.csv")
    assert [e.line() for e in inv] == [f"P,{CHECKSUM_MANIFEST_LID}::2.0"]
    assert r2.collections["miscellaneous"].endswith(":miscellaneous::1.1")
    blab = etree.parse(str(r2.path / "bundle/bundle_xsm.xml")).getroot()
    refs = {e.findtext("pds:lidvid_reference", namespaces=NS): e.findtext("pds:reference_type", namespaces=NS)
            for e in blab.iterfind("pds:Bundle_Member_Entry", NS)}
    assert refs[r2.collections["miscellaneous"]] == "bundle_has_member_collection"
    # whole bundle: XSD + Schematron + cross checks, no errors
    for r in (r1, r2):
        rep = validate_labels([r.path / "bundle"], schematron=True)
        assert rep.ok, [str(x) for x in rep.errors][:5]


def test_release_manifest_and_root_checksums_include_misc_files(released):
    root, r1, _ = released
    lines = (r1.path / "checksums_001.md5").read_bytes().decode().split("\r\n")[:-1]
    listed = {ln.split("  ", 1)[1] for ln in lines}
    assert {"bundle/miscellaneous/checksums_001.md5", "bundle/miscellaneous/checksums_001.xml",
            "bundle/miscellaneous/collection_miscellaneous.xml"} <= listed
    tm = (r1.path / "transfer_manifest_001.tab").read_text()
    assert f"{CHECKSUM_MANIFEST_LID}::1.0" in tm
    assert verify(root).ok


def test_md5deep_and_transfer_formats_refuse_bad_input():
    assert md5deep_bytes([("0" * 32, "a/b.xml")]) == b"0" * 32 + b"  a/b.xml\r\n"
    with pytest.raises(ParameterError, match="md5"):
        md5deep_bytes([("XYZ", "a")])
    with pytest.raises(ParameterError, match="relative"):
        md5deep_bytes([("0" * 32, "/abs")])
    data, wl, wp = transfer_manifest_bytes([("urn:isro:isda:ch2_cho.xsm:x:y::1.0", "x/y.xml"),
                                            ("urn:isro:isda:ch2_cho.xsm:x:yz::10.0", "x/yz.xml")])
    recs = data.split(b"\r\n")[:-1]
    assert {len(r) for r in recs} == {wl + wp} and recs[1].startswith(b"urn:isro:isda:ch2_cho.xsm:x:yz::10.0 x/")
    with pytest.raises(ParameterError, match="LIDVID"):
        transfer_manifest_bytes([("nolid", "p")])


def test_deep_archive_package(released):
    _root, r1, r2 = released
    assert not (r1.path / "deep_archive").exists()
    out = r2.path / "deep_archive"
    stem = "ch2_cho.xsm_v1.1"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem}_{k}" for k in ("aip.xml", "checksum_manifest.tab", "transfer_manifest.tab"))
    lines = (out / f"{stem}_checksum_manifest.tab").read_bytes().split(b"\r\n")
    assert lines[-1] == b""
    bundle_files = {p.relative_to(r2.path).as_posix() for p in (r2.path / "bundle").rglob("*") if p.is_file()}
    got = dict(reversed(ln.decode().split("\t")) for ln in lines[:-1])
    assert set(got) == bundle_files
    assert all(meta.file_hashes(r2.path / p)[0] == m for p, m in got.items())
    recs = (out / f"{stem}_transfer_manifest.tab").read_bytes().split(b"\r\n")[:-1]
    assert len({len(r) for r in recs}) == 1
    labels = {p for p in bundle_files if p.endswith(".xml")}
    assert {r.decode().split()[1] for r in recs} == labels
    assert r2.bundle_lidvid.encode() in b"".join(recs)
    aip = etree.parse(str(out / f"{stem}_aip.xml")).getroot()
    assert etree.QName(aip).localname == "Product_AIP"
    assert aip.findtext("pds:Information_Package_Component/pds:checksum_manifest_checksum", namespaces=NS) == \
        meta.file_hashes(out / f"{stem}_checksum_manifest.tab")[0]
    rep = validate_labels([out / f"{stem}_aip.xml"], schematron=True)
    assert rep.ok, [str(x) for x in rep.errors][:5]


def test_cli_release_deep_archive(released):
    import json

    from typer.testing import CliRunner

    from xsm.archive.cli import app

    root, _r1, _r2 = released
    out = CliRunner().invoke(app, ["archive", "release", "rel_c", "--from", "2021-09-05", "--to", "2021-09-05",
                                   "-A", str(root), "--deep-archive", "--json"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.output)
    assert res["collections"]["miscellaneous"].endswith("::1.2")
    da = Path(res["path"]) / "deep_archive"
    assert (da / "ch2_cho.xsm_v1.2_aip.xml").is_file()
    assert (Path(res["path"]) / "bundle/miscellaneous/checksums_003.xml").is_file()
