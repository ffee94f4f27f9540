"""Mission Elapsed Time (MET) and the UTC string formats of XSM (``spec/time.md``).

MET is seconds since 2017-01-01T00:00:00 UTC on the UTC calendar with 86400 s per day
(leap seconds not counted): ``MET = 86400 * (MJD_UTC - 57754)``. All conversions are
vectorised with numpy ``datetime64``.
"""
from __future__ import annotations

import datetime as _dt
import re

import numpy as np

from xsm.products.provenance import Mode

#: MJD of the MET epoch (FITS keyword MJDREF).
MJDREF = 57754.0
#: The MET epoch as a numpy datetime64 (ns).
EPOCH = np.datetime64("2017-01-01T00:00:00", "ns")
#: The MET epoch as a Python datetime (naive, UTC).
EPOCH_DT = _dt.datetime(2017, 1, 1)
#: UTC seconds past J2000 (86400 s/day count) of the MET epoch (``time.md`` §1).
MET_TO_J2000_UTC = 536500800.0
#: Length of an IST tag offset (UTC+05:30), s.
IST_OFFSET_S = 19800.0
SECONDS_PER_DAY = 86400.0


def met_to_mjd(met):
    """MJD(UTC) of MET ``met`` (s)."""
    return MJDREF + np.asarray(met, dtype=np.float64) / SECONDS_PER_DAY


def mjd_to_met(mjd):
    """MET (s) of MJD(UTC) ``mjd``."""
    return (np.asarray(mjd, dtype=np.float64) - MJDREF) * SECONDS_PER_DAY


def datetime64_to_met(t) -> np.ndarray:
    """MET (s, float64) of numpy datetime64 values (any unit, taken as UTC)."""
    t = np.asarray(t).astype("datetime64[ns]")
    return (t - EPOCH).astype(np.int64) / 1e9


def met_to_datetime64(met, unit: str = "us") -> np.ndarray:
    """numpy datetime64 of MET values, rounded to ``unit`` (``'us'`` or ``'ns'``)."""
    met = np.asarray(met, dtype=np.float64)
    scale = {"us": 1e6, "ns": 1e9, "ms": 1e3, "s": 1.0}[unit]
    ticks = np.rint(met * scale).astype(np.int64)
    return np.datetime64("2017-01-01T00:00:00", unit) + ticks.astype(f"timedelta64[{unit}]")


def met_to_utc_string(met) -> np.ndarray | str:
    """UTC strings ``YYYY-MM-DD hh:mm:ss.fffffffff`` (29 characters) of MET values.

    The fraction is rounded to microseconds and padded with ``000`` (a float64 MET near
    1.5e8 s resolves only ~3e-8 s; ``time.md`` §2). Scalars give a str, arrays an array.
    """
    scalar = np.ndim(met) == 0
    s = np.datetime_as_string(met_to_datetime64(np.atleast_1d(met), "us"), unit="us")
    out = np.char.add(np.char.replace(s, "T", " "), "000")
    return str(out[0]) if scalar else out


def utc_string_from_ns(t_ns) -> np.ndarray:
    """UTC strings with 9 fraction digits from datetime64[ns] values (level-1 ``UTCString``)."""
    s = np.datetime_as_string(np.asarray(t_ns).astype("datetime64[ns]"), unit="ns")
    return np.char.replace(s, "T", " ")


def met_to_date_keyword(met: float) -> str:
    """``YYYY-MM-DDThh:mm:ss`` (no fraction) of a MET, truncated to the second."""
    return str(np.datetime_as_string(met_to_datetime64(np.floor(met), "s"), unit="s"))


def date_obs_value(utc_or_met: str | float, mode: Mode = Mode.DEFAULT) -> str:
    """The FITS ``DATE-OBS``/``DATE-END`` value of a UTC string or a MET in ``mode``.

    Parameters
    ----------
    utc_or_met : str or float
        A UTC string in either form (``YYYY-MM-DD hh:mm:ss.f...`` or ``...Thh:...``), or a
        MET (s), converted with :func:`met_to_utc_string` (9 fraction digits).
    mode : Mode, optional
        ``Mode.XSMDAS_1_2`` keeps the reference's space form (``time.md`` §2), which fitsverify
        reports as an illegal date; any other mode (the default) writes the same digits with
        the ISO ``T`` separator, a valid FITS date [P]. ``UTCString`` columns keep the space
        form in both modes; readers accept both (:func:`parse_time`, :func:`pds4_time`).

    Returns
    -------
    str
        The keyword value.
    """
    if isinstance(utc_or_met, str):
        s = utc_or_met.strip()
    else:
        s = str(met_to_utc_string(float(utc_or_met)))
    if mode == Mode.XSMDAS_1_2:
        return utc_string_form(s)
    return s.replace(" ", "T", 1)


