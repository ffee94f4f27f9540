"""The DuckDB product catalog of an archive (``archive.md`` §4).

One archive root holds ``archive.duckdb`` (the embedded default) and, beside it, the 1 s
light-curve rates as Parquet partitioned by day (``catalog/rates/day=YYYYMMDD/rates.parquet``),
queried through DuckDB as the view ``rates``. The database tables:

``schema_version``
    applied migrations (``MIGRATIONS``: append-only list; never edit a released one).
``xsmorbitdata``
    the orbit-wise (level-0 segment) table, §4.2, with the QA counters of ``level0.md`` §4.3.
``xsmdaywisedata``
    the day-wise table, §4.1 (DayOfObs, StartTime, StopTime, Tstart, Tstop, TotalExposure,
    SunExposure, the statuses, version, provenance, zip, peak/mean rate).
``products``
    one row per archive file (data, label, zip) and version, §4.3: path (relative to the root),
    LID/VID, kind, level, day, version, times, exposure, rows, size, md5, sha256, CALDB version
    and files, software version, mode, parameters, created, release, current flag.
``spectra``
    one row per type-II spectrum row (SPEC_NUM) of a catalogued ``.pha``.
``flares``
    flares derived from the 1 s light curves (:mod:`xsm.archive.flares`), with the methods.
``releases``
    releases made from the archive (:mod:`xsm.archive.release`).

Schema changes: append ``(next version, description, SQL)`` to :data:`MIGRATIONS` (additive
statements only; released entries are never edited); every :func:`open_catalog` applies the
missing ones in order, each in a transaction, and records them in ``schema_version``.

Writers use :func:`open_catalog` (read-write, migrates); queries use
:func:`connect_readonly` (read-only connection, ``rates`` view attached). DuckDB allows one
writing process per file; the catalog is opened for the duration of one operation.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from xsm.products.errors import ArchiveError, ParameterError
from xsm.products.fitsio import atomic_path

log = logging.getLogger(__name__)

#: File name of the catalog database in the archive root (``archive.md`` §4).
CATALOG_NAME = "archive.duckdb"
#: Directory (relative to the archive root) of catalog side data (Parquet rates).
CATALOG_DIR = "catalog"
#: Parquet rates: ``<root>/catalog/rates/day=YYYYMMDD/rates.parquet``.
RATES_DIR = f"{CATALOG_DIR}/rates"
RATES_FILE = "rates.parquet"
#: DuckDB lets one process at a time hold the file: another one (a pipeline run, ``xsm pipeline
#: status``, a query) holding it makes an open wait up to this long (s), polling this often (s).
CATALOG_WAIT_S, CATALOG_POLL_S = 30.0, 0.1

#: Product kinds of the catalog (``archive.md`` §4.3) and their processing level.
KIND_LEVEL = {"fits": 1, "hk": 1, "sa": 1, "gti": 2, "pha": 2, "lc": 2, "arf": 2,
              "zip": 0, "label": 0, "inventory": 0, "manifest": 0}

#: Versioned schema migrations: (version, description, SQL). Append only.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "orbit-wise, day-wise, products, spectra, flares, releases", """
CREATE TABLE xsmorbitdata (
    L0File TEXT PRIMARY KEY, SessionId TEXT, Segment TEXT, Station TEXT, Orbit INTEGER,
    StartTime TEXT, StopTime TEXT, Tstart DOUBLE, Tstop DOUBLE,
    TotalExposure DOUBLE, SunExposure DOUBLE,
    procstatus BOOLEAN, calstatus BOOLEAN, sunstatus BOOLEAN, indexfile TEXT,
    Days TEXT[],
    n_records_total BIGINT, n_valid BIGINT, n_bad_sync BIGINT, n_bad_crc BIGINT,
    n_truncated BIGINT, n_bytes_skipped BIGINT, n_no_time BIGINT, n_leapsec_dropped BIGINT,
    n_duplicates BIGINT, n_dup_conflicts BIGINT, n_time_repaired BIGINT,
    n_time_outliers BIGINT, good_fraction DOUBLE,
    PackageMd5 TEXT, DownloadedAt TIMESTAMP, ProcessedAt TIMESTAMP
);
CREATE TABLE xsmdaywisedata (
    DayOfObs TEXT PRIMARY KEY, StartTime TEXT, StopTime TEXT, Tstart DOUBLE, Tstop DOUBLE,
    TotalExposure DOUBLE, SunExposure DOUBLE,
    procstatus BOOLEAN, calstatus BOOLEAN, sunstatus BOOLEAN, archivestatus BOOLEAN,
    uploadstatus BOOLEAN, indexfile TEXT,
    Version INTEGER, Segments TEXT[], CaldbVer TEXT, SwVersion TEXT, ProcMode TEXT,
    ZipFile TEXT, ZipMd5 TEXT, ZipSize BIGINT,
    PeakRate DOUBLE, PeakTime DOUBLE, MeanRate DOUBLE,
    Source TEXT, UpdatedAt TIMESTAMP
);
CREATE TABLE products (
    path TEXT PRIMARY KEY, lid TEXT, vid TEXT, kind TEXT, level INTEGER, day TEXT,
    version INTEGER, tstart DOUBLE, tstop DOUBLE, exposure DOUBLE, rows BIGINT,
    size BIGINT, md5 TEXT, sha256 TEXT, caldbver TEXT, caldb_files TEXT, xsmswver TEXT,
    procmode TEXT, parameters TEXT, created TIMESTAMP, release TEXT, label TEXT,
    source TEXT, current BOOLEAN, supersedes TEXT, reason TEXT
);
CREATE INDEX products_day ON products(day);
CREATE TABLE spectra (
    path TEXT, spec_num INTEGER, day TEXT, version INTEGER,
    tstart DOUBLE, tstop DOUBLE, exposure DOUBLE, counts DOUBLE,
    PRIMARY KEY (path, spec_num)
);
CREATE TABLE flares (
    day TEXT, flare_num INTEGER, version INTEGER, lc_path TEXT,
    tstart DOUBLE, tpeak DOUBLE, tstop DOUBLE, peak_rate DOUBLE, background_rate DOUBLE,
    goes_flux DOUBLE, class TEXT, class_rank DOUBLE, class_method TEXT, detect_method TEXT,
    PRIMARY KEY (day, flare_num)
);
CREATE TABLE releases (
    name TEXT PRIMARY KEY, created TIMESTAMP, from_day TEXT, to_day TEXT,
    bundle_lidvid TEXT, path TEXT, n_files BIGINT, note TEXT
);
"""),
    (2, "pipeline queue: state of every item per stage (archive.md 3.2)", """
