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

try:
    SOFTWARE_VERSION: str = metadata.version("xsm")
except metadata.PackageNotFoundError:  # running from a source tree without install
    SOFTWARE_VERSION = "0.0.0+unknown"


class Mode(str, enum.Enum):
    """Processing mode (``spec/README.md``): defects fixed, or XSMDAS 1.2 reproduced."""

    DEFAULT = "default"
    XSMDAS_1_2 = "xsmdas-1.2"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex md5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


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
