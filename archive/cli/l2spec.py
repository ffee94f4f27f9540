"""``xsm l2 spectrum``: PI/PHA spectra, type I or II, with ARF or area-corrected (``spectrum.md``).

Attached to the ``l2`` group (:data:`xsm.archive.cli.l2.app`). The command parses options and
calls :func:`xsm.products.spectrum.make_spectrum` / :func:`write_spectrum`; heavy imports happen
inside the command so ``xsm --help`` stays fast.
"""
from __future__ import annotations

from pathlib import Path

import typer

from xsm.archive.cli.common import (attach_command, clobber_option, compat_option, console, level1_sibling,
                                    mode_of, refuse_existing, seed_option)


def spectrum(
    l1file: Path = typer.Argument(..., help="Level-1 science file (.fits)."),
    specfile: Path = typer.Option(..., "--out", "-o", help="Output spectrum (.pha)."),
    gtifile: Path = typer.Option(..., "--gti", help="GTI file (.gti)."),
    hkfile: Path | None = typer.Option(None, "--hk", help="Housekeeping file (default: beside l1file, .hk)."),
    safile: Path | None = typer.Option(None, "--sa", help="Sun-angle file (default: beside l1file, .sa)."),
    arffile: str = typer.Option("default", "--arf", help="ARF name ('default': spectrum name with .arf)."),
    spectype: str = typer.Option("time-resolved", help="time-resolved (type II) or time-integrated (type I)."),
    chantype: str = typer.Option("PI", help="PI or PHA."),
    sourcetype: str = typer.Option("sun", help="sun (GAIN) or cal (CALGAIN); PI only."),
    genarf: bool = typer.Option(True, "--genarf/--no-genarf", help="Make an ARF (PI only)."),
    areascal: bool = typer.Option(False, "--areascal/--no-areascal",
                                  help="Correct counts to on-axis area (needs --no-genarf)."),
    tstart: float = typer.Option(0.0, help="Start (MET s); 0 with tstop 0 = whole file."),
    tstop: float = typer.Option(0.0, help="Stop (MET s)."),
    tbinsize: int = typer.Option(100, help="Type-II bin size (integer s >= 1)."),
    gaincorfactor: float = typer.Option(1.0, help="Factor on the gain (PI)."),
    offsetcorfactor: float = typer.Option(0.0, help="Added to the offset, keV (PI)."),
    addsyserror: bool = typer.Option(True, "--syserr/--no-syserr", help="Add systematic errors (PI)."),
    caldb: Path | None = typer.Option(None, "--caldb", help="CALDB root (default $XSM_CALDB)."),
    compat: str | None = compat_option(),
    seed: int | None = seed_option(),
    dety_policy: str = typer.Option("clamp", help="Effective-area cells for DETY > 0: clamp or mirror."),
    clobber: bool = clobber_option(),
) -> None:
    """Make a PI or PHA spectrum (type I or II) with its ARF, or area-corrected."""
    from xsm.products.provenance import digests_in_background, recorded_inputs

    mode = mode_of(compat)
    refuse_existing(specfile, clobber)
    hkfile = hkfile or level1_sibling(l1file, ".hk")
    safile = safile or level1_sibling(l1file, ".sa")
    # hashing the inputs starts before numpy and astropy are imported: it runs on the other core
    md5 = digests_in_background([l1file, hkfile, gtifile])

    from xsm.products.gti import read_gti
    from xsm.products.spectrum import (DEFAULT_SEED, SpectrumParams, load_spec_cal, make_spectrum,
                                       read_spectrum_inputs, write_spectrum)

    p = SpectrumParams(spectype=spectype, chantype=chantype, sourcetype=sourcetype, genarf=genarf,
                       areascal=areascal, tstart=tstart, tstop=tstop, tbinsize=tbinsize,
                       gaincorfactor=gaincorfactor, offsetcorfactor=offsetcorfactor,
                       addsyserror=addsyserror, clobber=clobber, mode=mode,
                       seed=DEFAULT_SEED if seed is None else seed, dety_policy=dety_policy,
                       l1file=str(l1file), specfile=str(specfile), arffile=arffile, hkfile=str(hkfile),
                       safile=str(safile), gtifile=str(gtifile)).validated()
    md5_sa = digests_in_background([safile if p.needs_sa else None])
    day, hk, sa = read_spectrum_inputs(l1file, hkfile, safile if p.needs_sa else None)
    gti = read_gti(gtifile)
    t0 = p.tstart if (p.tstart or p.tstop) else float(day.time[0]) - 0.0001
    cal = load_spec_cal(caldb, t0, p)
    spec = make_spectrum(day, hk, sa, gti, p, cal)
    arf_path = None if arffile in ("", "default") else Path(arffile)
    with recorded_inputs({**md5.result(), **md5_sa.result()}):
        pha, arf = write_spectrum(spec, specfile, arf_path=arf_path)
    console.print(f"spectrum: {pha} ({spec.nrows} row(s), {spec.chantype}, {spec.total_counts:.0f} counts)"
                  + (f"; ARF: {arf}" if arf else ""), highlight=False)


def register(root: typer.Typer) -> None:  # commands attach to the l2 group
    from xsm.archive.cli.l2 import app as l2_app

    attach_command(l2_app, "spectrum", spectrum)
