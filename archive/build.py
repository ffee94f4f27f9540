"""The day-wise archive: :func:`build_day` (``xsm archive build-day DATE``), ``archive.md`` §1-2.

Layout under the archive root::

    YYYY/MM/DD/raw/ch2_xsm_YYYYMMDD_vN_level1.{fits,hk,sa} + ..._level1_{fits,hk,sa}.xml
    YYYY/MM/DD/calibrated/ch2_xsm_YYYYMMDD_vN_level2.{gti,pha,lc} + ..._level2_{gti,pha,lc}.xml
    YYYY/MM/DD/ch2_xsm_YYYYMMDD_vN.zip + ch2_xsm_YYYYMMDD_vN.xml + ch2_xsm_YYYYMMDD_vN_zip.json
    archive.duckdb, catalog/rates/...                       (the catalog, :mod:`.catalog`)

Versions [P] (``pds4.md`` §2.3, ``archive.md`` §6). Every product carries a *build key*, a
sha256 of what determines its content:

* raw (level 1): the content fingerprint of the level-1 file (data bytes and the header cards
  except DATE, FILENAME, CHECKSUM/DATASUM; so the software version and mode recorded in the
  header count, the processing date does not);
* calibrated (level 2): the raw keys, the software version, the mode, the standard parameters
  (``products.md`` §9) and the calibration files the day selects (code name, basename, sha256).

A rebuild whose keys equal the catalogued current version changes nothing (no file is
written). A changed key makes the next major version of that product (``_v2_``, ``2.0``,
``Modification_History`` listing every version, the reason recorded); files of earlier
versions are never touched. A CALDB change therefore makes new calibrated versions of exactly
the days whose selected calibration files change. The day zip gets a new version whenever one
of its members does.

Everything is made in a staging directory inside the archive root and moved into place only
when the whole day succeeded, then catalogued. Crash safety: the day's catalog changes are one
DuckDB transaction, and before any file enters the day directory its path is listed in the
day's build journal (``.build_YYYYMMDD.journal.json`` in the root, :func:`roll_back_journal`).
A build that fails rolls its files back at once; one killed between moving files and committing
leaves the journal, and the next build of the day removes the files the catalog does not
know before it plans versions, so it makes the same v1 as an uninterrupted build.

The catalog's single write lock is held only to plan (briefly) and to commit: the products,
labels and zip are made in the stage with no catalog connection open, so queries from other
processes do not wait for a build. The commit re-reads the current versions; when another build
of the day committed meanwhile, the plan is stale and the build fails (ArchiveError, nothing
written) rather than make a duplicate version.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xsm.archive import meta
from xsm.archive.catalog import Catalog, open_catalog
from xsm.archive.ingest import index_file
from xsm.products.errors import ArchiveError, InputFormatError, ParameterError
from xsm.products.fitsio import INPUT_MD5_LINE, atomic_path
from xsm.products.met import date_tag, day_start_met, parse_date
from xsm.products.ownership import make_owned_dir, owner_gone
from xsm.products.provenance import SOFTWARE_VERSION, Mode, recorded_inputs

log = logging.getLogger(__name__)

RAW_KINDS = ("fits", "hk", "sa")
CAL_KINDS = ("gti", "pha", "lc")
#: Header keywords that do not count in a product's content fingerprint.
VOLATILE_KEYS = {"DATE", "FILENAME", "CHECKSUM", "DATASUM"}

#: The official archive's standard product parameters (``products.md`` §9).
STANDARD_PARAMETERS = {
    "gti": {"filterfile": "standard", "usesunang": True, "usergtifile": None},
    "pha": {"spectype": "II", "chantype": "PI", "tbinsize": 60.0, "tstart": 0.0, "tstop": 0.0,
            "areascal": True, "genarf": False, "addsyserror": True},
    "lc": {"lctype": "standard", "tbinsizesec": 1, "areascal": True, "enesel": True,
           "enelow": 0.5, "enehigh": 15.0},
}


def day_dir(root: str | Path, day: str) -> Path:
    """``<root>/YYYY/MM/DD`` of a ``YYYYMMDD`` day."""
    return Path(root) / day[:4] / day[4:6] / day[6:8]


def product_name(day: str, version: int, kind: str) -> str:
    """Archive file name of a product kind (``ch2_xsm_YYYYMMDD_vN_level2.lc``)."""
    level = 1 if kind in RAW_KINDS else 2
    return f"ch2_xsm_{day}_v{version}_level{level}.{kind}"


def zip_name(day: str, version: int) -> str:
    return f"ch2_xsm_{day}_v{version}.zip"


def content_fingerprint(path: str | Path) -> str:
    """sha256 of a FITS file's content that matters (``VOLATILE_KEYS``, file-name HISTORY and the
    inputs' md5 aside)."""
    from astropy.io import fits

    h = hashlib.sha256()
    try:
        with fits.open(path, memmap=True) as hdul, open(path, "rb") as raw:
            for i, hdu in enumerate(hdul):
                for card in hdu.header.cards:
                    if card.keyword in VOLATILE_KEYS:
                        continue
                    text = str(card.value)
                    if card.keyword == "HISTORY" and INPUT_MD5_LINE.match(text):
                        continue  # the inputs' md5 follow their volatile DATE/CHECKSUM
                    if card.keyword == "HISTORY" and "ch2_xsm_" in text:
                        # file names carry the version: keep only the parameter name
                        text = text.split("=", 1)[0]
                    h.update(f"{card.keyword}={text}\n".encode())
                info = hdul.fileinfo(i)
                raw.seek(info["datLoc"])
                left = info["datSpan"]
                while left > 0:
                    b = raw.read(min(left, 1 << 20))
                    if not b:
                        break
                    h.update(b)
                    left -= len(b)
    except (OSError, ValueError, KeyError) as exc:
        raise InputFormatError(f"{path}: cannot fingerprint ({str(exc).splitlines()[0]})") from None
    return h.hexdigest()


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class ProductBuild:
    """One product of a day build."""

    kind: str
    path: Path
    label: Path
    version: int
    lidvid: str
    status: str  # 'new' (first version), 'changed' (new version), 'unchanged'
    reason: str | None = None
    supersedes: str | None = None


