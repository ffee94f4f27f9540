"""The XSM effective-area model (``spec/effarea.md``): absolute and relative area per frame.

``A(E) = G c^alpha 1/2 erfc((theta - 41.5)/2.5) exp(-mu_Be t_Be/c) exp(-mu_Si t_dSi/c)
exp(-mu_SiO2 t_SiO2/c) (1 - exp(-mu_Si t_det/c))`` with ``c = cos theta``; parameters from the
EFFAREAPAR cell of the spot position (DetPosR, phi), absorption coefficients from the ABSCOEF
extension of the energy grid (PI 512, PHA 1024, RSP 3000).

Modes: compat (``Mode.XSMDAS_1_2``) reproduces the reference lookup (float32 arithmetic, the
off-by-one clamp of Q04) and pi = 3.1415 (Q09); default uses float64, ``floor``, indices clamped to
the grid, exact pi, and ``dety_policy`` ``'clamp'`` (default) or ``'mirror'`` for spots with DETY > 0.

API used by other modules (spectra, ARFs, light curves, simulator)
------------------------------------------------------------------
``area_params(obj) -> AreaParams``
    From a CALDB loader object (attributes ``alpha``, ``be_thick``... or the column names), an
    EFFAREAPAR BinTableHDU, or a path.
``abs_coef(obj, grid='PI'|'PHA'|'RSP') -> AbsCoef``
    One ABSCOEF grid; ``obj`` a loader object (attribute per grid or a dict) or a path/HDUList.
``param_cells(detposr, phi, params, mode, dety_policy='clamp') -> int64[N]``
    EFFAREAPAR row of each frame.
``effective_area(theta, phi, detposr, params, coef, mode) -> float64[N, E]``
    Absolute area (cm^2).
``onaxis_area(params, coef) -> float64[E]``
    The on-axis reference A0 (no collimator term, cell 4899).
``relative_area(theta, phi, detposr, params, coef, mode) -> float64[N, E]``
    ``A/A0`` where ``A0 > 1e-6`` cm^2, else 1 (area-corrected spectra and light curves).
``summed_area(theta, phi, detposr, group, ngroups, params, coef, mode) -> [ngroups, E]``
    Sum of the absolute area of the frames of each group (ARF rows): float32 sequential
    accumulation in compat (``spectrum.md`` §11), float64 in default. Vectorised in frame chunks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import math

from xsm.products.errors import InputFormatError, ParameterError
from xsm.products.float32sum import accumulate_rows_f32
from xsm.products.parallel import imap_threads
from xsm.products.provenance import Mode

#: Geometric area of the detector (cm^2), hard-coded in the reference.
GEOMETRIC_AREA_CM2 = 0.00364999
#: The reference's pi in degree -> radian conversions (Q09).
PI_COMPAT = 3.1415
#: Collimator response: 1/2 at 41.5 deg, 2.5 deg scale.
COLLIMATOR_HALF_DEG = 41.5
COLLIMATOR_SCALE_DEG = 2.5
#: On-axis reference areas below this (cm^2) give a relative area of 1.
ONAXIS_MIN_AREA_CM2 = 1e-6
#: ABSCOEF extension position (1-based HDU = index + 1) and size of each grid.
GRIDS = {"PI": (1, 512), "PHA": (2, 1024), "RSP": (3, 3000)}
DETY_POLICIES = ("clamp", "mirror")
#: Exponent floor: exp(-700) ~ 1e-304 is zero for every float32 product, and arguments below
#: about -708 make numpy's vectorised exp fall back to a slow path.
EXP_FLOOR = -700.0


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def erfc(x) -> np.ndarray:
    """The C library's erfc (as the reference calls it), vectorised; avoids importing scipy."""
    return np.asarray(_ERFC(np.asarray(x, dtype=np.float64)), dtype=np.float64)


