"""Labels of every product type xsm writes: valid under 1B00 and 1O00, readable by pds4_tools."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from lxml import etree

from xsm.labels.fitsmap import scan_fits
from xsm.labels.generate import generate_label
from xsm.labels.validate import validate_labels

NS = {"pds": "http://pds.nasa.gov/pds4/pds/v1"}
PRODUCTS = [
    "ch2_xsm_20210828_v1_level1.fits", "ch2_xsm_20210828_v1_level1.hk", "ch2_xsm_20210828_v1_level1.sa",
    "ch2_xsm_20210828_v1_level2.gti", "ch2_xsm_20210828_v1_level2.lc", "ch2_xsm_20210828_v1_level2_hr.lc",
    "ch2_xsm_20210828_v1_level2.pha", "ch2_xsm_20210828_v1_level2.arf",
    "ch2_xsm_20210828_v1_level2_t1.pha", "ch2_xsm_20210828_v1_level2_t1.arf",
]


@pytest.fixture(scope="module")
def labelled(products_dir: Path, tmp_path_factory, pds4_dir, user_data_dir) -> dict[str, dict[str, Path]]:
    """Labels of every product under both IMs, each IM in its own folder beside copies of the files."""
    import os

    os.environ.setdefault("XSM_DATA_DIR", str(user_data_dir))
    out = {}
    for im in ("1B00", "1O00"):
        d = tmp_path_factory.mktemp(f"labels-{im}")
        out[im] = {}
        for name in PRODUCTS:
            (d / name).write_bytes((products_dir / name).read_bytes())
            out[im][name] = generate_label(d / name, im)
    return out


def test_all_products_written(products_dir):
    assert sorted(p.name for p in products_dir.iterdir()) == sorted(PRODUCTS)


@pytest.mark.parametrize("im", ["1B00", "1O00"])
def test_every_product_label_validates(labelled, im):
    labels = list(labelled[im].values())
    findings = validate_labels(labels)
    assert findings.items == [], findings.to_json()
    for lab in labels:
        root = etree.parse(str(lab)).getroot()
        want = {"1B00": "1.11.0.0", "1O00": "1.24.0.0"}[im]
        assert root.findtext("pds:Identification_Area/pds:information_model_version", namespaces=NS) == want
        assert f"PDS4_PDS_{im}.xsd" in root.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation")


def test_file_area_matches_the_file(labelled, products_dir):
    for name, lab in labelled["1B00"].items():
        root = etree.parse(str(lab)).getroot()
        structure = scan_fits(products_dir / name)
        with fits.open(products_dir / name) as hdul:
            infos = [hdul.fileinfo(i) for i in range(len(hdul))]
            tables = [h for h in hdul if isinstance(h, fits.BinTableHDU)]
            headers = root.findall(".//pds:Header", NS)
            assert [int(h.findtext("pds:offset", namespaces=NS)) for h in headers] == [i["hdrLoc"] for i in infos]
            assert [int(h.findtext("pds:object_length", namespaces=NS)) for h in headers] == \
                [i["datLoc"] - i["hdrLoc"] for i in infos]
            tabs = root.findall(".//pds:Table_Binary", NS)
            assert [int(t.findtext("pds:offset", namespaces=NS)) for t in tabs] == [i["datLoc"] for i in infos[1:]]
            assert [int(t.findtext("pds:records", namespaces=NS)) for t in tabs] == [len(t.data) for t in tables]
            assert [int(t.findtext(".//pds:record_length", namespaces=NS)) for t in tabs] == \
                [t.header["NAXIS1"] for t in tables]
        assert int(root.findtext(".//pds:File/pds:file_size", namespaces=NS)) == structure.size
        # objects in offset order
        offsets = [int(e.findtext("pds:offset", namespaces=NS)) for e in
                   root.find("pds:File_Area_Observational", NS) if etree.QName(e).localname in ("Header", "Table_Binary")]
        assert offsets == sorted(offsets)


def test_vector_columns_are_groups(labelled):
    root = etree.parse(str(labelled["1B00"]["ch2_xsm_20210828_v1_level2.pha"])).getroot()
    rec = root.find(".//pds:Record_Binary", NS)
    assert rec.findtext("pds:fields", namespaces=NS) == "5"
    assert rec.findtext("pds:groups", namespaces=NS) == "4"
    assert rec.findtext("pds:record_length", namespaces=NS) == "8221"
    groups = rec.findall("pds:Group_Field_Binary", NS)
    assert [(g.findtext("pds:repetitions", namespaces=NS), g.findtext("pds:group_location", namespaces=NS),
             g.findtext("pds:group_length", namespaces=NS), g.findtext("pds:Field_Binary/pds:name", namespaces=NS))
            for g in groups] == [("512", "5", "2048", "CHANNEL"), ("512", "2053", "2048", "COUNTS"),
                                 ("512", "4101", "2048", "STAT_ERR"), ("512", "6149", "2048", "SYS_ERR")]
    l1 = etree.parse(str(labelled["1B00"]["ch2_xsm_20210828_v1_level1.fits"])).getroot()
    rec = l1.find(".//pds:Record_Binary", NS)
    assert (rec.findtext("pds:fields", namespaces=NS), rec.findtext("pds:groups", namespaces=NS),
            rec.findtext("pds:record_length", namespaces=NS)) == ("6", "1", "2108")
    g = rec.find("pds:Group_Field_Binary", NS)
    assert (g.findtext("pds:repetitions", namespaces=NS), g.findtext("pds:group_location", namespaces=NS),
            g.findtext("pds:group_length", namespaces=NS),
            g.findtext("pds:Field_Binary/pds:data_type", namespaces=NS)) == ("2048", "59", "2048", "UnsignedByte")
    utc = [f for f in rec.findall("pds:Field_Binary", NS) if f.findtext("pds:name", namespaces=NS) == "UTCString"][0]
    assert (utc.findtext("pds:data_type", namespaces=NS), utc.findtext("pds:field_length", namespaces=NS),
            utc.findtext("pds:field_location", namespaces=NS)) == ("ASCII_String", "30", "9")


def test_level1_hk_and_sa_layout(labelled):
    for name, fields, length in (("ch2_xsm_20210828_v1_level1.hk", "38", "140"),
                                 ("ch2_xsm_20210828_v1_level1.sa", "10", "38")):
        rec = etree.parse(str(labelled["1B00"][name])).getroot().find(".//pds:Record_Binary", NS)
        assert (rec.findtext("pds:fields", namespaces=NS), rec.findtext("pds:groups", namespaces=NS),
                rec.findtext("pds:record_length", namespaces=NS)) == (fields, "0", length)


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "SU" or b.dtype.kind in "SU":
        return np.array_equal(np.char.rstrip(a.astype(str)), np.char.rstrip(b.astype(str)))
    return a.shape == b.shape and np.array_equal(a, b)


def _read_back(label: Path, data: Path) -> int:
    import pds4_tools

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        struct = pds4_tools.read(str(label), quiet=True, lazy_load=False)
    tables = [s for s in struct.structures if s.is_table()]
    compared = 0
    with fits.open(data) as hdul:
        exts = [h for h in hdul if isinstance(h, fits.BinTableHDU) and h.header["NAXIS2"] > 0]
        assert len(tables) == len(exts)
        for st, hdu in zip(tables, exts):
            names = [f.meta_data["name"] for f in st.fields]
            assert len(names) == len(hdu.columns)
            for name, col in zip(names, hdu.columns):
                assert _same(st[name], hdu.data[col.name]), (label.name, name)
                compared += 1
    return compared


@pytest.mark.parametrize("im", ["1B00", "1O00"])
def test_pds4_tools_reads_what_astropy_reads(labelled, im):
    n = 0
    for name, lab in labelled[im].items():
        n += _read_back(lab, lab.parent / name)
    assert n == 7 + 38 + 10 + 2 + 4 + 12 + 9 + 4 + 4 + 3  # columns of PRODUCTS, in order


def _gti_like(tmp_path, cols, date_obs="2021-08-28 00:00:00.662640000",
              date_end="2021-08-28 23:59:59.396634000"):
    """A minimal ``.gti``-named file with ``cols`` and the time keywords labels need."""
    ext = fits.BinTableHDU.from_columns(cols, name="GTI")
    ext.header["DATE-OBS"] = date_obs
    ext.header["DATE-END"] = date_end
    prim = fits.PrimaryHDU()
    prim.header["DATE"] = "2021-09-10T15:09:08"
    path = tmp_path / "ch2_xsm_20210828_v1_level2.gti"
    fits.HDUList([prim, ext]).writeto(path)
    return path


def test_unsigned_columns_get_value_offset(tmp_path):
    """FITS unsigned columns (TZERO) are described by the stored signed type + value_offset."""
    n = 5
    cols = [fits.Column("U16", "I", bzero=32768, array=np.array([0, 1, 40000, 65535, 7], np.uint16)),
            fits.Column("U32", "J", bzero=2**31, array=np.array([0, 1, 3_000_000_000, 2**32 - 1, 7], np.uint32)),
            fits.Column("V16", "3I", bzero=32768, array=np.arange(3 * n, dtype=np.uint16).reshape(n, 3) + 60000)]
    path = _gti_like(tmp_path, cols)
    label = generate_label(path)
    root = etree.parse(str(label)).getroot()
    fields = {f.findtext("pds:name", namespaces=NS): f for f in root.iter("{%s}Field_Binary" % NS["pds"])}
    assert fields["U16"].findtext("pds:data_type", namespaces=NS) == "SignedMSB2"
    assert fields["U16"].findtext("pds:value_offset", namespaces=NS) == "32768"
    assert fields["U32"].findtext("pds:data_type", namespaces=NS) == "SignedMSB4"
    assert fields["U32"].findtext("pds:value_offset", namespaces=NS) == "2147483648"
    assert fields["V16"].findtext("pds:value_offset", namespaces=NS) == "32768"
    assert validate_labels([label]).items == []
    assert _read_back(label, path) == 3


def test_empty_table_has_header_only(tmp_path):
    """An empty GTI (no rows) is valid FITS; PDS4 has no 0-record tables: Header only, no records."""
    path = _gti_like(tmp_path, [fits.Column("START", "D", array=np.zeros(0)),
                                fits.Column("STOP", "D", array=np.zeros(0))])
    label = generate_label(path)
    root = etree.parse(str(label)).getroot()
    assert root.find(".//pds:Table_Binary", NS) is None and root.find(".//pds:File/pds:records", NS) is None
    assert len(root.findall(".//pds:Header", NS)) == 2
    assert validate_labels([label]).items == []


@pytest.mark.parametrize("im", ["1B00", "1O00"])
def test_second_xsd_validator_agrees(labelled, pds4_dir, im):
    """xmlschema (local files only, no location hints) accepts what lxml accepted."""
    import xmlschema

    schema = xmlschema.XMLSchema(str(pds4_dir / "schemas" / "pds" / "v1" / f"PDS4_PDS_{im}.xsd"), allow="local")
    for lab in labelled[im].values():
        assert list(schema.iter_errors(str(lab), use_location_hints=False)) == [], lab.name


def test_label_times_same_from_iso_and_space_forms(tmp_path):
    """Default-mode products write DATE-OBS with ``T``, compat ones with a space (time.md §2)."""
    cols = [fits.Column("START", "D", array=np.zeros(1)), fits.Column("STOP", "D", array=np.ones(1))]
    (tmp_path / "t").mkdir()
    iso = _gti_like(tmp_path / "t", cols, "2021-08-28T00:00:00.662640000", "2021-08-28T23:59:59.396634000")
    space = _gti_like(tmp_path, cols)
    for path in (iso, space):
        root = etree.parse(str(generate_label(path))).getroot()
        assert root.findtext(".//pds:start_date_time", namespaces=NS) == "2021-08-28T00:00:00.662Z"
        assert root.findtext(".//pds:stop_date_time", namespaces=NS) == "2021-08-28T23:59:59.396Z"
