"""Certification of calibration files and releases (``caldb.md`` §4, §7).

A file is certified when it opens, passes the FITS checksum (when it has one), carries the OGIP
CALDB keywords in every calibration extension (``CCLS0001``, ``CDTP0001``, ``CCNM0001``,
``CBDn0001``, ``CVSD0001``, ``CVST0001``, ``CDES0001``), has the HDU and column layout of its type
with consistent grid keywords and shapes, sane values, and is not byte-identical to a file already
in the CALDB under another name. A release adds the index-level checks: every row's file present
(a missing file is reported as a warning, never fatal), its CCNM/CVSD/CVST consistent with the row,
no two good rows of a code sharing a REF_TIME.

Findings are errors (the file is refused) or warnings (reported: e.g. the real release's
non-standard boundary strings, or REF_TIME 57750 against CVSD0001 2017-01-01).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.caldb_manager import calfiles as cf
from xsm.caldb_manager.boundaries import BoundaryError, is_strict, parse_boundary
from xsm.caldb_manager.index import CalIndex, IndexRow, read_index, vsd_vst_to_mjd
from xsm.products.errors import InputFormatError
from xsm.products.provenance import file_sha256

ERROR = "error"
WARNING = "warning"

#: OGIP CALDB keywords every calibration extension carries (``caldb.md`` §4).
CALDB_KEYWORDS = ("CCLS0001", "CDTP0001", "CCNM0001", "CBD10001", "CVSD0001", "CVST0001", "CDES0001")
CALDB_CLASSES = ("BCF", "CPF", "PCF", "USR")
CALDB_DTYPES = ("DATA", "TASK")

#: Calibration extensions of each code name (for the keyword check).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "EBOUNDS": ("EBOUNDS",),
    "GAIN": ("GAIN", "CALGAIN"),
    "ABSCOEF": tuple(n for n, _ in cf.ABSCOEF_EXTENSIONS),
    "EFFAREAPAR": ("EFFAREAPAR",),
    "SYSERR": ("SYSERR",),
    "RMF": ("MATRIX", "EBOUNDS"),
    "RSP_OPEN": ("MATRIX", "EBOUNDS"),
    "RSP_BEFT": ("MATRIX", "EBOUNDS"),
}
#: Code names a file's CCNM0001 may carry for an index code (OGIP names of responses).
CODE_ALIASES = {"RMF": ("RMF", "MATRIX"), "RSP_OPEN": ("RSP_OPEN", "SPECRESP MATRIX", "MATRIX"),
                "RSP_BEFT": ("RSP_BEFT", "SPECRESP MATRIX", "MATRIX")}

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}$")


@dataclass(frozen=True)
class Finding:
    level: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: [{self.check}] {self.message}"


@dataclass
class FileReport:
    """Certification of one file."""

    path: Path
    code: str | None = None
    sha256: str | None = None
    size: int | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.level == ERROR for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]

    def add(self, level: str, check: str, message: str) -> None:
        self.findings.append(Finding(level, check, message))

    def reasons(self) -> str:
        """The errors on one line (for a refusal)."""
        return "; ".join(f"[{f.check}] {f.message}" for f in self.errors)

    def to_dict(self) -> dict:
        return {"file": str(self.path), "code": self.code, "ok": self.ok, "sha256": self.sha256, "size": self.size,
                "findings": [{"level": f.level, "check": f.check, "message": f.message} for f in self.findings]}

    def summary(self) -> str:
        head = f"{'PASS' if self.ok else 'FAIL'} {self.path.name} ({self.code or '?'})"
        return "\n".join([head] + [f"  {f}" for f in self.findings])


@dataclass
class ReleaseReport:
    """Certification of a CALDB release: its index and every file it names."""

    index: Path
    version: str
    files: list[FileReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files) and not any(f.level == ERROR for f in self.findings)

    def to_dict(self) -> dict:
        return {"index": str(self.index), "version": self.version, "ok": self.ok, "missing": self.missing,
                "findings": [{"level": f.level, "check": f.check, "message": f.message} for f in self.findings],
                "files": [r.to_dict() for r in self.files]}

    def summary(self) -> str:
        lines = [f"{'PASS' if self.ok else 'FAIL'} CALDB {self.version} ({self.index})"]
        lines += [f"  {f}" for f in self.findings]
        for r in self.files:
            lines += ["  " + line for line in r.summary().splitlines()]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------

def detect_code(hdul: fits.HDUList) -> str | None:
    """The code name of a calibration file from its first ``CCNM0001`` (or its extensions)."""
    for hdu in hdul[1:]:
        c = hdu.header.get("CCNM0001")
        if c:
            c = str(c).strip().upper()
            if c in ("MATRIX", "SPECRESP MATRIX"):
                return "RSP_OPEN" if str(hdu.header.get("HDUCLAS3", "")).strip().upper() == "FULL" else "RMF"
            return c
    names = {h.name for h in hdul}
    if "MATRIX" in names or "SPECRESP MATRIX" in names:
        return "RMF"
    for code, exts in EXTENSIONS.items():
        if exts[0] in names and code not in ("RMF", "RSP_OPEN", "RSP_BEFT"):
            return code
    return None


def _check_keywords(rep: FileReport, hdul: fits.HDUList, code: str) -> None:
    exts = [h for h in hdul[1:] if h.name in EXTENSIONS.get(code, ())] or list(hdul[1:2])
    for hdu in exts:
        h = hdu.header
        where = f"{hdu.name}"
        missing = [k for k in CALDB_KEYWORDS if k not in h]
        if missing:
            rep.add(ERROR, "keywords", f"{where} lacks {', '.join(missing)}")
        cls = str(h.get("CCLS0001", "")).strip()
        if cls and cls not in CALDB_CLASSES:
            rep.add(ERROR, "keywords", f"{where} CCLS0001 = {cls!r} (one of {', '.join(CALDB_CLASSES)})")
        dt = str(h.get("CDTP0001", "")).strip()
        if dt and dt not in CALDB_DTYPES:
            rep.add(ERROR, "keywords", f"{where} CDTP0001 = {dt!r} (DATA or TASK)")
        cnam = str(h.get("CCNM0001", "")).strip().upper()
        if cnam and cnam not in CODE_ALIASES.get(code, (code,)):
            rep.add(ERROR, "keywords", f"{where} CCNM0001 = {cnam!r}, not {code}")
        vsd, vst = str(h.get("CVSD0001", "")).strip(), str(h.get("CVST0001", "")).strip()
        if "CVSD0001" in h and not _DATE.match(vsd):
            rep.add(ERROR, "keywords", f"{where} CVSD0001 = {vsd!r} (YYYY-MM-DD)")
        if "CVST0001" in h and not _TIME.match(vst):
            rep.add(ERROR, "keywords", f"{where} CVST0001 = {vst!r} (hh:mm:ss)")
        if _DATE.match(vsd) and _TIME.match(vst or "00:00:00"):
            try:
                vsd_vst_to_mjd(vsd, vst or "00:00:00")
            except ValueError:
                rep.add(ERROR, "keywords", f"{where} CVSD0001/CVST0001 {vsd} {vst} is not a valid date/time")
        if "CDES0001" in h and not str(h["CDES0001"]).strip():
            rep.add(ERROR, "keywords", f"{where} CDES0001 is empty")
        for k in range(1, 10):
            key = f"CBD{k}0001"
            if key not in h:
                continue
            text = str(h[key])
            try:
                parse_boundary(text)
            except BoundaryError as exc:
                rep.add(ERROR, "boundaries", f"{where} {key}: {exc}")
                continue
            if not is_strict(text):
                rep.add(WARNING, "boundaries", f"{where} {key} = {text!r} is not OGIP syntax (udcif would reject it)")
        tel, ins = str(h.get("TELESCOP", "")).strip(), str(h.get("INSTRUME", "")).strip()
        if tel and tel != "CH2_ORBITER" or ins and ins != "XSM":
            rep.add(WARNING, "keywords", f"{where} TELESCOP/INSTRUME = {tel}/{ins} (calibration files use "
                                          f"CH2_ORBITER/XSM)")


def _check_values(rep: FileReport, path: Path, code: str) -> None:
    """Layout (through the typed readers) and value sanity of each type."""
    reader = cf.READERS.get(code)
    if reader is None:
        rep.add(WARNING, "layout", f"no layout rules for code {code}; only the keywords were checked")
        return
    try:
        obj = reader(path)
    except InputFormatError as exc:
        rep.add(ERROR, "layout", str(exc).replace(f"{path}: ", ""))
        return
    if code == "EBOUNDS":
        _ebounds_values(rep, obj)
    elif code == "GAIN":
        for t in (obj.sun, obj.cal):
            if t is None:
                continue
            if not (np.all(t.gain > 0.005) and np.all(t.gain < 0.05)):
                rep.add(ERROR, "values", f"{t.extname} GAIN outside 0.005-0.05 keV/channel "
                                         f"({t.gain.min():.5g}-{t.gain.max():.5g})")
            if np.any(np.abs(t.offset) > 0.5):
                rep.add(ERROR, "values", f"{t.extname} |OFFSET| above 0.5 keV")
            itec = np.arange(t.ntec, dtype=np.float32) * t.tecbinsize
            if not np.allclose(t.tec, itec, atol=1e-4):
                rep.add(WARNING, "values", f"{t.extname} TEC_CURRENT column differs from itec*TECBINSIZE")
        if obj.cal is None:
            rep.add(WARNING, "layout", "no CALGAIN extension (calibration-source spectra impossible)")
    elif code == "ABSCOEF":
        for g, (name, _) in zip((obj.pi, obj.pha, obj.rsp), cf.ABSCOEF_EXTENSIONS):
            if g.extname != name:
                rep.add(WARNING, "layout", f"HDU of the {name} grid is named {g.extname}")
            if np.any(np.diff(g.energy) <= 0):
                rep.add(ERROR, "values", f"{g.extname} Energy not increasing")
            for m in ("be", "si", "sio2"):
                a = getattr(g, m)
                if np.any(a <= 0):
                    rep.add(ERROR, "values", f"{g.extname} {m.upper()} has non-positive coefficients")
        # grids match the PI grid (EBOUNDS centres) and the 3000-bin response grid
        pi_c = 0.5165 + 0.033 * np.arange(512)
        if not np.allclose(obj.pi.energy, pi_c, atol=2e-4):
            rep.add(ERROR, "grids", "PI_ENE energies are not the PI bin centres 0.5165 + 0.033 k keV")
        lo, hi = cf.rsp_energy_grid()
        if not np.allclose(obj.rsp.energy, 0.5 * (lo + hi), atol=2e-4):
            rep.add(ERROR, "grids", "RSP_ENE energies are not the 3000-bin grid centres 0.105 + 0.01 k keV")
        pha_c = 0.008125 + 0.01625 * np.arange(1024)
        if not np.allclose(obj.pha.energy, pha_c, atol=2e-4):
            rep.add(ERROR, "grids", "PHA_ENE energies are not 0.008125 + 0.01625 k keV")
    elif code == "EFFAREAPAR":
        if not (np.all(obj.alpha >= 0.5) and np.all(obj.alpha <= 3.0)):
            rep.add(ERROR, "values", f"Alpha outside 0.5-3 ({obj.alpha.min():.3g}-{obj.alpha.max():.3g})")
        for name in ("be_thick", "deadsi_thick", "deadsio2_thick", "detsi_thick"):
            a = getattr(obj, name)
            if np.any(a < 0) or np.any(a > 1.0):
                rep.add(ERROR, "values", f"{name} outside 0-1 cm")
        xb = np.repeat(np.arange(obj.nxbins), obj.nybins)
        yb = np.tile(np.arange(obj.nybins), obj.nxbins)
        if not (np.allclose(obj.detx, obj.xmin + xb * obj.dx, atol=1e-4)
                and np.allclose(obj.dety, obj.ymin + yb * obj.dy, atol=1e-4)):
            rep.add(WARNING, "grids", "DETX/DETY columns differ from XMIN + xbin*DX, YMIN + ybin*DY")
    elif code == "SYSERR":
        if len(obj.syserr) != cf.N_PI:
            rep.add(ERROR, "layout", f"{len(obj.syserr)} rows, expected {cf.N_PI}")
        if not np.array_equal(obj.channel, np.arange(len(obj.channel))):
            rep.add(ERROR, "values", "Channel is not 0, 1, 2, ...")
        if np.any(obj.syserr > 0.5):
            rep.add(ERROR, "values", f"SysErr above 0.5 (max {obj.syserr.max():.3g})")
    elif code in ("RMF", "RSP_OPEN", "RSP_BEFT"):
        _ebounds_values(rep, obj.ebounds)
        if np.any(obj.energ_hi <= obj.energ_lo) or np.any(np.diff(obj.energ_lo) <= 0):
            rep.add(ERROR, "values", "ENERG_LO/ENERG_HI not increasing")
        if np.any(obj.matrix < 0):
            rep.add(ERROR, "values", "negative MATRIX elements")
        sums = obj.matrix.sum(axis=1, dtype=np.float64)
        if code == "RMF":
            if obj.hduclas3.upper() not in ("REDIST", "DETECTOR"):
                rep.add(ERROR, "layout", f"HDUCLAS3 = {obj.hduclas3!r} (REDIST for an RMF)")
            if np.any(sums > 1.0 + 1e-4):
                rep.add(ERROR, "normalisation", f"RMF rows sum above 1 (max {sums.max():.6f})")
            inside = (obj.energ_lo >= float(obj.ebounds.emin) + 1.0) & (obj.energ_hi <= float(obj.ebounds.emax) - 1.0)
            if np.any(inside) and np.any(sums[inside] < 0.5):
                rep.add(ERROR, "normalisation", "RMF rows inside the channel range sum below 0.5")
        else:
            if obj.hduclas3.upper() != "FULL":
                rep.add(ERROR, "layout", f"HDUCLAS3 = {obj.hduclas3!r} (FULL for an RSP)")
            if np.any(sums > 1.0):
                rep.add(ERROR, "values", f"RSP rows sum above 1 cm^2 (max {sums.max():.4g}); XSM area is ~0.004 cm^2")


def _ebounds_values(rep: FileReport, eb: cf.Ebounds) -> None:
    if eb.n != cf.N_PI:
        rep.add(ERROR, "layout", f"EBOUNDS has {eb.n} rows, expected {cf.N_PI}")
    if not np.array_equal(eb.channel, np.arange(eb.n)):
        rep.add(ERROR, "values", "CHANNEL is not 0, 1, 2, ...")
    if not np.allclose(eb.e_max[:-1], eb.e_min[1:], rtol=0, atol=1e-5):
        rep.add(ERROR, "values", "EBOUNDS not contiguous (E_MAX[k] != E_MIN[k+1])")


def _fitsverify(rep: FileReport, path: Path, run: bool) -> None:
    if not run:
        return
    exe = shutil.which("fitsverify")
    if exe is None:
        rep.add(WARNING, "fits", "fitsverify not installed: standard FITS checks skipped")
        return
    out = subprocess.run([exe, "-q", "-e", str(path)], capture_output=True, text=True)
    text = (out.stdout + out.stderr).strip()
    if "verification OK" not in text:
        rep.add(ERROR, "fits", f"fitsverify: {text.splitlines()[-1] if text else 'failed'}")


def known_hashes(caldb: Path | None) -> dict[str, str]:
    """sha256 -> file name of every calibration file in a CALDB root (manifests, else the files)."""
    if caldb is None:
        return {}
    from xsm.caldb_manager.layout import list_versions, read_manifest

    root = Path(caldb)
    out: dict[str, str] = {}
    for v in list_versions(root):
        for entry in read_manifest(root, v).get("files", []):
            out.setdefault(entry["sha256"], entry["file"])
    if not out:
        for p in root.iterdir() if root.is_dir() else ():
            if p.is_file() and p.suffix in (".fits", ".rmf", ".rsp"):
                out.setdefault(file_sha256(p), p.name)
    return out


def certify_file(path: str | Path, *, code: str | None = None, caldb: Path | None = None,
                 hashes: Mapping[str, str] | None = None, fitsverify: bool = True) -> FileReport:
    """Certify one calibration file. Never raises for a bad file: read the report."""
    path = Path(path)
    rep = FileReport(path=path, code=code.upper() if code else None)
    if not path.is_file():
        rep.add(ERROR, "open", "no such file")
        return rep
    rep.size = path.stat().st_size
    rep.sha256 = file_sha256(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(path, checksum=True, memmap=False) as hdul:
                _ = [h.header for h in hdul]
                detected = detect_code(hdul)
                if rep.code is None:
                    rep.code = detected
                if rep.code is None:
                    rep.add(ERROR, "type", "cannot tell the calibration type (no CCNM0001, no known extension)")
                    return rep
                if detected and detected != rep.code and rep.code not in ("RSP_OPEN", "RSP_BEFT"):
                    rep.add(ERROR, "type", f"file is a {detected} file, not {rep.code}")
                _check_keywords(rep, hdul, rep.code)
                if not any("CHECKSUM" in h.header for h in hdul):
                    rep.add(WARNING, "fits", "no CHECKSUM/DATASUM keywords")
        for w in caught:
            msg = str(w.message)
            if "checksum" in msg.lower() or "datasum" in msg.lower():
                rep.add(ERROR, "fits", msg.splitlines()[0])
    except (OSError, ValueError, TypeError, IndexError) as exc:
        rep.add(ERROR, "open", f"not a readable FITS file ({str(exc).splitlines()[0]})")
        return rep
    _check_values(rep, path, rep.code)
    _fitsverify(rep, path, fitsverify)
    hashes = known_hashes(caldb) if hashes is None else hashes
    other = hashes.get(rep.sha256)
    inside = caldb is not None and (Path(caldb) / path.name).resolve() == path.resolve()
    if other is not None and other != path.name:
        rep.add(ERROR, "duplicate", f"byte-identical to {other} already in the CALDB")
    elif other is not None and not inside:
        rep.add(ERROR, "duplicate", f"{other} is already published (same content)")
    return rep


def certify_release(caldb: str | Path, version: str | None = None, *, fitsverify: bool = True) -> ReleaseReport:
    """Certify an index and the files it names. Missing files are warnings (not fatal)."""
    from xsm.caldb_manager.layout import caldb_root_of, index_path

    ipath = index_path(Path(caldb), version)
    index = read_index(ipath)
    root = caldb_root_of(ipath)
    rel = ReleaseReport(index=ipath, version=version or index.caldbver)
    _check_index(rel, index)
    seen: dict[str, FileReport] = {}
    for row in index.rows:
        p = root / row.relpath()
        if not p.is_file():
            rel.missing.append(row.file)
            rel.findings.append(Finding(WARNING, "missing", f"{row.cnam} {row.file} is listed but not present"))
            continue
        if row.file in seen:
            rep = seen[row.file]
        else:
            rep = certify_file(p, code=row.cnam, hashes={}, fitsverify=fitsverify)
            seen[row.file] = rep
            rel.files.append(rep)
        _check_row(rel, rep, row, p)
    dups = defaultdict(list)
    for r in rel.files:
        if r.sha256:
            dups[r.sha256].append(r.path.name)
    for names in dups.values():
        if len(names) > 1:
            rel.findings.append(Finding(ERROR, "duplicate", f"byte-identical files: {', '.join(names)}"))
    return rel


def _check_index(rel: ReleaseReport, index: CalIndex) -> None:
    by_key = defaultdict(list)
    for r in index.rows:
        if r.good:
            by_key[(r.cnam.upper(), r.ref_time, r.filter.upper(), r.detnam.upper())].append(r.file)
    for (code, t, *_), files in by_key.items():
        if len(files) > 1:
            rel.findings.append(Finding(ERROR, "tie", f"{len(files)} good {code} rows share REF_TIME {t:.5f}: "
                                                      f"{', '.join(files)} (set CAL_QUAL = 5 on superseded rows)"))
    if not index.caldbver:
        rel.findings.append(Finding(WARNING, "index", "no CALDBVER keyword"))


def _check_row(rel: ReleaseReport, rep: FileReport, row: IndexRow, path: Path) -> None:
    try:
        with fits.open(path, memmap=False) as hdul:
            exts = [h for h in hdul[1:] if h.name in EXTENSIONS.get(row.cnam.upper(), ())] or list(hdul[1:2])
            h = exts[0].header if exts else fits.Header()
    except (OSError, ValueError):
        return
    vsd, vst = str(h.get("CVSD0001", "")).strip(), str(h.get("CVST0001", "00:00:00")).strip()
    try:
        mjd = vsd_vst_to_mjd(vsd, vst)
    except ValueError:
        return
    if abs(mjd - row.ref_time) > 1e-6:
        rel.findings.append(Finding(WARNING, "validity",
                                    f"{row.file}: index REF_TIME {row.ref_time:.5f} but CVSD0001/CVST0001 "
                                    f"{vsd} {vst} = MJD {mjd:.5f} (the index is authoritative)"))
    cbds = tuple(str(h.get(f"CBD{k}0001", "NONE")).strip() or "NONE" for k in range(1, 10))
    if any(c != "NONE" for c in row.cbd) and tuple(row.cbd) != cbds:
        rel.findings.append(Finding(WARNING, "boundaries",
                                    f"{row.file}: index CAL_CBD differs from the file's CBDn0001 keywords"))


def certify_many(paths: Iterable[str | Path], *, caldb: Path | None = None, fitsverify: bool = True
                 ) -> list[FileReport]:
    hashes = known_hashes(caldb)
    return [certify_file(p, caldb=caldb, hashes=hashes, fitsverify=fitsverify) for p in paths]


def require_certified(rep: FileReport) -> None:
    """Raise :class:`~xsm.products.errors.CertificationError` with the reasons of a failing report."""
    from xsm.products.errors import CertificationError

    if not rep.ok:
        raise CertificationError(f"{rep.path}: refused, fails certification: {rep.reasons()}")


__all__ = ["Finding", "FileReport", "ReleaseReport", "certify_file", "certify_release", "certify_many",
           "require_certified", "CALDB_KEYWORDS"]
