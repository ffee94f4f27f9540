"""Benchmark: sun angles of a full day (86 400 rows). Target <= 5 s.

Writes a synthetic kernel set for one UTC day (timed separately), then times
:func:`xsm.products.geometry.compute_sun_angles` on 86 400 one-second epochs: with the default
worker processes and with one process. Prints peak memory (this process and its workers,
``resource`` ru_maxrss) and the figures as JSON on the last line. No assertions.

    python bench/bench_geometry.py [--date 2021-09-05] [--rows 86400] [--workers N]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

import numpy as np

from xsm.products import geometry as G
from xsm.products import kernels as K
from xsm.products.met import day_start_met


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--date", default="2021-09-05")
    ap.add_argument("--rows", type=int, default=86400)
    ap.add_argument("--workers", type=int, default=None, help="default: idle CPUs, max 4")
    args = ap.parse_args(argv)

    t0 = day_start_met(args.date)
    met = t0 + 0.66264 + np.arange(args.rows, dtype=np.float64)
    with tempfile.TemporaryDirectory(prefix="xsm-bench-geometry-") as tmp:
        w0 = time.perf_counter()
        ks = K.write_kernel_set(tmp, t0, t0 + 86400.0)
        t_kernels = time.perf_counter() - w0

        workers = args.workers or G.default_workers()
        load = os.getloadavg()[0]
        w0 = time.perf_counter()
        ang = G.compute_sun_angles(met, ks, workers=workers)
        t_default = time.perf_counter() - w0

        w0 = time.perf_counter()
        G.compute_sun_angles(met, ks, workers=1)
        t_one = time.perf_counter() - w0

        w0 = time.perf_counter()
        table = G.make_sa_table(ang)
        t_table = time.perf_counter() - w0

    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    res = {
        "rows": args.rows,
        "workers": workers,
        "load_average_1min": round(load, 2),
        "cpus": os.cpu_count(),
        "kernel_set_write_s": round(t_kernels, 3),
        "sun_angles_s": round(t_default, 3),
        "sun_angles_one_process_s": round(t_one, 3),
        "sa_table_s": round(t_table, 3),
        "target_s": 5.0,
        "rows_without_geometry": ang.coverage.n_missing,
        "fov_fraction": round(float(ang.fov_flag.mean()), 4),
        "occulted_fraction": round(float(ang.occult_flag.mean()), 4),
        "peak_rss_mb": round(self_mb, 1),
        "peak_rss_worker_mb": round(child_mb, 1),
        "table_rows": len(table),
    }
    print(f"kernel set (1 day)        {t_kernels:6.2f} s")
    print(f"sun angles, {res['workers']} process(es) {t_default:6.2f} s   (target <= 5 s)")
    print(f"sun angles, 1 process     {t_one:6.2f} s")
    print(f"peak memory               {self_mb:6.0f} MB (workers {child_mb:.0f} MB)")
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
