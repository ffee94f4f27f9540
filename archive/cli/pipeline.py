"""`xsm pipeline`: Automated processing: inbox, stages, failures, re-runs."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from xsm.archive.cli.archive import ARCHIVE_OPTION
from xsm.archive.cli.common import compat_option, console, handle_errors, mode_of, print_json, print_table

app = typer.Typer(help="Automated processing: inbox, stages, failures, re-runs.", no_args_is_help=True)

CALDB_OPTION = typer.Option(None, "--caldb", envvar="XSM_CALDB", help="CALDB root.")
UPLOAD_OPTION = typer.Option(None, "--upload-dir", envvar="XSM_UPLOAD_DIR",
                             help="Upload destination directory (default: no upload).")
KERNELS_OPTION = typer.Option(None, "--static-kernels",
                              help="LSK/PCK/FK/IK: meta-kernel or directory (default: the project's own).")


def _config(archive: Path, inbox: str | None = None, upload_dir: Path | None = None, caldb: Path | None = None,
            static_kernels: Path | None = None, compat: str | None = None, flush: bool = True):
    from xsm.archive.pipeline import PipelineConfig

    return PipelineConfig(root=archive, inbox=inbox, upload_dir=upload_dir, caldb=caldb,
                          static_kernels=static_kernels, mode=mode_of(compat),
                          flush=flush)


def _progress(quiet: bool):
    if quiet:
        return None

    def show(stage: str, item: str, ok: bool) -> None:
        mark = "[green]done[/]" if ok else "[red]failed[/]"
        console.print(f"{stage:<10} {escape(item)}: {mark}", highlight=False)

    return show


def _report(summary, json_out: bool) -> None:
    """Print a run's summary; exit 1 when any item failed."""
    if json_out:
        print_json(summary.to_dict())
    else:
        done = ", ".join(f"{k} {v}" for k, v in summary.done.items()) or "nothing to do"
        console.print(f"pipeline: {summary.synced} new package(s); done: {done}", highlight=False)
        if summary.failed:
            console.print(f"[red]{len(summary.failed)} failed[/] (see `xsm pipeline status`)")
    if summary.failed:
        raise typer.Exit(1)


@app.command("run")
@handle_errors
def run_cmd(
    inbox: str = typer.Option(..., "--inbox", "-i", envvar="XSM_INBOX",
                              help="Level-0 source: a directory or an http(s) URL with packages + triggers."),
    archive: Path = ARCHIVE_OPTION,
    upload_dir: Path = UPLOAD_OPTION,
    caldb: Path = CALDB_OPTION,
    static_kernels: Path = KERNELS_OPTION,
    watch: bool = typer.Option(False, "--watch", help="Keep polling the source (Ctrl-C to stop)."),
    interval: float = typer.Option(60.0, "--interval", help="Seconds between polls with --watch."),
    no_flush: bool = typer.Option(False, "--no-flush", help="Merge a day only when later data show it "
                                  "complete (default without --watch: merge every day whose sessions are in)."),
    compat: str = compat_option(),
    json_out: bool = typer.Option(False, "--json", help="Result as JSON."),
) -> None:
    """Sync the inbox and run every stage (download .. upload) until the queues are empty."""
    from xsm.archive.pipeline import run

    cfg = _config(archive, inbox, upload_dir, caldb, static_kernels, compat, flush=not no_flush)
    try:
        summary = run(cfg, watch=watch, interval_s=interval, progress=_progress(json_out))
    except KeyboardInterrupt:
        console.print("stopped; the next run resumes where this one stopped")
        raise typer.Exit(130) from None
    _report(summary, json_out)


