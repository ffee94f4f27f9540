"""Release packages for ISDA: :func:`make_release` (``xsm archive release NAME --from --to``).

A release (``archive.md`` §6, ``pds4.md`` §4) is written to ``<root>/releases/<NAME>/``::

    bundle/bundle_xsm.xml, bundle/readme.txt
    bundle/data_raw/collection_data_raw.xml + collection_data_raw_inventory.csv
    bundle/data_raw/YYYY/MM/DD/<level-1 files and labels>
    bundle/data_calibrated/...                             (same for level 2)
    daywise/ch2_xsm_YYYYMMDD_vN.zip + .xml + _zip.json     (the day zips of the span)
    release_manifest_NNN.csv   relative_path, lidvid, kind, day, version, size, md5, sha256,
                               supersedes_lidvid, reason (CRLF)
    bundle/miscellaneous/checksums_NNN.md5 + .xml           the bundle's checksum manifest (md5deep
                               format, paths relative to bundle/) and its Product_Ancillary label
    bundle/miscellaneous/collection_miscellaneous.xml + _inventory.csv
    checksums_NNN.md5          "<md5>  <relative path>" (md5deep/md5sum format), every file
    checksums_NNN.sha256       "<sha256>  <relative path>"
    transfer_manifest_NNN.tab  LIDVID and path, fixed width (pds-deep-archive style)
    changes_NNN.csv            lid, old_vid, new_vid, kind (new/data/label/withdrawn), reason,
                               caldbver_old, caldbver_new, swversion_old, swversion_new
    release_note_NNN.md        new and changed products and why
    deep_archive/              (--deep-archive) <bundle id>_v<vid>_checksum_manifest.tab,
                               _transfer_manifest.tab and _aip.xml (pds-deep-archive style)

The release takes the current version of every product of the days in the span. Before anything
is written it re-hashes every file against the catalog and validates every label; any problem
refuses the release (:class:`ReleaseRefused`, listing them all). Label validation must be full:
without the PDS4 schema files (XSD, Schematron) the release is refused with how to install them
(:class:`~xsm.schemas.locator.SchemaNotFoundError`), where ``verify`` would only warn. The package is assembled in a
temporary directory and renamed into place. Collection and bundle versions follow the previous
release: a changed inventory gives the next minor version (``pds4.md`` §2.3, §4).
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from xsm.archive import meta
from xsm.archive.catalog import open_catalog
from xsm.archive.verify import Problem, check_fixity, check_zip, validate_label_files
from xsm.labels.checksum import COLLECTION_MISCELLANEOUS
from xsm.products.errors import ArchiveError, ParameterError
from xsm.products.fitsio import atomic_path
from xsm.products.met import date_tag, parse_date
from xsm.schemas.locator import SchemaNotFoundError

log = logging.getLogger(__name__)

RELEASES_DIR = "releases"
MANIFEST_COLUMNS = ("relative_path", "lidvid", "kind", "day", "version", "size", "md5", "sha256",
                    "supersedes_lidvid", "reason")
#: Collection id (and key of the release's collections) of the checksum manifests.
MISC = "miscellaneous"
CHANGE_COLUMNS = ("lid", "old_vid", "new_vid", "kind", "reason", "caldbver_old", "caldbver_new",
                  "swversion_old", "swversion_new")


class ReleaseRefused(ArchiveError):
    """A release was refused; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"release refused: {len(problems)} problem(s); first: {problems[0]}")


@dataclass
class ReleaseResult:
    name: str
    number: int
    path: Path
    bundle_lidvid: str
    collections: dict[str, str]
    days: list[str]
    files: int
    changes: list[dict] = field(default_factory=list)
    note: Path | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "number": self.number, "path": str(self.path),
                "bundle": self.bundle_lidvid, "collections": self.collections, "days": self.days,
                "files": self.files, "changes": self.changes,
                "note": str(self.note) if self.note else None}


