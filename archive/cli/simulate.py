"""`xsm simulate`: Synthetic SPICE kernels and level-0 download sessions."""
from __future__ import annotations

from pathlib import Path

import typer

from xsm.archive.cli.common import console, handle_errors, print_json, print_table, progress_bar

app = typer.Typer(help="Synthetic SPICE kernels and level-0 download sessions.", no_args_is_help=True)


@app.command("day")
@handle_errors
def day(
    date: str = typer.Argument(..., help="UTC day to simulate, YYYY-MM-DD."),
    profile: str = typer.Option("active", "--profile", help="Solar activity: quiet, active or flare."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same files)."),
    out: Path = typer.Option(..., "--out", help="Output folder for the sessions, kernels and truth."),
    flare_class: str = typer.Option(None, "--flare-class", help="Class of the big flare, e.g. M5 or X2 "
                                    "(any profile then has one)."),
    hours: float = typer.Option(24.0, "--hours", help="Simulate only this many hours of the day."),
    start_hour: float = typer.Option(0.0, "--start-hour", help="Start of the simulated span (hours after 00:00)."),
    caldb: Path = typer.Option(None, "--caldb", help="CALDB root (default $XSM_CALDB, else the shared real "
                                 "CALDB, else a synthetic CALDB written into OUT/caldb)."),
    no_faults: bool = typer.Option(False, "--no-faults", help="Do not inject corrupted records and time-tag jumps."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
) -> None:
    """Simulate the level-0 download sessions of one day, with their kernels and the truth."""
    from xsm.products.simulate import simulate_day

    with progress_bar(f"simulating {date}", disable=as_json) as advance:
        res = simulate_day(date, profile=profile, seed=seed, out_dir=out, caldb=caldb,
                           flare_class=flare_class, start_s=start_hour * 3600.0,
                           duration_s=hours * 3600.0, faults=not no_faults, progress=advance)
    summary = res.to_dict()
    if as_json:
        print_json(summary)
        return
    print_table([{"session": s["sid"], "records": s["records"], "IST": "yes" if s["ist"] else "no",
                  "package": Path(s["package"]).name} for s in summary["sessions"]],
                title=f"xsm simulate day {res.date} ({res.profile}, seed {res.seed})")
    console.print(f"{summary['frames']} frames, {summary['counts']} counts, peak GOES class "
                  f"{summary['peak_goes_class']}, {summary['faults']} injected faults")
    console.print(f"truth: {summary['truth']}\nkernels: {summary['metakernel']}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="simulate")
