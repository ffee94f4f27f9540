"""The CLI shell: version, one-line errors with exit code 2, one --compat option everywhere."""
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xsm.archive.cli import app
from xsm.archive.cli.common import mode_of
from xsm.products.errors import ParameterError
from xsm.products.provenance import SOFTWARE_VERSION, Mode

runner = CliRunner()


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and SOFTWARE_VERSION in r.output


def test_mode_of():
    assert mode_of(None) is Mode.DEFAULT
    assert mode_of("xsmdas-1.2") is Mode.XSMDAS_1_2
    with pytest.raises(ParameterError, match="only compatibility mode"):
        mode_of("xsmdas-9")


@pytest.mark.parametrize("argv", [
    ["l1", "hk", "{fits}"],
    ["l1", "sunangle", "{fits}", "-k", "{fits}"],
    ["archive", "build-day", "2021-09-05", "--level1", "{dir}", "-A", "{tmp}/a"],
    ["pipeline", "run", "--inbox", "{tmp}/inbox", "-A", "{tmp}/a"],
    ["pipeline", "retry", "20210905", "-A", "{tmp}/a"],
    ["pipeline", "rerun", "--from-stage", "merge", "--days", "2021-09-05", "-A", "{tmp}/a"],
    ["l2", "gti", "{hk}", "-o", "{tmp}/x.gti"],
    ["l2", "spectrum", "{fits}", "--gti", "{dir}/gti_std.gti", "-o", "{tmp}/x.pha"],
    ["l2", "lightcurve", "{fits}", "--gti", "{dir}/gti_std.gti", "-o", "{tmp}/x.lc"],
])
def test_every_compat_option_refuses_an_unknown_mode_in_one_line(argv, tmp_path, golden_dir):
    case = golden_dir / "short_quiet"
    sub = {"fits": str(case / "ch2_xsm_20210905_v1_level1.fits"), "hk": str(case / "ch2_xsm_20210905_v1_level1.hk"),
           "dir": str(case), "tmp": str(tmp_path)}
    r = runner.invoke(app, [a.format(**sub) for a in argv] + ["--compat", "xsmdas-9"])
    assert r.exit_code == 2, r.output
    assert "only compatibility mode is xsmdas-1.2" in r.output
    assert not any(tmp_path.iterdir())


def test_missing_input_is_one_red_line_exit_2(tmp_path):
    r = runner.invoke(app, ["l1", "hk", str(tmp_path / "nope.fits")])
    assert r.exit_code == 2
    assert "nope.fits" in r.output and "Traceback" not in r.output


def test_level2_commands_record_their_inputs_md5(tmp_path, golden_dir, real_caldb):
    """products.md §7: the XSM PROVENANCE block lists every input file with its md5."""
    from astropy.io import fits

    from xsm.products.provenance import file_md5

    case = golden_dir / "short_quiet"
    l1, hk, sa = list((case / f"ch2_xsm_20210905_v1_level1.{e}" for e in ("fits", "hk", "sa")))
    gti = case / "gti_std.gti"
    runs = {
        "x.gti": ["l2", "gti", str(hk), "-o", str(tmp_path / "x.gti")],
        "x.pha": ["l2", "spectrum", str(l1), "--gti", str(gti), "-o", str(tmp_path / "x.pha"),
                  "--caldb", str(real_caldb)],
        "x.lc": ["l2", "lightcurve", str(l1), "--gti", str(gti), "-o", str(tmp_path / "x.lc"),
                 "--caldb", str(real_caldb)],
    }
    expect = {"x.gti": [hk, sa], "x.pha": [l1, hk, sa, gti], "x.lc": [l1, hk, sa, gti]}
    for name, argv in runs.items():
        r = runner.invoke(app, argv)
        assert r.exit_code == 0, r.output
        history = "\n".join(str(h) for h in fits.getheader(tmp_path / name, -1)["HISTORY"])
        for f in expect[name]:
            assert f.name in history and file_md5(f) in history, (name, f.name)


@pytest.mark.parametrize("cmd", [["l2", "gti", "{hk}"], ["l2", "spectrum", "{fits}", "--gti", "{gti}"],
                                 ["l2", "lightcurve", "{fits}", "--gti", "{gti}"]])
def test_existing_output_refused_before_any_work_with_no_clobber(cmd, tmp_path, golden_dir):
    case = golden_dir / "short_quiet"
    out = tmp_path / "out.fits"
    out.write_bytes(b"keep me")
    sub = {"hk": str(case / "ch2_xsm_20210905_v1_level1.hk"), "fits": str(case / "ch2_xsm_20210905_v1_level1.fits"),
           "gti": str(case / "gti_std.gti")}
    r = runner.invoke(app, [a.format(**sub) for a in cmd] + ["-o", str(out), "--no-clobber"])
    assert r.exit_code == 2 and "exists already" in r.output
    assert out.read_bytes() == b"keep me"


