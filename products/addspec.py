"""Adding type-I spectra across days (``spec/addspec.md``; reference task ``xsmaddspec``).

Functional core
---------------
``add_spectra(inputs, params, arfs=None) -> AddedSpectrum``
    Sum of :class:`InputSpectrum` objects: COUNTS summed, STAT_ERR = sqrt(ΣC) (default mode:
    quadrature sum of the inputs' STAT_ERR for area-corrected inputs, Q12), SYS_ERR combined
    linearly (count-weighted mean fraction), EXPOSURE summed, times from the extreme inputs, and
    the ARFs combined with exposure weights (or counts weights, default mode option).

Edges: :func:`read_input_spectrum` (type-I PI/PHA spectrum and its ARF, project, golden or
official files), :func:`read_list_file`, :func:`write_added` (spectrum + ARF, atomic).

Checks (``addspec.md`` §2): channels and CHANTYPE must agree (both modes, clear error); default
mode also refuses type-II inputs, EXPOSURE <= 0, differing RESPFILE, mixed area-corrected and
ARF-based inputs and ARF grids that differ; it warns about overlapping times and differing
CALDBVER. Compat (``Mode.XSMDAS_1_2``) sums in float32 in list order and writes the current
CALDBVER (Q22); Q15 (ARF path) is fixed in both modes (the reference only fails there).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.products import fitsio
from xsm.products.arf import N_ARF, arf_energy_grid, read_arf
from xsm.products.errors import InputFormatError, ParameterError, warn_user
from xsm.products.provenance import InputDigests, Mode, Provenance

log = logging.getLogger("xsm.addspec")


#: Band (keV) of the counts used as ARF weights with ``arf_weighting = "counts"``.
COUNTS_WEIGHT_BAND = (1.5, 12.0)
#: Nominal PI grid (keV) for the counts-weighting band: E_lo(k) = 0.5 + 0.033 k.
PI_EMIN, PI_DELTA = 0.5, 0.033


@dataclass(frozen=True)
class AddSpecParams:
    """Parameters of ``xsmaddspec`` (``addspec.md`` §1) and the default-mode options."""

    listfile: str = "-"
    specfile: str = "added.pha"
    arffile: str = "default"
    addarf: bool = True
    clobber: bool = True
    mode: Mode = Mode.DEFAULT
    arf_weighting: str = "exposure"
    counts_band: tuple = COUNTS_WEIGHT_BAND
    caldbver: str | None = None   # compat: the current CALDB version (Q22)

    @property
    def arf_name(self) -> str:
        if self.arffile in ("default", "", None):
            return self.specfile[:-4] + ".arf"
        return self.arffile


@dataclass(kw_only=True)
class TypeISpectrum:
    """What an input and the sum share: one row of counts and errors with its keywords."""

    counts: np.ndarray
    stat_err: np.ndarray
    sys_err: np.ndarray
    chantype: str
    exposure: float          # s
    tstart: float            # MET s
    tstop: float             # MET s
    date_obs: str = ""
    date_end: str = ""
    respfile: str = ""
    ancrfile: str = ""
    caldbver: str = ""
    arf: np.ndarray | None = None          # SPECRESP (3000,), cm2


@dataclass(kw_only=True)
class InputSpectrum(TypeISpectrum):
    """One type-I input spectrum (``addspec.md`` §2)."""

    name: str
    arf_energ_lo: np.ndarray | None = None
    arf_energ_hi: np.ndarray | None = None
    type2: bool = False

    @property
    def nchan(self) -> int:
        return int(self.counts.size)

    @property
    def area_corrected(self) -> bool:
        """RESPFILE is an RSP (response with area) and no ARF: an area-corrected spectrum."""
        r = Path(self.respfile.strip()).name.lower()
        return r.endswith(".rsp") or ("rspwitharea" in r and not self.ancrfile.strip())


@dataclass(kw_only=True)
class AddedSpectrum(TypeISpectrum):
    """The sum of the inputs, with the ARF weights and the notes of the addition."""

    params: AddSpecParams
    inputs: list
    arf_weights: np.ndarray | None = None
    arf_spread: float | None = None
    notes: list = field(default_factory=list)
    #: input file basename -> md5, set by the caller that read the inputs (provenance block)
    input_md5: dict = field(default_factory=dict)

    @property
    def mode(self) -> Mode:
        return self.params.mode


# --------------------------------------------------------------------------- reading
def read_list_file(path: str | Path) -> list[Path]:
    """Input spectra, one name per line; relative names are taken relative to the list file."""
    path = Path(path)
    lines = fitsio.read_text_input(path, what="list file").splitlines()
    names = [ln.split("#", 1)[0].strip() for ln in lines]
    names = [n for n in names if n]
    if not names:
        raise InputFormatError(f"{path}: the list of spectra is empty")
    out = []
    for n in names:
        p = Path(n)
        if not p.is_absolute():
            cand = path.parent / p
            p = cand if cand.exists() or not p.exists() else p
        out.append(p)
    return out


def _arf_path(spec_path: Path, ancrfile: str) -> Path:
    """Q15 fixed: relative names against the spectrum's directory, absolute names as they are."""
    a = Path(ancrfile.strip())
    return a if a.is_absolute() else spec_path.parent / a


