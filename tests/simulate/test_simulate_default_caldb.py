"""The simulator's default CALDB: ``$XSM_CALDB`` when configured, else a synthetic CALDB (never
the shared real one by itself)."""
from __future__ import annotations

from xsm.caldb_manager.index import XSM_INDEX_NAME
from xsm.products.simulate import SYNTHETIC_CALDB_SUBDIR, default_caldb


def test_configured_caldb_wins(monkeypatch, tmp_path, real_caldb):
    monkeypatch.setenv("XSM_CALDB", str(real_caldb))
    assert default_caldb(tmp_path / "unused") == real_caldb
    assert not (tmp_path / "unused").exists()


def test_synthetic_caldb_otherwise_even_with_the_shared_folder_present(monkeypatch, tmp_path, xsm_shared):
    monkeypatch.delenv("XSM_CALDB", raising=False)
    monkeypatch.setenv("XSM_SHARED", str(xsm_shared))
    monkeypatch.setenv("XSM_DATA_DIR", str(tmp_path / "userdata"))
    root = default_caldb(None)
    assert root == tmp_path / "userdata" / SYNTHETIC_CALDB_SUBDIR
    assert (root / XSM_INDEX_NAME).exists()
    assert xsm_shared not in root.resolve().parents
    made = sorted(p.name for p in root.rglob("*"))
    assert default_caldb(None) == root  # made once, then reused
    assert sorted(p.name for p in root.rglob("*")) == made
    there = tmp_path / "given"
    assert default_caldb(there) == there and (there / XSM_INDEX_NAME).exists()