@dataclass(frozen=True)
class AreaParams:
    """EFFAREAPAR cells (row = xbin*ny + ybin), float32 columns, and the grid keywords."""

    alpha: np.ndarray
    be: np.ndarray
    deadsi: np.ndarray
    sio2: np.ndarray
    detsi: np.ndarray
    nx: int = 140
    ny: int = 70
    dx: float = 0.05
    dy: float = 0.05
    xmin: float = -3.5
    ymin: float = -3.5

    def __post_init__(self) -> None:
        if self.alpha.size != self.nx * self.ny:
            raise InputFormatError(f"EFFAREAPAR: {self.alpha.size} rows, expected NXBINS*NYBINS = "
                                   f"{self.nx}*{self.ny}")


@dataclass(frozen=True)
class AbsCoef:
    """Linear attenuation coefficients (cm^-1, float64) on one energy grid (keV centres)."""

    energy: np.ndarray
    be: np.ndarray
    si: np.ndarray
    sio2: np.ndarray
    grid: str = "RSP"


def _get(obj, *names):
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    raise InputFormatError(f"{type(obj).__name__}: lacks {names[0]}")


def area_params(obj) -> AreaParams:
    """Adapt EFFAREAPAR data (loader object, BinTableHDU, HDUList or path) to :class:`AreaParams`."""
    if isinstance(obj, AreaParams):
        return obj
    if isinstance(obj, (str, Path)):
        from xsm.products.fitsio import open_fits, require_extension
        with open_fits(obj, what="EFFAREAPAR file") as hdul:
            return area_params(require_extension(hdul, "EFFAREAPAR", obj))   # fields are copied
    if hasattr(obj, "header") and hasattr(obj, "data"):
        h, d = obj.header, obj.data
        try:
            return AreaParams(*(np.asarray(d.field(i), np.float32).copy() for i in range(2, 7)),
                              nx=int(h["NXBINS"]), ny=int(h["NYBINS"]), dx=float(h["DX"]),
                              dy=float(h["DY"]), xmin=float(h["XMIN"]), ymin=float(h["YMIN"]))
        except KeyError as exc:
            raise InputFormatError(f"EFFAREAPAR: missing keyword {exc}") from None
    inner = getattr(obj, "params", None)
    if isinstance(inner, AreaParams):
        return inner
    f32 = lambda *n: np.asarray(_get(obj, *n), np.float32).ravel()  # noqa: E731
    return AreaParams(
        f32("alpha", "Alpha"), f32("be_thick", "be", "Be_thick"),
        f32("deadsi_thick", "deadsi", "dead_si_thick", "DeadSi_thick"),
        f32("deadsio2_thick", "sio2", "dead_sio2_thick", "DeadSiO2_thick"),
        f32("detsi_thick", "detsi", "det_si_thick", "DetSi_thick"),
        nx=int(_get(obj, "nx", "nxbins", "NXBINS")), ny=int(_get(obj, "ny", "nybins", "NYBINS")),
        dx=float(_get(obj, "dx", "DX")), dy=float(_get(obj, "dy", "DY")),
        xmin=float(_get(obj, "xmin", "XMIN")), ymin=float(_get(obj, "ymin", "YMIN")))


def abs_coef(obj, grid: str = "RSP") -> AbsCoef:
    """One ABSCOEF grid (``'PI'``, ``'PHA'`` or ``'RSP'``) from a loader object, HDUList or path."""
    grid = grid.upper()
    if grid not in GRIDS:
        raise ParameterError(f"ABSCOEF grid {grid!r}: use PI, PHA or RSP")
    hdu_index, size = GRIDS[grid]
    if isinstance(obj, AbsCoef):
        if obj.grid != grid:
            raise ParameterError(f"ABSCOEF grid {obj.grid} given where {grid} is needed")
        return obj
    if isinstance(obj, (str, Path)):
        from xsm.products.fitsio import open_fits
        with open_fits(obj, what="ABSCOEF file") as hdul:
            return abs_coef(hdul, grid)
    if hasattr(obj, "__getitem__") and hasattr(obj, "index_of"):  # HDUList: by position
        try:
            hdu = obj[hdu_index]
        except IndexError:
            raise InputFormatError(f"ABSCOEF: no extension {hdu_index} ({grid}_ENE)") from None
        d = hdu.data
        if d is None or len(d) != size:
            raise InputFormatError(f"ABSCOEF extension {hdu_index}: NAXIS2 must be {size}")
        return AbsCoef(*(np.asarray(d.field(i), np.float64).copy() for i in range(4)), grid=grid)
    for name in (grid, grid.lower(), f"{grid}_ENE", f"{grid.lower()}_ene"):
        try:
            sub = _get(obj, name)
        except InputFormatError:
            continue
        if isinstance(sub, AbsCoef):
            return sub
        return AbsCoef(np.asarray(_get(sub, "energy", "Energy"), np.float64),
                       np.asarray(_get(sub, "be", "BE"), np.float64),
                       np.asarray(_get(sub, "si", "SI"), np.float64),
                       np.asarray(_get(sub, "sio2", "SIO2"), np.float64), grid=grid)
    if hasattr(obj, "grids"):
        return abs_coef(obj.grids, grid)
    raise InputFormatError(f"{type(obj).__name__}: no ABSCOEF grid {grid}")


