"""Checksum manifests of a release and their PDS4 labels (``spec/archive.md`` §6).

API for the archive (release building)::

    from xsm.labels.checksum import md5deep_bytes, make_checksum_manifest_label

    path.write_bytes(md5deep_bytes([(md5, "data_raw/2021/09/05/x.fits"), ...]))
    label = make_checksum_manifest_label(path, version_id="2.0")

* The checksum file has one ``<md5>  <relative path>`` line per file (md5deep/md5sum format, two
  spaces, ``/`` separators, CRLF line ends, ASCII); its ``Product_Ancillary`` label describes it with
  ``File_Area_Ancillary/Checksum_Manifest`` (``parsing_standard_id`` ``MD5Deep 4.n``,
  ``record_delimiter`` ``Carriage-Return Line-Feed``).
* The product lives in the bundle's ``miscellaneous`` collection: LID
  :data:`CHECKSUM_MANIFEST_LID`, one version per release (``N.0`` for release ``N``), file
  ``checksums_NNN.md5`` and label ``checksums_NNN.xml``.
* The deep-archive manifests (``pds-deep-archive`` style): :func:`deep_checksum_bytes`
  (``md5<TAB>path``, CRLF) and :func:`transfer_manifest_bytes` (LIDVID and label path in two
  fixed-width space-padded columns, CRLF).
"""
from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from xsm.labels import lidvid as L
from xsm.labels.generate import (DEFAULT_IM, TITLE, ModificationDetail, default_description,
                                 file_fragment, history_fragment, render)
from xsm.products.errors import ParameterError
from xsm.products.fitsio import atomic_path

#: The miscellaneous collection of the bundle (checksum manifests of the releases).
COLLECTION_MISCELLANEOUS = f"{L.BUNDLE_LID}:miscellaneous"
#: LID of the release checksum manifest (one version per release).
CHECKSUM_MANIFEST_LID = f"{COLLECTION_MISCELLANEOUS}:checksum_manifest"
#: md5deep line form: 32 lower-case hex digits, two spaces, a relative path.
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")


