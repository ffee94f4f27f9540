"""build_day holds the catalog's write lock only to plan and to commit: while it makes products
another process queries the catalog at once, and a build whose plan went stale (another build of
the day committed meanwhile) fails with one line and writes nothing."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading

import pytest

from xsm.archive import build
from xsm.archive.build import build_day, journal_path
from xsm.archive.catalog import run_query
from xsm.products.errors import ArchiveError

DAY, CASE = "20210905", "short_quiet"
PDATE = dt.date(2026, 1, 2)
#: Another process: a read-only query that must not wait (0.5 s bound) for the catalog.
QUERY = ("import sys; from xsm.archive.catalog import connect_readonly; "
         "c = connect_readonly(sys.argv[1], wait_s=0.5); "
         "print(c.execute('SELECT count(*) FROM products').fetchone()[0]); c.close()")


class _PausedLevel2:
    """A ``make_level2`` (or ``real`` when given) that signals ``entered`` and waits for ``release``;
    without ``real``: no calibrated products."""

    def __init__(self, real=None):
        self.entered, self.release, self.real = threading.Event(), threading.Event(), real

    def __call__(self, *a, **kw):
        self.entered.set()
        assert self.release.wait(60), "never released"
        return self.real(*a, **kw) if self.real else {}


def _build_in_thread(root, golden_dir, real_caldb):
    out: dict = {}

    def run():
        try:
            out["result"] = build_day(root, DAY, level1=golden_dir / CASE, caldb=real_caldb,
                                      processing_date=PDATE)
        except BaseException as exc:  # handed to the test thread
            out["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    return t, out


@pytest.mark.parametrize("step", ["make_level2", "write_day_zip"])
def test_catalog_is_free_while_products_are_made(tmp_path, golden_dir, real_caldb, monkeypatch, step):
    """Paused making the calibrated products or the day zip: a read-only query from another
    process gets the catalog at once (a 0.5 s bound, against the 30 s a writer would cost)."""
    root = tmp_path / "archive"
    if step == "write_day_zip":
        monkeypatch.setattr(build, "make_level2", lambda *a, **k: {})  # raw products only: fast
    paused = _PausedLevel2(build.write_day_zip if step == "write_day_zip" else None)
    monkeypatch.setattr(build, step, paused)
    t, out = _build_in_thread(root, golden_dir, real_caldb)
    try:
        assert paused.entered.wait(60)
        q = subprocess.run([sys.executable, "-c", QUERY, str(root)], capture_output=True, text=True,
                           timeout=120)
        assert q.returncode == 0, q.stderr
        assert q.stdout.strip() == "0"  # nothing committed yet
    finally:
        paused.release.set()
        t.join(120)
    assert "error" not in out, out.get("error")
    assert out["result"].version == 1 and out["result"].changed
    assert run_query(root, "SELECT count(*) FROM products WHERE kind = 'fits'").rows[0][0] == 1


def test_stale_plan_fails_with_one_line_and_writes_nothing(tmp_path, golden_dir, real_caldb, monkeypatch):
    """Two builds of a day race: the one that commits second finds its plan stale and writes nothing."""
    root = tmp_path / "archive"
    paused = _PausedLevel2()
    monkeypatch.setattr(build, "make_level2", paused)
    t, out = _build_in_thread(root, golden_dir, real_caldb)
    try:
        assert paused.entered.wait(60)
        monkeypatch.setattr(build, "make_level2", lambda *a, **k: {})
        other = build_day(root, DAY, level1=golden_dir / CASE, caldb=real_caldb, processing_date=PDATE)
        assert other.version == 1
    finally:
        paused.release.set()
        t.join(120)
    err = out.get("error")
    assert isinstance(err, ArchiveError), err
    msg = str(err)
    assert "\n" not in msg and DAY in msg and "another build of the day committed" in msg
    # one v1 of each product, no duplicate version, no journal left
    rows = run_query(root, "SELECT kind, version FROM products WHERE kind IN ('fits', 'hk', 'sa', 'zip') "
                           "ORDER BY kind").rows
    assert rows == [("fits", 1), ("hk", 1), ("sa", 1), ("zip", 1)]
    assert not any("_v2" in p.name for p in root.rglob("ch2_xsm_*"))
    assert not journal_path(root, DAY).exists()
