"""A three-day archive built end to end from level-1 files: labels, checksums, catalog,
idempotence, a CALDB change making v2 of exactly the affected day, releases, verification.

The three days are the synthetic level-1 days of the golden cases (read in place)."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from lxml import etree
from typer.testing import CliRunner

from xsm.archive import meta
from xsm.archive.build import build_day, day_dir
from xsm.archive.catalog import run_query
from xsm.archive.release import ReleaseRefused, make_release
from xsm.archive.verify import verify

DAYS = {"20200301": "calsource", "20210905": "short_quiet", "20211028": "short_flare"}
PDATE = dt.date(2026, 1, 2)
NS = {"pds": "http://pds.nasa.gov/pds4/pds/v1"}


def _caldb_v2(src: Path, dst: Path) -> Path:
    """A copy of the real CALDB plus a new GAIN file valid from 2021-10-01 (affects day 3 only)."""
    from xsm.caldb_manager.index import IndexRow, read_index, write_index

    shutil.copytree(src, dst)
    new = "CH2xsmgain20211001v01.fits"
    with fits.open(dst / "CH2xsmgain20210401v01.fits") as h:
        h["GAIN"].data["GAIN"] = h["GAIN"].data["GAIN"] * 1.002
        h.writeto(dst / new)
    idx = read_index(dst / "xsmcaldb.indx")
    row = IndexRow(cnam="GAIN", file=new, ref_time=59488.0, desc="Gain and Offset (test)")
    write_index(idx.with_rows([*idx.rows, row], caldbver="20211001"), dst / "xsmcaldb.indx")
    return dst


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel[:4].isdigit():
            out[rel] = (meta.file_hashes(p)[0], p.stat().st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def story(tmp_path_factory, golden_dir, real_caldb):
    base = tmp_path_factory.mktemp("archive")
    root = base / "archive"
    s: dict = {"root": root}
    s["v1"] = {d: build_day(root, d, level1=golden_dir / case, caldb=real_caldb, processing_date=PDATE)
               for d, case in DAYS.items()}
    s["snap1"] = _snapshot(root)
    s["rows1"] = run_query(root, "SELECT count(*) AS n FROM products").rows[0][0]
    s["rebuild"] = {d: build_day(root, d, level1=golden_dir / case, caldb=real_caldb,
                                 processing_date=PDATE + dt.timedelta(days=1))
                    for d, case in DAYS.items()}
    s["snap2"] = _snapshot(root)
    s["rows2"] = run_query(root, "SELECT count(*) AS n FROM products").rows[0][0]
    s["verify1"] = verify(root)
    s["r1"] = make_release(root, "release_001", "2020-03-01", "2021-10-31")
    caldb2 = _caldb_v2(real_caldb, base / "caldb_v2")
    s["v2"] = {d: build_day(root, d, level1=golden_dir / case, caldb=caldb2,
                            processing_date=PDATE + dt.timedelta(days=2))
               for d, case in DAYS.items()}
    s["snap3"] = _snapshot(root)
    s["verify2"] = verify(root)
    s["r2"] = make_release(root, "release_002", "2020-03-01", "2021-10-31")
    return s


def test_first_build_makes_six_products_labels_and_zip(story):
    root = story["root"]
    for d, res in story["v1"].items():
        assert res.changed and res.version == 1 and res.sun
        assert sorted(p.kind for p in res.products) == sorted(["fits", "hk", "sa", "gti", "pha", "lc"])
        dd = day_dir(root, d)
        names = sorted(p.name for p in (dd / "raw").iterdir() if "_v1_" in p.name) + \
            sorted(p.name for p in (dd / "calibrated").iterdir() if "_v1_" in p.name)
        assert names == sorted([f"ch2_xsm_{d}_v1_level1.{k}" for k in ("fits", "hk", "sa")]
                               + [f"ch2_xsm_{d}_v1_level1_{k}.xml" for k in ("fits", "hk", "sa")]) + \
            sorted([f"ch2_xsm_{d}_v1_level2.{k}" for k in ("gti", "pha", "lc")]
                   + [f"ch2_xsm_{d}_v1_level2_{k}.xml" for k in ("gti", "pha", "lc")])
        assert (dd / f"ch2_xsm_{d}_v1.zip").is_file() and (dd / f"ch2_xsm_{d}_v1.xml").is_file()
        side = json.loads((dd / f"ch2_xsm_{d}_v1_zip.json").read_text())
        assert side["ZipMd5"] == meta.file_hashes(dd / f"ch2_xsm_{d}_v1.zip")[0]


def test_every_file_labelled_valid_and_checksums_match(story):
    rep = story["verify1"]
    assert rep.ok, "\n".join(map(str, rep.problems))
    assert rep.labels == 3 * 7 and rep.files == 3 * 14
    root = story["root"]
    for lab in root.glob("20*/*/*/*/*.xml"):
        info = meta.read_label(lab)
        f = info.files[0]
        data = lab.parent / f["file_name"]
        md5, _, size = meta.file_hashes(data)
        assert (f["md5_checksum"], f["file_size"]) == (md5, size)


def test_catalog_rows_match_the_files(story):
    root = story["root"]
    rows = {r["path"]: r for r in run_query(
        root, "SELECT path, size, md5, sha256, kind, lid, vid FROM products WHERE path NOT LIKE 'releases%'").as_dicts()}
    on_disk = {p.relative_to(root).as_posix() for p in root.glob("20*/*/*/**/*")
               if p.is_file() and not p.name.endswith("_zip.json")}
    assert set(rows) == on_disk
    for rel, r in rows.items():
        md5, sha, size = meta.file_hashes(root / rel)
        assert (r["md5"], r["sha256"], r["size"]) == (md5, sha, size)
    # the day-wise table has the day's seed columns filled
    days = run_query(root, "SELECT * FROM xsmdaywisedata ORDER BY DayOfObs").as_dicts()
    assert [d["DayOfObs"] for d in days] == sorted(DAYS)
    for d in days:
        gti = root / run_query(root, f"SELECT path FROM products WHERE day = '{d['DayOfObs']}' AND kind = 'gti' "
                                     "AND current").rows[0][0]
        assert d["SunExposure"] == pytest.approx(fits.getheader(gti, 1)["EXPOSURE"])
        assert d["archivestatus"] and d["procstatus"] and d["Tstart"] < d["Tstop"]


def test_spectra_index_one_row_per_type2_spectrum(story):
    root = story["root"]
    for d in DAYS:
        pha = run_query(root, f"SELECT path FROM products WHERE day = '{d}' AND kind = 'pha' AND version = 1").rows[0][0]
        data = fits.getdata(root / pha, 1)
        idx = run_query(root, f"SELECT spec_num, exposure, counts FROM spectra WHERE path = '{pha}' "
                              "ORDER BY spec_num").rows
        assert len(idx) == len(data)
        np.testing.assert_allclose([r[1] for r in idx], data["EXPOSURE"])
        np.testing.assert_allclose([r[2] for r in idx], data["COUNTS"].sum(axis=1), rtol=1e-6)


def test_rebuild_is_a_noop(story):
    assert all(not r.changed for r in story["rebuild"].values())
    assert story["snap2"] == story["snap1"]
    assert story["rows2"] == story["rows1"]


def test_zip_is_deterministic_and_laid_out_like_isda(story):
    root = story["root"]
    d = "20210905"
    z = day_dir(root, d) / f"ch2_xsm_{d}_v1.zip"
    with zipfile.ZipFile(z) as zf:
        names = zf.namelist()
        assert names == sorted(names) and len(names) == 12
        assert all(n.startswith(f"ch2_xsm_{d}_v1/xsm/data/2021/09/05/") for n in names)
        assert {n.split("/")[-2] for n in names} == {"raw", "calibrated"}
        assert {i.date_time for i in zf.infolist()} == {(2026, 1, 2, 0, 0, 0)}
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}


def test_caldb_change_makes_v2_of_exactly_the_affected_day(story):
    root = story["root"]
    v2 = story["v2"]
    assert not v2["20200301"].changed and not v2["20210905"].changed
    res = v2["20211028"]
    assert res.changed and res.version == 2
    st = {p.kind: (p.version, p.status) for p in res.products}
    assert st == {"fits": (1, "unchanged"), "hk": (1, "unchanged"), "sa": (1, "unchanged"),
                  "gti": (1, "unchanged"), "pha": (2, "changed"), "lc": (2, "changed")}
    for p in res.products:  # the GTI uses no calibration file: it keeps its version
        if p.kind in ("pha", "lc"):
            assert "CALDB change" in p.reason and "GAIN" in p.reason
    # no earlier file changed; the new ones are v2 files beside them
    s1, s3 = story["snap1"], story["snap3"]
    assert all(s3[k] == v for k, v in s1.items())
    new = sorted(set(s3) - set(s1))
    assert new == sorted([f"2021/10/28/calibrated/ch2_xsm_20211028_v2_level2{x}" for x in
                          (".lc", ".pha", "_lc.xml", "_pha.xml")]
                         + ["2021/10/28/ch2_xsm_20211028_v2.zip", "2021/10/28/ch2_xsm_20211028_v2.xml",
                            "2021/10/28/ch2_xsm_20211028_v2_zip.json"])
    lab = etree.parse(str(root / "2021/10/28/calibrated/ch2_xsm_20211028_v2_level2_lc_xml".replace("_xml", ".xml")))
    assert lab.findtext(".//pds:Identification_Area/pds:version_id", namespaces=NS) == "2.0"
    hist = lab.findall(".//pds:Modification_Detail", namespaces=NS)
    assert [h.findtext("pds:version_id", namespaces=NS) for h in hist] == ["1.0", "2.0"]
    assert fits.getheader(root / "2021/10/28/calibrated/ch2_xsm_20211028_v2_level2.lc", 1)["FILENAME"] \
        == "ch2_xsm_20211028_v2_level2.lc"
    assert story["verify2"].ok, "\n".join(map(str, story["verify2"].problems))
    cur = run_query(root, "SELECT kind, version FROM products WHERE day = '20211028' AND current "
                          "AND kind IN ('gti', 'pha', 'lc', 'fits', 'zip') ORDER BY kind").rows
    assert cur == [("fits", 1), ("gti", 1), ("lc", 2), ("pha", 2), ("zip", 2)]
    hist = fits.getheader(root / "2021/10/28/calibrated/ch2_xsm_20211028_v2_level2.lc", 1)["HISTORY"]
    assert any("ch2_xsm_20211028_v1_level2.gti" in h for h in hist)  # names the archived GTI


def test_releases_and_release_note_list_the_changes(story):
    r1, r2 = story["r1"], story["r2"]
    assert r1.bundle_lidvid == "urn:isro:isda:ch2_cho.xsm::1.0"
    assert r2.bundle_lidvid == "urn:isro:isda:ch2_cho.xsm::1.1"
    assert all(c["kind"] == "new" for c in r1.changes) and len(r1.changes) == 3 * 7
    changed = {c["lid"].rsplit(":", 1)[1]: c for c in r2.changes}
    assert set(changed) == {"ch2_xsm_20211028_level2_pha", "ch2_xsm_20211028_level2_lc", "ch2_xsm_20211028"}
    for k in ("ch2_xsm_20211028_level2_pha", "ch2_xsm_20211028_level2_lc"):
        c = changed[k]
        assert (c["old_vid"], c["new_vid"], c["kind"]) == ("1.0", "2.0", "data")
        assert "CALDB" in c["reason"]
    assert r2.collections["calibrated"].endswith("::1.1") and r2.collections["raw"].endswith("::1.0")
    note = r2.note.read_text()
    for k in ("ch2_xsm_20211028_level2_pha", "ch2_xsm_20211028_level2_lc"):
        assert k in note
    assert "ch2_xsm_20211028_level2_gti" not in note
    assert "CALDB change" in note
    assert "20200302..20210904 (552 days): no data" in note and "20200301: no data" not in note
    # manifests: every file of the release listed with matching checksums, CRLF
    rel = r2.path
    lines = (rel / "checksums_002.md5").read_bytes().split(b"\r\n")
    assert lines[-1] == b""
    for line in lines[:-1]:
        md5, path = line.decode().split("  ", 1)
        assert meta.file_hashes(rel / path)[0] == md5
    files = {p.relative_to(rel).as_posix() for p in rel.rglob("*") if p.is_file()}
    listed = {line.decode().split("  ", 1)[1] for line in lines[:-1]}
    assert files - listed == {"checksums_002.md5", "checksums_002.sha256", "release_manifest_002.csv",
                              "changes_002.csv", "transfer_manifest_002.tab", "release_note_002.md",
                              "daywise/ch2_xsm_20200301_v1_zip.json", "daywise/ch2_xsm_20210905_v1_zip.json",
                              "daywise/ch2_xsm_20211028_v2_zip.json"}
    inv = (rel / "bundle/data_calibrated/collection_data_calibrated_inventory.csv").read_bytes()
    assert inv.count(b"\r\n") == 9 and b"ch2_xsm_20211028_level2_lc::2.0" in inv
    assert b"ch2_xsm_20211028_level2_lc::1.0" not in inv


def test_one_corrupted_byte_is_caught_and_release_refuses(story, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(story["root"], root, ignore=shutil.ignore_patterns("releases"))
    lc = root / "2021/09/05/calibrated/ch2_xsm_20210905_v1_level2.lc"
    b = bytearray(lc.read_bytes())
    b[len(b) // 2] ^= 0x01
    lc.write_bytes(bytes(b))
    rep = verify(root)
    assert not rep.ok
    rules = {(Path(p.path).name, p.rule) for p in rep.problems}
    assert ("ch2_xsm_20210905_v1_level2.lc", "fixity.md5") in rules
    assert ("ch2_xsm_20210905_v1_level2.lc", "fixity.sha256") in rules
    assert any(p.rule.startswith("label.") for p in rep.problems)  # the label's md5 no longer matches
    with pytest.raises(ReleaseRefused) as exc:
        make_release(root, "release_003", "2020-03-01", "2021-10-31", schematron=False)
    assert any("ch2_xsm_20210905_v1_level2.lc" in str(p) for p in exc.value.problems)
    assert not (root / "releases" / "release_003").exists()
    assert not any((root / "releases").glob(".release_003*"))
    from xsm.archive.cli import app

    out = CliRunner().invoke(app, ["archive", "verify", "-A", str(root), "--no-labels"])
    assert out.exit_code == 1 and "fixity.md5" in out.stdout
    out = CliRunner().invoke(app, ["archive", "release", "release_004", "--from", "2021-09-01",
                                   "--to", "2021-09-30", "-A", str(root)])
    assert out.exit_code == 1 and "refused" in out.stdout


def test_find_and_query_on_the_built_archive(story):
    from xsm.archive.query import find

    root = story["root"]
    res = find(root, product="pha")
    assert sorted((r["day"], r["version"]) for r in res.rows) == [("20200301", 1), ("20210905", 1), ("20211028", 2)]
    rates = run_query(root, "SELECT day, count(*) FROM rates GROUP BY day ORDER BY day").rows
    for d, n in rates:
        lc = run_query(root, f"SELECT path FROM products WHERE day = '{d}' AND kind = 'lc' AND current").rows[0][0]
        assert n == fits.getheader(root / lc, 1)["NAXIS2"]


def test_addspec_where_adds_the_selected_type2_rows(story, tmp_path, real_caldb):
    from xsm.archive.addspec import addspec_where
    from xsm.products.errors import ParameterError

    root = story["root"]
    out = tmp_path / "added.pha"
    res = addspec_where(root, "day = '20210905' AND exposure > 30", out, caldb=real_caldb)
    pha = root / "2021/09/05/calibrated/ch2_xsm_20210905_v1_level2.pha"
    d = fits.getdata(pha, 1)
    sel = d["EXPOSURE"] > 30
    assert res["n_spectra"] == int(sel.sum()) and res["n_files"] == 1
    added = fits.open(out)
    np.testing.assert_allclose(added[1].data["COUNTS"], d["COUNTS"][sel].sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(added[1].data["STAT_ERR"],
                               np.sqrt((d["STAT_ERR"][sel].astype(float) ** 2).sum(axis=0)), rtol=1e-5)
    h = added[1].header
    assert h["EXPOSURE"] == pytest.approx(d["EXPOSURE"][sel].sum())
    assert h["ANCRFILE"] == "added.arf" and h["RESPFILE"].endswith(".rmf")
    arf = fits.getdata(tmp_path / "added.arf", 1)["SPECRESP"]
    assert arf.shape == (3000,) and 0 < arf.max() < 0.01  # the on-axis area, cm^2
    with pytest.raises(ParameterError):
        addspec_where(root, "1 = 1; DROP TABLE products", tmp_path / "x.pha", caldb=real_caldb)
    with pytest.raises(ParameterError):
        addspec_where(root, "day = '19990101'", tmp_path / "y.pha", caldb=real_caldb)
    from xsm.archive.cli import app

    r = CliRunner().invoke(app, ["addspec", "--where", "day = '20200301'", "-o", str(tmp_path / "z.pha"),
                                 "-A", str(root), "--caldb", str(real_caldb), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_files"] == 1


def test_day_without_sun_has_no_calibrated_products(tmp_path, golden_dir, real_caldb, monkeypatch):
    from xsm.archive import build

    monkeypatch.setattr(build, "make_level2", lambda *a, **k: {})  # an empty standard GTI
    root = tmp_path / "a"
    res = build_day(root, "2021-09-05", level1=golden_dir / "short_quiet", caldb=real_caldb,
                    processing_date=PDATE)
    assert res.changed and not res.sun
    assert sorted(p.kind for p in res.products) == ["fits", "hk", "sa"]
    assert not (day_dir(root, "20210905") / "calibrated").exists() or \
        not any((day_dir(root, "20210905") / "calibrated").iterdir())
    with zipfile.ZipFile(day_dir(root, "20210905") / "ch2_xsm_20210905_v1.zip") as zf:
        assert {n.split("/")[-2] for n in zf.namelist()} == {"raw"}
    day = run_query(root, "SELECT sunstatus, SunExposure FROM xsmdaywisedata").rows[0]
    assert day == (False, 0.0)
    again = build_day(root, "2021-09-05", level1=golden_dir / "short_quiet", caldb=real_caldb)
    assert not again.changed
    assert verify(root).ok


def test_software_change_makes_a_new_version_with_its_reason(tmp_path, golden_dir, real_caldb, monkeypatch):
    from xsm.archive import build

    root = tmp_path / "a"
    v1 = build_day(root, "2021-09-05", level1=golden_dir / "short_quiet", caldb=real_caldb,
                   processing_date=PDATE)
    monkeypatch.setattr(build, "SOFTWARE_VERSION", "9.9.9")
    v2 = build_day(root, "2021-09-05", level1=golden_dir / "short_quiet", caldb=real_caldb,
                   processing_date=PDATE)
    assert v1.version == 1 and v2.changed and v2.version == 2
    got = {p.kind: (p.version, p.reason) for p in v2.products}
    for k in ("gti", "pha", "lc"):
        assert got[k][0] == 2 and "software change" in got[k][1] and "9.9.9" in got[k][1]
    assert {got[k][0] for k in ("fits", "hk", "sa")} == {1}  # the level-1 files did not change
    assert verify(root).ok


def test_relative_archive_root(tmp_path, golden_dir, real_caldb, monkeypatch):
    """A relative archive root (``xsm archive build-day ... -A arch``) builds in place."""
    from xsm.archive import build

    monkeypatch.setattr(build, "make_level2", lambda *a, **k: {})  # raw products only: fast
    monkeypatch.chdir(tmp_path)
    res = build_day("arch", "2021-09-05", level1=golden_dir / "short_quiet", caldb=real_caldb,
                    processing_date=PDATE)
    assert res.changed
    assert (tmp_path / "arch" / "2021" / "09" / "05" / "ch2_xsm_20210905_v1.zip").is_file()
    assert not (tmp_path / "arch" / "arch").exists()
    assert verify(tmp_path / "arch").ok


def test_check_zip_reads_each_member_once_and_reports_a_bad_crc(tmp_path):
    """A member whose bytes were altered fails its CRC; a good one is checked against its md5."""
    import hashlib
    import zipfile

    from xsm.archive.verify import check_zip

    z = tmp_path / "day.zip"
    good, bad = b"g" * 1000, b"b" * 1000
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("d/good.lc", good)
        zf.writestr("d/bad.lc", bad)
    data = bytearray(z.read_bytes())
    data[data.index(bad) + 10] ^= 0xFF
    z.write_bytes(bytes(data))
    rows = {"good.lc": {"md5": hashlib.md5(good).hexdigest()}, "bad.lc": {"md5": hashlib.md5(bad).hexdigest()}}
    problems = [str(p) for p in check_zip(z, rows)]
    assert len(problems) == 1 and "d/bad.lc fails its CRC" in problems[0]