def _check_entries(entries: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for md5, rel in entries:
        if not _MD5_RE.match(md5 or ""):
            raise ParameterError(f"checksum manifest: {rel}: md5 {md5!r} is not 32 lower-case hex digits")
        if not rel or rel.startswith("/") or "\\" in rel or any(c in rel for c in "\r\n\t"):
            raise ParameterError(f"checksum manifest: path {rel!r} is not a relative '/' path")
        out.append((md5, rel))
    if not out:
        raise ParameterError("checksum manifest: no files")
    return out


def md5deep_bytes(entries: Iterable[tuple[str, str]]) -> bytes:
    """``<md5>  <path>`` lines (CRLF, ASCII) of ``(md5, relative path)`` pairs, in the order given."""
    return "".join(f"{m}  {p}\r\n" for m, p in _check_entries(entries)).encode("ascii")


def deep_checksum_bytes(entries: Iterable[tuple[str, str]]) -> bytes:
    """``pds-deep-archive`` checksum manifest: ``<md5>\\t<path>`` lines (CRLF, ASCII)."""
    return "".join(f"{m}\t{p}\r\n" for m, p in _check_entries(entries)).encode("ascii")


def transfer_manifest_bytes(entries: Sequence[tuple[str, str]]) -> tuple[bytes, int, int]:
    """``pds-deep-archive`` transfer manifest of ``(LIDVID, label path)`` pairs.

    Returns
    -------
    data : bytes
        Fixed-width records (CRLF): the LIDVID left-justified in ``lidvid_width`` bytes (the
        longest LIDVID plus one blank), then the
        path left-justified in ``path_width`` bytes.
    lidvid_width, path_width : int
        Field widths in bytes.
    """
    if not entries:
        raise ParameterError("transfer manifest: no products")
    for lv, _p in entries:
        if not L.is_lidvid(lv):
            raise ParameterError(f"transfer manifest: {lv!r} is not a LIDVID")
    wl = max(len(lv) for lv, _ in entries) + 1  # at least one blank between the columns
    wp = max(len(p) for _, p in entries)
    data = "".join(f"{lv:<{wl}}{p:<{wp}}\r\n" for lv, p in entries).encode("ascii")
    return data, wl, wp


def checksum_manifest_version(release_number: int) -> str:
    """``version_id`` of the checksum manifest of release ``release_number`` (``N.0``)."""
    if int(release_number) < 1:
        raise ParameterError(f"release number {release_number} must be >= 1")
    return f"{int(release_number)}.0"


def make_checksum_manifest_label(manifest: str | Path, *, version_id: str, im: str = DEFAULT_IM,
                                 lid: str = CHECKSUM_MANIFEST_LID,
                                 history: Sequence[ModificationDetail] | None = None,
                                 description: str | None = None,
                                 creation_date_time: str | None = None,
                                 out: str | Path | None = None) -> Path:
    """Write the ``Product_Ancillary`` label (``Checksum_Manifest``) of checksum file ``manifest``.

    Parameters
    ----------
    manifest : path of the md5deep-format file (``checksums_NNN.md5``), already written
    version_id : label version (``N.0`` for release ``N``, :func:`checksum_manifest_version`)
    history : ``Modification_Detail`` entries, oldest first, the last one of ``version_id``
    out : label path (default: the manifest with the ``.xml`` suffix)

    Returns
    -------
    Path
        The label written (atomically).
    """
    manifest = Path(manifest)
    L.check_lid(lid, level="product")
    version_id = str(L.Version.parse(version_id))
    created = creation_date_time or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    hist = list(history) if history else [ModificationDetail(created[:10], version_id, default_description())]
    if hist[-1].version_id != version_id:
        raise ParameterError(f"{manifest.name}: the last Modification_Detail ({hist[-1].version_id}) "
                             f"must be the label's version {version_id}")
    records = manifest.read_bytes().count(b"\r\n")
    data = render("checksum_manifest", im,
                  {"lid": lid, "version_id": version_id, "title": f"{TITLE}: release checksum manifest",
                   "publication_year": int(created[:4]),
                   "citation_description": "MD5 checksums of the files of a Chandrayaan-2 XSM archive release",
                   "manifest_description": description or
                   f"md5deep format: one '<md5>  <path relative to the bundle root>' line per file, "
                   f"{records} files"},
                  {"modification_history": history_fragment(hist),
                   "file": file_fragment(manifest, creation_date_time=created, records=records,
                                         local_identifier=None)})
    target = Path(out) if out is not None else manifest.with_suffix(".xml")
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


#: LID prefix of the deep-archive AIP of a bundle version (``pds-deep-archive`` names them
#: ``urn:nasa:pds:system_bundle:product_aip:<bundle id>_v<version>``).
AIP_LID_PREFIX = "urn:isro:isda:system_bundle:product_aip"


def make_aip_label(out: str | Path, *, checksum_manifest: str | Path, transfer_manifest: str | Path,
                   lidvid_width: int, path_width: int, bundle_lidvid: str, im: str = DEFAULT_IM,
                   description: str | None = None, creation_date_time: str | None = None) -> Path:
    """Write the ``Product_AIP`` label of a deep-archive package (``archive.md`` §6).

    Parameters
    ----------
    out : label path; the two manifests must be in the same directory
    checksum_manifest : the ``md5<TAB>path`` file (:func:`deep_checksum_bytes`)
    transfer_manifest : the fixed-width file (:func:`transfer_manifest_bytes`)
    lidvid_width, path_width : its field widths in bytes
    bundle_lidvid : the bundle packaged (``Internal_Reference`` ``package_has_bundle``)

    Returns
    -------
    Path
        The label written (atomically); LID ``<AIP_LID_PREFIX>:<bundle id>_v<bundle version>``,
        version ``1.0``.
    """
    from xsm.products.provenance import file_md5

    out, cm, tm = Path(out), Path(checksum_manifest), Path(transfer_manifest)
    if cm.parent.resolve() != out.parent.resolve() or tm.parent.resolve() != out.parent.resolve():
        raise ParameterError(f"{out}: the deep-archive manifests must be beside the AIP label")
    blid, bver = L.split_lidvid(bundle_lidvid)
    if bver is None:
        raise ParameterError(f"AIP: {bundle_lidvid} is not a bundle LIDVID")
    lid = L.check_lid(f"{AIP_LID_PREFIX}:{blid.rsplit(':', 1)[1]}_v{bver}", level="product")
    created = creation_date_time or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    cm_md5, tm_md5 = file_md5(cm), file_md5(tm)   # each manifest hashed and counted once
    cm_records, records = cm.read_bytes().count(b"\r\n"), tm.read_bytes().count(b"\r\n")
    data = render("deep_archive_aip", im,
                  {"lid": lid, "version_id": "1.0", "title": f"{TITLE}: archival information package of "
                                                            f"{bundle_lidvid}",
                   "checksum_manifest_checksum": cm_md5, "transfer_manifest_checksum": tm_md5,
                   "bundle_lidvid": bundle_lidvid, "transfer_records": records,
                   "record_length": lidvid_width + path_width + 2, "lidvid_width": lidvid_width,
                   "path_location": lidvid_width + 1, "path_width": path_width,
                   "aip_description": description or f"Archival information package of {bundle_lidvid}"},
                  {"modification_history": history_fragment(
                      [ModificationDetail(created[:10], "1.0", default_description())]),
                   "checksum_file": file_fragment(cm, creation_date_time=created, records=cm_records,
                                                  md5=cm_md5, local_identifier=None),
                   "transfer_file": file_fragment(tm, creation_date_time=created, records=records,
                                                  md5=tm_md5, local_identifier=None)})
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return out
