"""Benchmark: generate and validate 1,000 PDS4 labels (target: validation <= 60 s on 2 cores).

Every product type xsm writes is made once with the project's writers (small synthetic files),
then copied under 100 day names (10 products per day -> 1,000 labels). Labels are generated
for each copy and validated with ``validate_labels(..., workers=2)``: XSD, Schematron (compiled
once, cached in the user data dir) and all data checks (size, md5, FITS offsets, fields).

Prints one JSON object: wall times, labels/s, peak RSS, findings.
Schemas: ``$XSM_PDS4_SCHEMAS``, the installed copy, or ``$XSM_SHARED/pds4``.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "labels"))


def main(n_days: int = 100, workers: int = 2) -> dict:
    from labels_products import all_products
    from xsm.labels.generate import generate_label
    from xsm.labels.validate import compiled_schematron, validate_labels

    with tempfile.TemporaryDirectory(prefix="xsm-bench-labels-") as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        files = all_products(src)
        t0 = time.perf_counter()
        compiled_schematron("1B00")
        t_compile = time.perf_counter() - t0
        day0 = dt.date(2021, 1, 1)
        copies = []
        for d in range(n_days):
            tag = (day0 + dt.timedelta(days=d)).strftime("%Y%m%d")
            out = tmp / "days" / tag
            out.mkdir(parents=True)
            for f in files:
                target = out / f.name.replace("20210828", tag)
                shutil.copyfile(f, target)
                copies.append(target)
        t0 = time.perf_counter()
        labels = [generate_label(p) for p in copies]
        t_generate = time.perf_counter() - t0
        t0 = time.perf_counter()
        findings = validate_labels(labels, workers=workers)
        t_validate = time.perf_counter() - t0
        t0 = time.perf_counter()
        serial = validate_labels(labels[:100], workers=1)
        t_serial100 = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # peak (kB on Linux)
    result = {
        "bench": "labels",
        "labels": len(labels),
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "schematron_compile_or_cache_s": round(t_compile, 3),
        "generate_s": round(t_generate, 2),
        "validate_s": round(t_validate, 2),
        "validate_labels_per_s": round(len(labels) / t_validate, 1),
        "validate_serial_100_s": round(t_serial100, 2),
        "errors": len(findings.errors),
        "warnings": len(findings.warnings),
        "serial_errors": len(serial.errors),
        "target_validate_s": 60,
        "within_target": t_validate <= 60,
        "peak_rss_mb_parent": round(rss / 2**20, 1),
    }
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
