"""Level 0 -> level 1 (level0.md): records, CRC, resync, sessions, ingest rules, day files."""
from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xsm.products import columns as cols
from xsm.products import frame as fr
from xsm.products import level0 as L0
from xsm.products.errors import InputFormatError, ParameterError
from xsm.products.hk import decode_hk
from xsm.products.level1 import read_hk, read_level1
from xsm.products.met import day_start_met
from xsm.products.provenance import Mode

DS = cols.DecodingStatus
T_DAY = day_start_met("2021-09-06")  # a UTC midnight


def frames_for(n, first=1):
    """Small frames with consecutive FrameNo and a 1 s clock starting at FrameNo seconds; the
    content depends only on FrameNo (the same frame in two downloads is identical)."""
    fno = first + np.arange(n, dtype=np.int64)
    spec = (fno[:, None] * 7 + np.arange(963)) % 5
    return fr.encode_frames({"FrameNo": fno, "FPGAClock": fno * 1_000_000, "SyncUW": 0xEB90, "SyncLW": 0x146F,
                             "MotorIRPos": 0, "HVMonitor": 1600}, spectrum=spec, n=n)


def met_for(n, first=1, t0=T_DAY - 1000.25):
    return t0 + (np.arange(n) + first - 1).astype(float)


def records(n, first=1, **kw):
    return L0.encode_records(frames_for(n, first), met_for(n, first), dh_seq=np.arange(n) + first, **kw)


# ----------------------------------------------------------------------------- records and CRC
def test_crc_check_value_and_zlib():
    assert L0.crc32_rows(np.frombuffer(b"123456789", np.uint8)[None])[0] == 0xCBF43926
    rows = np.random.default_rng(3).integers(0, 256, (7, 2120), dtype=np.uint8)
    np.testing.assert_array_equal(L0.crc32_rows(rows, 2108), [zlib.crc32(r[:2108].tobytes()) for r in rows])


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(0, 80))))
def test_crc_rows_equals_zlib(rows):
    for length in {0, rows.shape[1], rows.shape[1] // 2, max(rows.shape[1] - 1, 0)}:
        expect = [zlib.crc32(r[:length].tobytes()) for r in rows]
        np.testing.assert_array_equal(L0.crc32_rows(rows, length), expect)


def test_record_layout_matches_level0_md():
    rec = records(3, orbit=77, station_id=26, simulated=True)
    assert rec.shape == (3, 2120)
    assert bytes(rec[0, :4]) == b"\x1a\xcf\xfc\x1d" and bytes(rec[0, 2116:]) == b"XEND"
    assert bytes(rec[1, 20:22]) == b"XS" and rec[2, 4] == 1
    assert int.from_bytes(rec[2, 12:16].tobytes(), "big") == 2 == int.from_bytes(rec[2, 2112:2116].tobytes(), "big")
    assert rec[0, 5] == L0.FLAG_UTC_VALID | L0.FLAG_DH_VALID | L0.FLAG_SIMULATED
    for r in rec:
        assert zlib.crc32(r[:2108].tobytes()) == int.from_bytes(r[2108:2112].tobytes(), "big")
    np.testing.assert_array_equal(rec[:, 60:2108], frames_for(3))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 4_000_000_000_000_000), st.booleans(), st.integers(1, 4))