def read_input_spectrum(path: str | Path, *, with_arf: bool = True) -> InputSpectrum:
    """Read a spectrum (first extension) and, with ``with_arf``, its ANCRFILE (read-only)."""
    path = Path(path)
    with fitsio.open_fits(path, what="spectrum", memmap=False) as hdul:
        if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            raise InputFormatError(f"{path}: no spectrum extension")
        ext = hdul[1]
        fitsio.require_columns(ext, ["COUNTS"], path)
        h = ext.header
        d = ext.data
        counts = np.array(d["COUNTS"])
        type2 = counts.ndim == 2
        names = [c.upper() for c in ext.columns.names]

        def col(name, default):
            if name in names:
                return np.array(d[name], dtype=np.float32)
            return np.full(counts.shape, default, dtype=np.float32)

        spec = InputSpectrum(
            name=path.name, counts=counts, stat_err=col("STAT_ERR", np.nan),
            sys_err=col("SYS_ERR", 0.0), chantype=str(h.get("CHANTYPE", "")).strip(),
            exposure=float(h.get("EXPOSURE", np.nan)) if not type2 else float(np.sum(d["EXPOSURE"])),
            tstart=float(h.get("TSTART", np.nan)), tstop=float(h.get("TSTOP", np.nan)),
            date_obs=str(h.get("DATE-OBS", "")), date_end=str(h.get("DATE-END", "")),
            respfile=str(h.get("RESPFILE", "")), ancrfile=str(h.get("ANCRFILE", "")),
            caldbver=str(h.get("CALDBVER", "")), type2=type2)
    if "STAT_ERR" not in names:
        spec.stat_err = np.sqrt(np.abs(spec.counts.astype(np.float64))).astype(np.float32)
    if with_arf and spec.ancrfile.strip() and spec.ancrfile.strip().lower() != "none" and not type2:
        apath = _arf_path(path, spec.ancrfile)
        arf = read_arf(apath)   # read-only (Q15)
        spec.arf = arf.specresp.reshape(-1)
        spec.arf_energ_lo, spec.arf_energ_hi = arf.energ_lo.reshape(-1), arf.energ_hi.reshape(-1)
    return spec


