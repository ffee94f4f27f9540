"""`xsm demo` on a fresh machine: no reference folder, no PDS4 schemas, no configured CALDB.

The demo makes its own synthetic CALDB, kernels and data; labels get the data checks only and
the result says so; ``verify`` passes with one warning; a release for ISDA is refused with how
to install the schemas, and nothing is written.
"""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from xsm.archive.cli import app
from xsm.archive.demo import DEMO_DAYS, run_demo
from xsm.archive.release import RELEASES_DIR, make_release
from xsm.archive.verify import SCHEMA_RULE, verify
from xsm.schemas.locator import SchemaNotFoundError

runner = CliRunner()
HINT = "xsm labels schemas install --from"


def _fresh_env(mp: pytest.MonkeyPatch, base) -> None:
    mp.setenv("XSM_SHARED", str(base / "no-shared"))
    mp.setenv("XSM_DATA_DIR", str(base / "userdata"))
    mp.delenv("XSM_PDS4_SCHEMAS", raising=False)
    mp.delenv("XSM_CALDB", raising=False)


@pytest.fixture(scope="module")
def fresh_demo(tmp_path_factory):
    """One demo day (15 min simulated) run with nothing outside the installed package."""
    base = tmp_path_factory.mktemp("fresh")
    with pytest.MonkeyPatch.context() as mp:
        _fresh_env(mp, base)
        return base, run_demo(base / "out", hours=0.25, days=DEMO_DAYS[2:])


@pytest.fixture
def fresh(fresh_demo, monkeypatch):
    base, res = fresh_demo
    _fresh_env(monkeypatch, base)
    return res


def test_demo_completes_with_synthetic_caldb_and_data_checks_only(fresh):
    res = fresh
    assert res.verified and res.failed == [] and res.problems == []
    assert res.caldb == res.out / "caldb" and (res.caldb / "xsmcaldb.indx").is_file()
    d = res.days[0]
    assert d["day"] == "20240503" and d["archived"] and d["uploaded"]
    assert not res.schemas_checked
    assert "XSD and Schematron checks skipped" in res.schema_note and HINT in res.schema_note


def test_verify_passes_with_one_schema_warning(fresh):
    rep = verify(fresh.archive)
    assert rep.ok and rep.labels > 0 and rep.files > 0
    assert [w.rule for w in rep.warnings] == [SCHEMA_RULE]
    assert not rep.schemas_checked and HINT in rep.schema_note
    r = runner.invoke(app, ["archive", "verify", "--archive", str(fresh.archive)])
    assert r.exit_code == 0, r.output
    assert "(data checks only)" in r.output and r.output.count("XSD and Schematron checks skipped") == 1


def test_release_refuses_without_schemas(fresh):
    with pytest.raises(SchemaNotFoundError, match=f"release r1 refused: .*{HINT}"):
        make_release(fresh.archive, "r1", "2024-05-03", "2024-05-03")
    r = runner.invoke(app, ["archive", "release", "r1", "--from", "2024-05-03", "--to", "2024-05-03",
                            "--archive", str(fresh.archive)])
    assert r.exit_code == 2 and HINT in r.output and "Traceback" not in r.output
    assert not (fresh.archive / RELEASES_DIR / "r1").exists()
