"""Static HTML summary pages (``archive.md`` §3.3): per session, per day, and the index.

Pages are made from the product files (read here, at the edge) with the PNG plots of
:mod:`xsm.archive.plots` and the HTML templates of ``xsm.templates/html`` (``string.Template``:
``base.html`` around ``product.html`` or ``index.html``). Layout under the summary root::

    index.html                              days and sessions from the catalog, failures
    days/YYYYMMDD/index.html + *.png        a day's archive products
    sessions/<SID>_<SS>/index.html + *.png  a session's three selections

Every file is written atomically; pages link with relative URLs, so the folder can be served
(``xsm serve``) or opened from disk.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from xsm.archive import plots
from xsm.products.fitsio import atomic_path
from xsm.products.provenance import SOFTWARE_VERSION

log = logging.getLogger(__name__)

#: Housekeeping columns plotted (``level1.md`` HK table).
HK_PLOT_COLUMNS = ("HVMonitor", "DetTemperature", "LV1Monitor", "SpecEvents")
#: Instrument settings shown with their distinct values (``archive.md`` §3.3).
SETTING_COLUMNS = ("LLDRefVoltage", "WindowLowerThresh", "WindowUpperThresh", "PileupRejMode", "PileupRejTime",
                   "Ch1Start", "Ch1Stop", "Ch2Start", "Ch2Stop", "Ch3Start", "Ch3Stop", "MotorControlMode")
#: At most this many points per plotted time series (every k-th row beyond).
MAX_POINTS = 6000
#: Yes/no/unknown cell classes of the status tables.
_FLAG = {True: ("ok", "yes"), False: ("fail", "no"), None: ("none", "-")}


def _template(name: str) -> Template:
    return Template(resources.files("xsm.templates").joinpath("html", name).read_text(encoding="utf-8"))


def _esc(v) -> str:
    return html.escape("" if v is None else str(v))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def render_page(path: Path, title: str, body: str, nav: str = "") -> Path:
    """Wrap ``body`` in ``base.html`` and write it to ``path``."""
    text = _template("base.html").substitute(
        title=_esc(title), body=body, nav=nav, version=_esc(SOFTWARE_VERSION),
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _write(path, text)


def _flag_cell(v) -> str:
    cls, text = _FLAG.get(None if v is None else bool(v))
    return f'<td class="{cls}">{text}</td>'


def _num(v, fmt: str = "{:.1f}") -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)


def _thin(*arrays):
    n = len(arrays[0])
    k = max(1, -(-n // MAX_POINTS))
    return tuple(np.asarray(a)[::k] for a in arrays)


# ----------------------------------------------------------------------------- readers (edges)

def read_rate(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """TIME and RATE of a light curve's first RATE extension."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as h:
        ext = next(x for x in h[1:] if x.name.startswith("RATE"))
        return np.array(ext.data["TIME"], dtype=np.float64), np.array(ext.data["RATE"], dtype=np.float64)


def read_counts(path: Path) -> tuple[np.ndarray, str, float]:
    """Counts per channel of a spectrum (type-II rows summed), CHANTYPE, total EXPOSURE."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as h:
        ext = h["SPECTRUM"]
        c = np.asarray(ext.data["COUNTS"], dtype=np.float64)
        exp = ext.data["EXPOSURE"].sum() if "EXPOSURE" in ext.columns.names else ext.header.get("EXPOSURE", 0.0)
        return (c.sum(axis=0) if c.ndim == 2 else c), str(ext.header.get("CHANTYPE", "PI")), float(exp)


@dataclass(frozen=True)
class DayTables:
    """What the pages plot from a level-1 day: HK columns, settings, filter wheel, geometry."""

    time: np.ndarray
    hk: dict[str, np.ndarray]        # HK_PLOT_COLUMNS present
    settings: dict[str, np.ndarray]  # SETTING_COLUMNS present
    wheel: np.ndarray                # MotorIRPos
    theta: np.ndarray | None = None  # deg (no .sa file: None)
    occult: np.ndarray | None = None


def read_tables(hk_path: Path, sa_path: Path | None) -> DayTables:
    """The :class:`DayTables` of a level-1 day's ``.hk`` (and ``.sa``) file."""
    from xsm.products.level1 import read_hk, read_sa

    hk = read_hk(hk_path)
    names = hk.data.dtype.names or ()
    theta = occult = None
    if sa_path is not None and Path(sa_path).is_file():
        sa = read_sa(sa_path)
        theta, occult = np.asarray(sa["Theta"], dtype=np.float64), np.asarray(sa["OccultFlag"])
    return DayTables(time=np.asarray(hk["Time"], dtype=np.float64),
                     hk={c: np.asarray(hk[c]) for c in HK_PLOT_COLUMNS if c in names},
                     settings={c: np.asarray(hk[c]) for c in SETTING_COLUMNS if c in names},
                     wheel=np.asarray(hk["MotorIRPos"]), theta=theta, occult=occult)


