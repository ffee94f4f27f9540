"""Review pass on level0.write_session: the trigger is written after the package, atomically."""
import hashlib
import os

import numpy as np
import pytest

from xsm.products import fitsio
from xsm.products import level0 as L0

SID = "XSM01G26CHO0000100NNNN24122100000000"


def _segment():
    return np.random.default_rng(3).integers(0, 256, 3 * 2120, dtype=np.uint8).tobytes()


def test_review_trigger_names_the_package_size_and_md5(tmp_path):
    pkg = L0.write_session(tmp_path, SID, [_segment()])
    body = pkg.read_bytes()
    trg = (tmp_path / f"{SID}.trg").read_text()
    assert trg == f"size={len(body)}\nmd5={hashlib.md5(body).hexdigest()}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{SID}.tar", f"{SID}.trg"]


def test_review_failed_trigger_write_leaves_no_trigger_nor_temp(tmp_path, monkeypatch):
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith(".trg"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(fitsio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        L0.write_session(tmp_path, SID, [_segment()])
    # the package is complete, but nothing announces it and no temporary file is left
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{SID}.tar"]


def test_review_package_kernel_members_and_session_kernel_names_share_one_suffix_table(tmp_path):
    import tarfile

    from xsm.products import kernels as K

    kern = {0: {"spk": b"spk", "ck": b"ck", "sclk": b"sclk"}}
    pkg = L0.write_session(tmp_path, SID, [_segment()], kern, trigger=False)
    with tarfile.open(pkg) as tar:
        names = sorted(tar.getnames())
    assert names == sorted([f"{SID}_00.pld", f"{SID}_manifest.csv", f"{SID}_00_sv.bsp",
                            f"{SID}_00_qib.bc", f"{SID}_00_sclk.tsc"])
    assert {k: K.FILE_NAMES[k] for k in L0.SESSION_KERNEL_SUFFIX} == {
        "spk": "ch2_sv.bsp", "ck": "ch2_qib.bc", "sclk": "ch2_sclk.tsc"}