def _crlf_csv(rows: list[dict], columns) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\r\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue().encode("ascii", "replace")


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _minor_next(vid: str | None) -> str:
    if not vid:
        return "1.0"
    major, minor = (int(x) for x in vid.split("."))
    return f"{major}.{minor + 1}"


def _validate_fully(name: str, labels: list[Path], schematron: bool,
                    workers: int | None) -> tuple[list[Problem], list[Problem]]:
    """Label validation with the schema files required (a release for ISDA is fully validated)."""
    try:
        return validate_label_files(labels, schematron=schematron, workers=workers, require_schemas=True)
    except SchemaNotFoundError as exc:
        raise SchemaNotFoundError(f"release {name} refused: its labels must be validated against the PDS4 "
                                  f"schemas (XSD and Schematron), which are not available: {exc}") from None


def make_release(root: str | Path, name: str, day_from: str, day_to: str, *,
                 schematron: bool = True, workers: int | None = None,
                 description: str | None = None, deep_archive: bool = False) -> ReleaseResult:
    """Package the current products of days ``day_from``..``day_to`` as release ``name``.

    ``deep_archive``: also write the ``pds-deep-archive`` style package in ``deep_archive/``
    (:func:`_deep_archive`).

    Raises
    ------
    ReleaseRefused
        when any catalogued file's size/md5/sha256 differs, a file is missing, a zip member
        differs or any label fails validation (every problem listed, nothing written).
    SchemaNotFoundError
        when the PDS4 schema files are not configured or installed (nothing written).
    ParameterError
        bad span, no products in the span, or a release of that name exists.
    """
    from xsm.labels.bundle import InventoryEntry, make_bundle, make_collection, write_readme
    from xsm.labels.generate import ModificationDetail

    root = Path(root)
    d0, d1 = date_tag(parse_date(day_from)), date_tag(parse_date(day_to))
    if d1 < d0:
        raise ParameterError(f"release {name}: --to {d1} is before --from {d0}")
    if not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise ParameterError(f"release name {name!r}: letters, digits, '-', '_' and '.' only")
    target = root / RELEASES_DIR / name
    if target.exists():
        raise ParameterError(f"{target}: a release of that name exists already")
    with open_catalog(root, create=False) as cat:
        if cat.rows("SELECT 1 FROM releases WHERE name = ?", [name]):
            raise ParameterError(f"release {name} exists already in the catalog")
        rows = cat.rows("SELECT * FROM products WHERE source = 'built' AND current AND day BETWEEN ? AND ? "
                        "ORDER BY day, path", [d0, d1])
        if not rows:
            raise ParameterError(f"release {name}: no built products between {d0} and {d1}")
        prev = cat.rows("SELECT * FROM releases ORDER BY created DESC LIMIT 1")
        prev = prev[0] if prev else None
        number = cat.rows("SELECT count(*) AS n FROM releases")[0]["n"] + 1
        by_lidvid = {f"{r['lid']}::{r['vid']}": r for r in
                     cat.rows("SELECT * FROM products WHERE lid IS NOT NULL AND source = 'built'")}

        # ---- refuse on any fixity or label problem
        _, problems = check_fixity(root, rows)
        by_name = {Path(r["path"]).name: r for r in rows}
        for r in rows:
            if r["kind"] == "zip" and (root / r["path"]).is_file():
                problems += check_zip(root / r["path"], by_name)
        labels = [root / r["path"] for r in rows if r["kind"] == "label" and (root / r["path"]).is_file()]
        errs, _warns = _validate_fully(name, labels, schematron, workers)
        problems += errs
        if problems:
            raise ReleaseRefused(problems)

        # ---- assemble in a temporary directory
        nnn = f"{number:03d}"
        (root / RELEASES_DIR).mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root / RELEASES_DIR))
        try:
            bundle = tmp / "bundle"
            manifest: list[dict] = []
            members: dict[str, list[str]] = {"raw": [], "calibrated": []}
            days = sorted({r["day"] for r in rows})
            for r in rows:
                src = root / r["path"]
                if r["kind"] in ("zip",) or (r["kind"] == "label" and meta.day_version_of(src.name)
                                              and "_level" not in src.name):
                    rel = f"daywise/{src.name}"
                    _link_or_copy(src, tmp / rel)
                    if r["kind"] == "zip":
                        side = src.with_name(src.stem + "_zip.json")
                        if side.is_file():
                            _link_or_copy(side, tmp / "daywise" / side.name)
                else:
                    level = "raw" if "_level1" in src.name else "calibrated"
                    rel = f"bundle/data_{level}/{r['day'][:4]}/{r['day'][4:6]}/{r['day'][6:]}/{src.name}"
                    _link_or_copy(src, tmp / rel)
                    if r["kind"] != "label":
                        members[level].append(f"{r['lid']}::{r['vid']}")
                manifest.append({"relative_path": rel, "lidvid": f"{r['lid']}::{r['vid']}" if r["lid"] else "",
                                 "kind": r["kind"], "day": r["day"], "version": r["version"],
                                 "size": r["size"], "md5": r["md5"], "sha256": r["sha256"],
                                 "supersedes_lidvid": r["supersedes"], "reason": r["reason"]})

            # ---- collections and bundle, versions following the previous release
            prev_info = json.loads(prev["note"]) if prev and prev.get("note") else {}
            prev_coll = prev_info.get("collections", {})
            prev_members = prev_info.get("members", {})
            created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            collections: dict[str, str] = {}
            coll_results = {}
            for level in ("raw", "calibrated"):
                if not members[level]:
                    continue
                old_vid = prev_coll.get(level, "").split("::")[-1] if prev_coll.get(level) else None
                same = sorted(prev_members.get(level, [])) == sorted(members[level])
                vid = old_vid if (old_vid and same) else _minor_next(old_vid)
                hist = [ModificationDetail(h[0], h[1], h[2]) for h in prev_info.get("coll_history", {}).get(level, [])
                        if h[1] != vid]
                hist.append(ModificationDetail(created[:10], vid, f"release {name}"))
                cres = make_collection(bundle / f"data_{level}", level, vid,
                                       [InventoryEntry("P", m) for m in sorted(members[level])],
                                       history=hist, creation_date_time=created)
                collections[level] = cres.lidvid
                coll_results[level] = (cres, [(h.modification_date, h.version_id, h.description) for h in hist])
            # the miscellaneous collection holds this release's checksum manifest (written below,
            # once the files it lists exist); its LIDVID is known now for the bundle label
            misc_old = prev_coll.get(MISC, "").split("::")[-1] if prev_coll.get(MISC) else None
            misc_vid = _minor_next(misc_old)
            collections[MISC] = f"{COLLECTION_MISCELLANEOUS}::{misc_vid}"
            old_bvid = prev_info.get("bundle", "").split("::")[-1] if prev_info.get("bundle") else None
            bvid = _minor_next(old_bvid)
            readme = write_readme(bundle, f"Chandrayaan-2 XSM archive bundle, release {name}\n"
                                          f"Days {d0} to {d1}; {len(rows)} files.\n"
                                          "data_raw: level-1 science, housekeeping and sun-angle files.\n"
                                          "data_calibrated: level-2 GTI, spectra and light curves.\n")
            bhist = [ModificationDetail(*h) for h in prev_info.get("bundle_history", []) if h[1] != bvid]
            bhist.append(ModificationDetail(created[:10], bvid, description or f"release {name}"))
            blabel = make_bundle(bundle, bvid, [(lv, "miscellaneous" if k == MISC else "data")
                                                for k, lv in collections.items()],
                                 readme=readme, history=bhist, creation_date_time=created)
            bundle_lidvid = f"{meta.read_label(blabel).lid}::{bvid}"
            for level, (cres, _h) in coll_results.items():
                manifest += [_manifest_row(tmp, cres.label, "label", cres.lidvid, name),
                             _manifest_row(tmp, cres.inventory, "inventory", "", name)]
            manifest += [_manifest_row(tmp, blabel, "label", bundle_lidvid, name),
                         _manifest_row(tmp, readme, "readme", "", name)]

            misc_res, misc_hist, misc_files = _checksum_product(
                bundle, manifest, number, nnn, misc_vid, prev_info.get("coll_history", {}).get(MISC, []),
                name, created)
            members[MISC] = [lv for _p, kind, lv in misc_files if kind == "label"]
            coll_results[MISC] = (misc_res, misc_hist)
            manifest += [_manifest_row(tmp, p, kind, lv, name) for p, kind, lv in misc_files]
            manifest += [_manifest_row(tmp, misc_res.label, "label", misc_res.lidvid, name),
                         _manifest_row(tmp, misc_res.inventory, "inventory", "", name)]

            # ---- new labels of the bundle/collections must validate too
            # (the whole bundle together: the cross-label checks see every inventory member)
            errs, _ = _validate_fully(name, sorted(bundle.rglob("*.xml")), schematron, workers)
            if errs:
                raise ReleaseRefused(errs)

            # ---- change list against the previous release
            prev_lidvids: dict[str, str] = prev_info.get("lidvids", {})
            cur_lidvids = {r["lid"]: r["vid"] for r in rows if r["lid"]}
            changes = []
            for lid, vid in sorted(cur_lidvids.items()):
                old = prev_lidvids.get(lid)
                if old == vid:
                    continue
                r = by_lidvid.get(f"{lid}::{vid}", {})
                o = by_lidvid.get(f"{lid}::{old}", {}) if old else {}
                if old is None:
                    kind = "new"
                elif old.split(".")[0] != vid.split(".")[0]:
                    kind = "data"
                else:
                    kind = "label"
                changes.append({"lid": lid, "old_vid": old, "new_vid": vid, "kind": kind,
                                "reason": r.get("reason"), "caldbver_old": o.get("caldbver"),
                                "caldbver_new": r.get("caldbver"), "swversion_old": o.get("xsmswver"),
                                "swversion_new": r.get("xsmswver")})
            for lid, old in sorted(prev_lidvids.items()):
                if lid not in cur_lidvids and d0 <= (by_lidvid.get(f"{lid}::{old}", {}).get("day") or "") <= d1:
                    changes.append({"lid": lid, "old_vid": old, "new_vid": None, "kind": "withdrawn",
                                    "reason": "no longer in the archive"})

            # ---- manifests
            (tmp / f"release_manifest_{nnn}.csv").write_bytes(_crlf_csv(manifest, MANIFEST_COLUMNS))
            (tmp / f"changes_{nnn}.csv").write_bytes(_crlf_csv(changes, CHANGE_COLUMNS))
            md5_lines = "".join(f"{m['md5']}  {m['relative_path']}\r\n" for m in manifest)
            sha_lines = "".join(f"{m['sha256']}  {m['relative_path']}\r\n" for m in manifest)
            (tmp / f"checksums_{nnn}.md5").write_bytes(md5_lines.encode("ascii"))
            (tmp / f"checksums_{nnn}.sha256").write_bytes(sha_lines.encode("ascii"))
            width = max(len(m["lidvid"] or "") for m in manifest) + 2
            transfer = "".join(f"{(m['lidvid'] or '-'):<{width}}{m['relative_path']}\r\n"
                               for m in manifest if m["lidvid"])
            (tmp / f"transfer_manifest_{nnn}.tab").write_bytes(transfer.encode("ascii"))
            if deep_archive:
                _deep_archive(tmp, manifest, bundle_lidvid, name, schematron, workers)
            dayrows = {r["DayOfObs"]: r for r in cat.rows(
                "SELECT DayOfObs, sunstatus, procstatus FROM xsmdaywisedata WHERE DayOfObs BETWEEN ? AND ?",
                [d0, d1])}
            note = _release_note(name, nnn, d0, d1, days, rows, changes, bundle_lidvid, collections,
                                 _completeness(d0, d1, dayrows, days))
            (tmp / f"release_note_{nnn}.md").write_text(note, encoding="utf-8")
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

        info = {"bundle": bundle_lidvid, "collections": collections, "members": members,
                "lidvids": {**prev_lidvids, **cur_lidvids},
                "coll_history": {lv: h for lv, (_c, h) in coll_results.items()},
                "bundle_history": [(h.modification_date, h.version_id, h.description) for h in bhist]}
        cat.con.execute("INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [name, _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None), d0, d1,
                         bundle_lidvid, str(target.relative_to(root)), len(manifest), json.dumps(info)])
        cat.con.execute("UPDATE products SET release = coalesce(release, ?) WHERE source = 'built' AND "
                        "current AND day BETWEEN ? AND ?", [name, d0, d1])
    return ReleaseResult(name=name, number=number, path=target, bundle_lidvid=bundle_lidvid,
                         collections=collections, days=days, files=len(manifest), changes=changes,
                         note=target / f"release_note_{nnn}.md")


