"""Project-wide facts every FITS product shares, whichever module writes it.

* DATE-OBS/DATE-END: the ISO ``T`` form in the default mode (valid FITS), the reference's space
  form in compat mode; ``UTCString`` columns keep the space form in both (``time.md`` §2).
* The empty primary HDU has BITPIX 16 (``level1.md`` §1), written by ``fitsio``.
* ``XSMSWVER`` in every HDU, ``PROCMODE`` in every extension, the ``XSM PROVENANCE`` HISTORY
  block in the last extension (``products.md`` §7-8).
* Every default-mode file passes fitsverify with no error (the ``fitsverify`` fixture).
* The PDS4 label of a default-mode product takes its times from the ``T`` form (ms, ``Z``).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from astropy.io import fits

from xsm.archive.meta import read_fits_info
from xsm.labels.generate import build_label
from xsm.products import addspec as A
from xsm.products import level2 as L2
from xsm.products.hk import write_hk_for
from xsm.products.level1 import read_level1, read_sa, write_level1, write_sa
from xsm.products.met import date_obs_value, met_to_utc_string, parse_time, pds4_time, utc_string_form
from xsm.products.provenance import Mode

CASE = "short_quiet"
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}$")
SPACE_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{9}$")


@pytest.fixture(scope="module")
def default_products(golden_dir: Path, real_caldb: Path, tmp_path_factory) -> dict[str, Path]:
    """Every kind of product xsm writes, made in the default mode from one golden day."""
    case = golden_dir / CASE
    out = tmp_path_factory.mktemp("consistency")
    l1 = next(case.glob("*_level1.fits"))
    day = read_level1(l1)
    files = {"fits": write_level1(day, out / l1.name)}
    files["hk"], _ = write_hk_for(files["fits"], out / l1.with_suffix(".hk").name)
    sa = next(case.glob("*_level1.sa"))
    files["sa"] = write_sa(read_sa(sa), out / sa.name, level1_header=day.header)
    _, paths = L2.standard_products(files["fits"], out, hkfile=files["hk"], safile=files["sa"],
                                    caldb=real_caldb, params=L2.StandardParams(seed=3))
    files.update(paths)
    _, spec, arf = A.addspec(case / "addspec_list.txt", out / "added.pha", mode=Mode.DEFAULT)
    files["added_pha"], files["added_arf"] = spec, arf
    return files


KINDS = ("fits", "hk", "sa", "gti", "pha", "arf", "lc", "hr", "added_pha", "added_arf")


@pytest.mark.parametrize("kind", KINDS)
def test_consistency_default_product_passes_fitsverify_strictly(default_products, kind, fitsverify):
    fitsverify(default_products[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_consistency_default_product_common_keywords(default_products, kind):
    with fits.open(default_products[kind]) as hdul:
        prim = hdul[0].header
        assert prim["BITPIX"] == 16 and prim["NAXIS"] == 0 and prim["EXTEND"] is True
        for hdu in hdul:
            assert "XSMSWVER" in hdu.header, hdu.name
        for hdu in hdul[1:]:
            h = hdu.header
            assert h["PROCMODE"] == "default", hdu.name
            for key in ("DATE-OBS", "DATE-END"):
                assert ISO_RE.match(h[key]), (hdu.name, key, h[key])
        history = [str(x) for x in hdul[-1].header.get("HISTORY", [])]
        start = history.index(f"{'*' * 14} XSM PROVENANCE {'*' * 14}")
        assert history[start + 1].startswith("software = xsm ") and history[start + 2] == "mode = default"


@pytest.fixture(scope="module")
def compat_products(golden_dir: Path, real_caldb: Path, tmp_path_factory) -> dict[str, Path]:
    """Level-1 science file and the standard level-2 products made in compat mode."""
    case = golden_dir / CASE
    out = tmp_path_factory.mktemp("consistency_compat")
    l1 = next(case.glob("*_level1.fits"))
    files = {"fits": write_level1(read_level1(l1), out / l1.name, mode=Mode.XSMDAS_1_2)}
    _, paths = L2.standard_products(files["fits"], out, hkfile=next(case.glob("*_level1.hk")),
                                    safile=next(case.glob("*_level1.sa")), caldb=real_caldb,
                                    params=L2.StandardParams(mode=Mode.XSMDAS_1_2, products=("gti", "pha", "lc")))
    files.update(paths)
    return files


@pytest.mark.parametrize("kind", ("fits", "gti", "pha", "lc"))
def test_consistency_compat_product_keeps_the_reference_date_form(compat_products, kind):
    """Compat mode: DATE-OBS/DATE-END as the reference writes them; same BITPIX, keywords, block."""
    with fits.open(compat_products[kind]) as hdul:
        assert hdul[0].header["BITPIX"] == 16 and "XSMSWVER" in hdul[0].header
        for hdu in hdul[1:]:
            assert hdu.header["PROCMODE"] == "xsmdas-1.2" and "XSMSWVER" in hdu.header
            for key in ("DATE-OBS", "DATE-END"):
                assert SPACE_RE.match(hdu.header[key]), (hdu.name, key, hdu.header[key])
        history = [str(x) for x in hdul[-1].header.get("HISTORY", [])]
        assert f"{'*' * 14} XSM PROVENANCE {'*' * 14}" in history and "mode = xsmdas-1.2" in history


def test_consistency_utcstring_column_keeps_the_space_form(default_products):
    with fits.open(default_products["fits"]) as hdul:
        utc = hdul[1].data["UTCString"][:3]
        h = hdul[1].header
    assert all(SPACE_RE.match(str(u).strip()) for u in utc)
    assert h["DATE-OBS"] == date_obs_value(str(utc[0]).strip())


@pytest.mark.parametrize("kind", ("fits", "pha", "lc"))
def test_consistency_label_times_from_the_iso_form(default_products, kind):
    label = build_label(default_products[kind]).decode()
    start = fits.getheader(default_products[kind], 1)["DATE-OBS"]
    assert f"<start_date_time>{pds4_time(start)}</start_date_time>" in label
    assert pds4_time(start) == pds4_time(start.replace("T", " "))


@pytest.mark.parametrize("kind", ("fits", "gti", "lc"))
def test_consistency_catalog_times_in_the_utcstring_form(default_products, kind):
    info = read_fits_info(default_products[kind])
    h = fits.getheader(default_products[kind], 1)
    assert SPACE_RE.match(info.date_obs) and SPACE_RE.match(info.date_end)
    assert info.date_obs == utc_string_form(h["DATE-OBS"]) and info.date_end == utc_string_form(h["DATE-END"])


def test_consistency_date_obs_value_both_modes():
    met = 146880000.66264
    space = "2021-08-28 00:00:00.662640000"
    assert met_to_utc_string(met) == space
    assert date_obs_value(met) == "2021-08-28T00:00:00.662640000"
    assert date_obs_value(met, Mode.XSMDAS_1_2) == space
    for value in (space, space.replace(" ", "T")):
        assert date_obs_value(value, Mode.DEFAULT) == space.replace(" ", "T")
        assert date_obs_value(value, Mode.XSMDAS_1_2) == space == utc_string_form(value)
        assert parse_time(value) == pytest.approx(met, abs=1e-6)
        assert pds4_time(value) == "2021-08-28T00:00:00.662Z"


def test_consistency_caldb_files_keep_bitpix_16(real_caldb, tmp_path, fitsverify):
    """CALDB index and synthetic calibration files: BITPIX 16 primaries as the official ones."""
    from xsm.caldb_manager import synthetic
    from xsm.caldb_manager.index import read_index, write_index

    written = [write_index(read_index(real_caldb / "xsmcaldb.indx"), tmp_path / "xsmcaldb.indx"),
               synthetic.write_ebounds(tmp_path / "ebounds.fits"), synthetic.write_syserr(tmp_path / "syserr.fits")]
    for path in written:
        assert fits.getheader(path, 0)["BITPIX"] == 16 == fits.getheader(real_caldb / "xsmcaldb.indx", 0)["BITPIX"]
        fitsverify(path)
