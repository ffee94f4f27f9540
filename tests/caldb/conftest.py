from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xsm.caldb_manager.publish import init_synthetic


@pytest.fixture(scope="session")
def synthetic_caldb(tmp_path_factory) -> Path:
    """A synthetic CALDB made once per session (read-only use)."""
    root = tmp_path_factory.mktemp("caldb") / "synthetic"
    init_synthetic(root)
    return root


@pytest.fixture
def fresh_caldb(tmp_path, synthetic_caldb) -> Path:
    """A synthetic CALDB a test may publish into (a copy of one made per session)."""
    root = tmp_path / "caldb"
    shutil.copytree(synthetic_caldb, root, symlinks=True)
    return root
