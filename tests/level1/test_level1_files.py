"""Level-1 files: columns, readers, writers, housekeeping against every golden case (level1.md)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from xsm.products import columns as cols
from xsm.products.errors import InputFormatError, ParameterError
from xsm.products.hk import decode_hk, motor_auto_time_ms
from xsm.products.met import date_obs_value
from xsm.products.level1 import (
    Level1Table,
    level1_paths,
    read_hk,
    read_level1,
    read_sa,
    write_hk,
    write_level1,
    write_sa,
)
from xsm.products.provenance import Mode, Provenance

CASES = ("short_quiet", "short_flare", "calsource")


def _case(golden_dir: Path, case: str) -> dict[str, Path]:
    d = golden_dir / case
    return {k: next(d.glob(f"*_level1.{k}")) for k in ("fits", "hk", "sa")}


@pytest.fixture(scope="module", params=CASES)
def golden_case(request, golden_dir):
    return request.param, _case(golden_dir, request.param)


def test_column_tables_match_level1_md():
    assert len(cols.HK_COLUMNS) == 38
    assert (cols.SCIENCE.row_bytes, cols.HK.row_bytes, cols.SA.row_bytes) == (2108, 140, 38)
    # PDS4 field locations of level1.md (1-based)
    off = cols.HK.offsets()
    assert off["MotorControlMode"] + 1 == 97 and off["WindowLowerThresh"] + 1 == 105
    assert off["ULDEvents"] + 1 == 137 and cols.SCIENCE.offsets()["DecodingStatusFlag"] + 1 == 2107
    assert cols.SA.offsets()["AngRate"] + 1 == 35
    assert cols.level1_name("20210905", "hk") == "ch2_xsm_20210905_v1_level1.hk"


@pytest.mark.parametrize("kind", ["fits", "hk", "sa"])
def test_golden_file_formats_equal_columns_py(golden_dir, kind):
    """TTYPE/TFORM/TUNIT of the golden XSMDAS-format files are exactly columns.py."""
    spec = cols.SPECS[kind]
    for case in CASES:
        with fits.open(_case(golden_dir, case)[kind]) as h:
            hdr = h[spec.extname].header
            assert hdr["TFIELDS"] == len(spec.columns)
            for i, c in enumerate(spec.columns, 1):
                assert (hdr[f"TTYPE{i}"], hdr[f"TFORM{i}"], hdr.get(f"TUNIT{i}")) == (c.name, c.tform, c.unit)


def test_hk_of_every_golden_case_reproduced_exactly(golden_case):
    """The .hk decoded from the science file equals XSMDAS's, column by column, row by row."""
    case, files = golden_case
    day = read_level1(files["fits"])
    ours = decode_hk(day)
    ref = read_hk(files["hk"])
    assert ours.names == ref.names == cols.HK.names
    for name in cols.HK.names:
        a, b = ours.data[name], ref.data[name]
        assert a.dtype == b.dtype, name
        bad = np.flatnonzero(a != b)
        assert bad.size == 0, f"{case} {name}: rows {bad[:5]} differ ({a[bad[:5]]} vs {b[bad[:5]]})"
    assert ours.data.tobytes() == ref.data.tobytes()
    for k in ("DATE-OBS", "DATE-END", "TSTART", "TSTOP"):
        assert ours.header[k] == day.header[k]


def test_written_hk_equals_golden_bytes(golden_case, tmp_path, fitsverify):
    case, files = golden_case
    day = read_level1(files["fits"])
    p = level1_paths(tmp_path, day.date_tag)
    write_hk(decode_hk(day), p["hk"], mode=Mode.XSMDAS_1_2)
    # the data section is byte-identical to XSMDAS's
    with fits.open(p["hk"]) as a, fits.open(files["hk"]) as b:
        assert a["HKPARAM"].data.tobytes() == b["HKPARAM"].data.tobytes()
        ha, hb = a["HKPARAM"].header, b["HKPARAM"].header
        for k in ("TSTART", "TSTOP", "TELAPSE", "DATE-OBS", "DATE-END", "TIMESYS", "MJDREF", "CREATOR",
                  "MISSION", "TELESCOP", "INSTRUME", "XSMDASVE"):
            assert ha[k] == hb[k], k
        assert a[0].header["CONTENT"] == b[0].header["CONTENT"] == "HK data"


