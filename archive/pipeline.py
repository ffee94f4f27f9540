"""Automated processing at the operations centre (``archive.md`` §3, the XSMDMS model).

Stages, in order, each with an input queue held in the catalog table ``queue`` (migration 2 of
:mod:`xsm.archive.catalog`): one row per (stage, item) with its state (``pending``,
``running``, ``done``, ``failed``), attempts, log file, times, error and a JSON detail.

=============  ============  ======================================================================
stage          item          what it does
=============  ============  ======================================================================
(sync)         source        lists the source (:mod:`xsm.archive.sources`); new packages -> download
download       ``<SID>``     copies the package; size (and md5) checked against the trigger file,
                             two more attempts on a mismatch, then failed
extract        ``<SID>``     verifies the package against its manifest (every file, size, md5, each
                             segment with a ``.pld``), one directory per segment -> session
session        ``<SID_SS>``  per-session level 1 + sun angle, level 2 for the sun, raw and cal
                             selections (:mod:`xsm.archive.selections`)
session_qa     ``<SID_SS>``  summary page, orbit-wise row; queues day merges whose data are complete
merge          ``YYYYMMDD``  :func:`xsm.archive.build.build_day` from the day's processed segments
day_qa         ``YYYYMMDD``  day summary page, day-wise row, index page
archive        ``YYYYMMDD``  validates the day (fixity, zip, labels) before it is released
upload         ``YYYYMMDD``  copies zip + label + sidecar to the configured destination
=============  ============  ======================================================================

Crash safety: every stage writes into a temporary directory/name and renames into place
(:func:`staged_dir`; removed when the stage fails); a run takes an exclusive lock
(:func:`pipeline_lock`), so ``running`` rows found at start belong to a crashed run: they go back
to ``pending`` and temporary outputs are removed (:func:`recover`); a day build stopped part-way
is rolled back by the next one (its journal, :func:`xsm.archive.build.roll_back_journal`).
Re-execution: :func:`retry` (one item) and :func:`rerun`
(days, from a stage) put items back into a stage's queue; each stage then queues the next, so
downstream products are rebuilt. Failures: one line in the queue row, the traceback in the
item's log file (``pipeline/logs/<stage>/<item>.log``).

Work space under the archive root: ``pipeline/`` (packages, segments, session products, logs,
the lock), ``summary/`` (HTML pages and plots, :mod:`xsm.archive.pages`).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import logging
import os
import shutil
import signal
import tarfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from xsm.archive.catalog import catalog_path, open_catalog
from xsm.archive.sources import Offer, open_source
from xsm.products.errors import ArchiveError, ParameterError, StageError, XsmError
from xsm.products.fitsio import atomic_path
from xsm.products.level0 import SESSION_KERNEL_SUFFIX
from xsm.products.level0 import verify_session_package as verify_package
from xsm.products.met import date_tag, day_start_met, met_to_utc_string, parse_date
from xsm.products.provenance import InputDigests, Mode, file_md5, recorded_inputs

log = logging.getLogger(__name__)

#: Queued stages in processing order (sync has no input queue).
STAGES = ("download", "extract", "session", "session_qa", "merge", "day_qa", "archive", "upload")
#: Stages whose items are packages (SID), segments (SID_SS) or days (YYYYMMDD).
PACKAGE_STAGES = ("download", "extract")
SEGMENT_STAGES = ("session", "session_qa")
DAY_STAGES = ("merge", "day_qa", "archive", "upload")
NEXT_STAGE = {"download": "extract", "session": "session_qa", "merge": "day_qa", "day_qa": "archive",
              "archive": "upload"}
STATES = ("pending", "running", "done", "failed")
#: Download attempts: the first one and two more on a size mismatch (``archive.md`` §3.1).
DOWNLOAD_ATTEMPTS = 3
#: A day is complete when a processed session holds data this long after the next midnight.
DAY_MARGIN_S = 600.0
#: Environment variable naming a checkpoint at which the process kills itself (crash tests).
KILL_ENV = "XSM_PIPELINE_KILL_AT"
#: Directory names under the archive root.
WORK_DIR, SUMMARY_DIR = "pipeline", "summary"
#: Prefix of temporary directories (removed by :func:`recover`).
TMP_PREFIX = ".tmp-"
#: Orbit-wise columns the pipeline sets from a session (build_day rewrites the row).
SESSION_ORBIT_COLUMNS = ("procstatus", "StartTime", "StopTime", "Tstart", "Tstop", "TotalExposure", "SunExposure",
                         "calstatus", "sunstatus", "indexfile", "PackageMd5", "DownloadedAt", "ProcessedAt")


@dataclass(frozen=True)
class PipelineConfig:
    """How a pipeline runs over one archive.

    Attributes
    ----------
    root : Path
        Archive root (catalog, day products, ``pipeline/`` and ``summary/``).
    inbox : str, optional
        Level-0 source: a directory or an http(s) URL (:mod:`xsm.archive.sources`).
    upload_dir : Path, optional
        Upload destination (a directory); None = no upload (``uploadstatus`` stays false).
    caldb : Path, optional
        CALDB root (default ``$XSM_CALDB``).
    static_kernels : Path, optional
        LSK/PCK/FK/IK: a meta-kernel, a directory of kernels, or None for the project's own
        static kernels (written once into ``pipeline/static_kernels``).
    mode : Mode
    im : str
        PDS4 information model of the labels.
    processing_date : date, optional
        Date stamped on labels and zip entries (default: today, UTC).
    flush : bool
        At the end of a pass, merge days whose sessions are all processed even without data
        after the next midnight (``level0.md`` §4.2 "when an operator forces it").
    """

    root: Path
    inbox: str | None = None
    upload_dir: Path | None = None
    caldb: Path | None = None
    static_kernels: Path | None = None
    mode: Mode = Mode.DEFAULT
    im: str = "1B00"
    processing_date: _dt.date | None = None
    flush: bool = True

    @property
    def work(self) -> Path:
        return Path(self.root) / WORK_DIR

    @property
    def summary(self) -> Path:
        return Path(self.root) / SUMMARY_DIR

    def path(self, what: str, *parts: str) -> Path:
        """``pipeline/<what>/<parts...>`` (packages, segments, sessions, logs)."""
        return self.work.joinpath(what, *parts)


@dataclass
class RunSummary:
    """What one :func:`run` did: items done and failed per stage, the queue afterwards."""

    done: dict[str, int] = field(default_factory=dict)
    failed: list[dict] = field(default_factory=list)
    synced: int = 0

    def to_dict(self) -> dict:
        return {"done": self.done, "failed": self.failed, "synced": self.synced}


# ----------------------------------------------------------------------------- queue (catalog)

def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def _rows(root: Path, sql: str, params=()) -> list[dict]:
    with open_catalog(root) as cat:
        return cat.rows(sql, list(params))


def enqueue(root: Path, stage: str, item: str, detail: dict | None = None, *, reset: bool = True) -> None:
    """Put ``item`` into ``stage``'s input queue (state ``pending``); keeps a known detail."""
    if stage not in STAGES and stage != "sync":
        raise ParameterError(f"stage {stage!r}: use one of {', '.join(STAGES)}")
    with open_catalog(root) as cat:
        old = cat.rows("SELECT detail, attempts FROM queue WHERE stage = ? AND item = ?", [stage, item])
        merged = {**(json.loads(old[0]["detail"]) if old and old[0]["detail"] else {}), **(detail or {})}
        attempts = 0 if reset or not old else old[0]["attempts"]
        cat.con.execute("DELETE FROM queue WHERE stage = ? AND item = ?", [stage, item])
        cat.con.execute("INSERT INTO queue VALUES (?, ?, 'pending', ?, NULL, ?, NULL, NULL, NULL, ?)",
                        [stage, item, attempts, _now(), json.dumps(merged, sort_keys=True)])


