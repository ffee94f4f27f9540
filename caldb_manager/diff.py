"""Differences between CALDB versions and the observation times they affect (``caldb.md`` §7).

* :func:`diff_versions`: rows added, removed and re-qualified (e.g. superseded) between two
  versions' indexes and, for files that replace another for the same code and validity start, a
  column-by-column table diff with the maximum absolute and relative differences.
* :func:`affected_intervals`: for each code name, the observation-time intervals (MET) whose
  selected file differs between two versions, with the old and new files. The archive
  reprocesses exactly the products that overlap them (:func:`affected_days` lists UTC days).

Selection is evaluated with the project's default rule (``REF_TIME <= t``; the reference's strict
``>`` differs only for data exactly at a validity start). Because validity is start-only, the
selection of a code is a step function of time and the comparison is exact: no sampling.
"""
from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.caldb_manager.index import CalIndex, IndexRow, read_index
from xsm.caldb_manager.layout import caldb_root_of, index_path
from xsm.products import fitsio
from xsm.products.met import met_to_mjd, mjd_to_met


def _load(caldb: Path | None, version: str) -> tuple[Path, CalIndex]:
    from xsm.caldb_manager.context import resolve_root

    p = index_path(resolve_root(caldb), version)
    return caldb_root_of(p), read_index(p)


def _key(r: IndexRow) -> tuple:
    return (r.cnam.upper(), r.file, r.ref_time)


def table_diff(a: Path, b: Path) -> list[dict]:
    """Column-by-column differences of two FITS tables of the same type (numeric columns)."""
    out: list[dict] = []
    with (fitsio.open_fits(a, what="calibration file", memmap=False) as ha,
          fitsio.open_fits(b, what="calibration file", memmap=False) as hb):
        names_b = {h.name: h for h in hb[1:]}
        for k, ea in enumerate(ha[1:], start=1):
            eb = names_b.get(ea.name) or (hb[k] if k < len(hb) else None)
            if eb is None or not isinstance(ea, fits.BinTableHDU) or not isinstance(eb, fits.BinTableHDU):
                out.append({"extension": ea.name, "column": None, "change": "extension missing in the new file"})
                continue
            if len(ea.data) != len(eb.data):
                out.append({"extension": ea.name, "column": None,
                            "change": f"rows {len(ea.data)} -> {len(eb.data)}"})
                continue
            for name in ea.columns.names:
                if name not in eb.columns.names:
                    out.append({"extension": ea.name, "column": name, "change": "column removed"})
                    continue
                x, y = np.asarray(ea.data[name]), np.asarray(eb.data[name])
                if x.dtype.kind in "SUO" or y.dtype.kind in "SUO":
                    same = x.tolist() == y.tolist()
                    if not same:
                        out.append({"extension": ea.name, "column": name, "change": "text values differ"})
                    continue
                if x.shape != y.shape:
                    out.append({"extension": ea.name, "column": name, "change": f"shape {x.shape} -> {y.shape}"})
                    continue
                d = np.abs(y.astype(np.float64) - x.astype(np.float64))
                if not np.any(d > 0):
                    continue
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = np.where(x != 0, d / np.abs(x.astype(np.float64)), np.where(d > 0, np.inf, 0.0))
                out.append({"extension": ea.name, "column": name, "rows_changed": int(np.sum(np.any(
                    d.reshape(len(d), -1) > 0, axis=1))), "max_abs": float(d.max()), "max_rel": float(rel.max())})
    return out


def diff_versions(v1: str, v2: str, *, caldb: str | Path | None = None, tables: bool = True) -> dict:
    """What changed from version ``v1`` to ``v2``: rows added, removed, re-qualified, files changed."""
    root1, i1 = _load(Path(caldb) if caldb else None, v1)
    root2, i2 = _load(Path(caldb) if caldb else None, v2)
    k1 = {_key(r): r for r in i1.rows}
    k2 = {_key(r): r for r in i2.rows}
    added = [r for k, r in k2.items() if k not in k1]
    removed = [r for k, r in k1.items() if k not in k2]
    requal = [(k1[k], r) for k, r in k2.items() if k in k1 and k1[k].qual != r.qual]
    changed = []
    for new in added:
        olds = [r for r in i1.rows if r.cnam.upper() == new.cnam.upper() and r.ref_time == new.ref_time
                and r.file != new.file]
        for old in olds:
            entry = {"code": new.cnam, "ref_time": new.ref_time, "old": old.file, "new": new.file}
            if tables:
                pa, pb = root1 / old.relpath(), root2 / new.relpath()
                entry["columns"] = table_diff(pa, pb) if pa.is_file() and pb.is_file() else None
            changed.append(entry)

    def row(r: IndexRow) -> dict:
        return {"code": r.cnam, "file": r.file, "ref_time": r.ref_time, "quality": r.qual}

    return {"from": v1, "to": v2,
            "added": [row(r) for r in added], "removed": [row(r) for r in removed],
            "requalified": [{**row(b), "quality_from": a.qual} for a, b in requal],
            "files_changed": changed}


