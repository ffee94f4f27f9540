"""The validator's machinery: Schematron compiled once and cached; the single-pass validator
reports exactly what the ISO skeleton's validator reports (spec/pds4.md §6)."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from xsm.labels import validate as V
from xsm.labels.bundle import make_bundle, make_collection
from xsm.labels.generate import generate_label, make_zip_label
from xsm.labels import lidvid as L

NS = {"pds": "http://pds.nasa.gov/pds4/pds/v1"}

#: (xpath, new text) making labels break Schematron rules of several kinds.
BREAKAGES = [
    ("//pds:logical_identifier", "urn:isro:isda:ch2_cho.xsm:x"),
    ("//pds:Primary_Result_Summary/pds:purpose", "Fun"),
    ("//pds:Target_Identification/pds:type", "Comet Tail"),
    ("//pds:Investigation_Area/pds:type", "Mision"),
    ("//pds:Internal_Reference/pds:reference_type", "data_to_nowhere"),
    ("//pds:Internal_Reference/pds:lidvid_reference", "urn:nasa:pds:context:investigation:x"),
    ("//pds:Header/pds:parsing_standard_id", "FITS 9"),
    ("//pds:Field_Binary/pds:data_type", "Nonsense"),
    ("//pds:Observing_System_Component/pds:type", "Spaceship"),
    ("//pds:Modification_Detail/pds:version_id", "x"),
    ("//pds:information_model_version", "1.11.0.0"),
]


def _executables(im: str):
    proc, xslt = V._processor()
    multi = V.compiled_schematron(im)
    single = V.single_pass_xslt(multi)
    assert single is not None and single != multi
    return (xslt.compile_stylesheet(stylesheet_file=str(multi)),
            xslt.compile_stylesheet(stylesheet_file=str(single)))


def _labels(products_dir: Path, realdata_dir: Path, out: Path, im: str) -> list[Path]:
    labels = []
    for name in ("ch2_xsm_20210828_v1_level1.fits", "ch2_xsm_20210828_v1_level2.pha",
                 "ch2_xsm_20210828_v1_level2_hr.lc"):
        shutil.copyfile(products_dir / name, out / name)
        labels.append(generate_label(out / name, im))
    if im == "1B00":
        labels += sorted((realdata_dir / "20210828").glob("*.xml"))
    lv = L.lidvid(L.product_lid("20210828", 2, "lc"), "1.0")
    coll = make_collection(out, "calibrated", "1.0", [lv], im=im)
    labels += [coll.label, make_bundle(out, "1.0", [coll.lidvid], im=im)]
    (out / "ch2_xsm_20210828_v1.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    labels.append(make_zip_label(out / "ch2_xsm_20210828_v1.zip", [lv], im=im))
    broken = []
    for i, lab in enumerate(labels):
        for j, (xp, value) in enumerate(BREAKAGES):
            tree = etree.parse(str(lab))
            els = tree.getroot().xpath(xp, namespaces=NS)
            if not els:
                continue
            els[0].text = value
            target = out / f"broken_{i}_{j}.xml"
            tree.write(str(target), xml_declaration=True, encoding="UTF-8")
            broken.append(target)
    return labels + broken


@pytest.mark.parametrize("im", ["1B00", "1O00"])
def test_single_pass_reports_what_the_skeleton_reports(products_dir, realdata_dir, tmp_path, im):
    multi, single = _executables(im)
    labels = _labels(products_dir, realdata_dir, tmp_path, im)
    assert len(labels) > 40
    n_findings = 0
    for lab in labels:
        a = V.run_schematron(multi, lab)
        b = V.run_schematron(single, lab)
        assert a is not None and b is not None
        assert Counter(a) == Counter(b), lab.name
        n_findings += len(a)
    assert n_findings > 30  # the comparison saw real failures


def test_schematron_compiled_once_and_cached(user_data_dir):
    path = V.compiled_schematron("1B00")
    assert path.is_file() and path.parent == V.schematron_cache_dir()
    assert str(path).startswith(str(user_data_dir))
    mtime = path.stat().st_mtime_ns
    assert V.compiled_schematron("1B00") == path and path.stat().st_mtime_ns == mtime
    single = V.single_pass_xslt(path)
    assert single.is_file() and V.single_pass_xslt(path) == single


def test_parallel_validation_equals_serial(products_dir, tmp_path):
    labels = []
    for name in sorted(p.name for p in products_dir.iterdir()):
        shutil.copyfile(products_dir / name, tmp_path / name)
        labels.append(generate_label(tmp_path / name))
    # one broken label among them
    tree = etree.parse(str(labels[0]))
    tree.getroot().xpath("//pds:md5_checksum", namespaces=NS)[0].text = "0" * 32
    tree.write(str(labels[0]), xml_declaration=True, encoding="UTF-8")
    serial = V.validate_labels(labels * 3, workers=1)
    parallel = V.validate_labels(labels * 3, workers=2, chunk_size=4)
    key = lambda f: (f.label, f.rule, f.location, f.message)  # noqa: E731
    assert sorted(map(key, serial)) == sorted(map(key, parallel))
    assert "data.file.md5" in parallel.rules() and "bundle.lidvid.unique" in parallel.rules()


def test_no_network(realdata_dir, monkeypatch):
    """Validation never opens a connection (schema URLs map to local files)."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    V._XSD_CACHE.clear()
    labels = sorted((realdata_dir / "20210828").glob("*_lc.xml"))
    assert V.validate_labels(labels).items == []
