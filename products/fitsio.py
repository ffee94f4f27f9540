"""OGIP/XSM FITS I/O at the edges: common keywords, HISTORY blocks, atomic writes.

Every XSM FITS file has an empty primary HDU with the common keywords and one or more
binary-table extensions (``level1.md`` §1). Writers build an :class:`astropy.io.fits.HDUList`
and hand it to :func:`write_fits_atomic`, which writes to a temporary file in the target
directory and renames it into place, so that a failure never leaves a half-written file.
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
from astropy.io import fits

from xsm.products import settings
from xsm.products.errors import InputFormatError
from xsm.products.met import MJDREF, date_obs_value, local_now_keyword, utc_now_keyword
from xsm.products.provenance import Mode, Provenance, product_input_md5

MISSION = "CHANDRAYAAN-2"
TELESCOP = "CH-2_ORBITER"
INSTRUME = "CH2_XSM"
#: OGIP class keywords of every XSM PHA extension, in the reference's order (``products.md`` §2-3).
PHA_CLASS_CARDS: tuple[tuple[str, str], ...] = (
    ("CONTENT", "SPECTRUM"), ("HDUCLASS", "OGIP"), ("LONGSTRN", "OGIP 1.0"), ("HDUCLAS1", "SPECTRUM"),
    ("HDUVERS1", "1.2.0"), ("HDUVERS", "1.2.0"), ("HDUCLAS2", "TOTAL"), ("HDUCLAS3", "COUNT"),
)
#: The three identity keywords with the reference's comments (also the CALDB files' primaries).
IDENTITY_CARDS: tuple[tuple[str, str, str], ...] = (
    ("MISSION", MISSION, "Name of mission/satellite"),
    ("TELESCOP", TELESCOP, "Name of mission/satellite"),
    ("INSTRUME", INSTRUME, "Name of Instrument/detector"),
)
#: XSMDAS file-format version written in both modes (``level1.md`` §1 note).
XSMDASVE = "1.20"


def date_keyword(mode: Mode = Mode.DEFAULT) -> str:
    """FITS ``DATE`` for a file written now: UTC (default) or local time (compat, Q17)."""
    return local_now_keyword() if mode == Mode.XSMDAS_1_2 else utc_now_keyword()


def common_keywords(
    filename: str,
    creator: str,
    *,
    content: str | None = None,
    date: str | None = None,
    mode: Mode = Mode.DEFAULT,
) -> list[tuple[str, object]]:
    """The keywords every XSM HDU carries (``level1.md`` §1), in the reference's order."""
    cards: list[tuple[str, object]] = [
        ("MISSION", MISSION),
        ("TELESCOP", TELESCOP),
        ("INSTRUME", INSTRUME),
        ("ORIGIN", settings.origin()),
        ("CREATOR", creator),
        ("FILENAME", filename),
    ]
    if content is not None:
        cards.append(("CONTENT", content))
    cards += [("DATE", date or date_keyword(mode)), ("XSMDASVE", XSMDASVE)]
    from xsm.products.provenance import SOFTWARE_VERSION

    cards.append(("XSMSWVER", SOFTWARE_VERSION))
    return cards


def time_keywords(
    tstart: float, tstop: float, date_obs: str | float | None = None, date_end: str | float | None = None,
    *, telapse: bool = True, mode: Mode = Mode.DEFAULT,
) -> list[tuple[str, object]]:
    """DATE-OBS, DATE-END, TSTART, TSTOP, [TELAPSE], TIMESYS, MJDREF (``time.md`` §5).

    Parameters
    ----------
    tstart, tstop : float
        MET (s).
    date_obs, date_end : str or float, optional
        UTC strings (either form) or MET (s); default ``tstart``/``tstop``. Written in the
        form of ``mode`` by :func:`xsm.products.met.date_obs_value` (ISO ``T`` in the default
        mode, the reference's space in compat mode).
    telapse : bool
        Include ``TELAPSE = tstop - tstart`` (s).
    mode : Mode
        Processing mode.
    """
    cards: list[tuple[str, object]] = [
        ("DATE-OBS", date_obs_value(tstart if date_obs is None else date_obs, mode)),
        ("DATE-END", date_obs_value(tstop if date_end is None else date_end, mode)),
        ("TSTART", float(tstart)),
        ("TSTOP", float(tstop)),
    ]
    if telapse:
        cards.append(("TELAPSE", float(tstop) - float(tstart)))
    cards += [("TIMESYS", "UTC"), ("MJDREF", MJDREF)]
    return cards