def test_science_round_trip_and_fitsverify(golden_case, tmp_path, fitsverify):
    case, files = golden_case
    day = read_level1(files["fits"])
    assert day.data.dtype == np.uint8 and day.data.shape == (len(day), 2048) and day.data.flags.c_contiguous
    assert day.time.dtype == np.float64 and day.status.dtype == np.int16
    assert day.utc[0] == day.header["DATE-OBS"]
    p = level1_paths(tmp_path, day.date_tag)
    write_level1(day, p["fits"], history=["session = test.pld"], provenance=Provenance("l1"))
    hk = decode_hk(read_level1(p["fits"]))
    write_hk(hk, p["hk"])
    sa = read_sa(files["sa"])
    write_sa(sa, p["sa"], level1_header=day.header)
    back = read_level1(p["fits"])
    for k in ("time", "utc", "frame_number", "bdh_time", "xsm_time", "data", "status"):
        np.testing.assert_array_equal(getattr(back, k), getattr(day, k), err_msg=k)
    assert read_hk(p["hk"]).data.tobytes() == read_hk(files["hk"]).data.tobytes()
    assert read_sa(p["sa"]).data.tobytes() == sa.data.tobytes()
    for kind, path in p.items():
        fitsverify(path)
        with fits.open(path) as h:
            spec = cols.SPECS[kind]
            hdr = h[spec.extname].header
            assert h[0].header["FILENAME"] == path.name
            assert hdr["TSTART"] == day.time[0] and hdr["TSTOP"] == day.time[-1]
            assert hdr["DATE-OBS"] == date_obs_value(day.utc[0])
            assert hdr["CREATOR"] == f"xsm.{spec.step}" and hdr["PROCMODE"] == "default"
    assert "session = test.pld" in str(fits.getheader(p["fits"], "DATA")["HISTORY"])


def test_frame_number_unsigned_round_trip(tmp_path, golden_dir):
    day = read_level1(_case(golden_dir, "calsource")["fits"])
    day.frame_number[:] = np.arange(len(day)) + 2**31 - 3  # crosses 2**31
    p = write_level1(day, tmp_path / "ch2_xsm_20200301_v1_level1.fits")
    raw = fits.getdata(p, "DATA")["FrameNumber"]
    assert raw.min() < 0  # stored signed, like the reference
    np.testing.assert_array_equal(read_level1(p).frame_number, day.frame_number)


def test_reader_tolerates_other_versions(tmp_path, golden_dir):
    """Lower-case names, '1D' TFORMs, no EXTNAME, missing optional columns, extra columns."""
    day = read_level1(_case(golden_dir, "calsource")["fits"])
    c = [fits.Column("TIME", "1D", array=day.time),
         fits.Column("dataarray", "2048B", array=day.data),
         fits.Column("EXTRA", "1E", array=np.ones(len(day)))]
    path = tmp_path / "odd.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(c)]).writeto(path)
    back = read_level1(path)
    np.testing.assert_array_equal(back.data, day.data)
    np.testing.assert_array_equal(back.xsm_time, day.xsm_time)
    np.testing.assert_array_equal(back.frame_number, day.frame_number)
    assert back.utc[0][:19] == day.utc[0][:19] and (back.status == 0).all() and np.isnan(back.bdh_time).all()
    # hk with an extra column and lower-case names
    ref = read_hk(_case(golden_dir, "calsource")["hk"])
    hcols = [fits.Column(cc.name.lower(), cc.tform, array=ref.data[cc.name]) for cc in cols.HK.columns]
    hcols.append(fits.Column("DeadTime", "1E", array=np.zeros(len(ref))))
    hp = tmp_path / "odd.hk"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(hcols, name="HKPARAM")]).writeto(hp)
    t = read_hk(hp)
    assert t.names[:38] == cols.HK.names and "DeadTime" in t
    from numpy.lib.recfunctions import repack_fields

    assert repack_fields(t.data[list(cols.HK.names)]).tobytes() == ref.data.tobytes()


