"""Benchmark: the processing chain (``xsm pipeline run``) on a simulated span.

Simulates HOURS of one day (level-0 packages + triggers), then runs the whole pipeline
(download, extract, per-session level 1/2, session pages, day merge, day page, archive check,
upload) in a fresh process and prints JSON: wall time, peak memory of that process, and the
seconds of every stage (summed over its items, from the queue table). No assertions.

Usage: python bench/bench_pipeline.py [--hours H] [--keep]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
from pathlib import Path
from xsm.archive.pipeline import PipelineConfig, queue_rows, run
t0 = time.perf_counter()
cfg = PipelineConfig(root=Path(sys.argv[1]), inbox=sys.argv[2], upload_dir=Path(sys.argv[3]),
                     caldb=Path(sys.argv[4]) if sys.argv[4] != "-" else None)
summary = run(cfg)
wall = time.perf_counter() - t0
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
stages = {}
for r in queue_rows(cfg.root):
    s = r["detail"].get("seconds")
    if s is not None:
        stages[r["stage"]] = round(stages.get(r["stage"], 0.0) + s, 2)
print(json.dumps({"wall_s": round(wall, 2), "peak_rss_bytes": peak, "stage_seconds": stages,
                  "failed": summary.failed}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0, help="Hours simulated (from 10:00 UTC, earlier for long spans).")
    ap.add_argument("--keep", action="store_true", help="Keep the work folder.")
    args = ap.parse_args()
    from xsm.products.simulate import default_caldb, simulate_day

    work = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    caldb = default_caldb(work / "caldb")
    t0 = time.perf_counter()
    sim = simulate_day("2024-05-03", "flare", 1, work / "inbox", caldb=caldb, start_s=min(36000.0, 86400.0 - args.hours * 3600.0),
                       duration_s=args.hours * 3600.0)
    t_sim = time.perf_counter() - t0
    out = subprocess.run([sys.executable, "-c", CHILD, str(work / "archive"), str(work / "inbox"),
                          str(work / "upload"), str(caldb)], capture_output=True, text=True)
    if out.returncode:
        print(out.stderr[-3000:], file=sys.stderr)
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        raise SystemExit(out.returncode)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(hours=args.hours, sessions=len(sim.sessions), frames=sim.n_frames, simulate_s=round(t_sim, 2),
               work=str(work) if args.keep else None)
    try:
        import os
        res["load_average"] = os.getloadavg()
    except OSError:
        pass
    print(json.dumps(res, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
