"""Publishing versions: refusals, supersession, immutability, atomicity under injected faults,
diff, history and affected intervals (``caldb.md`` §7)."""
from __future__ import annotations

import json
import math
import os
import shutil

import pytest
from astropy.io import fits

from xsm.caldb_manager import publish as P
from xsm.caldb_manager.context import calibration_context
from xsm.caldb_manager.diff import affected_days, affected_intervals, diff_versions, overlaps
from xsm.caldb_manager.index import read_index
from xsm.caldb_manager.layout import current_version, list_versions
from xsm.caldb_manager.synthetic import write_gain, write_syserr
from xsm.products.errors import ArchiveError, CertificationError, ParameterError
from xsm.products.met import mjd_to_met

GAIN_V3 = "CH2xsmgain20260301v01.fits"


def _new_gain(tmp_path, name=GAIN_V3, ref_mjd=59500.0, drift=0.002):
    return write_gain(tmp_path / name, ref_mjd, drift)


def _state(root):
    """Everything a reader sees: current version, its index rows, the selection at two times."""
    idx = read_index(root / "xsmcaldb.indx")
    sel = {t: calibration_context(float(mjd_to_met(t)), root).basenames() for t in (58000.0, 59600.0)}
    return current_version(root), idx.caldbver, idx.rows, sel


def test_publish_adds_a_version_and_supersedes(fresh_caldb, tmp_path):
    root = fresh_caldb
    # a new GAIN from MJD 59500, and a replacement SYSERR for the same validity start (57754)
    res = P.publish(root, [_new_gain(tmp_path), write_syserr(tmp_path / "CH2xsmsyserr20260301v01.fits")],
                    "20260301", note="gain drift")
    assert res.parent == "20260101"
    assert [r.file for r in res.added] == [GAIN_V3, "CH2xsmsyserr20260301v01.fits"]
    assert [r.file for r in res.superseded] == ["CH2xsmsyserr20260101v01.fits"]
    assert current_version(root) == "20260301" and list_versions(root) == ["20260101", "20260301"]
    idx = read_index(root / "xsmcaldb.indx")
    assert idx.caldbver == "20260301"
    quals = {r.file: r.qual for r in idx.rows}
    assert quals["CH2xsmsyserr20260101v01.fits"] == 5  # superseded, never deleted
    assert (root / "CH2xsmsyserr20260101v01.fits").is_file()
    # selection: the new GAIN after MJD 59500 only; the new SYSERR everywhere
    late = calibration_context(float(mjd_to_met(59600.0)), root)
    assert late.version == "20260301" and late.path("GAIN").name == GAIN_V3
    assert late.path("SYSERR").name == "CH2xsmsyserr20260301v01.fits"
    mid = calibration_context(float(mjd_to_met(59400.0)), root)
    assert mid.path("GAIN").name == "CH2xsmgain20260101v02.fits"
    # the old version is still selectable: pinning reproduces it
    old = calibration_context(float(mjd_to_met(59600.0)), root, version="20260101")
    assert old.version == "20260101" and old.path("GAIN").name == "CH2xsmgain20260101v02.fits"
    assert old.path("SYSERR").name == "CH2xsmsyserr20260101v01.fits"
    # snapshots: both index forms and a manifest with hashes
    snap = root / "versions" / "20260301"
    man = json.loads((snap / "manifest.json").read_text())
    assert man["parent"] == "20260101" and man["sequence"] == 2 and man["note"] == "gain drift"
    assert {e["file"] for e in man["files"]} >= {GAIN_V3, "CH2xsmsyserr20260101v01.fits"}
    assert all(len(e["sha256"]) == 64 for e in man["files"])
    cif = read_index(snap / "caldb.indx")
    assert cif.form == "ogip" and cif.caldbver == "20260301"
    row = next(r for r in cif.rows if r.file == GAIN_V3)
    assert row.cbd[:2] == ("TEC(0-2.28)V", "DETPOSR(0-3.4)mm") and row.vsd == "2021-10-13"
    assert P.verify(root) == []
    # published files are read-only
    assert not os.access(root / GAIN_V3, os.W_OK) or os.geteuid() == 0
    assert (os.stat(root / GAIN_V3).st_mode & 0o222) == 0


