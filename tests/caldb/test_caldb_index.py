"""Index I/O in both forms; boundary expressions; quzcif-style selection (``caldb.md`` §2-§5)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from astropy.io import fits

from xsm.caldb_manager.boundaries import BoundaryError, matches, parse_boundary, parse_query
from xsm.caldb_manager.index import CalIndex, IndexRow, read_index, write_index
from xsm.caldb_manager.select import select
from xsm.products.errors import InputFormatError, SelectionError
from xsm.products.met import mjd_to_met

IGNORED = {"CHECKSUM", "DATASUM"}


def _cards(header):
    return [(c.keyword, c.value, c.comment) for c in header.cards if c.keyword not in IGNORED]


def test_real_index_reads_without_loss_and_writes_back_equivalent(real_caldb, tmp_path, fitsverify):
    src = real_caldb / "xsmcaldb.indx"
    idx = read_index(src)
    assert idx.form == "xsm" and idx.caldbver == "20210628" and len(idx) == 9
    assert [r.cnam for r in idx.rows] == ["EBOUNDS", "GAIN", "ABSCOEF", "EFFAREAPAR", "RMF", "SYSERR",
                                          "RSP_OPEN", "RSP_BEFT", "GAIN"]
    assert idx.rows[8].file == "CH2xsmgain20210401v01.fits" and idx.rows[8].ref_time == 59014.0
    out = write_index(idx, tmp_path / "xsmcaldb.indx")
    fitsverify(out)
    with fits.open(src) as a, fits.open(out) as b:
        # every header card of the CIF extension (structure, keywords, values, comments but the
        # library's own comments on structural cards), every column and value
        assert [c[:2] for c in _cards(a[1].header)] == [c[:2] for c in _cards(b[1].header)]
        assert [c for c in _cards(a[1].header) if c[0] in {k[0] for k in idx.cards}] == \
               [c for c in _cards(b[1].header) if c[0] in {k[0] for k in idx.cards}]
        assert a[1].columns.names == b[1].columns.names
        assert a[1].columns.formats == b[1].columns.formats
        for name in a[1].columns.names:
            va, vb = np.asarray(a[1].data[name]).tolist(), np.asarray(b[1].data[name]).tolist()
            if isinstance(va[0], str):  # FITS strings: trailing blanks are not significant
                va, vb = [v.rstrip() for v in va], [v.rstrip() for v in vb]
            assert va == vb, name
        for key in ("MISSION", "TELESCOP", "INSTRUME", "NAXIS"):
            assert a[0].header[key] == b[0].header[key]
    assert read_index(out) == idx


def _ogip_rows():
    base = dict(telescop="CH2_ORBITER", instrume="XSM", cal_date="2026-01-01")
    return (
        IndexRow("EBOUNDS", "eb1.fits", 57754.0, cbd=("ENERG(0.5-17.396)keV", "PICH(0-511)"), **base),
        IndexRow("GAIN", "gainA.fits", 57754.0, filter="OPEN", cbd=("TEC(0-2.5)V", "DETPOSR(0-3.3)mm"),
                 xno=1, desc="gain open", orig="PRL", **base),
        IndexRow("GAIN", "gainB.fits", 57754.0, filter="BE", cbd=("TEC(0-2.5)V",), xno=2, **base),
        IndexRow("GAIN", "gainC.fits", 59014.0, cbd=("TEC(0-1.0)V",), vsd="2020-06-14", vst="00:00:00", **base),
        IndexRow("GAIN", "gainD.fits", 59014.0, cbd=("TEC(1.0-2.5)V",), **base),
        IndexRow("GAIN", "gainOld.fits", 59014.0, qual=5, **base),
        IndexRow("SYSERR", "sys.fits", 57754.5, detnam="SDD", cal_dir="data/ch2/xsm/bcf", **base),
    )


def test_full_ogip_cif_with_boundaries_round_trips(tmp_path, fitsverify):
    idx = CalIndex(rows=_ogip_rows(), caldbver="20260101", form="ogip")
    out = write_index(idx, tmp_path / "caldb.indx")
    fitsverify(out)
    back = read_index(out)
    assert back.form == "ogip" and back.caldbver == "20260101"
    assert back.rows == idx.rows
    with fits.open(out) as h:
        cif = h["CIF"]
        assert cif.header["CIFVERSN"] == "1.1"
        names = cif.columns.names
        assert names[:18] == ["TELESCOP", "INSTRUME", "DETNAM", "FILTER", "CAL_DEV", "CAL_DIR", "CAL_FILE",
                              "CAL_CLAS", "CAL_DTYP", "CAL_CNAM", "CAL_CBD", "CAL_XNO", "CAL_VSD", "CAL_VST",
                              "REF_TIME", "CAL_QUAL", "CAL_DATE", "CAL_DESC"]
        assert names[18] == "CAL_ORIG"
        assert cif.columns["CAL_CBD"].format == "630A70"
        assert list(cif.data["CAL_CBD"][1][:2]) == ["TEC(0-2.5)V", "DETPOSR(0-3.3)mm"]
        assert cif.data["CAL_VSD"][6] == "2017-01-01" and cif.data["CAL_VST"][6] == "12:00:00"
    # written again from what was read: the same file content
    again = write_index(back, tmp_path / "again.indx")
    with fits.open(out) as a, fits.open(again) as b:
        assert a[1].data.tobytes() == b[1].data.tobytes()
    # the XSM form of the same index keeps the five XSM columns
    xsm = read_index(write_index(idx, tmp_path / "xsm.indx", form="xsm"))
    assert xsm.form == "xsm" and [(r.cnam, r.file, r.ref_time, r.qual) for r in xsm.rows] == \
           [(r.cnam, r.file, r.ref_time, r.qual) for r in idx.rows]


def test_boundaries_tolerant_parse():
    assert parse_boundary('TEC("0.0-2.5")V')[0].hi == 2.5
    b = parse_boundary('DETX("-3.5 to 3.5") DETY(-3.5 to 0)')
    assert [(x.param, x.lo, x.hi) for x in b] == [("DETX", -3.5, 3.5), ("DETY", -3.5, 0.0)]
    assert parse_boundary("NONE") == [] and parse_boundary("") == []
    assert parse_boundary("FILTER(OPEN,BE)")[0].values == ("OPEN", "BE")
    assert parse_boundary("X(-2--1)")[0].lo == -2.0
    with pytest.raises(BoundaryError):
        parse_boundary("just words")
    assert parse_query("energy.eq.1.5.and.FILTER.eq.open") == {"ENERGY": 1.5, "FILTER": "open"}
    assert matches(["ENERGY(1-2)keV"], {"ENERGY": 2.0})[0]
    assert not matches(["ENERGY(1-2)keV"], {"ENERGY": 2.01})[0]
    assert matches(["ENERGY(1-2)keV"], {"THETA": 30})[0]  # absent parameter passes
    with pytest.raises(BoundaryError):
        parse_query("energy>1")


def test_quzcif_ties_and_boundary_matches():
    idx = CalIndex(rows=_ogip_rows(), caldbver="T", form="ogip")
    t1 = float(mjd_to_met(58000.0))
    # two good rows share REF_TIME 57754 (filters OPEN and BE): quzcif returns both
    s = select(idx, "GAIN", t1, rule="quzcif")
    assert [r.file for r in s.chosen] == ["gainA.fits", "gainB.fits"]
    with pytest.raises(SelectionError, match="tie"):
        _ = s.row
    # FILTER narrows; NONE is a wildcard
    assert [r.file for r in select(idx, "GAIN", t1, rule="quzcif", filter="BE").chosen] == ["gainB.fits"]
    # the default rule treats a tie as a CALDB error, the reference takes the first row
    with pytest.raises(SelectionError, match="share REF_TIME"):
        select(idx, "GAIN", t1, rule="default")
    ref = select(idx, "GAIN", t1, rule="reference")
    assert [r.file for r in ref.chosen] == ["gainA.fits"]
    assert "first row wins" in ref.explain()
    # after 59014: boundary expressions pick C or D; quality 5 never selected
    t2 = float(mjd_to_met(59100.0))
    s = select(idx, "GAIN", t2, rule="quzcif", boundaries="TEC.eq.0.5")
    assert [r.file for r in s.chosen] == ["gainC.fits"]
    verdicts = {c.row.file: c.verdict for c in s.candidates}
    assert verdicts["gainD.fits"].startswith("boundary TEC=0.5 outside")
    assert verdicts["gainOld.fits"].startswith("superseded (quality 5)")
    assert "older than" in verdicts["gainA.fits"]
    # boundary match at the edge of a range (inclusive): both rows accept TEC = 1.0
    assert [r.file for r in select(idx, "GAIN", t2, rule="quzcif", boundaries="TEC.eq.1.0").chosen] == \
           ["gainC.fits", "gainD.fits"]
    assert [r.file for r in select(idx, "GAIN", t2, rule="quzcif", boundaries={"tec": 2.0}).chosen] == \
           ["gainD.fits"]
    # a parameter absent from the CBDs passes
    assert len(select(idx, "GAIN", t2, rule="quzcif", boundaries="THETA.eq.10").chosen) == 2
    # REF_TIME <= t in quzcif: exactly at the validity start is selected
    t3 = float(mjd_to_met(59014.0))
    assert [r.file for r in select(idx, "GAIN", t3, rule="quzcif", boundaries="TEC.eq.2").chosen] == ["gainD.fits"]
    # requesting quality 5 returns the superseded row (quzcif's quality parameter)
    assert [r.file for r in select(idx, "GAIN", t2, rule="quzcif", quality=5).chosen] == ["gainOld.fits"]
    # DETNAM: NONE in a row is a wildcard, a named detector must match
    assert select(idx, "SYSERR", t2, rule="quzcif", detnam="SDD").chosen
    assert not select(idx, "SYSERR", t2, rule="quzcif", detnam="OTHER").chosen


def test_malformed_index_one_line(tmp_path, real_caldb):
    bad = tmp_path / "bad.indx"
    bad.write_bytes(b"not fits at all" * 300)
    with pytest.raises(InputFormatError, match="bad.indx: not a readable calibration index"):
        read_index(bad)
    with pytest.raises(InputFormatError, match="no CIF extension"):
        read_index(real_caldb / "CH2xsmebounds20191214v01.fits")
    hdu = fits.BinTableHDU.from_columns([fits.Column(name="CAL_CNAM", format="20A", array=["GAIN"])], name="CIF")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "cols.indx")
    with pytest.raises(InputFormatError, match="lacks column"):
        read_index(tmp_path / "cols.indx")


def test_index_row_vsd_from_ref_time():
    r = IndexRow("GAIN", "g.fits", 59014.25)
    assert (r.vsd, r.vst) == ("2020-06-14", "06:00:00")
    assert replace(r, qual=5).qual == 5
