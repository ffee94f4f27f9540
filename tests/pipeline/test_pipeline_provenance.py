"""The pipeline's products record their inputs' md5: a session's .sa its level-1 file and
kernels, its level-2 selections the session's level-1 files, the day's calibrated products
the archived level-1 files (the catalog's md5)."""
from __future__ import annotations

import re
from pathlib import Path

from astropy.io import fits

from xsm.archive import meta
from xsm.archive.catalog import run_query
from xsm.products.provenance import file_md5


def recorded(path: Path) -> dict[str, str]:
    hist = meta.parse_history(list(fits.getheader(path, 1).get("HISTORY", [])))
    names = {m.group(1): v for k, v in hist.items() if (m := re.fullmatch(r"xsm_provenance\.input (\d+)", k))}
    return {name: hist[f"xsm_provenance.input {i} md5"] for i, name in names.items()}


def test_session_and_day_products_record_their_inputs_md5(http_archive):
    cfg = http_archive[0]
    sessions = [d for d in (cfg.root / "pipeline" / "sessions").iterdir() if not d.name.startswith(".")]
    assert sessions
    for s in sessions:
        l1 = {p.suffix: p for p in (s / "level1").iterdir() if p.suffix in (".fits", ".hk", ".sa")}
        assert set(l1) == {".fits", ".hk", ".sa"}, s.name
        sa = recorded(l1[".sa"])
        assert sa[l1[".fits"].name] == file_md5(l1[".fits"])
        assert any(n.endswith(".bsp") for n in sa) and len(sa) > 2  # the kernels too
        want = {p.name: file_md5(p) for p in l1.values()}
        l2 = [p for p in (s / "level2").rglob("*") if p.suffix in (".gti", ".pha", ".lc")]
        assert l2, s.name
        for p in l2:
            assert recorded(p) == want, p.name
    raw = dict(run_query(cfg.root, "SELECT regexp_extract(path, '[^/]+$'), md5 FROM products "
                                   "WHERE kind IN ('fits', 'hk', 'sa') AND current").rows)
    cal = run_query(cfg.root, "SELECT path FROM products WHERE kind IN ('gti', 'pha', 'lc') AND current").rows
    assert len(raw) == 3 and len(cal) == 3
    for (rel,) in cal:
        assert recorded(cfg.root / rel) == raw, rel
