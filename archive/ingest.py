"""Index archive files into the catalog, and ``xsm archive ingest DIR`` of official products.

:func:`index_file` is the one way a file becomes a ``products`` row (used by the day builder
too): hashes, header provenance, label LID/VID, and the content indexes (1 s rates and flares
of a light curve, the spectra index of a type-II spectrum). :func:`ingest` indexes an existing
directory of products (FITS and labels) in place, without rebuilding anything.

A day's 1 s rates and flares belong to one light curve (:func:`rates_owner`): the built one
over an ingested one, then the highest version, the last indexed among equals. An ingested
light curve of a day the archive has built is indexed as a product, but the day keeps the built
rates, flares and day-wise row (:class:`IngestReport` ``rates_kept`` and ``days_kept`` list them).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xsm.archive import meta
from xsm.archive.catalog import Catalog, _utcnow, open_catalog
from xsm.products.errors import ArchiveError, InputFormatError
from xsm.products.met import met_to_utc_string

log = logging.getLogger(__name__)


def read_lightcurve_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """TIME, RATE, ERROR, FRACEXP of a standard light curve (first table)."""
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        d = hdul[1].data
        names = {n.upper(): n for n in d.columns.names}
        if "TIME" not in names or "RATE" not in names:
            raise InputFormatError(f"{path}: not a light curve (no TIME/RATE columns)")
        out = {"time": np.array(d[names["TIME"]], dtype=np.float64),
               "rate": np.array(d[names["RATE"]], dtype=np.float32)}
        for k in ("ERROR", "FRACEXP"):
            out[k.lower()] = (np.array(d[names[k]], dtype=np.float32) if k in names else None)
        return out


def read_typeii_rows(path: str | Path) -> dict[str, np.ndarray] | None:
    """Per-row TSTART, TSTOP, EXPOSURE, total COUNTS, SPEC_NUM of a type-II spectrum, else None."""
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        if len(hdul) < 2:
            return None
        d = hdul[1].data
        names = {n.upper(): n for n in d.columns.names}
        if "SPEC_NUM" not in names or "COUNTS" not in names:
            return None
        counts = np.asarray(d[names["COUNTS"]], dtype=np.float64)
        return {"spec_num": np.asarray(d[names["SPEC_NUM"]], dtype=np.int64),
                "tstart": np.asarray(d[names["TSTART"]], dtype=np.float64),
                "tstop": np.asarray(d[names["TSTOP"]], dtype=np.float64),
                "exposure": np.asarray(d[names["EXPOSURE"]], dtype=np.float64),
                "counts": counts.reshape(len(counts), -1).sum(axis=1)}


def index_file(cat: Catalog, path: str | Path, *, source: str, label: Path | None = None,
               lid: str | None = None, vid: str | None = None, day: str | None = None,
               version: int | None = None, current: bool = True, release: str | None = None,
               supersedes: str | None = None, reason: str | None = None,
               index_content: bool = True, hashes: tuple[str, str, int] | None = None) -> dict:
    """Catalog one file (data file, label or zip) and return its ``products`` row.

    Parameters
    ----------
    cat : Catalog
    path : path of the file (stored relative to the archive root when inside it)
    source : ``'built'`` (made by ``build_day``) or ``'ingested'``
    label : the label describing this data file, if any
    lid, vid : identifiers (for labels they are read from the label itself)
    index_content : index the 1 s rates/flares (``.lc``) and type-II rows (``.pha``)
    """
    path = Path(path)
    kind = meta.kind_of(path)
    if kind is None:
        raise ArchiveError(f"{path}: not an archive file kind ({', '.join(sorted(meta.EXT_KIND))})")
    md5, sha, size = hashes or meta.file_hashes(path)
    name_day, name_ver = meta.day_version_of(path.name)
    row: dict = {"path": path, "kind": kind, "day": day or name_day,
                 "version": version or name_ver, "size": size, "md5": md5, "sha256": sha,
                 "source": source, "current": current, "release": release,
                 "supersedes": supersedes, "reason": reason, "lid": lid, "vid": vid,
                 "label": label, "created": _utcnow()}
    if kind == "label":
        info = meta.read_label(path)
        row.update(lid=info.lid, vid=info.vid)
        if row["version"] is None and info.vid:
            row["version"] = int(info.vid.split(".")[0])
    elif kind in meta.DATA_KINDS:
        fi = meta.read_fits_info(path)
        row.update(tstart=fi.tstart, tstop=fi.tstop, exposure=fi.exposure, rows=fi.rows,
                   caldbver=fi.caldbver, caldb_files=fi.caldb_files or None,
                   xsmswver=fi.swversion, procmode=fi.procmode,
                   parameters=fi.parameters or None, created=fi.created or row["created"],
                   _date_obs=fi.date_obs, _date_end=fi.date_end)
        if kind == "gti" and fi.exposure is None:
            row["exposure"] = None
        if index_content and current and kind == "lc" and row["day"]:
            owner = rates_owner(cat, row)
            if owner is None:
                lc = read_lightcurve_arrays(path)
                row["_rates"] = cat.replace_rates(row["day"], row["version"], lc["time"], lc["rate"],
                                                  lc["error"], lc["fracexp"], lc_path=path)
            else:
                row["_rates_owner"] = owner
                log.warning("%s: indexed, but the rates of %s stay those of %s (%s light curve v%s)",
                            path, row["day"], owner["path"], owner["source"], owner["version"])
        if index_content and kind == "pha":
            rows = read_typeii_rows(path)
            if rows is not None:
                cat.replace_spectra(path, row["day"], row["version"], rows["tstart"],
                                    rows["tstop"], rows["exposure"], rows["counts"],
                                    rows["spec_num"])
    cat.upsert_product({k: v for k, v in row.items() if not k.startswith("_")})
    return row


#: Order of precedence of a day's light curves for its 1 s rates: the archive's own (built) light
#: curve first, then the highest version, then the one indexed last.
RATES_SOURCE_RANK = {"built": 1, "ingested": 0}


def rates_owner(cat: Catalog, row: dict) -> dict | None:
    """The current light curve of ``row['day']`` that keeps the day's rates instead of ``row``, or None.

    A day's 1 s rates (the ``rates`` view) and its flares belong to ONE light curve, never a mix:
    a built light curve outranks an ingested one (the archive's own products are what it
    releases; an ingested official light curve supplies the rates of days the archive has not
    built), then the higher version wins; among equals the one indexed last (``row``) wins,
    so a rebuild or re-ingest replaces the rates. ``row`` is the ``products`` row about to be
    stored (``day``, ``source``, ``version``, ``path``).
    """
    rank = (RATES_SOURCE_RANK.get(row["source"], 0), row.get("version") or 0)
    others = cat.rows("SELECT path, source, version FROM products WHERE kind = 'lc' AND current AND day = ? "
                      "AND path <> ?", [row["day"], cat.rel(row["path"])])
    best = max(others, key=lambda r: (RATES_SOURCE_RANK.get(r["source"], 0), r["version"] or 0), default=None)
    if best is not None and (RATES_SOURCE_RANK.get(best["source"], 0), best["version"] or 0) > rank:
        return best
    return None


@dataclass
class IngestReport:
    """Result of :func:`ingest`."""

    root: Path
    source: Path
    files: list[str] = field(default_factory=list)
    days: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # label file_name without a file
    mismatched: list[str] = field(default_factory=list)  # size/md5 differ from the label
    skipped: list[str] = field(default_factory=list)
    #: light curves indexed whose day keeps the rates of a built (or newer) light curve
    rates_kept: list[str] = field(default_factory=list)
    #: days whose day-wise row stays the built one (the ingested products are only indexed)
    days_kept: list[str] = field(default_factory=list)
    flares: int = 0


def ingest(root: str | Path, source_dir: str | Path, *,
           progress: Callable[[float, float | None], None] | None = None) -> IngestReport:
    """Index the official products (FITS and PDS4 labels) under ``source_dir`` in place.

    Nothing is copied or rebuilt: product rows carry the files' own paths. Labels are read
    for LID/VID and their size/md5 are compared with the files (mismatches and files a label
    names but that are absent are reported). Light curves feed the 1 s rates and the flare
    list; GTIs and light curves fill the day-wise table (``Source = 'ingested'``).
    """
    root, src = Path(root), Path(source_dir)
    if not src.is_dir():
        raise InputFormatError(f"{src}: no such directory")
    files = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith("."))
    report = IngestReport(root=root, source=src)
    labels: dict[Path, meta.LabelInfo] = {}
    for p in files:
        if p.suffix.lower() == ".xml":
            try:
                labels[p] = meta.read_label(p)
            except InputFormatError as exc:
                log.warning("%s", exc)
                report.skipped.append(str(p))
    described: dict[Path, tuple[Path, meta.LabelInfo, dict]] = {}
    for lp, info in labels.items():
        for f in info.files:
            if not f["file_name"]:
                continue
            target = lp.parent / f["file_name"]
            if target.exists():
                described[target] = (lp, info, f)
            else:
                report.missing.append(str(target))
    total = len(files)
    days: dict[str, dict] = {}
    if progress:
        progress(0, total)
    with open_catalog(root) as cat:
        for p in files:
            kind = meta.kind_of(p)
            if kind is None or (kind == "label" and p in report.skipped):
                if kind is None:
                    report.skipped.append(str(p))
                if progress:
                    progress(1, None)
                continue
            lab = described.get(p)
            try:
                row = index_file(cat, p, source="ingested",
                                 label=lab[0] if lab else None,
                                 lid=lab[1].lid if lab else None, vid=lab[1].vid if lab else None)
            except InputFormatError as exc:
                log.warning("%s", exc)
                report.skipped.append(str(p))
                if progress:
                    progress(1, None)
                continue
            if lab and ((lab[2]["md5_checksum"] and lab[2]["md5_checksum"] != row["md5"])
                        or (lab[2]["file_size"] is not None and lab[2]["file_size"] != row["size"])):
                report.mismatched.append(str(p))
            report.files.append(str(p))
            if row.get("_rates_owner"):
                report.rates_kept.append(str(p))
            d = row.get("day")
            if d and kind in ("gti", "lc") and "_level2" in p.name:
                days.setdefault(d, {})[kind] = row
            if progress:
                progress(1, None)
        for d, prods in sorted(days.items()):
            report.days.append(d)
            if (cat.day(d) or {}).get("Source") == "built":
                report.days_kept.append(d)  # a built day keeps its own day-wise row
                continue
            _day_from_products(cat, d, prods)
        report.flares = cat.con.execute("SELECT count(*) FROM flares").fetchone()[0]
    return report


def _day_from_products(cat: Catalog, day: str, prods: dict) -> None:
    """Day-wise row of an ingested day from its GTI and light curve (``archive.md`` §4.1)."""
    gti, lc = prods.get("gti"), prods.get("lc")
    ref = gti or lc
    tstart, tstop = ref.get("tstart"), ref.get("tstop")
    row = {"DayOfObs": day, "Tstart": tstart, "Tstop": tstop,
           "StartTime": ref.get("_date_obs") or (met_to_utc_string(tstart) if tstart is not None else None),
           "StopTime": ref.get("_date_end") or (met_to_utc_string(tstop) if tstop is not None else None),
           "Version": ref.get("version"),
           "CaldbVer": (gti or {}).get("caldbver") or (lc or {}).get("caldbver"),
           "SwVersion": ref.get("xsmswver"), "ProcMode": ref.get("procmode"),
           "procstatus": True, "Source": "ingested"}
    if gti is not None:
        from astropy.io import fits

        with fits.open(cat.root / gti["path"] if not Path(gti["path"]).is_absolute()
                       else gti["path"]) as h:
            row["SunExposure"] = h[1].header.get("EXPOSURE")
            row["TotalExposure"] = h[1].header.get("OBSEXP")
        row["sunstatus"] = bool(row["SunExposure"] and row["SunExposure"] > 0)
    if lc is not None and lc.get("_rates"):
        r = lc["_rates"]
        row.update(PeakRate=r["PeakRate"], PeakTime=r["PeakTime"], MeanRate=r["MeanRate"])
        if gti is None:  # exposure of the light curve (1 s bins x FRACEXP)
            row["SunExposure"] = r["Exposure"]
            row["sunstatus"] = r["Exposure"] > 0
    cat.upsert_day(row)
