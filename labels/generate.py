"""PDS4 labels of XSM products, filled from the FITS file on disk (``spec/pds4.md`` §1–3).

Templates live in ``xsm.templates`` (``templates/pds4/<IM>/<product>.xml``), one folder per
information model: ``1B00`` (IM 1.11, what ISDA's labels use) and ``1O00`` (IM 1.24). A
template holds the fixed text of a label with ``${name}`` placeholders; this module fills the
identification values, times and the ``File_Area_Observational`` it builds from the file:

* LID by ISDA's pattern (:mod:`xsm.labels.lidvid`), ``version_id`` from the ``_vN_`` of the
  file name (``N.0``) unless given;
* ``Modification_History`` (one ``Modification_Detail`` per version, the last one dated by
  the FITS ``DATE``);
* ``Time_Coordinates`` from ``DATE-OBS``/``DATE-END`` truncated to ms (``time.md`` §2);
* ``File``: name, ``FITS DATE`` as creation time, size, records, md5 (streamed);
* one ``Header`` per HDU and one ``Table_Binary`` per binary table, with offsets and lengths
  read from the file (:func:`xsm.labels.fitsmap.scan_fits`), ``Field_Binary`` and
  ``Group_Field_Binary`` for vector columns, ``value_offset`` for unsigned columns.

The header is the single source of truth: nothing is taken from the product objects in memory.
"""
from __future__ import annotations

import datetime as _dt
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

from lxml import etree

from xsm.labels import lidvid as L
from xsm.labels.fitsmap import (LEVEL_BY_KIND, FitsStructure, Hdu, Pds4Field, pds4_fields,
                                product_kind, scan_fits)
from xsm.products.errors import InputFormatError, ParameterError
from xsm.products.fitsio import atomic_path
from xsm.products.met import pds4_time
from xsm.products.provenance import SOFTWARE_VERSION, file_md5

log = logging.getLogger(__name__)

PDS_NS = "http://pds.nasa.gov/pds4/pds/v1"
TITLE = "Chandrayaan-2 Orbiter XSM Experiment"
DEFAULT_IM = "1B00"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
TABLE_DESCRIPTION = "The records count is the number of rows in this table"
#: Template name of each product kind.
TEMPLATE_BY_KIND = {"fits": "level1_fits", "hk": "level1_hk", "sa": "level1_sa", "gti": "level2_gti",
                    "pha": "level2_pha", "lc": "level2_lc", "arf": "level2_arf"}
TEMPLATES = (*TEMPLATE_BY_KIND.values(), "daywise_zip", "collection", "bundle", "collection_miscellaneous",
             "checksum_manifest", "deep_archive_aip")


def default_description() -> str:
    """``Modification_Detail/description`` of labels xsm writes (``pds4.md`` §1.1 [P])."""
    return f"Created by xsm {SOFTWARE_VERSION}"


@dataclass(frozen=True)
class ModificationDetail:
    modification_date: str  # YYYY-MM-DD
    version_id: str
    description: str


def read_history(label: str | Path) -> list[ModificationDetail]:
    """The ``Modification_Detail`` entries of an existing label, oldest first.

    For a new version of a product (``pds4.md`` §2.3)::

        hist = read_history(old_label) + [ModificationDetail(today, "2.0", "Reprocessed ...")]
        generate_label(new_fits, history=hist)
    """
    try:
        root = etree.parse(str(label)).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise InputFormatError(f"{label}: not a readable label ({str(exc).splitlines()[0]})") from None
    ns = {"pds": PDS_NS}
    return [ModificationDetail(d.findtext("pds:modification_date", "", ns).strip(),
                               d.findtext("pds:version_id", "", ns).strip(),
                               " ".join(d.findtext("pds:description", "", ns).split()))
            for d in root.iterfind("pds:Identification_Area/pds:Modification_History/pds:Modification_Detail", ns)]


# --- templates ----------------------------------------------------------------------------------

def template_dir(im: str = DEFAULT_IM) -> Path:
    """Folder of the templates of information model ``im`` (``1B00``, ``1O00``)."""
    from xsm.schemas.locator import model

    im = model(im).im
    return Path(str(resources.files("xsm.templates").joinpath("pds4", im)))


