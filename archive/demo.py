"""``xsm demo``: the main job end to end on simulated data.

Three simulated UTC days (quiet, active, flare; :func:`xsm.products.simulate.simulate_day`,
``hours`` of each, level-0 session packages with triggers and kernels) are put into an inbox
directory; the pipeline (:mod:`xsm.archive.pipeline`) then syncs, downloads, extracts, processes
every session, merges the days, archives and uploads them; the archive is verified. Layout::

    OUT/level0/<date>/   what the simulator wrote (packages, kernels, truth)
    OUT/inbox/           the packages and triggers offered to the pipeline (hard links)
    OUT/archive/         archive root: day products, archive.duckdb, summary/index.html
    OUT/upload/          the upload destination
    OUT/caldb/           the synthetic CALDB (unless ``caldb`` or ``$XSM_CALDB`` names a real one)

The demo needs nothing outside the installed package: the CALDB, SPICE kernels and data are
synthetic, in the real formats. Labels are validated against the PDS4 schemas when they are
installed (``xsm labels schemas install --from DIR`` or ``$XSM_PDS4_SCHEMAS``), else by the data
checks only; :attr:`DemoResult.schema_note` says which.
"""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xsm.products.errors import ParameterError

log = logging.getLogger(__name__)

#: The demo's days: (date, solar profile, class of the big flare or None).
DEMO_DAYS = (("2024-05-01", "quiet", None), ("2024-05-02", "active", None), ("2024-05-03", "flare", "M2"))
#: Start of the simulated span within each day (s after 00:00 UTC), earlier when the span is long.
DEMO_START_S = 36000.0


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put things and what it found."""

    out: Path
    archive: Path
    catalog: Path
    index: Path
    upload: Path
    caldb: Path
    days: list[dict]
    failed: list[dict]
    verified: bool
    problems: list[str]
    simulated: list[dict]
    schemas_checked: bool = False
    schema_note: str = ""

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def _offer(src: Path, inbox: Path) -> None:
    """Hard-link (or copy) a file into the inbox; the trigger comes last."""
    dst = inbox / src.name
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def run_demo(out: str | Path, *, hours: float = 24.0, seed: int = 0, caldb: str | Path | None = None,
             days=DEMO_DAYS, progress: Callable[[str], None] | None = None) -> DemoResult:
    """Simulate the demo days, run the pipeline on them, verify the archive.

    Parameters
    ----------
    out : path
        Output folder (created; an earlier demo there is continued, not replaced).
    hours : float
        Hours simulated per day, 0 < hours <= 24 (from 10:00 UTC, or earlier so that the span
        ends by midnight).
    seed : int
        Seed of the first day (the others use seed + 1, seed + 2).
    caldb : path, optional
        CALDB root (default ``$XSM_CALDB``, else a synthetic CALDB written into OUT/caldb; the
        reference folder's real CALDB is never picked up implicitly).
    progress : callable, optional
        ``progress(message)`` as steps finish.
    """
    from xsm.archive.catalog import catalog_path
    from xsm.archive.pipeline import DAY_STAGES, PipelineConfig, run, status
    from xsm.archive.verify import verify
    from xsm.products.simulate import simulate_day

    if not 0 < hours <= 24:
        raise ParameterError(f"--hours {hours}: give 0 < hours <= 24")
    start_s = min(DEMO_START_S, 86400.0 - hours * 3600.0)
    note = progress or (lambda s: None)
    out = Path(out)
    inbox, root, upload = out / "inbox", out / "archive", out / "upload"
    inbox.mkdir(parents=True, exist_ok=True)
    cal = demo_caldb(out / "caldb", caldb)
    simulated = []
    for k, (date, profile, cls) in enumerate(days):
        sim = simulate_day(date, profile, seed + k, out / "level0" / date, caldb=cal, flare_class=cls,
                           start_s=start_s, duration_s=hours * 3600.0)
        for s in sim.sessions:
            _offer(s.package, inbox)
            _offer(s.trigger, inbox)
        simulated.append({"date": date, "profile": profile, "sessions": len(sim.sessions), "frames": sim.n_frames,
                          "peak_class": sim.peak_class()})
        note(f"simulated {date} ({profile}): {len(sim.sessions)} sessions, peak class {sim.peak_class()}")
    cfg = PipelineConfig(root=root, inbox=str(inbox), upload_dir=upload, caldb=cal)
    def step(stage: str, item: str, ok: bool) -> None:
        # day stages and failures only: per-package/segment lines would fill the screen
        if not ok or stage in DAY_STAGES:
            note(f"{stage} {item}: {'done' if ok else 'FAILED'}")

    summary = run(cfg, progress=step)
    rep = verify(root)
    note("archive verified" if rep.ok else f"archive verify: {len(rep.problems)} problem(s)")
    st = status(root)
    return DemoResult(out=out, archive=root, catalog=catalog_path(root), index=cfg.summary / "index.html",
                      upload=upload, caldb=cal, days=st["days"], failed=summary.failed, verified=rep.ok,
                      problems=[str(p) for p in rep.problems[:20]], simulated=simulated,
                      schemas_checked=rep.schemas_checked, schema_note=rep.schema_note)


def demo_caldb(synthetic_dir: str | Path, caldb: str | Path | None = None) -> Path:
    """The demo's CALDB root: ``caldb``, else ``$XSM_CALDB``, else a synthetic CALDB.

    The synthetic CALDB (``xsm caldb init --synthetic``) is written into ``synthetic_dir`` unless
    an earlier demo left one there.
    """
    from xsm.caldb_manager.index import XSM_INDEX_NAME
    from xsm.caldb_manager.publish import init_synthetic
    from xsm.products import settings

    chosen = caldb or settings.caldb_dir()
    if chosen:
        return Path(chosen)
    root = Path(synthetic_dir)
    if not (root / XSM_INDEX_NAME).is_file():  # published last: its presence means complete
        init_synthetic(root)
    return root