# --------------------------------------------------------------------------- checks
def check_inputs(inputs: list[InputSpectrum], params: AddSpecParams) -> list[str]:
    """Raise on fatal inconsistencies (``addspec.md`` §2); return the warnings."""
    if not inputs:
        raise ParameterError("addspec: no input spectra")
    first = inputs[0]
    warns: list[str] = []
    default = params.mode == Mode.DEFAULT
    for s in inputs:
        if default and s.type2:
            raise InputFormatError(f"{s.name}: type-II spectrum; extract a type-I row first")
        if s.nchan != first.nchan:
            raise InputFormatError(f"{s.name}: {s.nchan} channels, but {first.name} has "
                                   f"{first.nchan}: spectra with different channels cannot be added")
        if s.chantype.upper() != first.chantype.upper():
            raise InputFormatError(f"{s.name}: CHANTYPE {s.chantype!r} differs from {first.name}'s "
                                   f"{first.chantype!r}: PI and PHA spectra cannot be added")
        if default and not (s.exposure > 0):
            raise InputFormatError(f"{s.name}: EXPOSURE = {s.exposure} (must be > 0)")
        if default and Path(s.respfile.strip()).name != Path(first.respfile.strip()).name:
            raise InputFormatError(f"{s.name}: RESPFILE {Path(s.respfile).name!r} differs from "
                                   f"{first.name}'s {Path(first.respfile).name!r}")
        if default and s.area_corrected != first.area_corrected:
            raise InputFormatError(f"{s.name}: mixes area-corrected and ARF-based spectra "
                                   f"({first.name} is {'' if first.area_corrected else 'not '}area-corrected)")
        if params.addarf:
            if s.arf is None:
                raise InputFormatError(f"{s.name}: addarf = yes but no ARF (ANCRFILE {s.ancrfile!r})")
            if s.arf.size != first.arf.size:
                raise InputFormatError(f"{s.name}: ARF has {s.arf.size} rows, {first.name}'s has "
                                       f"{first.arf.size}")
            if default and not (np.array_equal(s.arf_energ_lo, first.arf_energ_lo)
                                and np.array_equal(s.arf_energ_hi, first.arf_energ_hi)):
                raise InputFormatError(f"{s.name}: ARF energy grid differs from {first.name}'s")
    if default:
        vers = {s.caldbver for s in inputs}
        if len(vers) > 1:
            warns.append(f"inputs were made with different CALDB versions: {', '.join(sorted(vers))}")
        order = sorted(inputs, key=lambda s: s.tstart)
        for a, b in zip(order[:-1], order[1:]):
            if b.tstart < a.tstop:
                warns.append(f"{a.name} and {b.name} overlap in time: the same data may be counted twice")
    return warns


# --------------------------------------------------------------------------- combination
def _counts_band_mask(nchan: int, band) -> np.ndarray:
    lo = PI_EMIN + PI_DELTA * np.arange(nchan)
    return (lo >= band[0]) & (lo + PI_DELTA <= band[1])


