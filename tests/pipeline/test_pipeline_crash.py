"""kill -9 during level 2, restart; stop inside the day build, restart: the same archive as an
uninterrupted run."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import zipfile

import pytest
from pipeline_helpers import PROCESSING_DATE, config_for

from xsm.archive import build
from xsm.archive.build import content_fingerprint
from xsm.archive.catalog import run_query
from xsm.archive.pipeline import KILL_ENV, queue_rows, run

#: Columns that must be equal between two runs (timestamps and checksums of files that hold
#: the FITS DATE keyword are not; nor is the size of a zip: deflate of other DATE strings).
PRODUCT_COLUMNS = ("path", "lid", "vid", "kind", "level", "day", "version", "tstart", "tstop", "exposure",
                   "rows", "size", "caldbver", "caldb_files", "xsmswver", "procmode", "label", "source",
                   "current", "supersedes", "reason")
VOLATILE_DAY = {"UpdatedAt", "ZipMd5", "ZipSize"}
VOLATILE_ORBIT = {"ProcessedAt", "DownloadedAt"}
_LABEL_VOLATILE = re.compile(r"<(md5_checksum|creation_date_time)>[^<]*</\1>")
_ZIP_SIZE = re.compile(r"<file_size[^>]*>[^<]*</file_size>")

RUN = ("import sys, datetime; from pathlib import Path; "
       "from xsm.archive.pipeline import PipelineConfig, run; "
       "run(PipelineConfig(root=Path(sys.argv[1]), inbox=sys.argv[2], caldb=Path(sys.argv[3]), "
       "upload_dir=Path(sys.argv[4]), processing_date=datetime.date.fromisoformat(sys.argv[5])))")


def _table(root, sql, drop=()):
    rows = run_query(root, sql).as_dicts()
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.glob("20*/**/*") if p.is_file())


def _interrupt(*args, **kw):
    raise KeyboardInterrupt("stopped after moving the day's files, before cataloguing them")


def test_kill_during_level2_and_resume_gives_the_same_archive(tmp_path, good_inbox, http_archive, real_caldb,
                                                              monkeypatch):
    ref_cfg = http_archive[0]
    root, upload = tmp_path / "archive", tmp_path / "upload"
    env = {**os.environ, KILL_ENV: "level2:sun"}
    p = subprocess.run([sys.executable, "-c", RUN, str(root), str(good_inbox), str(real_caldb), str(upload),
                        PROCESSING_DATE.isoformat()], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]

    # after the crash: one session item running, its partial output only in a temporary directory
    rows = queue_rows(root)
    assert [(r["stage"], r["state"]) for r in rows if r["state"] not in ("done",)][0] == ("session", "running")
    sessions = root / "pipeline" / "sessions"
    assert not [d for d in sessions.iterdir() if not d.name.startswith(".tmp-")]
    partial = [d for d in sessions.iterdir() if d.name.startswith(".tmp-")]
    assert partial and any(partial[0].rglob("*_sun.gti"))
    assert _files(root) == []  # no day product

    # restart, and stop again inside the day build: its files moved into place, not yet catalogued
    cfg = config_for(root, str(good_inbox), real_caldb, upload_dir=upload)
    monkeypatch.setattr(build, "index_file", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    assert [r["stage"] for r in queue_rows(root) if r["state"] == "running"] == ["merge"]
    assert any(p.name.endswith(".fits") for p in (root / "2024").rglob("*"))
    assert not list((root / "pipeline" / "sessions").glob(".tmp-*"))
    monkeypatch.undo()

    # restart: resumes, the day build rolls back the uncatalogued files (its journal), completes
    summary = run(cfg)
    assert summary.failed == []
    assert summary.done == {"merge": 1, "day_qa": 1, "archive": 1, "upload": 1}
    assert not (root / "pipeline" / "orphans").exists() and not list(root.glob(".build_*.journal.json"))
    assert all(r["state"] == "done" for r in queue_rows(root))

    # the same archive as the uninterrupted run
    ref = ref_cfg.root
    assert _files(root) == _files(ref)
    for rel in _files(ref):
        a, b = root / rel, ref / rel
        if rel.endswith((".fits", ".hk", ".sa", ".gti", ".pha", ".lc")):
            assert content_fingerprint(a) == content_fingerprint(b), rel
            assert a.stat().st_size == b.stat().st_size, rel
        elif rel.endswith(".xml"):
            ta, tb = (_LABEL_VOLATILE.sub("", x.read_text()) for x in (a, b))
            if "_level" not in rel:  # the day-zip label: the zip's size
                ta, tb = _ZIP_SIZE.sub("", ta), _ZIP_SIZE.sub("", tb)
            assert ta == tb, rel
        elif rel.endswith(".zip"):
            with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
                assert [(i.filename, i.file_size, i.date_time) for i in za.infolist()] == \
                       [(i.filename, i.file_size, i.date_time) for i in zb.infolist()]
    cols = ", ".join(c if c != "size" else "CASE WHEN kind = 'zip' THEN NULL ELSE size END AS size"
                     for c in PRODUCT_COLUMNS)
    assert _table(root, f"SELECT {cols} FROM products ORDER BY path") == \
           _table(ref, f"SELECT {cols} FROM products ORDER BY path")
    assert _table(root, "SELECT * FROM xsmdaywisedata", VOLATILE_DAY) == \
           _table(ref, "SELECT * FROM xsmdaywisedata", VOLATILE_DAY)
    assert _table(root, "SELECT * FROM xsmorbitdata ORDER BY L0File", VOLATILE_ORBIT) == \
           _table(ref, "SELECT * FROM xsmorbitdata ORDER BY L0File", VOLATILE_ORBIT)
    assert _table(root, "SELECT * FROM flares ORDER BY flare_num") == \
           _table(ref, "SELECT * FROM flares ORDER BY flare_num")