#: BITPIX of the empty primary HDU of every XSM file (the reference's value).
PRIMARY_BITPIX = 16


def keep_primary_bitpix(hdu: fits.PrimaryHDU) -> fits.PrimaryHDU:
    """Make astropy write the header's BITPIX for an empty primary HDU.

    astropy rewrites BITPIX of a data-less primary HDU from its own record of the data type
    (8) when the file is written; this aligns that record with the header value. No-op for
    an HDU with data. Returns ``hdu``.
    """
    if hdu.data is None and "BITPIX" in hdu.header:
        hdu._bitpix = int(hdu.header["BITPIX"])  # astropy has no public setter for this
    return hdu


def empty_primary_hdu() -> fits.PrimaryHDU:
    """An empty primary HDU (BITPIX 16, NAXIS 0, EXTEND T) that keeps BITPIX 16 when written.

    The base of :func:`primary_hdu` and of files without the XSM common keywords (CALDB).
    """
    hdu = fits.PrimaryHDU()
    hdu.header["BITPIX"] = PRIMARY_BITPIX
    hdu.header["EXTEND"] = True
    return keep_primary_bitpix(hdu)


def primary_hdu(filename: str, creator: str, content: str, *, date: str | None = None,
                mode: Mode = Mode.DEFAULT) -> fits.PrimaryHDU:
    """The empty primary HDU (BITPIX 16, NAXIS 0, EXTEND T) with the common keywords.

    BITPIX 16 is what the reference writes (``level1.md`` §1); see :func:`empty_primary_hdu`.
    """
    hdu = empty_primary_hdu()
    for k, v in common_keywords(filename, creator, content=content, date=date, mode=mode):
        hdu.header[k] = v
    return hdu


def set_cards(header: fits.Header, cards: Iterable[tuple[str, object]]) -> None:
    """Set (or append) keyword values in order."""
    for key, value in cards:
        header[key] = value


def history_block(task: str, lines: Iterable[str]) -> list[str]:
    """A HISTORY block of ``products.md`` §7: 14 asterisks, TASK, 14 asterisks; lines; 38."""
    return [f"{'*' * 14} {task.upper()} {'*' * 14}", *lines, "*" * 38]


