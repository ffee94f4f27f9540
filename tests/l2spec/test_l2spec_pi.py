"""PHA -> PI: gain lookup, the multinomial method equals per-count dithering in distribution,
PI grid arithmetic, and reading real XSMDAS spectra/ARFs."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from scipy.stats import chisquare

from xsm.products import pi
from xsm.products.arf import arf_energy_grid, read_arf
from xsm.products.errors import CalibrationError
from xsm.products.provenance import Mode
from xsm.products.spectrum import read_spectrum
from xsm.products.wichmann_hill import WichmannHill

from .helpers_l2spec import CALDB

GRID = pi.pi_grid(fits.getdata(CALDB / "CH2xsmebounds20191214v01.fits", "EBOUNDS"))


def test_pi_grid_is_float32_arithmetic():
    assert GRID.n == 512 and GRID.emin == 0.5
    assert GRID.delta == float(np.float32(np.float32(0.533) - np.float32(0.5))) == 0.03299999237060547
    assert GRID.emax == 17.395999908447266
    assert GRID.bin_of([0.49, 0.5, 0.54, 17.4]).tolist() == [-1, 0, 1, -1]


def test_gain_lookup_rows_and_errors():
    with fits.open(CALDB / "CH2xsmgain20210401v01.fits") as h:
        sun, cal = pi.gain_table(h["GAIN"]), pi.gain_table(h["CALGAIN"], "CALGAIN")
        data = h["GAIN"].data
    assert (sun.ntec, sun.nrad, cal.nrad) == (115, 34, 1)
    cells = pi.gain_cells([0.0, 1.75, 1.75], [0.0, 0.05, 3.25], sun)
    assert cells.tolist() == [0, 87 * 34 + 0, 87 * 34 + 32]
    assert data["TEC_CURRENT"][cells[1]] == pytest.approx(1.74, abs=1e-6)
    fg = pi.frame_gain([1.75], [1.0], sun, gaincorfactor=1.01, offsetcorfactor=0.002)
    row = 87 * 34 + 10
    assert fg.gain[0] == np.float64(data["GAIN"][row]) * 1.01
    assert fg.offset[0] == np.float64(data["OFFSET"][row]) + 0.002 + pi.OFFSET_TWEAK_KEV
    assert pi.gain_cells([1.75], None, cal).tolist() == [87]
    with pytest.raises(CalibrationError, match="outside the grid"):
        pi.gain_cells([2.5], [1.0], sun)
    with pytest.raises(CalibrationError):
        pi.gain_cells([1.0], [3.5], sun)


def test_multinomial_matches_per_count_dithering():
    rng = np.random.default_rng(3)
    n9 = np.zeros((1, 481), dtype=np.int64)
    n9[0, 100] = 400_000
    n9[0, 29] = 200_000  # straddles Emin
    gain, offset = np.array([0.01631]), np.array([0.0195])
    fast = pi.pi_default(n9, gain, offset, GRID, rng)
    # per-count dithering with the reference arithmetic (compat code path, 10-bit channels)
    spec = np.zeros((1, 963), dtype=np.int64)
    spec[0, 200], spec[0, 201] = 200_000, 200_000
    spec[0, 58], spec[0, 59] = 100_000, 100_000
    slow = pi.pi_compat(spec, gain, offset, GRID, WichmannHill())
    assert fast.counts.sum() + fast.out.sum() == slow.counts.sum() + slow.out.sum() == 600_000
    k = np.flatnonzero(fast.counts[0] + slow.counts[0])
    assert k.size <= 6
    assert chisquare(fast.counts[0, k], slow.counts[0, k] * fast.counts[0, k].sum() / slow.counts[0, k].sum()
                     ).pvalue > 0.001
    assert abs(int(fast.out[0]) - int(slow.out[0])) < 5 * np.sqrt(slow.out[0] + 1)


def test_nine_bit_modes_q10():
    w = np.arange(963)[None, :] % 7
    d, c = pi.nine_bit(w, Mode.DEFAULT), pi.nine_bit(w, Mode.XSMDAS_1_2)
    assert d.shape == (1, 481) and c.shape == (1, 482)
    assert d[0, 480] == w[0, 960] and c[0, 480] == w[0, 960] + w[0, 961] and c[0, 481] == w[0, 962]


def test_arf_energy_grid():
    lo, hi = arf_energy_grid(Mode.XSMDAS_1_2)
    assert lo.dtype == np.float32 and lo.size == 3000
    assert lo[0] == np.float32(0.1) and hi[-1] == pytest.approx(30.1, abs=1e-5)
    lo2, _ = arf_energy_grid(Mode.DEFAULT)
    assert np.allclose(lo, lo2, rtol=1e-6)


def test_real_user_spectra_and_arfs_read(realdata_dir):
    d = realdata_dir / "user_spectra_202109"
    phas = sorted(d.glob("*.pha"))
    assert len(phas) == 10
    for p in phas:
        s = read_spectrum(p)
        assert s.nchan == 512 and s.chantype == "PI" and s.exposure[0] > 0
        a = read_arf(p.with_suffix(".arf"))
        assert a.specresp.shape == (1, 3000) and a.specresp.max() > 1e-4
        assert s.keywords["ANCRFILE"] == p.with_suffix(".arf").name

