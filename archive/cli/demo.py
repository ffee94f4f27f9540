"""`xsm demo`: Run the main job end to end on an embedded synthetic default.

A simulated day (``xsm simulate day``: level-0 download sessions with their kernels and the
truth) -> level-1 science, housekeeping and sun angle (issue 3 item 4).
"""
from __future__ import annotations

from pathlib import Path

import typer

from xsm.archive.cli.common import console, handle_errors, print_json, print_table, progress_bar


@handle_errors
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Output folder."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the simulated day."),
    date: str = typer.Option("2021-10-28", "--date", help="UTC day to simulate, YYYY-MM-DD."),
    profile: str = typer.Option("flare", "--profile", help="Solar activity: quiet, active or flare."),
    hours: float = typer.Option(24.0, "--hours", help="Simulate only the first HOURS of the day."),
    caldb: Path = typer.Option(None, "--caldb", help="CALDB root (default $XSM_CALDB, the shared real "
                               "CALDB, else a synthetic CALDB written into OUT/caldb)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable result on stdout."),
) -> None:
    """Run the main job end to end: simulate a day, build level 1, housekeeping and sun angle."""
    from xsm.products.simulate import demo_day

    with progress_bar("demo: simulate a day -> level 0 -> level 1", disable=as_json) as advance:
        res = demo_day(out, date=date, profile=profile, seed=seed, hours=hours, caldb=caldb,
                       progress=advance)
    if as_json:
        print_json(res)
        return
    sim = res["simulated"]
    console.print(f"simulated {sim['date']} ({sim['profile']}, seed {sim['seed']}): {sim['frames']} frames, "
                  f"{sim['counts']} counts, peak GOES class {sim['peak_goes_class']}; "
                  f"{len(res['level0'])} level-0 sessions in {out / 'level0'}", highlight=False)
    print_table([{"day": d["date"], "rows": d["n_rows"], "science": Path(d["fits"]).name,
                  "housekeeping": Path(d["hk"]).name, "sun angle": Path(d["sa"]).name,
                  "no geometry": d["rows_without_geometry"]}
                 for d in res["level1"]["days"]], title=f"xsm demo: level 1 in {out / 'level1'}")
    console.print(f"level 1 holds {res['frames_in_level1']} of {res['frames_simulated']} simulated frames; "
                  f"truth: {sim['truth']}", highlight=False)


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
