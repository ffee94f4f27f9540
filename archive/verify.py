"""Fixity and validity of an archive: :func:`verify` (``xsm archive verify``).

Checks, each problem reported with the file and a rule id (nothing is fixed or rewritten):

* ``fixity.missing``: a catalogued file is absent;
* ``fixity.size`` / ``fixity.md5`` / ``fixity.sha256``: a file's size or hashes differ from the
  catalog (every file is re-hashed);
* ``catalog.unlisted``: a file in a day directory that the catalog does not know;
* ``zip.member``: a day zip whose member bytes differ from the catalogued product of that name,
  or that fails its CRC test;
* ``label.*``: every PDS4 label validated offline (:func:`xsm.labels.validate.validate_labels`:
  XSD, Schematron, size/md5 of the data file, FITS object offsets, ...). Without PDS4 schema
  files the XSD/Schematron checks are skipped: one ``label.schema.unavailable`` warning
  (:attr:`VerifyReport.schema_note`) says so and how to install them; the data checks still run.
"""
from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from xsm.archive import meta
from xsm.archive.catalog import CATALOG_DIR, CATALOG_NAME, open_catalog
from xsm.labels.validate import SCHEMA_UNAVAILABLE
from xsm.products.provenance import stream_digests

log = logging.getLogger(__name__)

#: Rule of the warning ``verify`` reports when labels were validated without the PDS4 schemas.
SCHEMA_RULE = f"label.{SCHEMA_UNAVAILABLE}"


@dataclass(frozen=True)
class Problem:
    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: [{self.rule}] {self.message}"


@dataclass
class VerifyReport:
    root: Path
    files: int = 0
    labels: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def schema_note(self) -> str:
        """Why the labels were not checked against the PDS4 schemas ('' when they were)."""
        return next((w.message for w in self.warnings if w.rule == SCHEMA_RULE), "")

    @property
    def schemas_checked(self) -> bool:
        """Labels were validated, XSD/Schematron included."""
        return self.labels > 0 and not self.schema_note

    def to_dict(self) -> dict:
        return {"root": str(self.root), "files": self.files, "labels": self.labels, "ok": self.ok,
                "schemas_checked": self.schemas_checked,
                "problems": [p.__dict__ for p in self.problems],
                "warnings": [p.__dict__ for p in self.warnings]}


def check_fixity(root: Path, rows: Iterable[dict], progress: Callable | None = None) -> tuple[int, list[Problem]]:
    """Re-hash the files of catalog ``rows``; (files checked, problems)."""
    problems: list[Problem] = []
    n = 0
    for r in rows:
        p = Path(r["path"])
        p = p if p.is_absolute() else root / p
        n += 1
        if progress:
            progress(1, None)
        if not p.is_file():
            problems.append(Problem(str(p), "fixity.missing", "catalogued file is absent"))
            continue
        md5, sha, size = meta.file_hashes(p)
        if r.get("size") is not None and size != r["size"]:
            problems.append(Problem(str(p), "fixity.size", f"size {size} != catalogued {r['size']}"))
        if r.get("md5") and md5 != r["md5"]:
            problems.append(Problem(str(p), "fixity.md5", f"md5 {md5} != catalogued {r['md5']}"))
        if r.get("sha256") and sha != r["sha256"]:
            problems.append(Problem(str(p), "fixity.sha256", f"sha256 {sha[:16]}... != catalogued {r['sha256'][:16]}..."))
    return n, problems


def check_zip(zpath: Path, by_name: dict[str, dict]) -> list[Problem]:
    """CRC test of a day zip and md5 of each member against the catalogued file of that name.

    Each member is read once: reading it to its end checks its CRC (``BadZipFile`` otherwise).
    """
    out: list[Problem] = []
    try:
        with zipfile.ZipFile(zpath) as zf:
            for info in zf.infolist():
                name = info.filename.rsplit("/", 1)[-1]
                try:
                    with zf.open(info) as f:
                        md5 = stream_digests(f, ("md5",))["md5"]
                except zipfile.BadZipFile:
                    out.append(Problem(str(zpath), "zip.member", f"member {info.filename} fails its CRC"))
                    continue
                row = by_name.get(name)
                if row is None:
                    out.append(Problem(str(zpath), "zip.member", f"member {name} is not catalogued"))
                    continue
                if md5 != row["md5"]:
                    out.append(Problem(str(zpath), "zip.member",
                                       f"member {name} md5 {md5} != catalogued {row['md5']}"))
    except (zipfile.BadZipFile, OSError) as exc:
        out.append(Problem(str(zpath), "zip.member", f"not a readable zip ({exc})"))
    return out


def validate_label_files(labels: list[Path], *, schematron: bool = True, workers: int | None = None,
                         require_schemas: bool = False) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) of the offline PDS4 validation of ``labels``.

    Without schema files the warnings include one ``label.schema.unavailable``; with
    ``require_schemas`` a :class:`~xsm.schemas.locator.SchemaNotFoundError` is raised instead.
    """
    from xsm.labels.validate import validate_labels

    if not labels:
        return [], []
    f = validate_labels([str(p) for p in labels], schematron=schematron, workers=workers,
                        require_schemas=require_schemas)
    def problem(x):
        where = x.location if x.location and x.location != x.label else ""
        return Problem(x.label or x.location, f"label.{x.rule}",
                       f"{where.replace(str(x.label), '').strip(' :')}: {x.message}" if where else x.message)

    errs = [problem(x) for x in f.errors]
    warns = [problem(x) for x in f.warnings]
    return errs, warns


def _unlisted(root: Path, known: set[str]) -> list[Problem]:
    out = []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        top = rel.split("/", 1)[0]
        if (rel == CATALOG_NAME or rel.startswith(CATALOG_NAME) or top in (CATALOG_DIR, "releases")
                or p.name.startswith(".") or not top.isdigit()):
            continue
        if p.name.endswith("_zip.json"):
            continue
        if rel not in known:
            out.append(Problem(str(p), "catalog.unlisted", "file in the archive but not in the catalog"))
    return out


def verify(root: str | Path, *, days: Iterable[str] | None = None, labels: bool = True,
           schematron: bool = True, workers: int | None = None,
           progress: Callable | None = None) -> VerifyReport:
    """Re-hash every catalogued file, validate every label, report fixity errors.

    Parameters
    ----------
    root : archive root
    days : restrict to these ``YYYYMMDD`` days (default: the whole archive)
    labels : validate the PDS4 labels
    schematron : include the Schematron rules in label validation
    """
    root = Path(root)
    rep = VerifyReport(root=root)
    with open_catalog(root, create=False) as cat:
        where, params = "true", []
        if days is not None:
            days = sorted(set(days))
            where = f"day IN ({', '.join('?' for _ in days)})"
            params = list(days)
        rows = cat.products(where, params)
    if progress:
        progress(0, len(rows))
    rep.files, problems = check_fixity(root, rows, progress)
    rep.problems += problems
    by_name = {Path(r["path"]).name: r for r in rows}
    for r in rows:
        if r["kind"] == "zip":
            p = root / r["path"]
            if p.is_file():
                rep.problems += check_zip(p, by_name)
    if days is None:
        rep.problems += _unlisted(root, {r["path"] for r in rows})
    if labels:
        lab = [root / r["path"] if not Path(r["path"]).is_absolute() else Path(r["path"])
               for r in rows if r["kind"] == "label"]
        lab = [p for p in lab if p.is_file()]
        rep.labels = len(lab)
        errs, warns = validate_label_files(lab, schematron=schematron, workers=workers)
        rep.problems += errs
        rep.warnings += warns
    return rep