@app.command("status")
@handle_errors
def status_cmd(
    archive: Path = ARCHIVE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Result as JSON."),
) -> None:
    """Items per stage and state, the failure list (error, log) and the days."""
    from xsm.archive.pipeline import STATES, status

    st = status(archive)
    if json_out:
        print_json(st)
        return
    print_table([{"stage": s, **c} for s, c in st["counts"].items()], ["stage", *STATES], title="queues")
    if st["failed"]:
        print_table(st["failed"], ["stage", "item", "attempts", "error", "log"], title="failures")
    else:
        console.print("no failure")
    if st["days"]:
        yn = {True: "yes", False: "no", None: "-"}
        print_table([{"day": d["day"], "v": d["version"],
                      **{k: yn[d[k]] for k in ("processed", "sun", "cal", "archived", "uploaded")},
                      "Sun exp. (s)": f"{d['sun_exposure']:.0f}" if d["sun_exposure"] is not None else "-"}
                     for d in st["days"]], title="days (pages: summary/days/<day>/index.html)")


@app.command("retry")
@handle_errors
def retry_cmd(
    item: str = typer.Argument(..., help="Package (SID), segment (SID_SS) or day (YYYYMMDD)."),
    from_stage: str = typer.Option(None, "--from-stage", help="Stage to restart from (default: the failed one)."),
    archive: Path = ARCHIVE_OPTION,
    upload_dir: Path = UPLOAD_OPTION,
    caldb: Path = CALDB_OPTION,
    static_kernels: Path = KERNELS_OPTION,
    compat: str | None = compat_option(),
    queue_only: bool = typer.Option(False, "--queue-only", help="Only queue it (the next run processes it)."),
    json_out: bool = typer.Option(False, "--json", help="Result as JSON."),
) -> None:
    """Put an item back into a stage's queue and process the queues."""
    from xsm.archive.pipeline import retry

    cfg = _config(archive, None, upload_dir, caldb, static_kernels, compat)
    queued = retry(cfg, item, from_stage)
    if not json_out:
        console.print(", ".join(f"{s} {escape(i)}" for s, i in queued) + ": queued", highlight=False)
    if not queue_only:
        _process_queues(cfg, json_out)


def _process_queues(cfg, json_out: bool) -> None:
    """Run the queued items through the stages, report, exit 1 when any failed."""
    from xsm.archive.pipeline import process

    summary = process(cfg, progress=_progress(json_out))
    _report(summary, json_out)


@app.command("rerun")
@handle_errors
def rerun_cmd(
    from_stage: str = typer.Option(..., "--from-stage", "--stage",
                                   help="Stage to restart from (download .. upload)."),
    days: str = typer.Option(None, "--days", help="D1..D2 (YYYY-MM-DD or YYYYMMDD; one day: D1)."),
    items: list[str] = typer.Option(None, "--item", help="An item (package, segment or day); repeat."),
    archive: Path = ARCHIVE_OPTION,
    upload_dir: Path = UPLOAD_OPTION,
    caldb: Path = CALDB_OPTION,
    static_kernels: Path = KERNELS_OPTION,
    compat: str | None = compat_option(),
    queue_only: bool = typer.Option(False, "--queue-only", help="Only queue (the next run processes them)."),
    json_out: bool = typer.Option(False, "--json", help="Result as JSON."),
) -> None:
    """Re-execute the items of a day range (or given items) from a stage on; downstream is rebuilt."""
    from xsm.archive.pipeline import rerun, retry
    from xsm.products.errors import ParameterError

    if bool(days) == bool(items):
        raise ParameterError("rerun: give either --days D1..D2 or --item ID")
    cfg = _config(archive, None, upload_dir, caldb, static_kernels, compat)
    if items:
        queued = [q for it in items for q in retry(cfg, it, from_stage)]
    else:
        d0, _, d1 = days.partition("..")
        queued = rerun(cfg, d0, d1 or d0, from_stage)
    if not json_out:
        console.print(f"{len(queued)} item(s) queued at {from_stage}", highlight=False)
    if not queue_only:
        _process_queues(cfg, json_out)


@app.command("pages")
@handle_errors
def pages_cmd(archive: Path = ARCHIVE_OPTION) -> None:
    """Regenerate the session pages and the index page from the products and the catalog."""
    from xsm.archive.pages import regenerate
    from xsm.archive.pipeline import PipelineConfig

    cfg = PipelineConfig(root=archive)
    out = regenerate(cfg.root, cfg.summary, cfg.path("sessions"))
    console.print(f"{len(out)} page(s) written; index: {out[-1]}", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="pipeline")
