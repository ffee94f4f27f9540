"""Every product records its inputs' names and md5 in the XSM PROVENANCE block (``products.md`` §7):
level 1 from its session packages, .hk from its level-1 file, level 2 (archive build) from the
day's level-1 files, addspec from its input spectra."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from astropy.io import fits

from xsm.archive import meta
from xsm.archive.build import build_day
from xsm.archive.catalog import run_query
from xsm.products import addspec as A
from xsm.products import level0 as L0
from xsm.products.fitsio import INPUT_MD5_LINE, provenance_history
from xsm.products.hk import write_hk_for
from xsm.products.provenance import Mode, Provenance, file_md5, recorded_inputs

MD5 = "0123456789abcdef0123456789abcdef"


def recorded(path: Path, ext: int = 1) -> dict[str, str]:
    """{input name: md5} read back from a product's provenance block."""
    hist = meta.parse_history(list(fits.getheader(path, ext).get("HISTORY", [])))
    names = {m.group(1): v for k, v in hist.items() if (m := re.fullmatch(r"xsm_provenance\.input (\d+)", k))}
    return {name: hist[f"xsm_provenance.input {i} md5"] for i, name in names.items()}


def test_block_lines_fit_one_card_and_read_back():
    prov = Provenance(step="gti", mode=Mode.DEFAULT).with_input_md5(
        {"XSM01G26CHO0000100NNNN24122100000000.tar": MD5, "b.fits": MD5[::-1]})
    with recorded_inputs({"ch2_xsm_20210905_v1_level1.fits": MD5}):
        lines = provenance_history(prov)
    assert provenance_history(prov) != lines  # the scope ended
    assert all(len(s) <= 72 for s in lines)
    assert [s for s in lines if INPUT_MD5_LINE.match(s)] == [f"input {i} md5 = {d}" for i, d in
                                                            ((1, MD5), (2, MD5[::-1]), (3, MD5))]
    hdr = fits.Header()
    for s in lines:
        hdr.add_history(s)
    hist = meta.parse_history(list(hdr["HISTORY"]))
    assert hist["xsm_provenance.input 1"] == "XSM01G26CHO0000100NNNN24122100000000.tar"
    assert hist["xsm_provenance.input 3 md5"] == MD5


def test_day_build_level2_products_record_the_archived_level1_md5(tmp_path, golden_dir, real_caldb):
    root = tmp_path / "archive"
    build_day(root, "20210905", level1=golden_dir / "short_quiet", caldb=real_caldb,
              processing_date=dt.date(2026, 1, 2))
    rows = {Path(p).name: (kind, md5) for p, kind, md5 in
            run_query(root, "SELECT path, kind, md5 FROM products WHERE kind IN "
                            "('fits', 'hk', 'sa', 'gti', 'pha', 'lc')").rows}
    raw = {name: md5 for name, (kind, md5) in rows.items() if kind in ("fits", "hk", "sa")}
    assert len(raw) == 3
    cal = [p for p in (root / "2021" / "09" / "05" / "calibrated").glob("*_level2.*") if p.suffix != ".xml"]
    assert sorted(p.suffix for p in cal) == [".gti", ".lc", ".pha"]
    for p in cal:
        assert recorded(p) == raw, p.name
        assert all(file_md5(root / "2021" / "09" / "05" / "raw" / n) == d for n, d in raw.items())


def test_level1_and_hk_record_their_inputs_md5(tmp_path):
    packages = L0.write_demo_sessions(tmp_path / "l0", duration_s=400, overlap_s=50)
    res = L0.build_level1(packages, tmp_path / "l1")
    want = {p.name: file_md5(p) for p in packages}
    for d in res.days:
        assert recorded(d.fits) == want
        assert recorded(d.hk) == want
    l1 = res.days[0].fits
    hk, _n = write_hk_for(l1, tmp_path / "again.hk")
    assert recorded(hk) == {l1.name: file_md5(l1)}


def test_addspec_records_the_added_spectra_md5(tmp_path, golden_dir):
    case = golden_dir / "short_quiet"
    _added, spec, arf = A.addspec(case / "addspec_list.txt", tmp_path / "added.pha", mode=Mode.DEFAULT)
    want = {n: file_md5(case / n) for n in ("spec_pi_t1_half1.pha", "spec_pi_t1_half2.pha")}
    assert recorded(spec) == want
    assert arf is not None and recorded(arf) == want


def test_with_input_md5_is_a_copy_keeping_the_rest():
    base = Provenance(step="l1", mode=Mode.XSMDAS_1_2, inputs=("a.tar",))
    withs = base.with_input_md5({"a.tar": MD5})
    assert base.input_md5 == () and withs.input_md5 == (("a.tar", MD5),)
    assert withs.inputs == base.inputs and withs.step == base.step
