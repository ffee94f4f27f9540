"""`xsm demo`: the main job end to end on simulated data.

Three simulated days (quiet, active, flare) -> level-0 packages in an inbox -> ``xsm pipeline
run`` (download, extract, per-session level 1/2, summary pages, day merge, archive, upload) ->
``xsm archive verify``; prints where the archive, catalog and summary index are, and whether the
labels were validated against the PDS4 schemas or by the data checks only.
"""
from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from xsm.archive.cli.common import console, handle_errors, print_json, print_table


@handle_errors
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Output folder."),
    hours: float = typer.Option(24.0, "--hours", help="Hours simulated per day (0-24; whole days by default)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the first simulated day."),
    caldb: Path = typer.Option(None, "--caldb", envvar="XSM_CALDB",
                               help="CALDB root (default: a synthetic CALDB written into OUT/caldb)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable result on stdout."),
) -> None:
    """Simulate three days, run the pipeline end to end, verify the archive, print a summary."""
    from xsm.archive.demo import run_demo

    def step(msg: str) -> None:
        if not as_json:
            console.print(f"  {escape(msg)}", highlight=False)

    if not as_json:
        console.print(f"xsm demo: three simulated days of {hours:g} h into {out}", highlight=False)
    res = run_demo(out, hours=hours, seed=seed, caldb=caldb, progress=step)
    if as_json:
        print_json(res.to_dict())
    else:
        print_table([{"day": d["day"], "v": d["version"], "sun": "yes" if d["sun"] else "no",
                      "cal": "yes" if d["cal"] else "no", "archived": "yes" if d["archived"] else "no",
                      "uploaded": "yes" if d["uploaded"] else "no",
                      "Sun exp. (s)": f"{d['sun_exposure'] or 0:.0f}",
                      "peak (c/s)": f"{d['peak_rate']:.0f}" if d["peak_rate"] is not None else "-"}
                     for d in res.days],
                    title="xsm demo: archive days")
        console.print(f"archive:        {res.archive}\ncatalog:        {res.catalog}\n"
                      f"summary index:  {res.index}\nupload:         {res.upload}\n"
                      f"CALDB:          {res.caldb}", highlight=False)
        console.print("archive verify: " + ("[green]OK[/]" if res.verified else
                                            f"[red]{len(res.problems)} problem(s)[/]"))
        if res.schemas_checked:
            console.print("labels:         validated against the PDS4 schemas (XSD, Schematron) and by the "
                          "data checks", highlight=False)
        else:
            console.print("labels:         [yellow]data checks only (file, size, md5, FITS offsets, records, "
                          f"fields); not validated against the PDS4 schemas[/]\n  {escape(res.schema_note)}",
                          highlight=False)
        for p in res.problems:
            console.print(f"[red]{escape(p)}[/]", highlight=False)
        if res.failed:
            console.print(f"[red]{len(res.failed)} pipeline item(s) failed[/]: see `xsm pipeline status "
                          f"--archive {res.archive}`", highlight=False)
        console.print(f"next: `xsm serve --archive {res.archive}` and open http://127.0.0.1:8000/", highlight=False)
    if res.failed or not res.verified:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
