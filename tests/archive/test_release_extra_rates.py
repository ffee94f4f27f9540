"""A day's 1 s rates belong to ONE light curve (``archive.ingest.rates_owner``): a built light
curve outranks an ingested one, then the higher version; equal ranks: the last indexed wins.
Never a mix of two light curves in the ``rates`` view."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.archive.catalog import open_catalog, run_query
from xsm.archive.ingest import index_file, ingest
from xsm.products.met import day_start_met

DAY = "20210905"
T0 = day_start_met(DAY)  # 2021-09-05T00:00:00 in MET (s)


def _lc(path: Path, rate: float, n: int = 600) -> Path:
    """A minimal 1 s light curve with a constant ``rate`` (counts/s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [fits.Column("TIME", "D", array=T0 + np.arange(n) + 0.5),
            fits.Column("RATE", "E", array=np.full(n, rate)),
            fits.Column("ERROR", "E", array=np.full(n, 1.0)),
            fits.Column("FRACEXP", "E", array=np.ones(n))]
    hdu = fits.BinTableHDU.from_columns(cols, name="RATE")
    hdu.header["TSTART"], hdu.header["TSTOP"] = T0, T0 + n
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def _day_rates(root: Path) -> tuple[set, set, int]:
    rows = run_query(root, f"SELECT rate, version FROM rates WHERE day = '{DAY}'").rows
    return {r[0] for r in rows}, {r[1] for r in rows}, len(rows)


def test_built_lc_owns_the_rates_and_new_versions_replace_them(tmp_path):
    root = tmp_path / "archive"
    built = root / "2021/09/05/calibrated"
    with open_catalog(root) as cat:
        r = index_file(cat, _lc(tmp_path / "off1" / f"ch2_xsm_{DAY}_v1_level2.lc", 10.0), source="ingested")
        assert r.get("_rates") and not r.get("_rates_owner")
    assert _day_rates(root) == ({10.0}, {1}, 600)
    with open_catalog(root) as cat:  # a built LC replaces an ingested one
        index_file(cat, _lc(built / f"ch2_xsm_{DAY}_v1_level2.lc", 20.0), source="built")
    assert _day_rates(root) == ({20.0}, {1}, 600)
    with open_catalog(root) as cat:  # an ingested LC, even of a higher version, does not
        r = index_file(cat, _lc(tmp_path / "off2" / f"ch2_xsm_{DAY}_v2_level2.lc", 30.0), source="ingested")
        assert r["_rates_owner"]["source"] == "built" and "_rates" not in r
        assert cat.product(tmp_path / "off2" / f"ch2_xsm_{DAY}_v2_level2.lc") is not None  # but it is indexed
    assert _day_rates(root) == ({20.0}, {1}, 600)
    with open_catalog(root) as cat:  # the next built version replaces the rates
        index_file(cat, _lc(built / f"ch2_xsm_{DAY}_v2_level2.lc", 40.0), source="built")
    assert _day_rates(root) == ({40.0}, {2}, 600)
    with open_catalog(root) as cat:  # an older built version indexed later does not take them back
        r = index_file(cat, built / f"ch2_xsm_{DAY}_v1_level2.lc", source="built")
        assert r["_rates_owner"]["version"] == 2
    assert _day_rates(root) == ({40.0}, {2}, 600)


def test_reindexing_the_same_lc_is_idempotent(tmp_path):
    root = tmp_path / "archive"
    lc = _lc(tmp_path / "off" / f"ch2_xsm_{DAY}_v1_level2.lc", 7.0)
    for _ in range(2):
        with open_catalog(root) as cat:
            r = index_file(cat, lc, source="ingested")
            assert r.get("_rates") and not r.get("_rates_owner")
    assert _day_rates(root) == ({7.0}, {1}, 600)


def test_ingest_of_a_built_day_keeps_its_rates_and_day_row(tmp_path):
    root = tmp_path / "archive"
    with open_catalog(root) as cat:
        index_file(cat, _lc(root / "2021/09/05/calibrated" / f"ch2_xsm_{DAY}_v1_level2.lc", 20.0), source="built")
        cat.upsert_day({"DayOfObs": DAY, "Source": "built", "Version": 1, "PeakRate": 20.0})
    src = tmp_path / "official"
    _lc(src / f"ch2_xsm_{DAY}_v1_level2.lc", 99.0)
    rep = ingest(root, src)
    assert rep.rates_kept == [str(src / f"ch2_xsm_{DAY}_v1_level2.lc")]
    assert rep.days_kept == [DAY]
    assert _day_rates(root) == ({20.0}, {1}, 600)
    row = run_query(root, f"SELECT Source, PeakRate FROM xsmdaywisedata WHERE DayOfObs = '{DAY}'").rows
    assert [tuple(r) for r in row] == [("built", 20.0)]