CREATE TABLE queue (
    stage TEXT, item TEXT, state TEXT, attempts INTEGER, log_path TEXT,
    enqueued_at TIMESTAMP, started_at TIMESTAMP, finished_at TIMESTAMP, error TEXT, detail TEXT,
    PRIMARY KEY (stage, item)
);
"""),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]

#: Columns of ``products`` in table order (the one place for them).
PRODUCT_COLUMNS = ("path", "lid", "vid", "kind", "level", "day", "version", "tstart", "tstop",
                   "exposure", "rows", "size", "md5", "sha256", "caldbver", "caldb_files",
                   "xsmswver", "procmode", "parameters", "created", "release", "label",
                   "source", "current", "supersedes", "reason")
DAY_COLUMNS = ("DayOfObs", "StartTime", "StopTime", "Tstart", "Tstop", "TotalExposure",
               "SunExposure", "procstatus", "calstatus", "sunstatus", "archivestatus",
               "uploadstatus", "indexfile", "Version", "Segments", "CaldbVer", "SwVersion",
               "ProcMode", "ZipFile", "ZipMd5", "ZipSize", "PeakRate", "PeakTime", "MeanRate",
               "Source", "UpdatedAt")
ORBIT_COLUMNS = ("L0File", "SessionId", "Segment", "Station", "Orbit", "StartTime", "StopTime",
                 "Tstart", "Tstop", "TotalExposure", "SunExposure", "procstatus", "calstatus",
                 "sunstatus", "indexfile", "Days", "n_records_total", "n_valid", "n_bad_sync",
                 "n_bad_crc", "n_truncated", "n_bytes_skipped", "n_no_time",
                 "n_leapsec_dropped", "n_duplicates", "n_dup_conflicts", "n_time_repaired",
                 "n_time_outliers", "good_fraction", "PackageMd5", "DownloadedAt", "ProcessedAt")
FLARE_COLUMNS = ("day", "flare_num", "version", "lc_path", "tstart", "tpeak", "tstop",
                 "peak_rate", "background_rate", "goes_flux", "class", "class_rank",
                 "class_method", "detect_method")


def catalog_path(root: str | Path) -> Path:
    """The catalog database of an archive root."""
    return Path(root) / CATALOG_NAME


def rates_glob(root: str | Path) -> str:
    return str(Path(root) / RATES_DIR / "day=*" / "*.parquet")


def _migrate(con: duckdb.DuckDBPyConnection) -> int:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, description TEXT, applied TIMESTAMP)")
    done = {r[0] for r in con.execute("SELECT version FROM schema_version").fetchall()}
    current = max(done) if done else 0
    if current > SCHEMA_VERSION:
        raise ArchiveError(f"catalog schema version {current} is newer than this xsm "
                           f"({SCHEMA_VERSION}): upgrade xsm")
    for version, description, sql in MIGRATIONS:
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                        [version, description, _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        log.info("catalog migrated to schema %d (%s)", version, description)
        current = version
    return current


def _attach_rates(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Create the temporary view ``rates`` (time, rate, error, fracexp, version, day)."""
    files = list((root / RATES_DIR).glob("day=*/*.parquet"))
    if files:
        glob = rates_glob(root).replace("'", "''")
        con.execute(
            "CREATE OR REPLACE TEMP VIEW rates AS SELECT time, rate, error, fracexp, version, day "
            f"FROM read_parquet('{glob}', hive_partitioning = true, hive_types = {{'day': VARCHAR}})")
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW rates AS SELECT NULL::DOUBLE AS time, "
                    "NULL::FLOAT AS rate, NULL::FLOAT AS error, NULL::FLOAT AS fracexp, "
                    "NULL::INTEGER AS version, NULL::VARCHAR AS day WHERE false")


