"""`xsm labels`: PDS4 labels: generate from products, validate offline, install schemas."""
from __future__ import annotations

from pathlib import Path

import typer

from xsm.archive.cli.common import (console, err_console, exit_with_error, handle_errors, print_json,
                                    print_table)

app = typer.Typer(help="PDS4 labels: generate from products, validate offline, install schemas.", no_args_is_help=True)
schemas_app = typer.Typer(help="The official PDS4 schema files (never fetched from the network).",
                          no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")


@app.command("generate")
@handle_errors
def generate(
    files: list[Path] = typer.Argument(..., help="XSM FITS products (.fits .hk .sa .gti .pha .lc .arf)."),
    im: str = typer.Option("1B00", "--im", help="PDS4 information model: 1B00 (IM 1.11, ISDA's) or 1O00 (IM 1.24)."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Label file (one input) or directory; default: beside the data file."),
    lid: str | None = typer.Option(None, "--lid", help="LID to use instead of ISDA's pattern (one input)."),
    version_id: str | None = typer.Option(None, "--version-id", help="version_id M.n (default: N.0 from _vN_)."),
) -> None:
    """Write the PDS4 label of each product, filled from the file on disk."""
    from xsm.labels.generate import generate_label
    from xsm.products.errors import ParameterError

    if len(files) > 1 and (lid or (out is not None and not out.is_dir())):
        raise ParameterError("--lid and a file --out need a single input file")
    for f in files:
        path = generate_label(f, im, out=out, lid=lid, version_id=version_id)
        console.print(str(path), highlight=False, soft_wrap=True)


@app.command("validate")
@handle_errors
def validate(
    labels: list[Path] = typer.Argument(..., help="Label files or directories (searched for *.xml)."),
    as_json: bool = typer.Option(False, "--json", help="Findings as JSON on stdout."),
    no_data: bool = typer.Option(False, "--no-data", help="Skip the data checks (files, md5, offsets)."),
    no_schematron: bool = typer.Option(False, "--no-schematron", help="Skip the Schematron rules."),
    content: bool = typer.Option(False, "--content",
                                 help="Also read the tables through the label (pds4_tools) and compare with astropy."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Processes to use."),
    require_schemas: bool = typer.Option(False, "--require-schemas",
                                         help="Fail (exit 2) when the PDS4 schema files are not installed "
                                              "instead of running the data checks only."),
) -> None:
    """Validate labels offline: XSD, Schematron, data checks. Exit 1 when there are errors.

    Without the PDS4 schema files the XSD/Schematron checks are skipped with one
    `schema.unavailable` warning (unless --require-schemas).
    """
    from xsm.labels.validate import validate_labels
    from xsm.products.errors import InputFormatError

    for p in labels:
        if not p.exists():
            raise InputFormatError(f"{p}: no such label file or directory")
    findings = validate_labels(labels, data=not no_data, schematron=not no_schematron, content=content,
                               workers=workers, require_schemas=require_schemas)
    if as_json:
        print_json({"labels": findings.labels, "errors": len(findings.errors),
                    "warnings": len(findings.warnings),
                    "findings": [f.as_dict() for f in findings]})
    else:
        if findings.items:
            _findings_table(findings)
        console.print(f"{len(findings.labels)} label(s): {len(findings.errors)} error(s), "
                      f"{len(findings.warnings)} warning(s)", highlight=False)
    for f in findings:
        if f.rule == "xml.malformed":  # a label that is not XML at all: say so on one line too
            err_console.print(f"[bold red]error:[/] {f.location}: {f.message}", highlight=False, soft_wrap=True)
    if findings.errors:
        raise typer.Exit(1)


def _findings_table(findings) -> None:
    """Rule, severity, location, message; long paths and messages fold instead of being cut."""
    style = {"error": "red"}
    print_table([{"rule": f.rule, "severity": f"[{style.get(f.severity, 'yellow')}]{f.severity}[/]",
                  "location": f.location, "message": f.message} for f in findings],
                ["rule", "severity", "location", "message"], overflow="fold")


@schemas_app.command("install")
@handle_errors
def schemas_install(
    source: Path = typer.Option(..., "--from", help="Folder with PDS4_PDS_*.xsd/.sch and schematron_xslt2/."),
    dest: Path | None = typer.Option(None, "--dest", help="Target folder (default: the user data dir)."),
) -> None:
    """Copy the official schema files into the user data directory, with checksums."""
    from xsm.schemas.locator import install_schemas

    copied = install_schemas(source, dest)
    print_table([{"file": rel, "sha256": digest} for rel, digest in copied], ["file", "sha256"])


@schemas_app.command("where")
@handle_errors
def schemas_where() -> None:
    """Show which schema files would be used."""
    from xsm.schemas import locator

    base = locator.schema_dir()
    if base is None:
        exit_with_error(f"no PDS4 schema directory: {locator.INSTALL_HINT}", 2)
    rows = []
    for im in locator.information_models():
        for kind, fn in (("xsd", locator.xsd_path), ("sch", locator.sch_path)):
            try:
                rows.append({"im": im, "kind": kind, "path": str(fn(im))})
            except locator.SchemaNotFoundError:
                rows.append({"im": im, "kind": kind, "path": "(missing)"})
    print_table(rows, ["im", "kind", "path"], title=str(base))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="labels")
