"""Publishing CALDB versions (``caldb.md`` §7; layout in :mod:`xsm.caldb_manager.layout`).

``publish(root, files, version)`` adds calibration files as a new version:

1. lock the root (one publisher at a time; a lock left by a dead process is taken over);
2. certify every file; refuse failing ones with their reasons, byte-identical duplicates of
   published files, and a different file under an already published name;
3. build the new index from the current one: new rows appended, older good rows of the same
   code and validity start superseded with ``CAL_QUAL = 5`` (never deleted); CALDBVER = version;
4. copy the files in (temporary name, rename, read-only);
5. write the snapshot ``versions/<V>/`` (XSM index, OGIP CIF, manifest with size and sha256 of
   every file) in a temporary directory and rename it into place;
6. switch the ``current`` symlink to it (one atomic rename: the commit point).

A crash before step 6 leaves the previous version intact and current (at worst a few unindexed
files or a temporary directory, which the next publish reuses or removes); :func:`verify` checks
that every version's files exist with their recorded hashes.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

from xsm.caldb_manager.certify import FileReport, certify_file
from xsm.caldb_manager.index import (OGIP_INDEX_NAME, QUAL_SUPERSEDED, XSM_INDEX_NAME, CalIndex, IndexRow,
                                     from_xsm_and_files, read_index, vsd_vst_to_mjd, write_index)
from xsm.caldb_manager.layout import (CURRENT_LINK, MANIFEST_NAME, VERSIONS_DIR, current_version, list_versions,
                                      orphan_versions, read_manifest, version_dir, versions_dir)
from xsm.products.errors import ArchiveError, CertificationError, ParameterError
from xsm.products.fitsio import atomic_path
from xsm.products.ownership import process_alive
from xsm.products.provenance import file_sha256

LOCK_NAME = ".publish.lock"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


def _fault(step: str) -> None:
    """Fault-injection point between the steps of a publish (tests replace it)."""


@dataclass(frozen=True)
class PublishResult:
    version: str
    parent: str | None
    added: tuple[IndexRow, ...]
    superseded: tuple[IndexRow, ...]
    reports: tuple[FileReport, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict:
        return {"version": self.version, "parent": self.parent,
                "added": [{"code": r.cnam, "file": r.file, "ref_time": r.ref_time} for r in self.added],
                "superseded": [{"code": r.cnam, "file": r.file, "ref_time": r.ref_time} for r in self.superseded],
                "warnings": [str(f) for rep in self.reports for f in rep.warnings]}


# ------------------------------------------------------------------------------------------
# locking

@contextlib.contextmanager
def _lock(root: Path):
    lock = root / LOCK_NAME
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and process_alive(pid) and pid != os.getpid():
                raise ArchiveError(f"{root}: another publish is in progress (process {pid}; lock {lock})") from None
            lock.unlink(missing_ok=True)  # stale lock of a dead process
    else:  # pragma: no cover
        raise ArchiveError(f"{root}: cannot take the publish lock {lock}")
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------
# helpers

def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _copy_in(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary file and a rename; make it read-only."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o444)


def _switch_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (new symlink, rename over the old one)."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    _fsync_dir(link.parent)


def _ensure_root_links(root: Path) -> None:
    """``xsmcaldb.indx`` and ``caldb.indx`` at the root point through ``current``."""
    for name in (XSM_INDEX_NAME, OGIP_INDEX_NAME):
        link = root / name
        target = f"{CURRENT_LINK}/{name}"
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.exists() and not link.is_symlink():
            raise ArchiveError(f"{link}: a plain file where the CALDB's index link belongs")
        _switch_symlink(link, target)


def _cleanup_temporaries(root: Path) -> None:
    """Remove what an interrupted publish left: temporary and never-committed snapshots."""
    vdir = versions_dir(root)
    if vdir.is_dir():
        for d in vdir.iterdir():
            if d.name.startswith(".tmp-"):
                shutil.rmtree(d, ignore_errors=True)
        for name in orphan_versions(root):
            d = version_dir(root, name)
            for p in d.iterdir():
                with contextlib.suppress(OSError):
                    os.chmod(p, 0o644)
            shutil.rmtree(d, ignore_errors=True)


def calibration_header(path: Path, code: str) -> fits.Header:
    """Header of the first calibration extension of a file (where its CALDB keywords are)."""
    from xsm.caldb_manager.certify import EXTENSIONS

    with fits.open(path, memmap=False) as hdul:
        for h in hdul[1:]:
            if h.name in EXTENSIONS.get(code, ()) or "CCNM0001" in h.header:
                return h.header.copy()
        return hdul[1].header.copy() if len(hdul) > 1 else fits.Header()


def ogip_from_files(index: CalIndex, root: Path) -> CalIndex:
    """The full OGIP CIF of an index, with CAL_CLAS/CAL_DTYP/CAL_CBD read from the files under ``root``."""
    headers = {}
    for r in index.rows:
        p = root / r.relpath()
        if p.is_file():
            with contextlib.suppress(OSError, ValueError):
                headers[r.file] = calibration_header(p, r.cnam.upper())
    return from_xsm_and_files(index, headers)


def current_index(root: Path) -> CalIndex | None:
    cur = current_version(root)
    if cur is None:
        return None
    return read_index(version_dir(root, cur) / XSM_INDEX_NAME)


def _manifest_entries(root: Path, index: CalIndex, known: Mapping[str, dict]) -> list[dict]:
    out = []
    for r in index.rows:
        if r.file in known:
            out.append(known[r.file])
            continue
        p = root / r.relpath()
        if p.is_file():
            e = {"file": r.file, "code": r.cnam, "size": p.stat().st_size, "sha256": file_sha256(p)}
        else:
            e = {"file": r.file, "code": r.cnam, "size": None, "sha256": None, "missing": True}
        out.append(e)
    # one entry per file
    seen: dict[str, dict] = {}
    for e in out:
        seen.setdefault(e["file"], e)
    return list(seen.values())


def _write_snapshot(root: Path, version: str, index: CalIndex, manifest: dict) -> None:
    vdir = versions_dir(root)
    vdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=vdir))
    try:
        write_index(index, tmp / XSM_INDEX_NAME, form="xsm")
        write_index(ogip_from_files(index, root), tmp / OGIP_INDEX_NAME, form="ogip")
        _fault("snapshot-written")
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        for p in tmp.iterdir():
            os.chmod(p, 0o444)
        os.chmod(tmp, 0o755)
        _fsync_dir(tmp)
        os.replace(tmp, version_dir(root, version))
        _fsync_dir(vdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _new_manifest(version: str, parent: str | None, seq: int, entries: list[dict], added, superseded,
                  note: str = "") -> dict:
    return {"version": version, "parent": parent, "sequence": seq,
            "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "note": note, "files": entries,
            "added": [{"code": r.cnam, "file": r.file, "ref_time": r.ref_time} for r in added],
            "superseded": [{"code": r.cnam, "file": r.file, "ref_time": r.ref_time} for r in superseded]}


def _check_version_name(root: Path, version: str) -> None:
    if not _VERSION_RE.match(version or ""):
        raise ParameterError(f"version {version!r}: use letters, digits, '.', '_' or '-' (e.g. 20260101)")
    if version_dir(root, version).exists():
        raise ParameterError(f"{root}: version {version} is already published (versions are immutable)")


# ------------------------------------------------------------------------------------------
# public API

def adopt(root: str | Path) -> str:
    """Turn a plain release (an ``xsmcaldb.indx`` file and its files) into a versioned CALDB.

    The existing index becomes version CALDBVER; nothing else changes. Returns the version.
    """
    root = Path(root)
    if current_version(root) is not None:
        return current_version(root)  # type: ignore[return-value]
    plain = root / XSM_INDEX_NAME
    if not plain.is_file() or plain.is_symlink():
        raise ParameterError(f"{root}: not a CALDB release (no {XSM_INDEX_NAME})")
    with _lock(root):
        index = read_index(plain)
        version = index.caldbver or "initial"
        _check_version_name(root, version)
        entries = _manifest_entries(root, index, {})
        _write_snapshot(root, version, index, _new_manifest(version, None, 1, entries, index.rows, (),
                                                             note="adopted plain release"))
        _switch_symlink(root / CURRENT_LINK, f"{VERSIONS_DIR}/{version}")
        # the root index becomes a link to the snapshot (the plain file's content is in it)
        for name in (XSM_INDEX_NAME, OGIP_INDEX_NAME):
            p = root / name
            if p.exists() and not p.is_symlink():
                p.unlink()
        _ensure_root_links(root)
    return version


def publish(root: str | Path, files: Sequence[str | Path], version: str, *,
            codes: Mapping[str, str] | None = None, ref_times: Mapping[str, float] | None = None,
            descriptions: Mapping[str, str] | None = None, note: str = "", fitsverify: bool = True,
            allow_empty: bool = False, base_index: CalIndex | None = None) -> PublishResult:
    """Publish ``files`` as CALDB version ``version`` under ``root`` (see the module doc).

    ``codes``, ``ref_times`` (MJD) and ``descriptions`` override, per file basename, what is read
    from the file's ``CCNM0001``, ``CVSD0001``/``CVST0001`` and ``CDES0001``. ``base_index``
    gives the rows of a first version (e.g. a synthetic release); later versions start from the
    current index.

    Raises :class:`CertificationError` (with every failing file's reasons) when a file fails
    certification, is a byte-identical duplicate, or would overwrite a published file;
    :class:`ParameterError` for a bad or existing version name.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if (root / XSM_INDEX_NAME).is_file() and not (root / XSM_INDEX_NAME).is_symlink() \
            and current_version(root) is None:
        adopt(root)
    files = [Path(f) for f in files]
    if not files and not allow_empty:
        raise ParameterError("nothing to publish: give one or more calibration files")
    codes = {k: v.upper() for k, v in (codes or {}).items()}
    ref_times = dict(ref_times or {})
    descriptions = dict(descriptions or {})
    with _lock(root):
        _cleanup_temporaries(root)
        _check_version_name(root, version)
        parent = current_version(root)
        old = current_index(root) if parent else None
        if old is None:
            old = base_index.with_rows((), version) if base_index is not None else CalIndex(rows=(), form="xsm")
        all_versions = list_versions(root)
        published: dict[str, dict] = {}  # file name -> manifest entry, over every version
        for v in all_versions:
            for e in read_manifest(root, v).get("files", []):
                if e.get("sha256"):
                    published.setdefault(e["file"], e)
        by_hash = {e["sha256"]: name for name, e in published.items()}

        # certify
        reports: list[FileReport] = []
        failures: list[str] = []
        batch_hashes: dict[str, str] = {}
        for f in files:
            rep = certify_file(f, code=codes.get(f.name), hashes=by_hash, fitsverify=fitsverify)
            if rep.sha256 in batch_hashes and rep.ok:
                rep.add("error", "duplicate", f"byte-identical to {batch_hashes[rep.sha256]} in the same publish")
            if rep.sha256:
                batch_hashes.setdefault(rep.sha256, f.name)
            if f.name in published:
                if published[f.name]["sha256"] != rep.sha256:
                    rep.add("error", "immutable", f"a different {f.name} is already published; use a new name "
                                                  f"(e.g. the next vNN)")
            elif (root / f.name).exists() and (root / f.name).resolve() != f.resolve():
                if file_sha256(root / f.name) != rep.sha256:
                    rep.add("error", "immutable", f"{root / f.name} exists with other content")
            reports.append(rep)
            if not rep.ok:
                failures.append(f"{f.name}: {rep.reasons()}")
        if failures:
            raise CertificationError(f"publish {version} refused: " + " | ".join(failures))

        # new rows
        added: list[IndexRow] = []
        for f, rep in zip(files, reports):
            h = calibration_header(f, rep.code or "")
            if f.name in ref_times:
                t = float(ref_times[f.name])
            else:
                try:
                    t = vsd_vst_to_mjd(str(h.get("CVSD0001", "")), str(h.get("CVST0001", "00:00:00")))
                except ValueError:
                    raise CertificationError(f"{f}: no usable CVSD0001/CVST0001; give the validity start") from None
            desc = descriptions.get(f.name, str(h.get("CDES0001", "")).strip())[:70]
            cbd = tuple(str(h.get(f"CBD{k}0001", "NONE")).strip() or "NONE" for k in range(1, 10))
            added.append(IndexRow(rep.code or "", f.name, t, 0, desc,
                                  cal_clas=str(h.get("CCLS0001", "BCF")).strip() or "BCF", cbd=cbd,
                                  cal_date=_dt.date.today().isoformat()))
        rows = list(old.rows)
        superseded: list[IndexRow] = []
        for new in added:
            for i, r in enumerate(rows):
                if (r.good and r.cnam.upper() == new.cnam.upper() and r.ref_time == new.ref_time
                        and r.filter.upper() == new.filter.upper() and r.detnam.upper() == new.detnam.upper()):
                    rows[i] = r.with_quality(QUAL_SUPERSEDED)
                    superseded.append(r)
        rows += added
        index = old.with_rows(rows, caldbver=version)

        # copy files in (before anything refers to them)
        _fault("certified")
        for f in files:
            dst = root / f.name
            if dst.exists() and dst.resolve() == f.resolve():
                os.chmod(dst, 0o444)
                continue
            if not dst.exists():
                _copy_in(f, dst)
            _fault("copied-one")
        _fault("copied")

        known = {e["file"]: e for e in published.values()}
        for f, rep in zip(files, reports):
            known[f.name] = {"file": f.name, "code": rep.code, "size": rep.size, "sha256": rep.sha256}
        entries = _manifest_entries(root, index, known)
        seq = 1 + max([read_manifest(root, v).get("sequence", 0) for v in all_versions] or [0])
        manifest = _new_manifest(version, parent, seq, entries, added, superseded, note)
        _write_snapshot(root, version, index, manifest)
        _fault("snapshot")
        _switch_symlink(root / CURRENT_LINK, f"{VERSIONS_DIR}/{version}")
        _fault("committed")
        _ensure_root_links(root)
    return PublishResult(version, parent, tuple(added), tuple(superseded), tuple(reports))


def publish_index(root: str | Path, directory: str | Path, index: CalIndex, version: str, *,
                  note: str = "", fitsverify: bool = True) -> PublishResult:
    """Publish a whole release (files in ``directory`` named by ``index``) as a first/next version,
    keeping the index's own REF_TIMEs and descriptions."""
    directory = Path(directory)
    files = list(dict.fromkeys(directory / r.file for r in index.rows))
    ref_times = {r.file: r.ref_time for r in index.rows}
    descs = {r.file: r.desc for r in index.rows}
    codes = {r.file: r.cnam for r in index.rows}
    return publish(root, files, version, codes=codes, ref_times=ref_times, descriptions=descs, note=note,
                   fitsverify=fitsverify, base_index=index)


@dataclass(frozen=True)
class VersionInfo:
    version: str
    sequence: int
    parent: str | None
    created: str
    files: int
    added: int
    superseded: int
    current: bool
    note: str = ""

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def versions(root: str | Path) -> list[VersionInfo]:
    """Every published version, oldest first, with which one is current."""
    root = Path(root)
    cur = current_version(root)
    out = []
    for v in list_versions(root):
        m = read_manifest(root, v)
        out.append(VersionInfo(v, m.get("sequence", 0), m.get("parent"), m.get("created", ""),
                               len(m.get("files", [])), len(m.get("added", [])), len(m.get("superseded", [])),
                               v == cur, m.get("note", "")))
    return out


def verify(root: str | Path) -> list[str]:
    """Consistency problems of a versioned CALDB (empty when consistent).

    The current pointer names a complete version; every version's index reads; every file a
    manifest lists exists with its recorded size and sha256 (immutability); the root index links
    resolve to the current snapshot.
    """
    root = Path(root)
    problems: list[str] = []
    cur = current_version(root)
    vs = list_versions(root)
    if cur is None:
        return [f"{root}: no current version"] if vs else []
    if cur not in vs:
        problems.append(f"current -> {cur}, which is not a complete version")
    hashes: dict[str, str] = {}
    for v in vs:
        try:
            read_index(version_dir(root, v) / XSM_INDEX_NAME)
            read_index(version_dir(root, v) / OGIP_INDEX_NAME)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            problems.append(f"version {v}: unreadable index ({exc})")
        for e in read_manifest(root, v).get("files", []):
            if e.get("missing"):
                continue
            p = root / e["file"]
            if not p.is_file():
                problems.append(f"version {v}: {e['file']} is missing")
                continue
            if e["file"] not in hashes:
                hashes[e["file"]] = file_sha256(p)
            if hashes[e["file"]] != e["sha256"]:
                problems.append(f"version {v}: {e['file']} changed after publishing (sha256 mismatch)")
    for name in (XSM_INDEX_NAME, OGIP_INDEX_NAME):
        p = root / name
        if not p.is_file():
            problems.append(f"{name} does not resolve to the current snapshot")
    return problems


def history(root: str | Path, code: str) -> list[dict]:
    """Every file of ``code`` across versions: when it appeared, its quality in each version."""
    root = Path(root)
    code = code.strip().upper()
    out: dict[str, dict] = {}
    for v in list_versions(root):
        idx = read_index(version_dir(root, v) / XSM_INDEX_NAME)
        for _, r in idx.rows_for(code):
            e = out.setdefault(r.file, {"file": r.file, "code": code, "ref_time": r.ref_time, "added": v,
                                        "superseded": None, "desc": r.desc, "quality": {}})
            e["quality"][v] = r.qual
            if r.qual == QUAL_SUPERSEDED and e["superseded"] is None:
                e["superseded"] = v
    return sorted(out.values(), key=lambda e: (e["ref_time"], e["added"]))


def init_synthetic(root: str | Path, version: str | None = None, *, fitsverify: bool = False) -> PublishResult:
    """``xsm caldb init --synthetic DIR``: write the synthetic release and publish it as the first
    version of a new versioned CALDB at ``root``."""
    from xsm.caldb_manager.synthetic import SYNTHETIC_VERSION, write_onaxis_table, write_synthetic_files

    root = Path(root)
    version = version or SYNTHETIC_VERSION
    if current_version(root) is not None or (root / XSM_INDEX_NAME).exists():
        raise ParameterError(f"{root}: already a CALDB (publish new files with 'xsm caldb publish')")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="xsm-caldb-synthetic-"))
    try:
        index = write_synthetic_files(staging, version)
        result = publish_index(root, staging, index, version, note="synthetic CALDB (xsm.caldb_manager.synthetic)",
                               fitsverify=fitsverify)
        table = write_onaxis_table(root / "xsm_onaxis_effective_area.txt")
        os.chmod(table, 0o444)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


__all__ = ["publish", "publish_index", "adopt", "versions", "verify", "history", "init_synthetic",
           "PublishResult", "VersionInfo", "current_index", "ogip_from_files", "calibration_header"]
