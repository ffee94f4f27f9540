"""Compat mode against every golden ``xsmgenspec`` output (``golden/README.md``, ``quirks.md``).

COUNTS identical channel by channel; STAT_ERR, SYS_ERR, EXPOSURE, TSTART/TSTOP identical, except
where the reference goes through libm (area model: area-corrected counts and ARFs, compared to
1e-6 relative, a few float32 ulp); every keyword XSMDAS writes present with an equal value (DATE,
FILENAME and the machine-specific RESPFILE directory aside); the reference HISTORY block identical.
"""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from xsm.products.provenance import Mode
from xsm.products.spectrum import write_spectrum

from .helpers_l2spec import GOLDEN, all_runs, find_run, run_spectrum

RUNS = all_runs()
#: relative tolerance where the reference calls libm transcendental functions (effarea.md §5)
AREA_RTOL = 1e-6
#: keyword comparison with the golden headers: RESPFILE is the processing machine's full path (Q19)
KW = dict(ignore=("DATE", "FILENAME"), rtol=1e-13, basename=("RESPFILE",))


def _history_block(h: fits.Header) -> list[str]:
    lines = [str(x) for x in h.get("HISTORY", [])]
    start = next(i for i, s in enumerate(lines) if "XSMGENSPEC" in s)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("*" * 38))
    return lines[start:end + 1]


@pytest.mark.parametrize("case,specfile", RUNS, ids=[f"{c}-{s}" for c, s in RUNS])
def test_compat_spectrum_equals_golden(case, specfile, tmp_path, header_mismatches):
    run = find_run(case, specfile)
    spec = run_spectrum(case, run, Mode.XSMDAS_1_2)
    pha, arf = write_spectrum(spec, tmp_path / specfile,
                              arf_path=(tmp_path / run["arffile"]) if run["arffile"] != "default" else None)
    ref_path = GOLDEN / case / specfile
    with fits.open(ref_path) as r, fits.open(pha) as m:
        rd, md = r["SPECTRUM"].data, m["SPECTRUM"].data
        assert rd.columns.names == md.columns.names
        assert [c.format for c in rd.columns] == [c.format for c in md.columns]
        area = run["areascal"] == "yes"
        # counts: identical channel by channel (area-corrected ones to the libm tolerance)
        if area:
            np.testing.assert_allclose(md["COUNTS"], rd["COUNTS"], rtol=AREA_RTOL, atol=0)
            for col in ("STAT_ERR", "SYS_ERR"):
                np.testing.assert_allclose(md[col], rd[col], rtol=AREA_RTOL, atol=0)
        else:
            assert np.array_equal(md["COUNTS"], rd["COUNTS"])
            for col in ("STAT_ERR", "SYS_ERR"):
                assert np.array_equal(md[col], rd[col]), col
        for col in ("SPEC_NUM", "CHANNEL", "EXPOSURE", "TSTART", "TSTOP", "FILT_STATUS"):
            if col in rd.columns.names:
                assert np.array_equal(md[col], rd[col]), col
        assert header_mismatches(r["SPECTRUM"].header, m["SPECTRUM"].header, **KW) == []
        assert header_mismatches(r[0].header, m[0].header, **KW) == []
        assert _history_block(m["SPECTRUM"].header) == _history_block(r["SPECTRUM"].header)
        assert m["SPECTRUM"].header["PROCMODE"] == "xsmdas-1.2"
    ref_arf = GOLDEN / case / run["arffile"]
    if run["genarf"] == "yes" and run["chantype"] == "PI":
        assert arf is not None and arf.name == run["arffile"]
        with fits.open(ref_arf) as r, fits.open(arf) as m:
            rd, md = r["SPECRESP"].data, m["SPECRESP"].data
            assert rd.columns.names == md.columns.names
            assert len(rd) == len(md)
            for col in ("ENERG_LO", "ENERG_HI") + (("ARF_NUM",) if "ARF_NUM" in rd.columns.names else ()):
                assert np.array_equal(md[col], rd[col]), col
            np.testing.assert_allclose(md["SPECRESP"], rd["SPECRESP"], rtol=AREA_RTOL, atol=1e-30)  # float32 subnormals
            assert header_mismatches(r["SPECRESP"].header, m["SPECRESP"].header, **KW) == []
            assert header_mismatches(r[0].header, m[0].header, **KW) == []
            assert _history_block(m["SPECRESP"].header) == _history_block(r["SPECRESP"].header)
    else:
        assert arf is None


def test_every_golden_spectrum_is_covered():
    names = {s for _, s in RUNS}
    assert {"spec_pi_t1.pha", "spec_pi_t2_60s.pha", "spec_pha_t1.pha", "spec_pi_t1_areascal.pha",
            "spec_cal_t1.pha", "spec_pi_t1_half1.pha", "spec_pi_t1_half2.pha"} <= names
    on_disk = {(c, p.name) for c in ("short_quiet", "short_flare", "calsource")
               for p in (GOLDEN / c).glob("spec_*.pha") if p.name != "spec_added.pha"}
    assert on_disk == set(RUNS)


@pytest.mark.parametrize("specfile", ["spec_pi_t2_60s.pha", "spec_pi_t1_areascal.pha"])
def test_compat_chunks_on_threads_still_equal_golden(specfile, monkeypatch):
    """Compat chunks enter the Wichmann-Hill stream at their own first draw and run on threads;
    the float32 sums stay in frame order: small chunks on 1 or 3 threads give the golden counts."""
    from xsm.products import pi

    run = find_run("short_flare", specfile)
    with fits.open(GOLDEN / "short_flare" / specfile) as r:
        ref = np.array(r["SPECTRUM"].data["COUNTS"])
    monkeypatch.setattr(pi, "COMPAT_CHUNK_COUNTS", 100_000)   # a hundred chunks
    for threads in ("1", "3"):
        monkeypatch.setenv("XSM_THREADS", threads)
        spec = run_spectrum("short_flare", run, Mode.XSMDAS_1_2)
        got = np.asarray(spec.counts, np.float32).reshape(ref.shape)
        if run["areascal"] == "yes":
            np.testing.assert_allclose(got, ref, rtol=AREA_RTOL, atol=0)
        else:
            assert np.array_equal(got, ref)
