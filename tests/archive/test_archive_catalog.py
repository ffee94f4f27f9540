"""The DuckDB catalog: migrations, read-only queries, Parquet rates, flares."""
from __future__ import annotations

import numpy as np
import pytest

from xsm.archive import catalog, flares
from xsm.archive.catalog import MIGRATIONS, open_catalog, run_query
from xsm.products.errors import ParameterError


def _flare_day(t0=150_000_000.0, n=86400, peak=60_000.0, base=1500.0, seed=1):
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(n, dtype=np.float64)
    tp = t0 + 40_000
    prof = np.where(t < tp, np.exp(-0.5 * ((t - tp) / 300.0) ** 2), np.exp(-(t - tp) / 1200.0))
    rate = base + (peak - base) * prof
    return t, rng.poisson(rate).astype(np.float32)


def test_migrations_apply_once_and_record_versions(tmp_path):
    with open_catalog(tmp_path) as cat:
        pass
    with open_catalog(tmp_path) as cat:
        rows = cat.rows("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in rows] == [m[0] for m in MIGRATIONS]
        tables = {r["table_name"] for r in cat.rows("SELECT table_name FROM information_schema.tables")}
    assert {"xsmorbitdata", "xsmdaywisedata", "products", "spectra", "flares", "releases"} <= tables


def test_daywise_table_has_the_seed_columns(tmp_path):
    with open_catalog(tmp_path) as cat:
        cols = [r["column_name"] for r in cat.rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'xsmdaywisedata' "
            "ORDER BY ordinal_position")]
    assert cols[:7] == ["DayOfObs", "StartTime", "StopTime", "Tstart", "Tstop", "TotalExposure",
                        "SunExposure"]
    for c in ("procstatus", "calstatus", "sunstatus", "archivestatus", "uploadstatus", "indexfile"):
        assert c in cols


@pytest.mark.parametrize("sql", [
    "INSERT INTO products (path) VALUES ('x')",
    "DELETE FROM products",
    "COPY products TO '/tmp/xsm_should_not_exist.csv'",
    "ATTACH '/tmp/xsm_other.duckdb' AS o",
    "CREATE TABLE t (x INT)",
    "SELECT 1; DROP TABLE products",
    "SET threads = 1",
])
def test_query_refuses_writes(tmp_path, sql):
    with open_catalog(tmp_path):
        pass
    with pytest.raises(ParameterError):
        run_query(tmp_path, sql)
    with open_catalog(tmp_path) as cat:  # nothing changed
        assert cat.rows("SELECT count(*) AS n FROM products")[0]["n"] == 0


def test_rates_parquet_partitioned_by_day_and_queried(tmp_path):
    t, r = _flare_day()
    with open_catalog(tmp_path) as cat:
        summary = cat.replace_rates("20211002", 1, t, r)
    assert (tmp_path / "catalog/rates/day=20211002/rates.parquet").is_file()
    assert summary["PeakRate"] == float(r.max())
    res = run_query(tmp_path, "SELECT day, count(*) AS n, max(rate) AS m FROM rates GROUP BY day")
    assert res.as_dicts() == [{"day": "20211002", "n": t.size, "m": pytest.approx(float(r.max()))}]


def test_flare_detected_with_class_and_methods(tmp_path):
    t, r = _flare_day(peak=60_000.0)
    found = flares.detect_flares(t, r)
    big = [f for f in found if f.peak_rate > 30_000]
    assert len(big) == 1
    f = big[0]
    assert f.tstart < 150_040_000 < f.tstop
    assert abs(f.tpeak - 150_040_000) < 60
    row = f.as_row()
    # ~59 000 c/s 60 s peak -> 1.1e-7 * 59^1.6 ~ 7e-5 W/m2: M7 by the stated relation
    assert row["class"] == flares.flux_to_class(1.1e-7 * (f.peak_binned_rate / 1000) ** 1.6)
    assert row["class"].startswith("M")
    assert "project definition" in row["class_method"] and "percentile" in row["detect_method"]


def test_class_conversions():
    assert flares.class_to_flux("M1") == pytest.approx(1e-5)
    assert flares.flux_to_class(2.3e-6) == "C2.3"
    assert flares.flux_to_class(1e-9) == "<A1"
    assert flares.rate_to_flux(flares.class_to_rate("M1")) == pytest.approx(1e-5)
    with pytest.raises(ParameterError):
        flares.class_to_flux("Q7")


def test_quiet_day_has_no_flares():
    rng = np.random.default_rng(3)
    t = 1e8 + np.arange(20_000.0)
    assert flares.detect_flares(t, rng.poisson(2000.0, t.size)) == []


def test_readonly_connection_rejects_missing_catalog(tmp_path):
    from xsm.products.errors import ArchiveError

    with pytest.raises(ArchiveError):
        catalog.connect_readonly(tmp_path / "nothing")
