"""Catalog metadata read back from archive files: FITS headers and PDS4 labels.

The header is the single source of truth for provenance (STYLE.md "Provenance"): the catalog
row of a product is built from the file on disk (kind, day, version, times, exposure, rows,
CALDB version and files, software version, mode, parameters from the HISTORY blocks), plus its
size, md5 and sha256. Labels give the LID/VID and the files they describe.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from xsm.products.errors import InputFormatError
from xsm.products.met import utc_string_form
from xsm.products.provenance import file_digests

PDS_NS = "http://pds.nasa.gov/pds4/pds/v1"
_NS = {"pds": PDS_NS}

#: File extension -> catalog kind for XSM data files.
EXT_KIND = {".fits": "fits", ".hk": "hk", ".sa": "sa", ".gti": "gti", ".pha": "pha", ".lc": "lc",
            ".arf": "arf", ".zip": "zip", ".xml": "label", ".csv": "inventory"}
DATA_KINDS = ("fits", "hk", "sa", "gti", "pha", "lc", "arf")

_NAME_RE = re.compile(r"ch2_xsm_(\d{8})(?:_v(\d+))?")


def file_hashes(path: str | Path) -> tuple[str, str, int]:
    """(md5, sha256, size in bytes) of a file (:func:`~xsm.products.provenance.file_digests`)."""
    d = file_digests(path)
    return d["md5"], d["sha256"], Path(path).stat().st_size


def kind_of(path: str | Path) -> str | None:
    """Catalog kind of a file from its extension (``None`` for other files)."""
    return EXT_KIND.get(Path(path).suffix.lower())


def day_version_of(name: str) -> tuple[str | None, int | None]:
    """(``YYYYMMDD``, version) from an XSM file name such as ``ch2_xsm_20210828_v1_level2.lc``."""
    m = _NAME_RE.search(name)
    if not m:
        return None, None
    return m.group(1), (int(m.group(2)) if m.group(2) else None)


def parse_history(lines) -> dict:
    """``key = value`` pairs of the HISTORY blocks, keyed ``task.key`` (``products.md`` §7)."""
    out: dict[str, str] = {}
    task = ""
    for line in lines:
        s = str(line).strip()
        m = re.match(r"^\*+\s*(.+?)\s*\*+$", s)
        if m:
            task = m.group(1).strip().lower().replace(" ", "_")
            continue
        if s.startswith("*") or "=" not in s:
            continue
        k, _, v = s.partition("=")
        key = f"{task}.{k.strip()}" if task else k.strip()
        out[key] = v.strip()
    return out


@dataclass
class FitsInfo:
    """What the catalog takes from a FITS product."""

    kind: str
    tstart: float | None = None
    tstop: float | None = None
    date_obs: str | None = None
    date_end: str | None = None
    exposure: float | None = None
    obsexp: float | None = None
    rows: int | None = None
    extname: str | None = None
    hduclas: str | None = None
    caldbver: str | None = None
    caldb_files: dict = field(default_factory=dict)
    swversion: str | None = None
    procmode: str | None = None
    creator: str | None = None
    created: _dt.datetime | None = None
    parameters: dict = field(default_factory=dict)


def read_fits_info(path: str | Path) -> FitsInfo:
    """Header metadata of an XSM FITS product (first table extension)."""
    from astropy.io import fits

    path = Path(path)
    kind = kind_of(path) or "fits"
    try:
        with fits.open(path, memmap=True) as hdul:
            prim = hdul[0].header
            ext = hdul[1].header if len(hdul) > 1 else prim
            info = FitsInfo(kind=kind)
            info.tstart = _f(ext.get("TSTART", prim.get("TSTART")))
            info.tstop = _f(ext.get("TSTOP", prim.get("TSTOP")))
            # one text form in the catalog whichever mode wrote the file (time.md §2)
            date_obs, date_end = ext.get("DATE-OBS", prim.get("DATE-OBS")), ext.get("DATE-END", prim.get("DATE-END"))
            info.date_obs = None if date_obs is None else utc_string_form(str(date_obs))
            info.date_end = None if date_end is None else utc_string_form(str(date_end))
            info.exposure = _f(ext.get("EXPOSURE"))
            info.obsexp = _f(ext.get("OBSEXP"))
            info.rows = int(ext.get("NAXIS2", 0)) if len(hdul) > 1 else 0
            info.extname = ext.get("EXTNAME")
            info.hduclas = ext.get("HDUCLAS1")
            info.caldbver = _s(ext.get("CALDBVER", prim.get("CALDBVER")))
            sw = ext.get("XSMSWVER", prim.get("XSMSWVER"))
            info.swversion = f"xsm {sw}" if sw else (
                f"XSMDAS {ext.get('XSMDASVE', prim.get('XSMDASVE'))}".strip()
                if ext.get("XSMDASVE", prim.get("XSMDASVE")) else None)
            info.procmode = _s(ext.get("PROCMODE", prim.get("PROCMODE")))
            info.creator = _s(ext.get("CREATOR", prim.get("CREATOR")))
            date = ext.get("DATE", prim.get("DATE"))
            if date:
                try:
                    info.created = _dt.datetime.fromisoformat(str(date).replace("Z", ""))
                except ValueError:
                    info.created = None
            hist = parse_history(list(ext.get("HISTORY", [])) or list(prim.get("HISTORY", [])))
            info.caldb_files = {k.split(".", 1)[1][len("caldb "):]: v for k, v in hist.items()
                                if k.startswith("xsm_provenance.caldb ")}
            if not info.caldbver and "xsm_provenance.caldbver" in hist:
                info.caldbver = hist["xsm_provenance.caldbver"]
            info.parameters = {k: v for k, v in hist.items() if not k.startswith("xsm_provenance.")}
            return info
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise InputFormatError(f"{path}: not a readable FITS product ({str(exc).splitlines()[0]})") from None


@dataclass
class LabelInfo:
    """What the catalog takes from a PDS4 label."""

    path: Path
    product_class: str
    lid: str | None
    vid: str | None
    files: list[dict]  # file_name, file_size, md5_checksum, records
    start: str | None = None
    stop: str | None = None

    @property
    def lidvid(self) -> str | None:
        return f"{self.lid}::{self.vid}" if self.lid and self.vid else None


def read_label(path: str | Path) -> LabelInfo:
    """LID, VID and described files of a PDS4 label."""
    path = Path(path)
    try:
        root = etree.parse(str(path)).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise InputFormatError(f"{path}: not a readable XML label ({str(exc).splitlines()[0]})") from None

    def text(xpath: str) -> str | None:
        r = root.xpath(xpath, namespaces=_NS)
        return r[0].text.strip() if r and r[0].text else None

    files = []
    for f in root.xpath("//pds:File", namespaces=_NS):
        def sub(tag):
            r = f.find(f"{{{PDS_NS}}}{tag}")
            return r.text.strip() if r is not None and r.text else None
        files.append({"file_name": sub("file_name"), "file_size": _i(sub("file_size")),
                      "md5_checksum": sub("md5_checksum"), "records": _i(sub("records"))})
    return LabelInfo(path=path, product_class=etree.QName(root).localname,
                     lid=text("pds:Identification_Area/pds:logical_identifier"),
                     vid=text("pds:Identification_Area/pds:version_id"), files=files,
                     start=text("//pds:Time_Coordinates/pds:start_date_time"),
                     stop=text("//pds:Time_Coordinates/pds:stop_date_time"))


def _f(v):
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _i(v):
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


def _s(v):
    return None if v is None else str(v).strip() or None
