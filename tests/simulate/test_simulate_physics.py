"""The simulated counts: exact bookkeeping, agreement with model x response, the flare class."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from xsm.products import effarea, frame as frm, simulate as S, solar


def test_frames_hold_the_truth_counts_exactly(sim_day):
    words = frm.spectrum_words(sim_day.frames)
    assert np.array_equal(words.sum(axis=1), sim_day.truth["Counts"])
    assert int(words.sum()) == int(sim_day.truth["Counts"].sum())
    # EventDetected = SpecEvents; coarse words = the band sums of the same frame, exactly
    f = frm.decode_fields(sim_day.frames)
    assert np.array_equal(f["EventDetected"], sim_day.truth["Counts"])
    coarse = frm.coarse_words(sim_day.frames)                       # (N, 10, 3)
    for b, (lo, hi) in enumerate(S.COARSE_BANDS):
        assert np.array_equal(coarse[:, :, b].sum(axis=1), words[:, lo:hi + 1].sum(axis=1))
        assert np.all(f[f"Ch{b + 1}Start"] == lo) and np.all(f[f"Ch{b + 1}Stop"] == hi)


def test_instrument_states(sim_day):
    tr = sim_day.truth
    f = frm.decode_fields(sim_day.frames)
    enums = frm.derive_enums(f)
    assert np.array_equal(enums["MotorIRPos"], tr["MotorIRPos"])
    assert np.array_equal(f["FrameDiscardFlag"], tr["FrameDiscard"])
    # HV switch-on: no counts while the HV is off or ramping
    off = tr["HVOn"] == 0
    assert abs(off.sum() - (S.HV_OFF_S + S.HV_RAMP_S)) <= 1 and tr["Counts"][off].sum() == 0
    # the M3 flare drives the wheel to Be and back, with 2 moving frames per move
    state = tr["State"]
    assert (state == S.STATE_BE).sum() > 60
    moving = np.flatnonzero(tr["MotorIRPos"] == frm.ENUM_INVALID)
    # to CAL and back, to Be and back
    assert moving.size == 4 * S.WHEEL_MOVE_FRAMES and np.all(tr["FrameDiscard"][moving] == 1)
    assert np.all(tr["MotorIRPos"][moving + S.WHEEL_MOVE_FRAMES] != frm.ENUM_INVALID)
    # background only while occulted or out of the field of view
    nosun = (tr["OccultFlag"] == 1) | (tr["FovFlag"] == 0)
    assert np.all(tr["ExpSun"][nosun] == 0)
    assert np.all(tr["ExpSun"][(state == S.STATE_SUN_OPEN)] > 0)


def test_calibration_source_period_shows_the_fe55_lines(sim_day):
    tr = sim_day.truth
    cal = tr["State"] == S.STATE_CAL
    assert 590 <= cal.sum() <= 602                      # one 10-min period, manual mode
    f = frm.decode_fields(sim_day.frames[cal])
    assert np.all(frm.derive_enums(f)["MotorControlMode"] == 1)
    assert np.all(tr["ExpSun"][cal] == 0)               # the Sun is blocked at CAL
    words = frm.spectrum_words(sim_day.frames[cal]).sum(axis=0)
    rate = words.sum() / cal.sum()
    assert abs(rate - (S.CAL_RATE + S.BKG_RATE + S.BKG_ULD_RATE)) < 5 * np.sqrt(rate / cal.sum()) + 0.5
    c = int(np.argmax(words[:961]))
    energy = (c + 0.5) * tr["CalGain"][cal][0] + tr["CalOffset"][cal][0]
    assert abs(energy - S.CAL_LINES_KEV[0]) < 0.03    # Mn K-alpha
    kb = int(round((S.CAL_LINES_KEV[1] - tr["CalOffset"][cal][0]) / tr["CalGain"][cal][0]))
    assert words[kb - 3:kb + 4].sum() > 0.08 * words[c - 3:c + 4].sum()   # Mn K-beta


def _model_times_response(tr, inst, rows):
    """Expected words of the given frames, computed frame by frame from the truth parameters."""
    ph = solar.photon_spectrum(tr["TBackground"][rows], tr["EMBackground"][rows])
    fl = tr["EMFlare"][rows] > 0
    if fl.any():
        ph[fl] += solar.photon_spectrum(tr["TFlare"][rows][fl], tr["EMFlare"][rows][fl])
    area = effarea.effective_area(tr["Theta"][rows], tr["Phi"][rows], tr["DetPosR"][rows],
                                  inst.area_params, inst.abscoef)
    sun = S.channel_words(S.fold(ph * area), tr["Gain"][rows], tr["Offset"][rows])
    bkg = S.channel_words((inst.bkg_density * S.MEAS_DE)[None, :].repeat(len(rows), 0),
                          tr["CalGain"][rows], tr["CalOffset"][rows]) * S.BKG_RATE
    bkg[:, frm.ULD_WORD] += S.BKG_ULD_RATE
    return sun + bkg


@pytest.mark.parametrize("hour", [0, 1])
def test_spectrum_of_an_hour_agrees_with_model_times_response(sim_day, hour, real_caldb):
    tr = sim_day.truth
    inst = S.load_instrument(float(tr["Time"][0]), real_caldb)
    sel = np.arange(hour * 3600, min((hour + 1) * 3600, tr["Time"].size))
    rows = sel[tr["State"][sel] == S.STATE_SUN_OPEN]
    assert rows.size > 300
    expected = np.zeros(frm.N_SPECTRUM_WORDS)
    for k in range(0, rows.size, 600):
        expected += _model_times_response(tr, inst, rows[k:k + 600]).sum(axis=0)
    observed = frm.spectrum_words(sim_day.frames[rows]).sum(axis=0).astype(float)
    # group channels to >= 25 expected counts
    csum = np.cumsum(expected)
    groups = np.floor(csum / 25.0).astype(np.int64)
    e = np.bincount(groups, expected)
    o = np.bincount(groups, observed)
    keep = e > 0
    chi2 = float(np.sum((o[keep] - e[keep]) ** 2 / e[keep]))
    dof = int(keep.sum()) - 1
    p = stats.chi2.sf(chi2, dof)
    assert abs(observed.sum() / expected.sum() - 1) < 5 * np.sqrt(1 / expected.sum()) + 2e-4
    assert p > 1e-3, f"chi2 = {chi2:.1f} for {dof} dof (p = {p:.2e})"


def test_flare_peak_is_the_requested_class(sim_day, flare_class):
    tr = sim_day.truth
    want = solar.parse_goes_class(flare_class)
    assert solar.goes_class(want) == "M3.0"
    # GOES convention: the class is the peak of the total 1-8 A flux
    assert sim_day.peak_class() == "M3.0"
    assert np.max(tr["GoesFlux"]) == pytest.approx(want, rel=1e-3)
    big = max(sim_day.flares, key=lambda f: f.peak_flux)
    ipk = int(np.argmax(tr["GoesFlux"]))
    assert abs(tr["Time"][ipk] - big.t_peak) < 2.0
    # and the data show it: counts around the peak agree with the expected rate of that flux
    near = np.abs(np.arange(tr["Time"].size) - ipk) <= 30
    assert tr["Counts"][near].sum() == pytest.approx(tr["ExpCounts"][near].sum(), rel=5e-3)
    # the peak is seen (Sun in view, in the open or Be position)
    assert tr["State"][ipk] in (S.STATE_SUN_OPEN, S.STATE_BE)


def test_truth_file_round_trip(sim_day, fitsverify):
    fitsverify(sim_day.truth_path)
    assert set(sim_day.truth) == set(S.TRUTH_COLUMNS)     # every column documented
    t = S.read_truth(sim_day.truth_path)
    assert np.array_equal(t["Counts"], sim_day.truth["Counts"])
    assert np.array_equal(t["FrameNo"], sim_day.truth["FrameNo"])
    from astropy.io import fits
    with fits.open(sim_day.truth_path) as h:
        assert h[0].header["NCOUNTS"] == int(sim_day.truth["Counts"].sum())
        assert h[0].header["PEAKCLAS"] == "M3.0"
        exp = h["SPECTRA"].data["EXPECTED"]
        assert exp.sum() == pytest.approx(sim_day.truth["ExpCounts"].sum(), rel=1e-9)