@pytest.mark.parametrize("content", [b"", b"SIMPLE  = nonsense", b"x" * 5000])
def test_foreign_or_truncated_file_is_one_clear_error(tmp_path, content):
    p = tmp_path / "bad.fits"
    p.write_bytes(content)
    with pytest.raises(InputFormatError) as e:
        read_level1(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_truncated_level1_file(tmp_path, golden_dir):
    src = _case(golden_dir, "calsource")["fits"]
    p = tmp_path / "trunc.fits"
    p.write_bytes(src.read_bytes()[: 2880 * 5 + 100])
    with pytest.raises(InputFormatError):
        read_level1(p)
    with pytest.raises(InputFormatError):
        read_hk(tmp_path / "missing.hk")


def test_writer_refuses_overwrite_and_leaves_nothing_on_failure(tmp_path, golden_dir):
    day = read_level1(_case(golden_dir, "calsource")["fits"])
    p = write_level1(day, tmp_path / "a.fits")
    with pytest.raises(ParameterError):
        write_level1(day, p)
    bad = day.select(np.arange(len(day))[::-1])  # decreasing Time
    with pytest.raises(ParameterError):
        write_level1(bad, tmp_path / "b.fits")
    table = Level1Table(np.zeros(3, dtype=[("Time", "f8")]))
    with pytest.raises(ParameterError):
        write_hk(table, tmp_path / "c.hk")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.fits"]


def test_compat_mode_keeps_reference_date_form(tmp_path, golden_dir):
    day = read_level1(_case(golden_dir, "calsource")["fits"])
    p = write_level1(day, tmp_path / "x.fits", mode=Mode.XSMDAS_1_2)
    h = fits.getheader(p, "DATA")
    assert h["DATE-OBS"] == day.header["DATE-OBS"] and h["CREATOR"] == "xsml1gen"


def test_motor_auto_time_q05():
    assert list(motor_auto_time_ms([100, 232])) == [100, 1000]


def test_writers_check_row_alignment(tmp_path, golden_dir):
    files = _case(golden_dir, "calsource")
    day = read_level1(files["fits"])
    sa = read_sa(files["sa"])
    write_sa(sa, tmp_path / "ok.sa", expect_time=day.time)
    with pytest.raises(ParameterError, match="rows"):
        write_sa(Level1Table(sa.data[:-1]), tmp_path / "short.sa", expect_time=day.time)
    shifted = sa.data.copy()
    shifted["Time"][5] += 1e-7
    with pytest.raises(ParameterError, match="Time differs"):
        write_sa(Level1Table(shifted), tmp_path / "shifted.sa", expect_time=day.time)
    with pytest.raises(ParameterError):
        write_hk(Level1Table(read_hk(files["hk"]).data[1:]), tmp_path / "x.hk", expect_time=day.time)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.sa"]


def test_time_cards_from_rows_of_bytes_utc_strings():
    """UTCString values read back from a file are bytes: DATE-OBS gets their text, not "b'...'"."""
    import numpy as np

    from xsm.products.level1 import _time_cards_from_rows
    from xsm.products.provenance import Mode

    utc = np.array([b"2021-10-03 02:40:00.000", b"2021-10-03 02:40:01.000"])
    cards = dict(_time_cards_from_rows(np.array([1.0, 2.0]), utc, Mode.DEFAULT))
    assert cards["DATE-OBS"] == "2021-10-03T02:40:00.000" and cards["DATE-END"] == "2021-10-03T02:40:01.000"


def test_a_non_ascii_utc_string_error_names_the_file(tmp_path):
    """A bad value met while writing a level-1 file is one error naming that file."""
    import numpy as np
    import pytest

    from xsm.products import columns as cols
    from xsm.products.errors import ParameterError
    from xsm.products.level1 import table_rows

    data = np.zeros(2, dtype=[("Time", "f8"), ("UTCString", "U30")] +
                    [(c.name, "f8") for c in cols.HK.columns if c.name not in ("Time", "UTCString")])
    data["UTCString"] = ["2021-09-05 00:00:00", "2021-09-05 00:00:01\u00e9"]
    with pytest.raises(ParameterError, match=r"x\.hk: UTCString values must be ASCII"):
        table_rows(data, cols.HK, tmp_path / "x.hk")
