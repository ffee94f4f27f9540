"""CALDB benchmark: synthetic CALDB creation, certification, selection, publishing, affected intervals.

Times, in a temporary directory:

* ``xsm caldb init --synthetic`` (every file type, including the 3000 x 512 RMF and two RSPs);
* certification of the whole release (with fitsverify when installed);
* ``calibration_context`` for 1000 observation times (index read + selection + manifest checks);
* publishing a new GAIN version, and ``affected_intervals`` between the two versions.

Prints the figures as JSON on the last line (no assertions).

    python bench/bench_caldb.py [--times 1000]
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--times", type=int, default=1000)
    args = ap.parse_args()

    from xsm.caldb_manager.certify import certify_release
    from xsm.caldb_manager.context import calibration_context
    from xsm.caldb_manager.diff import affected_intervals
    from xsm.caldb_manager.publish import init_synthetic, publish
    from xsm.caldb_manager.synthetic import write_gain
    from xsm.products.met import mjd_to_met

    out: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-caldb-"))
    try:
        root = tmp / "caldb"
        t = time.perf_counter()
        init_synthetic(root)
        out["init_synthetic_s"] = time.perf_counter() - t
        t = time.perf_counter()
        rel = certify_release(root)
        out["certify_release_s"] = time.perf_counter() - t
        out["certified"] = rel.ok
        mets = mjd_to_met(np.linspace(57760.0, 60000.0, args.times))
        t = time.perf_counter()
        for m in mets:
            calibration_context(float(m), root)
        out["context_per_call_ms"] = 1e3 * (time.perf_counter() - t) / args.times
        g = write_gain(tmp / "CH2xsmgain20260301v01.fits", 59500.0, 0.002)
        t = time.perf_counter()
        publish(root, [g], "20260301")
        out["publish_one_file_s"] = time.perf_counter() - t
        t = time.perf_counter()
        ivs = affected_intervals("20260101", "20260301", caldb=root)
        out["affected_intervals_ms"] = 1e3 * (time.perf_counter() - t)
        out["affected_intervals"] = len(ivs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for k, v in out.items():
        print(f"{k:26s} {v:.4g}" if isinstance(v, float) else f"{k:26s} {v}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
