"""Xamin-like searches over the catalog: :func:`find` (``xsm find``).

Every search runs on a read-only connection (:func:`xsm.archive.catalog.connect_readonly`).
What :func:`find` returns depends on the options given:

* ``flare_class`` -> the flares (``flares`` table) at or above that GOES class;
* else ``min_rate`` -> per day, the seconds of the 1 s light curves (Parquet ``rates``) with
  rate >= ``min_rate``: first/last such time, number of seconds, peak rate and time;
* else -> the catalogued products (current versions; of kind ``product`` if given) or, with
  no ``product``, the day-wise rows.

``tfrom``/``tto`` (MET) restrict by time; ``min_exposure`` keeps days whose Sun exposure is at
least that many seconds; ``product`` given with a flare or rate search lists the products of
that kind of the matching days instead.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from xsm.archive import flares as _flares
from xsm.archive.catalog import connect_readonly
from xsm.products.errors import ParameterError
from xsm.products.met import met_to_date, met_to_utc_string, parse_time

_DATE_ONLY = re.compile(r"^\s*\d{4}-?\d{2}-?\d{2}\s*$")


def parse_bound(value: str | float | None, *, end: bool = False) -> float | None:
    """MET of a ``--from``/``--to`` value (ISO, MET or MJD, ``met.parse_time``).

    A date without a time given as an end bound means the end of that day (inclusive).
    """
    if value is None or value == "":
        return None
    text = str(value)
    if _DATE_ONLY.match(text):
        t = text.strip()
        if "-" not in t:
            t = f"{t[:4]}-{t[4:6]}-{t[6:]}"
        met = parse_time(t)
        return met + 86400.0 if end else met
    return parse_time(value)


@dataclass
class FindResult:
    """Rows of a search and what they are (``'flares'``, ``'rates'``, ``'products'``, ``'days'``)."""

    what: str
    columns: list[str]
    rows: list[dict]


def _lit(v: float | None, default: float) -> str:
    x = default if v is None else float(v)
    if not math.isfinite(x):
        x = default
    return repr(x)


def _day_bounds(tfrom: float | None, tto: float | None) -> tuple[str, str]:
    lo = met_to_date(tfrom).strftime("%Y%m%d") if tfrom is not None else "00000000"
    hi = met_to_date(tto).strftime("%Y%m%d") if tto is not None else "99999999"
    return lo, hi


PRODUCT_FIELDS = ["day", "kind", "version", "path", "tstart", "tstop", "exposure", "rows", "size",
                  "md5", "caldbver", "xsmswver", "lid", "vid"]


def find(root, *, tfrom: float | None = None, tto: float | None = None,
         min_rate: float | None = None, flare_class: str | None = None,
         min_exposure: float | None = None, product: str | None = None,
         limit: int | None = None) -> FindResult:
    """Search the catalog of ``root``; see the module docstring for what is returned.

    Parameters
    ----------
    root : archive root
    tfrom, tto : MET bounds (``None``: open)
    min_rate : counts/s threshold on the 1 s rates (or on flare peak rates with ``flare_class``)
    flare_class : GOES class lower limit (``'M1'``), estimated as :mod:`xsm.archive.flares` states
    min_exposure : minimum Sun exposure of the day (s)
    product : a product kind (``pha``, ``lc``, ``gti``, ``fits``, ``hk``, ``sa``, ``arf``, ``zip``)
    limit : at most this many rows
    """
    if tfrom is not None and tto is not None and tto < tfrom:
        raise ParameterError(f"--to ({tto}) is before --from ({tfrom})")
    if product is not None:
        from xsm.archive.catalog import KIND_LEVEL

        if product not in KIND_LEVEL:
            raise ParameterError(f"--product {product!r}: one of {', '.join(KIND_LEVEL)}")
    lo_day, hi_day = _day_bounds(tfrom, tto)
    t0, t1 = _lit(tfrom, -1e300), _lit(tto, 1e300)
    exp_filter = ""
    if min_exposure is not None:
        exp_filter = (f" AND day IN (SELECT DayOfObs FROM xsmdaywisedata "
                      f"WHERE SunExposure >= {_lit(min_exposure, 0.0)})")
    lim = f" LIMIT {int(limit)}" if limit else ""
    con = connect_readonly(root)
    try:
        if flare_class is not None:
            fmin = _flares.class_to_flux(flare_class)
            rate_filter = f" AND peak_rate >= {_lit(min_rate, 0.0)}" if min_rate is not None else ""
            sql = ("SELECT day, flare_num, tstart, tpeak, tstop, peak_rate, background_rate, class, "
                   "goes_flux, lc_path, class_method FROM flares "
                   f"WHERE goes_flux >= {fmin!r} AND tpeak >= {t0} AND tpeak < {t1}"
                   f"{rate_filter}{exp_filter} ORDER BY tpeak{lim}")
            what = "flares"
        elif min_rate is not None:
            sql = ("SELECT day, min(time) AS first_time, max(time) AS last_time, "
                   "count(*) AS n_seconds, max(rate) AS peak_rate, arg_max(time, rate) AS peak_time "
                   f"FROM rates WHERE day >= '{lo_day}' AND day <= '{hi_day}' "
                   f"AND time >= {t0} AND time < {t1} AND rate >= {_lit(min_rate, 0.0)}"
                   f"{exp_filter} GROUP BY day ORDER BY day{lim}")
            what = "rates"
        elif product is not None:
            sql = (f"SELECT {', '.join(PRODUCT_FIELDS)} FROM products WHERE kind = '{product}' "
                   f"AND current AND coalesce(tstop, 1e300) >= {t0} AND coalesce(tstart, -1e300) < {t1}"
                   + (f" AND coalesce(exposure, 0) >= {_lit(min_exposure, 0.0)}"
                      if min_exposure is not None else "")
                   + f" ORDER BY day, path{lim}")
            what = "products"
        else:
            sql = ("SELECT DayOfObs AS day, StartTime, StopTime, TotalExposure, SunExposure, "
                   "Version, PeakRate, PeakTime, CaldbVer, SwVersion, sunstatus, Source "
                   f"FROM xsmdaywisedata WHERE coalesce(Tstop, 1e300) >= {t0} "
                   f"AND coalesce(Tstart, -1e300) < {t1}"
                   + (f" AND SunExposure >= {_lit(min_exposure, 0.0)}" if min_exposure is not None else "")
                   + f" ORDER BY DayOfObs{lim}")
            what = "days"
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        if product is not None and what in ("flares", "rates"):
            days = sorted({r["day"] for r in rows})
            if days:
                quoted = ", ".join(f"'{d}'" for d in days)
                cur = con.execute(f"SELECT {', '.join(PRODUCT_FIELDS)} FROM products "
                                  f"WHERE kind = '{product}' AND current AND day IN ({quoted}) "
                                  f"ORDER BY day, path")
                cols = [d[0] for d in cur.description]
                rows = [dict(zip(cols, r)) for r in cur.fetchall()]
            else:
                cols, rows = list(PRODUCT_FIELDS), []
            what = "products"
    finally:
        con.close()
    _add_utc(rows, cols)
    return FindResult(what, cols if not rows else list(rows[0].keys()), rows)


def _add_utc(rows: list[dict], cols: list[str]) -> None:
    """Add UTC strings after MET columns, for people reading the table."""
    for name in ("peak_time", "tpeak", "first_time", "tstart"):
        if name in cols:
            for r in rows:
                v = r.get(name)
                r[f"{name}_utc"] = str(met_to_utc_string(v))[:23] if v is not None else None
