"""`xsm caldb`: the calibration database: index, selection by time, publishing, certifying.

Thin shell over :mod:`xsm.caldb_manager` (``spec/caldb.md``). The CALDB root is ``--caldb`` or
``$XSM_CALDB``; times are ISO UTC (``2021-08-28T12:00:00``), ``MJD 59014`` or a MET number.
"""
from __future__ import annotations

import math
from pathlib import Path

import typer

from xsm.archive.cli.common import console, handle_errors, print_json, print_table, split_list

app = typer.Typer(help="The calibration database: index, selection by time, publishing, certifying.",
                  no_args_is_help=True)

CALDB_OPT = typer.Option(None, "--caldb", help="CALDB root (default: $XSM_CALDB).")
RULE_OPT = typer.Option("default", "--rule",
                        help="Selection rule: default (REF_TIME <= t), reference (XSMDAS 1.2: strict, first row "
                             "wins a tie) or quzcif (boundaries, all ties).")
VERSION_OPT = typer.Option(None, "--version", help="A published CALDB version (default: the current one).")
JSON_OPT = typer.Option(False, "--json", help="Machine-readable output on stdout.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="caldb")


def _root(caldb: Path | None) -> Path:
    from xsm.caldb_manager.context import resolve_root

    return resolve_root(caldb)


@app.command("select")
@handle_errors
def select_cmd(
    code: str = typer.Argument(..., help="Code name (GAIN, EBOUNDS, ABSCOEF, EFFAREAPAR, SYSERR, RMF, RSP_OPEN...)."),
    time: str = typer.Option(..., "--time", "-t", help="Observation time (ISO UTC, 'MJD x' or MET)."),
    tstop: str = typer.Option(None, "--tstop", help="Product stop time (the default rule refuses a validity "
                                                    "start inside the product)."),
    caldb: Path = CALDB_OPT,
    rule: str = RULE_OPT,
    expr: str = typer.Option(None, "--expr", help="quzcif boundary expression, e.g. 'TEC.eq.1.2.and.DETPOSR.eq.2'."),
    filter_: str = typer.Option(None, "--filter", help="FILTER to match (NONE rows are wildcards)."),
    detnam: str = typer.Option(None, "--detnam", help="DETNAM to match (quzcif)."),
    version: str = VERSION_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Select the file of CODE valid at a time, and explain why (candidates and verdicts)."""
    from xsm.caldb_manager.context import load_index
    from xsm.caldb_manager.select import select
    from xsm.products.met import parse_time

    root, index, name = load_index(_root(caldb), version)
    sel = select(index, code, parse_time(time), rule=rule, tstop=parse_time(tstop) if tstop else None,
                 boundaries=expr, filter=filter_, detnam=detnam)
    if as_json:
        d = sel.to_dict()
        d["version"] = name
        d["paths"] = [str(root / r.relpath()) for r in sel.chosen]
        print_json(d)
    else:
        console.print(sel.explain(), highlight=False, soft_wrap=True)
    if not sel.chosen:
        raise typer.Exit(1)


@app.command("context")
@handle_errors
def context_cmd(
    time: str = typer.Option(..., "--time", "-t", help="Observation time (ISO UTC, 'MJD x' or MET)."),
    tstop: str = typer.Option(None, "--tstop", help="Product stop time (checked by the default rule)."),
    caldb: Path = CALDB_OPT,
    rule: str = RULE_OPT,
    version: str = VERSION_OPT,
    explain: bool = typer.Option(False, "--explain", help="Show every candidate row and its verdict."),
    as_json: bool = JSON_OPT,
) -> None:
    """Print the calibration files a time selects (the pinned context a product records)."""
    from xsm.caldb_manager.context import calibration_context
    from xsm.products.met import met_to_utc_string, parse_time

    t = parse_time(time)
    ctx = calibration_context(t, caldb, rule=rule, tstop=parse_time(tstop) if tstop else None, version=version)
    if as_json:
        print_json(ctx.to_dict())
        return
    rows = [{"code": c, "file": p.name, "status": "ok"} for c, p in ctx.files.items()]
    rows += [{"code": c, "file": p.name, "status": "MISSING"} for c, p in ctx.missing.items()]
    rows += [{"code": c, "file": "-", "status": s.failure_message()} for c, s in ctx.selections.items()
             if c not in ctx.files and c not in ctx.missing]
    print_table(rows, ["code", "file", "status"],
                title=f"CALDB {ctx.version} at {met_to_utc_string(t)[:19]} (MET {t:.3f}), rule {ctx.rule}")
    console.print(f"root: {ctx.root}", highlight=False)
    if explain:
        console.print(ctx.explain(), highlight=False, soft_wrap=True)


@app.command("init")
@handle_errors
def init_cmd(
    directory: Path = typer.Argument(..., help="New CALDB root directory."),
    synthetic: bool = typer.Option(False, "--synthetic", help="Write the synthetic CALDB (every file type from "
                                                              "documented models) as the first version."),
    version: str = typer.Option(None, "--version", help="Version name (CALDBVER; default 20260101)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Create a CALDB: `--synthetic` writes every calibration type in the real formats."""
    from xsm.caldb_manager.publish import init_synthetic
    from xsm.products.errors import ParameterError

    if not synthetic:
        raise ParameterError("only 'xsm caldb init --synthetic DIR' is supported; to start from a release, "
                             "copy it and run 'xsm caldb publish'")
    res = init_synthetic(directory, version)
    if as_json:
        print_json({"root": str(directory), **res.to_dict()})
        return
    print_table([{"code": r.cnam, "file": r.file, "ref_time (MJD)": f"{r.ref_time:.1f}"} for r in res.added],
                title=f"synthetic CALDB {res.version} at {directory}")
    console.print(f"use it with: export XSM_CALDB={Path(directory).resolve()}", highlight=False)


@app.command("certify")
@handle_errors
def certify_cmd(
    files: list[Path] = typer.Argument(..., help="Calibration files, or a CALDB root / index file to certify "
                                                 "a whole release."),
    caldb: Path = typer.Option(None, "--caldb", help="CALDB whose published files count as duplicates."),
    code: str = typer.Option(None, "--code", help="Expected code name (default: from CCNM0001)."),
    version: str = VERSION_OPT,
    no_fitsverify: bool = typer.Option(False, "--no-fitsverify", help="Skip the fitsverify run."),
    as_json: bool = JSON_OPT,
) -> None:
    """Certify calibration files (keywords, layout, values, duplicates) or a whole release."""
    from xsm.caldb_manager.certify import certify_file, certify_release, known_hashes

    results = []
    hashes = known_hashes(caldb) if caldb else {}
    for f in files:
        if f.is_dir() or f.suffix == ".indx":
            results.append(certify_release(f, version, fitsverify=not no_fitsverify))
        else:
            results.append(certify_file(f, code=code, hashes=hashes, fitsverify=not no_fitsverify))
    if as_json:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            console.print(r.summary(), highlight=False, markup=False, soft_wrap=True)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command("publish")
@handle_errors
def publish_cmd(
    files: list[Path] = typer.Argument(..., help="Calibration files to add."),
    version: str = typer.Option(..., "--version", help="New version name (CALDBVER, e.g. 20260315)."),
    caldb: Path = CALDB_OPT,
    ref_time: list[str] = typer.Option(None, "--ref-time", help="FILE=TIME validity start overriding the file's "
                                                                "CVSD0001/CVST0001 (repeat)."),
    code: list[str] = typer.Option(None, "--code", help="FILE=CODE overriding CCNM0001 (repeat)."),
    note: str = typer.Option("", "--note", help="Note recorded in the version manifest."),
    no_fitsverify: bool = typer.Option(False, "--no-fitsverify", help="Skip the fitsverify run."),
    as_json: bool = JSON_OPT,
) -> None:
    """Publish calibration files as a new CALDB version (certified, atomic, immutable)."""
    from xsm.caldb_manager.publish import publish
    from xsm.products.errors import ParameterError
    from xsm.products.met import met_to_mjd, parse_time

    def pairs(values, what):
        out = {}
        for v in split_list(values):
            if "=" not in v:
                raise ParameterError(f"--{what} {v!r}: expected FILE={what.upper().replace('-', '_')}")
            k, x = v.split("=", 1)
            out[Path(k).name] = x
        return out

    rts = {k: float(met_to_mjd(parse_time(v))) for k, v in pairs(ref_time, "ref-time").items()}
    res = publish(_root(caldb), files, version, codes=pairs(code, "code"), ref_times=rts, note=note,
                  fitsverify=not no_fitsverify)
    if as_json:
        print_json(res.to_dict())
        return
    console.print(f"published CALDB version {res.version} (parent {res.parent or '-'})", highlight=False)
    print_table([{"code": r.cnam, "file": r.file, "ref_time (MJD)": f"{r.ref_time:.5f}", "action": "added"}
                 for r in res.added] + [{"code": r.cnam, "file": r.file, "ref_time (MJD)": f"{r.ref_time:.5f}",
                                         "action": "superseded (CAL_QUAL 5)"} for r in res.superseded])
    for rep in res.reports:
        for w in rep.warnings:
            console.print(f"warning: {rep.path.name}: {w.message}", highlight=False, markup=False)


@app.command("versions")
@handle_errors
def versions_cmd(caldb: Path = CALDB_OPT, as_json: bool = JSON_OPT) -> None:
    """List the published versions (the current one marked)."""
    from xsm.caldb_manager.publish import versions

    vs = versions(_root(caldb))
    if as_json:
        print_json([v.to_dict() for v in vs])
        return
    print_table([{"version": v.version + (" *" if v.current else ""), "parent": v.parent or "-",
                  "created": v.created, "files": v.files, "added": v.added, "superseded": v.superseded,
                  "note": v.note} for v in vs], title="CALDB versions (* = current)")


@app.command("diff")
@handle_errors
def diff_cmd(v1: str = typer.Argument(...), v2: str = typer.Argument(...), caldb: Path = CALDB_OPT,
             as_json: bool = JSON_OPT) -> None:
    """Rows added, removed, superseded and files changed from version V1 to V2."""
    from xsm.caldb_manager.diff import diff_versions

    d = diff_versions(v1, v2, caldb=_root(caldb))
    if as_json:
        print_json(d)
        return
    rows = [{"change": "added", **r} for r in d["added"]] + [{"change": "removed", **r} for r in d["removed"]]
    rows += [{"change": f"quality {r['quality_from']} -> {r['quality']}", **r} for r in d["requalified"]]
    print_table(rows, ["change", "code", "file", "ref_time", "quality"], title=f"CALDB {v1} -> {v2}")
    for c in d["files_changed"]:
        console.print(f"{c['code']} at MJD {c['ref_time']:.5f}: {c['old']} -> {c['new']}", highlight=False)
        for col in c.get("columns") or []:
            if "max_abs" in col:
                console.print(f"  {col['extension']}.{col['column']}: {col['rows_changed']} rows, max |diff| "
                              f"{col['max_abs']:.4g}, max rel {col['max_rel']:.4g}", highlight=False)
            else:
                console.print(f"  {col['extension']}.{col['column'] or ''}: {col['change']}", highlight=False)


@app.command("history")
@handle_errors
def history_cmd(code: str = typer.Argument(...), caldb: Path = CALDB_OPT, as_json: bool = JSON_OPT) -> None:
    """Every file of CODE across versions: added in, superseded in, validity start."""
    from xsm.caldb_manager.publish import history

    h = history(_root(caldb), code)
    if as_json:
        print_json(h)
        return
    print_table([{"file": e["file"], "ref_time (MJD)": f"{e['ref_time']:.5f}", "added": e["added"],
                  "superseded": e["superseded"] or "-", "desc": e["desc"]} for e in h], title=f"history of {code}")


@app.command("affected")
@handle_errors
def affected_cmd(v1: str = typer.Argument(...), v2: str = typer.Argument(...),
                 codes: list[str] = typer.Option(None, "--code", help="Only these code names (repeat)."),
                 caldb: Path = CALDB_OPT, as_json: bool = JSON_OPT) -> None:
    """Observation-time intervals whose calibration selection changes from V1 to V2."""
    from xsm.caldb_manager.diff import affected_intervals
    from xsm.products.met import met_to_utc_string

    ivs = affected_intervals(v1, v2, split_list(codes) or None, caldb=_root(caldb))
    if as_json:
        print_json([iv.to_dict() for iv in ivs])
        return

    def t(x: float) -> str:
        return "-inf" if x == -math.inf else "+inf" if x == math.inf else str(met_to_utc_string(x))[:19]

    print_table([{"code": iv.code, "from": t(iv.start), "to": t(iv.stop), "old": iv.old_file or "-",
                  "new": iv.new_file or "-"} for iv in ivs], title=f"affected intervals {v1} -> {v2}")


@app.command("verify")
@handle_errors
def verify_cmd(caldb: Path = CALDB_OPT) -> None:
    """Check a versioned CALDB: current pointer, snapshots, file hashes (immutability)."""
    from xsm.caldb_manager.publish import verify

    problems = verify(_root(caldb))
    for p in problems:
        console.print(f"problem: {p}", highlight=False, markup=False)
    if problems:
        raise typer.Exit(1)
    console.print("CALDB consistent", highlight=False)


@app.command("cif")
@handle_errors
def cif_cmd(index: Path = typer.Argument(..., help="An index file (either form) or a CALDB root."),
            out: Path = typer.Argument(..., help="Output index file."),
            form: str = typer.Option("ogip", "--form", help="ogip (full CAL/GEN/92-008 CIF) or xsm.")) -> None:
    """Convert an index between the XSM form and the full OGIP CIF (boundaries from the files)."""
    from xsm.caldb_manager.index import read_index, write_index
    from xsm.caldb_manager.layout import caldb_root_of, index_path
    from xsm.caldb_manager.publish import ogip_from_files

    p = index_path(index)
    idx = read_index(p)
    if form == "ogip" and idx.form == "xsm":
        idx = ogip_from_files(idx, caldb_root_of(p))
    write_index(idx, out, form=form)
    console.print(f"wrote {out} ({form}, {len(idx)} rows)", highlight=False)