def add_spectra(inputs: list[InputSpectrum], params: AddSpecParams) -> AddedSpectrum:
    """Sum type-I spectra (``addspec.md`` §3) and combine their ARFs (§4)."""
    warns = check_inputs(inputs, params)
    for w in warns:
        warn_user(w)
    mode = params.mode
    compat = mode == Mode.XSMDAS_1_2
    pi = inputs[0].chantype.upper() == "PI"
    n = inputs[0].nchan
    if compat:   # Q11: float32 sums in list order
        csum = np.zeros(n, np.float32)
        ssum = np.zeros(n, np.float32)
        for s in inputs:
            c32 = s.counts.astype(np.float32)
            # the product C*f is a float32 value (verified on the golden cases)
            ssum = (ssum + c32 * s.sys_err.astype(np.float32)).astype(np.float32)
            csum = (csum.astype(np.float64) + c32.astype(np.float64)).astype(np.float32)
        counts = csum
        stat = np.sqrt(csum.astype(np.float64)).astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            sys = np.where(csum > 0, ssum.astype(np.float64) / csum.astype(np.float64), 0.0)
        exposure = float(np.sum(np.array([s.exposure for s in inputs], np.float64)))
    else:
        allint = all(np.issubdtype(s.counts.dtype, np.integer)
                     or np.all(s.counts == np.round(s.counts)) for s in inputs)
        c64 = np.zeros(n, np.float64)
        s64 = np.zeros(n, np.float64)
        v64 = np.zeros(n, np.float64)
        for s in inputs:
            c = s.counts.astype(np.float64)
            c64 += c
            s64 += c * s.sys_err.astype(np.float64)
            v64 += s.stat_err.astype(np.float64) ** 2
        counts = c64.astype(np.int64) if allint and not inputs[0].area_corrected else c64
        # Q12: area-corrected inputs propagate their errors in quadrature
        stat = np.sqrt(v64) if inputs[0].area_corrected else np.sqrt(np.clip(c64, 0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            sys = np.where(c64 > 0, s64 / c64, 0.0)
        exposure = float(sum(s.exposure for s in inputs))
    if not pi:
        sys = np.zeros(n)
    i0 = int(np.argmin([s.tstart for s in inputs]))
    i1 = int(np.argmax([s.tstop for s in inputs]))
    arf = weights = spread = None
    notes: list[str] = list(warns)
    if params.addarf:
        T = np.array([s.exposure for s in inputs], np.float64)
        if not compat and params.arf_weighting == "counts":
            m = _counts_band_mask(n, params.counts_band)
            weights = np.array([float(np.sum(s.counts.astype(np.float64)[m])) for s in inputs])
        elif params.arf_weighting in ("exposure", "counts"):
            weights = T
        else:
            raise ParameterError(f"arf_weighting {params.arf_weighting!r}: use 'exposure' or 'counts'")
        if compat:
            acc = np.zeros(N_ARF, np.float32)
            for s, w in zip(inputs, weights):
                acc = (acc.astype(np.float64) + np.float64(w) * s.arf.astype(np.float64)).astype(np.float32)
            arf = (acc.astype(np.float64) / np.float32(np.sum(weights, dtype=np.float64))).astype(np.float32)
        else:
            A = np.stack([s.arf.astype(np.float64) for s in inputs])
            arf = (weights[:, None] * A).sum(0) / weights.sum()
            sig = A.max(0) > 1e-3 * A.max()
            spread = float(np.max((A.max(0) - A.min(0))[sig] / arf[sig])) if sig.any() else 0.0
            notes.append(f"maximum relative spread of the input ARFs: {spread:.4f}")
            log.info("addspec: maximum relative ARF spread %.4f", spread)
    if compat:
        caldbver = params.caldbver or inputs[0].caldbver   # Q22: the current CALDB version
    else:
        vers = {s.caldbver for s in inputs}
        caldbver = vers.pop() if len(vers) == 1 else "MIXED"
    return AddedSpectrum(
        counts=counts, stat_err=np.asarray(stat, np.float64), sys_err=np.asarray(sys, np.float64),
        chantype=inputs[0].chantype, exposure=exposure,
        tstart=float(inputs[i0].tstart), tstop=float(inputs[i1].tstop),
        date_obs=inputs[i0].date_obs, date_end=inputs[i1].date_end,
        respfile=inputs[0].respfile if params.addarf else "",
        ancrfile=Path(params.arf_name).name if params.addarf else "",
        caldbver=caldbver, params=params, inputs=[s.name for s in inputs], arf=arf,
        arf_weights=weights, arf_spread=spread, notes=notes)


# --------------------------------------------------------------------------- writing
def history_lines(added: AddedSpectrum) -> list[str]:
    p = added.params
    yn = fitsio.format_history_value
    lines = fitsio.history_block("XSMADDSPEC", [
        f"listfile = {Path(p.listfile).name}", f"specfile = {Path(p.specfile).name}",
        f"addarf = {yn(p.addarf)}", f"arffile = {Path(p.arf_name).name}", f"clobber = {yn(p.clobber)}"])
    lines += ["*******  Input spectrum files *******", *added.inputs, "*" * 38]
    if p.mode == Mode.DEFAULT and p.addarf:
        lines.append(f"arf_weighting = {p.arf_weighting}")
    lines += [f"note: {n}" for n in added.notes if p.mode == Mode.DEFAULT]
    return lines


def _provenance(added: AddedSpectrum) -> Provenance:
    return Provenance(step="addspec", mode=added.mode, caldb_version=added.caldbver or None,
                      parameters={k: v for k, v in added.params.__dict__.items() if k != "mode"},
                      inputs=tuple(added.inputs)).with_input_md5(added.input_md5)


def added_hdulist(added: AddedSpectrum, filename: str, *, date: str | None = None) -> fits.HDUList:
    """The added type-I spectrum (``products.md`` §2 layout)."""
    mode = added.mode
    compat = mode == Mode.XSMDAS_1_2
    creator = "xsmgenspec" if compat else "xsm.addspec"   # the reference writes its spectrum template
    date = date or fitsio.date_keyword(mode)
    prov = _provenance(added)
    n = added.counts.size
    if np.issubdtype(added.counts.dtype, np.integer):
        big = added.counts.size and int(added.counts.max()) > np.iinfo(np.int32).max
        cform, carr = ("K", added.counts) if big else ("J", added.counts.astype(np.int32))
    else:
        cform, carr = "E", added.counts.astype(np.float32)
    prim = fitsio.primary_hdu(filename, creator, "Type-I PHA file", date=date, mode=mode)
    cols = [fits.Column("CHANNEL", "1J", array=np.arange(n, dtype=np.int32)),
            fits.Column("COUNTS", f"1{cform}", array=carr, unit=None if compat else "count"),
            fits.Column("STAT_ERR", "1E", array=added.stat_err.astype(np.float32)),
            fits.Column("SYS_ERR", "1E", array=added.sys_err.astype(np.float32))]
    ext = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    h = ext.header
    cards = fitsio.time_keywords(added.tstart, added.tstop, added.date_obs, added.date_end, telapse=False,
                                 mode=mode)
    cards += [(k, v) for k, v in fitsio.common_keywords(filename, creator, date=date, mode=mode)
              if k not in ("FILENAME", "DATE", "CONTENT")]
    cards += fitsio.PHA_CLASS_CARDS
    if not compat:
        cards.append(("HDUCLAS4", "TYPE:I"))
    cards += [("TLMIN1", 0), ("TLMAX1", n - 1), ("DETCHANS", n), ("AREASCAL", 1.0),
              ("BACKSCAL", 1.0), ("CORRSCAL", 1.0), ("BACKFILE", "none"),
              ("EXPOSURE", float(added.exposure)),
              ("RESPFILE", added.respfile if compat else Path(added.respfile.strip()).name),
              ("ANCRFILE", added.ancrfile), ("CHANTYPE", added.chantype), ("POISSERR", False),
              ("CALDBVER", added.caldbver), ("EXTVER", 1), ("FILENAME", filename), ("DATE", date),
              ("TELAPSE", added.tstop - added.tstart)]
    if not compat:
        cards += [("CORRFILE", "NONE")]
        if added.params.addarf:
            cards.append(("ARFWEIGH", added.params.arf_weighting.upper()))
    for k, v in cards:
        h[k] = v
    fitsio.set_cards(h, fitsio.provenance_keywords(prov))
    fitsio.add_history(h, history_lines(added))
    fitsio.add_history(h, fitsio.provenance_history(prov))
    return fits.HDUList([prim, ext])


def added_arf_hdulist(added: AddedSpectrum, filename: str, *, date: str | None = None) -> fits.HDUList:
    """The combined ARF (type I, ``products.md`` §4)."""
    mode = added.mode
    compat = mode == Mode.XSMDAS_1_2
    creator = "xsmgenspec" if compat else "xsm.addspec"
    date = date or fitsio.date_keyword(mode)
    prov = _provenance(added)
    lo, hi = arf_energy_grid(mode)   # recomputed (addspec.md §4, spectrum.md §11)
    prim = fitsio.primary_hdu(filename, creator, "Ancillary Response File", date=date, mode=mode)
    cols = [fits.Column("ENERG_LO", "1E", array=lo, unit=None if compat else "keV"),
            fits.Column("ENERG_HI", "1E", array=hi, unit=None if compat else "keV"),
            fits.Column("SPECRESP", "1E", array=added.arf.astype(np.float32),
                        unit=None if compat else "cm**2")]
    ext = fits.BinTableHDU.from_columns(cols, name="SPECRESP")
    h = ext.header
    cards = fitsio.time_keywords(added.tstart, added.tstop, added.date_obs, added.date_end, telapse=False,
                                 mode=mode)
    cards += [(k, v) for k, v in fitsio.common_keywords(filename, creator, date=date, mode=mode)
              if k in ("MISSION", "TELESCOP", "INSTRUME", "ORIGIN", "CREATOR")]
    cards.append(("CONTENT", "ARF"))
    if not compat:
        cards.append(("HDUCLASS", "OGIP"))
    cards += [("LONGSTRN", "OGIP 1.0"), ("HDUCLAS1", "RESPONSE"), ("HDUCLAS2", "SPECRESP"),
              ("HDUVERS", "1.1.0"), ("XSMDASVE", fitsio.XSMDASVE), ("EXTVER", 1),
              ("FILENAME", filename), ("DATE", date), ("CALDBVER", added.caldbver)]
    if not compat:
        cards.append(("ARFWEIGH", added.params.arf_weighting.upper()))
    for k, v in cards:
        h[k] = v
    from xsm.products.provenance import SOFTWARE_VERSION

    h["XSMSWVER"] = SOFTWARE_VERSION
    fitsio.set_cards(h, fitsio.provenance_keywords(prov))
    fitsio.add_history(h, history_lines(added))
    fitsio.add_history(h, fitsio.provenance_history(prov))
    return fits.HDUList([prim, ext])


def write_added(added: AddedSpectrum, specfile: str | Path, arffile: str | Path | None = None, *,
                overwrite: bool = True) -> tuple[Path, Path | None]:
    """Write the added spectrum and (with ``addarf``) its ARF, each atomically.

    ``arffile`` defaults to the parameters' ARF name, placed beside the spectrum when relative.
    """
    specfile = Path(specfile)
    p = added.params
    if Path(p.specfile).name != specfile.name:
        added.params = p = replace(p, specfile=specfile.name)
    arf_out = None
    checksum = added.mode == Mode.DEFAULT
    if p.addarf:
        arf_out = Path(arffile) if arffile is not None else Path(p.arf_name)
        if not arf_out.is_absolute() and arffile is None:
            arf_out = specfile.parent / arf_out.name
        added.ancrfile = arf_out.name
        if Path(p.arf_name).name != arf_out.name:
            added.params = p = replace(p, arffile=arf_out.name)
    spec_hdul = added_hdulist(added, specfile.name)
    arf_hdul = added_arf_hdulist(added, arf_out.name) if arf_out is not None else None
    if specfile.exists() and not overwrite:
        raise ParameterError(f"{specfile}: exists already (clobber = no)")
    if arf_hdul is not None:
        fitsio.write_fits_atomic(arf_hdul, arf_out, overwrite=overwrite, checksum=checksum)
    fitsio.write_fits_atomic(spec_hdul, specfile, overwrite=overwrite, checksum=checksum)
    return specfile, arf_out


def addspec(listfile: str | Path | list, specfile: str | Path, *, arffile: str | Path | None = None,
            addarf: bool = True, mode: Mode = Mode.DEFAULT, arf_weighting: str = "exposure",
            caldbver: str | None = None, overwrite: bool = True) -> tuple[AddedSpectrum, Path, Path | None]:
    """The whole task: read the list, add, write (the CLI calls this)."""
    if isinstance(listfile, (list, tuple)):
        paths, lname = [Path(x) for x in listfile], "-"
    else:
        paths, lname = read_list_file(listfile), Path(listfile).name
    specfile = Path(specfile)
    params = AddSpecParams(listfile=lname, specfile=specfile.name,
                           arffile="default" if arffile is None else Path(arffile).name,
                           addarf=addarf, clobber=overwrite, mode=mode, arf_weighting=arf_weighting,
                           caldbver=caldbver)
    inputs = [read_input_spectrum(p, with_arf=addarf) for p in paths]
    added = replace(add_spectra(inputs, params), input_md5=InputDigests()(paths))
    s, a = write_added(added, specfile, arffile, overwrite=overwrite)
    return added, s, a
