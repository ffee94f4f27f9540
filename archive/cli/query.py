"""Top-level catalog commands: ``xsm query "SQL"``, ``xsm find``, ``xsm addspec --where``."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import typer

from xsm.archive.cli.archive import ARCHIVE_OPTION
from xsm.archive.cli.common import console, handle_errors, print_json, print_table


def _emit(columns: list[str], rows: list[dict], fmt_json: bool, fmt_csv: bool, title: str) -> None:
    if fmt_json:
        print_json(rows)
    elif fmt_csv:
        w = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    else:
        print_table(rows, columns, title=title)


@handle_errors
def query_cmd(
    sql: str = typer.Argument(..., help="One SELECT statement (tables: products, xsmdaywisedata, "
                              "xsmorbitdata, spectra, flares, releases; view: rates)."),
    archive: Path = ARCHIVE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="JSON rows on stdout."),
    csv_out: bool = typer.Option(False, "--csv", help="CSV on stdout."),
) -> None:
    """Run SQL on a read-only connection to the catalog (writes are refused)."""
    from xsm.archive.catalog import run_query

    res = run_query(archive, sql)
    _emit(res.columns, res.as_dicts(), json_out, csv_out, title=f"{len(res.rows)} row(s)")


@handle_errors
def find_cmd(
    tfrom: str = typer.Option(None, "--from", help="Start: ISO UTC, MET seconds or 'MJD x'."),
    tto: str = typer.Option(None, "--to", help="End (a date alone means the end of that day)."),
    min_rate: float = typer.Option(None, "--min-rate", help="Seconds with 1 s rate >= this (counts/s)."),
    flare_class: str = typer.Option(None, "--flare-class", help="Flares at or above a GOES class (M1)."),
    min_exposure: float = typer.Option(None, "--min-exposure", help="Days with Sun exposure >= s."),
    product: str = typer.Option(None, "--product", help="Products of this kind (pha, lc, gti, ...)."),
    limit: int = typer.Option(None, "--limit", help="At most this many rows."),
    archive: Path = ARCHIVE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="JSON rows on stdout."),
    csv_out: bool = typer.Option(False, "--csv", help="CSV on stdout."),
) -> None:
    """Search the catalog by time, rate, flare class, exposure and product kind."""
    from xsm.archive.query import find, parse_bound

    res = find(archive, tfrom=parse_bound(tfrom), tto=parse_bound(tto, end=True),
               min_rate=min_rate, flare_class=flare_class, min_exposure=min_exposure,
               product=product, limit=limit)
    cols = res.columns
    if not (json_out or csv_out):  # the table: drop long text columns
        cols = [c for c in cols if c not in ("class_method", "md5", "lid")]
    _emit(cols, res.rows, json_out, csv_out, title=f"{len(res.rows)} {res.what}")


@handle_errors
def addspec_cmd(
    where: str = typer.Option(..., "--where", help="SQL condition on the spectra index "
                              "(columns: path, spec_num, day, version, tstart, tstop, exposure, counts)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output type-I spectrum (.pha); the ARF beside it."),
    archive: Path = ARCHIVE_OPTION,
    caldb: Path = typer.Option(None, "--caldb", envvar="XSM_CALDB",
                               help="CALDB root (on-axis area for area-corrected spectra)."),
    clobber: bool = typer.Option(False, "--clobber", help="Overwrite existing outputs."),
    json_out: bool = typer.Option(False, "--json", help="Summary as JSON."),
) -> None:
    """Add the type-II spectrum rows a query selects into one type-I spectrum with its ARF."""
    from xsm.archive.addspec import addspec_where

    res = addspec_where(archive, where, out, caldb=caldb, overwrite=clobber)
    if json_out:
        print_json(res)
    else:
        console.print(f"{res['n_spectra']} spectra from {res['n_files']} file(s), exposure "
                      f"{res['exposure']:.1f} s -> {res['pha']}" + (f" + {res['arf']}" if res.get('arf') else ""))


def register(root: typer.Typer) -> None:
    root.command("query")(query_cmd)
    root.command("find")(find_cmd)
    root.command("addspec")(addspec_cmd)
