"""Fixtures of the simulator tests: one short simulated span per module (an hour or two, not a day)."""
from __future__ import annotations

import pytest

from xsm.products.simulate import simulate_day

#: The simulated test span: 2021-10-28 10:00-12:00 UTC, an M3 flare, seed 7.
DATE = "2021-10-28"
START_S = 10 * 3600.0
DURATION_S = 2 * 3600.0
FLARE_CLASS = "M3"


@pytest.fixture(scope="session")
def sim_day(tmp_path_factory, real_caldb):
    out = tmp_path_factory.mktemp("simday")
    return simulate_day(DATE, "flare", 7, out, caldb=real_caldb, flare_class=FLARE_CLASS,
                        start_s=START_S, duration_s=DURATION_S, keep_frames=True)


@pytest.fixture(scope="session")
def flare_class() -> str:
    return FLARE_CLASS
