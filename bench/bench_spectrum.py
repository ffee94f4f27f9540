"""Benchmark: type-II 60 s PI spectrum with ARF for a full synthetic day, as a whole CLI process.

The bench makes its own day (86400 frames, about 5e7 counts) by tiling the frames, housekeeping and
sun angles of the golden synthetic cases (quiet Sun plus flare frames), a GTI covering 63 % of the
day, and runs ``xsm l2 spectrum`` in default and compat modes with the real CALDB 20210628.
Figures are printed (wall time, peak memory of the process); nothing is asserted.

XSMDAS 1.2 takes about 7.7 s for this product on the 2-core reference machine; target <= 1.9 s.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.products import settings
from xsm.products.met import day_start_met

N_FRAMES = 86400
TARGET_COUNTS = 5.0e7


def _read(path: Path):
    with fits.open(path, memmap=False) as h:
        return h[1].data.copy(), h[1].header.copy(), h[0].header.copy()


def make_day(out: Path) -> dict[str, Path]:
    g = settings.shared_dir() / "golden" / "xsmdas-1.2"
    quiet, flare = g / "short_quiet", g / "short_flare"
    parts = {}
    for name, d in (("quiet", quiet), ("flare", flare)):
        parts[name] = {ext: _read(next(d.glob(f"*_level1.{ext}"))) for ext in ("fits", "hk", "sa")}
    words = lambda rows: np.ascontiguousarray(rows["DataArray"][:, 122:]).view(">u2").sum(1)  # noqa: E731
    rq = parts["quiet"]["fits"][0]
    rf = parts["flare"]["fits"][0]
    # good quiet frames (detector on) and flare frames
    cq = words(rq).astype(np.float64)
    cf = words(rf).astype(np.float64)
    iq = np.flatnonzero(cq > 100)
    jf = np.flatnonzero(cf > 3000)
    nf = int(np.clip((TARGET_COUNTS - N_FRAMES * cq[iq].mean()) / (cf[jf].mean() - cq[iq].mean()), 0, N_FRAMES))
    rng = np.random.default_rng(1)
    src = np.concatenate([np.zeros(N_FRAMES - nf, int), np.ones(nf, int)])
    start = rng.integers(0, N_FRAMES - nf)
    src = np.roll(src, start)
    idx = np.where(src == 0, iq[np.arange(N_FRAMES) % iq.size], jf[np.arange(N_FRAMES) % jf.size])
    t0 = day_start_met("2021-09-05") + 0.5
    t = t0 + np.arange(N_FRAMES, dtype=np.float64)
    paths = {}
    for ext in ("fits", "hk", "sa"):
        qd, qh, qp = parts["quiet"][ext]
        fd, _, _ = parts["flare"][ext]
        rows = np.where(src == 0, 0, 1)
        cols = []
        for c in qd.columns:
            a, b = np.asarray(qd[c.name]), np.asarray(fd[c.name])
            arr = np.where(rows.reshape((-1,) + (1,) * (a.ndim - 1)) == 0,
                           a[idx % len(a)], b[idx % len(b)])
            if c.name == "Time":
                arr = t
            cols.append(fits.Column(c.name, c.format, unit=c.unit, array=arr))
        hdu = fits.BinTableHDU.from_columns(cols, header=qh)
        hdu.header["TSTART"], hdu.header["TSTOP"] = float(t[0]), float(t[-1])
        p = out / f"ch2_xsm_20210905_v1_level1.{ext}"
        fits.HDUList([fits.PrimaryHDU(header=qp), hdu]).writeto(p, overwrite=True)
        paths[ext] = p
    # GTI: 63 % of each 7200-s orbit
    starts = t0 + np.arange(0, N_FRAMES, 7200) + 10.0
    stops = np.minimum(starts + 0.63 * 7200, t[-1])
    gti = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=starts),
                                         fits.Column("STOP", "D", array=stops)], name="GTI")
    paths["gti"] = out / "day.gti"
    fits.HDUList([fits.PrimaryHDU(), gti]).writeto(paths["gti"], overwrite=True)
    total = int(np.where(src == 0, cq[idx % cq.size], cf[idx % cf.size]).sum())
    print(f"synthetic day: {N_FRAMES} frames, {total:.3e} counts, {nf} flare frames")
    return paths


def run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s of the process, peak RSS MB) of one CLI run in a fresh child process."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    # a wrapper child reports its own peak RSS, so each figure is per run (RUSAGE_CHILDREN is a max)
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], check=True, capture_output=True, text=True)
    dt = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return dt, cpu, int(out.stdout.strip().splitlines()[-1]) / 1024.0


def main() -> None:
    caldb = settings.shared_dir() / "caldb" / "xsm_caldb_20210628"
    xsm = str(Path(sys.executable).with_name("xsm"))
    with tempfile.TemporaryDirectory(prefix="xsm-bench-spec-") as tmp:
        d = Path(tmp)
        p = make_day(d)
        base = [xsm, "l2", "spectrum", str(p["fits"]), "--gti", str(p["gti"]), "--hk", str(p["hk"]),
                "--sa", str(p["sa"]), "--caldb", str(caldb), "--tbinsize", "60"]
        print(f"load average before: {os.getloadavg()[0]:.2f} (2-core machine; wall times need an idle one)")
        for label, extra in (("default", []), ("compat xsmdas-1.2", ["--compat", "xsmdas-1.2"])):
            dt, cpu, mem = run(base + ["-o", str(d / f"t2_{label.split()[0]}.pha")] + extra)
            print(f"type-II 60 s PI + ARF, {label:18s}: wall {dt:6.2f} s  CPU {cpu:6.2f} s  "
                  f"peak RSS {mem:6.0f} MB" + ("   (target <= 1.9 s; XSMDAS 1.2: 7.7 s)" if label == "default" else ""))
        dt, cpu, mem = run(base[:-2] + ["--spectype", "time-integrated", "--no-genarf", "--areascal",
                                        "-o", str(d / "t1_area.pha")])
        print(f"type-I PI area-corrected, default      : wall {dt:6.2f} s  CPU {cpu:6.2f} s  peak RSS {mem:6.0f} MB")
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
