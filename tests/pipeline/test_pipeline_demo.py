"""`xsm demo` end to end on one short simulated day (the CLI runs three; same code path)."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from xsm.archive.catalog import run_query
from xsm.archive.cli import app
from xsm.archive.demo import DEMO_DAYS, run_demo

runner = CliRunner()


def test_demo_runs_the_pipeline_and_leaves_a_verified_archive(tmp_path, real_caldb):
    res = run_demo(tmp_path, hours=0.25, caldb=real_caldb, days=DEMO_DAYS[2:])
    assert res.verified and res.failed == [] and res.problems == []
    assert [d["day"] for d in res.days] == ["20240503"]
    d = res.days[0]
    assert d["archived"] and d["uploaded"] and d["version"] == 1
    assert res.index.is_file() and res.catalog.is_file()
    assert (res.upload / "2024" / "ch2_xsm_20240503_v1.zip").is_file()
    n = run_query(res.archive, "SELECT sum(rows) AS n FROM products WHERE kind = 'fits'").rows[0][0]
    assert n >= res.simulated[0]["frames"] - 5  # every simulated frame but the corrupted records
    # a second run in the same folder finds nothing new and changes nothing
    before = run_query(res.archive, "SELECT path, md5 FROM products ORDER BY path").rows
    again = run_demo(tmp_path, hours=0.25, caldb=real_caldb, days=DEMO_DAYS[2:])
    assert json.loads(json.dumps(again.to_dict()))["verified"]
    assert again.verified and run_query(res.archive, "SELECT path, md5 FROM products ORDER BY path").rows == before


def test_demo_cli_refuses_bad_hours(tmp_path):
    r = runner.invoke(app, ["demo", "--out", str(tmp_path), "--hours", "30", "--json"])
    assert r.exit_code == 2 and "--hours 30" in r.output and not (tmp_path / "archive").exists()