def _claim(root: Path) -> dict | None:
    """The next pending item, earliest stage first; marked ``running`` (one pipeline: the lock)."""
    order = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STAGES))
    with open_catalog(root) as cat:
        r = cat.rows(f"SELECT * FROM queue WHERE state = 'pending' AND stage <> 'sync' "
                     f"ORDER BY CASE stage {order} END, enqueued_at, item LIMIT 1")
        if not r:
            return None
        row = r[0]
        cat.con.execute("UPDATE queue SET state = 'running', attempts = attempts + 1, started_at = ?, "
                        "finished_at = NULL, error = NULL WHERE stage = ? AND item = ?",
                        [_now(), row["stage"], row["item"]])
    row["detail"] = json.loads(row["detail"]) if row["detail"] else {}
    return row


def _finish(root: Path, stage: str, item: str, state: str, *, detail: dict | None = None,
            error: str | None = None, log_path: str | None = None) -> None:
    with open_catalog(root) as cat:
        cat.con.execute("UPDATE queue SET state = ?, finished_at = ?, error = ?, log_path = ?, "
                        "detail = coalesce(?, detail) WHERE stage = ? AND item = ?",
                        [state, _now(), error, log_path,
                         json.dumps(detail, sort_keys=True, default=str) if detail is not None else None,
                         stage, item])


def queue_rows(root: str | Path, *, states: Iterable[str] | None = None) -> list[dict]:
    """Every queue row (stage order, then item), optionally only some states."""
    order = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(("sync", *STAGES)))
    where, params = "true", []
    if states:
        states = list(states)
        where = f"state IN ({', '.join('?' for _ in states)})"
        params = states
    rows = _rows(Path(root), f"SELECT * FROM queue WHERE {where} ORDER BY CASE stage {order} END, item", params)
    for r in rows:
        r["detail"] = json.loads(r["detail"]) if r["detail"] else {}
    return rows


