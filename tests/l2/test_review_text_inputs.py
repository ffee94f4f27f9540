"""Review pass: user text inputs (filter file, user GTI, list of spectra) that are not text or
cannot be read give one InputFormatError line naming the file, never a UnicodeDecodeError traceback."""
import pytest

from xsm.products import addspec, gti
from xsm.products.errors import InputFormatError

READERS = [
    (gti.parse_filter_file, "filter file"),
    (gti.read_user_gti, "user GTI file"),
    (addspec.read_list_file, "list file"),
]


@pytest.mark.parametrize("reader,what", READERS)
def test_review_binary_text_input_is_one_line_error(tmp_path, reader, what):
    path = tmp_path / "given.fits"
    path.write_bytes(b"SIMPLE  =                    T" + bytes([0xFF, 0xFE, 0x80]) * 10)
    with pytest.raises(InputFormatError) as err:
        reader(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {what} is not a text file")


@pytest.mark.parametrize("reader,what", READERS)
def test_review_unreadable_text_input_names_file_and_reason(tmp_path, reader, what):
    path = tmp_path / "missing.txt"
    with pytest.raises(InputFormatError) as err:
        reader(path)
    assert str(err.value) == f"{path}: cannot read {what} (No such file or directory)"
    with pytest.raises(InputFormatError, match="Is a directory"):
        reader(tmp_path)
