"""Benchmark: simulate a full flare day (level-0 sessions + kernels + truth). Target <= 60 s.

Prints the wall time of ``simulate_day`` and the peak memory (resident set, psutil sampling and
``resource`` ru_maxrss). No assertions: figures only.
"""
from __future__ import annotations

import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from xsm.products.simulate import simulate_day

DATE = "2021-10-28"
TARGET_S = 60.0


def main() -> int:
    proc = psutil.Process()
    peak = [proc.memory_info().rss]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    with tempfile.TemporaryDirectory(prefix="xsm-bench-sim-") as tmp:
        t0 = time.perf_counter()
        c0 = proc.cpu_times()
        day = simulate_day(DATE, "flare", 1, Path(tmp), flare_class="X2")
        dt = time.perf_counter() - t0
        c1 = proc.cpu_times()
        cpu = (c1.user - c0.user) + (c1.system - c0.system)
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    stop.set()
    th.join()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"simulate_day {DATE} flare (X2), full day: {dt:.1f} s (target <= {TARGET_S:.0f} s) "
          f"{'OK' if dt <= TARGET_S else 'SLOW'}")
    print(f"  frames {day.n_frames}, counts {int(day.truth['Counts'].sum())}, sessions {len(day.sessions)}, "
          f"peak class {day.peak_class()}, output {size / 1e6:.0f} MB")
    print(f"  CPU time of this process: {cpu:.1f} s (load average {psutil.getloadavg()[0]:.1f} on "
          f"{psutil.cpu_count()} CPUs; geometry worker processes not included)")
    print(f"  peak memory: {peak[0] / 2**20:.0f} MiB (sampled RSS), ru_maxrss {maxrss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