def _deep_archive(tmp: Path, manifest: list[dict], bundle_lidvid: str, name: str, schematron: bool,
                  workers: int | None) -> Path:
    """The OAIS package of the release bundle in the style of ``pds-deep-archive`` (``archive.md`` §6).

    Writes ``deep_archive/<bundle id>_v<version>_checksum_manifest.tab`` (``md5<TAB>path``, CRLF,
    every file of ``bundle/``), ``..._transfer_manifest.tab`` (LIDVID and label path, fixed width,
    CRLF) and ``..._aip.xml`` (``Product_AIP``), paths relative to the release directory. The AIP
    label must validate like every other label of the release. A ``Product_SIP_Deep_Archive`` is
    not written: it needs the URL the package is delivered from (``manifest_url``), which only
    the receiving archive can give.
    """
    from xsm.labels.checksum import deep_checksum_bytes, make_aip_label, transfer_manifest_bytes

    blid, bver = bundle_lidvid.split("::")
    stem = f"{blid.rsplit(':', 1)[1]}_v{bver}"
    out = tmp / "deep_archive"
    out.mkdir()
    in_bundle = [m for m in manifest if m["relative_path"].startswith("bundle/")]
    cm = out / f"{stem}_checksum_manifest.tab"
    tm = out / f"{stem}_transfer_manifest.tab"
    cm.write_bytes(deep_checksum_bytes((m["md5"], m["relative_path"]) for m in in_bundle))
    data, wl, wp = transfer_manifest_bytes(sorted((m["lidvid"], m["relative_path"]) for m in in_bundle
                                                  if m["lidvid"] and m["kind"] == "label"))
    tm.write_bytes(data)
    aip = make_aip_label(out / f"{stem}_aip.xml", checksum_manifest=cm, transfer_manifest=tm,
                         lidvid_width=wl, path_width=wp, bundle_lidvid=bundle_lidvid,
                         description=f"Archival information package of {bundle_lidvid}, release {name}")
    errs, _ = _validate_fully(name, [aip], schematron, workers)
    if errs:
        raise ReleaseRefused(errs)
    return out


