"""MET <-> UTC conversions (spec/time.md)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from xsm.products import met
from xsm.products.errors import ParameterError


def test_check_values_from_official_files():
    # time.md §5: 2021-08-28 first frame.
    assert met.met_to_utc_string(146880000.66264) == "2021-08-28 00:00:00.662640000"
    assert met.parse_time("2021-08-28 00:00:00.66264") == pytest.approx(146880000.66264, abs=1e-6)
    # MJD 59014 (start of the second gain file) is MET 108864000.
    assert met.mjd_to_met(59014) == 108864000.0
    assert met.parse_time("MJD 59014") == 108864000.0


def test_pds4_time_truncates_to_ms():
    assert met.pds4_time("2021-08-28 23:59:59.396634000") == "2021-08-28T23:59:59.396Z"


def test_bad_time_is_a_parameter_error():
    with pytest.raises(ParameterError, match="not an ISO"):
        met.parse_time("yesterday")


@given(st.floats(min_value=0, max_value=3e9, allow_nan=False))
def test_round_trip_string_met(t):
    s = met.met_to_utc_string(t)
    assert len(s) == 29
    assert abs(met.parse_time(s) - t) <= 5.1e-7 + abs(t) * 1e-15


def test_vector_strings():
    out = met.met_to_utc_string(np.array([0.0, 86400.0]))
    assert list(out) == ["2017-01-01 00:00:00.000000000", "2017-01-02 00:00:00.000000000"]