# ----------------------------------------------------------------------------- plots of a day

def _plots(out: Path, prefix: str, *, t0: float, lcs: Sequence[tuple[str, Path | None]],
           spectra: Sequence[tuple[str, Path | None]], hk: Path | None, sa: Path | None,
           cal: tuple[np.ndarray, np.ndarray] | None) -> tuple[list[tuple[str, str]], dict]:
    """Make the PNGs of one day (or session day); returns [(file name, caption)] and facts.

    ``lcs`` and ``spectra``: (selection label, file) pairs; the sun light curve is ``<prefix>_lc.png``.
    """
    figs: list[tuple[str, str]] = []
    facts: dict = {}
    for label, lc in lcs:
        if lc is None or not lc.is_file():
            continue
        t, r = read_rate(lc)
        if t.size:
            t, r = _thin(t, r)
            name = f"{prefix}_lc.png" if label == "sun" else f"{prefix}_{label}_lc.png"
            plots.lightcurve_png(out / name, t, r, t0=t0, title=f"{label} light curve: {lc.name}")
            figs.append((name, f"{label.capitalize()} light curve ({lc.name})"))
    for label, p in spectra:
        if p is None or not p.is_file():
            continue
        c, chantype, exp = read_counts(p)
        plots.spectrum_png(out / f"{prefix}_{label}_spec.png", np.arange(c.size), c, xlabel=f"{chantype} channel",
                           title=f"{label} spectrum: {p.name} ({exp:.0f} s)")
        figs.append((f"{prefix}_{label}_spec.png", f"{label.capitalize()} spectrum ({p.name}, {chantype})"))
    if cal is not None:
        energy, counts = cal
        fit = plots.fit_line(energy, counts)
        facts["fe55"] = fit
        m = (energy > 1.0) & (energy < 10.0)
        plots.spectrum_png(out / f"{prefix}_cal_spec.png", energy[m], counts[m], xlabel="energy (keV)",
                           title="calibration source (Fe-55)", fit=fit)
        cap = "Calibration-source spectrum"
        cap += f": Fe-55 line at {fit.centre_kev:.3f} keV, FWHM {fit.fwhm_ev:.0f} eV" if fit else " (line not fitted)"
        figs.append((f"{prefix}_cal_spec.png", cap))
    if hk is not None and hk.is_file():
        tab = read_tables(hk, sa)
        facts["settings"] = settings_summary(tab.settings, tab.wheel)
        if tab.time.size:
            th = _thin(tab.time, *tab.hk.values())
            plots.housekeeping_png(out / f"{prefix}_hk.png", th[0], dict(zip(tab.hk, th[1:])), t0=t0,
                                   title=f"housekeeping: {hk.name}")
            figs.append((f"{prefix}_hk.png", "Housekeeping"))
            if tab.theta is not None:
                tt, th_, oc, wh = _thin(tab.time, tab.theta, tab.occult, tab.wheel)
                plots.geometry_png(out / f"{prefix}_geometry.png", tt, th_, oc, wh, t0=t0,
                                   title="geometry: theta, occultation, filter wheel")
                figs.append((f"{prefix}_geometry.png", "Geometry: Sun angle theta, occultation, filter wheel"))
    return figs, facts


def settings_summary(settings: dict[str, np.ndarray], wheel: np.ndarray) -> dict[str, str]:
    """Distinct values of each instrument setting (at most 4 shown) and the filter-wheel time."""
    out = {}
    for name, v in settings.items():
        u = np.unique(v)
        out[name] = ", ".join(str(x) for x in u[:4]) + (f" (+{u.size - 4} more)" if u.size > 4 else "")
    pos, n = np.unique(np.asarray(wheel), return_counts=True)
    out["filter wheel (frames)"] = ", ".join(f"{plots.WHEEL_LABELS.get(int(p), int(p))} {c}" for p, c in zip(pos, n))
    return out


def _figures_html(figs: list[tuple[str, str]]) -> str:
    return "\n".join(f'<figure><img class="plot" src="{_esc(f)}" alt="{_esc(c)}"><figcaption>{_esc(c)}'
                     f"</figcaption></figure>" for f, c in figs)


def _info_html(info: dict) -> str:
    return "\n".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in info.items())


def _product_page(path: Path, title: str, nav: str, info: dict, figs, products: list[tuple[str, str, str]]) -> Path:
    rows = "\n".join(f'<tr><td>{_esc(s)}</td><td><a href="{_esc(href)}">{_esc(name)}</a></td></tr>'
                     for s, name, href in products)
    body = _template("product.html").substitute(info_rows=_info_html(info), figures=_figures_html(figs),
                                                product_rows=rows)
    return render_page(path, title, body, nav)


