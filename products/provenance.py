"""Provenance of every product (STYLE.md §2 "Provenance"; ``products.md`` §8).

A :class:`Provenance` is built once per run and rides on the product; the writer turns it
into the provenance keywords and HISTORY lines. Labels and the catalog read it back from
the file on disk, so the header is the single source of truth.

Input checksums (``products.md`` §7): the layer that reads a product's input files (CLI,
archive build, pipeline) hashes each once per run (:class:`InputDigests`) and puts the
``(name, md5)`` pairs on the provenance (:attr:`Provenance.input_md5`,
:meth:`Provenance.with_input_md5`); pure ``make_*`` functions never read files for it. Writers
whose provenance is built inside another module take them from :func:`recorded_inputs`, a
scope the caller opens around the write.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import enum
import hashlib
import mmap
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import BinaryIO

try:
    SOFTWARE_VERSION: str = metadata.version("xsm")
except metadata.PackageNotFoundError:  # running from a source tree without install
    SOFTWARE_VERSION = "0.0.0+unknown"


class Mode(str, enum.Enum):
    """Processing mode (``spec/README.md``): defects fixed, or XSMDAS 1.2 reproduced."""

    DEFAULT = "default"
    XSMDAS_1_2 = "xsmdas-1.2"


def stream_digests(f: BinaryIO, algorithms: tuple[str, ...] = ("md5", "sha256"),
                   chunk: int = 1 << 20) -> dict[str, str]:
    """Hex digests of a binary stream read once in chunks.

    Parameters
    ----------
    f : binary file object
        Read to its end.
    algorithms : tuple of str
        :mod:`hashlib` names (``"md5"``, ``"sha256"``).
    chunk : int
        Read size (bytes).

    Returns
    -------
    dict
        Algorithm name -> hex digest.
    """
    hashes = {name: hashlib.new(name) for name in algorithms}
    while b := f.read(chunk):
        for h in hashes.values():
            h.update(b)
    return {name: h.hexdigest() for name, h in hashes.items()}


#: Bytes hashed per call by :func:`file_digests` (one GIL release each; 32 MiB, page aligned).
_HASH_SLICE = 1 << 25


def file_digests(path: str | Path, algorithms: tuple[str, ...] = ("md5", "sha256")) -> dict[str, str]:
    """Hex digests of a file.

    A regular file is hashed from a read-only memory map in 32 MiB slices: hashlib releases the
    GIL for each whole slice, so a worker thread hashing a 180 MB level-1 day runs on another
    core, taking the GIL six times instead of once per small chunk, while the main thread
    imports modules or computes. Empty files and streams that cannot be mapped are read
    in chunks (:func:`stream_digests`).
    """
    with open(path, "rb") as f:
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):       # empty file, pipe, special file
            return stream_digests(f, algorithms)
        hashes = {name: hashlib.new(name) for name in algorithms}
        with mapped, memoryview(mapped) as view:
            for start in range(0, len(view), _HASH_SLICE):
                with view[start:start + _HASH_SLICE] as part:
                    for h in hashes.values():
                        h.update(part)
                    done = len(part)
                # hashed pages leave the process (not the page cache): the resident size grows
                # by one slice, not by the whole file
                if hasattr(mmap, "MADV_DONTNEED"):
                    mapped.madvise(mmap.MADV_DONTNEED, start, done)
        return {name: h.hexdigest() for name, h in hashes.items()}


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    return file_digests(path, ("sha256",))["sha256"]


def file_md5(path: str | Path) -> str:
    """Hex md5 of a file."""
    return file_digests(path, ("md5",))["md5"]


@dataclass(frozen=True)
class Provenance:
    """What made a product: software, mode, calibration, parameters, random seed, inputs.

    Attributes
    ----------
    step : str
        Name of the step (``'gti'``, ``'spectrum'``, ...); CREATOR is ``'xsm.<step>'``.
    mode : Mode
    caldb_version : str or None
    caldb_files : dict
        Calibration code name -> file basename (never a local path).
    parameters : dict
        Parameter name -> value, as given to the step.
    rng_seed : int or None
    inputs : tuple of str
        Input file basenames.
    input_md5 : tuple of (str, str)
        ``(input file basename, hex md5)`` of the inputs read by the run, sorted by name.
    """

    step: str
    mode: Mode = Mode.DEFAULT
    caldb_version: str | None = None
    caldb_files: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    rng_seed: int | None = None
    inputs: tuple = ()
    software_version: str = SOFTWARE_VERSION
    input_md5: tuple = ()

    def with_input_md5(self, checksums: Mapping[str, str]) -> "Provenance":
        """A copy also recording ``checksums`` (basename -> hex md5) of its inputs."""
        merged = {**dict(self.input_md5), **checksums}
        return dataclasses.replace(self, input_md5=tuple(sorted(merged.items())))

    @property
    def creator(self) -> str:
        return f"xsm.{self.step}"


class InputDigests:
    """md5 of input files, each hashed once per run (a level-1 day is ~180 MB).

    Call it right after reading the inputs (the pages are then in the OS cache) and reuse the
    object for every product of the run.
    """

    def __init__(self) -> None:
        self._md5: dict[Path, str] = {}

    def __call__(self, paths: Iterable[str | Path | None]) -> dict[str, str]:
        """``{basename: hex md5}`` of the given files (None entries skipped)."""
        out = {}
        for p in paths:
            if p is None:
                continue
            key = Path(p).resolve()
            if key not in self._md5:
                self._md5[key] = file_md5(key)
            out[Path(p).name] = self._md5[key]  # the name given (a link keeps its own name)
        return out


def in_background(func, *args):
    """``func(*args)`` on a worker thread of its own, which ends with the work; returns a Future.

    For hashing (hashlib releases the GIL on large buffers) beside the main work.
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xsm-md5")
    try:
        return pool.submit(func, *args)
    finally:
        pool.shutdown(wait=False)


def digests_in_background(paths: Iterable[str | Path | None]):
    """Start computing ``{basename: md5}`` of ``paths`` in a worker thread; returns a Future.

    The files are hashed from memory maps (:func:`file_digests`), so on a multi-core machine the
    ~0.3 s of a 180 MB level-1 day overlaps the imports and the product's computation instead
    of adding to them. Call ``.result()`` just before writing (with :func:`recorded_inputs`).
    """
    return in_background(InputDigests(), [p for p in paths if p is not None])


_RECORDED_INPUTS: contextvars.ContextVar[tuple] = contextvars.ContextVar("xsm_recorded_inputs", default=())


@contextlib.contextmanager
def recorded_inputs(checksums: Mapping[str, str]) -> Iterator[None]:
    """Scope in which every product written records ``checksums`` (basename -> md5) as inputs.

    For writers that build their :class:`Provenance` themselves (level-2 products); the
    caller that read the inputs opens the scope around the write.
    """
    token = _RECORDED_INPUTS.set(tuple(sorted({**dict(_RECORDED_INPUTS.get()), **checksums}.items())))
    try:
        yield
    finally:
        _RECORDED_INPUTS.reset(token)


def product_input_md5(prov: Provenance) -> dict[str, str]:
    """The input checksums a product written now records: its provenance's and the scope's."""
    return {**dict(_RECORDED_INPUTS.get()), **dict(prov.input_md5)}