def _command_names(app) -> set[str]:
    names = {c.name for c in app.registered_commands}
    return names | {g.name for g in app.registered_groups}


def test_commands_table_matches_what_the_area_modules_register():
    """``COMMANDS`` (top-level command -> area modules) is what ``main`` builds from: each
    command's modules alone define it, and together the table covers the whole app."""
    from xsm.archive import cli

    assert _command_names(cli.app) == set(cli.COMMANDS)
    for command, areas in cli.COMMANDS.items():
        assert command in _command_names(cli.build_app(areas)), command
    # building again (main, then the full app) adds no command twice to a shared group
    from xsm.archive.cli.l1 import app as l1_app
    from xsm.archive.cli.l2 import app as l2_app

    for group in (l1_app, l2_app):
        names = [c.name for c in group.registered_commands]
        assert len(names) == len(set(names)), names
    assert {"sunangle"} <= {c.name for c in l1_app.registered_commands}
    assert {"gti", "lightcurve", "spectrum"} <= {c.name for c in l2_app.registered_commands}


@pytest.mark.parametrize("argv, expected", [
    (["l2", "gti", "x.hk"], "l2"), (["-vv", "l2", "gti"], "l2"), (["--version"], None),
    (["--help"], None), ([], None), (["nosuch"], "nosuch")])
def test_requested_command(argv, expected):
    from xsm.archive.cli import _requested_command

    assert _requested_command(argv) == expected


def test_main_builds_only_the_requested_area(monkeypatch, capsys):
    """``xsm l2 --help`` from ``main``: the l2 group's help, built from its two modules."""
    from xsm.archive import cli

    built = []
    real = cli.build_app
    monkeypatch.setattr(cli, "build_app", lambda areas=cli.AREAS: built.append(areas) or real(areas))

    def leave(code):   # the quick exit would end pytest itself
        raise SystemExit(code)

    monkeypatch.setattr(cli, "_leave", leave)
    monkeypatch.setattr("sys.argv", ["xsm", "l2", "--help"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 0
    assert built == [("l2", "l2spec")]
    out = capsys.readouterr().out
    assert "lightcurve" in out and "spectrum" in out
    monkeypatch.setattr("sys.argv", ["xsm", "nosuch"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 2 and built[-1] == cli.AREAS


def test_file_digests_from_a_memory_map_equal_hashlib(tmp_path):
    """The memory-mapped hashing gives hashlib's digests, for an empty file and a pipe too."""
    import hashlib
    import os

    from xsm.products.provenance import file_digests, file_md5, file_sha256

    data = os.urandom(3_000_017)
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    assert file_digests(tmp_path / "a") == {"md5": hashlib.md5(data).hexdigest(),
                                            "sha256": hashlib.sha256(data).hexdigest()}
    assert file_md5(tmp_path / "empty") == hashlib.md5(b"").hexdigest()
    assert file_sha256(tmp_path / "a") == hashlib.sha256(data).hexdigest()
    os.mkfifo(tmp_path / "fifo")
    import threading

    writer = threading.Thread(target=lambda: (tmp_path / "fifo").write_bytes(b"xsm"))
    writer.start()
    assert file_md5(tmp_path / "fifo") == hashlib.md5(b"xsm").hexdigest()
    writer.join()


def test_quick_exit_of_product_commands_keeps_outputs_and_exit_codes(golden_dir, tmp_path):
    """``xsm l2 ...`` leaves without the interpreter's teardown: the product is written, stdout
    (a pipe here) is flushed, the exit code is kept, atexit handlers still run."""
    import subprocess
    import sys

    hk = golden_dir / "short_quiet" / "ch2_xsm_20210905_v1_level1.hk"
    cmd = [sys.executable, "-m", "xsm.archive.cli", "l2", "gti", str(hk), "-o", str(tmp_path / "a.gti")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("gti: ") and (tmp_path / "a.gti").is_file()
    r = subprocess.run(cmd[:5] + [str(tmp_path / "none.hk"), "-o", str(tmp_path / "b.gti")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "none.hk" in r.stderr
    assert not (tmp_path / "b.gti").exists()
    # atexit handlers run before the quick exit
    code = ("import atexit, sys; atexit.register(lambda: print('atexit ran')); "
            "sys.argv = ['xsm', 'l2', '--help']; from xsm.archive.cli import main; main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("atexit ran")


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    """mkstemp's owner-only mode does not reach the products; a mode the writer sets stays."""
    import os
    import stat

    from xsm.products import fitsio

    with fitsio.atomic_path(tmp_path / "a.fits") as tmp:
        tmp.write_bytes(b"x")
    with fitsio.atomic_path(tmp_path / "b.fits") as tmp:
        tmp.write_bytes(b"x")
        os.chmod(tmp, 0o444)
    assert stat.S_IMODE((tmp_path / "a.fits").stat().st_mode) == 0o666 & ~fitsio._UMASK != 0o600
    assert stat.S_IMODE((tmp_path / "b.fits").stat().st_mode) == 0o444
