"""Property: any binary-table layout xsm could write gets a label that validates and reads back."""
from __future__ import annotations

import numpy as np
from astropy.io import fits
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from xsm.labels.generate import generate_label
from xsm.labels.validate import validate_labels

CODES = {"B": "u1", "I": "i2", "J": "i4", "K": "i8", "E": "f4", "D": "f8", "A": "S"}

column = st.tuples(st.sampled_from(sorted(CODES)), st.integers(1, 5), st.booleans())


# each example writes, labels, validates and reads back a file (~0.5 s): no slow shrinking
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(layout=st.lists(st.lists(column, min_size=1, max_size=6), min_size=1, max_size=3),
       rows=st.integers(0, 40), seed=st.integers(0, 2**16))
@example(layout=[[("A", 1, False)]], rows=0, seed=0)  # empty table: PDS4 has no 0-record tables
@example(layout=[[("I", 3, True), ("J", 1, True), ("B", 4, False)], [("D", 2, False)]], rows=3, seed=1)
def test_any_layout(tmp_path_factory, layout, rows, seed):
    from test_labels_products import _read_back  # same comparison as for the products

    rng = np.random.default_rng(seed)
    hdus = [fits.PrimaryHDU()]
    hdus[0].header["DATE"] = "2021-09-10T15:09:08"
    for t, cols in enumerate(layout):
        fcols = []
        for i, (code, repeat, unsigned) in enumerate(cols):
            name = f"C{i}"
            if code == "A":
                arr = np.array([bytes(rng.integers(65, 90, repeat).astype(np.uint8)) for _ in range(rows)],
                               dtype=f"S{repeat}")
                fcols.append(fits.Column(name, f"{repeat}A", array=arr))
                continue
            shape = (rows, repeat) if repeat > 1 else (rows,)
            kw = {}
            if code in ("I", "J") and unsigned:
                dt = {"I": np.uint16, "J": np.uint32}[code]
                arr = rng.integers(0, np.iinfo(dt).max, shape, dtype=np.uint64).astype(dt)
                kw["bzero"] = {"I": 32768, "J": 2**31}[code]
            elif code in "EF D":
                arr = rng.normal(size=shape).astype(CODES[code])
            else:
                info = np.iinfo(CODES[code])
                arr = rng.integers(info.min, info.max, shape, dtype=np.int64).astype(CODES[code])
            fcols.append(fits.Column(name, f"{repeat}{code}" if repeat > 1 else code, array=arr, **kw))
        ext = fits.BinTableHDU.from_columns(fcols, name="GTI" if t == 0 else f"EXT{t}")
        ext.header["DATE-OBS"] = "2021-08-28 00:00:00.662640000"
        ext.header["DATE-END"] = "2021-08-28 23:59:59.396634000"
        hdus.append(ext)
    d = tmp_path_factory.mktemp("prop")
    path = d / "ch2_xsm_20210828_v1_level2.gti"
    fits.HDUList(hdus).writeto(path)
    label = generate_label(path)
    findings = validate_labels([label])
    assert findings.items == [], findings.to_json()
    assert _read_back(label, path) == (sum(len(c) for c in layout) if rows else 0)