def template_text(name: str, im: str = DEFAULT_IM) -> str:
    path = template_dir(im) / f"{name}.xml"
    if not path.is_file():
        raise ParameterError(f"no PDS4 template {name!r} for information model {im}")
    return path.read_text(encoding="utf-8")


def render(name: str, im: str, values: Mapping[str, object],
           fragments: Mapping[str, str] | None = None) -> bytes:
    """Fill template ``name`` of ``im``: ``values`` are XML-escaped, ``fragments`` inserted as XML.

    The result is re-parsed (so a bad fragment fails here, not in a validator) and indented
    with 4 spaces like ISDA's labels.
    """
    subst = {k: escape(str(v)) for k, v in values.items()}
    subst.update(fragments or {})
    try:
        text = Template(template_text(name, im)).substitute(subst)
    except KeyError as exc:
        raise ParameterError(f"template {im}/{name}.xml needs a value for {exc}") from None
    parser = etree.XMLParser(remove_blank_text=True)
    root = etree.fromstring(text.encode("utf-8"), parser)
    tree = root.getroottree()
    etree.indent(tree, space="    ")
    return XML_DECLARATION + etree.tostring(tree, encoding="UTF-8", pretty_print=True)


def _el(tag: str, text: object = None, unit: str | None = None, children: Sequence[str] = ()) -> str:
    attr = f' unit="{unit}"' if unit else ""
    if children:
        return f"<{tag}{attr}>{''.join(children)}</{tag}>"
    return f"<{tag}{attr}>{escape(str(text))}</{tag}>"


def history_fragment(details: Iterable[ModificationDetail]) -> str:
    return "".join(
        _el("Modification_Detail", children=[_el("modification_date", d.modification_date),
                                             _el("version_id", d.version_id),
                                             _el("description", d.description)])
        for d in details)


def file_fragment(path: Path, *, creation_date_time: str, records: int | None = None,
                  md5: str | None = None, local_identifier: str | None = "file") -> str:
    """``<File>`` with name, local id, creation time, size, records, md5 of the file on disk."""
    path = Path(path)
    children = [_el("file_name", path.name)]
    if local_identifier:
        children.append(_el("local_identifier", local_identifier))
    children += [_el("creation_date_time", creation_date_time),
                 _el("file_size", path.stat().st_size, unit="byte")]
    if records is not None:
        children.append(_el("records", records))
    children.append(_el("md5_checksum", md5 or file_md5(path)))
    return _el("File", children=children)


def _field_fragment(f: Pds4Field, location: int | None = None) -> str:
    ch = [_el("name", f.name), _el("field_location", f.location if location is None else location, unit="byte"),
          _el("data_type", f.data_type), _el("field_length", f.field_length, unit="byte")]
    if f.unit:
        ch.append(_el("unit", f.unit))
    if f.scaling_factor is not None:
        ch.append(_el("scaling_factor", f.scaling_factor))
    if f.value_offset is not None:
        ch.append(_el("value_offset", f.value_offset))
    if f.description:
        ch.append(_el("description", f.description))
    return _el("Field_Binary", children=ch)


def _group_fragment(f: Pds4Field) -> str:
    return _el("Group_Field_Binary", children=[
        _el("repetitions", f.repetitions), _el("fields", 1), _el("groups", 0),
        _el("group_location", f.location, unit="byte"), _el("group_length", f.group_length, unit="byte"),
        _field_fragment(f, location=1)])


def header_fragment(hdu: Hdu, name: str | None = None) -> str:
    return _el("Header", children=[
        _el("local_identifier", f"header_{name or hdu.object_name}"),
        _el("offset", hdu.header_offset, unit="byte"),
        _el("object_length", hdu.header_length, unit="byte"),
        _el("parsing_standard_id", "FITS 3.0")])


def table_fragment(hdu: Hdu, kind: str | None, name: str | None = None) -> str:
    fields = pds4_fields(hdu, kind)
    items = [_group_fragment(f) if f.is_group else _field_fragment(f) for f in fields]
    record = _el("Record_Binary", children=[
        _el("fields", sum(not f.is_group for f in fields)),
        _el("groups", sum(f.is_group for f in fields)),
        _el("record_length", hdu.naxis1, unit="byte"), *items])
    return _el("Table_Binary", children=[
        _el("local_identifier", f"data_{name or hdu.object_name}"),
        _el("offset", hdu.data_offset, unit="byte"),
        _el("records", hdu.naxis2),
        _el("description", TABLE_DESCRIPTION), record])


