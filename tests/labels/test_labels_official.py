"""ISDA's official labels: they validate, and xsm regenerates them (spec/pds4.md §1-3, §5)."""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from xsm.labels.generate import generate_label
from xsm.labels.validate import validate_labels

DAYS = ("20210828", "20210908")
#: Elements compared by presence only: creation time and free text.
IGNORED_TEXT = {"creation_date_time", "description"}


def official_labels(realdata: Path) -> list[Path]:
    return sorted(p for d in DAYS for p in (realdata / d).glob("*.xml"))


def test_official_labels_validate_under_1B00(realdata_dir):
    labels = official_labels(realdata_dir)
    assert len(labels) == 6
    findings = validate_labels(labels)
    # XSD and Schematron: nothing at all, not even warnings
    assert not [f for f in findings if f.rule in ("xsd", "schematron", "label.model", "xml.malformed")], \
        findings.to_json()
    # the .lc/.gti labels pass every data check against their files
    for lab in labels:
        if "_pha" not in lab.name:
            assert findings.for_label(lab) == [], findings.for_label(lab)
    # the .pha files are not in the reference folder: reported as the data-check finding, nothing else
    for lab in labels:
        if "_pha" in lab.name:
            assert [(f.rule, f.severity) for f in findings.for_label(lab)] == [("data.file.missing", "error")]
            assert ".pha not found" in findings.for_label(lab)[0].message


def test_official_lc_gti_data_checks_ran(realdata_dir, tmp_path):
    """The data checks really read the files: a copied label beside a different file fails."""
    src = realdata_dir / "20210828" / "ch2_xsm_20210828_v1_level2_gti.xml"
    other = realdata_dir / "20210908" / "ch2_xsm_20210908_v1_level2.gti"
    (tmp_path / "ch2_xsm_20210828_v1_level2.gti").write_bytes(other.read_bytes())
    lab = tmp_path / src.name
    lab.write_bytes(src.read_bytes())
    rules = validate_labels([lab]).rules()
    assert "data.file.md5" in rules and "data.table.records" in rules and "data.file.records" in rules


def _compare(ours, theirs, path="") -> list[str]:
    """Differences of two label trees, element by element (tags, attributes, text)."""
    diffs = []
    q_ours, q_theirs = etree.QName(ours), etree.QName(theirs)
    here = f"{path}/{q_theirs.localname}"
    if q_ours != q_theirs:
        return [f"{here}: element {q_ours.localname} instead of {q_theirs.localname}"]
    if dict(ours.attrib) != dict(theirs.attrib) and q_theirs.localname != etree.QName(theirs.getroottree().getroot()).localname:
        diffs.append(f"{here}: attributes {dict(ours.attrib)} != {dict(theirs.attrib)}")
    if q_theirs.localname not in IGNORED_TEXT:
        a, b = (ours.text or "").strip(), (theirs.text or "").strip()
        if a != b:
            diffs.append(f"{here}: {a!r} != {b!r}")
    c_ours = [c for c in ours if isinstance(c.tag, str)]
    c_theirs = [c for c in theirs if isinstance(c.tag, str)]
    if len(c_ours) != len(c_theirs):
        diffs.append(f"{here}: {len(c_ours)} children != {len(c_theirs)}: "
                     f"{[etree.QName(c).localname for c in c_ours]} vs {[etree.QName(c).localname for c in c_theirs]}")
    for x, y in zip(c_ours, c_theirs):
        diffs += _compare(x, y, here)
    return diffs


@pytest.mark.parametrize("day", DAYS)
@pytest.mark.parametrize("kind", ["lc", "gti"])
def test_generated_labels_equal_official(realdata_dir, tmp_path, day, kind):
    data = realdata_dir / day / f"ch2_xsm_{day}_v1_level2.{kind}"
    official = realdata_dir / day / f"ch2_xsm_{day}_v1_level2_{kind}.xml"
    label = generate_label(data, "1B00", out=tmp_path)
    assert label.name == official.name
    ours = etree.parse(str(label)).getroot()
    theirs = etree.parse(str(official)).getroot()
    assert _compare(ours, theirs) == []
    # the elements that matter, spelled out
    ns = {"pds": "http://pds.nasa.gov/pds4/pds/v1"}
    for xp in ("pds:Identification_Area/pds:logical_identifier", "pds:Identification_Area/pds:version_id",
               ".//pds:File/pds:file_size", ".//pds:File/pds:md5_checksum", ".//pds:File/pds:records",
               ".//pds:start_date_time", ".//pds:stop_date_time"):
        assert ours.findtext(xp, namespaces=ns) == theirs.findtext(xp, namespaces=ns), xp
    ours_fa = [(e.tag, (e.text or "").strip()) for e in ours.find("pds:File_Area_Observational", ns).iter()
               if etree.QName(e).localname not in IGNORED_TEXT]
    theirs_fa = [(e.tag, (e.text or "").strip()) for e in theirs.find("pds:File_Area_Observational", ns).iter()
                 if etree.QName(e).localname not in IGNORED_TEXT]
    assert ours_fa == theirs_fa
    # the creation time is the FITS DATE, as in the official label (no zone: an XSMDAS file)
    assert ours.findtext(".//pds:creation_date_time", namespaces=ns) == \
        theirs.findtext(".//pds:creation_date_time", namespaces=ns)


def test_generated_official_labels_validate(realdata_dir, tmp_path):
    """Our labels of the official files validate beside copies of those files."""
    labels = []
    for day in DAYS:
        for kind in ("lc", "gti"):
            src = realdata_dir / day / f"ch2_xsm_{day}_v1_level2.{kind}"
            (tmp_path / src.name).write_bytes(src.read_bytes())
            labels.append(generate_label(tmp_path / src.name))
    findings = validate_labels(labels)
    assert findings.items == [], findings.to_json()
