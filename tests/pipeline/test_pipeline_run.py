"""The pipeline against a flaky HTTP source: retries, failure queue, statuses, CLI, lock."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_helpers import CORRUPT_SID, config_for
from typer.testing import CliRunner

from xsm.archive.catalog import run_query
from xsm.archive.cli import app
from xsm.archive.pipeline import (DOWNLOAD_ATTEMPTS, STAGES, drain, pipeline_lock, queue_rows, run, status,
                                  sync, verify_package)
from xsm.archive.sources import open_source, parse_trigger
from xsm.products.errors import ArchiveError, InputFormatError

runner = CliRunner()


def _rows(cfg, stage):
    return {r["item"]: r for r in queue_rows(cfg.root) if r["stage"] == stage}


def test_http_retries_truncated_and_failed_downloads(http_archive, pipeline_sim):
    cfg, summary, counts, truncated, failed = http_archive
    dl = _rows(cfg, "download")
    sids = {s.sid for s in pipeline_sim.sessions}
    assert set(dl) == sids | {CORRUPT_SID}
    assert all(r["state"] == "done" for r in dl.values())
    # the truncated download and the 503 were each retried once, and the problems recorded
    assert counts[truncated] == 2 and counts[failed] == 2
    t = dl[truncated[:-4]]["detail"]
    assert t["attempts_used"] == 2 and "50000 bytes, trigger says" in t["problems"][0]
    f = dl[failed[:-4]]["detail"]
    assert f["attempts_used"] == 2 and "503" in f["problems"][0]
    # the packages kept are the served ones, byte for byte
    for s in pipeline_sim.sessions:
        assert (cfg.work / "packages" / s.package.name).read_bytes() == s.package.read_bytes()
    log = (cfg.root / dl[truncated[:-4]]["log_path"]).read_text()
    assert "attempt 1" in log and "the trigger says" in log


def test_corrupted_package_in_the_failure_list(http_archive):
    cfg, summary, *_ = http_archive
    assert summary.failed == [{"stage": "extract", "item": CORRUPT_SID}]
    st = status(cfg.root)
    (f,) = st["failed"]
    assert (f["stage"], f["item"]) == ("extract", CORRUPT_SID)
    assert f["error"].startswith(str(cfg.work / "packages" / f"{CORRUPT_SID}.tar"))
    assert "does not match the manifest (md5)" in f["error"] and "\n" not in f["error"]
    assert "does not match the manifest" in (cfg.root / f["log"]).read_text()
    # it went no further
    assert not [r for r in queue_rows(cfg.root) if r["item"].startswith(CORRUPT_SID) and r["stage"] != "download"
                and r["stage"] != "extract"]


def test_every_stage_done_and_day_statuses(http_archive, pipeline_sim):
    cfg, summary, *_ = http_archive
    st = status(cfg.root)
    for stage in STAGES:
        c = st["counts"][stage]
        assert c["pending"] == 0 and c["running"] == 0, stage
    segs = {f"{s.sid}_00" for s in pipeline_sim.sessions}
    assert set(_rows(cfg, "session")) == segs and set(_rows(cfg, "session_qa")) == segs
    (day,) = st["days"]
    assert day["day"] == "20240501" and day["version"] == 1
    assert day["processed"] and day["sun"] and day["archived"] and day["uploaded"]
    assert day["page"] == "summary/days/20240501/index.html"
    merge = _rows(cfg, "merge")["20240501"]["detail"]
    assert merge["segments"] == sorted(segs)
    # uploaded: zip, label and sidecar, the zip identical to the archive's
    zrow = run_query(cfg.root, "SELECT path, md5 FROM products WHERE kind = 'zip'").as_dicts()[0]
    up = cfg.upload_dir / "2024" / Path(zrow["path"]).name
    assert up.read_bytes() == (cfg.root / zrow["path"]).read_bytes()
    assert up.with_suffix(".xml").is_file() and (up.parent / (up.stem + "_zip.json")).is_file()


def test_orbit_rows_from_the_sessions(http_archive, pipeline_sim):
    cfg, *_ = http_archive
    rows = run_query(cfg.root, "SELECT * FROM xsmorbitdata ORDER BY L0File").as_dicts()
    assert [r["L0File"] for r in rows] == sorted(f"{s.sid}_00.pld" for s in pipeline_sim.sessions)
    frames = {f"{s.sid}_00.pld": s.n_records for s in pipeline_sim.sessions}
    for r in rows:
        # every record of a session is a frame of its level 1, but the few corrupted ones
        assert frames[r["L0File"]] - 5 <= r["TotalExposure"] <= frames[r["L0File"]]
        assert r["indexfile"] == f"summary/sessions/{r['L0File'][:-4]}/index.html"
        assert (cfg.root / r["indexfile"]).is_file()
        assert r["PackageMd5"] and r["DownloadedAt"] is not None and r["Days"] == ["20240501"]
        assert 0 < r["good_fraction"] <= 1
    assert any(r["SunExposure"] > 0 for r in rows)


def test_session_selections_written(http_archive, pipeline_sim):
    cfg, *_ = http_archive
    from astropy.io import fits

    for s in pipeline_sim.sessions:
        seg = f"{s.sid}_00"
        summary = json.loads((cfg.work / "sessions" / seg / "summary.json").read_text())
        prods = summary["products"]["20240501"]
        l2 = cfg.work / "sessions" / seg / "level2" / "20240501"
        raw = prods["raw"]
        with fits.open(l2 / raw["pha"]) as h:
            assert h["SPECTRUM"].header["CHANTYPE"] == "PHA"
            # whole observation, uncalibrated: GTI exposure >= the sun selection's
        with fits.open(l2 / raw["gti"]) as g, fits.open(l2 / prods["sun"]["gti"]) as gs:
            assert g[1].header["EXPOSURE"] >= gs[1].header["EXPOSURE"]
        if "lc" in prods["sun"]:
            with fits.open(l2 / prods["sun"]["lc"]) as h:
                assert h[1].header["TIMEDEL"] == 1


def test_download_fails_after_retries_on_a_wrong_trigger(tmp_path, real_caldb):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "XSM01G26CHO0000100NNNN24122100000000.tar").write_bytes(b"x" * 1000)
    (inbox / "XSM01G26CHO0000100NNNN24122100000000.trg").write_text("size=999\nmd5=" + "0" * 32 + "\n")
    cfg = config_for(tmp_path / "archive", str(inbox), real_caldb)
    summary = run(cfg)
    assert summary.failed == [{"stage": "download", "item": "XSM01G26CHO0000100NNNN24122100000000"}]
    (f,) = status(cfg.root)["failed"]
    assert f["error"] == (f"XSM01G26CHO0000100NNNN24122100000000.tar: download failed after {DOWNLOAD_ATTEMPTS} "
                          "attempts (attempt 3: 1000 bytes, trigger says 999)")
    assert not list((cfg.work / "packages").iterdir())  # nothing half-written
    # a second run does not download it again; retry does (and fails the same way)
    assert sync(cfg) == 0
    r = runner.invoke(app, ["pipeline", "retry", "XSM01G26CHO0000100NNNN24122100000000", "-A", str(cfg.root)])
    assert r.exit_code == 1 and "download" in r.output
    assert _rows(cfg, "download")["XSM01G26CHO0000100NNNN24122100000000"]["attempts"] == 1


def test_verify_package_errors_name_the_file(tmp_path, pipeline_sim):
    pkg = pipeline_sim.sessions[0].package
    assert set(verify_package(pkg)["00"]) == {"pld", "spk", "ck", "sclk"}
    cut = tmp_path / pkg.name
    cut.write_bytes(pkg.read_bytes()[:4096])
    with pytest.raises(InputFormatError, match=rf"^{cut}: "):
        verify_package(cut)


def test_triggers_and_sources(tmp_path):
    assert parse_trigger("size=12\nmd5=" + "a" * 32).size == 12
    with pytest.raises(InputFormatError, match="no valid size"):
        parse_trigger("md5=00", "x.trg")
    (tmp_path / "A.tar").write_bytes(b"")
    (tmp_path / "B.tar.gz").write_bytes(b"")
    (tmp_path / "B.trg").write_text("size=0\n")
    (tmp_path / "C.trg").write_text("size=0\n")
    offers = open_source(tmp_path).offers()
    assert [(o.sid, o.package) for o in offers] == [("B", "B.tar.gz")]  # A has no trigger, C no package


def test_one_pipeline_per_archive(tmp_path, good_inbox, real_caldb):
    cfg = config_for(tmp_path / "archive", str(good_inbox), real_caldb)
    with pipeline_lock(cfg.root):
        with pytest.raises(ArchiveError, match="another pipeline .* is running on this archive"):
            run(cfg)
        r = runner.invoke(app, ["pipeline", "run", "--inbox", str(good_inbox), "-A", str(cfg.root)])
        assert r.exit_code == 1 and "another pipeline" in r.output and len(r.output.strip().splitlines()) == 1
    assert drain(cfg).done == {}  # nothing queued: nothing done


def test_status_retry_rerun_cli(http_archive):
    cfg, *_ = http_archive
    r = runner.invoke(app, ["pipeline", "status", "-A", str(cfg.root), "--json"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.stdout)
    assert st["failed"][0]["item"] == CORRUPT_SID
    # retrying the corrupted package fails the same way, with the same one-line error
    r = runner.invoke(app, ["pipeline", "retry", CORRUPT_SID, "-A", str(cfg.root), "--caldb", str(cfg.caldb)])
    assert r.exit_code == 1
    assert _rows(cfg, "extract")[CORRUPT_SID]["state"] == "failed"
    # re-running the day from the archive stage re-validates it; nothing changes
    before = run_query(cfg.root, "SELECT path, md5 FROM products ORDER BY path").rows
    r = runner.invoke(app, ["pipeline", "rerun", "--days", "2024-05-01..2024-05-01", "--from-stage", "archive",
                            "-A", str(cfg.root), "--upload-dir", str(cfg.upload_dir), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["done"] == {"archive": 1, "upload": 1}
    assert run_query(cfg.root, "SELECT path, md5 FROM products ORDER BY path").rows == before
    r = runner.invoke(app, ["pipeline", "rerun", "--days", "2023-01-01", "--from-stage", "merge", "-A", str(cfg.root)])
    assert r.exit_code == 2 and "no day of 20230101..20230101" in r.output
    r = runner.invoke(app, ["pipeline", "retry", "20240501", "--from-stage", "extract", "-A", str(cfg.root)])
    assert r.exit_code == 2 and "is a day" in r.output
    # archive.md §3.2 form: --stage S --item ID (the day page again)
    page = cfg.summary / "days" / "20240501" / "index.html"
    page.unlink()
    r = runner.invoke(app, ["pipeline", "rerun", "--stage", "day_qa", "--item", "20240501", "-A", str(cfg.root),
                            "--upload-dir", str(cfg.upload_dir), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["done"] == {"day_qa": 1, "archive": 1, "upload": 1} and page.is_file()
    r = runner.invoke(app, ["pipeline", "rerun", "--stage", "merge", "-A", str(cfg.root)])
    assert r.exit_code == 2 and "either --days" in r.output


def test_day_merged_only_when_complete(tmp_path):
    """level0.md §4.2: no merge while a session is pending; a day is complete when a processed
    session holds data after the next midnight + 10 min (or when flushed); failed sessions are
    left out."""
    from xsm.archive.pipeline import _finish, enqueue, queue_ready_days, ready_days
    from xsm.products.met import day_start_met

    cfg = config_for(tmp_path / "archive", None, None)
    d1 = day_start_met("20240501")

    def session(seg, days, tstop, state="done"):
        enqueue(cfg.root, "session", seg, {"days": days, "Tstop": tstop})
        _finish(cfg.root, "session", seg, state)
        enqueue(cfg.root, "session_qa", seg)
        _finish(cfg.root, "session_qa", seg, "done")

    session("A_00", ["20240501"], d1 + 80000)
    enqueue(cfg.root, "extract", "B")  # a package still waiting
    assert ready_days(cfg, flush=True) == {}
    _finish(cfg.root, "extract", "B", "failed")
    assert ready_days(cfg, flush=False) == {}
    assert ready_days(cfg, flush=True) == {"20240501": ["A_00"]}
    session("C_00", ["20240501", "20240502"], d1 + 86400 + 500)  # not yet 10 min into the next day
    assert ready_days(cfg, flush=False) == {}
    session("D_00", ["20240502"], d1 + 86400 + 700, state="failed")  # its own processing failed
    session("E_00", ["20240502"], d1 + 86400 + 601)
    assert ready_days(cfg, flush=False) == {"20240501": ["A_00", "C_00"]}  # 20240502 may get more data
    assert ready_days(cfg, flush=True) == {"20240501": ["A_00", "C_00"], "20240502": ["C_00", "E_00"]}
    assert queue_ready_days(cfg, flush=False) == ["20240501"]
    assert queue_ready_days(cfg, flush=False) == []  # queued once for the same segment set


def test_failed_session_recorded_and_not_merged(tmp_path, real_caldb):
    """A package that extracts but whose level 0 cannot be decoded: the session goes to the
    failure list, the orbit-wise row says so, no day is merged from it, the index shows it."""
    import numpy as np

    from xsm.products.level0 import write_session

    inbox = tmp_path / "inbox"
    sid = "XSM01G26CHO0000100NNNN24122100000000"
    write_session(inbox, sid, [np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()])
    cfg = config_for(tmp_path / "archive", str(inbox), real_caldb)
    summary = run(cfg)
    assert summary.failed == [{"stage": "session", "item": f"{sid}_00"}]
    (f,) = status(cfg.root)["failed"]
    assert f["error"].startswith(str(cfg.work / "segments" / f"{sid}_00" / f"{sid}_00.pld"))
    assert "\n" not in f["error"] and (cfg.root / f["log"]).is_file()
    row = run_query(cfg.root, "SELECT L0File, procstatus FROM xsmorbitdata").as_dicts()
    assert row == [{"L0File": f"{sid}_00.pld", "procstatus": False}]
    assert not _rows(cfg, "merge") and not (cfg.work / "sessions" / f"{sid}_00").exists()
    assert not list((cfg.work / "sessions").glob(".tmp-*"))


def test_watch_polls_and_offers_new_packages_once(tmp_path, real_caldb):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for k in range(2):
        sid = f"XSM01G26CHO000010{k}NNNN24122100000000"
        (inbox / f"{sid}.tar").write_bytes(b"y" * 100)
        (inbox / f"{sid}.trg").write_text("size=100\n")
    cfg = config_for(tmp_path / "archive", str(inbox), real_caldb)
    summary = run(cfg, watch=True, interval_s=0.0, max_passes=3)
    assert summary.synced == 2  # offered once each over three polls
    assert [f["stage"] for f in summary.failed] == ["extract", "extract"]  # not tar files
    assert _rows(cfg, "sync")[str(inbox)]["detail"] == {"offered": 2, "new": 0}


def test_catalog_busy_in_another_process_is_waited_for(tmp_path):
    """DuckDB: one process at a time; the pipeline's opens wait (``xsm query`` meanwhile)."""
    import subprocess
    import sys

    from xsm.archive.catalog import catalog_path
    from xsm.archive.pipeline import enqueue

    cfg = config_for(tmp_path / "archive", None, None)
    enqueue(cfg.root, "download", "X", {"package": "X.tar"})
    hold = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "time.sleep(1.5); c.close()")
    p = subprocess.Popen([sys.executable, "-c", hold, str(catalog_path(cfg.root))], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        assert status(cfg.root)["counts"]["download"]["pending"] == 1
    finally:
        p.wait(timeout=30)
        p.stdout.close()
