"""Benchmark: one full day of level 0 (86,400 records, ~183 MB) -> level-1 science + housekeeping.

Prints wall time and peak memory (JSON) of ``build_level1`` run in a fresh process, and the
housekeeping decode alone. Targets on the 2-core reference machine: <= 4 s and <= 1.5 GB for
the day, <= 1 s for the housekeeping decode. No assertions: figures only.

Usage: python bench/bench_level1.py [--records N] [--keep]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from xsm.products.level0 import build_level1
t_import = time.perf_counter() - t0
t0 = time.perf_counter()
res = build_level1([Path(p) for p in sys.argv[2:]], Path(sys.argv[1]), overwrite=True)
wall = time.perf_counter() - t0
try:  # VmHWM: this process's own high-water mark (ru_maxrss survives exec: it would count the parent)
    with open("/proc/self/status") as f:
        peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"wall_s": wall, "import_s": t_import, "peak_rss_bytes": peak,
                  "days": [(d.date, d.n_rows) for d in res.days], "totals": res.totals}))
"""


def _timed(func, *args) -> float:
    t0 = time.perf_counter()
    func(*args)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=86_400)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    from xsm.products import frame as fr
    from xsm.products import level0 as L0
    from xsm.products.hk import decode_hk
    from xsm.products.level1 import read_level1

    work = Path(tempfile.mkdtemp(prefix="xsm-bench-l1-"))
    n = args.records
    t0 = time.perf_counter()
    frames = fr.synthetic_frames(n, seed=1)
    from xsm.products.met import day_start_met

    met = day_start_met("2021-09-05") + 0.25 + np.arange(n, dtype=np.float64)  # one whole UTC day
    rec = L0.encode_records(frames, met, simulated=True)
    pkg = L0.write_session(work / "l0", L0.session_id(met[0]), [rec])
    del frames, rec
    t_setup = time.perf_counter() - t0
    out = subprocess.run([sys.executable, "-c", CHILD, str(work / "l1"), str(pkg)], capture_output=True, text=True)
    if out.returncode:
        sys.stderr.write(out.stderr)
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        raise SystemExit(out.returncode)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    fits_path = next((work / "l1").glob("*_level1.fits"))
    day = read_level1(fits_path)
    t_hk = min(_timed(decode_hk, day) for _ in range(3))
    raw = np.ascontiguousarray(np.concatenate([np.zeros((n, 60), np.uint8), day.data,
                                               np.zeros((n, 12), np.uint8)], axis=1))
    t_crc = min(_timed(L0.crc32_rows, raw, L0.CRC_SPAN) for _ in range(2))
    del raw
    result = {
        "bench": "level0 -> level1 + hk, one day",
        "records": n,
        "level0_bytes": int(pkg.stat().st_size),
        "setup_s": round(t_setup, 3),
        "build_level1_s": round(child["wall_s"], 3),
        "build_level1_peak_rss_mb": round(child["peak_rss_bytes"] / 2**20, 1),
        "hk_decode_s": round(t_hk, 3),
        "crc32_vectorised_s": round(t_crc, 3),
        "load_average_1min": round(__import__("os").getloadavg()[0], 2),
        "targets": {"build_level1_s": 4.0, "peak_rss_mb": 1536, "hk_decode_s": 1.0},
        "days": child["days"],
        "good_fraction": child["totals"]["good_fraction"],
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work folder kept: {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