class Catalog:
    """A read-write catalog of one archive root; use :func:`open_catalog`.

    Attributes
    ----------
    root : Path
        The archive root (product paths are stored relative to it).
    con : duckdb.DuckDBPyConnection
    """

    def __init__(self, root: Path, con: duckdb.DuckDBPyConnection):
        self.root = Path(root)
        self.con = con

    # -- generic helpers ---------------------------------------------------------------
    def rel(self, path: str | Path) -> str:
        """Path relative to the archive root, with ``/`` separators."""
        p = Path(path)
        if p.is_absolute():
            try:
                p = p.resolve().relative_to(self.root.resolve())
            except ValueError:
                return p.resolve().as_posix()
        return p.as_posix()

    def refresh_rates_view(self) -> None:
        _attach_rates(self.con, self.root)

    def rows(self, sql: str, params: Sequence | None = None) -> list[dict]:
        """Run a query and return rows as dicts."""
        cur = self.con.execute(sql, params or [])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def _upsert(self, table: str, columns: Sequence[str], row: Mapping, keys: Sequence[str]) -> None:
        values = [_sqlvalue(row.get(c)) for c in columns]
        where = " AND ".join(f'"{k}" = ?' for k in keys)
        self.con.execute(f"DELETE FROM {table} WHERE {where}", [row[k] for k in keys])
        cols = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        self.con.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", values)

    # -- products ----------------------------------------------------------------------
    def upsert_product(self, row: Mapping) -> None:
        """Insert or replace one ``products`` row (keyed by ``path``, relative to the root)."""
        row = dict(row)
        row["path"] = self.rel(row["path"])
        row.setdefault("level", KIND_LEVEL.get(row.get("kind", ""), None))
        if row.get("label") is not None:
            row["label"] = self.rel(row["label"])
        self._upsert("products", PRODUCT_COLUMNS, row, ["path"])

    def product(self, path: str | Path) -> dict | None:
        r = self.rows("SELECT * FROM products WHERE path = ?", [self.rel(path)])
        return r[0] if r else None

    def products(self, where: str = "true", params: Sequence | None = None) -> list[dict]:
        return self.rows(f"SELECT * FROM products WHERE {where} ORDER BY path", params)

    def set_current(self, day: str, version: int) -> None:
        """Mark the products of ``day`` at ``version`` current, older versions not."""
        self.con.execute("UPDATE products SET current = (version = ?) WHERE day = ? AND source = 'built'",
                         [version, day])

    # -- days and sessions -------------------------------------------------------------
    def upsert_day(self, row: Mapping) -> None:
        """Insert or replace the day-wise row of ``row['DayOfObs']`` (``YYYYMMDD``)."""
        row = dict(row)
        row.setdefault("UpdatedAt", _utcnow())
        old = self.day(row["DayOfObs"])
        if old:  # keep columns the caller did not give (statuses set by other stages)
            row = {**old, **{k: v for k, v in row.items()}}
        self._upsert("xsmdaywisedata", DAY_COLUMNS, row, ["DayOfObs"])

    def update_day(self, day: str, **values) -> None:
        """Set some columns of an existing day-wise row."""
        unknown = set(values) - set(DAY_COLUMNS)
        if unknown:
            raise ParameterError(f"day-wise table has no column(s) {sorted(unknown)}")
        if not values:
            return
        sets = ", ".join(f'"{k}" = ?' for k in values)
        self.con.execute(f"UPDATE xsmdaywisedata SET {sets} WHERE DayOfObs = ?",
                         [_sqlvalue(v) for v in values.values()] + [day])

    def day(self, day: str) -> dict | None:
        r = self.rows("SELECT * FROM xsmdaywisedata WHERE DayOfObs = ?", [day])
        return r[0] if r else None

    def upsert_segment(self, row: Mapping) -> None:
        """Insert or replace one orbit-wise (level-0 segment) row keyed by ``L0File``."""
        row = dict(row)
        if "stats" in row:  # the level-0 decoder's QA counters (level0.md §4.3)
            stats = row.pop("stats") or {}
            for k in ORBIT_COLUMNS:
                if k.startswith("n_") or k == "good_fraction":
                    row.setdefault(k, stats.get(k))
        self._upsert("xsmorbitdata", ORBIT_COLUMNS, row, ["L0File"])

    # -- spectra -----------------------------------------------------------------------
    def replace_spectra(self, path: str | Path, day: str | None, version: int | None,
                        tstart: np.ndarray, tstop: np.ndarray, exposure: np.ndarray,
                        counts: np.ndarray, spec_num: np.ndarray | None = None) -> int:
        """Index the rows of a type-II spectrum (one row per SPEC_NUM)."""
        import pyarrow as pa

        rel = self.rel(path)
        n = len(tstart)
        spec_num = np.arange(1, n + 1) if spec_num is None else np.asarray(spec_num)
        tbl = pa.table({
            "path": pa.array([rel] * n, pa.string()),
            "spec_num": pa.array(spec_num.astype(np.int32)),
            "day": pa.array([day] * n, pa.string()),
            "version": pa.array([version] * n, pa.int32()),
            "tstart": pa.array(np.asarray(tstart, np.float64)),
            "tstop": pa.array(np.asarray(tstop, np.float64)),
            "exposure": pa.array(np.asarray(exposure, np.float64)),
            "counts": pa.array(np.asarray(counts, np.float64)),
        })
        self.con.execute("DELETE FROM spectra WHERE path = ?", [rel])
        self.con.register("_spectra_in", tbl)
        try:
            self.con.execute("INSERT INTO spectra SELECT * FROM _spectra_in")
        finally:
            self.con.unregister("_spectra_in")
        return n

    # -- light-curve rates and flares --------------------------------------------------
    def rates_path(self, day: str) -> Path:
        return self.root / RATES_DIR / f"day={day}" / RATES_FILE

    def replace_rates(self, day: str, version: int | None, time: np.ndarray, rate: np.ndarray,
                      error: np.ndarray | None = None, fracexp: np.ndarray | None = None,
                      lc_path: str | Path | None = None, refresh_view: bool = True) -> dict:
        """Store a day's 1 s rates as Parquet and re-derive its flares.

        Returns the day's rate summary (``PeakRate``, ``PeakTime``, ``MeanRate``) and the
        number of flares.
        """
        from xsm.archive import flares as _flares

        time = np.asarray(time, np.float64)
        rate = np.asarray(rate, np.float32)
        error = np.full_like(rate, np.nan) if error is None else np.asarray(error, np.float32)
        fracexp = np.ones_like(rate) if fracexp is None else np.asarray(fracexp, np.float32)
        write_rates_parquet(self.rates_path(day), time, rate, error, fracexp, version)
        if refresh_view:
            self.refresh_rates_view()
        found = _flares.detect_flares(time, rate)
        self.con.execute("DELETE FROM flares WHERE day = ?", [day])
        lc_rel = self.rel(lc_path) if lc_path is not None else None
        for i, f in enumerate(found, start=1):
            row = {"day": day, "flare_num": i, "version": version, "lc_path": lc_rel, **f.as_row()}
            self.con.execute(f"INSERT INTO flares VALUES ({', '.join('?' for _ in FLARE_COLUMNS)})",
                             [_sqlvalue(row.get(c)) for c in FLARE_COLUMNS])
        good = np.isfinite(rate)
        summary = {"PeakRate": None, "PeakTime": None, "MeanRate": None, "n_flares": len(found),
                   "Exposure": float(np.nansum(fracexp[good]))}
        if good.any():
            k = int(np.nanargmax(np.where(good, rate, -np.inf)))
            summary.update(PeakRate=float(rate[k]), PeakTime=float(time[k]),
                           MeanRate=float(np.mean(rate[good])))
        return summary

    def close(self) -> None:
        self.con.close()


