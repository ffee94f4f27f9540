"""Bundle and collection labels with their inventories (``spec/pds4.md`` §4, ``archive.md`` §6).

API for the archive (release building)::

    from xsm.labels.bundle import InventoryEntry, make_collection, make_bundle

    coll = make_collection(out_dir / "data_calibrated", "calibrated", "1.0",
                           [InventoryEntry("P", lidvid), ...])
    # -> CollectionResult(label=.../collection_data_calibrated.xml,
    #                     inventory=.../collection_data_calibrated_inventory.csv,
    #                     lid=..., version_id="1.0", lidvid=...)
    bundle = make_bundle(out_dir, "1.0", [coll.lidvid, ...], readme=out_dir / "readme.txt")

Rules:

* Inventory CSV: one ``P,<LIDVID>`` / ``S,<LID or LIDVID>`` line per member, **CRLF** line ends,
  no header, ASCII; ``P`` members must be LIDVIDs; no duplicates, no two versions of one LID.
  ``records`` in the label = number of lines.
* Collection LID = bundle LID + ``:data_raw`` / ``:data_calibrated`` (or any collection id);
  every ``P`` product's LID must start with the collection LID.
* Versions (:func:`xsm.labels.lidvid.next_version`): a new product version changes the
  inventory, hence a new collection version (``next_version(v, data_changed=False)`` when only
  the inventory changed) and a new bundle version. ``history`` lists all versions, oldest first.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from xsm.labels import lidvid as L
from xsm.labels.generate import (DEFAULT_IM, TITLE, ModificationDetail, default_description,
                                 file_fragment, history_fragment, render, _el)
from xsm.products.errors import ParameterError
from xsm.products.fitsio import atomic_path

#: ``reference_type`` of a bundle member by collection type.
BUNDLE_REFERENCE_TYPES = {"data": "bundle_has_data_collection", "document": "bundle_has_document_collection",
                          "calibration": "bundle_has_calibration_collection",
                          "context": "bundle_has_context_collection", "browse": "bundle_has_browse_collection",
                          "geometry": "bundle_has_geometry_collection",
                          "miscellaneous": "bundle_has_member_collection",
                          "xml_schema": "bundle_has_schema_collection",
                          "spice_kernels": "bundle_has_spice_kernel_collection"}


@dataclass(frozen=True)
class InventoryEntry:
    """One inventory line: ``status`` ``'P'`` (primary, LIDVID) or ``'S'`` (secondary, LID[VID])."""

    status: str
    reference: str

    def line(self) -> str:
        return f"{self.status},{self.reference}"


def inventory_problems(entries: Sequence[InventoryEntry], collection_lid: str | None = None) -> list[str]:
    """Every inventory rule (``pds4.md`` §4.3, §5 #9–11) that ``entries`` break."""
    problems = []
    seen: dict[str, str] = {}
    for i, e in enumerate(entries, 1):
        if e.status not in ("P", "S"):
            problems.append(f"line {i}: member status {e.status!r} is not P or S")
            continue
        try:
            lid, ver = L.split_lidvid(e.reference)
        except L.LidError as exc:
            problems.append(f"line {i}: {exc}")
            continue
        if e.status == "P" and ver is None:
            problems.append(f"line {i}: primary member {e.reference} must be a LIDVID (LID::M.n)")
        if e.status == "P" and collection_lid and not lid.startswith(collection_lid + ":"):
            problems.append(f"line {i}: primary member {lid} does not belong to collection {collection_lid}")
        if lid in seen:
            what = "duplicate member" if seen[lid] == e.reference else "two versions of one LID"
            problems.append(f"line {i}: {what}: {e.reference} (and {seen[lid]})")
        seen.setdefault(lid, e.reference)
    return problems


def inventory_bytes(entries: Sequence[InventoryEntry], collection_lid: str | None = None) -> bytes:
    """The inventory CSV (CRLF line ends); raises :class:`ParameterError` listing broken rules."""
    problems = inventory_problems(entries, collection_lid)
    if problems:
        raise ParameterError("invalid collection inventory: " + "; ".join(problems))
    if not entries:
        raise ParameterError("a collection inventory needs at least one member")
    return "".join(e.line() + "\r\n" for e in entries).encode("ascii")


def read_inventory(path: str | Path) -> list[InventoryEntry]:
    """Entries of an inventory file (lenient about line ends; the validator checks CRLF)."""
    out = []
    for line in Path(path).read_bytes().decode("ascii", "replace").splitlines():
        if not line.strip():
            continue
        status, _, ref = line.partition(",")
        out.append(InventoryEntry(status.strip(), ref.strip()))
    return out


@dataclass(frozen=True)
class CollectionResult:
    label: Path
    inventory: Path
    lid: str
    version_id: str

    @property
    def lidvid(self) -> str:
        return f"{self.lid}::{self.version_id}"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _history(history, version_id, created, description):
    if history:
        hist = list(history)
        if hist[-1].version_id != version_id:
            raise ParameterError(f"the last Modification_Detail ({hist[-1].version_id}) must be "
                                 f"the label's version {version_id}")
        return hist
    return [ModificationDetail(created[:10], version_id, description or default_description())]


def make_collection(out_dir: str | Path, collection: str, version_id: str,
                    members: Iterable[InventoryEntry | str], *, im: str = DEFAULT_IM,
                    bundle_lid: str = L.BUNDLE_LID, history: Sequence[ModificationDetail] | None = None,
                    description: str | None = None, publication_year: int | None = None,
                    creation_date_time: str | None = None,
                    template: str = "collection") -> CollectionResult:
    """Write ``collection_<id>.xml`` and ``collection_<id>_inventory.csv`` into ``out_dir``.

    Parameters
    ----------
    collection : str
        ``'raw'``, ``'calibrated'`` or a collection id (``'data_raw'``, ``'document'``).
    members : iterable of InventoryEntry or str
        A plain string is a primary member LIDVID (``P``).
    template : str
        ``'collection'`` (``collection_type`` Data) or ``'collection_miscellaneous'``
        (``collection_type`` Miscellaneous, e.g. the release checksum manifests).
    """
    out_dir = Path(out_dir)
    lid = L.collection_lid(collection, bundle_lid)
    cid = lid.rsplit(":", 1)[1]
    version_id = str(L.Version.parse(version_id))
    entries = [m if isinstance(m, InventoryEntry) else InventoryEntry("P", m) for m in members]
    data = inventory_bytes(entries, lid)
    created = creation_date_time or _now()
    inv = out_dir / f"collection_{cid}_inventory.csv"
    with atomic_path(inv) as tmp:
        tmp.write_bytes(data)
    hist = _history(history, version_id, created, description)
    year = publication_year or int(created[:4])
    label = render(template, im,
                   {"lid": lid, "version_id": version_id, "title": f"{TITLE}: {cid} collection",
                    "publication_year": year,
                    "citation_description": f"Chandrayaan-2 XSM {cid.replace('_', ' ')} collection",
                    "collection_description": f"Chandrayaan-2 XSM {cid.replace('_', ' ')} products, "
                                              f"{len(entries)} members", "records": len(entries)},
                   {"modification_history": history_fragment(hist),
                    "file": file_fragment(inv, creation_date_time=created, records=len(entries),
                                          local_identifier=None)})
    target = out_dir / f"collection_{cid}.xml"
    with atomic_path(target) as tmp:
        tmp.write_bytes(label)
    return CollectionResult(label=target, inventory=inv, lid=lid, version_id=version_id)


def make_bundle(out_dir: str | Path, version_id: str, collections: Iterable[str | tuple[str, str]], *,
                im: str = DEFAULT_IM, bundle_lid: str = L.BUNDLE_LID, readme: str | Path | None = None,
                history: Sequence[ModificationDetail] | None = None, description: str | None = None,
                publication_year: int | None = None, creation_date_time: str | None = None) -> Path:
    """Write ``bundle_xsm.xml`` into ``out_dir`` (the bundle root).

    ``collections``: collection LIDVIDs (``bundle_has_data_collection``), or
    ``(lidvid, collection type)`` pairs with a key of :data:`BUNDLE_REFERENCE_TYPES`.
    ``readme``: an existing ``readme.txt`` (CRLF, ASCII) in the bundle root, described as
    ``File_Area_Text``.
    """
    out_dir = Path(out_dir)
    L.check_lid(bundle_lid, level="bundle")
    version_id = str(L.Version.parse(version_id))
    created = creation_date_time or _now()
    members = []
    seen = set()
    for c in collections:
        ref, ctype = (c, "data") if isinstance(c, str) else c
        clid, ver = L.split_lidvid(ref)
        if ver is None:
            raise ParameterError(f"bundle member {ref} must be a collection LIDVID")
        if L.collection_of(clid) != bundle_lid:
            raise ParameterError(f"bundle member {clid} is not a collection of {bundle_lid}")
        if clid in seen:
            raise ParameterError(f"bundle member {clid} listed twice")
        seen.add(clid)
        if ctype not in BUNDLE_REFERENCE_TYPES:
            raise ParameterError(f"unknown collection type {ctype!r} (known: {', '.join(BUNDLE_REFERENCE_TYPES)})")
        members.append(_el("Bundle_Member_Entry", children=[
            _el("lidvid_reference", ref), _el("member_status", "Primary"),
            _el("reference_type", BUNDLE_REFERENCE_TYPES[ctype])]))
    if not members:
        raise ParameterError("a bundle needs at least one collection")
    readme_xml = ""
    if readme is not None:
        readme = Path(readme)
        if readme.parent.resolve() != out_dir.resolve():
            raise ParameterError(f"{readme}: the readme must be in the bundle root {out_dir}")
        readme_xml = _el("File_Area_Text", children=[
            file_fragment(readme, creation_date_time=created, local_identifier=None),
            _el("Stream_Text", children=[_el("offset", 0, unit="byte"),
                                         _el("parsing_standard_id", "7-Bit ASCII Text"),
                                         _el("record_delimiter", "Carriage-Return Line-Feed")])])
    hist = _history(history, version_id, created, description)
    year = publication_year or int(created[:4])
    label = render("bundle", im,
                   {"lid": bundle_lid, "version_id": version_id, "title": f"{TITLE}: archive bundle",
                    "publication_year": year,
                    "citation_description": "Chandrayaan-2 Solar X-ray Monitor (XSM) archive bundle: "
                                            "day-wise raw (level-1) and calibrated (level-2) data",
                    "bundle_description": description or "Chandrayaan-2 XSM archive bundle"},
                   {"modification_history": history_fragment(hist), "readme": readme_xml,
                    "members": "".join(members)})
    target = out_dir / "bundle_xsm.xml"
    with atomic_path(target) as tmp:
        tmp.write_bytes(label)
    return target


def write_readme(out_dir: str | Path, text: str) -> Path:
    """Write ``readme.txt`` (7-bit ASCII, CRLF) in the bundle root."""
    target = Path(out_dir) / "readme.txt"
    body = "\r\n".join(text.splitlines()) + "\r\n"
    with atomic_path(target) as tmp:
        tmp.write_bytes(body.encode("ascii"))
    return target
