"""Catalog benchmark: 10 simulated years of 1 s rates as Parquet, queried through DuckDB.

Writes ``--days`` days (default 3650, i.e. 315 360 000 rows at 86 400 rows a day) of 1 s
light-curve rates straight to the catalog's Parquet layout (``catalog/rates/day=YYYYMMDD``),
derives the flare list of each day with :mod:`xsm.archive.flares` (the catalog's own method),
fills the day-wise table, then times, through :func:`xsm.archive.query.find`:

* a time-range + rate query (30 days, rate >= 20 000 counts/s; target <= 1 s), and the same over
  one year (for information);
* the flare-class query (``--flare-class M1`` over the whole span; target <= 2 s).

Prints wall times, peak memory (RSS) and sizes as JSON on the last line. The files are written
to a temporary directory (or ``--out``) which is removed at the end unless ``--keep``.

    python bench/bench_catalog.py [--days 3650] [--workers 2] [--out DIR] [--keep]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from xsm.archive import flares as fl
from xsm.archive.catalog import DAY_COLUMNS, FLARE_COLUMNS, RATES_DIR, RATES_FILE, open_catalog, write_rates_parquet
from xsm.archive.query import find
from xsm.products.met import day_start_met

FIRST_DAY = dt.date(2019, 9, 12)
N_PER_DAY = 86400
CYCLE_DAYS = 11 * 365.25


def simulate_day(k: int, seed: int = 2024) -> tuple[np.ndarray, np.ndarray, list]:
    """1 s rates of simulated day ``k``: a solar-cycle quiet level, flares, Gaussian noise."""
    rng = np.random.default_rng([seed, k])
    day = FIRST_DAY + dt.timedelta(days=k)
    t0 = day_start_met(day)
    t = t0 + np.arange(N_PER_DAY, dtype=np.float64) + 0.5
    activity = 0.5 * (1 - np.cos(2 * np.pi * (k + 200) / CYCLE_DAYS))  # 0 .. 1
    base = 300.0 + 4000.0 * activity * (1 + 0.2 * rng.standard_normal())
    rate = np.full(N_PER_DAY, max(base, 100.0), dtype=np.float64)
    n_flares = rng.poisson(0.5 + 12 * activity)
    planted = []
    for _ in range(n_flares):
        flux = 1e-7 * (1 - rng.random()) ** -1.0  # dN/dF ~ F^-2 above B1
        flux = min(flux, 3e-4)
        peak = fl.R0 * (flux / fl.F0) ** (1 / fl.GAMMA)
        tp = rng.uniform(1800, N_PER_DAY - 1800)
        rise, decay = rng.uniform(120, 600), rng.uniform(600, 3600)
        x = np.arange(N_PER_DAY) - tp
        rate += peak * np.where(x < 0, np.exp(-0.5 * (x / rise) ** 2), np.exp(-np.maximum(x, 0) / decay))
        planted.append(flux)
    noisy = rate + np.sqrt(rate) * rng.standard_normal(N_PER_DAY)
    return t, noisy.astype(np.float32), planted


def make_days(args) -> tuple[list[dict], list[dict]]:
    """Worker: simulate, write Parquet and detect flares for days ``lo..hi-1``."""
    root, lo, hi = args
    days, flare_rows = [], []
    for k in range(lo, hi):
        t, r, _ = simulate_day(k)
        tag = (FIRST_DAY + dt.timedelta(days=k)).strftime("%Y%m%d")
        err = np.sqrt(np.maximum(r, 0)).astype(np.float32)
        write_rates_parquet(Path(root) / RATES_DIR / f"day={tag}" / RATES_FILE, t, r, err,
                            np.ones_like(r), 1)
        found = fl.detect_flares(t, r)
        for i, f in enumerate(found, start=1):
            flare_rows.append({"day": tag, "flare_num": i, "version": 1, "lc_path": None, **f.as_row()})
        kmax = int(np.argmax(r))
        days.append({"DayOfObs": tag, "Tstart": float(t[0]), "Tstop": float(t[-1]),
                     "TotalExposure": float(N_PER_DAY), "SunExposure": float(N_PER_DAY * 0.7),
                     "Version": 1, "PeakRate": float(r[kmax]), "PeakTime": float(t[kmax]),
                     "MeanRate": float(r.mean()), "procstatus": True, "sunstatus": True,
                     "Source": "bench"})
    return days, flare_rows


def _peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(max(r, c), 1)


def _timed(fn, repeat: int = 3):
    best, out = float("inf"), None
    first = None
    for i in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        dtm = time.perf_counter() - t0
        first = dtm if i == 0 else first
        best = min(best, dtm)
    return out, round(first, 3), round(best, 3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=int(os.environ.get("XSM_BENCH_DAYS", 3650)))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=None, help="directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the files")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="xsm_bench_catalog_", dir=args.out))
    result: dict = {"bench": "catalog", "days": args.days, "rows": args.days * N_PER_DAY}
    try:
        t0 = time.perf_counter()
        chunk = 25
        jobs = [(str(root), lo, min(lo + chunk, args.days)) for lo in range(0, args.days, chunk)]
        days, flare_rows = [], []
        with ProcessPoolExecutor(max_workers=args.workers) as ex:
            for d, f in ex.map(make_days, jobs):
                days += d
                flare_rows += f
        result["generate_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        import pyarrow as pa

        with open_catalog(root) as cat:
            dtab = pa.Table.from_pylist([{c: d.get(c) for c in DAY_COLUMNS if c not in ("Segments", "UpdatedAt")}
                                         for d in days])
            cat.con.register("_d", dtab)
            cols = ", ".join(f'"{c}"' for c in dtab.column_names)
            cat.con.execute(f"INSERT INTO xsmdaywisedata ({cols}) SELECT {cols} FROM _d")
            ftab = pa.Table.from_pylist([{c: r.get(c) for c in FLARE_COLUMNS} for r in flare_rows])
            cat.con.register("_f", ftab)
            cat.con.execute("INSERT INTO flares SELECT * FROM _f")
        result["catalog_s"] = round(time.perf_counter() - t0, 2)
        result["parquet_bytes"] = sum(p.stat().st_size for p in (root / RATES_DIR).rglob("*.parquet"))
        result["flares"] = len(flare_rows)

        mid = FIRST_DAY + dt.timedelta(days=args.days // 2)
        lo = day_start_met(mid)
        res, first, best = _timed(lambda: find(root, tfrom=lo, tto=lo + 30 * 86400, min_rate=20000))
        result["range_rate_30d"] = {"first_s": first, "best_s": best, "days_matched": len(res.rows),
                                    "target_s": 1.0}
        span = min(365, args.days)
        res, first, best = _timed(lambda: find(root, tfrom=lo - span * 43200, tto=lo + span * 43200,
                                               min_rate=20000))
        result["range_rate_1y"] = {"first_s": first, "best_s": best, "days_matched": len(res.rows)}
        res, first, best = _timed(lambda: find(root, flare_class="M1"))
        result["flare_class_M1"] = {"first_s": first, "best_s": best, "flares": len(res.rows),
                                    "target_s": 2.0}
        res, first, best = _timed(lambda: find(root, flare_class="M1", min_exposure=50000, product="lc"))
        result["flare_class_M1_products"] = {"first_s": first, "best_s": best}
        result["peak_rss_mb"] = _peak_rss_mb()
        ok = (result["range_rate_30d"]["first_s"] <= 1.0 and result["flare_class_M1"]["first_s"] <= 2.0)
        result["within_targets"] = ok
    finally:
        if args.keep:
            result["kept"] = str(root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    for k, v in result.items():
        print(f"{k:>26}: {v}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
