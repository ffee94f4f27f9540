"""The physical model of the simulator: a thermal solar X-ray spectrum and GOES-like flares.

Functional core, numpy only, vectorised over temperatures and times. Used by
:mod:`xsm.products.simulate` (the day simulator); nothing here knows about the instrument.

Photon spectrum [P]
-------------------
An isothermal optically thin plasma of temperature ``T`` (MK) and emission measure ``EM``
(cm⁻³) seen from 1 AU, on the 3000-bin photon grid of the response (``RSP_ENE``: 0.1-30.1 keV,
0.01 keV bins, centres 0.105 + 0.01·k):

* continuum (free-free with an approximate Gaunt factor)::

      F(E) = 8.1e-39 · EM · T_K^-1/2 · exp(-E/kT) · (E/kT)^-0.4 / E    [ph cm⁻² s⁻¹ keV⁻¹]

  (Culhane 1969 normalisation; ``(E/kT)^-0.4`` is the Gaunt factor used by the golden
  synthetic cases, ``golden/README.md``);
* line complexes (Mg, Si, S, Ar, Ca, Fe XXV 6.7 keV, Fe/Ni 8 keV): each a line at
  ``E_line`` whose equivalent width (keV) against the continuum at ``E_line`` is
  ``EW(T) = EW_max · exp(-½((log10 T_K − logT_peak)/width)²)``: the line is strongest at the
  temperature where its ion forms (table :data:`LINES`). Lines are spread by a Gaussian of
  σ = 0.012 keV (blends of the complex) on the photon grid.

With this normalisation an isothermal plasma of 15 MK and 1e49 cm⁻³ gives about 1.3e-5 W m⁻²
in the GOES 1-8 Å band, close to the observed M1 relation.

GOES class [P]
--------------
The GOES long-channel flux of a model is its energy flux in 1-8 Å (1.5498-12.398 keV) in
W m⁻², computed from the photon spectrum itself, so a requested class is met by construction:
``A1 = 1e-8``, ``B1 = 1e-7``, ``C1 = 1e-6``, ``M1 = 1e-5``, ``X1 = 1e-4`` W m⁻²
(:func:`parse_goes_class`, :func:`goes_class`).

Flare profile [P]
-----------------
GOES-like: the 1-8 Å flux of a flare rises as a half Gaussian (``rise_s`` = 1/e half-width,
minutes) and decays exponentially (``decay_s``, tens of minutes). The temperature peaks
``0.5·rise_s`` before the flux and decays faster (time scale ``0.6·decay_s``); the peak
temperature follows the class (:func:`peak_temperature`: B1 ≈ 7 MK, C1 ≈ 11, M1 ≈ 15,
X1 ≈ 19 MK). The emission measure is what makes the flux at that temperature:
``EM(t) = F(t) / goes_per_em(T(t))``, so EM peaks slightly after the flux, as observed.
The quiet/active-region Sun is one more isothermal component with a slowly varying level.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import re

import numpy as np

from xsm.products.errors import ParameterError

# ---------------------------------------------------------------- grids and constants

#: Photon energy grid of the response (keV): 3000 bins, 0.1 ... 30.1 keV.
N_PHOTON_BINS = 3000
PHOTON_EDGES = 0.1 + 0.01 * np.arange(N_PHOTON_BINS + 1)
PHOTON_LO = PHOTON_EDGES[:-1]
PHOTON_HI = PHOTON_EDGES[1:]
PHOTON_ENERGY = 0.105 + 0.01 * np.arange(N_PHOTON_BINS)
PHOTON_WIDTH = 0.01

#: Boltzmann constant, keV per MK.
K_B_KEV_PER_MK = 0.08617333262
#: keV -> J.
KEV_TO_J = 1.602176634e-16
#: Bremsstrahlung normalisation at 1 AU (ph cm⁻² s⁻¹ keV⁻¹ per cm⁻³ K^-1/2 keV⁻¹... see module doc).
BREMS_NORM = 8.1e-39
#: GOES long channel: 1-8 Å as energies (keV), hc = 12.398 keV Å.
GOES_BAND_KEV = (12.398419843 / 8.0, 12.398419843 / 1.0)

#: Line complexes: (energy keV, log10 T_peak (K), width in log10 T, EW_max keV, name).
LINES: tuple[tuple[float, float, float, float, str], ...] = (
    (1.352, 6.60, 0.30, 0.40, "Mg XI"),
    (1.470, 6.85, 0.25, 0.08, "Mg XII"),
    (1.865, 6.85, 0.30, 0.90, "Si XIII"),
    (2.006, 7.05, 0.25, 0.10, "Si XIV"),
    (2.460, 7.05, 0.30, 0.25, "S XV"),
    (3.130, 7.20, 0.25, 0.08, "Ar XVII"),
    (3.900, 7.35, 0.25, 0.12, "Ca XIX"),
    (6.700, 7.45, 0.22, 3.00, "Fe XXV"),
    (8.000, 7.55, 0.22, 0.40, "Fe/Ni K"),
)
#: Gaussian σ (keV) of each line complex on the photon grid.
LINE_SIGMA_KEV = 0.012

#: GOES class letters -> flux of class 1.0 (W m⁻²).
GOES_LETTERS = {"A": 1e-8, "B": 1e-7, "C": 1e-6, "M": 1e-5, "X": 1e-4}


def parse_goes_class(cls: str) -> float:
    """GOES 1-8 Å peak flux (W m⁻²) of a class string such as ``'M2.5'`` or ``'X1'``."""
    m = re.fullmatch(r"\s*([ABCMXabcmx])\s*(\d+(?:\.\d*)?)?\s*", str(cls))
    if not m:
        raise ParameterError(f"flare class {cls!r}: expected a letter A, B, C, M or X and a number, e.g. M2.5")
    mult = float(m.group(2)) if m.group(2) else 1.0
    if mult <= 0:
        raise ParameterError(f"flare class {cls!r}: the number must be positive")
    return GOES_LETTERS[m.group(1).upper()] * mult


def goes_class(flux) -> str | np.ndarray:
    """Class string(s) (``'M2.5'``, one decimal) of GOES 1-8 Å flux value(s) in W m⁻²."""
    f = np.atleast_1d(np.asarray(flux, dtype=np.float64))
    out = []
    for v in f:
        letter = "A"
        for L, base in GOES_LETTERS.items():
            if v >= base * 0.99995:
                letter = L
        out.append(f"{letter}{v / GOES_LETTERS[letter]:.1f}")
    return out[0] if np.ndim(flux) == 0 else np.array(out)


# ---------------------------------------------------------------- spectrum

def _line_profiles() -> np.ndarray:
    """(n_lines, 3000): unit-area Gaussian line shapes integrated over the photon bins."""
    from scipy.special import ndtr

    e = np.array([ln[0] for ln in LINES])[:, None]
    hi = ndtr((PHOTON_HI[None, :] - e) / LINE_SIGMA_KEV)
    lo = ndtr((PHOTON_LO[None, :] - e) / LINE_SIGMA_KEV)
    return hi - lo


_LINE_SHAPES = _line_profiles()
_LINE_E = np.array([ln[0] for ln in LINES])
_LINE_LOGT = np.array([ln[1] for ln in LINES])
_LINE_W = np.array([ln[2] for ln in LINES])
_LINE_EW = np.array([ln[3] for ln in LINES])


def continuum(energy, T_MK, em):
    """Free-free continuum (ph cm⁻² s⁻¹ keV⁻¹ at 1 AU) at ``energy`` (keV) for ``T_MK``, ``em``.

    Broadcasts: ``T_MK`` and ``em`` of shape (n,) with ``energy`` of shape (m,) give (n, m).
    """
    T = np.asarray(T_MK, dtype=np.float64)[..., None]
    em = np.asarray(em, dtype=np.float64)[..., None]
    kT = K_B_KEV_PER_MK * T
    x = np.asarray(energy, dtype=np.float64) / kT
    return BREMS_NORM * em / np.sqrt(T * 1e6) * np.exp(-x) * x ** -0.4 / np.asarray(energy)


def line_equivalent_widths(T_MK) -> np.ndarray:
    """Equivalent widths (keV) of the :data:`LINES` at temperature(s) ``T_MK``: shape (..., n_lines)."""
    logT = np.log10(np.asarray(T_MK, dtype=np.float64) * 1e6)[..., None]
    return _LINE_EW * np.exp(-0.5 * ((logT - _LINE_LOGT) / _LINE_W) ** 2)


def photon_spectrum(T_MK, em) -> np.ndarray:
    """Photons cm⁻² s⁻¹ per photon-grid bin (3000 bins) of isothermal plasma(s).

    ``T_MK`` and ``em`` are scalars or arrays of shape (n,); the result has shape (3000,) or
    (n, 3000). The continuum is evaluated at bin centres times the bin width (0.01 keV).
    """
    scalar = np.ndim(T_MK) == 0 and np.ndim(em) == 0
    T = np.atleast_1d(np.asarray(T_MK, dtype=np.float64))
    em = np.broadcast_to(np.atleast_1d(np.asarray(em, dtype=np.float64)), T.shape)
    cont = continuum(PHOTON_ENERGY, T, em) * PHOTON_WIDTH
    # line photon flux = EW x continuum at the line energy
    line_flux = line_equivalent_widths(T) * continuum(_LINE_E, T, em)
    out = cont + line_flux @ _LINE_SHAPES
    return out[0] if scalar else out


_GOES_WEIGHT = None


def _goes_weight() -> np.ndarray:
    """Per photon bin: keV carried per photon inside the GOES band (fractional bins at the edges)."""
    global _GOES_WEIGHT
    if _GOES_WEIGHT is None:
        lo, hi = GOES_BAND_KEV
        frac = np.clip((np.minimum(PHOTON_HI, hi) - np.maximum(PHOTON_LO, lo)) / PHOTON_WIDTH, 0, 1)
        _GOES_WEIGHT = frac * PHOTON_ENERGY
    return _GOES_WEIGHT


def goes_flux_of_spectrum(photons) -> np.ndarray:
    """GOES 1-8 Å energy flux (W m⁻²) of photon spectra (ph cm⁻² s⁻¹ per bin), shape (..., 3000)."""
    return np.asarray(photons) @ _goes_weight() * KEV_TO_J * 1e4


# A table over log T for fast per-second quantities (GOES flux and photon flux per unit EM).
_LOGT_GRID = np.linspace(5.8, 8.0, 441)
_TABLE: dict[str, np.ndarray] = {}


def _table() -> dict[str, np.ndarray]:
    if not _TABLE:
        T = 10 ** (_LOGT_GRID - 6)
        spec = photon_spectrum(T, np.ones_like(T))
        _TABLE["goes"] = goes_flux_of_spectrum(spec)
        band = (PHOTON_ENERGY >= 1.0) & (PHOTON_ENERGY < 15.0)
        _TABLE["photons_1_15"] = spec[:, band].sum(axis=1)
    return _TABLE


def _interp_log(T_MK, key: str) -> np.ndarray:
    logT = np.log10(np.asarray(T_MK, dtype=np.float64) * 1e6)
    if np.any((logT < _LOGT_GRID[0]) | (logT > _LOGT_GRID[-1])):
        raise ParameterError(f"temperature outside the model range "
                             f"{10 ** (_LOGT_GRID[0] - 6):.2f}-{10 ** (_LOGT_GRID[-1] - 6):.0f} MK")
    return np.exp(np.interp(logT, _LOGT_GRID, np.log(_table()[key])))


def goes_per_em(T_MK) -> np.ndarray:
    """GOES 1-8 Å flux (W m⁻²) per cm⁻³ of emission measure at temperature(s) ``T_MK``."""
    return _interp_log(T_MK, "goes")


def photon_rate_per_em(T_MK) -> np.ndarray:
    """Photon flux 1-15 keV (ph cm⁻² s⁻¹) per cm⁻³ of emission measure at ``T_MK``."""
    return _interp_log(T_MK, "photons_1_15")


def goes_flux(T_MK, em) -> np.ndarray:
    """GOES 1-8 Å flux (W m⁻²) of isothermal plasma(s) (table interpolation, < 1e-4 relative)."""
    return goes_per_em(T_MK) * np.asarray(em, dtype=np.float64)


def emission_measure_for_flux(T_MK, flux) -> np.ndarray:
    """Emission measure (cm⁻³) that gives GOES flux ``flux`` (W m⁻²) at temperature ``T_MK``."""
    return np.asarray(flux, dtype=np.float64) / goes_per_em(T_MK)


# ---------------------------------------------------------------- flares

def peak_temperature(peak_flux) -> np.ndarray:
    """Peak temperature (MK) of a flare of GOES peak flux ``peak_flux`` (W m⁻²) [P].

    ``T = 11 + 4·log10(F / 1e-6)``, clipped to 6 ... 30 MK (B1 ≈ 7, C1 ≈ 11, M1 ≈ 15, X1 ≈ 19,
    X10 ≈ 23 MK), close to the Feldman et al. (1996) relation.
    """
    return np.clip(11.0 + 4.0 * np.log10(np.asarray(peak_flux, dtype=np.float64) / 1e-6), 6.0, 30.0)


@dataclass(frozen=True)
class Flare:
    """One GOES-like flare: peak time (MET s), peak 1-8 Å flux (W m⁻²), rise and decay (s)."""

    t_peak: float
    peak_flux: float
    rise_s: float = 180.0
    decay_s: float = 900.0
    T_peak_MK: float | None = None

    @property
    def goes_class(self) -> str:
        return goes_class(self.peak_flux)

    @property
    def T_peak(self) -> float:
        return float(self.T_peak_MK if self.T_peak_MK is not None else peak_temperature(self.peak_flux))


def _shape(dt, rise, decay):
    """Half-Gaussian rise (1/e half-width ``rise``), exponential decay (``decay``); 1 at dt = 0."""
    dt = np.asarray(dt, dtype=np.float64)
    return np.where(dt < 0, np.exp(-((dt / rise) ** 2)), np.exp(-np.clip(dt, 0, None) / decay))


def flare_profile(t, flare: Flare, T_floor_MK: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(flux W m⁻², T MK, EM cm⁻³)`` of one flare at MET times ``t`` (vectorised).

    Far from the flare (flux below 1e-6 of the peak) the EM is 0 and T the floor.
    """
    t = np.asarray(t, dtype=np.float64)
    flux = flare.peak_flux * _shape(t - flare.t_peak, flare.rise_s, flare.decay_s)
    lead = 0.5 * flare.rise_s
    sT = _shape(t - (flare.t_peak - lead), flare.rise_s, 0.6 * flare.decay_s)
    T = T_floor_MK + (flare.T_peak - T_floor_MK) * sT ** 0.5
    flux = np.where(flux < 1e-6 * flare.peak_flux, 0.0, flux)
    em = np.where(flux > 0, flux / goes_per_em(T), 0.0)
    return flux, T, em