def test_publishing_the_same_file_twice_is_refused(fresh_caldb, tmp_path):
    root = fresh_caldb
    f = _new_gain(tmp_path)
    P.publish(root, [f], "v2")
    before = _state(root)
    with pytest.raises(CertificationError, match="already published"):
        P.publish(root, [f], "v3")
    # the same bytes under another name
    other = tmp_path / "CH2xsmgain20260301v09.fits"
    shutil.copyfile(f, other)
    with pytest.raises(CertificationError, match=f"byte-identical to {GAIN_V3}"):
        P.publish(root, [other], "v3")
    # a published synthetic file under a new name
    syn = tmp_path / "copy_of_ebounds.fits"
    shutil.copyfile(root / "CH2xsmebounds20260101v01.fits", syn)
    with pytest.raises(CertificationError, match="byte-identical to CH2xsmebounds20260101v01.fits"):
        P.publish(root, [syn], "v3")
    # a different file under a published name
    changed = _new_gain(tmp_path / "other", drift=0.005) if (tmp_path / "other").mkdir() is None else None
    with pytest.raises(CertificationError, match=f"a different {GAIN_V3} is already published"):
        P.publish(root, [changed], "v3")
    # an existing version name
    with pytest.raises(ParameterError, match="already published"):
        P.publish(root, [_new_gain(tmp_path, "CH2xsmgain20260302v01.fits", drift=0.003)], "v2")
    assert _state(root) == before and P.verify(root) == []


def test_a_failing_file_is_refused_with_its_reasons(fresh_caldb, tmp_path):
    root = fresh_caldb
    bad = _new_gain(tmp_path)
    with fits.open(bad, mode="update") as h:
        h["GAIN"].header["NRAD"] = 33
        h["GAIN"].header["CCLS0001"] = "XYZ"
    good = write_syserr(tmp_path / "CH2xsmsyserr20260301v01.fits")
    before = _state(root)
    with pytest.raises(CertificationError) as exc:
        P.publish(root, [good, bad], "20260301")
    msg = str(exc.value)
    assert msg.startswith("publish 20260301 refused: ")
    assert GAIN_V3 in msg and "NTEC*NRAD" in msg and "CCLS0001 = 'XYZ'" in msg
    assert "syserr" not in msg.split("refused: ", 1)[1].split(":")[0]  # only the failing file is listed
    assert _state(root) == before
    assert not (root / GAIN_V3).exists() and not (root / "CH2xsmsyserr20260301v01.fits").exists()


STEPS = ["certified", "copied-one", "copied", "snapshot-written", "snapshot"]


@pytest.mark.parametrize("step", STEPS)
def test_fault_between_steps_leaves_previous_version_intact_and_current(fresh_caldb, tmp_path, monkeypatch, step):
    root = fresh_caldb
    before = _state(root)
    files = [_new_gain(tmp_path), write_syserr(tmp_path / "CH2xsmsyserr20260301v01.fits")]

    def fault(s):
        if s == step:
            raise RuntimeError(f"injected fault at {s}")

    monkeypatch.setattr(P, "_fault", fault)
    with pytest.raises(RuntimeError, match="injected fault"):
        P.publish(root, files, "20260301")
    # readers see exactly the previous version; the CALDB is consistent
    assert _state(root) == before
    assert P.verify(root) == []
    assert list_versions(root) == ["20260101"]
    assert not any(p.name.startswith(".tmp-") for p in (root / "versions").iterdir())
    assert not (root / P.LOCK_NAME).exists()
    # the next publish (no fault) succeeds, reusing any file copied before the crash
    monkeypatch.setattr(P, "_fault", lambda s: None)
    P.publish(root, files, "20260301")
    assert current_version(root) == "20260301" and P.verify(root) == []
    assert calibration_context(float(mjd_to_met(59600.0)), root).path("GAIN").name == GAIN_V3


def test_fault_after_the_commit_point_publishes(fresh_caldb, tmp_path, monkeypatch):
    root = fresh_caldb
    monkeypatch.setattr(P, "_fault", lambda s: (_ for _ in ()).throw(RuntimeError(s)) if s == "committed" else None)
    with pytest.raises(RuntimeError):
        P.publish(root, [_new_gain(tmp_path)], "20260301")
    assert current_version(root) == "20260301" and P.verify(root) == []


def test_crash_leftovers_are_recovered(fresh_caldb, tmp_path):
    """A killed publisher leaves a stale lock, a temporary snapshot and an unindexed copy."""
    root = fresh_caldb
    (root / P.LOCK_NAME).write_text("999999999")  # no such process
    (root / "versions" / ".tmp-20260301-abc").mkdir()
    f = _new_gain(tmp_path)
    shutil.copyfile(f, root / GAIN_V3)
    assert P.verify(root) == []
    P.publish(root, [f], "20260301")
    assert current_version(root) == "20260301" and P.verify(root) == []
    assert not (root / "versions" / ".tmp-20260301-abc").exists()