# --------------------------------------------------------------------------- cell lookup
def _deg2rad(mode: Mode) -> float:
    return (PI_COMPAT if mode == Mode.XSMDAS_1_2 else np.pi) / 180.0


def param_cells(detposr, phi, params: AreaParams, mode: Mode = Mode.DEFAULT,
                dety_policy: str = "clamp") -> np.ndarray:
    """EFFAREAPAR row of each spot (``effarea.md`` §3)."""
    r = np.asarray(detposr, dtype=np.float64)
    ph = np.asarray(phi, dtype=np.float64) * _deg2rad(mode)
    if mode == Mode.XSMDAS_1_2:
        # Q04: float32 DETX/DETY and float32 arithmetic; clamp only when index > N
        detx = (r * np.cos(ph)).astype(np.float32)
        dety = (r * np.sin(ph)).astype(np.float32)
        with np.errstate(invalid="ignore"):
            xb = np.trunc((detx - np.float32(params.xmin)) / np.float32(params.dx))
            yb = np.trunc((dety - np.float32(params.ymin)) / np.float32(params.dy))
        xb = np.where(xb > params.nx, params.nx - 1, xb)
        yb = np.where(yb > params.ny, params.ny - 1, yb)
        row = xb.astype(np.int64) * params.ny + yb.astype(np.int64)
        if np.any(row < 0) or np.any(row >= params.alpha.size):
            raise ParameterError("effective area: spot position outside the EFFAREAPAR map")
        return row
    if dety_policy not in DETY_POLICIES:
        raise ParameterError(f"dety_policy {dety_policy!r}: use one of {DETY_POLICIES}")
    detx = r * np.cos(ph)
    dety = r * np.sin(ph)
    if dety_policy == "mirror":
        dety = -np.abs(dety)
    with np.errstate(invalid="ignore"):
        xb = np.floor((detx - params.xmin) / params.dx)
        yb = np.floor((dety - params.ymin) / params.dy)
    xb = np.clip(np.nan_to_num(xb, nan=0.0), 0, params.nx - 1).astype(np.int64)
    yb = np.clip(np.nan_to_num(yb, nan=0.0), 0, params.ny - 1).astype(np.int64)
    return xb * params.ny + yb


def onaxis_cell(params: AreaParams) -> int:
    """Cell of the on-axis reference: (0, 0) located in double with float32 XMIN, DX (row 4899)."""
    xb = int(np.trunc((0.0 - float(np.float32(params.xmin))) / float(np.float32(params.dx))))
    yb = int(np.trunc((0.0 - float(np.float32(params.ymin))) / float(np.float32(params.dy))))
    return min(xb, params.nx - 1) * params.ny + min(yb, params.ny - 1)


# --------------------------------------------------------------------------- area
@dataclass(frozen=True)
class FrameTerms:
    """Per-frame scalars of the area model: ``scale = G c^alpha erfc/2``, ``inv_c = 1/c``, cell."""

    scale: np.ndarray
    inv_c: np.ndarray
    cell: np.ndarray