def write_rates_parquet(path: Path, time, rate, error, fracexp, version: int | None) -> Path:
    """Write one day's rates (sorted by time) to ``path`` atomically (zstd, one row group)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    order = np.argsort(time, kind="stable")
    tbl = pa.table({
        "time": pa.array(np.asarray(time, np.float64)[order]),
        "rate": pa.array(np.asarray(rate, np.float32)[order]),
        "error": pa.array(np.asarray(error, np.float32)[order]),
        "fracexp": pa.array(np.asarray(fracexp, np.float32)[order]),
        "version": pa.array(np.full(len(order), -1 if version is None else version, np.int32)),
    })
    with atomic_path(path) as tmp:
        pq.write_table(tbl, tmp, compression="zstd", row_group_size=max(len(order), 1))
    return path


def _connect(path: Path, *, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, waiting up to ``wait_s`` seconds while another process holds the file.

    Raises
    ------
    ArchiveError
        One line naming the catalog: still locked after ``wait_s``, or any other open failure.
    """
    what = "read-only" if read_only else "read-write"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise ArchiveError(f"{path}: cannot open catalog {what} ({str(exc).splitlines()[0]})") from None
            if time.monotonic() >= deadline:
                raise ArchiveError(f"{path}: catalog still held by another process after {wait_s:g} s "
                                   "(a pipeline run or query?); try again later") from None
            time.sleep(CATALOG_POLL_S)
        except duckdb.Error as exc:
            raise ArchiveError(f"{path}: cannot open catalog {what} ({str(exc).splitlines()[0]})") from None


