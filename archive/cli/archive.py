"""`xsm archive`: Day-wise archive, releases for ISDA, verification, ingest."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from xsm.archive.cli.common import (compat_option, console, handle_errors, mode_of, print_json, print_table,
                                    progress_bar)

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
           "skipped": rep.skipped, "rates_kept": rep.rates_kept, "days_kept": rep.days_kept}
    if json_out:
        print_json(out)
        return
    console.print(f"indexed {len(rep.files)} file(s) of {len(rep.days)} day(s) from {source} "
                  f"into {archive}; {rep.flares} flare(s) in the catalog")
    for m in rep.missing:
        console.print(f"[yellow]named by a label but absent:[/] {m}")
    for m in rep.mismatched:
        console.print(f"[red]size/md5 differ from its label:[/] {m}")
    for m in rep.rates_kept:
        console.print(f"[yellow]indexed only; the day keeps its built light-curve rates:[/] {m}")
    for d in rep.days_kept:
        console.print(f"[yellow]day {d} keeps its built day-wise row[/]")


@app.command("build-day")
@handle_errors
def build_day_cmd(
    date: str = typer.Argument(..., help="Day to build (YYYY-MM-DD or YYYYMMDD)."),
    level1: Path = typer.Option(None, "--level1", help="Directory with the day's level-1 .fits/.hk/.sa."),
    sessions: list[Path] = typer.Option(None, "--session", "-s",
                                        help="Level-0 session package(s) (repeat) instead of --level1."),
    kernels: list[Path] = typer.Option(None, "--kernels", "-k",
                                       help="SPICE meta-kernel or kernel files (with --session)."),
    caldb: Path = typer.Option(None, "--caldb", envvar="XSM_CALDB", help="CALDB root."),
    compat: str = compat_option(),
    archive: Path = ARCHIVE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Result as JSON."),
) -> None:
    """Build one day: raw + calibrated products, labels, day zip + label; idempotent."""
    from xsm.archive.build import build_day

    kern = None if not kernels else (kernels[0] if len(kernels) == 1 else list(kernels))
    res = build_day(archive, date, level1=level1, sessions=sessions or (), kernels=kern, caldb=caldb,
                    mode=mode_of(compat))
    if json_out:
        print_json(res.to_dict())
        return
    if not res.changed:
        console.print(f"{res.day}: unchanged (version {res.version}); nothing written")
        return
    print_table([{"kind": p.kind, "version": p.version, "status": p.status, "file": p.path.name,
                  "reason": p.reason or ""} for p in res.products], title=f"{res.day} -> {res.zip}")
    if not res.sun:
        console.print("[yellow]no standard GTI (Sun never observed): no calibrated products[/]")


@app.command("verify")
@handle_errors
def verify_cmd(
    archive: Path = ARCHIVE_OPTION,
    days: list[str] = typer.Option(None, "--day", help="Only these days (repeat)."),
    no_labels: bool = typer.Option(False, "--no-labels", help="Skip label validation."),
    workers: int = typer.Option(1, "--workers", "-j", help="Processes for label validation."),
    json_out: bool = typer.Option(False, "--json", help="Report as JSON."),
) -> None:
    """Re-hash every file, validate every label, report fixity errors (exit 1 if any)."""
    from xsm.archive.catalog import day_tag
    from xsm.archive.verify import verify

    with progress_bar("verify", disable=json_out) as advance:
        rep = verify(archive, days=[day_tag(d) for d in days] if days else None,
                     labels=not no_labels, workers=workers, progress=advance)
    if json_out:
        print_json(rep.to_dict())
    else:
        console.print(f"{rep.files} file(s) re-hashed, {rep.labels} label(s) validated"
                      + (" (data checks only)" if rep.schema_note else "") + ": "
                      + ("[green]OK[/]" if rep.ok else f"[red]{len(rep.problems)} problem(s)[/]"))
        for p in rep.problems:
            console.print(f"[red]{escape(str(p))}[/]", highlight=False, soft_wrap=True)
        if rep.schema_note:
            console.print(f"[yellow]warning:[/] {escape(rep.schema_note)}", highlight=False, soft_wrap=True)
    if not rep.ok:
        raise typer.Exit(1)


@app.command("release")
@handle_errors
def release_cmd(
    name: str = typer.Argument(..., help="Release name (e.g. release_001)."),
    day_from: str = typer.Option(..., "--from", help="First day (YYYY-MM-DD)."),
    day_to: str = typer.Option(..., "--to", help="Last day (YYYY-MM-DD)."),
    archive: Path = ARCHIVE_OPTION,
    workers: int = typer.Option(1, "--workers", "-j", help="Processes for label validation."),
    json_out: bool = typer.Option(False, "--json", help="Result as JSON."),
    deep_archive: bool = typer.Option(False, "--deep-archive",
                                      help="Also write the pds-deep-archive style package (checksum and "
                                           "transfer manifests, AIP label) in deep_archive/."),
) -> None:
    """Package a release for ISDA (bundle, collections, manifests, release note).

    Labels must pass full validation: the PDS4 schema files are required
    (`xsm labels schemas install --from DIR` or XSM_PDS4_SCHEMAS).
    """
    from xsm.archive.release import ReleaseRefused, make_release

    try:
        res = make_release(archive, name, day_from, day_to, workers=workers, deep_archive=deep_archive)
    except ReleaseRefused as exc:
        if json_out:
            print_json({"refused": True, "problems": [p.__dict__ for p in exc.problems]})
        else:
            console.print(f"[red]release {name} refused: {len(exc.problems)} problem(s)[/]")
            for p in exc.problems:
                console.print(f"[red]{escape(str(p))}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if json_out:
        print_json(res.to_dict())
        return
    console.print(f"release {res.name} ({res.bundle_lidvid}): {res.files} files, days "
                  f"{res.days[0]}..{res.days[-1]} -> {res.path}")
    for c in res.changes:
        if c["kind"] != "new":
            console.print(f"  {c['kind']}: {c['lid']} {c['old_vid']} -> {c['new_vid']}: {c['reason']}")
    console.print(f"release note: {res.note}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="archive")