def test_record_round_trip_time_and_ist(ns, ist, n):
    utc_ns = ns + np.arange(n) * 1_000_000_000
    rec = L0.encode_records(frames_for(n), utc_ns=utc_ns, ist=ist, dh_time_us=utc_ns // 1000 + 7)
    b = L0.XsmL0V1Decoder().decode(rec.reshape(-1), "x.pld")
    np.testing.assert_array_equal(b.utc_ns, utc_ns)
    np.testing.assert_array_equal(b.ist, ist)
    np.testing.assert_array_equal(b.frames, frames_for(n))
    np.testing.assert_array_equal(b.dh_time_us, utc_ns // 1000 + 7)
    assert np.all(np.abs(b.met - utc_ns / 1e9) < 1e-6)


# ----------------------------------------------------------------------------- .pld and resync
def decode(buf):
    return L0.XsmL0V1Decoder().decode(np.asarray(buf, np.uint8).reshape(-1), "x.pld")


def frame_numbers(batch):
    return set(int(v) for v in fr.decode_fields(batch.frames)["FrameNo"])


def test_corrupted_records_skipped_and_counted_by_reason():
    n = 40
    rec = records(n)
    rec[3, 500] ^= 0x10  # bad CRC
    rec[7, 2117] ^= 1  # bad END_MARK -> corrupt (n_bad_crc)
    bad_hdr = records(1, first=9)
    bad_hdr[0, 4] = 2  # FMT_VERSION 2 with a correct CRC
    bad_hdr[0, 2108:2112] = np.frombuffer(zlib.crc32(bad_hdr[0, :2108].tobytes()).to_bytes(4, "big"), np.uint8)
    rec[8] = bad_hdr[0]
    no_time = records(1, first=12, utc_valid=False)
    rec[11] = no_time[0]
    buf = rec.reshape(-1)
    rng = np.random.default_rng(5)
    garbage = rng.integers(0, 256, 777, dtype=np.uint8)
    garbage[garbage == 0x1A] = 0
    buf = np.concatenate([buf[: 20 * 2120], garbage, buf[20 * 2120:]])  # 777 bytes between records 19 and 20
    cut = 25 * 2120 + 777 + 1000
    buf = np.concatenate([buf[:cut], buf[cut + 64:]])  # record 25 loses 64 bytes
    buf = buf[:-500]  # the last record is truncated
    b = decode(buf)
    s = b.stats
    assert s["n_bad_crc"] == 3  # 3, 7 and the shortened 25
    assert s["n_bad_header"] == 1
    assert s["n_truncated"] == 1
    assert s["n_bytes_skipped"] == 777
    assert s["n_bad_sync"] == 2
    assert s["n_records_total"] == n
    assert s["n_valid"] == n - 3 - 1 - 1
    got = frame_numbers(b)
    assert got == set(range(1, n + 1)) - {4, 8, 9, 26, 40}
    assert (~b.utc_valid).sum() == 1  # record 11 is valid but has no time (dropped at ingest)
    assert s["good_fraction"] == pytest.approx(s["n_valid"] / n)


def test_leading_garbage_and_invalid_calendar():
    rec = records(5)
    rec[2, 34] = 13  # month 13
    rec[2, 2108:2112] = np.frombuffer(zlib.crc32(rec[2, :2108].tobytes()).to_bytes(4, "big"), np.uint8)
    buf = np.concatenate([np.full(100, 7, np.uint8), rec.reshape(-1)])
    b = decode(buf)
    assert b.stats["n_bytes_skipped"] == 100 and b.stats["n_bad_utc"] == 1 and len(b) == 4


def test_foreign_file_is_an_error():
    with pytest.raises(InputFormatError):
        decode(np.frombuffer(b"SIMPLE  =   T" * 400, np.uint8))


# ----------------------------------------------------------------------------- repair rule
@pytest.mark.parametrize("t_in, t_out", [
    ([100.1, 101.1, 103.1, 103.1], [100.1, 101.1, 102.1, 103.1]),
    ([100.1, 100.1, 101.1, 102.1], [99.1, 100.1, 101.1, 102.1]),
    ([100.1, 101.1, 102.1, 103.1], [100.1, 101.1, 102.1, 103.1]),
])
def test_time_tag_repair_vectors(t_in, t_out):
    t, changed = L0.repair_time_tags(np.array(t_in), np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(t, t_out, atol=1e-9)
    assert changed.sum() == (t_in != t_out)


def _repair_reference(t, x):
    """Literal transcription of level0.md §4.1 (a per-element loop, for the property test)."""
    t = list(t)

    def R(v):
        return int(np.sign(v) * np.floor(abs(v) + 0.5))

    for i in range(len(t) - 2):
        td1, xd1 = R(t[i + 1] - t[i]), R(x[i + 1] - x[i])
        td2, xd2 = R(t[i + 2] - t[i + 1]), R(x[i + 2] - x[i + 1])
        if td1 != xd1 and xd1 > 0 and xd2 > 0 and x[i] != 0:
            if td2 != xd2:
                t[i + 1] = t[i + 2] - xd2
            elif td1 == 0:
                t[i] = t[i + 1] - xd1
    return np.array(t)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([-1, 0, 0, 0, 0, 0, 1, 2]), min_size=3, max_size=30), st.data())
def test_repair_equals_literal_rule(jumps, data):
    n = len(jumps)
    x = 1.0 + np.cumsum(data.draw(st.lists(st.sampled_from([1.0, 1.0, 1.0, 2.0, 0.0]), min_size=n, max_size=n)))
    t = 1000.3 + (x - x[0]) + np.cumsum(jumps)
    got, _ = L0.repair_time_tags(t, x)
    np.testing.assert_allclose(got, _repair_reference(t, x), atol=1e-9)


# ----------------------------------------------------------------------------- sessions and ingest
def session(tmp, n, first, *, station="G26", ist=False, gzip=False, frames=None, kernels=True, t_shift=0.0):
    f = frames_for(n, first) if frames is None else frames
    met = met_for(n, first) + t_shift
    rec = L0.encode_records(f, met, dh_seq=np.arange(n) + first, dh_time_us=L0.met_to_ns(met_for(n, first)) // 1000,
                            ist=ist)
    kern = {0: {"spk": b"spk", "ck": b"ck", "sclk": b"sclk"}} if kernels else None
    return L0.write_session(tmp, L0.session_id(met[0], station=station), [rec], kern, gzip=gzip)


def all_frame_numbers(result):
    out = []
    for d in result.days:
        out += list(read_level1(d.fits).frame_number)
    return out


def test_overlapping_sessions_merge_without_duplicate_or_loss(tmp_path, fitsverify):
    a = session(tmp_path / "in", 700, 1)
    b = session(tmp_path / "in", 700, 501, station="D18", ist=True, gzip=True)  # 200 frames overlap
    res = L0.build_level1([a, b], tmp_path / "out")
    got = all_frame_numbers(res)
    assert sorted(got) == list(range(1, 1201)) and len(got) == len(set(got))
    assert res.totals["n_duplicates"] == 200 and res.totals["n_dup_conflicts"] == 0
    day = read_level1(res.days[0].fits)
    dup = (day.status & DS.DUPLICATE) != 0
    assert dup.sum() == 200
    # the kept copies of the overlap come from the most recent session (IST tags, bit 6)
    assert np.all((day.status[dup] & DS.IST_CONVERTED) != 0)
    for d in res.days:
        fitsverify(d.fits)
        fitsverify(d.hk)


def test_conflicting_copies_keep_most_recent_session(tmp_path):
    f2 = frames_for(100, 51)
    f2[10, 1000] ^= 0xFF  # frame 61 differs between the downloads
    a = session(tmp_path, 100, 1)
    b = session(tmp_path, 100, 51, station="D18", frames=f2)
    res = L0.build_level1([a, b], tmp_path / "out")
    day = read_level1(res.days[0].fits)
    i = int(np.flatnonzero(day.frame_number == 61)[0])
    assert day.data[i, 1000] == f2[10, 1000]
    assert day.status[i] & DS.DUP_CONFLICT
    assert res.totals["n_dup_conflicts"] == 1 and res.totals["n_duplicates"] == 49
    assert len(day) == 150


def test_session_across_midnight_splits_in_two_days(tmp_path, fitsverify):
    p = session(tmp_path, 2000, 1)  # t0 = midnight - 1000.25 s
    res = L0.build_level1([p], tmp_path / "out")
    assert [d.date for d in res.days] == ["20210905", "20210906"]
    d1, d2 = (read_level1(d.fits) for d in res.days)
    assert len(d1) == 1001 and len(d2) == 999  # t0 = midnight - 1000.25 s
    assert d1.time[-1] < T_DAY <= d2.time[0]
    assert d1.utc[-1] == "2021-09-05 23:59:59.750000000" and d2.utc[0] == "2021-09-06 00:00:00.750000000"
    assert d2.header["TSTART"] == d2.time[0] and d1.header["TSTOP"] == d1.time[-1]
    for d in res.days:
        assert d.fits.name == f"ch2_xsm_{d.date}_v1_level1.fits"
        hk = read_hk(d.hk)
        np.testing.assert_array_equal(hk["Time"], read_level1(d.fits).time)
        fitsverify(d.fits)


def test_frame_at_midnight_belongs_to_new_day(tmp_path):
    n = 3
    rec = L0.encode_records(frames_for(n), T_DAY - 1.0 + np.arange(n))
    L0.write_pld(tmp_path / "m.pld", rec)
    res = L0.build_level1([tmp_path / "m.pld"], tmp_path / "out")
    assert [(d.date, d.n_rows) for d in res.days] == [("20210905", 1), ("20210906", 2)]


def test_time_tag_jump_repaired_and_flagged(tmp_path):
    n = 50
    met = met_for(n)
    met[20] += 1.0  # an integer-second jump of the ground tag (t[20] = t[21])
    rec = L0.encode_records(frames_for(n), met, dh_time_us=L0.met_to_ns(met_for(n)) // 1000)
    L0.write_pld(tmp_path / "j.pld", rec)
    res = L0.build_level1([tmp_path / "j.pld"], tmp_path / "out")
    day = read_level1(res.days[0].fits)
    np.testing.assert_allclose(day.time, met_for(n), atol=1e-6)
    assert res.totals["n_time_repaired"] == 1
    assert day.status[20] & DS.TIME_REPAIRED and (day.status & DS.TIME_REPAIRED).sum() == 1
    assert day.utc[20] == "2021-09-05 23:43:39.750000000"  # re-derived from the repaired MET


def test_outlier_guard_default_only(tmp_path):
    n = 30
    met = met_for(n)
    met[10:12] += 500.0  # two wild tags: the repair rule cannot pull both back
    dh = L0.met_to_ns(met_for(n)) // 1000
    rec = L0.encode_records(frames_for(n), met, dh_time_us=dh)
    L0.write_pld(tmp_path / "o.pld", rec)
    res = L0.build_level1([tmp_path / "o.pld"], tmp_path / "a")
    assert res.totals["n_time_outliers"] == 2 and res.days[0].n_rows == n - 2
    res = L0.build_level1([tmp_path / "o.pld"], tmp_path / "b", mode=Mode.XSMDAS_1_2)
    assert res.totals["n_time_outliers"] == 0 and sum(d.n_rows for d in res.days) == n


def test_no_time_and_leap_second_dropped(tmp_path):
    n = 10
    leap = np.zeros(n, bool)
    leap[4] = True
    valid = np.ones(n, bool)
    valid[7] = False
    rec = L0.encode_records(frames_for(n), met_for(n), leap_second=leap, utc_valid=valid)
    assert rec[4, 38] == 60
    L0.write_pld(tmp_path / "l.pld", rec)
    res = L0.build_level1([tmp_path / "l.pld"], tmp_path / "out")
    assert res.totals["n_leapsec_dropped"] == 1 and res.totals["n_no_time"] == 1
    assert sorted(all_frame_numbers(res)) == [1, 2, 3, 4, 6, 7, 9, 10]


def test_status_bits_guard_sync_discontinuity(tmp_path):
    n = 10
    fno = np.array([1, 2, 3, 4, 6, 7, 8, 9, 10, 11])
    f = fr.encode_frames({"FrameNo": fno, "FPGAClock": fno * 1_000_000, "GuardBits": np.eye(1, n, 2, dtype=int)[0],
                          "SyncUW": np.where(np.arange(n) == 5, 1, 0xEB90), "SyncLW": 0x146F}, n=n)
    rec = L0.encode_records(f, met_for(n))
    L0.write_pld(tmp_path / "s.pld", rec)
    res = L0.build_level1([tmp_path / "s.pld"], tmp_path / "out", expected_sync=(0xEB90, 0x146F))
    st = read_level1(res.days[0].fits).status
    assert st[2] == DS.GUARD_BITS
    assert st[4] == DS.DISCONTINUITY
    assert st[5] == DS.SYNC_MISMATCH
    assert (st[[0, 1, 3, 6, 7, 8, 9]] == 0).all()


# ----------------------------------------------------------------------------- bad input
def test_truncated_or_foreign_input_one_line_error_nothing_written(tmp_path):
    good = session(tmp_path / "in", 50, 1)
    out = tmp_path / "out"
    trunc = tmp_path / "in" / "trunc.tar"
    trunc.write_bytes(good.read_bytes()[:60000])
    foreign = tmp_path / "in" / "foreign.pld"
    foreign.write_bytes(b"\x00\x01" * 5000)
    for bad in (trunc, foreign, tmp_path / "missing.tar"):
        with pytest.raises(InputFormatError) as e:
            L0.build_level1([good, bad], out)
        assert str(bad) in str(e.value) and "\n" not in str(e.value)
        assert not out.exists() or not any(out.iterdir())


def test_manifest_mismatch_is_an_error(tmp_path):
    rec = records(5)
    pkg = tmp_path / "x.tar"
    with tarfile.open(pkg, "w") as tar:
        import io

        data = rec.tobytes()
        man = f"x_00.pld,{len(data)},{'0' * 32},00,pld\r\n".encode()
        for name, body in (("x_00.pld", data), ("x_manifest.csv", man)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    with pytest.raises(InputFormatError, match="md5"):
        L0.read_session(pkg)


def test_existing_output_refused_before_writing(tmp_path):
    p = session(tmp_path, 20, 1)
    L0.build_level1([p], tmp_path / "out")
    with pytest.raises(ParameterError):
        L0.build_level1([p], tmp_path / "out")
    L0.build_level1([p], tmp_path / "out", overwrite=True)
    assert sorted(x.name for x in (tmp_path / "out").iterdir()) == [
        "ch2_xsm_20210905_v1_level1.fits", "ch2_xsm_20210905_v1_level1.hk"]


# ----------------------------------------------------------------------------- decoder plug-in
class RawFramesDecoder(L0.Decoder):
    """A toy layout for the test: 8-byte big-endian MET in µs, then the 2048-byte frame."""

    name = "test-raw-frames"

    @classmethod
    def is_datasource_for(cls, name, head):
        return name.endswith(".raw")

    def decode(self, buf, source):
        r = np.asarray(buf).reshape(-1, 2056)
        met = r[:, :8].copy().view(">u8")[:, 0] * 1e-6
        n = len(r)
        stats = L0.empty_stats()
        stats.update(n_records_total=n, n_valid=n)
        return L0.Level0Batch(frames=np.ascontiguousarray(r[:, 8:]), met=met, utc_valid=np.ones(n, bool),
                              dh_time=np.full(n, np.nan), dh_seq=np.full(n, -1), rec_index=np.arange(n),
                              crc_checked=np.zeros(n, bool), source=source, stats=L0.finish_stats(stats),
                              decoder=self.name)


def test_another_layout_plugs_in(tmp_path):
    assert L0.Decoder.registry["test-raw-frames"] is RawFramesDecoder
    n = 6
    met = met_for(n)
    f = frames_for(n)
    body = np.concatenate([np.rint(met * 1e6).astype(">u8").view(np.uint8).reshape(n, 8), f], axis=1)
    p = tmp_path / "a.raw"
    p.write_bytes(np.concatenate([body, body[:2]]).tobytes())  # two frames twice
    res = L0.build_level1([p], tmp_path / "out")
    day = read_level1(res.days[0].fits)
    assert len(day) == n and res.totals["n_duplicates"] == 2
    assert np.all(day.status & DS.NO_CHECKSUM)
    assert np.isnan(day.bdh_time).all()
    assert "test-raw-frames" in str(fits.getheader(res.days[0].fits, "DATA")["HISTORY"])
    with pytest.raises(ParameterError):
        L0.decoder_for("x", b"", "no-such-decoder")


def test_level1_history_lists_sessions_and_qa(tmp_path):
    p = session(tmp_path, 20, 1)
    res = L0.build_level1([p], tmp_path / "out")
    h = fits.getheader(res.days[0].fits, "DATA")
    hist = "\n".join(h["HISTORY"])
    assert "XSM L1GEN" in hist and f"{p.name[:-4]}_00.pld" in hist and "n_bad_crc = 0" in hist
    assert "decoder = xsm-l0-v1" in hist and h["PROCMODE"] == "default"
    seg = res.segments[0]
    assert seg["L0File"].endswith("_00.pld") and set(L0.QA_COUNTERS) <= set(seg["stats"])
    assert seg["kernels"] == {"spk": f"{p.name[:-4]}_00_sv.bsp", "ck": f"{p.name[:-4]}_00_qib.bc",
                              "sclk": f"{p.name[:-4]}_00_sclk.tsc"}


def test_hk_of_built_day_equals_decode(tmp_path):
    p = session(tmp_path, 30, 1)
    res = L0.build_level1([p], tmp_path / "out")
    day = read_level1(res.days[0].fits)
    assert read_hk(res.days[0].hk).data.tobytes() == decode_hk(day).data.tobytes()


def test_synthetic_hour_end_to_end(tmp_path, fitsverify):
    res = L0.run_demo(tmp_path / "demo")
    assert len(res["level0"]) == 2
    days = res["level1"]["days"]
    assert [d["date"] for d in days] == ["20210905", "20210906"]
    assert sum(d["n_rows"] for d in days) == 3600  # one hour, the 300-s overlap merged
    assert res["level1"]["totals"]["n_duplicates"] == 300
    for d in days:
        fitsverify(d["fits"])
        fitsverify(d["hk"])


def test_folder_of_sessions(tmp_path):
    session(tmp_path / "in", 30, 1)
    session(tmp_path / "in", 30, 21, station="D18")
    res = L0.build_level1([tmp_path / "in"], tmp_path / "out")
    assert sorted(all_frame_numbers(res)) == list(range(1, 51))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFormatError, match="empty"):
        L0.build_level1([tmp_path / "empty"], tmp_path / "out2")
