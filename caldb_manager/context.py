"""Calibration context: the files one observation time selects, pinned (``caldb.md`` §5, §7).

    >>> ctx = calibration_context(met, caldb_root)          # doctest: +SKIP
    >>> ctx.path("GAIN"), ctx.version, ctx.basenames()       # doctest: +SKIP

A product records ``ctx.version`` (CALDBVER) and ``ctx.basenames()`` (code -> file name) in its
provenance; reprocessing with the same version selects the same files.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xsm.caldb_manager.index import CalIndex, read_index
from xsm.caldb_manager.layout import MANIFEST_NAME, caldb_root_of, current_version, index_path, version_dir
from xsm.caldb_manager.select import Selection, normalise_rule, select
from xsm.products import settings
from xsm.products.errors import CalibrationError, SelectionError
from xsm.products.provenance import file_sha256

#: Code names a level-2 run may need, in the order of the real index (``caldb.md`` §1).
STANDARD_CODES: tuple[str, ...] = ("EBOUNDS", "GAIN", "ABSCOEF", "EFFAREAPAR", "RMF", "SYSERR",
                                   "RSP_OPEN", "RSP_BEFT")


@dataclass(frozen=True)
class CalibrationContext:
    """The calibration files selected for one time from one CALDB version.

    Attributes
    ----------
    root : Path
        CALDB root directory.
    version : str
        CALDBVER of the index used (for a versioned CALDB, the published version name).
    files : dict
        Code name -> absolute path of the selected file, for files present on disk.
    met : float
        The observation time (MET s) the selection was made for.
    rule : str
        Selection rule (``'reference'``, ``'default'`` or ``'quzcif'``).
    missing : dict
        Code name -> path of a selected file absent from the CALDB root (e.g. the real
        release's RMF/RSP).
    selections : dict
        Code name -> :class:`~xsm.caldb_manager.select.Selection` (with its explanation).
    """

    root: Path
    version: str
    files: dict[str, Path] = field(hash=False)
    met: float = 0.0
    rule: str = "reference"
    missing: dict[str, Path] = field(default_factory=dict, hash=False)
    selections: dict[str, Selection] = field(default_factory=dict, hash=False, compare=False, repr=False)

    def path(self, code: str) -> Path:
        """Path of the file selected for ``code``; :class:`SelectionError` when there is none."""
        c = code.strip().upper()
        if c in self.files:
            return self.files[c]
        if c in self.missing:
            raise SelectionError(f"CALDB {self.version} at {self.root}: {c} selects "
                                 f"{self.missing[c].name}, which is not present in the CALDB directory")
        sel = self.selections.get(c)
        why = sel.failure_message() if sel is not None else f"CALDB {self.version}: no {c} entry in the index"
        raise SelectionError(f"{why} (root {self.root})")

    def has(self, code: str) -> bool:
        return code.strip().upper() in self.files

    def basenames(self) -> dict[str, str]:
        """Code name -> file basename of every selected, present file (for provenance)."""
        return {c: p.name for c, p in self.files.items()}

    def explain(self, code: str | None = None) -> str:
        codes = [code.strip().upper()] if code else list(self.selections)
        return "\n".join(self.selections[c].explain() for c in codes if c in self.selections)

    def to_dict(self) -> dict:
        return {"root": str(self.root), "version": self.version, "met": self.met, "rule": self.rule,
                "files": {c: str(p) for c, p in self.files.items()},
                "missing": {c: str(p) for c, p in self.missing.items()}}


def resolve_root(caldb: str | Path | None) -> Path:
    """The CALDB root to use: ``caldb``, else ``$XSM_CALDB``; a clear error when neither."""
    if caldb is None:
        caldb = settings.caldb_dir()
    if caldb is None:
        raise CalibrationError("no CALDB given: set XSM_CALDB or pass the CALDB directory "
                               "(make a synthetic one with 'xsm caldb init --synthetic DIR')")
    return Path(caldb)


def load_index(caldb: str | Path | None = None, version: str | None = None) -> tuple[Path, CalIndex, str]:
    """(root, index, version name) of a CALDB root (or index file) and an optional version."""
    path = index_path(resolve_root(caldb), version)
    real = path.resolve()
    st = real.stat()
    index = _read_index_cached(str(real), st.st_mtime_ns, st.st_size, st.st_ino)
    root = caldb_root_of(path)
    name = version or current_version(root) or index.caldbver
    return root, index, name


@functools.lru_cache(maxsize=32)
def _read_index_cached(path: str, mtime_ns: int, size: int, inode: int) -> CalIndex:
    """Index files are small and (published ones) immutable: read each version once per process."""
    return read_index(path)


def context_from_index(root: Path, index: CalIndex, met: float, *, version: str | None = None,
                       rule="reference", tstop: float | None = None,
                       codes: tuple[str, ...] | None = None) -> CalibrationContext:
    """Select every code name of ``index`` (or ``codes``) at ``met`` into a context."""
    rule = normalise_rule(rule)
    files: dict[str, Path] = {}
    missing: dict[str, Path] = {}
    sels: dict[str, Selection] = {}
    for code in codes or index.codes():
        sel = select(index, code, met, rule=rule, tstop=tstop)
        sels[code] = sel
        chosen = sel.chosen
        if len(chosen) != 1:
            continue
        p = (root / chosen[0].relpath()).resolve() if not chosen[0].relpath().is_absolute() else chosen[0].relpath()
        if p.is_file():
            files[code] = p
        else:
            missing[code] = p
    _check_manifest(Path(root), version, files)
    return CalibrationContext(root=Path(root).resolve(), version=version or index.caldbver, files=files,
                              met=float(met), rule=rule, missing=missing, selections=sels)


@functools.lru_cache(maxsize=256)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    return file_sha256(path)


@functools.lru_cache(maxsize=64)
def _manifest_cached(path: str, mtime_ns: int) -> dict[str, str]:
    """``{file: sha256}`` of a version's manifest. An unreadable manifest is an error: skipping it
    would silently skip the fixity check that ``caldb.md`` §5 requires."""
    try:
        info = json.loads(Path(path).read_text())
        return {e["file"]: e.get("sha256") for e in info.get("files", []) if e.get("sha256")}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CalibrationError(f"{path}: unreadable CALDB version manifest ({type(exc).__name__}); "
                               "run 'xsm caldb verify'") from None


def _check_manifest(root: Path, version: str | None, files: Mapping[str, Path]) -> None:
    """In a versioned CALDB, every selected file must match the sha256 its version's manifest
    recorded (``caldb.md`` §5: "must exist and match the release manifest checksum")."""
    if not version:
        return
    m = version_dir(root, version) / MANIFEST_NAME
    if not m.is_file():
        return
    recorded = _manifest_cached(str(m), m.stat().st_mtime_ns)
    for code, p in files.items():
        want = recorded.get(p.name)
        if want is None:
            continue
        st = p.stat()
        if _sha256_cached(str(p), st.st_mtime_ns, st.st_size) != want:
            raise CalibrationError(f"CALDB {version} at {root}: {p.name} ({code}) changed since it was published "
                                   f"(sha256 differs from the manifest); run 'xsm caldb verify'")


def pinned_context(caldb: str | Path | None, version: str | None, files: Mapping[str, str], *,
                   met: float = 0.0) -> CalibrationContext:
    """The context a product recorded (CALDB version and code -> file basename), for reprocessing
    with exactly the same files. Each file must exist in the CALDB root and, in a versioned CALDB,
    be part of ``version`` with its recorded checksum."""
    root = resolve_root(caldb)
    root_dir = root if root.is_dir() else root.parent
    if version and current_version(root_dir) is not None:
        index_path(root_dir, version)  # the version must exist
        m = version_dir(root_dir, version) / MANIFEST_NAME
        recorded = _manifest_cached(str(m), m.stat().st_mtime_ns)
    else:
        recorded = None
    out: dict[str, Path] = {}
    for code, name in files.items():
        p = (root_dir / name).resolve()
        if not p.is_file():
            raise SelectionError(f"CALDB {version or '?'} at {root_dir}: pinned {code} file {name} is not present")
        if recorded is not None and name not in recorded:
            raise SelectionError(f"CALDB {version} at {root_dir}: pinned {code} file {name} is not part of "
                                 f"version {version}")
        out[code.strip().upper()] = p
    _check_manifest(root_dir, version, out)
    return CalibrationContext(root=root_dir.resolve(), version=version or "", files=out, met=float(met),
                              rule="pinned")


def calibration_context(met: float, caldb: str | Path | None = None, *, rule="reference",
                        tstop: float | None = None, version: str | None = None) -> CalibrationContext:
    """The calibration files valid at MET ``met`` in a CALDB (default ``$XSM_CALDB``).

    Parameters
    ----------
    met : float
        Observation time (MET s): the product's start time.
    caldb : path, optional
        CALDB root directory (or its index file). Default ``settings.caldb_dir()``.
    rule : str or Mode
        ``'reference'`` (XSMDAS 1.2: REF_TIME strictly before the data, first row wins a tie;
        also ``Mode.XSMDAS_1_2``), ``'default'`` (REF_TIME <= t, ties and validity starts
        inside (met, tstop) are errors; also ``Mode.DEFAULT``) or ``'quzcif'``.
    tstop : float, optional
        Product stop time (MET s), checked by the default rule.
    version : str, optional
        A published version of a versioned CALDB (default: the current one).

    Raises
    ------
    CalibrationError
        No CALDB configured. :class:`SelectionError` when the root has no index or the version
        does not exist. A code with nothing selected is not an error here: ``ctx.path(code)``
        raises then.
    """
    root, index, name = load_index(caldb, version)
    return context_from_index(root, index, met, version=name, rule=rule, tstop=tstop)
