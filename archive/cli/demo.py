"""`xsm demo`: Run the main job end to end on an embedded synthetic default.

First version: a synthetic hour of frames -> level-0 sessions -> level-1 science + housekeeping.
"""
from __future__ import annotations

from pathlib import Path

import typer

from xsm.archive.cli.common import console, handle_errors, print_json, print_table, progress_bar


@handle_errors
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Output folder."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the synthetic frames."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable result on stdout."),
) -> None:
    """Run the main job end to end on an embedded synthetic default (a synthetic hour)."""
    from xsm.products.level0 import run_demo

    with progress_bar("demo: level 0 -> level 1", disable=as_json) as advance:
        res = run_demo(out, seed=seed, progress=advance)
    if as_json:
        print_json(res)
        return
    console.print(f"level-0 sessions: {', '.join(res['level0'])}", highlight=False)
    print_table([{"day": d["date"], "rows": d["n_rows"], "science": Path(d["fits"]).name, "housekeeping": Path(d["hk"]).name}
                 for d in res["level1"]["days"]], title=f"xsm demo: level 1 in {out / 'level1'}")


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
