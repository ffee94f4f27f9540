"""A synthetic XSM CALDB from documented physical models (``caldb.md`` §6, ``effarea.md``).

``write_synthetic_caldb(root)`` writes every calibration file type in the real formats, an index
shaped like the real release (two GAIN files switching at 2020-06-14, MJD 59014) and the on-axis
area table, so the project runs without the real CALDB. Everything is deterministic (no random
numbers) and takes about a second. The models, all [P]:

EBOUNDS
    512 PI channels of 33 eV from 0.5 keV: ``E_MIN = 0.5 + 0.033 k``, ``E_MAX = E_MIN + 0.033``.
GAIN
    Grid NTEC = 115 (TEC current 0…2.28 V, 0.02 V), NRAD = 34 (DetPosR 0…3.3 mm, 0.1 mm)::

        gain(T, r)   = G0 · (1 + kT·(T − 1.14 V)) · (1 + kR·(r / 3.3 mm)²)
        offset(T, r) = O0 + kO·(T − 1.14 V)

    G0 = 0.01630 keV/ch, kT = 0.006 /V, kR = 0.012, O0 = 0.0294 keV, kO = 0.0003 keV/V.
    CALGAIN (NRAD = 1, RADBINSIZE = 3.3): G0 = 0.016570, O0 = −0.00157 keV, same kT.
    The second GAIN file, valid from MJD 59014 (2020-06-14), has all gains × (1 − 0.003).
ABSCOEF
    Linear attenuation coefficients μ = ρ · Σ_elements w_el · (μ/ρ)_el(E), with per-element
    photoabsorption power laws between absorption edges plus a constant scattering term::

        (μ/ρ)(E) = A_shell · (E / 1 keV)^(−p_shell) + σ_scat       [cm² g⁻¹]

    Be (ρ 1.848): one law A = 596, p = 3.10, σ = 0.17 (K edge at 0.111 keV not modelled).
    Si (ρ 2.33): above the K edge (1.839 keV) A = 3172·1.839^2.72, p = 2.72; below A = 1548, p = 2.66;
    σ = 0.12. O (in SiO2): above its K edge (0.543 keV) A = 4529, p = 2.78; below, the same law
    ÷ 20 (edge jump); σ = 0.15. SiO2: ρ = 2.65, mass fractions Si 0.4674, O 0.5326.
    Coefficients close to the Henke/XCOM values (within ~20 % over 1–15 keV).
EFFAREAPAR
    140 × 70 cells of 0.05 mm from (−3.5, −3.5) mm; with r the radius of the cell centre::

        Alpha    = 1.70 + 0.10 · s(r)        Be_thick = 8.0 µm + 2.8 µm · s(r)²
        s(r)     = clip((r − 2.2 mm) / 1.3 mm, 0, 1)

    DeadSi 0.1 µm, DeadSiO2 0.08 µm, DetSi 450 µm everywhere (thicknesses in cm in the file).
SYSERR
    Fraction per 9-bit channel c: 0 for c < 26, 0.1 for 26 ≤ c < 32, 0.03 up to c < 400, 0.05 above.
RMF (3000 energies 0.1–30.1 keV × 512 PI channels)
    A Gaussian photopeak with FWHM(E) = √(FWHM₀² + (2.355)²·F·w·E), FWHM₀ = 0.120 keV, Fano
    F = 0.12, w = 3.62 eV; a low-energy tail (incomplete charge collection) carrying
    f(E) = 0.02 + 0.06·exp(−E / 1.5 keV) of the events, half as an exponential below the line
    energy with scale 0.3 keV and half as a flat shelf from 0 to E; a Si K escape peak at E − 1.74 keV with fraction 0.01·(1.84/E)·(E > 1.839 keV).
    Each row is normalised to 1 over the whole energy axis and integrated over each channel, so a
    row sums to the fraction of events falling inside 0.5–17.396 keV (≤ 1).
RSP_OPEN / RSP_BEFT
    The RMF times the on-axis area A₀(E) (``effarea.md`` §4) with the parameters of the cell
    containing the axis (row 4899); RSP_BEFT also times the transmission of the filter-wheel Be
    filter, assumed 250 µm [I: thickness not documented].
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.special import erf

from xsm.caldb_manager.calfiles import (ABSCOEF_EXTENSIONS, N_PI, RSP_NBINS, rsp_energy_grid)
from xsm.caldb_manager.index import (CAL_INSTRUME, CAL_TELESCOP, CalIndex, IndexRow, mjd_to_vsd_vst)
from xsm.products.fitsio import IDENTITY_CARDS, MISSION, empty_primary_hdu, write_fits_atomic
from xsm.products.met import MJDREF

CREATOR = "xsm.caldb_manager.synthetic"
#: Default CALDBVER of a synthetic CALDB.
SYNTHETIC_VERSION = "20260101"
#: Validity start of the second GAIN file (``caldb.md`` §1).
GAIN_SWITCH_MJD = 59014.0
#: Geometric area of the detector, cm² (``effarea.md`` §1).
GEOMETRIC_AREA = 0.00364999

# --- model constants (module docstring) -----------------------------------------------------
EB_EMIN, EB_DE = 0.5, 0.033
NTEC, NRAD, TECBIN, RADBIN = 115, 34, 0.02, 0.1
G0, KT, KR, T0, O0, KO = 0.01630, 0.006, 0.012, 1.14, 0.0294, 0.0003
CAL_G0, CAL_O0 = 0.016570, -0.00157
GAIN_DRIFT = -0.003
DENSITY = {"BE": 1.848, "SI": 2.33, "SIO2": 2.65}
SIO2_FRACTIONS = {"SI": 0.4674, "O": 0.5326}
NX, NY, DXY, XYMIN = 140, 70, 0.05, -3.5
FWHM0, FANO, W_SI = 0.120, 0.12, 0.00362
TAIL_SCALE = 0.3
SI_K_EDGE, SI_KA, O_K_EDGE = 1.839, 1.74, 0.543
BE_FILTER_CM = 250e-4


def ebounds_grid() -> tuple[np.ndarray, np.ndarray]:
    """(E_MIN, E_MAX) float32: ``E_MIN = 0.5f + 0.033f·k``, ``E_MAX = E_MIN + 0.033f`` in float32
    (the arithmetic that gives the real release's values bit for bit)."""
    k = np.arange(N_PI, dtype=np.float32)
    lo = np.float32(EB_EMIN) + np.float32(EB_DE) * k
    return lo, lo + np.float32(EB_DE)


def mass_attenuation(element: str, energy: np.ndarray) -> np.ndarray:
    """(μ/ρ)(E) in cm² g⁻¹ of ``'BE'``, ``'SI'`` or ``'O'`` (module docstring)."""
    e = np.asarray(energy, dtype=np.float64)
    if element == "BE":
        return 596.0 * e ** -3.10 + 0.17
    if element == "SI":
        above = 3172.0 * (e / SI_K_EDGE) ** -2.72
        below = 1548.0 * e ** -2.66
        return np.where(e >= SI_K_EDGE, above, below) + 0.12
    if element == "O":
        law = 4529.0 * e ** -2.78
        return np.where(e >= O_K_EDGE, law, law / 20.0) + 0.15
    raise ValueError(f"unknown element {element!r}")


def linear_attenuation(material: str, energy: np.ndarray) -> np.ndarray:
    """μ(E) in cm⁻¹ of ``'BE'``, ``'SI'`` or ``'SIO2'``."""
    if material == "SIO2":
        mr = sum(w * mass_attenuation(el, energy) for el, w in SIO2_FRACTIONS.items())
    else:
        mr = mass_attenuation(material, energy)
    return DENSITY[material] * mr


def abscoef_grid(which: str) -> np.ndarray:
    """Bin-centre energies (keV) of the ABSCOEF grids (``effarea.md`` §1)."""
    if which == "PI_ENE":
        return 0.5165 + 0.033 * np.arange(512)
    if which == "PHA_ENE":
        return 0.008125 + 0.01625 * np.arange(1024)
    if which == "RSP_ENE":
        return 0.105 + 0.01 * np.arange(3000)
    raise ValueError(which)


def gain_grid(drift: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(TEC, DETPOSR, GAIN, OFFSET) in file row order for the Sun table."""
    tec = np.repeat(np.arange(NTEC) * TECBIN, NRAD)
    rad = np.tile(np.arange(NRAD) * RADBIN, NTEC)
    gain = G0 * (1 + KT * (tec - T0)) * (1 + KR * (rad / 3.3) ** 2) * (1 + drift)
    off = O0 + KO * (tec - T0)
    return tec, rad, gain, off


def effareapar_grid() -> dict[str, np.ndarray]:
    """The seven EFFAREAPAR columns in file row order (row = xbin·NY + ybin)."""
    xb, yb = np.meshgrid(np.arange(NX), np.arange(NY), indexing="ij")
    # float32 arithmetic, as in the real release
    detx = (np.float32(XYMIN) + np.float32(DXY) * xb.astype(np.float32)).ravel()
    dety = (np.float32(XYMIN) + np.float32(DXY) * yb.astype(np.float32)).ravel()
    r = np.hypot(detx + DXY / 2, dety + DXY / 2)
    s = np.clip((r - 2.2) / 1.3, 0.0, 1.0)
    n = NX * NY
    return {"DETX": detx, "DETY": dety, "Alpha": 1.70 + 0.10 * s, "Be_thick": (8.0 + 2.8 * s ** 2) * 1e-4,
            "DeadSi_thick": np.full(n, 1e-5), "DeadSiO2_thick": np.full(n, 8e-6),
            "DetSi_thick": np.full(n, 0.045)}


def onaxis_area(energy: np.ndarray) -> np.ndarray:
    """A₀(E), cm² (``effarea.md`` §4) with the parameters of row 4899 of :func:`effareapar_grid`."""
    p = {k: float(v[4899]) for k, v in effareapar_grid().items()}
    mu_be, mu_si, mu_sio2 = (linear_attenuation(m, energy) for m in ("BE", "SI", "SIO2"))
    return (GEOMETRIC_AREA * np.exp(-mu_be * p["Be_thick"]) * np.exp(-mu_si * p["DeadSi_thick"])
            * np.exp(-mu_sio2 * p["DeadSiO2_thick"]) * (1 - np.exp(-mu_si * p["DetSi_thick"])))


def syserr_model() -> np.ndarray:
    c = np.arange(N_PI)
    return np.select([c < 26, c < 32, c < 400], [0.0, 0.1, 0.03], 0.05).astype(np.float32)


def redistribution(energ_lo: np.ndarray, energ_hi: np.ndarray, e_min: np.ndarray,
                   e_max: np.ndarray) -> np.ndarray:
    """The RMF matrix (n_energies, n_channels), float32: probability per channel (docstring)."""
    e = 0.5 * (np.asarray(energ_lo) + np.asarray(energ_hi))[:, None]
    lo, hi = np.asarray(e_min, np.float64)[None, :], np.asarray(e_max, np.float64)[None, :]
    sigma = np.sqrt(FWHM0 ** 2 + 2.355 ** 2 * FANO * W_SI * e) / 2.355
    f_tail = 0.02 + 0.06 * np.exp(-e / 1.5)
    f_esc = np.where(e > SI_K_EDGE, 0.01 * SI_K_EDGE / e, 0.0)

    def gauss(centre):
        return 0.5 * (erf((hi - centre) / (np.sqrt(2) * sigma)) - erf((lo - centre) / (np.sqrt(2) * sigma)))

    def tail_cdf(x):  # fraction of an exponential tail below the line, between 0 and x
        x = np.minimum(x, e)
        return np.clip(np.exp((x - e) / TAIL_SCALE) - np.exp(-e / TAIL_SCALE), 0.0, None) / (
            1 - np.exp(-e / TAIL_SCALE))

    def shelf_cdf(x):  # flat from 0 to the line energy
        return np.clip(x / e, 0.0, 1.0)

    peak = gauss(e)
    tail = 0.5 * (tail_cdf(hi) - tail_cdf(lo)) + 0.5 * (shelf_cdf(hi) - shelf_cdf(lo))
    esc = gauss(e - SI_KA) if np.any(f_esc > 0) else 0.0
    m = np.clip((1 - f_tail - f_esc) * peak + f_tail * tail + f_esc * esc, 0.0, None)
    # rounding of the erf differences can push a full row a hair above 1: renormalise those rows
    s = m.sum(axis=1, keepdims=True)
    m = np.where(s > 1.0, m / (s * (1 + 1e-6)), m).astype(np.float32)
    s32 = m.sum(axis=1, dtype=np.float64, keepdims=True)
    return np.where(s32 > 1.0, m / np.float32(s32 * (1 + 1e-6)), m).astype(np.float32)


# --- FITS writing --------------------------------------------------------------------------

def _primary(filename: str) -> fits.PrimaryHDU:
    h = empty_primary_hdu()   # BITPIX 16 as the official CALDB files
    for k, v, c in (*IDENTITY_CARDS,
                    ("CREATOR", CREATOR, "Software that created the FITS file"),
                    ("FILENAME", filename, "File name")):
        h.header[k] = (v, c)
    return h


def caldb_cards(code: str, description: str, boundaries: tuple[str, ...], ref_mjd: float,
                cls: str = "BCF") -> list[tuple[str, object, str]]:
    """The OGIP CALDB keywords of a calibration extension (``caldb.md`` §4), strict CBD syntax."""
    vsd, vst = mjd_to_vsd_vst(ref_mjd)
    cards = [("CCNM0001", code, "CALDB code name"),
             ("CCLS0001", cls, "CALDB class"),
             ("CDTP0001", "DATA", "CALDB data type")]
    for k, b in enumerate(boundaries or ("NONE",), start=1):
        cards.append((f"CBD{k}0001", b, "CALDB boundary"))
    cards += [("CVSD0001", vsd, "CALDB validity start date (YYYY-MM-DD)"),
              ("CVST0001", vst, "CALDB validity start time (hh:mm:ss)"),
              ("CDES0001", description, "CALDB description")]
    return cards


def _table(name: str, columns: list[fits.Column], filename: str, content: str,
           cards: list[tuple[str, object, str]], extra: list[tuple[str, object, str]] = (),
           comments: tuple[str, ...] = ()) -> fits.BinTableHDU:
    hdu = fits.BinTableHDU.from_columns(columns, name=name)
    h = hdu.header
    for k, v, c in extra:
        h[k] = (v, c)
    for k, v, c in (("MISSION", MISSION, "Name of mission/satellite"),
                    ("TELESCOP", CAL_TELESCOP, "Name of mission/satellite"),
                    ("INSTRUME", CAL_INSTRUME, "Name of Instrument/detector"),
                    ("HDUCLASS", "OGIP", "OGIP Standard"),
                    ("ORIGIN", "PRLPOC", "Origin of FITS file"),
                    ("CREATOR", CREATOR, "Software that created the FITS file"),
                    ("VERSION", "1", "Version number"),
                    ("FILENAME", filename, "File name"),
                    ("CONTENT", content, "File content")):
        if k not in h:
            h[k] = (v, c)
    for k, v, c in cards:
        h[k] = (v, c if len(str(v)) + len(c) < 62 else "")
    for line in comments:
        h.add_comment(line)
    h.add_comment("Synthetic calibration from documented models (xsm.caldb_manager.synthetic)")
    return hdu


def _write(hdus: list, path: Path) -> Path:
    return write_fits_atomic(fits.HDUList(hdus), path, overwrite=True, checksum=True)


def write_ebounds(path: Path, ref_mjd: float = MJDREF) -> Path:
    path = Path(path)
    ch = np.arange(N_PI, dtype=np.int16)
    lo, hi = ebounds_grid()
    cols = [fits.Column("CHANNEL", "I", array=ch), fits.Column("E_MIN", "E", unit="keV", array=lo),
            fits.Column("E_MAX", "E", unit="keV", array=hi)]
    cards = caldb_cards("EBOUNDS", "Nominal energy bounds of PI channels",
                        (f"ENERG({EB_EMIN:g}-{EB_EMIN + EB_DE * N_PI:.3f})keV", f"CHANNEL(0-{N_PI - 1})"), ref_mjd)
    ext = _table("EBOUNDS", cols, path.name, "XSM Ebounds", cards,
                 extra=[("CHANTYPE", "PI", "Channel type"), ("DETCHANS", N_PI, "Number of channels")])
    return _write([_primary(path.name), ext], path)


def _gain_hdu(name: str, tec, rad, gain, off, nrad: int, radbin: float, filename: str, ref_mjd: float,
              content: str) -> fits.BinTableHDU:
    cols = [fits.Column("TEC_CURRENT", "E", unit="V", array=tec.astype(np.float32)),
            fits.Column("DETPOSR", "E", unit="mm", array=rad.astype(np.float32)),
            fits.Column("GAIN", "E", unit="keV/chan", array=gain.astype(np.float32)),
            fits.Column("OFFSET", "E", unit="keV", array=off.astype(np.float32))]
    hdu = _table(name, cols, filename, content,
                 caldb_cards("GAIN", "Gain and offset of detector",
                             (f"TEC(0-{(NTEC - 1) * TECBIN:.2f})V", f"DETPOSR(0-{NRAD * RADBIN:.1f})mm"), ref_mjd),
                 extra=[("NTEC", NTEC, "Number of TEC-current bins"), ("NRAD", nrad, "Number of radius bins")])
    hdu.header.insert("NRAD", ("HIERARCH TECBINSIZE", TECBIN), after=True)
    hdu.header.insert("HIERARCH TECBINSIZE", ("HIERARCH RADBINSIZE", radbin), after=True)
    return hdu


def write_gain(path: Path, ref_mjd: float = MJDREF, drift: float = 0.0) -> Path:
    path = Path(path)
    tec, rad, gain, off = gain_grid(drift)
    sun = _gain_hdu("GAIN", tec, rad, gain, off, NRAD, RADBIN, path.name, ref_mjd, "XSM Gain")
    ctec = np.arange(NTEC) * TECBIN
    cgain = CAL_G0 * (1 + KT * (ctec - T0)) * (1 + drift)
    coff = np.full(NTEC, CAL_O0)
    cal = _gain_hdu("CALGAIN", ctec, np.zeros(NTEC), cgain, coff, 1, 3.3, path.name, ref_mjd, "XSM CAL Gain")
    return _write([_primary(path.name), sun, cal], path)


def write_abscoef(path: Path, ref_mjd: float = MJDREF) -> Path:
    path = Path(path)
    hdus: list = [_primary(path.name)]
    for name, size in ABSCOEF_EXTENSIONS:
        e = abscoef_grid(name)
        assert len(e) == size
        cols = [fits.Column("Energy", "E", unit="keV", array=e.astype(np.float32))]
        cols += [fits.Column(m, "D", unit="cm**-1", array=linear_attenuation(m, e)) for m in ("BE", "SI", "SIO2")]
        hdus.append(_table(name, cols, path.name, "XSM Absorption Coefficients",
                           caldb_cards("ABSCOEF", "Absorption coefficients",
                                       (f"ENERG({e[0]:g}-{e[-1]:g})keV",), ref_mjd)))
    return _write(hdus, path)


def write_effareapar(path: Path, ref_mjd: float = MJDREF) -> Path:
    path = Path(path)
    g = effareapar_grid()
    units = {"DETX": "mm", "DETY": "mm", "Alpha": "", "Be_thick": "cm", "DeadSi_thick": "cm",
             "DeadSiO2_thick": "cm", "DetSi_thick": "cm"}
    cols = [fits.Column(k, "E", unit=units[k] or None, array=v.astype(np.float32)) for k, v in g.items()]
    extra = [("DX", DXY, "cell size in DETX, mm"), ("DY", DXY, "cell size in DETY, mm"),
             ("NXBINS", NX, "cells in DETX"), ("NYBINS", NY, "cells in DETY"),
             ("XMIN", XYMIN, "lower DETX edge, mm"), ("YMIN", XYMIN, "lower DETY edge, mm")]
    ext = _table("EFFAREAPAR", cols, path.name, "XSM EffectiveArea",
                 caldb_cards("EFFAREAPAR", "Effective area parameters",
                             (f"DETX({XYMIN:g}-{XYMIN + NX * DXY:g})mm", f"DETY({XYMIN:g}-{XYMIN + NY * DXY:g})mm"),
                             ref_mjd), extra=extra)
    return _write([_primary(path.name), ext], path)


def write_syserr(path: Path, ref_mjd: float = MJDREF) -> Path:
    path = Path(path)
    cols = [fits.Column("Channel", "I", array=np.arange(N_PI, dtype=np.int16)),
            fits.Column("SysErr", "E", array=syserr_model())]
    ext = _table("SYSERR", cols, path.name, "XSM Systematic errors",
                 caldb_cards("SYSERR", "Systematic errors on 9bit PHA channels", (f"CHANNEL(0-{N_PI - 1})",),
                             ref_mjd))
    return _write([_primary(path.name), ext], path)


def response_hdus(filename: str, code: str, matrix: np.ndarray, full: bool, ref_mjd: float,
                  description: str) -> list:
    """EBOUNDS + MATRIX extensions of an OGIP response (HDUVERS 1.3.0, fixed 512-vector rows)."""
    elo, ehi = rsp_energy_grid()
    ch = np.arange(N_PI, dtype=np.int16)
    e_min, e_max = ebounds_grid()
    cards = caldb_cards(code, description, (f"ENERG({elo[0]:g}-{ehi[-1]:g})keV", f"CHANNEL(0-{N_PI - 1})"),
                        ref_mjd, cls="CPF")
    common = [("CHANTYPE", "PI", "Channel type"), ("DETCHANS", N_PI, "Number of channels"),
              ("FILTER", "NONE", "Filter")]
    mcols = [fits.Column("ENERG_LO", "E", unit="keV", array=elo.astype(np.float32)),
             fits.Column("ENERG_HI", "E", unit="keV", array=ehi.astype(np.float32)),
             fits.Column("N_GRP", "I", array=np.ones(RSP_NBINS, np.int16)),
             fits.Column("F_CHAN", "I", array=np.zeros(RSP_NBINS, np.int16)),
             fits.Column("N_CHAN", "I", array=np.full(RSP_NBINS, N_PI, np.int16)),
             fits.Column("MATRIX", f"{N_PI}E", unit="cm**2" if full else None, array=matrix)]
    mhdu = _table("MATRIX", mcols, filename, "XSM response", cards,
                  extra=[("HDUCLAS1", "RESPONSE", ""), ("HDUCLAS2", "RSP_MATRIX", ""),
                         ("HDUCLAS3", "FULL" if full else "REDIST", ""), ("HDUVERS", "1.3.0", ""),
                         *common, ("LO_THRES", 0.0, "Lower threshold of stored matrix values")])
    mhdu.header["TLMIN4"] = 0
    mhdu.header["TLMAX4"] = N_PI - 1
    ecols = [fits.Column("CHANNEL", "I", array=ch), fits.Column("E_MIN", "E", unit="keV", array=e_min),
             fits.Column("E_MAX", "E", unit="keV", array=e_max)]
    ehdu = _table("EBOUNDS", ecols, filename, "XSM response", cards,
                  extra=[("HDUCLAS1", "RESPONSE", ""), ("HDUCLAS2", "EBOUNDS", ""), ("HDUVERS", "1.2.0", ""),
                         *common])
    return [_primary(filename), ehdu, mhdu]


def rmf_matrix() -> np.ndarray:
    elo, ehi = rsp_energy_grid()
    return redistribution(elo, ehi, *ebounds_grid())


def write_rmf(path: Path, ref_mjd: float = MJDREF, matrix: np.ndarray | None = None) -> Path:
    path = Path(path)
    m = rmf_matrix() if matrix is None else matrix
    return _write(response_hdus(path.name, "RMF", m, False, ref_mjd, "Redistribution matrix"), path)


def write_rsp(path: Path, position: str = "open", ref_mjd: float = MJDREF,
              matrix: np.ndarray | None = None) -> Path:
    """RSP_OPEN (``position='open'``) or RSP_BEFT (``'beft'``): RMF × on-axis area [× Be filter]."""
    path = Path(path)
    elo, ehi = rsp_energy_grid()
    e = 0.5 * (elo + ehi)
    area = onaxis_area(e)
    if position == "beft":
        area = area * np.exp(-linear_attenuation("BE", e) * BE_FILTER_CM)
    m = (rmf_matrix() if matrix is None else matrix) * area[:, None].astype(np.float32)
    code = "RSP_OPEN" if position == "open" else "RSP_BEFT"
    desc = f"Response with on-axis effective area: {'open' if position == 'open' else 'Be filter'} position"
    return _write(response_hdus(path.name, code, m.astype(np.float32), True, ref_mjd, desc), path)


def write_onaxis_table(path: Path) -> Path:
    """``xsm_onaxis_effective_area.txt``: A₀ on the PI_ENE grid, 512 lines (``caldb.md`` §6.8)."""
    from xsm.products.fitsio import atomic_path

    path = Path(path)
    a = onaxis_area(abscoef_grid("PI_ENE"))
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{v:16.7e}\n" for v in a))
    return path


@dataclass(frozen=True)
class SyntheticFile:
    code: str
    name: str
    ref_mjd: float
    desc: str
    writer: Callable[[Path], Path]


def synthetic_files(version: str = SYNTHETIC_VERSION) -> list[SyntheticFile]:
    """The files of a synthetic release in the order of the real index (``caldb.md`` §1)."""
    base = MJDREF

    def n(kind: str, v: int = 1, ext: str = "fits") -> str:
        return f"CH2xsm{kind}{version}v{v:02d}.{ext}"

    rmf_cache: dict[str, np.ndarray] = {}

    def rmf() -> np.ndarray:
        if "m" not in rmf_cache:
            rmf_cache["m"] = rmf_matrix()
        return rmf_cache["m"]

    return [
        SyntheticFile("EBOUNDS", n("ebounds"), base, "Ebounds file", lambda p: write_ebounds(p, base)),
        SyntheticFile("GAIN", n("gain"), base, "Gain and Offset", lambda p: write_gain(p, base)),
        SyntheticFile("ABSCOEF", n("abscoef"), base, "Absorption Coefficients for effective area",
                      lambda p: write_abscoef(p, base)),
        SyntheticFile("EFFAREAPAR", n("effareapar"), base, "Effective area parameters",
                      lambda p: write_effareapar(p, base)),
        SyntheticFile("RMF", n("response", ext="rmf"), base, "Redistribution matrix",
                      lambda p: write_rmf(p, base, rmf())),
        SyntheticFile("SYSERR", n("syserr"), base, "Systematic error", lambda p: write_syserr(p, base)),
        SyntheticFile("RSP_OPEN", n("rspwitharea_open", ext="rsp"), base,
                      "Rsp file with on-axis effective area: open pos", lambda p: write_rsp(p, "open", base, rmf())),
        SyntheticFile("RSP_BEFT", n("rspwitharea_beft", ext="rsp"), base,
                      "Rsp file with on-axis effective area: Be filter pos", lambda p: write_rsp(p, "beft", base, rmf())),
        SyntheticFile("GAIN", n("gain", 2), GAIN_SWITCH_MJD, "Gain and Offset",
                      lambda p: write_gain(p, GAIN_SWITCH_MJD, GAIN_DRIFT)),
    ]


def write_synthetic_files(directory: str | Path, version: str = SYNTHETIC_VERSION) -> CalIndex:
    """Write every synthetic calibration file into ``directory``; return the index naming them.

    The index is returned, not written (``init_synthetic`` publishes it as a CALDB version).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for f in synthetic_files(version):
        f.writer(d / f.name)
        rows.append(IndexRow(f.code, f.name, f.ref_mjd, 0, f.desc))
    write_onaxis_table(d / "xsm_onaxis_effective_area.txt")
    return CalIndex(rows=tuple(rows), caldbver=version, form="xsm")
