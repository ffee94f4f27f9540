"""Speed of the level-2 GTI / light-curve / one-decode products on a synthetic full day.

The bench makes its own day in memory (~5e7 counts, 86 400 frames, an orbit with occultations
and a flare), writes the three level-1 files with the level-1 writers into a temporary folder
and times, each as a whole ``xsm`` process (what a user runs):

* ``xsm l2 gti`` (standard filter),                       target <= 0.5 s (XSMDAS 1.2: ~1 s)
* ``xsm l2 lightcurve`` (1 s, area scaling, 0.5-15 keV),  target <= 1.2 s (XSMDAS 1.2: ~4.7 s)

and, in a separate process, every standard product of the day from ONE in-memory decode
(:func:`xsm.products.level2.make_standard_products`: GTI, type-II 60 s spectrum with ARF,
1 s light curve, high-res light curve): target <= 2 s and <= 1 GB peak memory.

Figures are printed (and written as JSON with ``--json``); nothing is asserted.
Run: ``python bench/bench_level2.py [--counts 5e7] [--mode default|xsmdas-1.2] [--keep DIR]``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
T0_MET = 146880000.66264          # 2021-08-28 00:00:00.66264 (an official day's first frame)
N_FRAMES = 86400
ORBIT_S = 7200.0


def _caldb() -> Path:
    from xsm.products import settings

    return settings.caldb_dir() or settings.shared_dir() / "caldb" / "xsm_caldb_20210628"


def synthetic_day(total_counts: float = 5e7, n: int = N_FRAMES, seed: int = 1):
    """Level1Day, HK table and SA table of a synthetic day (numpy only, no SPICE)."""
    from xsm.products import frame, hk
    from xsm.products import columns as cols
    from xsm.products.level1 import Level1Day, empty_table
    from xsm.products.met import met_to_utc_string

    rng = np.random.default_rng(seed)
    t = T0_MET + np.arange(n) * (1.0 - 3e-6)          # a clock drift as in the golden cases
    phase = ((t - t[0]) % ORBIT_S) / ORBIT_S
    occult = (phase > 0.55) & (phase < 0.92)
    theta = (20.0 + 15.0 * np.sin(2 * np.pi * (t - t[0]) / 86400.0 * 3)).astype(np.float32)
    # spectrum shape: quiet Sun ~ exp(-c/60) above the threshold, plus a flare hump
    c = np.arange(963)
    shape = np.where(c > 50, np.exp(-(c - 50) / 55.0), 0.0) + 0.002 * np.exp(-((c - 410) / 12.0) ** 2)
    shape[961] = 0.0005
    shape[962] = 0.001
    shape /= shape.sum()
    flare = 1.0 + 9.0 * np.exp(-0.5 * ((t - t[0] - 50000.0) / 1500.0) ** 2)
    area = np.cos(np.radians(theta.astype(float))) ** 1.75
    rate = np.where(occult, 0.02, 1.0) * flare * area
    rate *= total_counts / rate.sum()
    spec = np.empty((n, 963), np.uint16)
    coarse = np.zeros((n, 10, 3), np.uint16)
    step = 8192
    for a in range(0, n, step):
        b = min(n, a + step)
        s = rng.poisson(rate[a:b, None] * shape[None, :])
        spec[a:b] = np.minimum(s, 65535)
        bands = np.stack([s[:, 40:184].sum(1), s[:, 184:491].sum(1), s[:, 491:963].sum(1)], 1)
        for k in range(3):   # split each band sum over the 10 sub-frames
            q, r = np.divmod(bands[:, k], 10)
            coarse[a:b, :, k] = q[:, None] + (np.arange(10)[None, :] < r[:, None])
    events = spec.sum(1, dtype=np.int64)
    fields = {
        "HVMonitor": 1188, "DetTemperature": 1679, "TECCurrent": 773, "LV1Monitor": 2703,
        "LV2Monitor": 1229, "Ch1Start": 40, "Ch1Stop": 183, "Ch2Start": 184, "Ch2Stop": 490,
        "Ch3Start": 491, "Ch3Stop": 962, "EventDetected": events, "EventCounter": events + 5,
        "FrameNo": np.arange(n) + 1000, "MotorIRPos": 0, "MotorSetPos": 0,
    }
    data = frame.encode_frames(fields, spectrum=spec, coarse=coarse, n=n)
    utc = met_to_utc_string(t)
    day = Level1Day(time=t, utc=utc, frame_number=np.arange(n, dtype=np.int64) + 1000,
                    bdh_time=t.copy(), xsm_time=np.arange(n) * 1.0, data=data,
                    status=np.zeros(n, np.int16))
    day.header["DATE-OBS"] = str(utc[0])
    day.header["DATE-END"] = str(utc[-1])
    hkt = hk.decode_hk(day)
    sa = empty_table(cols.SA, n)
    sa.data["Time"] = t
    sa.data["Theta"] = theta
    sa.data["Phi"] = np.float32(-90.0)
    sa.data["FovFlag"] = (theta < 45).astype(np.uint8)
    sa.data["OccultFlag"] = occult.astype(np.uint8)
    sa.data["DetPosR"] = np.minimum(3.2 * np.tan(np.radians(theta)), 3.35).astype(np.float32)
    return day, hkt, sa


def write_day(out: Path, total_counts: float, seed: int = 1) -> dict:
    from xsm.products.level1 import write_hk, write_level1, write_sa

    day, hkt, sa = synthetic_day(total_counts, seed=seed)
    tag = "20210828"
    paths = {"fits": out / f"ch2_xsm_{tag}_v1_level1.fits", "hk": out / f"ch2_xsm_{tag}_v1_level1.hk",
             "sa": out / f"ch2_xsm_{tag}_v1_level1.sa"}
    write_level1(day, paths["fits"], overwrite=True)
    write_hk(hkt, paths["hk"], overwrite=True)
    write_sa(sa, paths["sa"], overwrite=True, level1_header=day.header)
    return {k: str(v) for k, v in paths.items()} | {"counts": int(hkt["SpecEvents"].sum())}


def _xsm() -> list[str]:
    exe = Path(sys.executable).with_name("xsm")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "xsm.archive.cli"]


def _run(cmd: list[str], env: dict) -> tuple[float, float, float]:
    """Wall time (s), CPU time user+sys (s) and peak RSS (MB) of a child process.

    The CPU time is printed too: on a shared 2-core machine the wall time also measures the
    other processes.
    """
    t = time.perf_counter()
    timer = ["/usr/bin/time", "-f", "XSMTIME %M %U %S"] if Path("/usr/bin/time").exists() else []
    p = subprocess.run([*timer, *cmd], capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    rss = cpu = float("nan")
    for ln in p.stderr.splitlines():
        if ln.startswith("XSMTIME "):
            _, m, u, s_ = ln.split()
            rss, cpu = int(m) / 1024.0, float(u) + float(s_)
    return dt, cpu, rss


ONE_DECODE = r"""
import json, resource, sys, time, warnings
from xsm.products import level2 as L2
from xsm.products.provenance import Mode
warnings.simplefilter("ignore")
l1, caldb, mode, out = sys.argv[1:5]
t = time.perf_counter()
day = L2.load_day(l1)
t_read = time.perf_counter() - t
t = time.perf_counter()
c = time.process_time()
prod = L2.make_standard_products(day, caldb, L2.StandardParams(mode=Mode(mode)))
t_make = time.perf_counter() - t
cpu_make = time.process_time() - c
t = time.perf_counter()
L2.write_standard_products(prod, out)
t_write = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"read_s": t_read, "make_s": t_make, "make_cpu_s": cpu_make, "write_s": t_write, "peak_mb": peak,
                  "parts_s": prod.timings}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=float, default=5e7)
    ap.add_argument("--mode", default="default", choices=["default", "xsmdas-1.2"])
    ap.add_argument("--keep", type=Path, default=None, help="keep the synthetic day in this folder")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    caldb = _caldb()
    work = Path(tempfile.mkdtemp(prefix="xsm_bench_l2_")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, XSM_CALDB=str(caldb))
    compat = ["--compat", "xsmdas-1.2"] if args.mode == "xsmdas-1.2" else []
    try:
        t = time.perf_counter()
        existing = sorted(work.glob("ch2_xsm_*_v1_level1.fits"))
        if args.keep is not None and existing and existing[0].with_suffix(".sa").exists():
            from xsm.products.level1 import read_hk

            files = {"fits": str(existing[0]), "hk": str(existing[0].with_suffix(".hk")),
                     "sa": str(existing[0].with_suffix(".sa")),
                     "counts": int(read_hk(existing[0].with_suffix(".hk"))["SpecEvents"].sum())}
        else:
            files = write_day(work, args.counts)
        print(f"synthetic day: {files['counts']:.3g} counts, {N_FRAMES} frames "
              f"({time.perf_counter() - t:.1f} s to make and write) in {work}")
        res: dict = {"counts": files["counts"], "frames": N_FRAMES, "mode": args.mode}
        gti = work / "std.gti"
        runs = [_run(_xsm() + ["l2", "gti", files["hk"], "-o", str(gti), *compat], env)
                for _ in range(args.repeat)]
        best_gti = min(runs)
        runs = [_run(_xsm() + ["l2", "lightcurve", files["fits"], "-o", str(work / "std.lc"), "--gti",
                               str(gti), *compat], env) for _ in range(args.repeat)]
        best_lc = min(runs)
        res["gti_cli"] = dict(zip(("wall_s", "cpu_s", "peak_mb"), best_gti))
        res["lc_cli"] = dict(zip(("wall_s", "cpu_s", "peak_mb"), best_lc))
        best = None
        for _ in range(args.repeat):
            p = subprocess.run([sys.executable, "-c", ONE_DECODE, files["fits"], str(caldb), args.mode,
                                str(work / "std")], capture_output=True, text=True, env=env)
            if p.returncode != 0:
                raise SystemExit(p.stderr)
            r = json.loads(p.stdout.strip().splitlines()[-1])
            best = r if best is None or r["make_s"] < best["make_s"] else best
        res["one_decode"] = best
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = float("nan")
        print(f"(machine load average {load:.1f} on {os.cpu_count()} cores: wall times include other "
              "processes; CPU = user+sys of the process)")
        print(f"xsm l2 gti (whole process):                  wall {best_gti[0]:.2f} s  CPU {best_gti[1]:.2f} s"
              f"  peak {best_gti[2]:.0f} MB   target <= 0.5 s  (XSMDAS 1.2 ~1 s)")
        print(f"xsm l2 lightcurve 1 s, area, 0.5-15 keV:     wall {best_lc[0]:.2f} s  CPU {best_lc[1]:.2f} s"
              f"  peak {best_lc[2]:.0f} MB   target <= 1.2 s  (XSMDAS 1.2 ~4.7 s)")
        print(f"all standard products, one in-memory decode: wall {best['make_s']:.2f} s  CPU "
              f"{best['make_cpu_s']:.2f} s  peak {best['peak_mb']:.0f} MB (whole process)  "
              "target <= 2 s, <= 1 GB")
        print("   parts (wall): " + ", ".join(f"{k} {v:.2f} s" for k, v in best["parts_s"].items())
              + f"; read {best['read_s']:.2f} s, write {best['write_s']:.2f} s")
        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
