"""``xsm addspec --where``: add the type-II spectrum rows a catalog query selects.

The ``spectra`` table indexes every row (SPEC_NUM) of every catalogued type-II ``.pha``. The
condition selects rows (read-only, one SELECT); each selected row becomes a type-I input
(COUNTS, STAT_ERR, SYS_ERR, EXPOSURE, TSTART/TSTOP of the row) and
:func:`xsm.products.addspec.add_spectra` adds them (``addspec.md``) with their ARF:

* spectra made with an ARF (``ANCRFILE`` a type-II ARF): the ARF row of each spectrum row,
  combined with exposure weights;
* area-corrected spectra (the archive recipe, ``products.md`` §9: RESPFILE is the RSP with the
  on-axis area, no ARF): the counts are what an on-axis detector would record, so their ARF is
  the on-axis area ``A0(E)`` (``effarea.md`` §4) from the CALDB selected at the first row, and
  the response becomes the RMF (RMF x A0 = the RSP, so the pair is the same response). The
  statistical errors of area-corrected rows add in quadrature (``addspec.md``, Q12).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np

from xsm.archive.catalog import connect_readonly
from xsm.products.errors import ParameterError
from xsm.products.provenance import InputDigests, Mode

log = logging.getLogger(__name__)



def select_rows(root, where: str) -> list[tuple[str, int]]:
    """(path, spec_num) of the ``spectra`` rows matching ``where`` (read-only, SELECT only)."""
    sql = f"SELECT path, spec_num FROM spectra WHERE ({where}) ORDER BY tstart, path, spec_num"
    try:
        st = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ParameterError(f"--where {where!r}: {str(exc).splitlines()[0]}") from None
    if len(st) != 1 or str(st[0].type).rsplit(".", 1)[-1] != "SELECT":
        raise ParameterError(f"--where {where!r}: one condition of a SELECT only")
    con = connect_readonly(root)
    try:
        return [(r[0], int(r[1])) for r in con.execute(sql).fetchall()]
    except duckdb.Error as exc:
        raise ParameterError(f"--where {where!r}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _onaxis_arf(caldb, met: float, mode: Mode) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(ENERG_LO, ENERG_HI, A0, RMF name) from the CALDB selected at ``met``."""
    from xsm.caldb_manager.context import calibration_context
    from xsm.products import effarea
    from xsm.products.arf import arf_energy_grid

    ctx = calibration_context(met, caldb, rule=mode)
    a0 = effarea.onaxis_area(effarea.area_params(ctx.path("EFFAREAPAR")),
                             effarea.abs_coef(ctx.path("ABSCOEF"), "RSP")).astype(np.float32)
    lo, hi = arf_energy_grid(mode)
    rmf = ctx.files.get("RMF") or ctx.missing.get("RMF")
    return lo, hi, a0, Path(rmf).name if rmf else ""


