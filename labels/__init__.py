"""xsm.labels: PDS4 labels of XSM products (``spec/pds4.md``).

Modules
-------
``generate``  :func:`generate_label` (FITS product -> label from ``templates/pds4/<IM>/``),
              :func:`make_zip_label` (day zip, ``archive.md`` §2)
``bundle``    :func:`make_collection` (label + CRLF inventory), :func:`make_bundle`,
              :class:`InventoryEntry`, :func:`write_readme`
``lidvid``    LID/LIDVID patterns and rules, :func:`next_version` (reprocessing = next major)
``validate``  :func:`validate_labels` -> :class:`Findings` (XSD, Schematron, data checks), offline
``fitsmap``   :func:`scan_fits`: header/data offsets of a FITS file, PDS4 field types

Schema files are located by :mod:`xsm.schemas.locator` (``XSM_PDS4_SCHEMAS`` or the copy
installed by ``xsm labels schemas install --from DIR``); nothing is fetched from the network.
"""
from __future__ import annotations

__all__ = ["generate_label", "make_zip_label", "make_collection", "make_bundle", "InventoryEntry",
           "validate_labels", "Findings", "Finding"]


def __getattr__(name: str):  # lazy: importing xsm.labels stays cheap
    if name in ("generate_label", "make_zip_label"):
        from xsm.labels import generate

        return getattr(generate, name)
    if name in ("make_collection", "make_bundle", "InventoryEntry"):
        from xsm.labels import bundle

        return getattr(bundle, name)
    if name in ("validate_labels", "Findings", "Finding"):
        from xsm.labels import validate

        return getattr(validate, name)
    raise AttributeError(f"module 'xsm.labels' has no attribute {name!r}")
