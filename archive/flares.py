"""A flare list derived from the 1 s light curves, with the methods stated [P].

Detection (``DETECT_METHOD``), vectorised over a whole day:

1. the 1 s rates are averaged in 60 s bins (bins without data are gaps);
2. the background is the running 20th percentile of the binned rate over a 3 h window
   (gaps filled by interpolation for the filter only);
3. a flare is a run of at least 3 consecutive bins whose rate exceeds the background by 30 %
   *and* by 5 sigma of the binned rate (sigma = sqrt(rate * 60) / 60, the Poisson error of an
   area-uncorrected rate, a floor), runs separated by at most 2 bins are merged;
4. start and stop are the edges of the first and last bins of the run; the peak is the 1 s
   sample of highest rate inside the run; the peak rate is that rate.

Class estimate (``CLASS_METHOD``) [P]: the GOES 1-8 A flux is estimated from the peak 60 s mean
of the area-corrected 1 s rate by a power law ``F = F0 * (R / R0) ** GAMMA``, ``R0 = 1000
counts/s``, ``F0 = 1.1e-7 W m^-2``, ``GAMMA = 1.6``: a least-squares fit to the project's
simulator (:mod:`xsm.products.simulate`: quiet Sun plus a B5, C2 and M1 flare, standard light
curve), not a calibrated relation. Above ~M1 the simulated rate saturates (the filter wheel
moves in), so the estimate is a lower bound there (an M5 flare reads ~M2). Cross-check on
official data: the 2021-08-28 light curve peaks at 50 276 counts/s near 06:11 UTC, estimated M6.
The class letter follows GOES: A 1e-8, B 1e-7, C 1e-6, M 1e-5, X 1e-4 W m^-2
(:func:`xsm.products.solar.goes_class`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xsm.products.solar import goes_class, parse_goes_class

BIN_S = 60.0
BACKGROUND_WINDOW_BINS = 180
BACKGROUND_PERCENTILE = 20
REL_THRESHOLD = 0.30
SIGMA_THRESHOLD = 5.0
MIN_BINS = 3
MERGE_GAP_BINS = 2

F0 = 1.1e-7
R0 = 1000.0
GAMMA = 1.6

DETECT_METHOD = (f"60 s bins; background = running {BACKGROUND_PERCENTILE}th percentile over "
                 f"{BACKGROUND_WINDOW_BINS * BIN_S / 3600:g} h; flare = >= {MIN_BINS} bins above "
                 f"background by {REL_THRESHOLD:.0%} and {SIGMA_THRESHOLD:g} sigma")
CLASS_METHOD = (f"GOES 1-8 A flux estimate F = {F0:g} W/m2 * (peak 60 s rate / {R0:g} c/s)^{GAMMA:g}, "
                "fitted to the xsm simulator (B5-M1), lower bound above M1 "
                "[xsm project definition, uncalibrated]")


@dataclass(frozen=True)
class Flare:
    tstart: float
    tpeak: float
    tstop: float
    peak_rate: float
    background_rate: float
    peak_binned_rate: float

    @property
    def goes_flux(self) -> float:
        return rate_to_flux(self.peak_binned_rate)

    @property
    def goes_class(self) -> str:
        return flux_to_class(self.goes_flux)

    def as_row(self) -> dict:
        flux = self.goes_flux
        return {"tstart": self.tstart, "tpeak": self.tpeak, "tstop": self.tstop,
                "peak_rate": self.peak_rate, "background_rate": self.background_rate,
                "goes_flux": flux, "class": flux_to_class(flux),
                "class_rank": math.log10(flux) if flux > 0 else None,
                "class_method": CLASS_METHOD, "detect_method": DETECT_METHOD}


def rate_to_flux(rate):
    """Estimated GOES 1-8 A flux (W m^-2) of an XSM rate (``CLASS_METHOD``)."""
    r = np.maximum(np.asarray(rate, dtype=np.float64), 0.0)
    out = F0 * (r / R0) ** GAMMA
    return float(out) if np.ndim(out) == 0 else out


def flux_to_class(flux: float) -> str:
    """GOES class string (``'M2.3'``) of a 1-8 A flux in W m^-2 (``'<A1'`` below A1)."""
    if not flux or not math.isfinite(flux) or flux < 1e-8:
        return "<A1"
    return str(goes_class(flux))


def class_to_flux(text: str) -> float:
    """Lower flux limit (W m^-2) of a GOES class string such as ``M1``, ``X``, ``C5.5``."""
    return parse_goes_class(text)


def class_to_rate(text: str) -> float:
    """XSM peak 60 s rate that corresponds to a GOES class (inverse of :func:`rate_to_flux`)."""
    return R0 * (class_to_flux(text) / F0) ** (1.0 / GAMMA)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (exclusive) indices of the runs of True in ``mask``."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.diff(m.astype(np.int8))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def detect_flares(time: np.ndarray, rate: np.ndarray) -> list[Flare]:
    """Flares in one day's 1 s light curve (``DETECT_METHOD``); ``[]`` when too little data."""
    from scipy.ndimage import percentile_filter

    time = np.asarray(time, np.float64)
    rate = np.asarray(rate, np.float64)
    good = np.isfinite(time) & np.isfinite(rate)
    time, rate = time[good], rate[good]
    if time.size < MIN_BINS * BIN_S / 2:
        return []
    order = np.argsort(time, kind="stable")
    time, rate = time[order], rate[order]
    t0 = np.floor(time[0] / BIN_S) * BIN_S
    idx = ((time - t0) // BIN_S).astype(np.int64)
    nb = int(idx[-1]) + 1
    n = np.bincount(idx, minlength=nb)
    s = np.bincount(idx, weights=rate, minlength=nb)
    have = n > 0
    binned = np.full(nb, np.nan)
    binned[have] = s[have] / n[have]
    x = np.arange(nb)
    filled = np.interp(x, x[have], binned[have])
    bg = percentile_filter(filled, BACKGROUND_PERCENTILE, size=min(BACKGROUND_WINDOW_BINS, nb),
                           mode="nearest")
    sigma = np.sqrt(np.maximum(filled, 1.0) * BIN_S) / BIN_S
    above = have & (filled > bg * (1 + REL_THRESHOLD)) & (filled - bg > SIGMA_THRESHOLD * sigma)
    starts, stops = _runs(above)
    if starts.size == 0:
        return []
    # merge runs separated by short gaps
    keep = np.concatenate([[True], starts[1:] - stops[:-1] > MERGE_GAP_BINS])
    group = np.cumsum(keep) - 1
    starts = starts[keep]
    stops = np.maximum.reduceat(stops, np.flatnonzero(keep))
    del group
    long = (stops - starts) >= MIN_BINS
    starts, stops = starts[long], stops[long]
    out: list[Flare] = []
    # per-flare peak: a handful of flares a day, each a slice of the sorted arrays
    lo = np.searchsorted(idx, starts, "left")
    hi = np.searchsorted(idx, stops, "left")
    for a, b, i0, i1 in zip(starts, stops, lo, hi):
        if i1 <= i0:
            continue
        k = i0 + int(np.argmax(rate[i0:i1]))
        seg = binned[a:b]
        out.append(Flare(tstart=float(t0 + a * BIN_S), tpeak=float(time[k]),
                         tstop=float(t0 + b * BIN_S), peak_rate=float(rate[k]),
                         background_rate=float(np.median(bg[a:b])),
                         peak_binned_rate=float(np.nanmax(seg))))
    return out
