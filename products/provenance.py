"""Provenance of every product (STYLE.md §2 "Provenance"; ``products.md`` §8).

A :class:`Provenance` is built once per run and rides on the product; the writer turns it
into the provenance keywords and HISTORY lines. Labels and the catalog read it back from
the file on disk, so the header is the single source of truth.
"""
from __future__ import annotations

import enum
import hashlib
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


def file_digests(path: str | Path, algorithms: tuple[str, ...] = ("md5", "sha256"),
                 chunk: int = 1 << 20) -> dict[str, str]:
    """Hex digests of a file in one pass (see :func:`stream_digests`)."""
    with open(path, "rb") as f:
        return stream_digests(f, algorithms, chunk)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    return file_digests(path, ("sha256",), chunk)["sha256"]


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex md5 of a file, read in chunks."""
    return file_digests(path, ("md5",), chunk)["md5"]


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
    """

    step: str
    mode: Mode = Mode.DEFAULT
    caldb_version: str | None = None
    caldb_files: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    rng_seed: int | None = None
    inputs: tuple = ()
    software_version: str = SOFTWARE_VERSION

    @property
    def creator(self) -> str:
        return f"xsm.{self.step}"
