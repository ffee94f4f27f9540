"""Review pass on products.kernels: every kernel file is written through a temporary file and a rename."""
import os

import pytest

from xsm.products import fitsio
from xsm.products import kernels as K
from xsm.products.met import day_start_met


def _fail_replace_for(monkeypatch, suffix):
    real_replace = os.replace

    def failing(src, dst):
        if str(dst).endswith(suffix):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(fitsio.os, "replace", failing)


def test_review_static_kernels_leave_no_temporary_files(tmp_path):
    st = K.write_static_kernels(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(K.FILE_NAMES[k] for k in ("lsk", "pck", "fk", "ik", "static_metakernel"))
    assert st.fk.read_text() == K.fk_text(None)


def test_review_failed_fk_write_leaves_no_fk_nor_temp(tmp_path, monkeypatch):
    _fail_replace_for(monkeypatch, ".tf")
    with pytest.raises(OSError, match="disk full"):
        K.write_static_kernels(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(K.FILE_NAMES[k] for k in ("lsk", "pck"))


@pytest.mark.parametrize("suffix", [".bsp", ".bc"])
def test_review_failed_binary_kernel_write_leaves_nothing(tmp_path, monkeypatch, suffix):
    met0 = day_start_met("2021-09-05")
    orbit = K.orbit_model(met0)
    _fail_replace_for(monkeypatch, suffix)
    with pytest.raises(OSError, match="disk full"):
        K.write_session_kernels(tmp_path, "seg", met0, met0 + 600.0, orbit)
    names = sorted(p.name for p in tmp_path.iterdir())
    expected = ["seg_sclk.tsc"] + (["seg_sv.bsp"] if suffix == ".bc" else [])
    assert names == expected
