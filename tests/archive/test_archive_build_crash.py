"""build_day is crash-safe: a fault between moving files into place and cataloguing them, or
part-way through cataloguing, leaves an archive whose next build makes the same v1 products as
an uninterrupted build, and ``verify`` passes."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from xsm.archive import build, meta
from xsm.archive.build import build_day, content_fingerprint, journal_path
from xsm.archive.catalog import run_query
from xsm.archive.verify import verify

DAY, CASE = "20210905", "short_quiet"
PDATE = dt.date(2026, 1, 2)


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).as_posix()[:4].isdigit())


def _fingerprints(root: Path) -> dict[str, str]:
    return {rel: content_fingerprint(root / rel) for rel in _files(root)
            if rel.endswith((".fits", ".hk", ".sa", ".gti", ".pha", ".lc"))}


def _catalog(root: Path) -> list[tuple]:
    return run_query(root, "SELECT path, kind, version, vid, md5, current FROM products "
                           "WHERE kind <> 'zip' AND kind <> 'label' ORDER BY path").rows


@pytest.fixture(scope="module")
def reference(tmp_path_factory, golden_dir, real_caldb):
    root = tmp_path_factory.mktemp("ref") / "archive"
    build_day(root, DAY, level1=golden_dir / CASE, caldb=real_caldb, processing_date=PDATE)
    return root


def _fault_on_call(n: int, exc: BaseException):
    """An ``index_file`` that raises ``exc`` at its n-th call (1 = before anything is catalogued)."""
    real, calls = build.index_file, [0]

    def index_file(*a, **kw):
        calls[0] += 1
        if calls[0] == n:
            raise exc
        return real(*a, **kw)
    return index_file


def _check_same_as_reference(root: Path, reference: Path) -> None:
    assert _files(root) == _files(reference)
    assert all("_v1_" in f or "_v1." in f for f in _files(root))
    assert _fingerprints(root) == _fingerprints(reference)
    assert [r[:4] for r in _catalog(root)] == [r[:4] for r in _catalog(reference)]
    rep = verify(root)
    assert rep.ok, rep
    assert not journal_path(root, DAY).exists()


@pytest.mark.parametrize("call", [1, 5])
def test_failed_build_rolls_back_at_once(tmp_path, golden_dir, real_caldb, reference, monkeypatch, call):
    """An error before (call 1) or while (call 5) cataloguing: no file of the day, nothing catalogued."""
    root = tmp_path / "archive"
    monkeypatch.setattr(build, "index_file", _fault_on_call(call, RuntimeError("injected")))
    with pytest.raises(RuntimeError, match="injected"):
        build_day(root, DAY, level1=golden_dir / CASE, caldb=real_caldb, processing_date=PDATE)
    assert _files(root) == []
    assert run_query(root, "SELECT count(*) FROM products").rows[0][0] == 0
    assert not journal_path(root, DAY).exists()
    monkeypatch.undo()
    build_day(root, DAY, level1=golden_dir / CASE, caldb=real_caldb, processing_date=PDATE)
    _check_same_as_reference(root, reference)


@pytest.mark.parametrize("call", [1, 5])
def test_killed_build_is_rolled_back_by_the_next_one(tmp_path, golden_dir, real_caldb, reference, monkeypatch,
                                                     call):
    """A stop that skips the in-process clean-up (like a kill): the journal names the files moved
    in; the next build removes them (nothing was committed) and makes v1, not v2."""
    root = tmp_path / "archive"
    monkeypatch.setattr(build, "index_file", _fault_on_call(call, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        build_day(root, DAY, level1=golden_dir / CASE, caldb=real_caldb, processing_date=PDATE)
    journal = journal_path(root, DAY)
    listed = json.loads(journal.read_text())["paths"]
    assert listed and all(Path(p).is_file() for p in listed)
    assert {Path(p).name for p in listed} == {Path(f).name for f in _files(root)}
    assert run_query(root, "SELECT count(*) FROM products").rows[0][0] == 0
    monkeypatch.undo()
    res = build_day(root, DAY, level1=golden_dir / CASE, caldb=real_caldb, processing_date=PDATE)
    assert res.version == 1 and {p.version for p in res.products} == {1}
    _check_same_as_reference(root, reference)


def test_journal_of_a_committed_build_keeps_its_files(tmp_path, golden_dir, real_caldb, reference):
    """Stopped after COMMIT, before the journal went: the files are catalogued and stay."""
    root = tmp_path / "archive"
    build_day(root, DAY, level1=golden_dir / CASE, caldb=real_caldb, processing_date=PDATE)
    before = _files(root)
    journal = journal_path(root, DAY)
    journal.write_text(json.dumps({"paths": [str(root / f) for f in before]}))
    res = build_day(root, DAY, level1=golden_dir / CASE, caldb=real_caldb, processing_date=PDATE)
    assert not res.changed
    assert _files(root) == before
    _check_same_as_reference(root, reference)
    assert meta.kind_of(root / before[0]) is not None


def test_stages_of_killed_builds_are_removed_live_and_unknown_ones_kept(tmp_path):
    """A killed build leaves its ``.build_<day>_*`` stage: the next build removes it once its
    owner process is gone; a running build's stage, and one with no owner record, stay."""
    import subprocess
    import sys

    from xsm.products.ownership import OWNER_FILE, make_owned_dir, owner_gone

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    killed = make_owned_dir(tmp_path, f"{build.STAGE_PREFIX}{DAY}_")
    owner = json.loads((killed / OWNER_FILE).read_text())
    (killed / OWNER_FILE).write_text(json.dumps({**owner, "pid": int(dead.stdout)}))
    (killed / "partial.fits").write_bytes(b"x")
    live = make_owned_dir(tmp_path, f"{build.STAGE_PREFIX}{DAY}_")       # this process: running
    other = make_owned_dir(tmp_path, f"{build.STAGE_PREFIX}{DAY}_")
    (other / OWNER_FILE).write_text(json.dumps({**owner, "pid": int(dead.stdout), "host": "elsewhere"}))
    unknown = tmp_path / f"{build.STAGE_PREFIX}{DAY}_old"
    unknown.mkdir()
    assert owner_gone(killed) and not owner_gone(live) and not owner_gone(other)
    assert build.remove_dead_stages(tmp_path) == [killed]
    assert not killed.exists() and live.is_dir() and other.is_dir() and unknown.is_dir()