@dataclass
class DayBuild:
    """Result of :func:`build_day`."""

    day: str
    version: int
    changed: bool
    products: list[ProductBuild] = field(default_factory=list)
    zip: Path | None = None
    zip_label: Path | None = None
    sun: bool = True
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"day": self.day, "version": self.version, "changed": self.changed, "sun": self.sun,
                "zip": str(self.zip) if self.zip else None,
                "products": [{"kind": p.kind, "path": str(p.path), "version": p.version,
                              "status": p.status, "reason": p.reason} for p in self.products],
                "reasons": self.reasons}


# ---------------------------------------------------------------------------------- inputs

def find_level1(source: str | Path, day: str) -> dict[str, Path]:
    """The day's level-1 ``.fits``/``.hk``/``.sa`` in a directory (any version: the highest)."""
    src = Path(source)
    out: dict[str, Path] = {}
    for kind in RAW_KINDS:
        cands = sorted(src.glob(f"ch2_xsm_{day}_v*_level1.{kind}"),
                       key=lambda p: meta.day_version_of(p.name)[1] or 0)
        if cands:
            out[kind] = cands[-1]
    missing = [k for k in RAW_KINDS if k not in out]
    if missing:
        raise InputFormatError(f"{src}: no level-1 {', '.join('.' + m for m in missing)} file of {day}")
    return out


def _level1_from_sessions(sessions: Sequence[Path], day: str, work: Path, mode: Mode,
                          kernels) -> tuple[dict[str, Path], list[dict]]:
    """Level-1 ``.fits``/``.hk`` of ``day`` from level-0 sessions, ``.sa`` from the kernels.

    Returns the three paths and the orbit-wise rows of the segments (``archive.md`` §4.2).
    """
    from xsm.products import geometry, level0

    if kernels is None:
        raise ParameterError("build-day from level-0 sessions needs the SPICE kernels (--kernels: "
                             "a meta-kernel or kernel files) for the sun-angle file")
    res = level0.build_level1([Path(s) for s in sessions], work, mode=mode, days=[day])
    files = [d for d in res.days if str(d.date).replace("-", "") == day]
    if not files:
        raise InputFormatError(f"no frame of {day} in the level-0 sessions given "
                               f"({', '.join(Path(s).name for s in sessions)})")
    df = files[0]
    sa, _angles = geometry.make_sa_file(df.fits, kernels, mode=mode)
    l1 = {"fits": Path(df.fits), "hk": Path(df.hk), "sa": Path(sa)}
    segments = []
    for seg in res.segments:
        name = seg["L0File"]  # <SID>_<SS>.pld (level0.md §3.2)
        stem = name[:-4] if name.endswith(".pld") else name
        sid, _, ss = stem.rpartition("_")
        sid = sid or stem
        row = {"L0File": name, "SessionId": sid, "Segment": ss,
               "Station": sid[5:8] if len(sid) >= 8 else None,
               "Orbit": int(sid[11:16]) if len(sid) >= 16 and sid[11:16].isdigit() else None,
               "procstatus": True, "Days": [day], "stats": seg.get("stats") or {},
               "ProcessedAt": _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)}
        segments.append(row)
    return l1, segments


def _filter_sha() -> str:
    from xsm.products import gti as G
    from xsm.products.provenance import file_sha256

    return file_sha256(G.standard_filter_path())


def calibration_key(caldb, tstart: float, mode: Mode) -> tuple[dict, str | None]:
    """Calibration files the day selects: ``{code: {"file": basename, "sha256": ...}}``, version."""
    from xsm.caldb_manager.context import calibration_context
    from xsm.products.provenance import file_sha256

    # the same selection level 2 makes: at the first frame, the mode's rule
    ctx = calibration_context(tstart, caldb, rule=mode)
    files = {code: {"file": p.name, "sha256": file_sha256(p)} for code, p in sorted(ctx.files.items())}
    return files, ctx.version


# ---------------------------------------------------------------------------------- level 2

