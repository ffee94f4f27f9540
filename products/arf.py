"""Ancillary response files (``spectrum.md`` §11, ``products.md`` §4): type I and type II.

Grid: 3000 bins, ``ENERG_LO = 0.1 + 0.01 k`` keV, ``ENERG_HI = ENERG_LO + 0.01`` (up to 30.1 keV);
absorption coefficients from ABSCOEF ``RSP_ENE``. ``SPECRESP`` of a spectrum row = the mean
absolute effective area (``effarea.md`` §2) over the frames of that row.

* :func:`arf_energy_grid` -- compat: float32 ``0.1f + float32(k)*0.01f``; default: float64 then cast.
* :func:`make_arf` -- per-row mean area from the sun angles of the frames used (pure).
* :func:`arf_hdulist` / :func:`write_arf` / :func:`read_arf` -- FITS edges.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.products import effarea, fitsio
from xsm.products.errors import InputFormatError
from xsm.products.provenance import Mode, Provenance

N_ARF = 3000
ARF_E0_KEV = 0.1
ARF_DE_KEV = 0.01


def arf_energy_grid(mode: Mode = Mode.DEFAULT) -> tuple[np.ndarray, np.ndarray]:
    """(ENERG_LO, ENERG_HI) float32 of the 3000-bin grid."""
    k = np.arange(N_ARF)
    if mode == Mode.XSMDAS_1_2:
        lo = (np.float32(ARF_E0_KEV) + k.astype(np.float32) * np.float32(ARF_DE_KEV)).astype(np.float32)
        hi = (lo + np.float32(ARF_DE_KEV)).astype(np.float32)
        return lo, hi
    lo = ARF_E0_KEV + ARF_DE_KEV * k
    return lo.astype(np.float32), (lo + ARF_DE_KEV).astype(np.float32)


@dataclass
class Arf:
    """An ARF: ``specresp`` float32[R, 3000] (R = 1 for type I), energies, per-row times."""

    energ_lo: np.ndarray
    energ_hi: np.ndarray
    specresp: np.ndarray
    type2: bool
    tstart: np.ndarray
    tstop: np.ndarray
    mode: Mode = Mode.DEFAULT
    header: dict = field(default_factory=dict)

    @property
    def nrows(self) -> int:
        return int(self.specresp.shape[0])


def make_arf(theta, phi, detposr, row, exposure, params, rsp_coef, *, mode: Mode = Mode.DEFAULT,
             type2: bool = False, tstart=None, tstop=None, dety_policy: str = "clamp") -> Arf:
    """Mean absolute area per spectrum row.

    ``theta``, ``phi``, ``detposr``: the sun angles of the frames used, in order; ``row``: output row
    of each frame (non-decreasing); ``exposure``: frames per row. Compat: float32 sequential sums
    divided by the exposure in float32; default: float64 means cast to float32.
    """
    row = np.asarray(row, dtype=np.int64)
    exposure = np.asarray(exposure, dtype=np.float64).reshape(-1)
    coef = effarea.abs_coef(rsp_coef, "RSP")
    sums = effarea.summed_area(theta, phi, detposr, row, exposure.size, params, coef, mode,
                               dety_policy=dety_policy)
    if mode == Mode.XSMDAS_1_2:
        resp = (sums / exposure.astype(np.float32)[:, None]).astype(np.float32)
    else:
        resp = (sums / exposure[:, None]).astype(np.float32)
    lo, hi = arf_energy_grid(mode)
    ts = np.zeros(exposure.size) if tstart is None else np.asarray(tstart, np.float64).reshape(-1)
    te = np.zeros(exposure.size) if tstop is None else np.asarray(tstop, np.float64).reshape(-1)
    return Arf(lo, hi, resp, type2, ts, te, mode)


def arf_hdulist(arf: Arf, filename: str, *, creator: str, prov: Provenance, history: list[str],
                tstart: float, tstop: float, date_obs: str | None = None, date_end: str | None = None,
                caldbver: str = "", date: str | None = None) -> fits.HDUList:
    """The ``.arf`` file (``products.md`` §4) as an HDUList."""
    mode = arf.mode
    compat = mode == Mode.XSMDAS_1_2
    date = date or fitsio.date_keyword(mode)
    prim = fitsio.primary_hdu(filename, creator, "Ancillary Response File", date=date, mode=mode)
    if arf.type2:
        n = arf.nrows
        cols = [fits.Column("ARF_NUM", "1J", array=np.arange(n, dtype=np.int32)),
                fits.Column("ENERG_LO", f"{N_ARF}E", array=np.broadcast_to(arf.energ_lo, (n, N_ARF))),
                fits.Column("ENERG_HI", f"{N_ARF}E", array=np.broadcast_to(arf.energ_hi, (n, N_ARF))),
                fits.Column("SPECRESP", f"{N_ARF}E", array=arf.specresp, unit="cm**2")]
    else:
        cols = [fits.Column("ENERG_LO", "1E", array=arf.energ_lo, unit="keV"),
                fits.Column("ENERG_HI", "1E", array=arf.energ_hi, unit="keV"),
                fits.Column("SPECRESP", "1E", array=arf.specresp[0], unit="cm**2")]
    if arf.type2:
        cols[1].unit = cols[2].unit = "keV"
    ext = fitsio.bintable_hdu(cols, name="SPECRESP")
    h = ext.header
    cards = fitsio.time_keywords(tstart, tstop, date_obs, date_end, telapse=False, mode=mode)
    cards.append(("CONTENT", "ARF"))
    if arf.type2 or not compat:
        cards.append(("HDUCLASS", "OGIP"))
    cards += [("HDUCLAS1", "RESPONSE"), ("HDUCLAS2", "SPECRESP"),
              ("HDUVERS", "1.2.0" if arf.type2 else "1.1.0"),
              ("LONGSTRN", "OGIP 1.0")]
    fitsio.set_cards(h, cards)
    for k, v in fitsio.common_keywords(filename, creator, date=date, mode=mode):
        if k not in ("FILENAME", "DATE"):
            h[k] = v
    fitsio.set_cards(h, [("CALDBVER", caldbver), ("EXTVER", 1), ("FILENAME", filename), ("DATE", date)])
    fitsio.set_cards(h, fitsio.provenance_keywords(prov))
    fitsio.add_history(h, history)
    fitsio.add_history(h, fitsio.provenance_history(prov))
    return fits.HDUList([prim, ext])


def write_arf(arf: Arf, path: str | Path, *, overwrite: bool = True, **kw) -> Path:
    """Write an ARF atomically (``kw`` as :func:`arf_hdulist`)."""
    path = Path(path)
    hdul = arf_hdulist(arf, path.name, **kw)
    return fitsio.write_fits_atomic(hdul, path, overwrite=overwrite, checksum=arf.mode == Mode.DEFAULT)


def read_arf(path: str | Path) -> Arf:
    """Read a type-I or type-II ARF (extension SPECRESP)."""
    path = Path(path)
    with fitsio.open_fits(path, what="ARF", memmap=False) as hdul:
        ext = fitsio.require_extension(hdul, "SPECRESP", path)
        fitsio.require_columns(ext, ["ENERG_LO", "ENERG_HI", "SPECRESP"], path)
        d = ext.data
        h = ext.header
        lo = np.asarray(d["ENERG_LO"], np.float32)
        hi = np.asarray(d["ENERG_HI"], np.float32)
        resp = np.asarray(d["SPECRESP"], np.float32)
        type2 = resp.ndim == 2
        if type2:
            lo, hi = lo[0], hi[0]
        else:
            resp = resp[None, :]
        if lo.size != resp.shape[1]:
            raise InputFormatError(f"{path}: ENERG_LO and SPECRESP sizes differ")
        n = resp.shape[0]
        ts = np.full(n, float(h.get("TSTART", 0.0)))
        te = np.full(n, float(h.get("TSTOP", 0.0)))
        mode = Mode.XSMDAS_1_2 if h.get("PROCMODE") == Mode.XSMDAS_1_2.value else Mode.DEFAULT
        return Arf(lo, hi, resp, type2, ts, te, mode, header=dict(h))