def status(root: str | Path) -> dict:
    """Counts per stage and state, and the failure list (``xsm pipeline status``)."""
    root = Path(root)
    if not catalog_path(root).exists():
        raise ArchiveError(f"{root}: no catalog ({catalog_path(root).name}); run `xsm pipeline run` first")
    rows = queue_rows(root)
    counts = {s: {st: 0 for st in STATES} for s in ("sync", *STAGES)}
    for r in rows:
        counts[r["stage"]][r["state"]] += 1
    failed = [{"stage": r["stage"], "item": r["item"], "attempts": r["attempts"], "error": r["error"],
               "log": r["log_path"]} for r in rows if r["state"] == "failed"]
    days = _rows(root, "SELECT DayOfObs AS day, Version AS version, procstatus AS processed, sunstatus AS sun, "
                       "calstatus AS cal, archivestatus AS archived, uploadstatus AS uploaded, "
                       "SunExposure AS sun_exposure, PeakRate AS peak_rate, ZipFile AS zip, indexfile AS page "
                       "FROM xsmdaywisedata ORDER BY DayOfObs")
    return {"counts": counts, "failed": failed, "days": days}


# ----------------------------------------------------------------------------- lock, recovery

@contextlib.contextmanager
def pipeline_lock(root: str | Path):
    """Hold the archive's pipeline lock (``pipeline/lock``, an exclusive ``flock``).

    The kernel releases it when the process dies (kill -9 included), so a stale lock file never
    blocks. A second pipeline on the same archive gets a one-line :class:`ArchiveError`.
    """
    path = Path(root) / WORK_DIR / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise ArchiveError(f"{path}: another pipeline (pid {other}) is running on this archive; "
                               "wait for it to finish (one pipeline per archive)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)


def recover(config: PipelineConfig) -> int:
    """After a crash: ``running`` items back to ``pending``, temporary outputs removed.

    Call with the lock held. Returns the number of items reset.
    """
    root = Path(config.root)
    with open_catalog(root) as cat:
        n = cat.rows("SELECT count(*) AS n FROM queue WHERE state = 'running'")[0]["n"]
        cat.con.execute("UPDATE queue SET state = 'pending', error = 'interrupted; resumed' "
                        "WHERE state = 'running'")
    if n:
        log.warning("%d item(s) of an interrupted run put back into their queues", n)
    for base in (config.work, config.summary):
        if base.is_dir():
            for p in base.rglob(f"{TMP_PREFIX}*"):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    from xsm.archive.build import remove_dead_stages

    remove_dead_stages(root)  # build_day's stages of killed runs (a live build's stage stays)
    return n


def checkpoint(name: str) -> None:
    """Crash-test hook: SIGKILL this process when ``$XSM_PIPELINE_KILL_AT`` equals ``name``."""
    if os.environ.get(KILL_ENV) == name:
        log.warning("checkpoint %s: killing the pipeline (%s)", name, KILL_ENV)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


# ----------------------------------------------------------------------------- helpers

def _tmpdir(final: Path) -> Path:
    tmp = final.with_name(f"{TMP_PREFIX}{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


@contextlib.contextmanager
def staged_dir(final: Path):
    """A temporary directory beside ``final``, moved into place on success, removed on error."""
    tmp = _tmpdir(final)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _replace_dir(tmp, final)


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished temporary directory into place (replacing an older one)."""
    if final.exists():
        old = final.with_name(f"{TMP_PREFIX}old-{final.name}-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def static_kernel_files(config: PipelineConfig) -> list[Path]:
    """The static kernels (LSK, PCK, FK, IK, planetary SPK) the sun angles need."""
    from xsm.products import kernels as K

    if config.static_kernels is not None:
        p = Path(config.static_kernels)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in (".tls", ".tpc", ".tf", ".ti", ".bsp", ".tm"))
            if not files:
                raise ParameterError(f"{p}: no kernel files (.tls .tpc .tf .ti .bsp .tm)")
            return files
        if not p.is_file():
            raise ParameterError(f"{p}: static kernels not found")
        return [p]
    d = config.path("static_kernels")
    if not (d / "done").is_file():
        with staged_dir(d) as tmp:
            K.write_static_kernels(tmp)
            (tmp / "done").write_text("xsm static kernels\n")
    return K.StaticKernels(*(d / K.FILE_NAMES[k] for k in ("lsk", "pck", "fk", "ik")),
                           planetary_spk=K.planetary_spk_path(),
                           metakernel=d / K.FILE_NAMES["static_metakernel"]).files


def _segment_files(config: PipelineConfig, seg: str) -> tuple[Path, list[Path]]:
    """The ``.pld`` of an extracted segment and its kernels (SCLK, SPK, CK order)."""
    d = config.path("segments", seg)
    pld = d / f"{seg}.pld"
    if not pld.is_file():
        raise StageError(f"{pld}: extracted segment missing (re-run from the extract stage)")
    kern = [d / f"{seg}{SESSION_KERNEL_SUFFIX[k]}" for k in ("sclk", "spk", "ck")]
    return pld, [k for k in kern if k.is_file()]


def _session_summary(config: PipelineConfig, seg: str) -> dict:
    p = config.path("sessions", seg, "summary.json")
    if not p.is_file():
        raise StageError(f"{p}: session products missing (re-run from the session stage)")
    return json.loads(p.read_text())


def _rel(config: PipelineConfig, p: Path | str) -> str:
    try:
        return Path(p).resolve().relative_to(Path(config.root).resolve()).as_posix()
    except ValueError:
        return str(p)


# ----------------------------------------------------------------------------- stages

def sync(config: PipelineConfig) -> int:
    """List the source; queue packages not seen before for download. Returns how many."""
    if config.inbox is None:
        return 0
    root = Path(config.root)
    src = open_source(config.inbox)
    try:
        offers = src.offers()
    except XsmError as exc:
        enqueue(root, "sync", str(config.inbox))
        _finish(root, "sync", str(config.inbox), "failed", error=str(exc))
        log.error("sync: %s", exc)
        return 0
    known = {r["item"] for r in _rows(root, "SELECT item FROM queue WHERE stage = 'download'")}
    new = [o for o in offers if o.sid not in known]
    for o in new:
        enqueue(root, "download", o.sid, {"package": o.package, "trigger": o.trigger, "source": str(config.inbox)})
    enqueue(root, "sync", str(config.inbox))
    _finish(root, "sync", str(config.inbox), "done", detail={"offered": len(offers), "new": len(new)})
    log.info("sync %s: %d package(s) offered, %d new", config.inbox, len(offers), len(new))
    return len(new)


def stage_download(config: PipelineConfig, item: str, detail: dict) -> tuple[dict, list]:
    """Copy a package; its size (and md5) must equal the trigger's; retries, then failure."""
    src = open_source(detail.get("source") or config.inbox)
    offer = Offer(item, detail["package"], detail["trigger"])
    trg = src.read_trigger(offer)
    final = config.path("packages", offer.package)
    final.parent.mkdir(parents=True, exist_ok=True)
    problems = []
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        tmp = final.with_name(f"{TMP_PREFIX}{final.name}")
        try:
            n = src.fetch(offer, tmp)
        except StageError as exc:
            problems.append(f"attempt {attempt}: {exc}")
            log.warning("download %s, attempt %d: %s", offer.package, attempt, exc)
            continue
        if n != trg.size:
            problems.append(f"attempt {attempt}: {n} bytes, trigger says {trg.size}")
            log.warning("download %s, attempt %d: %d bytes, the trigger says %d", offer.package, attempt,
                        n, trg.size)
            tmp.unlink(missing_ok=True)
            continue
        md5 = file_md5(tmp)
        if trg.md5 is not None and md5 != trg.md5:
            problems.append(f"attempt {attempt}: md5 {md5} != trigger {trg.md5}")
            log.warning("download %s, attempt %d: md5 differs from the trigger", offer.package, attempt)
            tmp.unlink(missing_ok=True)
            continue
        os.replace(tmp, final)
        out = {**detail, "size": n, "md5": md5, "attempts_used": attempt, "problems": problems,
               "downloaded_at": _now().isoformat(timespec="seconds")}
        return out, [("extract", item, {"package": offer.package})]
    raise StageError(f"{offer.package}: download failed after {DOWNLOAD_ATTEMPTS} attempts "
                     f"({problems[-1]})")


def stage_extract(config: PipelineConfig, item: str, detail: dict) -> tuple[dict, list]:
    """Verify the package, then one directory per segment (``.pld`` + kernels)."""
    pkg = config.path("packages", detail["package"])
    if not pkg.is_file():
        raise StageError(f"{pkg}: package missing (re-run from the download stage)")
    segs = verify_package(pkg)
    nxt, out = [], []
    suffix = {"pld": ".pld", **SESSION_KERNEL_SUFFIX}
    with tarfile.open(pkg, "r:*") as tar:
        for ss, kinds in sorted(segs.items()):
            seg = f"{item}_{ss}"
            with staged_dir(config.path("segments", seg)) as tmp:
                for kind, name in kinds.items():
                    if kind not in suffix:
                        continue
                    with tar.extractfile(name) as f, open(tmp / f"{seg}{suffix[kind]}", "wb") as dst:
                        shutil.copyfileobj(f, dst, 1 << 20)
            missing = [k for k in ("sclk", "spk", "ck") if k not in kinds]
            if missing:
                log.warning("%s: segment %s lacks %s; its sun angles get the no-geometry fill", pkg.name, ss,
                            ", ".join(missing))
            out.append(seg)
            nxt.append(("session", seg, {"package": item}))
    return {**detail, "segments": out}, nxt


def stage_session(config: PipelineConfig, item: str, detail: dict) -> tuple[dict, list]:
    """Per-session level 1 + sun angle and the three level-2 selections, written atomically."""
    pld, kern = _segment_files(config, item)
    kernels = [*static_kernel_files(config), *kern]
    with staged_dir(config.path("sessions", item)) as tmp:
        return _session_products(config, item, detail, pld, kernels, tmp)


def _session_products(config: PipelineConfig, item: str, detail: dict, pld: Path, kernels: list[Path], tmp: Path
                      ) -> tuple[dict, list]:
    """The session stage's work, written into ``tmp``."""
    from xsm.archive.selections import make_selections, write_selections
    from xsm.products import geometry, level0
    from xsm.products import level2 as L2

    digests = InputDigests()  # md5 of each input once for the provenance blocks
    res = level0.build_level1([pld], tmp / "level1", mode=config.mode, overwrite=True)
    seg_rows = [s for s in res.segments if s["L0File"] == pld.name] or res.segments
    stats = dict(seg_rows[0]["stats"]) if seg_rows else {}
    days, sun_exp, products = [], 0.0, {}
    cal, n_frames = False, 0
    tstart = tstop = None
    for d in res.days:
        tag = str(d.date).replace("-", "")
        sa, _angles = geometry.make_sa_file(d.fits, kernels, mode=config.mode, overwrite=True, digests=digests)
        day = L2.load_day(d.fits, d.hk, sa)
        sel = make_selections(day, config.caldb, config.mode)
        checkpoint("level2")
        with recorded_inputs(digests([d.fits, d.hk, sa])):
            paths = write_selections(sel, tmp / "level2" / tag, tag, item, checkpoint=checkpoint)
        sun_exp += sel["sun"].exposure
        cal = cal or sel["cal"].spectrum is not None
        n_frames += d.n_rows
        tstart = d.tstart if tstart is None else min(tstart, d.tstart)
        tstop = d.tstop if tstop is None else max(tstop, d.tstop)
        days.append(tag)
        products[tag] = {"level1": {"fits": Path(d.fits).name, "hk": Path(d.hk).name, "sa": Path(sa).name},
                         **{s: {k: p.name for k, p in kinds.items()} for s, kinds in paths.items()}}
    summary = {"segment": item, "L0File": pld.name, "package": detail.get("package"), "days": days,
               "Tstart": tstart, "Tstop": tstop,
               "StartTime": met_to_utc_string(tstart) if tstart is not None else None,
               "StopTime": met_to_utc_string(tstop) if tstop is not None else None,
               "TotalExposure": float(n_frames), "SunExposure": sun_exp, "sunstatus": sun_exp > 0,
               "calstatus": cal, "stats": stats, "products": products,
               "kernels": [k.name for k in kernels if k.name.startswith(item)]}
    (tmp / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True, default=float) + "\n")
    return {**detail, "days": days, "Tstop": tstop}, [("session_qa", item, {"days": days})]


def _orbit_values(config: PipelineConfig, seg: str, summary: dict) -> dict:
    """The orbit-wise columns of a processed segment (``archive.md`` §4.2, ``SESSION_ORBIT_COLUMNS``)."""
    pkg = _rows(Path(config.root), "SELECT detail FROM queue WHERE stage = 'download' AND item = ?",
                [summary.get("package") or seg.rsplit("_", 1)[0]])
    dl = json.loads(pkg[0]["detail"]) if pkg and pkg[0]["detail"] else {}
    page = config.summary / "sessions" / seg / "index.html"
    return {"procstatus": True, **{k: summary[k] for k in ("StartTime", "StopTime", "Tstart", "Tstop", "TotalExposure",
                                                          "SunExposure", "calstatus", "sunstatus")},
            "indexfile": _rel(config, page),
            "PackageMd5": dl.get("md5"),
            "DownloadedAt": _dt.datetime.fromisoformat(dl["downloaded_at"]) if dl.get("downloaded_at") else None,
            "ProcessedAt": _now()}


def _apply_orbit(config: PipelineConfig, segs: Iterable[str]) -> None:
    """Write the pipeline's orbit-wise columns of segments (the row keeps build_day's columns)."""
    summaries = {s: _session_summary(config, s) for s in segs}
    vals = {s: _orbit_values(config, s, summary) for s, summary in summaries.items()}
    with open_catalog(config.root) as cat:
        for seg, v in vals.items():
            summary = summaries[seg]
            key = summary["L0File"]
            if not cat.rows("SELECT 1 FROM xsmorbitdata WHERE L0File = ?", [key]):
                sid, _, ss = seg.rpartition("_")
                cat.upsert_segment({"L0File": key, "SessionId": sid, "Segment": ss,
                                    "Station": sid[5:8], "Orbit": int(sid[11:16]) if sid[11:16].isdigit() else None,
                                    "procstatus": True, "Days": summary["days"], "stats": summary["stats"], **v})
            else:
                sets = ", ".join(f'"{k}" = ?' for k in SESSION_ORBIT_COLUMNS)
                cat.con.execute(f"UPDATE xsmorbitdata SET {sets} WHERE L0File = ?",
                                [v[k] for k in SESSION_ORBIT_COLUMNS] + [key])


def _segment_failed(config: PipelineConfig, seg: str) -> None:
    """Record a segment whose own processing failed in the orbit-wise table (procstatus false)."""
    sid, _, ss = seg.rpartition("_")
    with open_catalog(config.root) as cat:
        key = f"{seg}.pld"
        if cat.rows("SELECT 1 FROM xsmorbitdata WHERE L0File = ?", [key]):
            cat.con.execute("UPDATE xsmorbitdata SET procstatus = false WHERE L0File = ?", [key])
        else:
            cat.upsert_segment({"L0File": key, "SessionId": sid, "Segment": ss, "Station": sid[5:8],
                                "Orbit": int(sid[11:16]) if sid[11:16].isdigit() else None, "procstatus": False})


def ready_days(config: PipelineConfig, *, flush: bool) -> dict[str, list[str]]:
    """Days whose data are complete (``level0.md`` §4.2) -> their processed segments.

    Nothing is ready while a package or segment is still pending or running. A day is then
    ready when a processed segment holds data later than the next midnight + 10 min, or with
    ``flush``. Segments whose own processing failed are left out.
    """
    root = Path(config.root)
    busy = _rows(root, "SELECT count(*) AS n FROM queue WHERE state IN ('pending', 'running') AND stage IN "
                       "('download', 'extract', 'session', 'session_qa')")[0]["n"]
    if busy:
        return {}
    done = _rows(root, "SELECT q.item, s.detail FROM queue q JOIN queue s ON s.item = q.item AND "
                       "s.stage = 'session' WHERE q.stage = 'session_qa' AND q.state = 'done' AND s.state = 'done'")
    segs: dict[str, list[str]] = {}
    latest = max((json.loads(r["detail"]).get("Tstop") or 0.0 for r in done), default=0.0)
    for r in done:
        for d in json.loads(r["detail"]).get("days", []):
            segs.setdefault(d, []).append(r["item"])
    out = {}
    for d, ss in sorted(segs.items()):
        if flush or latest > day_start_met(d) + 86400.0 + DAY_MARGIN_S:
            out[d] = sorted(ss)
    return out


def queue_ready_days(config: PipelineConfig, *, flush: bool) -> list[str]:
    """Queue the merge of ready days whose segment set changed since their last merge."""
    root = Path(config.root)
    merged = {r["item"]: json.loads(r["detail"] or "{}").get("segments")
              for r in _rows(root, "SELECT item, detail FROM queue WHERE stage = 'merge'")}
    queued = []
    for d, segs in ready_days(config, flush=flush).items():
        if merged.get(d) != segs:
            enqueue(root, "merge", d, {"segments": segs})
            queued.append(d)
    return queued


def stage_session_qa(config: PipelineConfig, item: str, detail: dict) -> tuple[dict, list]:
    """Session summary page and orbit-wise row."""
    from xsm.archive import pages

    summary = _session_summary(config, item)
    pages.session_page(config.summary, config.path("sessions", item), summary)
    _apply_orbit(config, [item])
    pages.index_page(config.root, config.summary)
    return {**detail, "page": _rel(config, config.summary / "sessions" / item / "index.html")}, []


def stage_merge(config: PipelineConfig, item: str, detail: dict) -> tuple[dict, list]:
    """Day-wise level 1, level 2, labels and zip from the day's processed segments."""
    from xsm.archive.build import build_day

    segs = detail.get("segments") or []
    if not segs:
        raise StageError(f"day {item}: no processed segment to merge")
    plds, kern = [], list(static_kernel_files(config))
    for s in segs:
        pld, k = _segment_files(config, s)
        plds.append(pld)
        kern += k
    res = build_day(config.root, item, sessions=plds, kernels=kern, caldb=config.caldb, mode=config.mode,
                    processing_date=config.processing_date, im=config.im)
    _apply_orbit(config, segs)
    return {**detail, "version": res.version, "changed": res.changed, "sun": res.sun,
            "zip": _rel(config, res.zip) if res.zip else None}, [("day_qa", item, None)]


def stage_day_qa(config: PipelineConfig, item: str, detail: dict) -> tuple[dict, list]:
    """Day summary page (archive products + the sessions' calibration spectra), index page."""
    from xsm.archive import pages

    segs = _rows(Path(config.root), "SELECT detail FROM queue WHERE stage = 'merge' AND item = ?", [item])
    seg_list = json.loads(segs[0]["detail"]).get("segments", []) if segs else []
    page = pages.day_page(config.root, config.summary, item,
                          [config.path("sessions", s) for s in seg_list])
    with open_catalog(config.root) as cat:
        cat.update_day(item, indexfile=_rel(config, page))
    pages.index_page(config.root, config.summary)
    return {**detail, "page": _rel(config, page)}, []


#: Notes already logged by this process (the missing-schemas warning is shown once, not per day).
_NOTES_SHOWN: set[str] = set()


def stage_archive(config: PipelineConfig, item: str, detail: dict) -> tuple[dict, list]:
    """Validate the day's products (fixity, zip members, labels) before release.

    Without the PDS4 schema files the labels get the data checks only (``schemas: false`` in the
    detail); the warning saying so is logged once per process.
    """
    from xsm.archive.verify import verify

    rep = verify(config.root, days=[item])
    with open_catalog(config.root) as cat:
        cat.update_day(item, archivestatus=rep.ok)
    if rep.schema_note and rep.schema_note not in _NOTES_SHOWN:
        _NOTES_SHOWN.add(rep.schema_note)
        log.warning("archive %s: %s", item, rep.schema_note)
    if not rep.ok:
        first = rep.problems[0]
        raise StageError(f"day {item}: {len(rep.problems)} archive problem(s), first: {first}")
    return {**detail, "files": rep.files, "labels": rep.labels, "schemas": rep.schemas_checked}, []


def stage_upload(config: PipelineConfig, item: str, detail: dict) -> tuple[dict, list]:
    """Copy the day's zip, its label and sidecar to the destination; md5 re-checked."""
    if config.upload_dir is None:
        with open_catalog(config.root) as cat:
            cat.update_day(item, uploadstatus=False)
        return {**detail, "uploaded": False, "note": "no upload destination configured"}, []
    with open_catalog(config.root) as cat:
        z = cat.rows("SELECT path, md5, label FROM products WHERE day = ? AND kind = 'zip' AND current "
                     "ORDER BY version DESC LIMIT 1", [item])
    if not z:
        raise StageError(f"day {item}: no current zip in the catalog")
    root = Path(config.root)
    zpath = root / z[0]["path"]
    files = [zpath, root / z[0]["label"], zpath.with_name(zpath.stem + "_zip.json")]
    dest = Path(config.upload_dir) / item[:4]
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not f.is_file():
            raise StageError(f"{f}: missing, cannot upload day {item}")
        with atomic_path(dest / f.name) as tmp:
            shutil.copyfile(f, tmp)
    if file_md5(dest / zpath.name) != z[0]["md5"]:
        raise StageError(f"{dest / zpath.name}: md5 of the uploaded zip differs from the catalog")
    with open_catalog(config.root) as cat:
        cat.update_day(item, uploadstatus=True)
    return {**detail, "uploaded": True, "destination": str(dest)}, []


STAGE_FUNCS: dict[str, Callable[[PipelineConfig, str, dict], tuple[dict, list]]] = {
    "download": stage_download, "extract": stage_extract, "session": stage_session,
    "session_qa": stage_session_qa, "merge": stage_merge, "day_qa": stage_day_qa,
    "archive": stage_archive, "upload": stage_upload}


# ----------------------------------------------------------------------------- running

def _log_path(config: PipelineConfig, stage: str, item: str) -> Path:
    p = config.path("logs", stage, f"{item}.log")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def run_item(config: PipelineConfig, row: dict) -> bool:
    """Run one claimed item; on success queue the next stage(s), on failure record the error."""
    stage, item = row["stage"], row["item"]
    lp = _log_path(config, stage, item)
    handler = logging.FileHandler(lp, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    top = logging.getLogger("xsm")
    old_level, console_level = top.level, top.getEffectiveLevel()
    # the item's log file gets INFO; the console handlers keep what they showed before
    saved = [(h, h.level) for h in (*top.handlers, *logging.getLogger().handlers)]
    for h, lv in saved:
        h.setLevel(max(lv, console_level))
    top.addHandler(handler)
    top.setLevel(min(console_level, logging.INFO))
    t = time.perf_counter()
    log.info("%s %s: start (attempt %d)", stage, item, row["attempts"] + 1)
    try:
        detail, nxt = STAGE_FUNCS[stage](config, item, dict(row["detail"]))
    except Exception as exc:  # noqa: BLE001 - every failure goes to the failure queue
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, XsmError):
            msg = f"{type(exc).__name__}: {msg}"
        log.error("%s %s: failed: %s", stage, item, msg)
        log.info("traceback of %s %s:\n%s", stage, item, traceback.format_exc())  # the log file only
        _finish(config.root, stage, item, "failed", error=msg, log_path=_rel(config, lp))
        if stage in SEGMENT_STAGES:
            _segment_failed(config, item)
        return False
    finally:
        top.removeHandler(handler)
        handler.close()
        top.setLevel(old_level)
        for h, lv in saved:
            h.setLevel(lv)
    detail["seconds"] = round(time.perf_counter() - t, 3)
    for nstage, nitem, ndetail in nxt:
        enqueue(config.root, nstage, nitem, ndetail)
    if stage in NEXT_STAGE and not any(n[0] == NEXT_STAGE[stage] for n in nxt):
        enqueue(config.root, NEXT_STAGE[stage], item)
    _finish(config.root, stage, item, "done", detail=detail, log_path=_rel(config, lp))
    log.info("%s %s: done in %.1f s", stage, item, detail["seconds"])
    return True


def drain(config: PipelineConfig, *, flush: bool | None = None,
          progress: Callable[[str, str, bool], None] | None = None, summary: RunSummary | None = None
          ) -> RunSummary:
    """Process every queue until all are empty (merges queued as days become complete)."""
    summary = summary or RunSummary()
    flush = config.flush if flush is None else flush
    ran = False
    while True:
        row = _claim(config.root)
        if row is None:
            if queue_ready_days(config, flush=flush):
                continue
            break
        ok = run_item(config, row)
        if ok:
            summary.done[row["stage"]] = summary.done.get(row["stage"], 0) + 1
            if row["stage"] == "session_qa":
                queue_ready_days(config, flush=False)
        else:
            summary.failed.append({"stage": row["stage"], "item": row["item"]})
        if progress:
            progress(row["stage"], row["item"], ok)
        ran = True
    if ran:  # statuses set by the last stages (archive, upload) and the failures
        from xsm.archive import pages

        pages.index_page(config.root, config.summary)
    return summary


def run(config: PipelineConfig, *, watch: bool = False, interval_s: float = 60.0, max_passes: int | None = None,
        progress: Callable[[str, str, bool], None] | None = None) -> RunSummary:
    """``xsm pipeline run``: sync the source, process every queue; with ``watch``, repeat.

    Raises
    ------
    ArchiveError
        Another pipeline holds the archive's lock.
    """
    root = Path(config.root)
    root.mkdir(parents=True, exist_ok=True)
    summary = RunSummary()
    with pipeline_lock(root):
        recover(config)
        passes = 0
        while True:
            summary.synced += sync(config)
            drain(config, flush=config.flush and not watch, progress=progress, summary=summary)
            passes += 1
            if not watch or (max_passes is not None and passes >= max_passes):
                break
            time.sleep(interval_s)
    return summary


def process(config: PipelineConfig, progress=None) -> RunSummary:
    """Process what is queued (no sync): used after :func:`retry` and :func:`rerun`."""
    with pipeline_lock(config.root):
        recover(config)
        return drain(config, progress=progress)


def _stage_of(root: Path, item: str) -> list[dict]:
    return _rows(root, "SELECT stage, state FROM queue WHERE item = ? AND stage <> 'sync'", [item])


def retry(config: PipelineConfig, item: str, from_stage: str | None = None) -> list[tuple[str, str]]:
    """Put a failed item back into its stage's queue (or into ``from_stage``'s).

    Returns the (stage, item) pairs queued.
    """
    root = Path(config.root)
    rows = _stage_of(root, item)
    if not rows:
        raise ParameterError(f"item {item!r} is not known to the pipeline (see `xsm pipeline status`)")
    if from_stage is None:
        failed = [r["stage"] for r in rows if r["state"] == "failed"]
        if not failed:
            raise ParameterError(f"item {item!r} has no failed stage; give --from-stage to re-run it")
        from_stage = failed[0]
    if from_stage not in STAGES:
        raise ParameterError(f"stage {from_stage!r}: use one of {', '.join(STAGES)}")
    kind = _item_kind(item)
    if from_stage not in _STAGES_OF_KIND[kind]:
        raise ParameterError(f"item {item!r} is a {kind}; stage {from_stage} takes "
                             f"{_kind_of_stage(from_stage)}s")
    with pipeline_lock(root):
        enqueue(root, from_stage, item)
    return [(from_stage, item)]


_STAGES_OF_KIND = {"package": PACKAGE_STAGES, "segment": SEGMENT_STAGES, "day": DAY_STAGES}


def _kind_of_stage(stage: str) -> str:
    return next(k for k, v in _STAGES_OF_KIND.items() if stage in v)


def _item_kind(item: str) -> str:
    if len(item) == 8 and item.isdigit():
        return "day"
    if len(item) > 3 and item[-3] == "_" and item[-2:].isdigit():
        return "segment"
    return "package"


def rerun(config: PipelineConfig, day_from: str, day_to: str, from_stage: str) -> list[tuple[str, str]]:
    """Re-execute every item of days ``day_from``..``day_to`` from ``from_stage`` on.

    Day stages queue the days; segment stages the segments with data in those days; package
    stages their packages. Returns the (stage, item) pairs queued.
    """
    if from_stage not in STAGES:
        raise ParameterError(f"stage {from_stage!r}: use one of {', '.join(STAGES)}")
    d0, d1 = date_tag(parse_date(day_from)), date_tag(parse_date(day_to))
    if d1 < d0:
        raise ParameterError(f"days {day_from}..{day_to}: the range is empty")
    root = Path(config.root)
    sessions = _rows(root, "SELECT item, detail FROM queue WHERE stage = 'session'")
    segs = sorted(r["item"] for r in sessions
                  if any(d0 <= d <= d1 for d in json.loads(r["detail"] or "{}").get("days", [])))
    if from_stage in DAY_STAGES:
        items = sorted({r["item"] for r in _rows(root, "SELECT item FROM queue WHERE stage = 'merge' "
                                                       "AND item BETWEEN ? AND ?", [d0, d1])})
    elif from_stage in SEGMENT_STAGES:
        items = segs
    else:
        items = sorted({s.rsplit("_", 1)[0] for s in segs})
    if not items:
        raise ParameterError(f"no {_kind_of_stage(from_stage)} of {d0}..{d1} known to the pipeline")
    with pipeline_lock(root):
        for it in items:
            enqueue(root, from_stage, it)
        if from_stage not in DAY_STAGES:
            # the days must be merged again once their segments are done
            with open_catalog(root) as cat:
                cat.con.execute("UPDATE queue SET detail = NULL WHERE stage = 'merge' AND item BETWEEN ? AND ?",
                                [d0, d1])
    return [(from_stage, it) for it in items]