def inputs_from_rows(root, rows: list[tuple[str, int]], *, caldb=None, mode: Mode = Mode.DEFAULT):
    """Type-I :class:`~xsm.products.addspec.InputSpectrum` of each selected row, and the RMF name
    to use (``None`` when the rows carry their own ARFs)."""
    from astropy.io import fits

    from xsm.products.addspec import InputSpectrum

    by_file: dict[str, list[int]] = defaultdict(list)
    for p, n in rows:
        by_file[p].append(n)
    inputs: list[InputSpectrum] = []
    area_corrected = None
    root = Path(root)
    for rel, nums in by_file.items():
        path = Path(rel) if Path(rel).is_absolute() else root / rel
        with fits.open(path, memmap=True) as h:
            ext = h[1]
            hd, d = ext.header, ext.data
            idx = np.searchsorted(np.asarray(d["SPEC_NUM"]), nums)
            resp = str(hd.get("RESPFILE", ""))
            ancr = str(hd.get("ANCRFILE", "")).strip()
            has_arf = bool(ancr) and ancr.lower() != "none"
            arows = None
            if has_arf:
                with fits.open(path.parent / Path(ancr).name, memmap=True) as ah:
                    arows = np.asarray(ah["SPECRESP"].data["SPECRESP"], np.float32)
                    elo = np.asarray(ah["SPECRESP"].data["ENERG_LO"], np.float32)
                    ehi = np.asarray(ah["SPECRESP"].data["ENERG_HI"], np.float32)
                    if elo.ndim == 2:
                        elo, ehi = elo[0], ehi[0]
            if area_corrected is None:
                area_corrected = not has_arf
            elif area_corrected == has_arf:
                raise ParameterError("--where selects both area-corrected and ARF-based spectra: "
                                     "they cannot be added")
            for i, n in zip(idx, nums):
                s = InputSpectrum(
                    name=f"{path.name}[{n}]", counts=np.asarray(d["COUNTS"][i], np.float64),
                    stat_err=np.asarray(d["STAT_ERR"][i], np.float32),
                    sys_err=np.asarray(d["SYS_ERR"][i], np.float32) if "SYS_ERR" in d.columns.names
                    else np.zeros(d["COUNTS"].shape[1], np.float32),
                    chantype=str(hd.get("CHANTYPE", "PI")).strip(), exposure=float(d["EXPOSURE"][i]),
                    tstart=float(d["TSTART"][i]), tstop=float(d["TSTOP"][i]),
                    date_obs=str(hd.get("DATE-OBS", "")), date_end=str(hd.get("DATE-END", "")),
                    respfile=resp, ancrfile=ancr if has_arf else "",
                    caldbver=str(hd.get("CALDBVER", "")))
                if has_arf:
                    s.arf = arows[i] if arows.ndim == 2 else arows
                    s.arf_energ_lo, s.arf_energ_hi = elo, ehi
                inputs.append(s)
    rmf = None
    if inputs and area_corrected:
        lo, hi, a0, rmf = _onaxis_arf(caldb, min(s.tstart for s in inputs), mode)
        for s in inputs:
            s.arf, s.arf_energ_lo, s.arf_energ_hi = a0, lo, hi
    return inputs, rmf


def addspec_where(root, where: str, out: str | Path, *, caldb=None, mode: Mode = Mode.DEFAULT,
                  overwrite: bool = False) -> dict:
    """Add the type-II rows selected by ``where`` into ``out`` (type-I ``.pha``) + its ARF.

    Returns a summary: ``pha``, ``arf``, ``n_spectra``, ``n_files``, ``exposure``, ``counts``,
    ``respfile``, ``rows`` (path, spec_num).
    """
    from xsm.products.addspec import AddSpecParams, add_spectra, write_added

    out = Path(out)
    if out.suffix.lower() != ".pha":
        raise ParameterError(f"--out {out}: the added spectrum must be a .pha file")
    if out.exists() and not overwrite:
        raise ParameterError(f"{out}: exists already (use --clobber)")
    rows = select_rows(root, where)
    if not rows:
        raise ParameterError(f"--where {where!r}: no spectrum row selected")
    inputs, rmf = inputs_from_rows(root, rows, caldb=caldb, mode=mode)
    params = AddSpecParams(listfile="-", specfile=out.name, arffile="default", addarf=True,
                           clobber=overwrite, mode=mode)
    added = replace(add_spectra(inputs, params),
                    input_md5=InputDigests()(Path(root) / p for p in dict.fromkeys(p for p, _ in rows)))
    if rmf is not None:  # area-corrected rows: response = RMF x on-axis area (the ARF)
        added.respfile = rmf or added.respfile
    pha, arf = write_added(added, out, overwrite=overwrite)
    return {"pha": str(pha), "arf": str(arf) if arf else None, "n_spectra": len(inputs),
            "n_files": len({p for p, _ in rows}), "exposure": float(added.exposure),
            "counts": float(np.sum(added.counts)), "respfile": added.respfile,
            "area_corrected": rmf is not None, "rows": [list(r) for r in rows]}