def _checksum_product(bundle: Path, manifest: list[dict], number: int, nnn: str, coll_vid: str,
                      coll_history: list, name: str, created: str):
    """Write ``bundle/miscellaneous/checksums_NNN.md5`` (md5deep format, paths relative to the
    bundle root, every bundle file written so far), its ``Product_Ancillary`` label and the
    miscellaneous collection (label and inventory).

    The checksum file cannot list itself, its own label or the miscellaneous collection files
    (their checksums depend on it); the release-level ``checksums_NNN.md5`` lists them.

    Returns
    -------
    (CollectionResult, history tuples of the collection,
     [(path, manifest kind, LIDVID or ""), ...] of the checksum file and its label)
    """
    from xsm.labels.bundle import InventoryEntry, make_collection
    from xsm.labels.checksum import (CHECKSUM_MANIFEST_LID, checksum_manifest_version,
                                     make_checksum_manifest_label, md5deep_bytes)
    from xsm.labels.generate import ModificationDetail

    misc = bundle / "miscellaneous"
    misc.mkdir(parents=True, exist_ok=True)
    path = misc / f"checksums_{nnn}.md5"
    entries = [(m["md5"], m["relative_path"][len("bundle/"):]) for m in manifest
               if m["relative_path"].startswith("bundle/")]
    with atomic_path(path) as t:
        t.write_bytes(md5deep_bytes(entries))
    vid = checksum_manifest_version(number)
    label = make_checksum_manifest_label(path, version_id=vid, creation_date_time=created,
                                         history=[ModificationDetail(created[:10], vid, f"release {name}")])
    member = f"{CHECKSUM_MANIFEST_LID}::{vid}"
    hist = [ModificationDetail(h[0], h[1], h[2]) for h in coll_history if h[1] != coll_vid]
    hist.append(ModificationDetail(created[:10], coll_vid, f"release {name}"))
    cres = make_collection(misc, MISC, coll_vid, [InventoryEntry("P", member)], history=hist,
                           creation_date_time=created, template="collection_miscellaneous")
    return (cres, [(h.modification_date, h.version_id, h.description) for h in hist],
            [(path, "checksums", ""), (label, "label", member)])