@dataclass
class SolarModel:
    """The Sun of a simulated span: a background (quiet/active) component and flares.

    ``bg_flux(t)`` = ``bg_flux0 · (1 + bg_amp·sin(2π (t − t0)/bg_period))``, isothermal at
    ``bg_T_MK``. Each flare is its own isothermal component (:func:`flare_profile`).
    """

    bg_flux0: float = 2e-7
    bg_T_MK: float = 3.5
    bg_amp: float = 0.05
    bg_period: float = 30000.0
    t0: float = 0.0
    flares: list[Flare] = field(default_factory=list)

    def components(self, t) -> dict[str, np.ndarray]:
        """Per-time arrays: ``bg_flux, bg_T, bg_em, fl_flux, fl_T, fl_em, goes`` (flares summed:
        ``fl_T`` is the EM-weighted temperature of the flares, ``fl_em`` their total EM)."""
        t = np.asarray(t, dtype=np.float64)
        bg_flux = self.bg_flux0 * (1 + self.bg_amp * np.sin(2 * np.pi * (t - self.t0) / self.bg_period))
        bg_T = np.full_like(t, self.bg_T_MK)
        bg_em = emission_measure_for_flux(bg_T, bg_flux)
        fl_flux = np.zeros_like(t)
        fl_em = np.zeros_like(t)
        fl_emT = np.zeros_like(t)
        for fl in self.flares:
            f, T, em = flare_profile(t, fl)
            fl_flux += f
            fl_em += em
            fl_emT += em * T
        fl_T = np.where(fl_em > 0, fl_emT / np.where(fl_em > 0, fl_em, 1), self.bg_T_MK)
        return {"bg_flux": bg_flux, "bg_T": bg_T, "bg_em": bg_em, "fl_flux": fl_flux,
                "fl_T": fl_T, "fl_em": fl_em, "goes": bg_flux + fl_flux}

    def photon_spectra(self, t) -> np.ndarray:
        """(n, 3000) photon spectra at times ``t`` (background + each flare at its own T)."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        c = self.components(t)
        out = photon_spectrum(c["bg_T"], c["bg_em"])
        for fl in self.flares:
            f, T, em = flare_profile(t, fl)
            live = em > 0
            if np.any(live):
                out[live] += photon_spectrum(T[live], em[live])
        return out


#: Profiles of a simulated day [P]: background class and temperature, number and classes of
#: small flares (drawn log-uniformly in the range), and whether there is one big flare.
PROFILES: dict[str, dict] = {
    "quiet": {"bg": (8e-9, 2.5e-8), "bg_T": (1.8, 2.5), "n_small": (0, 1), "small": (1.5e-7, 6e-7), "big": None},
    "active": {"bg": (2e-7, 6e-7), "bg_T": (3.2, 4.2), "n_small": (4, 8), "small": (1e-6, 8e-6), "big": None},
    "flare": {"bg": (3e-7, 8e-7), "bg_T": (3.5, 4.5), "n_small": (3, 6), "small": (1e-6, 6e-6), "big": "M5"},
}


def make_solar_model(profile: str, t_start: float, t_stop: float, rng: np.random.Generator, *,
                     flare_class: str | None = None, flare_peak: float | None = None) -> SolarModel:
    """A :class:`SolarModel` for ``profile`` over [t_start, t_stop) (MET), drawn with ``rng``.

    ``flare_class`` overrides the big flare's class (and makes any profile have one);
    ``flare_peak`` its peak time (default: drawn in the middle half of the span).
    """
    if profile not in PROFILES:
        raise ParameterError(f"profile {profile!r}: expected one of {', '.join(PROFILES)}")
    p = PROFILES[profile]
    span = t_stop - t_start
    bg = float(np.exp(rng.uniform(*np.log(p["bg"]))))
    bg_T = float(rng.uniform(*p["bg_T"]))
    flares: list[Flare] = []
    n_small = int(rng.integers(p["n_small"][0], p["n_small"][1] + 1))
    n_small = max(0, int(round(n_small * min(1.0, span / 86400.0))))
    for _ in range(n_small):
        flares.append(Flare(t_peak=float(rng.uniform(t_start, t_stop)),
                            peak_flux=float(np.exp(rng.uniform(*np.log(p["small"])))),
                            rise_s=float(rng.uniform(60, 300)), decay_s=float(rng.uniform(400, 1500))))
    big = flare_class or p["big"]
    if big:
        tp = flare_peak if flare_peak is not None else float(rng.uniform(t_start + 0.25 * span,
                                                                          t_start + 0.75 * span))
        rise, decay = float(rng.uniform(180, 420)), float(rng.uniform(900, 2400))
        model = SolarModel(bg_flux0=bg, bg_T_MK=bg_T, t0=t_start, flares=flares,
                           bg_period=float(rng.uniform(20000, 60000)))
        # the class is the peak of the total 1-8 A flux (GOES convention): the flare adds what
        # the background and the other flares lack at its peak
        want = parse_goes_class(big)
        others = float(model.components(np.array([tp]))["goes"][0])
        if others >= 0.5 * want:
            raise ParameterError(f"flare class {big}: too small against the {goes_class(others)} "
                                 f"level of the {profile!r} profile")
        flares.append(Flare(t_peak=tp, peak_flux=want - others, rise_s=rise, decay_s=decay,
                            T_peak_MK=float(peak_temperature(want))))
        return model
    return SolarModel(bg_flux0=bg, bg_T_MK=bg_T, t0=t_start, flares=flares,
                      bg_period=float(rng.uniform(20000, 60000)))