def format_history_value(value: object) -> str:
    """Value formats of the reference's HISTORY: yes/no, %lf reals, %d integers, basenames."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):d}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):f}"
    if isinstance(value, Path):
        return value.name
    return str(value)


#: A provenance-block line giving an input's md5 (the line before it names the input).
INPUT_MD5_LINE = re.compile(r"^input \d+ md5 = [0-9a-f]{32}$")


def provenance_history(prov: Provenance, input_checksums: Mapping[str, str] | None = None) -> list[str]:
    """The ``XSM PROVENANCE`` HISTORY block (``products.md`` §7).

    The input lines (``input <i> = <name>``, ``input <i> md5 = <hex>``, sorted by name) list
    ``input_checksums``, the provenance's
    :attr:`~xsm.products.provenance.Provenance.input_md5` and those of an open
    :func:`~xsm.products.provenance.recorded_inputs` scope.
    """
    sums = {**product_input_md5(prov), **(input_checksums or {})}
    lines = [
        f"software = xsm {prov.software_version}",
        f"mode = {prov.mode.value}",
    ]
    if prov.caldb_version:
        lines.append(f"caldbver = {prov.caldb_version}")
    for code, name in sorted(prov.caldb_files.items()):
        lines.append(f"caldb {code} = {name}")
    if prov.rng_seed is not None:
        lines.append(f"rng = PCG64 seed {prov.rng_seed}")
    for i, (name, digest) in enumerate(sorted(sums.items()), 1):  # two lines: a HISTORY card has 72 chars
        lines += [f"input {i} = {name}", f"input {i} md5 = {digest}"]
    return history_block("XSM PROVENANCE", lines)


def add_history(header: fits.Header, lines: Iterable[str]) -> None:
    for line in lines:
        header.add_history(line)


def provenance_keywords(prov: Provenance) -> list[tuple[str, object]]:
    """Keywords added by the project in every extension (``products.md`` §8)."""
    cards: list[tuple[str, object]] = [("PROCMODE", prov.mode.value)]
    if prov.rng_seed is not None and prov.mode == Mode.DEFAULT:
        cards += [("RNGALG", "PCG64"), ("RNGSEED", int(prov.rng_seed))]
    return cards


#: The process's umask, read once at import (setting it to read it is not thread-safe later).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file owner-only: give it the usual mode of a new file (umask), unless
        # the writer set one itself (read-only CALDB copies, say)
        if stat.S_IMODE(tmp_path.stat().st_mode) == 0o600:
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_fits_atomic(hdul: fits.HDUList, path: str | Path, *, overwrite: bool = False,
                      checksum: bool = False) -> Path:
    """Write ``hdul`` to ``path`` through a temporary file and an atomic rename.

    Raises FileExistsError-like :class:`InputFormatError` when ``path`` exists and
    ``overwrite`` is false.
    """
    from xsm.products.errors import ParameterError

    path = Path(path)
    if path.exists() and not overwrite:
        raise ParameterError(f"{path}: exists already (use --clobber/overwrite to replace it)")
    if len(hdul) and isinstance(hdul[0], fits.PrimaryHDU):
        keep_primary_bitpix(hdul[0])
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True, checksum=checksum)
    return path


def open_fits(path: str | Path, *, what: str = "FITS file", memmap: bool = True) -> fits.HDUList:
    """Open a FITS file, turning any failure into a one-line :class:`InputFormatError`."""
    path = Path(path)
    if not path.exists():
        raise InputFormatError(f"{path}: no such file")
    try:
        hdul = fits.open(path, memmap=memmap)
        _ = hdul[0].header
        return hdul
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise InputFormatError(f"{path}: not a readable {what} ({str(exc).splitlines()[0]})") from None


def read_text_input(path: str | Path, *, what: str) -> str:
    """The text of a user's input text file (filter file, GTI list, list of spectra).

    Raises
    ------
    InputFormatError
        One line naming the file when it cannot be read or is not text (e.g. a FITS file).
    """
    path = Path(path)
    try:
        return path.read_text()
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"{path}: {what} is not a text file (undecodable byte at offset "
                               f"{exc.start})") from None


def require_extension(hdul: fits.HDUList, extname: str, path: str | Path) -> fits.BinTableHDU:
    """The extension ``extname`` of an open file, or a clear :class:`InputFormatError`."""
    try:
        return hdul[extname]
    except KeyError:
        names = [h.name for h in hdul]
        raise InputFormatError(f"{path}: no extension {extname} (found {names})") from None


def require_columns(hdu: fits.BinTableHDU, columns: Iterable[str], path: str | Path) -> None:
    names = {n.upper() for n in hdu.columns.names}
    missing = [c for c in columns if c.upper() not in names]
    if missing:
        raise InputFormatError(f"{path}: extension {hdu.name} lacks column(s) {', '.join(missing)}")


#: TFORM codes that :func:`bintable_hdu` stores big-endian at once (plain numbers, no scaling).
_PLAIN_TFORMS = frozenset("BIJKED")


def bintable_hdu(columns: Iterable[fits.Column], name: str | None = None) -> fits.BinTableHDU:
    """``fits.BinTableHDU.from_columns(columns, name=name)``, faster to build and to write.

    Two costs of astropy's path are avoided; the header and the bytes written are identical:

    * ``BinTableHDU.__init__`` imports ``astropy.table`` (~0.15 s) whenever it is given data (to
      test for a ``Table``): the HDU is built empty and the ``FITS_rec`` assigned afterwards;
    * a native (little-endian) ``FITS_rec`` is byte-swapped at write time by a per-byte fancy
      index in 64 kB pieces, twice with checksums (~0.3 s for a 33 MB type-II ARF): tables of
      plain numeric columns (TFORM B, I, J, K, E, D without TSCAL/TZERO) are stored big-endian
      in memory once, so astropy writes (and checksums) the buffer as it is.
    """
    coldefs = fits.ColDefs(list(columns))
    data = fits.FITS_rec.from_columns(coldefs)
    if all(c.bscale is None and c.bzero is None and str(c.format)[-1:] in _PLAIN_TFORMS
           for c in coldefs):
        raw = data.view(np.ndarray)
        big = raw.astype(raw.dtype.newbyteorder(">")).view(fits.FITS_rec)
        big._coldefs = data._coldefs
        data = big
    hdu = fits.BinTableHDU(name=name)
    hdu.data = data
    return hdu