def _href(page_dir: Path, target: Path) -> str:
    return Path(os.path.relpath(target, page_dir)).as_posix()


def _load_cal(files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray] | None:
    """Summed calibration spectra (energy, counts) of ``*_cal_spectrum.npz`` files."""
    energy, total = None, None
    for f in files:
        with np.load(f) as z:
            e, c = z["energy"], z["counts"]
        if energy is None:
            energy, total = e, c.astype(np.float64)
        elif e.shape == energy.shape:
            total = total + c
    return None if energy is None else (energy, total)


def session_page(summary_dir: Path, session_dir: Path, summary: dict) -> Path:
    """The page of one session segment from its products (``pipeline/sessions/<seg>``)."""
    seg = summary["segment"]
    out = Path(summary_dir) / "sessions" / seg
    figs_all, products = [], []
    facts = {}
    for tag, prods in summary["products"].items():
        l1 = session_dir / "level1"
        l2 = session_dir / "level2" / tag
        lcs = [(s, l2 / prods[s]["lc"]) for s in ("sun", "raw") if "lc" in prods.get(s, {})]
        spectra = [(s, l2 / prods[s]["pha"]) for s in ("sun", "raw") if "pha" in prods.get(s, {})]
        cal = _load_cal(sorted(l2.glob("*_cal_spectrum.npz")))
        figs, f = _plots(out, tag, t0=float(summary["Tstart"]), lcs=lcs, spectra=spectra,
                         hk=l1 / prods["level1"]["hk"], sa=l1 / prods["level1"]["sa"], cal=cal)
        figs_all += figs
        facts.update(f)
        for k, name in prods["level1"].items():
            products.append(("level 1", name, _href(out, l1 / name)))
        for s in ("sun", "raw", "cal"):
            for k, name in prods.get(s, {}).items():
                products.append((s, name, _href(out, l2 / name)))
    st = summary.get("stats") or {}
    info = {"segment": seg, "package": summary.get("package"), "days": ", ".join(summary["days"]),
            "start (UTC)": summary["StartTime"], "stop (UTC)": summary["StopTime"],
            "exposure (s)": _num(summary["TotalExposure"]), "Sun exposure (s)": _num(summary["SunExposure"]),
            "calibration source": "yes" if summary["calstatus"] else "no",
            "records / valid": f"{st.get('n_records_total', '-')} / {st.get('n_valid', '-')}",
            "good fraction": _num(st.get("good_fraction"), "{:.5f}"),
            "bad CRC / lost sync / repaired times": f"{st.get('n_bad_crc', '-')} / {st.get('n_bad_sync', '-')} / "
                                                    f"{st.get('n_time_repaired', '-')}",
            "kernels": ", ".join(summary.get("kernels", [])) or "none"}
    if facts.get("fe55"):
        info["Fe-55 line (keV) / FWHM (eV)"] = f"{facts['fe55'].centre_kev:.3f} / {facts['fe55'].fwhm_ev:.0f}"
    info.update(facts.get("settings", {}))
    nav = '<a href="../../index.html">index</a> · ' + " · ".join(
        f'<a href="../../days/{d}/index.html">{d}</a>' for d in summary["days"])
    return _product_page(out / "index.html", f"XSM session {seg}", nav, info, figs_all, products)


def day_page(root: Path, summary_dir: Path, day: str, session_dirs: Sequence[Path] = ()) -> Path:
    """The page of one archive day from its current products in the catalog."""
    from xsm.archive.catalog import open_catalog

    root = Path(root)
    out = Path(summary_dir) / "days" / day
    with open_catalog(root) as cat:
        rows = cat.rows("SELECT kind, path, version FROM products WHERE day = ? AND source = 'built' AND current "
                        "AND kind IN ('fits', 'hk', 'sa', 'gti', 'pha', 'lc', 'zip')", [day])
        drow = cat.day(day) or {}
    cur = {r["kind"]: root / r["path"] for r in rows}
    t0 = float(drow.get("Tstart") or 0.0)
    cal = _load_cal(sorted(f for d in session_dirs for f in (Path(d) / "level2" / day).glob("*_cal_spectrum.npz")))
    figs, facts = _plots(out, day, t0=t0, lcs=[("sun", cur.get("lc"))], spectra=[("sun", cur.get("pha"))],
                         hk=cur.get("hk"), sa=cur.get("sa"), cal=cal)
    info = {"day": day, "version": drow.get("Version"), "start (UTC)": drow.get("StartTime"),
            "stop (UTC)": drow.get("StopTime"), "exposure (s)": _num(drow.get("TotalExposure")),
            "Sun exposure (s)": _num(drow.get("SunExposure")), "peak rate (c/s)": _num(drow.get("PeakRate")),
            "mean rate (c/s)": _num(drow.get("MeanRate")), "CALDB": drow.get("CaldbVer"),
            "software": drow.get("SwVersion"), "mode": drow.get("ProcMode"),
            "segments": ", ".join(drow.get("Segments") or [])}
    if facts.get("fe55"):
        info["Fe-55 line (keV) / FWHM (eV)"] = f"{facts['fe55'].centre_kev:.3f} / {facts['fe55'].fwhm_ev:.0f}"
    info.update(facts.get("settings", {}))
    products = [("raw" if k in ("fits", "hk", "sa") else "calibrated" if k != "zip" else "zip", p.name,
                 _href(out, p)) for k, p in sorted(cur.items())]
    nav = '<a href="../../index.html">index</a>'
    return _product_page(out / "index.html", f"XSM day {day[:4]}-{day[4:6]}-{day[6:]}", nav, info, figs, products)