def _manifest_row(tmp: Path, path: Path, kind: str, lidvid: str, name: str) -> dict:
    """Release-manifest row of a file the release itself writes (hashed now)."""
    md5, sha, size = meta.file_hashes(path)
    return {"relative_path": path.relative_to(tmp).as_posix(), "lidvid": lidvid, "kind": kind,
            "size": size, "md5": md5, "sha256": sha, "reason": f"release {name}"}


def _completeness(d0: str, d1: str, dayrows: dict, days: list[str]) -> list[str]:
    """Days of the span without data, without Sun or failed (``archive.md`` §6); runs of days
    with the same reason are given as ``first..last``."""
    a, b = parse_date(d0), parse_date(d1)
    status: list[tuple[str, str | None]] = []
    for i in range((b - a).days + 1):
        d = date_tag(a + _dt.timedelta(days=i))
        r = dayrows.get(d)
        why = None
        if r is None:
            why = "no data"
        elif r.get("procstatus") is False:
            why = "processing failed"
        elif r.get("sunstatus") is False:
            why = "Sun not observed (no calibrated products)"
        elif d not in days:
            why = "not built"
        status.append((d, why))
    out, i = [], 0
    while i < len(status):
        d, why = status[i]
        j = i
        while j + 1 < len(status) and status[j + 1][1] == why:
            j += 1
        if why is not None:
            span = d if j == i else f"{d}..{status[j][0]} ({j - i + 1} days)"
            out.append(f"{span}: {why}")
        i = j + 1
    return out


