"""The 2048-byte frame: every field and bit round-trips through encoder and decoder (frame.md)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xsm.products import frame as fr


def _field_strategy(n: int):
    """A dict of raw fields, bits and guard bits for n frames."""
    d = {}
    for f in fr.FIELDS + fr.BYTE_FIELDS:
        d[f.name] = hnp.arrays(np.int64, n, elements=st.integers(0, f.max))
    for b in fr.BITS:
        d[b.name] = hnp.arrays(np.uint8, n, elements=st.integers(0, 1))
    d[fr.GUARD_BITS] = hnp.arrays(np.int64, n, elements=st.integers(0, fr.GUARD_BITS_MAX))
    return st.fixed_dictionaries(d)


@st.composite
def frame_content(draw):
    n = draw(st.integers(1, 4))
    fields = draw(_field_strategy(n))
    spectrum = draw(hnp.arrays(np.int64, (n, fr.N_SPECTRUM_WORDS), elements=st.integers(0, 65535)))
    coarse = draw(hnp.arrays(np.int64, (n, 10, 3), elements=st.integers(0, 65535)))
    return fields, spectrum, coarse


@settings(max_examples=200, deadline=None)
@given(frame_content())
def test_encode_then_decode_every_field_and_bit(content):
    fields, spectrum, coarse = content
    raw = fr.encode_frames(fields, spectrum=spectrum, coarse=coarse)
    assert raw.shape == (len(spectrum), 2048) and raw.dtype == np.uint8
    dec = fr.decode_fields(raw)
    for name, value in fields.items():
        np.testing.assert_array_equal(dec[name], value, err_msg=name)
    np.testing.assert_array_equal(fr.spectrum_words(raw), spectrum)
    np.testing.assert_array_equal(fr.coarse_words(raw), coarse)
    # derived enums agree with the bits they come from
    np.testing.assert_array_equal(dec["MotorIRPos"], fr.derive_enums(fields)["MotorIRPos"])


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 3), st.just(2048))))
@example(np.full((1, 2048), 0xFF, np.uint8))
@example(np.zeros((1, 2048), np.uint8))
def test_decode_then_encode_gives_back_every_byte(raw):
    fields, spectrum, coarse = fr.split_frames(raw)
    again = fr.encode_frames(fields, spectrum=spectrum, coarse=coarse)
    np.testing.assert_array_equal(again, raw)


@pytest.mark.parametrize("bit", fr.BITS, ids=lambda b: b.name)
def test_each_bit_sits_where_frame_md_says(bit):
    raw = fr.encode_frames({bit.name: 1})
    expected = np.zeros((1, 2048), np.uint8)
    expected[0, bit.byte] = 1 << bit.bit
    np.testing.assert_array_equal(raw, expected)
    dec = fr.decode_fields(raw)
    for other in fr.BITS:
        assert dec[other.name][0] == (other.name == bit.name)


@pytest.mark.parametrize("fld", fr.FIELDS + fr.BYTE_FIELDS, ids=lambda f: f.name)
def test_each_field_is_big_endian_at_its_offset(fld):
    value = int.from_bytes(bytes(range(1, fld.size + 1)), "big")
    raw = fr.encode_frames({fld.name: value})
    assert bytes(raw[0, fld.offset:fld.offset + fld.size]) == bytes(range(1, fld.size + 1))
    assert raw.sum() == sum(range(1, fld.size + 1))
    assert fr.decode_fields(raw)[fld.name][0] == value


def test_fields_cover_the_documented_offsets():
    """frame.md §1: header fields + coarse block + end bytes + spectrum cover all 2048 bytes once."""
    used = np.zeros(2048, int)
    for f in fr.FIELDS + fr.BYTE_FIELDS:
        used[f.offset:f.offset + f.size] += 1
    used[52:56] += 1  # status bytes A, B, guard/mode bytes
    used[fr.COARSE_OFFSET:fr.COARSE_OFFSET + 60] += 1
    used[fr.SPECTRUM_OFFSET:] += 1
    assert (used == 1).all()
    assert fr.SPECTRUM_OFFSET + 2 * fr.N_SPECTRUM_WORDS == 2048


def test_frame_md_test_vector():
    """frame.md §2.1 test vector: bytes 52-55 = 40 32 00 01."""
    raw = np.zeros((1, 2048), np.uint8)
    raw[0, 52:56] = [0x40, 0x32, 0x00, 0x01]
    d = fr.decode_fields(raw)
    expect = dict(MotorControlMode=0, MotorOperationMode=1, MotorSetPos=0, MotorIRPos=0,
                  IRPowerStatus=0, FrameDiscardFlag=0, StepModeDir=0, PileupRejMode=1,
                  PileupRejTimeBit=0, MotorAutoTimeBit=0, GuardBits=0)
    assert {k: int(d[k][0]) for k in expect} == expect


@pytest.mark.parametrize(
    "bits, expected",
    [
        ({"ForceStepMode": 1, "AutoControlMode": 1, "ManualControlMode": 1}, 2),  # force-step wins
        ({"AutoControlMode": 1}, 0),
        ({"ManualControlMode": 1}, 1),
        ({"AutoControlMode": 1, "ManualControlMode": 1}, 5),
        ({}, 5),
    ],
)
def test_motor_control_mode_priority(bits, expected):
    assert fr.decode_fields(fr.encode_frames(bits))["MotorControlMode"][0] == expected


@pytest.mark.parametrize("name", list(fr.ENUMS))
@pytest.mark.parametrize("value", [0, 1, 2, 5])
def test_enum_round_trip(name, value):
    raw = fr.encode_frames({name: value})
    assert fr.decode_fields(raw)[name][0] == value


@pytest.mark.parametrize("name", ["MotorOperationMode", "MotorSetPos", "MotorIRPos"])
def test_enum_two_bits_is_invalid(name):
    b0, b1, _ = fr.ENUMS[name]
    assert fr.decode_fields(fr.encode_frames({b0: 1, b1: 1}))[name][0] == 5


def test_spectrum_word_layout_overflow_and_uld():
    spec = np.zeros((1, 963), np.int64)
    spec[0, 0], spec[0, 961], spec[0, 962] = 0x0102, 7, 9
    raw = fr.encode_frames(spectrum=spec)
    assert bytes(raw[0, 122:124]) == b"\x01\x02"
    assert bytes(raw[0, 2044:2048]) == b"\x00\x07\x00\x09"
    t = fr.totals(raw)
    assert t["SpecEvents"][0] == 0x0102 + 16 and t["ULDEvents"][0] == 9
    pha = fr.pha_array(raw)
    assert pha.shape == (1, 1024) and pha[0, 961] == 7 and pha[0, 962] == 9 and pha[0, 963:].sum() == 0


def test_coarse_order_is_subframe_major():
    """frame.md §3: band b of sub-frame j at byte 56 + 6j + 2(b-1)."""
    raw = np.zeros((1, 2048), np.uint8)
    j, b = 7, 3
    raw[0, 56 + 6 * j + 2 * (b - 1) + 1] = 42
    c = fr.coarse_words(raw)
    assert c[0, j, b - 1] == 42 and c.sum() == 42
    assert fr.totals(raw)["CoarseChEvents"][0] == 42


def test_clock_and_counter_helpers():
    raw = fr.encode_frames({"FPGAClock": [123456789012345], "FrameNo": [0xFFFFFFFF]})
    assert fr.xsm_time(raw)[0] == 123456789012345 * 1e-6
    assert fr.frame_number(raw)[0] == 0xFFFFFFFF


def test_encoder_rejects_bad_input():
    with pytest.raises(KeyError):
        fr.encode_frames({"NoSuchField": 1})
    with pytest.raises(ValueError):
        fr.encode_frames({"SyncUW": 70000})
    with pytest.raises(ValueError):
        fr.encode_frames({"FrameDiscardFlag": 2})
    with pytest.raises(ValueError):
        fr.encode_frames({"MotorIRPos": 3})
    with pytest.raises(ValueError):
        fr.encode_frames(spectrum=np.zeros((2, 963)), n=1)
    with pytest.raises(ValueError):
        fr.as_frames(np.zeros((2, 2047), np.uint8))


def test_decode_golden_frames_match_golden_hk_raw_columns(golden_dir):
    """The decoder reads the golden science frames as XSMDAS's HK says (raw integer columns)."""
    from astropy.io import fits

    case = golden_dir / "short_flare"
    sci = fits.getdata(next(case.glob("*_level1.fits")), "DATA")
    hk = fits.getdata(next(case.glob("*_level1.hk")), "HKPARAM")
    d = fr.decode_fields(np.asarray(sci["DataArray"]))
    for name in ("FrameNo", "SyncLW", "SyncUW", "EventCounter", "EventDetected", "Ch1Start", "Ch3Stop"):
        np.testing.assert_array_equal(d[name], hk[name].astype(np.int64) & 0xFFFFFFFF, err_msg=name)
    for name in fr.ENUMS:
        np.testing.assert_array_equal(d[name], hk[name], err_msg=name)
    np.testing.assert_array_equal(fr.totals(sci["DataArray"])["SpecEvents"], hk["SpecEvents"])