def utc_string_form(value: str) -> str:
    """The ``UTCString`` form (space separator, ``time.md`` §2) of a UTC string in either form.

    Used where a DATE-OBS/DATE-END value read from any file (default ``T`` or reference space
    form) becomes text of the catalog (``archive.md`` §4.1 ``StartTime``/``StopTime``).
    """
    return value.strip().replace("T", " ", 1)


def utc_now_keyword() -> str:
    """The FITS ``DATE`` value for now, in UTC (default mode; ``time.md`` §2)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def local_now_keyword() -> str:
    """The FITS ``DATE`` value for now in local time (compat mode, quirk Q17)."""
    return _dt.datetime.now().strftime("%Y-%m-%dT%H:%M:%S")


def pds4_time(utc_string: str) -> str:
    """PDS4 ``start/stop_date_time`` of a DATE-OBS/DATE-END value: truncated to ms, ``Z``."""
    date, _, clock = utc_string.strip().replace("T", " ").partition(" ")
    hms, _, frac = clock.partition(".")
    return f"{date}T{hms}.{(frac + '000')[:3]}Z"


_TIME_RE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2})(?::(\d{2})(?::(\d{2})(\.\d+)?)?)?)?Z?\s*$"
)


def parse_time(value: str | float | int) -> float:
    """MET (s) of a user time: ISO/FITS UTC string, ``MJD <x>``/``<x>mjd``, or a MET number.

    Accepts ``YYYY-MM-DD[ hh[:mm[:ss[.f...]]]]`` with a space or ``T`` (``time.md`` §2).
    A bare number is MET; a number prefixed by ``MJD`` or suffixed by ``mjd`` is MJD(UTC).
    """
    from xsm.products.errors import ParameterError

    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    text = str(value).strip()
    low = text.lower()
    try:
        if low.startswith("mjd"):
            return float(mjd_to_met(float(low[3:].strip(" =:"))))
        if low.endswith("mjd"):
            return float(mjd_to_met(float(low[:-3])))
        if low.startswith("met"):
            return float(low[3:].strip(" =:"))
        return float(text)
    except ValueError:
        pass
    m = _TIME_RE.match(text)
    if not m:
        raise ParameterError(
            f"time {text!r}: not an ISO UTC time (YYYY-MM-DD[Thh:mm:ss]), MET number or 'MJD x'"
        )
    y, mo, d, h, mi, s, frac = m.groups()
    try:
        day = _dt.date(int(y), int(mo), int(d))
    except ValueError as exc:
        raise ParameterError(f"time {text!r}: {exc}") from None
    days = (day - EPOCH_DT.date()).days
    sec = int(h or 0) * 3600 + int(mi or 0) * 60 + int(s or 0) + (float(frac) if frac else 0.0)
    return days * SECONDS_PER_DAY + sec


def day_start_met(date: str | _dt.date) -> float:
    """MET of 00:00:00 UTC of a date (``YYYY-MM-DD`` or ``YYYYMMDD``)."""
    if isinstance(date, str):
        date = parse_date(date)
    return (date - EPOCH_DT.date()).days * SECONDS_PER_DAY


def parse_date(text: str) -> _dt.date:
    """A calendar date from ``YYYY-MM-DD`` or ``YYYYMMDD``."""
    from xsm.products.errors import ParameterError

    t = text.strip().replace("-", "")
    try:
        return _dt.date(int(t[0:4]), int(t[4:6]), int(t[6:8])) if len(t) == 8 else _invalid()
    except (ValueError, IndexError):
        raise ParameterError(f"date {text!r}: expected YYYY-MM-DD or YYYYMMDD") from None


def _invalid():
    raise ValueError


def met_to_date(met: float) -> _dt.date:
    """UTC calendar date containing MET ``met``."""
    return EPOCH_DT.date() + _dt.timedelta(days=int(np.floor(met / SECONDS_PER_DAY)))


def date_tag(date: _dt.date) -> str:
    """``YYYYMMDD`` of a date, as used in file names."""
    return date.strftime("%Y%m%d")