def test_live_lock_refuses(fresh_caldb, tmp_path):
    (fresh_caldb / P.LOCK_NAME).write_text(str(os.getppid()))
    with pytest.raises(ArchiveError, match="another publish is in progress"):
        P.publish(fresh_caldb, [_new_gain(tmp_path)], "20260301")


def test_verify_detects_a_modified_published_file(fresh_caldb):
    p = fresh_caldb / "CH2xsmsyserr20260101v01.fits"
    os.chmod(p, 0o644)
    data = bytearray(p.read_bytes())
    data[-10] ^= 1
    p.write_bytes(bytes(data))
    assert any("changed after publishing" in x for x in P.verify(fresh_caldb))


def test_diff_history_and_affected_intervals(fresh_caldb, tmp_path):
    root = fresh_caldb
    P.publish(root, [_new_gain(tmp_path), write_syserr(tmp_path / "CH2xsmsyserr20260301v01.fits")], "20260301")
    d = diff_versions("20260101", "20260301", caldb=root)
    assert [r["file"] for r in d["added"]] == [GAIN_V3, "CH2xsmsyserr20260301v01.fits"]
    assert d["removed"] == []
    assert d["requalified"] == [{"code": "SYSERR", "file": "CH2xsmsyserr20260101v01.fits", "ref_time": 57754.0,
                                 "quality": 5, "quality_from": 0}]
    [chg] = d["files_changed"]
    assert (chg["old"], chg["new"]) == ("CH2xsmsyserr20260101v01.fits", "CH2xsmsyserr20260301v01.fits")
    assert chg["columns"] == []  # same model: identical tables
    h = P.history(root, "GAIN")
    assert [(e["file"], e["added"], e["superseded"]) for e in h] == [
        ("CH2xsmgain20260101v01.fits", "20260101", None), ("CH2xsmgain20260101v02.fits", "20260101", None),
        (GAIN_V3, "20260301", None)]
    hs = P.history(root, "SYSERR")
    assert hs[0]["superseded"] == "20260301" and hs[0]["quality"] == {"20260101": 0, "20260301": 5}

    ivs = affected_intervals("20260101", "20260301", caldb=root)
    by_code = {iv.code: iv for iv in ivs}
    assert set(by_code) == {"GAIN", "SYSERR"}
    g = by_code["GAIN"]
    assert g.start == float(mjd_to_met(59500.0)) and math.isinf(g.stop)
    assert (g.old_file, g.new_file) == ("CH2xsmgain20260101v02.fits", GAIN_V3)
    s = by_code["SYSERR"]
    assert s.start == float(mjd_to_met(57754.0)) and math.isinf(s.stop)
    assert [iv.code for iv in affected_intervals("20260101", "20260301", ["gain"], caldb=root)] == ["GAIN"]
    import datetime as dt

    days = affected_days([g], dt.date(2021, 10, 11), dt.date(2021, 10, 15))
    assert days == [dt.date(2021, 10, 13), dt.date(2021, 10, 14), dt.date(2021, 10, 15)]
    t0 = float(mjd_to_met(59500.0))
    assert overlaps(g, t0 - 10, t0 + 10) and not overlaps(g, t0 - 100, t0)
    # nothing changes between a version and itself
    assert affected_intervals("20260301", "20260301", caldb=root) == []


def test_affected_interval_bounded_by_a_later_start(fresh_caldb, tmp_path):
    """A new GAIN between two existing starts affects only [its start, the next start)."""
    root = fresh_caldb
    P.publish(root, [_new_gain(tmp_path, "CH2xsmgain20260401v01.fits", ref_mjd=58500.0)], "v2")
    [iv] = affected_intervals("20260101", "v2", caldb=root)
    assert (iv.start, iv.stop) == (float(mjd_to_met(58500.0)), float(mjd_to_met(59014.0)))
    assert (iv.old_file, iv.new_file) == ("CH2xsmgain20260101v01.fits", "CH2xsmgain20260401v01.fits")


