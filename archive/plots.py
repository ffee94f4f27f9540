"""PNG plots of the summary pages (``archive.md`` §3.3), matplotlib without a display.

Every function takes arrays (no file is read here) and writes one PNG atomically; the Fe-55
line fit (:func:`fit_line`) is pure and returns a :class:`LineFit`.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xsm.products.fitsio import atomic_path
from xsm.products.frame import ENUM_LABELS

log = logging.getLogger(__name__)

#: Fe-55 Mn K-alpha line energy (keV) and the window fitted around it.
FE55_KEV = 5.895
FE55_WINDOW_KEV = (5.3, 6.3)
#: Gaussian sigma -> FWHM.
SIGMA_TO_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))
FIGSIZE = (7.0, 3.0)
DPI = 80
#: Filter-wheel positions (MotorIRPos, ``frame.md``).
WHEEL_LABELS = ENUM_LABELS["MotorIRPos"]


@dataclass(frozen=True)
class LineFit:
    """A Gaussian + constant fitted to a spectral line: centre and FWHM in keV, amplitude."""

    centre_kev: float
    fwhm_kev: float
    amplitude: float
    background: float
    counts: float

    @property
    def fwhm_ev(self) -> float:
        return 1000.0 * self.fwhm_kev

    def model(self, e: np.ndarray) -> np.ndarray:
        s = self.fwhm_kev / SIGMA_TO_FWHM
        return self.background + self.amplitude * np.exp(-0.5 * ((e - self.centre_kev) / s) ** 2)


def fit_line(energy, counts, *, centre: float = FE55_KEV, window: tuple[float, float] = FE55_WINDOW_KEV
             ) -> LineFit | None:
    """Fit a Gaussian + constant to ``counts`` (per channel) at ``energy`` (keV) in ``window``.

    Returns None when the window holds too few counts or the fit does not converge.
    """
    from scipy.optimize import curve_fit

    e = np.asarray(energy, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    m = (e >= window[0]) & (e <= window[1]) & np.isfinite(c)
    if m.sum() < 6 or c[m].sum() < 50:
        return None
    e, c = e[m], c[m]

    def g(x, a, mu, sig, b):
        return b + a * np.exp(-0.5 * ((x - mu) / sig) ** 2)

    p0 = (float(c.max()), float(e[np.argmax(c)]), 0.07, float(np.median(c[:3])))
    try:
        p, _cov = curve_fit(g, e, c, p0=p0, sigma=np.sqrt(np.maximum(c, 1.0)), maxfev=5000)
    except (RuntimeError, ValueError) as exc:
        log.info("line fit near %.3f keV failed: %s", centre, exc)
        return None
    a, mu, sig, b = (float(v) for v in p)
    if not (window[0] < mu < window[1]) or not (0 < abs(sig) < 1.0):
        return None
    return LineFit(mu, abs(sig) * SIGMA_TO_FWHM, a, b, float(c.sum()))


def _figure(nrows: int = 1, height: float | None = None):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    h = height or FIGSIZE[1] * nrows
    fig, axes = plt.subplots(nrows, 1, figsize=(FIGSIZE[0], h), sharex=True, squeeze=False)
    # fixed margins (tight_layout measures every tick label: slow)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.5 / h, top=1.0 - 0.35 / h, hspace=0.12)
    return fig, axes[:, 0]


def _log_y(ax) -> None:
    """Log y axis with labelled decades only."""
    from matplotlib.ticker import LogLocator, NullLocator

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10.0, numticks=6))
    ax.yaxis.set_minor_locator(NullLocator())


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path


def _hours(time: np.ndarray, t0: float) -> np.ndarray:
    return (np.asarray(time, dtype=np.float64) - t0) / 3600.0


def _break_gaps(time, values, *, min_gap_s: float = 10.0):
    """(time, values) with a NaN inserted in every gap longer than ``min_gap_s`` seconds.

    matplotlib does not draw a line through NaN, so data gaps (outside the GTI, between
    sessions) show as gaps instead of straight lines across them.
    """
    t = np.asarray(time, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.size < 2:
        return t, v
    step = np.diff(t)
    cut = np.flatnonzero(step > max(min_gap_s, 3.0 * float(np.median(step)))) + 1
    return np.insert(t, cut, np.nan), np.insert(v, cut, np.nan)


def lightcurve_png(path: str | Path, time, rate, *, t0: float, title: str, ylabel: str = "rate (counts/s)",
                   log_y: bool = True) -> Path:
    """A light curve against hours since ``t0`` (MET of the day or session start)."""
    fig, (ax,) = _figure()
    t, r = _break_gaps(time, rate)
    ax.plot(_hours(t, t0), r, lw=0.6, color="tab:blue")
    if log_y and np.any(r > 0):
        _log_y(ax)
    ax.set_xlabel("hours since start")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def spectrum_png(path: str | Path, x, counts, *, xlabel: str, title: str, fit: LineFit | None = None,
                 log_y: bool = True) -> Path:
    """A spectrum (counts per channel); with ``fit``, the fitted line and its FWHM."""
    fig, (ax,) = _figure()
    c = np.asarray(counts, dtype=np.float64)
    ax.step(np.asarray(x, dtype=np.float64), c, where="mid", lw=0.7, color="tab:red")
    if fit is not None:
        xx = np.linspace(fit.centre_kev - 4 * fit.fwhm_kev, fit.centre_kev + 4 * fit.fwhm_kev, 200)
        ax.plot(xx, fit.model(xx), color="black", lw=1.0,
                label=f"Gaussian: {fit.centre_kev:.3f} keV, FWHM {fit.fwhm_ev:.0f} eV")
        ax.legend(fontsize=8)
    if log_y and np.any(c > 0):
        _log_y(ax)
        ax.set_ylim(bottom=max(0.5, float(c[c > 0].min()) * 0.5))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("counts")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def housekeeping_png(path: str | Path, time, columns: Mapping[str, np.ndarray], *, t0: float, title: str) -> Path:
    """One panel per housekeeping column."""
    fig, axes = _figure(len(columns), height=1.6 * len(columns) + 0.6)
    for ax, (name, v) in zip(axes, columns.items()):
        t, y = _break_gaps(time, v)
        ax.plot(_hours(t, t0), y, lw=0.6)
        ax.set_ylabel(name, fontsize=8)
    axes[0].set_title(title, fontsize=10)
    axes[-1].set_xlabel("hours since start")
    return _save(fig, path)


def geometry_png(path: str | Path, time, theta, occult, wheel, *, t0: float, title: str) -> Path:
    """Sun angle theta, occultation flag and filter-wheel position."""
    fig, axes = _figure(3, height=5.4)
    h = _hours(time, t0)
    t, th = _break_gaps(time, theta)
    axes[0].plot(_hours(t, t0), th, lw=0.6)
    axes[0].set_ylabel("theta (deg)", fontsize=8)
    axes[1].step(h, np.asarray(occult, dtype=np.float64), where="post", lw=0.6, color="tab:gray")
    axes[1].set_ylabel("occulted", fontsize=8)
    axes[1].set_yticks([0, 1])
    w = np.asarray(wheel, dtype=np.float64)
    axes[2].step(h, w, where="post", lw=0.6, color="tab:green")
    axes[2].set_yticks(sorted(WHEEL_LABELS))
    axes[2].set_yticklabels([WHEEL_LABELS[k] for k in sorted(WHEEL_LABELS)], fontsize=7)
    axes[2].set_ylabel("filter wheel", fontsize=8)
    axes[2].set_xlabel("hours since start")
    axes[0].set_title(title, fontsize=10)
    return _save(fig, path)