def frame_terms(theta, phi, detposr, params: AreaParams, mode: Mode = Mode.DEFAULT,
                dety_policy: str = "clamp") -> FrameTerms:
    theta = np.asarray(theta, dtype=np.float64)
    if np.any(~np.isfinite(theta)):
        raise ParameterError("effective area: frame(s) without geometry (NaN theta) in the product")
    cell = param_cells(detposr, phi, params, mode, dety_policy)
    c = np.cos(theta * _deg2rad(mode))
    alpha = params.alpha[cell].astype(np.float64)
    scale = GEOMETRIC_AREA_CM2 * np.power(c, alpha) * 0.5 * erfc(
        (theta - COLLIMATOR_HALF_DEG) / COLLIMATOR_SCALE_DEG)
    return FrameTerms(scale, 1.0 / c, cell)


def _lambdas(params: AreaParams, coef: AbsCoef, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (or per-cell) exponents: ``lam1 = mu_Be t_Be + mu_Si t_dSi + mu_SiO2 t_SiO2`` and
    ``lam2 = lam1 + mu_Si t_det`` (cm^-1 * cm), shape ``(len(cells), E)``."""
    c = np.asarray(cells)
    f = lambda col: col[c].astype(np.float64)[:, None]  # noqa: E731
    lam1 = coef.be[None, :] * f(params.be) + coef.si[None, :] * f(params.deadsi) \
        + coef.sio2[None, :] * f(params.sio2)
    return lam1, lam1 + coef.si[None, :] * f(params.detsi)


def _attenuation(inv_c: np.ndarray, lam1: np.ndarray, lam2: np.ndarray) -> np.ndarray:
    """``exp(-lam1/c) (1 - exp(-lam2' /c))`` written as ``exp(-lam1/c) - exp(-lam2/c)`` (two exps,
    no expm1): rows = frames (``lam`` rows broadcast when there is one)."""
    x = -np.asarray(inv_c, dtype=np.float64)[:, None]
    e1 = x * lam1
    np.maximum(e1, EXP_FLOOR, out=e1)  # underflowing exps take numpy's slow path (10x)
    np.exp(e1, out=e1)
    e2 = x * lam2
    np.maximum(e2, EXP_FLOOR, out=e2)
    np.exp(e2, out=e2)
    e1 -= e2
    return e1


#: Taylor sums: relative truncation bound, and the largest lambda*max|x - x0| they are used for.
TAYLOR_TOL = 1e-15
TAYLOR_MAX_LD = 1.0
TAYLOR_TIERS = (0.01, 0.05, 0.2, TAYLOR_MAX_LD)
#: exp(-(lam2 - lam1) x) below e^-40 (4e-18) is dropped against exp(-lam1 x).
DROP_EXPONENT = 40.0


def _taylor_order(t: float) -> int:
    """Smallest K with t^(K+1)/(K+1)! e^(2t) < TAYLOR_TOL (t = lambda * max|delta|)."""
    k, term = 0, t * np.exp(2 * t)
    while term >= TAYLOR_TOL and k < 60:
        k += 1
        term *= t / (k + 1)
    return k


def _subgroup_sum(x: np.ndarray, s: np.ndarray, lam1: np.ndarray, lam2: np.ndarray) -> np.ndarray:
    """``sum_i s_i (exp(-lam1 x_i) - exp(-lam2 x_i))`` for frames sharing one cell.

    Exact evaluation for small groups; otherwise ``exp(-lam x0) sum_k (-lam)^k M_k / k!`` with
    moments ``M_k = sum_i s_i (x_i - x0)^k`` (relative truncation < 1e-15) where
    ``lam max|x_i - x0| <= 1``, and the exact sum for the remaining energies. Agrees with the
    frame-by-frame sum to ~1e-14 relative.
    """
    m = x.size
    if m <= 4:
        return np.einsum("i,ij->j", s, _attenuation(x, lam1[None, :], lam2[None, :]))
    x0 = float(x.mean())
    d = x - x0
    dmax = float(np.abs(d).max())
    need2 = (lam2 - lam1) * float(x.min()) < DROP_EXPONENT
    ld = np.where(need2, lam2, lam1) * dmax  # lam2 >= lam1: bounds both series
    taylor = ld <= TAYLOR_MAX_LD
    if not taylor.any():
        return np.einsum("i,ij->j", s, _attenuation(x, lam1[None, :], lam2[None, :]))
    # energies in tiers of lam*dmax, each with the series order its bound needs
    tiers = []
    lo = -1.0
    for edge in TAYLOR_TIERS:
        sel = np.flatnonzero((ld > lo) & (ld <= edge))
        lo = edge
        if sel.size:
            tiers.append((sel, _taylor_order(float(ld[sel].max()))))
    K = max(k for _, k in tiers)
    if K + 2 >= m:
        return np.einsum("i,ij->j", s, _attenuation(x, lam1[None, :], lam2[None, :]))
    # c_k = (-1)^k M_k / k!
    powers = np.ones(m)
    coef = np.empty(K + 1)
    fact = 1.0
    for k in range(K + 1):
        if k:
            powers *= d
            fact *= k
        coef[k] = (-1) ** k * float(s @ powers) / fact
    out = np.empty(lam1.size)

    def series(lam, kmax):
        p = np.full(lam.size, coef[kmax])
        for k in range(kmax - 1, -1, -1):
            p *= lam
            p += coef[k]
        e = np.maximum(-lam * x0, EXP_FLOOR)
        np.exp(e, out=e)
        return e * p

    for t, kt in tiers:
        res = series(lam1[t], kt)
        t2 = need2[t]
        if t2.any():
            res[t2] -= series(lam2[t][t2], kt)
        out[t] = res
    rest = np.flatnonzero(~taylor)
    if rest.size:
        out[rest] = np.einsum("i,ij->j", s, _attenuation(
            x, lam1[rest][None, :], np.where(need2[rest], lam2[rest], np.inf)[None, :]))
    return out


def _area_block(terms: FrameTerms, sl: slice, params: AreaParams, coef: AbsCoef,
                mode: Mode = Mode.XSMDAS_1_2) -> np.ndarray:
    cell = terms.cell[sl]
    inv_c = terms.inv_c[sl][:, None]
    if mode != Mode.XSMDAS_1_2:
        ucell, ic = np.unique(cell, return_inverse=True)
        lam1, lam2 = _lambdas(params, coef, ucell)
        if ucell.size > 1:
            lam1, lam2 = lam1[ic], lam2[ic]
        a = _attenuation(inv_c[:, 0], lam1, lam2)
        a *= terms.scale[sl][:, None]
        return a
    tbe = params.be[cell].astype(np.float64)[:, None]
    tds = params.deadsi[cell].astype(np.float64)[:, None]
    tsio = params.sio2[cell].astype(np.float64)[:, None]
    tdet = params.detsi[cell].astype(np.float64)[:, None]
    mbe, msi, msio = coef.be[None, :], coef.si[None, :], coef.sio2[None, :]
    a = np.exp(-(mbe * tbe) * inv_c)
    a *= np.exp(-(msi * tds) * inv_c)
    a *= np.exp(-(msio * tsio) * inv_c)
    a *= 1.0 - np.exp(-(msi * tdet) * inv_c)
    a *= terms.scale[sl][:, None]
    return a


def effective_area(theta, phi, detposr, params, coef, mode: Mode = Mode.DEFAULT, *,
                   dety_policy: str = "clamp") -> np.ndarray:
    """Absolute area (cm^2, float64[N, E]) of each frame on the grid of ``coef``."""
    params = area_params(params)
    terms = frame_terms(theta, phi, detposr, params, mode, dety_policy)
    return _area_block(terms, slice(None), params, coef, mode)


def onaxis_area(params, coef) -> np.ndarray:
    """On-axis reference area A0 (cm^2) on the grid of ``coef`` (``effarea.md`` §4)."""
    params = area_params(params)
    k = onaxis_cell(params)
    tbe, tds, tsio, tdet = (float(x[k]) for x in (params.be, params.deadsi, params.sio2, params.detsi))
    return GEOMETRIC_AREA_CM2 * np.exp(-coef.be * tbe) * np.exp(-coef.si * tds) \
        * np.exp(-coef.sio2 * tsio) * (1.0 - np.exp(-coef.si * tdet))


def relative_area(theta, phi, detposr, params, coef, mode: Mode = Mode.DEFAULT, *,
                  dety_policy: str = "clamp") -> np.ndarray:
    """``A/A0`` per frame and energy (1 where ``A0 <= 1e-6`` cm^2)."""
    params = area_params(params)
    a = effective_area(theta, phi, detposr, params, coef, mode, dety_policy=dety_policy)
    a0 = onaxis_area(params, coef)
    good = a0 > ONAXIS_MIN_AREA_CM2
    a[:, good] /= a0[good]
    a[:, ~good] = 1.0
    return a


def summed_area(theta, phi, detposr, group, ngroups: int, params, coef, mode: Mode = Mode.DEFAULT,
                *, dety_policy: str = "clamp", chunk: int = 256, threads: int | None = None) -> np.ndarray:
    """Sum of the absolute area over the frames of each group (frames in order, ``group`` sorted
    non-decreasing, values 0..ngroups-1): float32 sequential sums in compat, float64 otherwise."""
    params = area_params(params)
    group = np.asarray(group, dtype=np.int64)
    terms = frame_terms(theta, phi, detposr, params, mode, dety_policy)
    n, ne = group.size, coef.energy.size
    if mode == Mode.XSMDAS_1_2:
        acc = np.zeros((ngroups, ne), dtype=np.float32)
        starts = range(0, n, chunk)

        def block(a: int) -> np.ndarray:
            return _area_block(terms, slice(a, min(a + chunk, n)), params, coef, mode)

        # the areas of the chunks on threads, a few ahead; the float32 sums in frame order (Q11)
        for a, blk in zip(starts, imap_threads(block, starts, threads)):
            accumulate_rows_f32(acc, group[a:a + blk.shape[0]], blk)
        return acc
    if np.any(np.diff(group) < 0):
        raise ParameterError("summed_area: frames must be ordered by group")
    ucells = np.unique(terms.cell)
    # energies where every frame's area underflows far below float32 (exp(-lam1/c) < e^-110),
    # from a lower bound of lam1 over the cells used
    tmin = [float(t[ucells].min()) for t in (params.be, params.deadsi, params.sio2)]
    lam1_low = coef.be * tmin[0] + coef.si * tmin[1] + coef.sio2 * tmin[2]
    live = lam1_low * terms.inv_c.min() < 110.0
    sub = AbsCoef(coef.energy[live], coef.be[live], coef.si[live], coef.sio2[live], coef.grid)
    # cells with equal thicknesses share the exponents (alpha only enters the per-frame scale)
    thick = np.stack([params.be[ucells], params.deadsi[ucells], params.sio2[ucells], params.detsi[ucells]], 1)
    _, first, cls = np.unique(thick, axis=0, return_index=True, return_inverse=True)
    lam1_all, lam2_all = _lambdas(params, sub, ucells[first])
    cell_row = cls.ravel()[np.searchsorted(ucells, terms.cell)]
    # sub-groups: frames of one output group sharing one parameter cell
    key = group * (int(cell_row.max()) + 1) + cell_row
    order = np.argsort(key, kind="stable")
    ks = key[order]
    bounds = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1], True])
    subs = [(order[a:b], int(group[order[a]]), int(cell_row[order[a]]))
            for a, b in zip(bounds[:-1], bounds[1:])]
    x_all, s_all = terms.inv_c, terms.scale
    total = np.zeros((ngroups, int(live.sum())))

    # one thread: the per-subgroup work is small numpy calls, threads only contend
    for idx, g, c in subs:
        total[g] += _subgroup_sum(x_all[idx], s_all[idx], lam1_all[c], lam2_all[c])
    full = np.zeros((ngroups, ne))
    full[:, live] = total
    return full
