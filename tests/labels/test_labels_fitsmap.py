"""The FITS structure scan behind labels and data checks agrees with astropy (spec/pds4.md §1.3-1.4)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from xsm.labels.fitsmap import pds4_field, pds4_fields, product_kind, scan_fits
from xsm.products.errors import InputFormatError


def _official_files(realdata: Path) -> list[Path]:
    return sorted(p for p in realdata.rglob("*") if p.suffix in (".lc", ".gti", ".pha", ".arf"))


def _agree(path: Path) -> None:
    s = scan_fits(path)
    with fits.open(path) as hdul:
        assert len(s.hdus) == len(hdul)
        for h, a in zip(s.hdus, hdul):
            info = hdul.fileinfo(h.index)
            assert (h.header_offset, h.data_offset) == (info["hdrLoc"], info["datLoc"])
            assert h.padded_data_length == info["datSpan"]
            if isinstance(a, fits.BinTableHDU):
                assert (h.naxis1, h.naxis2) == (a.header["NAXIS1"], a.header["NAXIS2"])
                assert [c.name for c in h.columns] == a.columns.names
                assert [c.location - 1 for c in h.columns] == [a.columns._recformats and a.data.dtype.fields[n][1]
                                                               for n in a.columns.names]
    assert s.size == path.stat().st_size and s.trailing_bytes == 0


def test_scan_agrees_with_astropy_on_official_files(realdata_dir):
    files = _official_files(realdata_dir)
    assert len(files) >= 20
    for f in files:
        _agree(f)


def test_scan_agrees_with_astropy_on_products(products_dir):
    for f in sorted(products_dir.iterdir()):
        _agree(f)


def test_kinds(products_dir, realdata_dir):
    kinds = {p.name: product_kind(scan_fits(p)) for p in products_dir.iterdir()}
    assert kinds["ch2_xsm_20210828_v1_level1.fits"] == "fits"
    assert kinds["ch2_xsm_20210828_v1_level2_hr.lc"] == "lc"
    # by EXTNAME when the name says nothing
    assert product_kind(scan_fits(realdata_dir / "20210828" / "ch2_xsm_20210828_l1.pha")) == "pha"


def test_types_of_official_pha_columns(realdata_dir):
    s = scan_fits(realdata_dir / "20210828" / "ch2_xsm_20210828_l1.pha")
    fields = pds4_fields(s.tables[0], "pha")
    assert [(f.name, f.location, f.data_type, f.field_length, f.unit) for f in fields] == [
        ("CHANNEL", 1, "SignedMSB4", 4, "DN"), ("COUNTS", 5, "IEEE754MSBSingle", 4, None),
        ("STAT_ERR", 9, "IEEE754MSBSingle", 4, None), ("SYS_ERR", 13, "IEEE754MSBSingle", 4, None)]
    lc = pds4_fields(scan_fits(realdata_dir / "20210828" / "ch2_xsm_20210828_v1_level2.lc").tables[0], "lc")
    assert [(f.name, f.unit) for f in lc] == [("Time", "Sec"), ("Rate", None), ("Error", None), ("Fracexp", None)]


@pytest.mark.parametrize("tform, dtype, length, reps", [
    ("B", "UnsignedByte", 1, 1), ("I", "SignedMSB2", 2, 1), ("J", "SignedMSB4", 4, 1),
    ("K", "SignedMSB8", 8, 1), ("E", "IEEE754MSBSingle", 4, 1), ("D", "IEEE754MSBDouble", 8, 1),
    ("30A", "ASCII_String", 30, 1), ("512E", "IEEE754MSBSingle", 4, 512), ("2048B", "UnsignedByte", 1, 2048),
])
def test_data_types(tmp_path, tform, dtype, length, reps):
    n = 3
    np_type = {"B": "u1", "I": "i2", "J": "i4", "K": "i8", "E": "f4", "D": "f8", "A": "S30"}[tform[-1]]
    arr = np.zeros((n, reps) if reps > 1 else n, dtype=np_type)
    col = fits.Column("X", tform, array=arr)
    path = tmp_path / "t.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([col])]).writeto(path)
    f = pds4_field(scan_fits(path).tables[0].columns[0])
    assert (f.data_type, f.field_length, f.repetitions) == (dtype, length, reps)


def test_bad_files(tmp_path):
    p = tmp_path / "x.lc"
    p.write_bytes(b"not fits" * 400)
    with pytest.raises(InputFormatError, match="not a FITS file"):
        scan_fits(p)
    with pytest.raises(InputFormatError, match="cannot read"):
        scan_fits(tmp_path / "missing.lc")
    good = tmp_path / "g.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column("A", "D", array=np.arange(1000.0))])]).writeto(good)
    p.write_bytes(good.read_bytes()[:-2880])
    with pytest.raises(InputFormatError, match="truncated"):
        scan_fits(p)
    bits = tmp_path / "bits.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column("F", "8X", array=np.zeros((2, 8), bool))])]).writeto(bits)
    with pytest.raises(InputFormatError, match="cannot be described"):
        pds4_fields(scan_fits(bits).tables[0])


def test_quoted_strings(tmp_path):
    h = fits.Header()
    h["DATE-OBS"] = "O'Neil / 2021"
    path = tmp_path / "q.fits"
    fits.PrimaryHDU(header=h).writeto(path)
    assert scan_fits(path).keyword("DATE-OBS") == "O'Neil / 2021"
