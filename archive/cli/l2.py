"""`xsm l2`: Level-2 products: GTIs, spectra with ARFs, light curves, added spectra.

Commands here: ``gti``, ``lightcurve``, ``addspec``, ``standard`` (every standard product of a day
from one read). ``spectrum`` is attached from :mod:`xsm.archive.cli.l2spec`. Each command parses
its options and calls one function of :mod:`xsm.products`; heavy imports stay inside the commands.
"""
from __future__ import annotations

from pathlib import Path

import typer

from xsm.archive.cli.common import (clobber_option, compat_option, console, handle_errors, level1_sibling,
                                    mode_of, refuse_existing, seed_option, warnings_shown)
from xsm.products.provenance import digests_in_background, recorded_inputs

app = typer.Typer(help="Level-2 products: GTIs, spectra with ARFs, light curves, added spectra.",
                  no_args_is_help=True)


@app.command("gti")
@handle_errors
def gti_cmd(
    hkfile: Path = typer.Argument(..., help="Level-1 housekeeping file (.hk)."),
    gtifile: Path = typer.Option(..., "--out", "-o", help="Output GTI file (.gti)."),
    safile: Path | None = typer.Option(None, "--sa", help="Sun-angle file (default: beside the .hk)."),
    filterfile: str = typer.Option("std", "--filter", "-f",
                                   help="Filter file, or std / bkg / cal for the project's own (./std for a file named std)."),
    usergti: Path | None = typer.Option(None, "--user-gti", help="ASCII file of 'tstart tstop' MET pairs."),
    usesunang: bool = typer.Option(True, "--usesunang/--no-usesunang", help="Use the sun-angle parameters."),
    compat: str | None = compat_option(),
    clobber: bool = clobber_option(),
) -> None:
    """Good time intervals: continuity, mandatory, filter-file and user GTIs, intersected."""
    mode = mode_of(compat)
    refuse_existing(gtifile, clobber)
    safile = safile or level1_sibling(hkfile, ".sa")
    # hashing the inputs starts before numpy and astropy are imported: it runs on the other core
    md5 = digests_in_background([hkfile, safile if usesunang else None, usergti])

    from xsm.products import gti as G

    ff = G.resolve_filter(filterfile, mode)
    hk, sa, hk_header = G.read_gti_inputs(hkfile, safile, ff, usesunang)
    params = G.GtiParams(hkfile=hkfile.name, safile=safile.name if usesunang else None,
                         gtifile=gtifile.name, filterfile=ff.name,
                         usergtifile=usergti.name if usergti else "-", usesunang=usesunang,
                         clobber=clobber)
    with warnings_shown():
        res = G.make_gti(hk, sa, ff, usergti=usergti, usesunang=usesunang, mode=mode,
                         hk_header=hk_header, params=params)
    with recorded_inputs(md5.result()):
        out = G.write_gti(res, gtifile, overwrite=clobber)
    console.print(f"gti: {out} ({len(res.gti)} interval(s), exposure {res.gti.exposure:.3f} s)",
                  highlight=False)


@app.command("lightcurve")
@handle_errors
def lightcurve_cmd(
    l1file: Path = typer.Argument(..., help="Level-1 science file (.fits)."),
    lcfile: Path = typer.Option(..., "--out", "-o", help="Output light curve (.lc)."),
    gtifile: Path = typer.Option(..., "--gti", help="GTI file (.gti)."),
    hkfile: Path | None = typer.Option(None, "--hk", help="Housekeeping file (default: beside l1file)."),
    safile: Path | None = typer.Option(None, "--sa", help="Sun-angle file (default: beside l1file)."),
    lctype: str = typer.Option("standard", help="standard or high-res."),
    areascal: bool = typer.Option(True, "--areascal/--no-areascal", help="Scale to on-axis area (standard)."),
    enesel: bool = typer.Option(True, "--enesel/--no-enesel", help="Select by energy (standard)."),
    enelow: float = typer.Option(0.5, help="Lower energy (keV), with --enesel."),
    enehigh: float = typer.Option(15.0, help="Upper energy (keV), with --enesel."),
    chstart: int = typer.Option(0, help="First PHA channel, with --no-enesel."),
    chstop: int = typer.Option(960, help="Last PHA channel, with --no-enesel."),
    tbinsizesec: int = typer.Option(1, help="Bin size (integer s), standard."),
    tbinsizems: int = typer.Option(100, help="Bin size (multiple of 100 ms), high-res."),
    sourcetype: str = typer.Option("sun", help="sun (GAIN) or cal (CALGAIN); default mode only (Q24)."),
    caldb: Path | None = typer.Option(None, "--caldb", help="CALDB root (default $XSM_CALDB)."),
    compat: str | None = compat_option(),
    seed: int | None = seed_option(),
    clobber: bool = clobber_option(),
) -> None:
    """Standard (energy/channel band, area scaling) or high-res (100 ms coarse bands) light curve."""
    mode = mode_of(compat)
    refuse_existing(lcfile, clobber)
    hkfile = hkfile or level1_sibling(l1file, ".hk")
    safile = safile or level1_sibling(l1file, ".sa")
    # hashing the inputs starts before numpy and astropy are imported: it runs on the other core
    md5 = digests_in_background([l1file, hkfile, safile, gtifile])

    import numpy as np

    from xsm.products import lightcurve as LC
    from xsm.products.errors import ParameterError
    from xsm.products.gti import read_gti

    p = LC.LightCurveParams(lctype=lctype, tbinsizesec=tbinsizesec, tbinsizems=tbinsizems,
                            areascal=areascal, enesel=enesel, enelow=enelow, enehigh=enehigh,
                            chstart=chstart, chstop=chstop, sourcetype=sourcetype, mode=mode, seed=seed,
                            l1file=l1file.name, lcfile=lcfile.name, hkfile=hkfile.name,
                            safile=safile.name, gtifile=gtifile.name, clobber=clobber).effective()
    gti = read_gti(gtifile)
    day = LC.read_lc_inputs(l1file, hkfile, safile, p)
    cal = None
    inside = gti.contains(day.time)
    if not np.any(inside):
        raise ParameterError(f"{gtifile}: no level-1 frame of {l1file.name} is inside the GTI")
    t0 = float(day.time[inside][0]) - LC.T0_OFFSET
    from xsm.caldb_manager.context import calibration_context

    ctx = calibration_context(t0, caldb, rule=mode)
    if p.highres or not (p.enesel or p.areascal):
        cal = LC.LCCalibration(version=ctx.version)
    else:
        cal = LC.lc_calibration(ctx, mode)
    with warnings_shown():
        lc = LC.make_lightcurve(day, gti, p, cal)
    with recorded_inputs(md5.result()):
        out = LC.write_lightcurve(lc, lcfile, overwrite=clobber)
    console.print(f"lightcurve: {out} ({', '.join(f'{b.extname} {len(b)} rows' for b in lc.bands)})",
                  highlight=False)


