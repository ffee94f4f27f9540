"""Review pass on caldb_manager.diff.table_diff: an unreadable calibration file is one InputFormatError line."""
import numpy as np
import pytest
from astropy.io import fits

from xsm.caldb_manager.diff import table_diff
from xsm.products.errors import InputFormatError


def _table(path, values):
    hdu = fits.BinTableHDU.from_columns([fits.Column(name="GAIN", format="D", array=np.asarray(values))],
                                        name="GAIN")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def test_review_table_diff_values(tmp_path):
    a = _table(tmp_path / "a.fits", [1.0, 2.0])
    b = _table(tmp_path / "b.fits", [1.0, 2.5])
    assert table_diff(a, a) == []
    (d,) = table_diff(a, b)
    assert (d["extension"], d["column"], d["rows_changed"], d["max_abs"]) == ("GAIN", "GAIN", 1, 0.5)


def test_review_table_diff_unreadable_file_is_one_line(tmp_path):
    a = _table(tmp_path / "a.fits", [1.0, 2.0])
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not a FITS file at all\n" * 10)
    with pytest.raises(InputFormatError) as err:
        table_diff(a, bad)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{bad}: not a readable calibration file")