def _release_note(name, nnn, d0, d1, days, rows, changes, bundle_lidvid, collections,
                  completeness=()) -> str:
    lines = [f"# XSM release {name} ({nnn})", "",
             f"* Span: {d0} to {d1}; days with products: {len(days)} ({', '.join(days)})",
             f"* Bundle: `{bundle_lidvid}`"]
    lines += [f"* Collection {k}: `{v}`" for k, v in collections.items()]
    lines += [f"* Files: {len(rows)} archive files (data, labels, zips) plus bundle, collections, manifests",
              "", "## New and changed products", ""]
    if not changes:
        lines.append("No product changed since the previous release.")
    else:
        lines += ["| LID | old | new | change | why |", "|---|---|---|---|---|"]
        for c in changes:
            why = c.get("reason") or ""
            if c["kind"] == "data" and (c.get("caldbver_old") != c.get("caldbver_new")):
                why = f"{why} (CALDB {c.get('caldbver_old')} -> {c.get('caldbver_new')})"
            lines.append(f"| `{c['lid']}` | {c['old_vid'] or ''} | {c['new_vid'] or ''} | {c['kind']} | {why} |")
    lines += ["", "## Completeness", ""]
    if completeness:
        lines += [f"* {c}" for c in completeness]
    else:
        lines.append("Every day of the span has products.")
    return "\n".join(lines) + "\n"
