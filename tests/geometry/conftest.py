"""Fixtures of the geometry tests: synthetic kernel sets written once per session."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xsm.products import geometry as G
from xsm.products import kernels as K

from .helpers_geometry import DAY0


@pytest.fixture(scope="session")
def orbit() -> K.OrbitModel:
    return K.orbit_model(DAY0)


@pytest.fixture(scope="session")
def kset_nogap(tmp_path_factory, orbit) -> K.KernelSet:
    """Six hours (3 orbits) without a CK gap."""
    d = tmp_path_factory.mktemp("kernels_nogap")
    return K.write_kernel_set(d, DAY0, DAY0 + 6 * 3600.0, orbit=orbit, ck_gap=False)


@pytest.fixture(scope="session")
def kset_gap(tmp_path_factory, orbit) -> K.KernelSet:
    """Two hours with the default CK gap (600 s at 40 % of the span)."""
    d = tmp_path_factory.mktemp("kernels_gap")
    return K.write_kernel_set(d, DAY0, DAY0 + 7200.0, orbit=orbit)


@pytest.fixture(scope="session")
def angles_nogap(kset_nogap) -> G.SunAngles:
    """Sun angles every second over three whole orbits (one process)."""
    n = int(3 * kset_nogap.orbit.period_s)
    met = DAY0 + 0.5 + np.arange(n, dtype=np.float64)
    return G.compute_sun_angles(met, kset_nogap, workers=1)


@pytest.fixture
def spice_loaded():
    """Load kernels for a test and clear the pool afterwards."""
    import spiceypy

    def load(files):
        spiceypy.kclear()
        for f in files:
            spiceypy.furnsh(str(f))

    yield load
    spiceypy.kclear()


@pytest.fixture(scope="session")
def short_quiet_l1(golden_dir: Path) -> Path:
    return golden_dir / "short_quiet" / "ch2_xsm_20210905_v1_level1.fits"
