"""Where things live in a CALDB root (``caldb.md`` §1, §7).

A plain release (like the real 20210628) is a directory with ``xsmcaldb.indx`` and the files it
names. A CALDB managed by ``xsm caldb publish`` adds versions::

    ROOT/
      CH2xsm*.fits, *.rmf, *.rsp          calibration files (immutable, never deleted)
      versions/<V>/xsmcaldb.indx          index snapshot of version V (XSM form)
      versions/<V>/caldb.indx             the same as a full OGIP CIF
      versions/<V>/manifest.json          file, size, sha256 of every indexed file; parent version
      current -> versions/<V>             the pointer to the current version (one symlink)
      xsmcaldb.indx -> current/xsmcaldb.indx
      caldb.indx    -> current/caldb.indx

so the root itself stays a valid CALDB for XSMDAS and HEASoft, and switching the ``current``
symlink (one atomic rename) is the only commit point of a publish.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from xsm.caldb_manager.index import OGIP_INDEX_NAME, XSM_INDEX_NAME
from xsm.products.errors import InputFormatError, SelectionError

VERSIONS_DIR = "versions"
CURRENT_LINK = "current"
MANIFEST_NAME = "manifest.json"


def versions_dir(root: Path) -> Path:
    return Path(root) / VERSIONS_DIR


def version_dir(root: Path, version: str) -> Path:
    return versions_dir(root) / version


def is_versioned(root: Path) -> bool:
    return (Path(root) / CURRENT_LINK).is_symlink() or versions_dir(root).is_dir()


def current_version(root: Path) -> str | None:
    """The version the ``current`` pointer names, or None for a plain release."""
    link = Path(root) / CURRENT_LINK
    if link.is_symlink():
        return Path(os.readlink(link)).name
    return None


def list_versions(root: Path) -> list[str]:
    """Published versions, oldest first: the chain from the current version through its parents.

    A snapshot directory that never became current (a publish that stopped before its commit
    point) is not a version; the next publish removes it. A version of the chain whose manifest
    is missing or unreadable is an error (InputFormatError), never the end of the chain: the
    older versions would otherwise look like such leftovers and be removed.
    """
    cur = current_version(root)
    out: list[str] = []
    seen: set[str] = set()
    while cur and cur not in seen:
        m = version_dir(root, cur) / MANIFEST_NAME
        try:
            info = json.loads(m.read_text())
        except (OSError, ValueError) as exc:
            raise InputFormatError(f"{m}: manifest of CALDB version {cur} (in the chain of "
                                   f"{current_version(root)}) unreadable: {exc}") from None
        if not isinstance(info, dict):
            raise InputFormatError(f"{m}: manifest of CALDB version {cur} is not a JSON object")
        out.append(cur)
        seen.add(cur)
        cur = info.get("parent")
    return out[::-1]


def orphan_versions(root: Path) -> list[str]:
    """Snapshot directories outside the published chain (left by an interrupted publish)."""
    vdir = versions_dir(root)
    if not vdir.is_dir():
        return []
    chain = set(list_versions(root))
    return sorted(d.name for d in vdir.iterdir() if d.is_dir() and not d.name.startswith(".")
                  and d.name not in chain)


def read_manifest(root: Path, version: str) -> dict:
    path = version_dir(root, version) / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SelectionError(f"{root}: no CALDB version {version!r} (versions: "
                             f"{', '.join(list_versions(root)) or 'none'})") from None
    except (OSError, ValueError) as exc:
        raise InputFormatError(f"{path}: unreadable manifest ({exc})") from None


def index_path(root: str | Path, version: str | None = None, form: str = "xsm") -> Path:
    """The index file of ``version`` (default: the current one) of a CALDB root.

    ``root`` may also be an index file itself. Raises :class:`SelectionError` when absent.
    """
    root = Path(root)
    name = OGIP_INDEX_NAME if form == "ogip" else XSM_INDEX_NAME
    if root.is_file():
        return root
    if version is not None:
        p = version_dir(root, version) / name
        if not p.is_file() or (current_version(root) is not None and version not in list_versions(root)):
            if current_version(root) is None and not versions_dir(root).is_dir():
                # a plain release: its only version is its CALDBVER
                p = root / name
                if p.is_file():
                    return p
            raise SelectionError(f"{root}: no CALDB version {version!r} (versions: "
                                 f"{', '.join(list_versions(root)) or 'none'})")
        return p
    p = root / name
    if p.is_file():
        return p
    cur = current_version(root)
    if cur is not None and (version_dir(root, cur) / name).is_file():
        return version_dir(root, cur) / name
    if not root.exists():
        raise SelectionError(f"{root}: CALDB directory does not exist")
    raise SelectionError(f"{root}: no {name} (not a CALDB root; make one with 'xsm caldb init --synthetic DIR')")


def caldb_root_of(index_file: Path) -> Path:
    """The CALDB root whose files an index names (its directory, or the root for a snapshot)."""
    index_file = Path(index_file)
    parent = index_file.parent
    if parent.parent.name == VERSIONS_DIR:
        return parent.parent.parent
    return parent