def file_area_fragment(structure: FitsStructure, kind: str | None, *, creation_date_time: str,
                       md5: str | None = None) -> str:
    """``File`` + one ``Header`` per HDU + one ``Table_Binary`` per table, in offset order.

    PDS4 has no empty tables (``records`` >= 1): a table with no rows (an empty GTI) is
    described by its ``Header`` only, and ``File/records`` is then left out.
    """
    tables = structure.tables
    records = tables[0].naxis2 if tables else 0
    parts = [file_fragment(structure.path, creation_date_time=creation_date_time,
                           records=records or None, md5=md5)]
    seen: dict[str, int] = {}
    for hdu in structure.hdus:
        # local identifiers are unique in a label: a repeated EXTNAME gets its EXTVER (or index)
        name = hdu.object_name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}_{hdu.cards.get('EXTVER', hdu.index)}"
        parts.append(header_fragment(hdu, name))
        if hdu.is_table and hdu.naxis2 > 0:
            parts.append(table_fragment(hdu, kind, name))
        elif not hdu.is_table and hdu.data_length:
            raise InputFormatError(f"{structure.path}: HDU {hdu.index} ({hdu.extname}) holds image data; "
                                   "XSM products have only binary tables")
    return "\n".join(parts)


# --- product labels -----------------------------------------------------------------------------

_OBS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?$")


def creation_time(structure: FitsStructure) -> str:
    """``creation_date_time``: the FITS ``DATE``; ``Z`` added for default-mode (UTC) files."""
    date = str(structure.keyword("DATE", "")).strip()
    if not _DATE_RE.match(date):
        raise InputFormatError(f"{structure.path}: DATE keyword {date!r} is not YYYY-MM-DDThh:mm:ss")
    procmode = str(structure.ext_keyword("PROCMODE", "")).strip()
    if procmode == "default" and not date.endswith("Z"):
        date += "Z"
    return date


def _obs_times(structure: FitsStructure) -> tuple[str, str]:
    start = structure.ext_keyword("DATE-OBS")
    stop = structure.ext_keyword("DATE-END")
    if not start or not stop:
        raise InputFormatError(f"{structure.path}: DATE-OBS/DATE-END missing")
    for value in (start, stop):
        if not _OBS_RE.match(str(value).strip()):
            raise InputFormatError(f"{structure.path}: DATE-OBS/DATE-END value {value!r} is not "
                                   "YYYY-MM-DD[ T]hh:mm:ss[.f] (time.md §2)")
    return pds4_time(str(start)), pds4_time(str(stop))


def _lid_for(structure: FitsStructure, kind: str) -> str:
    name = structure.path.name
    ident = L.parse_file_name(name)
    if ident is not None:
        return ident.lid
    # not ISDA's naming: collection by level + the sanitised file name
    pid = re.sub(r"[^a-z0-9_.-]", "_", name.lower()).replace(".", "_")
    coll = L.COLLECTION_RAW if LEVEL_BY_KIND[kind] == 1 else L.COLLECTION_CALIBRATED
    return L.check_lid(f"{coll}:{pid}", level="product")


def build_label(fits_path: str | Path, im: str = DEFAULT_IM, *, lid: str | None = None,
                version_id: str | None = None, history: Sequence[ModificationDetail] | None = None,
                description: str | None = None, title: str = TITLE) -> bytes:
    """The label of a FITS product as bytes (see :func:`generate_label`)."""
    path = Path(fits_path)
    structure = scan_fits(path)
    kind = product_kind(structure)
    lid = L.check_lid(lid or _lid_for(structure, kind), level="product")
    if version_id is None:
        ident = L.parse_file_name(path.name)
        version_id = f"{ident.version if ident else 1}.0"
    version_id = str(L.Version.parse(version_id))
    created = creation_time(structure)
    if history is None:
        history = [ModificationDetail(created[:10], version_id, description or default_description())]
    start, stop = _obs_times(structure)
    values = {"lid": lid, "version_id": version_id, "title": title,
              "start_date_time": start, "stop_date_time": stop}
    fragments = {"modification_history": history_fragment(history),
                 "file_area": file_area_fragment(structure, kind, creation_date_time=created)}
    return render(TEMPLATE_BY_KIND[kind], im, values, fragments)