def test_publish_onto_a_plain_release_adopts_it(real_caldb, tmp_path):
    root = tmp_path / "real"
    shutil.copytree(real_caldb, root)
    for p in root.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.chmod(root, 0o755)
    f = write_gain(tmp_path / "CH2xsmgain20211001v01.fits", 59488.0, 0.002)
    res = P.publish(root, [f], "20211001")
    assert res.parent == "20210628" and list_versions(root) == ["20210628", "20211001"]
    assert P.verify(root) == []
    old = calibration_context(float(mjd_to_met(59454.0)), root, version="20210628")
    assert old.path("GAIN").name == "CH2xsmgain20210401v01.fits"
    new = calibration_context(float(mjd_to_met(59500.0)), root)
    assert new.version == "20211001" and new.path("GAIN").name == "CH2xsmgain20211001v01.fits"
    assert set(new.missing) == {"RMF", "RSP_OPEN", "RSP_BEFT"}
    [iv] = affected_intervals("20210628", "20211001", caldb=root)
    assert iv.code == "GAIN" and iv.start == float(mjd_to_met(59488.0))


def test_pinned_context_and_manifest_checksums(fresh_caldb, tmp_path):
    from xsm.caldb_manager.context import pinned_context
    from xsm.products.errors import CalibrationError, SelectionError

    root = fresh_caldb
    t = float(mjd_to_met(59600.0))
    first = calibration_context(t, root)
    P.publish(root, [_new_gain(tmp_path)], "20260301")
    # a product made with 20260101 records its files; reprocessing pins them
    pinned = pinned_context(root, first.version, first.basenames())
    assert pinned.basenames() == first.basenames() and pinned.version == "20260101"
    assert calibration_context(t, root).path("GAIN").name == GAIN_V3
    with pytest.raises(SelectionError, match="not part of version 20260101"):
        pinned_context(root, "20260101", {"GAIN": GAIN_V3})
    with pytest.raises(SelectionError, match="is not present"):
        pinned_context(root, "20260101", {"GAIN": "nope.fits"})
    # a selected file altered after publishing is refused
    p = root / "CH2xsmebounds20260101v01.fits"
    os.chmod(p, 0o644)
    data = bytearray(p.read_bytes())
    data[-20] ^= 1
    p.write_bytes(bytes(data))
    with pytest.raises(CalibrationError, match="changed since it was published"):
        calibration_context(t, root)


def test_affected_products(fresh_caldb, tmp_path):
    from xsm.caldb_manager.diff import affected_products

    P.publish(fresh_caldb, [_new_gain(tmp_path)], "20260301")
    ivs = affected_intervals("20260101", "20260301", caldb=fresh_caldb)
    t0 = float(mjd_to_met(59500.0))
    prods = [("before", t0 - 86400, t0), ("spanning", t0 - 100, t0 + 100), ("after", t0 + 5e6, t0 + 5e6 + 60)]
    assert affected_products(ivs, prods) == [
        ("spanning", [f"GAIN: CH2xsmgain20260101v02.fits -> {GAIN_V3}"]),
        ("after", [f"GAIN: CH2xsmgain20260101v02.fits -> {GAIN_V3}"])]


def test_unreadable_version_manifest_is_an_error_not_a_skipped_check(fresh_caldb, tmp_path):
    """caldb.md §5: selected files must match the release manifest; a manifest that cannot be read
    must not silently switch that check off."""
    from xsm.products.errors import CalibrationError

    root = fresh_caldb
    P.publish(root, [_new_gain(tmp_path)], "20260301")
    man = root / "versions" / "20260301" / "manifest.json"
    os.chmod(man, 0o644)
    man.write_text("{not json")
    with pytest.raises(CalibrationError, match="manifest.json: unreadable CALDB version manifest"):
        calibration_context(float(mjd_to_met(59600.0)), root)


def test_an_unreadable_manifest_in_the_chain_stops_publish_and_removes_nothing(fresh_caldb, tmp_path):
    """A corrupt parent manifest must not end the version chain: the older versions would look
    like leftovers of an interrupted publish and be removed by the next one."""
    from xsm.caldb_manager.layout import MANIFEST_NAME, version_dir
    from xsm.products.errors import InputFormatError

    root = fresh_caldb
    P.publish(root, [_new_gain(tmp_path)], "20260301")
    old_dir = version_dir(root, "20260101")
    (old_dir / MANIFEST_NAME).write_text("{ not json")
    with pytest.raises(InputFormatError, match="20260101.*unreadable"):
        list_versions(root)
    with pytest.raises(InputFormatError, match="unreadable"):
        P.publish(root, [write_syserr(tmp_path / "CH2xsmsyserr20260401v01.fits")], "20260401")
    assert old_dir.is_dir() and current_version(root) == "20260301"