@app.command("addspec")
@handle_errors
def addspec_cmd(
    spectra: list[Path] = typer.Argument(None, help="Type-I spectra to add (or use --list)."),
    specfile: Path = typer.Option(..., "--out", "-o", help="Output spectrum (.pha)."),
    listfile: Path | None = typer.Option(None, "--list", help="ASCII file, one spectrum per line."),
    arffile: Path | None = typer.Option(None, "--arf", help="Output ARF (default: spectrum name with .arf)."),
    addarf: bool = typer.Option(True, "--addarf/--no-addarf", help="Also combine the inputs' ARFs."),
    weighting: str = typer.Option("exposure", "--arf-weighting",
                                  help="ARF weights: exposure, or counts (default mode)."),
    caldbver: str | None = typer.Option(None, "--caldbver",
                                        help="Compat: CALDBVER to record (the installed CALDB's, Q22)."),
    compat: str | None = compat_option(),
    clobber: bool = clobber_option(),
) -> None:
    """Add type-I spectra (and their ARFs) across days."""
    from xsm.products import addspec as A
    from xsm.products.errors import ParameterError

    mode = mode_of(compat)
    if bool(spectra) == bool(listfile):
        raise ParameterError("give either input spectra or --list FILE (not both, not neither)")
    with warnings_shown():
        added, s, a = A.addspec(listfile if listfile else list(spectra), specfile, arffile=arffile,
                                addarf=addarf, mode=mode, arf_weighting=weighting, caldbver=caldbver,
                                overwrite=clobber)
    console.print(f"addspec: {s} ({len(added.inputs)} spectra, exposure {added.exposure:.0f} s)"
                  + (f"; ARF: {a}" if a else ""), highlight=False)


@app.command("standard")
@handle_errors
def standard_cmd(
    l1file: Path = typer.Argument(..., help="Level-1 science file (.fits); .hk and .sa beside it."),
    out_dir: Path = typer.Option(Path("."), "--out-dir", "-o", help="Output directory."),
    hkfile: Path | None = typer.Option(None, "--hk", help="Housekeeping file."),
    safile: Path | None = typer.Option(None, "--sa", help="Sun-angle file."),
    spectrum: str = typer.Option("arf", help="arf (type II with ARF) or areascal (archive recipe)."),
    version: int = typer.Option(1, help="Processing version in the file names (vN)."),
    caldb: Path | None = typer.Option(None, "--caldb", help="CALDB root (default $XSM_CALDB)."),
    compat: str | None = compat_option(),
    seed: int | None = seed_option(),
    clobber: bool = clobber_option(),
) -> None:
    """Every standard product of a day (GTI, type-II 60 s spectrum, 1 s and high-res LCs), one read."""
    from xsm.products import level2 as L2
    from xsm.products.errors import ParameterError

    if spectrum not in ("arf", "areascal"):
        raise ParameterError(f"--spectrum {spectrum!r}: use arf or areascal")
    params = L2.StandardParams(mode=mode_of(compat), seed=seed, spectrum=spectrum, version=version)
    prod, paths = L2.standard_products(l1file, out_dir, hkfile=hkfile, safile=safile, caldb=caldb,
                                       params=params, overwrite=clobber)
    # prod.notes were logged as warnings by the library (shown once by the log handler)
    for kind, p in paths.items():
        console.print(f"{kind}: {p}", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="l2")
