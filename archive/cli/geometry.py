"""Sun-geometry commands: ``xsm l1 sunangle`` and ``xsm simulate kernels``.

Thin shell over :mod:`xsm.products.geometry` and :mod:`xsm.products.kernels`: parse the
options, call one library function, render the result.
"""
from __future__ import annotations

from pathlib import Path

import typer

from xsm.archive.cli.common import attach_command, compat_option, console, err_console, mode_of, print_json


def _sunangle(
    l1file: Path = typer.Argument(..., help="Level-1 science file (ch2_xsm_YYYYMMDD_v1_level1.fits)."),
    kernels: list[Path] = typer.Option(..., "--kernels", "-k",
                                       help="Meta-kernel and/or kernel files, loaded in order "
                                            "(repeat; session kernels oldest first)."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Output .sa file (default: the science file's name with .sa)."),
    clobber: bool = typer.Option(False, "--clobber", help="Replace an existing output file."),
    compat: str = compat_option("'xsmdas-1.2': XSMDAS 1.2 compatibility mode (quirk Q09)."),
    occultation: str = typer.Option("partial", "--occultation",
                                    help="OccultFlag=1 when the disc is 'partial'ly or 'total'ly hidden."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (default: idle CPUs, max 4)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Compute the sun-angle file (.sa) of a level-1 science file with SPICE."""
    from xsm.products.geometry import make_sa_file
    mode = mode_of(compat)
    path, angles = make_sa_file(l1file, kernels, out, mode=mode, overwrite=clobber, workers=workers,
                                occultation=occultation)
    rep = angles.coverage
    result = {
        "sa_file": str(path),
        "rows": len(angles),
        "rows_without_geometry": rep.n_missing,
        "missing_intervals_met": rep.missing_intervals_met,
        "fov_fraction": float(angles.fov_flag.mean()) if len(angles) else 0.0,
        "occulted_fraction": float(angles.occult_flag.mean()) if len(angles) else 0.0,
    }
    if json_out:
        print_json(result)
        return
    console.print(f"wrote {path} ({len(angles)} rows)")
    if rep.n_missing:
        err_console.print(f"[yellow]warning:[/] {rep.summary()}", highlight=False)


def _kernels(
    directory: Path = typer.Argument(..., help="Output folder for the kernel set."),
    start: str = typer.Option("2021-09-05", "--start", help="Start (UTC date/time or MET)."),
    stop: str | None = typer.Option(None, "--stop", help="Stop (UTC date/time or MET; default start + 1 day)."),
    beta: float = typer.Option(30.0, "--beta", help="Sun elevation above the orbit plane at start, deg."),
    altitude: float = typer.Option(100.0, "--altitude", help="Orbit altitude above the mean lunar radius, km."),
    no_gap: bool = typer.Option(False, "--no-gap", help="Write the CK without its deliberate gap."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write a complete synthetic SPICE kernel set (100 km polar lunar orbit) and its meta-kernel."""
    from xsm.products.kernels import write_kernel_set
    from xsm.products.met import met_to_utc_string, parse_time

    t0 = parse_time(start)
    t1 = parse_time(stop) if stop is not None else t0 + 86400.0
    ks = write_kernel_set(directory, t0, t1, beta_deg=beta, altitude_km=altitude, ck_gap=not no_gap)
    result = {
        "metakernel": str(ks.metakernel),
        "static_metakernel": str(ks.static.metakernel),
        "files": [str(p) for p in ks.files],
        "start_utc": met_to_utc_string(t0),
        "stop_utc": met_to_utc_string(t1),
        "orbit_period_s": ks.orbit.period_s,
        "ck_gaps_met": [list(g) for g in ks.ck_gaps_met],
    }
    if json_out:
        print_json(result)
        return
    console.print(f"kernel set in {directory}: meta-kernel {ks.metakernel.name}")
    for p in ks.files:
        console.print(f"  {p}")
    for g in ks.ck_gaps_met:
        console.print(f"  CK gap: {met_to_utc_string(g[0])} .. {met_to_utc_string(g[1])}")


def register(root: typer.Typer) -> None:  # commands attach to the l1 and simulate groups
    from xsm.archive.cli.l1 import app as l1_app
    from xsm.archive.cli.simulate import app as simulate_app

    attach_command(l1_app, "sunangle", _sunangle)
    attach_command(simulate_app, "kernels", _kernels)
