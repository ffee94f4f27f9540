"""`xsm archive`: Day-wise archive, releases for ISDA, verification, ingest."""
from __future__ import annotations

from pathlib import Path

import typer

from xsm.archive.cli.common import console, handle_errors, print_json, print_table, progress_bar

app = typer.Typer(help="Day-wise archive, releases for ISDA, verification, ingest.", no_args_is_help=True)

#: The archive root of every archive/catalog command (``$XSM_ARCHIVE`` or ``./xsm-archive``).
ARCHIVE_OPTION = typer.Option(Path("xsm-archive"), "--archive", "-A", envvar="XSM_ARCHIVE",
                              help="Archive root (holds archive.duckdb).", show_default=True)


@app.command("ingest")
@handle_errors
def ingest_cmd(
    source: Path = typer.Argument(..., help="Directory of existing products (FITS + PDS4 labels)."),
    archive: Path = ARCHIVE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Report as JSON."),
) -> None:
    """Index existing official products into the catalog, in place, without rebuilding them."""
    from xsm.archive.ingest import ingest

    with progress_bar("ingest", disable=json_out) as advance:
        rep = ingest(archive, source, progress=advance)
    out = {"archive": str(rep.root), "files": len(rep.files), "days": rep.days,
           "flares": rep.flares, "missing": rep.missing, "mismatched": rep.mismatched,
           "skipped": rep.skipped}
    if json_out:
        print_json(out)
        return
    console.print(f"indexed {len(rep.files)} file(s) of {len(rep.days)} day(s) from {source} "
                  f"into {archive}; {rep.flares} flare(s) in the catalog")
    for m in rep.missing:
        console.print(f"[yellow]named by a label but absent:[/] {m}")
    for m in rep.mismatched:
        console.print(f"[red]size/md5 differ from its label:[/] {m}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="archive")
