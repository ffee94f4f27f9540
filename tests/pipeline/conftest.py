"""Fixtures of the pipeline tests: one short simulated span, an HTTP source on 127.0.0.1.

The simulated span (20 min of 2024-05-01 from 10:00 UTC, two overlapping sessions, the Sun in
view part of the time) is made once per test session; the pipeline runs once against a flaky
HTTP server over its packages (the server thread stops when the run is over).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pipeline_helpers import (CORRUPT_SID, SIM_DATE, SIM_DURATION_S, SIM_START_S, config_for, serve_flaky,
                              write_trigger)


@pytest.fixture(scope="session")
def pipeline_sim(tmp_path_factory, real_caldb):
    """The simulated packages (``SimulatedDay``) in their own directory."""
    from xsm.products.simulate import simulate_day

    out = tmp_path_factory.mktemp("pipeline_sim")
    return simulate_day(SIM_DATE, "flare", seed=11, out_dir=out, start_s=SIM_START_S,
                        duration_s=SIM_DURATION_S, caldb=real_caldb)


@pytest.fixture(scope="session")
def good_inbox(tmp_path_factory, pipeline_sim) -> Path:
    """A directory with the simulated packages and their triggers only."""
    d = tmp_path_factory.mktemp("inbox_good")
    for s in pipeline_sim.sessions:
        shutil.copyfile(s.package, d / s.package.name)
        shutil.copyfile(s.trigger, d / s.trigger.name)
    return d


@pytest.fixture(scope="session")
def bad_inbox(tmp_path_factory, good_inbox) -> Path:
    """The good packages plus a corrupted copy of one (a flipped byte inside its .pld member)."""
    d = tmp_path_factory.mktemp("inbox_bad")
    for p in good_inbox.iterdir():
        shutil.copyfile(p, d / p.name)
    src = sorted(good_inbox.glob("*.tar"))[0]
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF  # deep inside the .pld member: the tar stays readable
    bad = d / f"{CORRUPT_SID}.tar"
    bad.write_bytes(bytes(data))
    write_trigger(bad)
    return d


@pytest.fixture(scope="session")
def http_archive(tmp_path_factory, bad_inbox, real_caldb):
    """The pipeline run once against the flaky HTTP source: (config, summary, request counts,
    truncated name, failed name)."""
    from xsm.archive.pipeline import run

    good = sorted(p.name for p in bad_inbox.glob("XSM01[!Z]*.tar"))
    base = tmp_path_factory.mktemp("http_archive")
    with serve_flaky(bad_inbox, truncate=good[0], fail=good[1]) as (url, handler):
        cfg = config_for(base / "archive", url, real_caldb, upload_dir=base / "upload")
        summary = run(cfg)
    return cfg, summary, dict(handler.counts), good[0], good[1]
