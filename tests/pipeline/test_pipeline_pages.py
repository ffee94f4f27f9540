"""Summary pages: served read-only, opened in headless Chromium; the Fe-55 line fit."""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from pipeline_helpers import CORRUPT_SID

from xsm.archive import plots
from xsm.archive.server import make_server

CHROMIUM = "/usr/bin/chromium"
#: matplotlib's default blue (light curves) as RGB.
TAB_BLUE = (31, 119, 180)


@pytest.fixture(scope="module")
def served(http_archive):
    """``xsm serve`` of the HTTP run's archive on 127.0.0.1 (a free port), stopped afterwards."""
    srv = make_server(http_archive[0].root, "127.0.0.1", 0)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=10)


def _chromium(tmp_path, *args: str, attempts: int = 3) -> subprocess.CompletedProcess:
    """Run headless Chromium; a browser that dies at start-up (a loaded machine) is started again."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not installed (apt-get install chromium)", pytrace=False)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    for _ in range(attempts):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if r.returncode == 0 and ("--dump-dom" not in args or "</html>" in r.stdout):
            return r
    pytest.fail(f"chromium failed {attempts} times: {r.stderr[-1500:]}", pytrace=False)


def test_index_page_in_chromium_lists_the_day_sessions_and_failure(served, tmp_path, pipeline_sim):
    r = _chromium(tmp_path, "--dump-dom", f"{served}/summary/index.html")
    dom = r.stdout
    assert '<tr class="day" data-day="20240501">' in dom
    row = dom[dom.index('data-day="20240501"'):].split("</tr>", 1)[0]
    # processed, Sun, calibration (none in a 20-minute span), archived, uploaded
    flags = re.findall(r'<td class="(ok|fail|none)">', row)
    assert flags == ["ok", "ok", "fail", "ok", "ok"]
    assert '<a href="days/20240501/index.html">20240501</a>' in dom
    assert dom.count('<tr class="session">') == len(pipeline_sim.sessions)
    for s in pipeline_sim.sessions:
        assert f'href="sessions/{s.sid}_00/index.html"' in dom
    assert dom.count('<tr class="failure">') == 1 and CORRUPT_SID in dom
    assert 'href="../2024/05/01/ch2_xsm_20240501_v1.zip"' in dom


def test_day_page_screenshot_shows_the_plots(served, tmp_path):
    url = f"{served}/summary/days/20240501/index.html"
    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    imgs = [s for s in ("20240501_lc.png", "20240501_sun_spec.png", "20240501_hk.png", "20240501_geometry.png")
            if f'src="{s}"' in dom]
    assert len(imgs) == 4, dom[:2000]
    for name in imgs:  # every plot is served as a PNG
        with urllib.request.urlopen(f"{served}/summary/days/20240501/{name}") as resp:
            assert resp.headers["Content-Type"] == "image/png" and resp.read(8) == b"\x89PNG\r\n\x1a\n"
    shot = tmp_path / "day.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,1400", url)
    import matplotlib.image as mpimg

    img = (mpimg.imread(shot)[..., :3] * 255).round().astype(int)
    assert img.shape[:2] == (1400, 1000)
    blue = np.all(np.abs(img - np.array(TAB_BLUE)) <= 12, axis=-1)
    assert blue.sum() > 200  # the light curve drawn in the page (not a broken-image icon)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 100


def test_server_is_read_only_and_hides_the_catalog(served):
    with urllib.request.urlopen(f"{served}/") as r:  # redirect to the index
        assert r.geturl().endswith("/summary/index.html") and b"XSM archive summary" in r.read()
    for path in ("/archive.duckdb", "/pipeline/lock", "/summary/", "/summary",
                 "/%70ipeline/lock", "/archive%2Educkdb", "/summary/../archive.duckdb"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{served}{path}")
        assert e.value.code == 404
    req = urllib.request.Request(f"{served}/summary/index.html", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 501


def test_fe55_line_fit_recovers_centre_and_fwhm(tmp_path):
    rng = np.random.default_rng(5)
    e = 0.03 + np.arange(512) * 0.0195
    sigma = 0.150 / plots.SIGMA_TO_FWHM
    counts = rng.poisson(3.0 + 800.0 * np.exp(-0.5 * ((e - 5.895) / sigma) ** 2))
    fit = plots.fit_line(e, counts)
    assert fit.centre_kev == pytest.approx(5.895, abs=0.005)
    assert fit.fwhm_ev == pytest.approx(150.0, rel=0.05)
    assert plots.fit_line(e, np.zeros_like(counts)) is None  # no line, no fit
    p = plots.spectrum_png(tmp_path / "cal.png", e, counts, xlabel="energy (keV)", title="cal", fit=fit)
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_time_series_plots_break_at_data_gaps():
    """A gap (outside the GTI, between sessions) is drawn as a gap, not a straight line across it."""
    t = np.concatenate([np.arange(100.0), 1000.0 + np.arange(100.0)])
    tt, vv = plots._break_gaps(t, np.ones_like(t))
    assert tt.size == t.size + 1 and np.isnan(tt[100]) and np.isnan(vv[100])
    assert np.array_equal(tt[~np.isnan(tt)], t)