def make_level2(level1: dict[str, Path], out_dir: Path, names: dict[str, str], *, caldb, mode: Mode,
                input_md5: Mapping[str, str] | None = None) -> dict[str, Path]:
    """The standard calibrated products of a day (``products.md`` §9) into ``out_dir``.

    One decode of the day through :func:`xsm.products.level2.make_standard_products` with the
    official archive recipe (type-II PI spectrum, 60 s, area-corrected, no ARF; 1 s light curve,
    area-scaled, 0.5-15 keV) and the archive names given in ``names`` (kind -> file name).

    Returns ``{kind: path}`` for ``gti``, ``pha``, ``lc``; ``{}`` when the Sun was never
    observed (empty standard GTI): then the day has no calibrated products. ``input_md5``
    (level-1 basename -> md5) is recorded in each product's provenance block.
    """
    from xsm.products import level2 as L2

    std = STANDARD_PARAMETERS
    base = dict(names)
    base.setdefault("arf", names["pha"].replace(".pha", ".arf"))
    base.setdefault("hr", names["lc"].replace(".lc", "_hr.lc"))
    params = _ArchiveParams(mode=mode, spectrum="areascal" if std["pha"]["areascal"] else "arf",
                            spec_tbinsize=int(std["pha"]["tbinsize"]),
                            lc_tbinsizesec=int(std["lc"]["tbinsizesec"]),
                            lc_enelow=std["lc"]["enelow"], lc_enehigh=std["lc"]["enehigh"],
                            products=CAL_KINDS, archive_names=tuple(sorted(base.items())))
    day = L2.load_day(level1["fits"], level1["hk"], level1["sa"])
    prod = L2.make_standard_products(day, caldb, params)
    if prod.gti.empty or prod.spectrum is None:
        return {}
    with recorded_inputs(input_md5 or {}):
        paths = L2.write_standard_products(prod, out_dir)
    return {k: Path(v) for k, v in paths.items() if k in CAL_KINDS}


def _archive_params_class():
    from xsm.products.level2 import StandardParams

    @dataclass(frozen=True)
    class ArchiveParams(StandardParams):
        """Standard parameters with per-product archive names (products may differ in version)."""

        archive_names: tuple = ()

        def names(self, date_tag: str) -> dict[str, str]:
            return dict(self.archive_names)

    return ArchiveParams


def _ArchiveParams(**kw):
    return _archive_params_class()(**kw)


# ---------------------------------------------------------------------------------- zip

