"""Review pass: the level-1 writer's fsync switch is read through products.settings (the one place
reading the environment)."""
import os

import numpy as np
import pytest

from xsm.products import level1, settings
from xsm.products.level1 import read_level1, write_level1


@pytest.mark.parametrize("env,calls", [("", 0), ("1", 1)])
def test_review_level1_fsync_follows_settings(tmp_path, golden_dir, monkeypatch, env, calls):
    src = next((golden_dir / "calsource").glob("*_level1.fits"))
    day = read_level1(src)
    monkeypatch.setenv("XSM_FSYNC", env)
    assert settings.fsync() is bool(env)
    seen = []
    real = os.fsync
    monkeypatch.setattr(level1.os, "fsync", lambda fd: (seen.append(fd), real(fd))[1])
    out = write_level1(day, tmp_path / src.name)
    assert len(seen) == calls
    np.testing.assert_array_equal(read_level1(out).frame_number, day.frame_number)
