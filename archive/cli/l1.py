"""`xsm l1`: Level-0 sessions to day-wise level-1 files (science, housekeeping, sun angle).

Thin shell over :func:`xsm.products.level0.build_level1` and :func:`xsm.products.hk.decode_hk`.
"""
from __future__ import annotations

from pathlib import Path

import typer

from xsm.archive.cli.common import (compat_option, console, handle_errors, mode_of, print_json, print_table,
                                    progress_bar)

app = typer.Typer(help="Level-0 sessions to day-wise level-1 files (science, housekeeping, sun angle).",
                  no_args_is_help=True)


@app.command("build")
@handle_errors
def build(
    sessions: list[Path] = typer.Argument(..., help="Level-0 session packages (.tar, .tar.gz) or .pld files, "
                                                    "in download order."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the day files."),
    version: int = typer.Option(1, "--version-number", help="Processing version in the file names (v1)."),
    decoder: str = typer.Option(None, "--decoder", help="Force a level-0 decoder (default: detected)."),
    day: list[str] = typer.Option(None, "--day", help="Only write this UTC day (YYYYMMDD; repeat)."),
    no_hk: bool = typer.Option(False, "--no-hk", help="Do not write the housekeeping files."),
    overwrite: bool = typer.Option(False, "--overwrite", "--clobber", help="Replace existing day files."),
    compat: str = compat_option("'xsmdas-1.2': XSMDAS 1.2 compatibility mode (no outlier guard)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable result on stdout."),
) -> None:
    """Decode level-0 sessions and write day-wise level-1 science and housekeeping files."""
    from xsm.products.level0 import build_level1

    with progress_bar("level 0 -> level 1", disable=as_json) as advance:
        res = build_level1(sessions, out, mode=mode_of(compat), version=version, decoder=decoder,
                           overwrite=overwrite, hk=not no_hk, days=day or None, progress=advance)
    if as_json:
        print_json(res.as_dict())
        return
    print_table([{"day": d.date, "rows": d.n_rows, "science": d.fits.name, "housekeeping": d.hk.name if d.hk else "-"}
                 for d in res.days], title=f"level 1 written to {out}")
    t = res.totals
    console.print(f"{t['n_records_total']} records, {t['n_valid']} valid (good fraction {t['good_fraction']:.4f}); "
                  f"bad CRC {t['n_bad_crc']}, sync losses {t['n_bad_sync']}, truncated {t['n_truncated']}, "
                  f"duplicates {t['n_duplicates']}, conflicts {t['n_dup_conflicts']}, "
                  f"time repaired {t['n_time_repaired']}, outliers {t['n_time_outliers']}", highlight=False)


@app.command("hk")
@handle_errors
def hk(
    l1file: Path = typer.Argument(..., help="Level-1 science file (ch2_xsm_YYYYMMDD_v1_level1.fits)."),
    out: Path = typer.Option(None, "--out", "-o", help="Output .hk file (default: beside the science file)."),
    overwrite: bool = typer.Option(False, "--overwrite", "--clobber", help="Replace an existing file."),
    compat: str = compat_option("'xsmdas-1.2': XSMDAS 1.2 compatibility mode (CREATOR, local DATE)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable result on stdout."),
) -> None:
    """Write the housekeeping file (.hk, 38 columns) decoded from a level-1 science file."""
    from xsm.products.hk import write_hk_for

    path, n = write_hk_for(l1file, out, overwrite=overwrite, mode=mode_of(compat))
    if as_json:
        print_json({"hk_file": str(path), "rows": n, "l1file": str(l1file)})
        return
    console.print(f"wrote {path} ({n} rows)", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="l1")