@dataclass(frozen=True)
class AffectedInterval:
    """An observation-time interval whose selection of ``code`` changes between two versions."""

    code: str
    start: float  # MET s (-inf: from the beginning)
    stop: float   # MET s (+inf: open-ended)
    old_file: str | None
    new_file: str | None

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.old_file or 'nothing'} -> {self.new_file or 'nothing'}"

    def to_dict(self) -> dict:
        def t(x: float):
            return None if math.isinf(x) else x

        return {"code": self.code, "start_met": t(self.start), "stop_met": t(self.stop),
                "start_mjd": None if math.isinf(self.start) else float(met_to_mjd(self.start)),
                "stop_mjd": None if math.isinf(self.stop) else float(met_to_mjd(self.stop)),
                "old_file": self.old_file, "new_file": self.new_file, "reason": self.reason}


def _steps(index: CalIndex, code: str) -> list[tuple[float, str | None]]:
    """The selection of ``code`` as (start MJD, file) steps, default rule (first row on a tie)."""
    good = [r for _, r in index.rows_for(code) if r.good]
    starts = sorted({r.ref_time for r in good})
    out: list[tuple[float, str | None]] = [(-math.inf, None)]
    for t in starts:
        first = next(r for r in good if r.ref_time == t)
        out.append((t, first.file))
    return out


def _file_at(steps: list[tuple[float, str | None]], t: float) -> str | None:
    f = None
    for s, name in steps:
        if s <= t:
            f = name
    return f


def intervals_between(i1: CalIndex, i2: CalIndex, codes: Iterable[str] | None = None) -> list[AffectedInterval]:
    """Affected intervals between two indexes (see :func:`affected_intervals`)."""
    if codes is None:
        codes = list(dict.fromkeys(i1.codes() + i2.codes()))
    out: list[AffectedInterval] = []
    for code in (c.upper() for c in codes):
        s1, s2 = _steps(i1, code), _steps(i2, code)
        bounds = sorted({t for t, _ in s1} | {t for t, _ in s2})
        cur: AffectedInterval | None = None
        for k, t in enumerate(bounds):
            stop = bounds[k + 1] if k + 1 < len(bounds) else math.inf
            f1, f2 = _file_at(s1, t), _file_at(s2, t)
            if f1 != f2:
                start_met = -math.inf if math.isinf(t) else float(mjd_to_met(t))
                stop_met = math.inf if math.isinf(stop) else float(mjd_to_met(stop))
                if cur is not None and cur.stop == start_met and (cur.old_file, cur.new_file) == (f1, f2):
                    cur = AffectedInterval(code, cur.start, stop_met, f1, f2)
                    out[-1] = cur
                else:
                    cur = AffectedInterval(code, start_met, stop_met, f1, f2)
                    out.append(cur)
            else:
                cur = None
    return out


def affected_intervals(v1: str, v2: str, codes: Sequence[str] | None = None, *,
                       caldb: str | Path | None = None) -> list[AffectedInterval]:
    """Observation-time intervals (MET) whose calibration selection changes from ``v1`` to ``v2``.

    One :class:`AffectedInterval` per code and maximal interval, with the file each version
    selects there; a product is affected when its [TSTART, TSTOP) overlaps one. Files replaced by
    byte-identical content under the same name cannot occur (publishing refuses them).
    """
    _, i1 = _load(Path(caldb) if caldb else None, v1)
    _, i2 = _load(Path(caldb) if caldb else None, v2)
    return intervals_between(i1, i2, codes)


def affected_days(intervals: Iterable[AffectedInterval], first: _dt.date, last: _dt.date) -> list[_dt.date]:
    """The UTC days in [first, last] that overlap any interval (for day-wise reprocessing)."""
    days = []
    d = first
    while d <= last:
        start = (d - _dt.date(2017, 1, 1)).days * 86400.0
        stop = start + 86400.0
        if any(iv.start < stop and iv.stop > start for iv in intervals):
            days.append(d)
        d += _dt.timedelta(days=1)
    return days


def affected_products(intervals: Iterable[AffectedInterval], products: Iterable[tuple[object, float, float]]
                      ) -> list[tuple[object, list[str]]]:
    """Which products are affected: ``products`` yields (id, TSTART, TSTOP) in MET; returns
    (id, reasons) for every product overlapping an interval, in input order."""
    ivs = list(intervals)
    out = []
    for pid, t0, t1 in products:
        reasons = [iv.reason for iv in ivs if overlaps(iv, float(t0), float(t1))]
        if reasons:
            out.append((pid, reasons))
    return out


def overlaps(interval: AffectedInterval, tstart: float, tstop: float) -> bool:
    """Whether a product spanning [tstart, tstop) (MET) is affected by ``interval``."""
    return interval.start < tstop and interval.stop > tstart


__all__ = ["diff_versions", "table_diff", "affected_intervals", "intervals_between", "affected_days", "overlaps",
           "affected_products",
           "AffectedInterval"]