def index_page(root: Path, summary_dir: Path) -> Path:
    """The index: every day and session of the catalog with status and links, and failures."""
    from xsm.archive.catalog import open_catalog

    root, summary_dir = Path(root), Path(summary_dir)
    with open_catalog(root) as cat:
        days = cat.rows("SELECT * FROM xsmdaywisedata ORDER BY DayOfObs")
        sess = cat.rows("SELECT * FROM xsmorbitdata ORDER BY Tstart NULLS LAST, L0File")
        fails = cat.rows("SELECT stage, item, error, log_path FROM queue WHERE state = 'failed' ORDER BY stage, item")
    day_rows = []
    for d in days:
        tag = d["DayOfObs"]
        page = summary_dir / "days" / tag / "index.html"
        link = f'<a href="days/{tag}/index.html">{tag}</a>' if page.is_file() else _esc(tag)
        zipf = d.get("ZipFile")
        zcell = f'<a href="{_esc(_href(summary_dir, root / zipf))}">{_esc(Path(zipf).name)}</a>' if zipf else "-"
        day_rows.append(f'<tr class="day" data-day="{tag}"><td>{link}</td><td>{_esc(d.get("Version"))}</td>'
                        f'{_flag_cell(d.get("procstatus"))}{_flag_cell(d.get("sunstatus"))}'
                        f'{_flag_cell(d.get("calstatus"))}{_flag_cell(d.get("archivestatus"))}'
                        f'{_flag_cell(d.get("uploadstatus"))}<td>{_num(d.get("SunExposure"))}</td>'
                        f'<td>{_num(d.get("PeakRate"))}</td><td>{zcell}</td></tr>')
    sess_rows = []
    for s in sess:
        seg = s["L0File"][:-4] if s["L0File"].endswith(".pld") else s["L0File"]
        page = summary_dir / "sessions" / seg / "index.html"
        link = f'<a href="sessions/{seg}/index.html">{_esc(seg)}</a>' if page.is_file() else _esc(seg)
        sess_rows.append(f'<tr class="session"><td>{link}</td><td>{_esc(", ".join(s.get("Days") or []))}</td>'
                         f'<td>{_esc(s.get("StartTime"))}</td><td>{_esc(s.get("StopTime"))}</td>'
                         f'<td>{_num(s.get("TotalExposure"))}</td><td>{_num(s.get("SunExposure"))}</td>'
                         f'<td>{_num(s.get("good_fraction"), "{:.5f}")}</td></tr>')
    fail_rows = [f'<tr class="failure"><td>{_esc(f["stage"])}</td><td>{_esc(f["item"])}</td>'
                 f'<td>{_esc(f["error"])}</td><td>{_esc(f["log_path"])}</td></tr>' for f in fails]
    body = _template("index.html").substitute(
        root=_esc(root), n_days=len(days), n_sessions=len(sess),
        day_rows="\n".join(day_rows) or '<tr><td colspan="10">no day yet</td></tr>',
        session_rows="\n".join(sess_rows) or '<tr><td colspan="7">no session yet</td></tr>',
        failure_rows="\n".join(fail_rows) or '<tr><td colspan="4">none</td></tr>')
    return render_page(summary_dir / "index.html", "XSM archive summary", body, '<a href="index.html">index</a>')


def regenerate(root: Path, summary_dir: Path, sessions_dir: Path) -> list[Path]:
    """Rebuild every session page found under ``sessions_dir`` and the index (no catalog change)."""
    out = []
    for s in sorted(Path(sessions_dir).glob("*/summary.json")):
        out.append(session_page(summary_dir, s.parent, json.loads(s.read_text())))
    out.append(index_page(root, summary_dir))
    return out