@contextmanager
def open_catalog(root: str | Path, *, create: bool = True, wait_s: float | None = None):
    """Open the read-write catalog of ``root`` (created and migrated as needed).

    Use as a context manager; commits are implicit (autocommit) and the connection is
    closed on exit. While another process holds the file the open waits, up to ``wait_s``
    seconds (default :data:`CATALOG_WAIT_S`), then raises :class:`ArchiveError`.
    """
    root = Path(root)
    path = catalog_path(root)
    if not path.exists() and not create:
        raise ArchiveError(f"{root}: no catalog ({CATALOG_NAME}); build or ingest first")
    root.mkdir(parents=True, exist_ok=True)
    con = _connect(path, read_only=False, wait_s=CATALOG_WAIT_S if wait_s is None else wait_s)
    try:
        _migrate(con)
        _attach_rates(con, root)
        yield Catalog(root, con)
    finally:
        con.close()


def connect_readonly(root: str | Path, *, wait_s: float | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the catalog of ``root`` with the ``rates`` view attached.

    Waits like :func:`open_catalog` while a writer holds the file.
    """
    root = Path(root)
    path = catalog_path(root)
    if not path.exists():
        raise ArchiveError(f"{root}: no catalog ({CATALOG_NAME}); build or ingest first")
    con = _connect(path, read_only=True, wait_s=CATALOG_WAIT_S if wait_s is None else wait_s)
    (version,) = con.execute("SELECT max(version) FROM schema_version").fetchone()
    if version is None or version < SCHEMA_VERSION:
        con.close()
        raise ArchiveError(f"{path}: catalog schema {version} is older than {SCHEMA_VERSION}; "
                           "run any archive command (e.g. `xsm archive verify`) to migrate it")
    _attach_rates(con, root)
    return con


#: Statement types a user query may run (everything else is refused: no writes).
READONLY_STATEMENTS = ("SELECT", "EXPLAIN")


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    types: list[str] = field(default_factory=list)

    def as_dicts(self) -> list[dict]:
        return [dict(zip(self.columns, r)) for r in self.rows]


def run_query(root: str | Path, sql: str, params: Sequence | None = None) -> QueryResult:
    """Run one user SQL query on a read-only connection; anything but SELECT is refused.

    Raises
    ------
    ParameterError
        For a statement that could write (INSERT, COPY, ATTACH, SET, ...) or a SQL error.
    """
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ParameterError(f"query: {str(exc).splitlines()[0]}") from None
    if not statements:
        raise ParameterError("query: empty SQL")
    for st in statements:
        kind = str(st.type).rsplit(".", 1)[-1]
        if kind not in READONLY_STATEMENTS:
            raise ParameterError(f"query: {kind} statements are refused (the catalog is read-only "
                                 "here; only SELECT queries)")
    if len(statements) > 1:
        raise ParameterError("query: give one SELECT statement at a time")
    con = connect_readonly(root)
    try:
        cur = con.execute(sql, params or [])
        cols = [d[0] for d in cur.description]
        types = [str(d[1]) for d in cur.description]
        return QueryResult(cols, cur.fetchall(), types)
    except duckdb.Error as exc:
        raise ParameterError(f"query: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def _sqlvalue(v):
    if isinstance(v, (dict,)):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, tuple):
        return list(v)
    return v


def day_tag(value: str | _dt.date) -> str:
    """``YYYYMMDD`` of a date or date string."""
    from xsm.products.met import date_tag, parse_date

    return date_tag(parse_date(value) if isinstance(value, str) else value)


def as_rows(result: Iterable[Mapping]) -> list[dict]:
    return [dict(r) for r in result]