def generate_label(fits_path: str | Path, im: str = DEFAULT_IM, *, out: str | Path | None = None,
                   lid: str | None = None, version_id: str | None = None,
                   history: Sequence[ModificationDetail] | None = None,
                   description: str | None = None) -> Path:
    """Write the PDS4 label of an XSM FITS product and return its path.

    Parameters
    ----------
    fits_path : path
        The product on disk (level-1 ``.fits``/``.hk``/``.sa``, level-2 ``.gti``/``.pha``/
        ``.lc``/``.arf``); kind from the extension, else from the first EXTNAME.
    im : str
        Information model: ``'1B00'`` (IM 1.11, default, ISDA's) or ``'1O00'`` (IM 1.24).
    out : path, optional
        Label file, or a directory to put it in. Default: beside the data file, named by
        ISDA's pattern (``ch2_xsm_20210828_v1_level2_lc.xml``, :func:`lidvid.label_name_for_file`).
        Labels reference their data file by name only, so the label must end up beside it.
    lid, version_id : str, optional
        Override the LID (default: ISDA's pattern from the file name) and the version
        (default ``N.0`` from ``_vN_``).
    history : sequence of ModificationDetail, optional
        All versions, oldest first (``pds4.md`` §2.3); default one entry dated by FITS ``DATE``.
    description : str, optional
        ``Modification_Detail/description`` of the default history entry.

    Raises
    ------
    InputFormatError
        when the file is not a readable XSM product.
    """
    fits_path = Path(fits_path)
    data = build_label(fits_path, im, lid=lid, version_id=version_id, history=history,
                       description=description)
    target = label_path_for(fits_path, out)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    log.info("label %s written for %s (IM %s)", target, fits_path.name, im)
    return target


def label_path_for(data_path: Path, out: str | Path | None = None) -> Path:
    name = L.label_name_for_file(Path(data_path).name)
    if out is None:
        return Path(data_path).with_name(name)
    out = Path(out)
    return out / name if out.is_dir() else out


# --- day zip --------------------------------------------------------------------------------------

def make_zip_label(zip_path: str | Path, members: Sequence[str], *, im: str = DEFAULT_IM,
                   day: str | None = None, version_id: str | None = None,
                   zip_description: str | None = None, history: Sequence[ModificationDetail] | None = None,
                   creation_date_time: str | None = None, out: str | Path | None = None) -> Path:
    """Write the ``Product_Zipped`` label of a day zip (``archive.md`` §2) beside it.

    ``members`` are the LIDVIDs of the products in the zip (one ``Internal_Reference`` each,
    ``reference_type`` ``zip_to_package``). ``day``/``version_id`` default to what the zip
    name ``ch2_xsm_YYYYMMDD_vN.zip`` says.
    """
    zip_path = Path(zip_path)
    m = re.match(r"^ch2_xsm_(\d{8})_v(\d+)\.zip$", zip_path.name)
    if day is None or version_id is None:
        if not m:
            raise ParameterError(f"{zip_path.name}: not ch2_xsm_YYYYMMDD_vN.zip; give day and version_id")
        day = day or m.group(1)
        version_id = version_id or f"{m.group(2)}.0"
    version_id = str(L.Version.parse(version_id))
    if not members:
        raise ParameterError(f"{zip_path.name}: a zip label needs at least one member LIDVID")
    for ref in members:
        if not L.is_lidvid(ref):
            raise L.LidError(f"zip member {ref!r} is not a LIDVID")
    created = creation_date_time or _utc_now()
    history = history or [ModificationDetail(created[:10], version_id, default_description())]
    refs = "".join(_el("Internal_Reference", children=[_el("lidvid_reference", r),
                                                       _el("reference_type", "zip_to_package")])
                   for r in members)
    desc = zip_description or f"XSM day-wise archive package of {day[:4]}-{day[4:6]}-{day[6:]}: {len(members)} products"
    data = render("daywise_zip", im,
                  {"lid": L.zip_lid(day), "version_id": version_id, "title": TITLE,
                   "zip_description": desc},
                  {"modification_history": history_fragment(history), "internal_references": refs,
                   "file": file_fragment(zip_path, creation_date_time=created, local_identifier=None)})
    target = Path(out) if out is not None else zip_path.with_suffix(".xml")
    if target.is_dir():
        target = target / zip_path.with_suffix(".xml").name
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
