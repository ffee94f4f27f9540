"""open_catalog (and connect_readonly) wait, bounded, while another process holds the DuckDB file."""
from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager

import pytest

from xsm.archive.catalog import catalog_path, connect_readonly, open_catalog
from xsm.products.errors import ArchiveError

HOLD = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "sys.stdin.readline() if sys.argv[2] == 'stdin' else time.sleep(float(sys.argv[2])); c.close()")


@contextmanager
def _held(root, how: str):
    """Another process holding the catalog of ``root``: for ``how`` seconds, or until told ('stdin')."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(catalog_path(root)), how], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        yield p
    finally:
        if how == "stdin" and p.poll() is None:
            p.stdin.write("\n")
            p.stdin.flush()
        p.wait(timeout=60)
        p.stdin.close()
        p.stdout.close()


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "archive"
    with open_catalog(root):  # created and migrated
        pass
    return root


def test_open_waits_for_a_process_holding_the_file(root):
    with _held(root, "1.0"):
        with open_catalog(root) as cat:  # blocks until the holder lets go
            assert cat.rows("SELECT max(version) AS v FROM schema_version")[0]["v"] >= 1
        con = connect_readonly(root)
        con.close()


def test_open_gives_up_after_the_bound_with_one_line_naming_the_archive(root):
    with _held(root, "stdin"):
        for opener in (lambda: open_catalog(root, wait_s=0.3).__enter__(),
                       lambda: connect_readonly(root, wait_s=0.3)):
            with pytest.raises(ArchiveError) as ei:
                opener()
            msg = str(ei.value)
            assert "\n" not in msg
            assert str(catalog_path(root)) in msg and "held by another process after 0.3 s" in msg