def write_day_zip(zip_path: Path, day: str, version: int, members: Sequence[tuple[str, Path]],
                  processing_date: _dt.date) -> Path:
    """Deterministic day zip (``archive.md`` §1): sorted entries, deflate, fixed timestamps.

    ``members``: ``(subdir, path)`` with ``subdir`` ``raw`` or ``calibrated``; entries are
    ``ch2_xsm_YYYYMMDD_vN/xsm/data/YYYY/MM/DD/<subdir>/<name>``.
    """
    top = f"ch2_xsm_{day}_v{version}/xsm/data/{day[:4]}/{day[4:6]}/{day[6:8]}"
    stamp = (processing_date.year, processing_date.month, processing_date.day, 0, 0, 0)
    entries = sorted((f"{top}/{sub}/{p.name}", p) for sub, p in members)
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for arc, p in entries:
                info = zipfile.ZipInfo(arc, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with open(p, "rb") as f, zf.open(info, "w") as out:
                    shutil.copyfileobj(f, out, 1 << 20)
    return zip_path


# ---------------------------------------------------------------------------------- stages
#: Name prefix of a build's staging folder in the archive root (``.build_YYYYMMDD_XXXX``).
STAGE_PREFIX = ".build_"


def remove_dead_stages(root: str | Path) -> list[Path]:
    """Remove the staging folders of builds whose process is gone (killed runs); returns them.

    A stage of a running build, of another host or without an owner record is left alone.
    """
    removed = []
    for d in Path(root).glob(f"{STAGE_PREFIX}*"):
        if d.is_dir() and owner_gone(d):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    if removed:
        log.warning("removed %d staging folder(s) of killed builds in %s", len(removed), root)
    return removed


# ---------------------------------------------------------------------------------- journal
def journal_path(root: str | Path, day: str) -> Path:
    """The build journal of ``day`` (``YYYYMMDD``) in the archive ``root``."""
    return Path(root) / f".build_{day}.journal.json"


def _journal_add(journal: Path, paths: Sequence[Path]) -> None:
    """List ``paths`` in the journal (rewritten atomically) before they enter the archive."""
    old = json.loads(journal.read_text())["paths"] if journal.exists() else []
    with atomic_path(journal) as tmp:
        tmp.write_text(json.dumps({"paths": [*old, *(str(p) for p in paths)]}, indent=1) + "\n")


def _remove_listed(journal: Path) -> list[Path]:
    """Delete the files the journal lists, then the journal; returns the removed paths."""
    removed = [Path(p) for p in json.loads(journal.read_text())["paths"]]
    removed = [p for p in removed if p.is_file()]
    for p in removed:
        p.unlink()
    journal.unlink()
    return removed


def roll_back_journal(cat: Catalog, root: Path, day: str) -> list[Path]:
    """Finish a build of ``day`` that stopped between moving files in and committing.

    The catalog transaction is all-or-nothing: when none of the listed files has a catalog row,
    the build did not commit and its files are removed; otherwise it did, and only the journal
    goes. Returns the removed paths.
    """
    journal = journal_path(root, day)
    if not journal.exists():
        return []
    try:
        listed = [Path(p) for p in json.loads(journal.read_text())["paths"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(f"{journal}: unreadable build journal ({exc}); remove the day's uncatalogued "
                           "files by hand (`xsm archive verify`), then the journal") from None
    rels = [cat.rel(p) for p in listed]
    known = cat.rows(f"SELECT count(*) AS n FROM products WHERE path IN ({', '.join('?' for _ in rels)})",
                     rels)[0]["n"] if rels else 0
    if known:
        journal.unlink()
        return []
    removed = _remove_listed(journal)
    if removed:
        log.warning("day %s: %d file(s) of an interrupted build removed (%s)", day, len(removed), journal.name)
    return removed


# ---------------------------------------------------------------------------------- build

def _current(cat: Catalog, day: str, kind: str) -> dict | None:
    r = cat.rows("SELECT * FROM products WHERE day = ? AND kind = ? AND source = 'built' "
                 "ORDER BY version DESC LIMIT 1", [day, kind])
    return r[0] if r else None


def _reason_for(kind: str, old: dict | None, new_params: dict, old_params: dict | None) -> str:
    if old is None:
        return f"Created by xsm {SOFTWARE_VERSION}"
    why = []
    op = old_params or {}
    if op.get("software") != new_params.get("software"):
        why.append(f"software change ({op.get('software')} -> {new_params.get('software')})")
    if op.get("mode") != new_params.get("mode"):
        why.append(f"mode change ({op.get('mode')} -> {new_params.get('mode')})")
    if kind in CAL_KINDS:
        oc, nc = op.get("caldb_files") or {}, new_params.get("caldb_files") or {}
        diff = sorted(c for c in set(oc) | set(nc) if oc.get(c) != nc.get(c))
        if diff:
            names = ", ".join(f"{c} {(oc.get(c) or {}).get('file')} -> {(nc.get(c) or {}).get('file')}"
                              for c in diff)
            why.append(f"CALDB change ({op.get('caldbver')} -> {new_params.get('caldbver')}: {names})")
        if op.get("raw") != new_params.get("raw"):
            why.append("level-1 data changed")
        if op.get("standard") != new_params.get("standard"):
            why.append("standard parameters changed")
    elif op.get("fingerprint") != new_params.get("fingerprint"):
        why.append("level-1 data changed")
    return "; ".join(why) or "rebuilt"


def build_day(root: str | Path, day: str, *, level1: str | Path | dict | None = None,
              sessions: Sequence[str | Path] = (), kernels=None, caldb: str | Path | None = None,
              mode: Mode = Mode.DEFAULT, processing_date: _dt.date | None = None,
              im: str = "1B00",
              progress: Callable[[str], None] | None = None) -> DayBuild:
    """Build (or rebuild) one day of the archive; idempotent.

    Three phases, so that the catalog's single write lock is held only briefly: *plan* (a
    short-lived catalog connection: finish an interrupted build, read the current versions),
    *make* (new products and labels in the stage, no catalog connection open: other processes
    query the catalog meanwhile) and *commit* (the write connection: check the plan is still
    current, journal, move into place, catalogue in one transaction).

    Parameters
    ----------
    root : archive root
    day : ``YYYY-MM-DD`` or ``YYYYMMDD``
    level1 : directory holding the day's level-1 files, or ``{kind: path}``
    sessions : level-0 session packages to build level 1 from (when ``level1`` is not given);
        their segments are recorded in the orbit-wise table
    kernels : SPICE meta-kernel or kernel files for the sun-angle file (with ``sessions``)
    caldb : CALDB root (default ``$XSM_CALDB``)
    mode : processing mode
    processing_date : date stamped on new labels and zip entries (default: today, UTC)
    im : PDS4 information model of the labels

    Returns
    -------
    DayBuild
        ``changed`` is False when nothing had to be written (a no-op rebuild).

    Raises
    ------
    InputFormatError
        Missing or unreadable inputs.
    ArchiveError
        A file of a new version exists already (never overwritten), or another build of the
        day committed since this one planned its versions (a stale plan: nothing is written).
    """
    from xsm.labels.generate import generate_label, make_zip_label
    from xsm.labels.lidvid import product_lid_for_file

    root = Path(root).resolve()  # the stage lives inside root: relative paths would nest twice
    day = date_tag(parse_date(day))
    pdate = processing_date or _dt.datetime.now(_dt.timezone.utc).date()
    note = progress or (lambda s: None)
    if level1 is None and not sessions:
        raise ParameterError("build-day: give the level-1 directory or level-0 sessions")
    root.mkdir(parents=True, exist_ok=True)
    remove_dead_stages(root)
    stage = make_owned_dir(root, f"{STAGE_PREFIX}{day}_")
    try:
        segments: list[dict] = []
        if isinstance(level1, dict):
            l1 = {k: Path(v) for k, v in level1.items()}
        elif level1 is not None:
            l1 = find_level1(level1, day)
        else:
            note("level-1 from level-0 sessions")
            l1, segments = _level1_from_sessions([Path(s) for s in sessions], day, stage / "l1", mode,
                                                 kernels)
        for k in RAW_KINDS:
            if not l1.get(k) or not Path(l1[k]).is_file():
                raise InputFormatError(f"level-1 {k} file of {day} missing ({l1.get(k)})")
        fi = meta.read_fits_info(l1["fits"])
        tstart = fi.tstart if fi.tstart is not None else day_start_met(day)
        tstop = fi.tstop if fi.tstop is not None else tstart + 86400.0
        journal = journal_path(root, day)
        keys = _build_keys(day, l1, caldb=caldb, mode=mode, tstart=tstart, tstop=tstop)
        # ---- plan: a short-lived connection
        with open_catalog(root) as cat:
            roll_back_journal(cat, root, day)
            plan = _plan(cat, root, day, keys, product_lid_for_file)
            if plan.unchanged is not None:
                if segments:
                    _commit_transaction(cat, journal, lambda: _record_segments(cat, day, segments))
                note("unchanged: nothing to do")
                return plan.unchanged
        # ---- make: no catalog connection open
        staged, raw_hashes, sun = _make(plan, root, day, l1, stage, caldb=caldb, mode=mode,
                                        today=pdate.isoformat(), im=im, note=note,
                                        generate_label=generate_label)
        szip = _stage_zip(plan, root, day, l1, stage, staged, sun, pdate=pdate, im=im, note=note,
                          make_zip_label=make_zip_label)
        # ---- commit: the write connection, one transaction
        with open_catalog(root) as cat:
            def commit() -> DayBuild:
                _check_plan_current(cat, day, plan)
                return _record_segments(cat, day, segments, lambda: _commit(
                    cat, root, day, plan, staged, raw_hashes, szip, mode=mode, journal=journal))
            return _commit_transaction(cat, journal, commit)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _commit_transaction(cat: Catalog, journal: Path, work: Callable[[], DayBuild | None]):
    """Run ``work`` in one catalog transaction; on failure roll back and remove the journalled files.

    A kill before COMMIT leaves the catalog as it was (DuckDB rolls back on close) and the
    journal names the files to remove (:func:`roll_back_journal`).
    """
    cat.con.execute("BEGIN TRANSACTION")
    try:
        out = work()
        cat.con.execute("COMMIT")
    except Exception:
        cat.con.execute("ROLLBACK")
        if journal.exists():
            _remove_listed(journal)
        raise
    journal.unlink(missing_ok=True)
    return out


def _record_segments(cat: Catalog, day: str, segments: Sequence[dict],
                     work: Callable[[], DayBuild | None] = lambda: None):
    """Orbit-wise rows of the level-0 segments the day came from (``archive.md`` §4.2) around
    ``work`` (which may write the day row): the segments first, the day's segment list after."""
    for seg in segments:
        old = cat.rows("SELECT Days FROM xsmorbitdata WHERE L0File = ?", [seg["L0File"]])
        if old and old[0]["Days"]:
            seg["Days"] = sorted(set(old[0]["Days"]) | set(seg["Days"]))
        cat.upsert_segment(seg)
    out = work()
    if segments:
        cat.update_day(day, Segments=sorted({s["L0File"] for s in segments}))
    return out


@dataclass(frozen=True)
class _BuildKeys:
    """What determines each product's content (catalog-free): build keys and their parameters."""

    keys: dict
    what: dict
    caldb_files: dict
    caldbver: str | None


@dataclass
class _DayPlan:
    """The versions a build makes, decided from the catalog at planning time.

    ``snapshot`` (kind -> current version or None, ``zip`` included) is compared with the
    catalog again at commit time: a difference means another build of the day committed.
    """

    keys: _BuildKeys
    plan: dict
    raw_changed: list
    cal_changed: list
    final_names: dict
    snapshot: dict
    histories: dict
    had_gti: bool
    zip_row: dict | None = None
    zip_history: list = field(default_factory=list)
    unchanged: DayBuild | None = None


def _build_keys(day: str, l1: dict[str, Path], *, caldb, mode: Mode, tstart: float,
                tstop: float) -> _BuildKeys:
    raw_params = {}
    for k in RAW_KINDS:
        info = meta.read_fits_info(l1[k])
        raw_params[k] = {"fingerprint": content_fingerprint(l1[k]), "software": info.swversion,
                         "mode": info.procmode}
    caldb_files, caldbver = calibration_key(caldb, tstart, mode)
    cal_common = {"raw": {k: raw_params[k]["fingerprint"] for k in RAW_KINDS},
                  "software": f"xsm {SOFTWARE_VERSION}", "mode": mode.value,
                  "caldb_files": caldb_files, "caldbver": caldbver}
    keys = {k: _sha(raw_params[k]) for k in RAW_KINDS}
    what: dict[str, dict] = dict(raw_params)
    for k in CAL_KINDS:
        what[k] = {**cal_common, "standard": STANDARD_PARAMETERS[k]}
        if k == "gti":  # the GTI uses no calibration file, but the standard filter file
            what[k].pop("caldb_files")
            what[k]["filterfile"] = _filter_sha()
        # the CALDB version name itself does not count: only the files selected
        keys[k] = _sha({**{c: v for c, v in what[k].items() if c != "caldbver"}, "kind": k})
    return _BuildKeys(keys, what, caldb_files, caldbver)


def _plan(cat: Catalog, root: Path, day: str, bk: _BuildKeys, product_lid_for_file) -> _DayPlan:
    """Decide the versions to make (reads the catalog only)."""
    plan: dict[str, dict] = {}
    current = {k: _current(cat, day, k) for k in (*RAW_KINDS, *CAL_KINDS, "zip")}
    for k in (*RAW_KINDS, *CAL_KINDS):
        cur = current[k]
        old_params = json.loads(cur["parameters"]) if cur and cur.get("parameters") else None
        old_key = (old_params or {}).get("build_key")
        if cur is not None and old_key == bk.keys[k]:
            plan[k] = {"status": "unchanged", "version": cur["version"], "row": cur}
        else:
            newp = bk.what[k]
            plan[k] = {"status": "new" if cur is None else "changed",
                       "version": 1 if cur is None else int(cur["version"]) + 1,
                       "row": cur, "reason": _reason_for(k, cur, newp, old_params),
                       "params": {**newp, "build_key": bk.keys[k]}}
    raw_changed = [k for k in RAW_KINDS if plan[k]["status"] != "unchanged"]
    cal_changed = [k for k in CAL_KINDS if plan[k]["status"] != "unchanged"]
    had_gti = current["gti"] is not None
    dayrow = cat.day(day)
    no_sun_before = not had_gti and dayrow is not None and dayrow.get("sunstatus") is False
    snapshot = {k: (None if r is None else int(r["version"])) for k, r in current.items()}
    final_names = {k: product_name(day, plan[k]["version"], k) for k in (*RAW_KINDS, *CAL_KINDS)}
    out = _DayPlan(bk, plan, raw_changed, cal_changed, final_names, snapshot, {}, had_gti,
                   zip_row=current["zip"])
    if not raw_changed and (not cal_changed or no_sun_before):
        zrow = current["zip"]
        if zrow is not None and (root / zrow["path"]).is_file():
            result = DayBuild(day=day, version=int(zrow["version"]), changed=False)
            for k in (*RAW_KINDS, *CAL_KINDS):
                r = plan[k].get("row")
                if r is not None:
                    result.products.append(ProductBuild(k, root / r["path"], root / (r["label"] or ""),
                                                        r["version"], f"{r['lid']}::{r['vid']}", "unchanged"))
            result.sun = had_gti
            out.unchanged = result
            return out
    # the earlier label versions of every product that may change (the labels are made unlocked)
    for k in (*raw_changed, *cal_changed):
        lid = product_lid_for_file(final_names[k])
        out.histories[k] = (lid, cat.rows("SELECT vid, created, reason FROM products WHERE lid = ? "
                                          "AND kind = 'label' ORDER BY version", [lid]))
    out.zip_history = cat.rows("SELECT vid, created, reason FROM products WHERE kind = 'zip' AND day = ? "
                               "AND source = 'built' ORDER BY version", [day])
    return out


def _check_plan_current(cat: Catalog, day: str, plan: _DayPlan) -> None:
    """Raise ArchiveError when another build of ``day`` committed since ``plan`` was made."""
    now = {k: (None if r is None else int(r["version"]))
           for k, r in ((k, _current(cat, day, k)) for k in plan.snapshot)}
    moved = sorted(k for k in plan.snapshot if now[k] != plan.snapshot[k])
    if moved:
        what = ", ".join(f"{k} v{plan.snapshot[k] or 0} -> v{now[k] or 0}" for k in moved)
        raise ArchiveError(f"{day}: another build of the day committed while this one was making its "
                           f"products ({what}); nothing written, run the build again")


def _history(lid_rows: tuple[str, list[dict]], version: int, description: str, date: str):
    from xsm.labels.generate import ModificationDetail

    _lid, rows = lid_rows
    hist = []
    for r in rows:
        v = int(str(r["vid"]).split(".")[0])
        if v >= version:
            continue
        hist.append(ModificationDetail(str(r["created"])[:10], str(r["vid"]),
                                       r["reason"] or "Created"))
    hist.append(ModificationDetail(date, f"{version}.0", description))
    return hist


def _make(p: _DayPlan, root: Path, day: str, l1: dict[str, Path], stage: Path, *, caldb, mode,
          today: str, im: str, note, generate_label):
    """New raw copies, level-2 products and labels in the stage (no catalog access).

    Returns ``{kind: (data, label, lid)}`` of the staged products, the raw copies' hashes
    ``{kind: (md5, sha256, size)}`` and whether the day has Sun observations.
    """
    plan, final_names = p.plan, p.final_names
    raw_dir, cal_dir = stage / "raw", stage / "calibrated"
    raw_dir.mkdir(parents=True, exist_ok=True)
    cal_dir.mkdir(parents=True, exist_ok=True)
    cal_changed = list(p.cal_changed)
    raw_hashes: dict[str, tuple[str, str, int]] = {}  # (md5, sha256, size): hashed once, catalogued later
    for k in p.raw_changed:
        note(f"raw {k} v{plan[k]['version']}")
        target = raw_dir / final_names[k]
        shutil.copyfile(l1[k], target)
        _set_filename(target, final_names[k])
        raw_hashes[k] = meta.file_hashes(target)
    # the level-1 files the calibrated products come from: new ones just hashed, current ones catalogued
    l1_md5 = {final_names[k]: raw_hashes[k][0] if k in raw_hashes else plan[k]["row"]["md5"]
              for k in RAW_KINDS}
    sun = True
    if cal_changed:
        note("calibrated products")
        # level 2 always from the day's level-1 (current names, so HISTORY names the archive files)
        l1_for_l2 = {}
        for k in RAW_KINDS:
            path = raw_dir / final_names[k]
            if not path.exists():
                path = stage / "l1ref" / final_names[k]
                path.parent.mkdir(exist_ok=True)
                shutil.copyfile(l1[k], path)
            l1_for_l2[k] = path
        made = make_level2(l1_for_l2, cal_dir / "_all", {k: final_names[k] for k in CAL_KINDS},
                           caldb=caldb, mode=mode, input_md5=l1_md5)
        if not made:
            sun = False
            cal_changed = []
        for k in cal_changed:
            shutil.move(str(made[k]), cal_dir / final_names[k])
        shutil.rmtree(cal_dir / "_all", ignore_errors=True)
    sun = sun and (bool(cal_changed) or p.had_gti)
    staged: dict[str, tuple[Path, Path, str]] = {}
    for k in (*p.raw_changed, *cal_changed):
        data = (raw_dir if k in RAW_KINDS else cal_dir) / final_names[k]
        lid = p.histories[k][0]
        hist = _history(p.histories[k], plan[k]["version"], plan[k]["reason"], today)
        label = generate_label(data, im, history=hist)
        staged[k] = (data, label, lid)
    return staged, raw_hashes, sun


def _commit(cat: Catalog, root: Path, day: str, p: _DayPlan, staged: dict[str, tuple[Path, Path, str]],
            raw_hashes: dict, szip: _StagedZip, *, mode, journal: Path) -> DayBuild:
    """Move the staged products and zip into place and catalogue them (in the caller's
    transaction, with the write connection)."""
    ddir = day_dir(root, day)
    plan, caldb_files, caldbver = p.plan, p.keys.caldb_files, p.keys.caldbver
    zpath = ddir / szip.zip.name
    zlabel = ddir / szip.label.name

    # ---- move into place (never over an existing file)
    for k, (data, label, _lid) in staged.items():
        sub = "raw" if k in RAW_KINDS else "calibrated"
        for f in (data, label):
            if (ddir / sub / f.name).exists():
                raise ArchiveError(f"{ddir / sub / f.name}: exists already; an archived version is "
                                   "never overwritten (catalog out of date? run `xsm archive verify`)")
    if zpath.exists():
        raise ArchiveError(f"{zpath}: exists already; an archived version is never overwritten")
    _journal_add(journal, [*(ddir / ("raw" if k in RAW_KINDS else "calibrated") / f.name
                             for k, (data, label, _lid) in staged.items() for f in (data, label)),
                           zpath, zlabel])
    moved: dict[str, tuple[Path, Path, str]] = {}
    for k, (data, label, lid) in staged.items():
        sub = ddir / ("raw" if k in RAW_KINDS else "calibrated")
        sub.mkdir(parents=True, exist_ok=True)
        dst, dlabel = sub / data.name, sub / label.name
        os.replace(data, dst)
        os.replace(label, dlabel)
        moved[k] = (dst, dlabel, lid)
    os.replace(szip.zip, zpath)
    os.replace(szip.label, zlabel)

    # ---- catalog the new versions
    for k, (dst, dlabel, lid) in moved.items():
        v = plan[k]["version"]
        vid = f"{v}.0"
        old = plan[k]["row"]
        sup = f"{old['lid']}::{old['vid']}" if old else None
        index_file(cat, dlabel, source="built", day=day, version=v, reason=plan[k]["reason"],
                   supersedes=sup)
        row = index_file(cat, dst, source="built", label=dlabel, lid=lid, vid=vid, day=day,
                         version=v, reason=plan[k]["reason"], supersedes=sup, hashes=raw_hashes.get(k))
        params = json.loads(json.dumps(plan[k]["params"], default=str))
        if row.get("parameters"):
            params["header"] = row["parameters"]
        cat.con.execute("UPDATE products SET parameters = ?, caldb_files = coalesce(caldb_files, ?), "
                        "caldbver = coalesce(caldbver, ?) WHERE path = ?",
                        [json.dumps(params, sort_keys=True),
                         json.dumps({c: f["file"] for c, f in caldb_files.items()}) if k in CAL_KINDS else None,
                         caldbver if k in CAL_KINDS else None, cat.rel(dst)])
        cat.con.execute("UPDATE products SET current = false WHERE lid = ? AND version < ? "
                        "AND source = 'built'", [lid, v])
        label_lid = meta.read_label(dlabel).lid
        cat.con.execute("UPDATE products SET current = false WHERE lid = ? AND version < ? "
                        "AND kind = 'label' AND source = 'built'", [label_lid, v])

    # ---- the day's zip
    zver, zreason, old_zip = szip.version, szip.reason, p.zip_row
    zrow = index_file(cat, zpath, source="built", label=zlabel, lid=meta.read_label(zlabel).lid,
                      vid=f"{zver}.0", day=day, version=zver, reason=zreason,
                      supersedes=f"{old_zip['lid']}::{old_zip['vid']}" if old_zip else None,
                      hashes=szip.hashes)
    index_file(cat, zlabel, source="built", day=day, version=zver, reason=zreason)
    cat.con.execute("UPDATE products SET current = (version = ?) WHERE day = ? AND kind IN ('zip') "
                    "AND source = 'built'", [zver, day])
    cat.con.execute("UPDATE products SET current = false WHERE day = ? AND kind = 'label' AND "
                    "source = 'built' AND path LIKE '%.xml' AND path NOT LIKE '%level%' AND version < ?",
                    [day, zver])
    sidecar = zpath.with_name(zpath.stem + "_zip.json")
    dayinfo = {**szip.dayinfo, **(_rate_summary(cat, day) if szip.has_lc else {})}
    summary = {**dayinfo, "ZipFile": zpath.name, "ZipMd5": zrow["md5"], "ZipSize": zrow["size"],
               "Version": zver, "CaldbVer": caldbver if szip.sun else None,
               "SwVersion": f"xsm {SOFTWARE_VERSION}", "ProcMode": mode.value,
               "members": list(szip.lidvids)}
    _journal_add(journal, [sidecar])
    with atomic_path(sidecar) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str, sort_keys=True) + "\n")
    cat.upsert_day({k: v for k, v in summary.items() if k != "members"}
                   | {"archivestatus": True, "procstatus": True, "Source": "built",
                      "ZipFile": cat.rel(zpath)})
    result = DayBuild(day=day, version=zver, changed=True, products=list(szip.products), zip=zpath,
                      zip_label=zlabel, sun=szip.sun)
    result.reasons = [f"{q.kind} v{q.version}: {q.reason}" for q in result.products if q.reason]
    return result


@dataclass(frozen=True)
class _StagedZip:
    """The day's zip and its label made in the stage, with what the commit records of them."""

    zip: Path
    label: Path
    version: int
    hashes: tuple
    reason: str
    lidvids: tuple
    products: tuple
    dayinfo: dict
    sun: bool
    has_lc: bool


def _stage_zip(p: _DayPlan, root: Path, day: str, l1: dict[str, Path], stage: Path,
               staged: dict[str, tuple[Path, Path, str]], sun: bool, *, pdate: _dt.date, im: str, note,
               make_zip_label) -> _StagedZip:
    """The day's zip (current version of every product: staged new ones, catalogued others) and its
    label in the stage (no catalog access)."""
    from xsm.labels.generate import ModificationDetail

    ddir, today, plan = day_dir(root, day), pdate.isoformat(), p.plan
    members: list[tuple[str, Path]] = []
    lidvids: list[str] = []
    products: list[ProductBuild] = []
    for k in (*RAW_KINDS, *CAL_KINDS):
        sub = "raw" if k in RAW_KINDS else "calibrated"
        row = plan[k]["row"]
        if k in staged:
            data, label, lid = staged[k]
            v = int(plan[k]["version"])
            lidvid = f"{lid}::{v}.0"
            members += [(sub, data), (sub, label)]
            products.append(ProductBuild(k, ddir / sub / data.name, ddir / sub / label.name, v, lidvid,
                                         plan[k]["status"], plan[k]["reason"],
                                         f"{row['lid']}::{row['vid']}" if row else None))
        elif row is not None:
            lidvid = f"{row['lid']}::{row['vid']}"
            members += [(sub, root / row["path"]), (sub, root / row["label"])]
            products.append(ProductBuild(k, root / row["path"], root / row["label"], row["version"], lidvid,
                                         "unchanged", None, row.get("supersedes")))
        else:
            continue
        lidvids.append(lidvid)
    old_zip = p.zip_row
    zver = 1 if old_zip is None else int(old_zip["version"]) + 1
    zpath = stage / zip_name(day, zver)
    note(f"zip v{zver}")
    write_day_zip(zpath, day, zver, members, pdate)
    gti = staged["gti"][0] if "gti" in staged else (root / plan["gti"]["row"]["path"]
                                                      if plan["gti"]["row"] else None)
    dayinfo = _day_summary(day, l1, gti, sun)
    desc = (f"XSM day-wise archive package of {day[:4]}-{day[4:6]}-{day[6:]}: {len(members)} files; "
            f"{dayinfo['StartTime']} to {dayinfo['StopTime']}; total exposure "
            f"{dayinfo['TotalExposure'] or 0:.1f} s, Sun exposure {dayinfo['SunExposure'] or 0:.1f} s")
    zhist = [ModificationDetail(str(r["created"])[:10], str(r["vid"]), r["reason"] or "Created")
             for r in p.zip_history]
    zreason = "; ".join(f"{q.kind}: {q.reason}" for q in products if q.reason) or "rebuilt"
    zhist.append(ModificationDetail(today, f"{zver}.0", zreason))
    zlabel = make_zip_label(zpath, lidvids, day=day, version_id=f"{zver}.0", zip_description=desc,
                            history=zhist, creation_date_time=f"{today}T00:00:00Z", im=im)
    return _StagedZip(zpath, Path(zlabel), zver, meta.file_hashes(zpath), zreason, tuple(lidvids),
                      tuple(products), dayinfo, sun, "lc" in staged or plan["lc"]["row"] is not None)


def _set_filename(path: Path, name: str) -> None:
    """Set FILENAME in every HDU that has it (a copied level-1 file renamed to its archive name)."""
    from astropy.io import fits

    with fits.open(path, mode="update", memmap=False) as hdul:
        for hdu in hdul:
            if "FILENAME" in hdu.header and hdu.header["FILENAME"] != name:
                hdu.header["FILENAME"] = name


def _day_summary(day: str, l1: dict[str, Path], gti: Path | None, sun: bool) -> dict:
    """Day-wise columns from the level-1 and GTI headers (``archive.md`` §4.1); no catalog access."""
    from astropy.io import fits

    with fits.open(l1["fits"], memmap=True) as h:
        ext = h[1].header
        n = int(ext.get("NAXIS2", 0))
    fi = meta.read_fits_info(l1["fits"])
    out = {"DayOfObs": day, "StartTime": fi.date_obs, "StopTime": fi.date_end,
           "Tstart": fi.tstart, "Tstop": fi.tstop, "TotalExposure": float(n),
           "SunExposure": 0.0, "sunstatus": sun}
    if gti is not None:
        with fits.open(gti) as h:
            out["SunExposure"] = h[1].header.get("EXPOSURE")
            if h[1].header.get("OBSEXP") is not None:
                out["TotalExposure"] = h[1].header.get("OBSEXP")
    out["calstatus"] = _has_calibration_source(l1)
    return out


def _rate_summary(cat: Catalog, day: str) -> dict:
    """Peak and mean 1 s rate of the day from the catalogued rates (``archive.md`` §4.1)."""
    r = cat.rows("SELECT max(rate) AS peak, arg_max(time, rate) AS tpeak, avg(rate) AS mean "
                 "FROM rates WHERE day = ?", [day])
    if r and r[0]["peak"] is not None:
        return {"PeakRate": r[0]["peak"], "PeakTime": r[0]["tpeak"], "MeanRate": r[0]["mean"]}
    return {}


def _has_calibration_source(l1: dict[str, Path]) -> bool | None:
    """Calibration-source data present: any frame with the motor at the calibration position."""
    try:
        import numpy as np

        from xsm.archive.selections import CAL_POSITION
        from xsm.products.level1 import read_hk

        hk = read_hk(l1["hk"])
        names = hk.data.dtype.names or ()
        if "MotorIRPos" in names:
            return bool(np.any(hk.data["MotorIRPos"] == CAL_POSITION))
    except (OSError, ValueError, KeyError, InputFormatError):  # a status flag: never fails the build
        return None
    return None
