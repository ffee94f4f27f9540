"""Locate the official PDS4 schema files through the project's XML catalog (``catalog.xml``).

The project never ships or fetches schema files (``spec/pds4.md`` §6). They live in a schema
directory:

1. ``$XSM_PDS4_SCHEMAS`` (``settings.pds4_schema_dir()``), or
2. the copy installed by ``xsm labels schemas install --from DIR`` in the user data directory
   (``settings.data_dir() / "pds4"``), or
3. for development, ``$XSM_SHARED/pds4`` when it exists.

Two layouts of a schema directory are accepted: files directly under it as the catalog names
them (``pds/v1/PDS4_PDS_1B00.xsd``, ``schematron_xslt2/iso_svrl_for_xslt2.xsl``), or the
``../shared/pds4`` layout (``schemas/pds/v1/...`` beside ``schematron_xslt2/``); the skeleton
folder may also sit beside the schema directory (``XSM_PDS4_SCHEMAS=../shared/pds4/schemas``).

A missing file raises :class:`SchemaNotFoundError` whose message says how to install them.
"""
from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lxml import etree

from xsm.products import settings
from xsm.products.errors import XsmError
from xsm.products.provenance import file_sha256

CATALOG_NS = "urn:oasis:names:tc:entity:xmlns:xml:catalog"
XSM_NS = "urn:xsm:catalog"
#: Checksum manifest written by :func:`install_schemas` (``sha256  relative/path`` lines).
CHECKSUM_FILE = "SHA256SUMS"

INSTALL_HINT = (
    "install them with `xsm labels schemas install --from DIR` (DIR holding the official "
    "PDS4_PDS_*.xsd/.sch files and the ISO schematron_xslt2 skeleton, e.g. ../shared/pds4) "
    "or point XSM_PDS4_SCHEMAS at such a directory"
)


class SchemaNotFoundError(XsmError):
    """A PDS4 schema file is not available locally."""

    exit_code = 2


@dataclass(frozen=True)
class InformationModel:
    """One PDS4 information model of the catalog (e.g. ``1B00`` = IM 1.11.0.0)."""

    im: str
    version: str
    namespace: str
    xsd: str  # path relative to the schema directory
    sch: str
    urls: tuple[str, ...]  # official URLs mapping to xsd/sch

    @property
    def xsd_url(self) -> str:
        return f"https://pds.nasa.gov/pds4/pds/v1/{Path(self.xsd).name}"

    @property
    def sch_url(self) -> str:
        return f"https://pds.nasa.gov/pds4/pds/v1/{Path(self.sch).name}"


@dataclass(frozen=True)
class Catalog:
    models: dict[str, InformationModel]
    uri_map: dict[str, str]  # official URL -> relative path
    skeleton: tuple[str, ...]  # relative paths of the ISO skeleton steps, in order
    skeleton_all: tuple[str, ...]  # every skeleton file (for installation)


def catalog_path() -> Path:
    """Path of the project's catalog file (package data of ``xsm.schemas``)."""
    return Path(str(resources.files("xsm.schemas").joinpath("catalog.xml")))


@functools.lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """Parse ``catalog.xml`` once."""
    root = etree.parse(str(catalog_path())).getroot()
    q = lambda n: f"{{{CATALOG_NS}}}{n}"  # noqa: E731
    x = lambda n: f"{{{XSM_NS}}}{n}"  # noqa: E731
    models: dict[str, InformationModel] = {}
    uri_map: dict[str, str] = {}
    steps: list[tuple[int, str]] = []
    for group in root.iter(q("group")):
        if group.get(x("role")) == "schematron-skeleton":
            for u in group.iter(q("uri")):
                steps.append((int(u.get(x("step"), "0")), u.get("uri")))
            continue
        im = group.get(x("im"))
        files = {"xsd": None, "sch": None}
        urls = []
        for u in group.iter(q("uri")):
            uri_map[u.get("name")] = u.get("uri")
            files[u.get(x("kind"))] = u.get("uri")
            urls.append(u.get("name"))
        models[im] = InformationModel(im=im, version=group.get(x("version")),
                                      namespace=group.get(x("namespace")), xsd=files["xsd"],
                                      sch=files["sch"], urls=tuple(urls))
    skeleton = tuple(p for s, p in sorted(steps) if s > 0)
    return Catalog(models=models, uri_map=uri_map, skeleton=skeleton,
                   skeleton_all=tuple(p for _, p in sorted(steps)))


def information_models() -> dict[str, InformationModel]:
    """The information models known to the catalog, by IM code (``'1B00'``, ``'1O00'``)."""
    return dict(load_catalog().models)


def model(im: str) -> InformationModel:
    """The :class:`InformationModel` of code ``im`` (``'1B00'``) or version (``'1.11.0.0'``)."""
    models = load_catalog().models
    if im in models:
        return models[im]
    for m in models.values():
        if m.version == im:
            return m
    from xsm.products.errors import ParameterError

    raise ParameterError(f"unknown PDS4 information model {im!r} (known: {', '.join(models)})")


def model_for_url(url: str) -> InformationModel | None:
    """The information model whose schema or schematron file ``url`` names (by file name)."""
    name = url.strip().rsplit("/", 1)[-1]
    for m in load_catalog().models.values():
        if name in (Path(m.xsd).name, Path(m.sch).name):
            return m
    return None


def schema_dir() -> Path | None:
    """The configured schema directory (see module docstring), or None."""
    configured = settings.pds4_schema_dir()
    if configured is not None:
        return Path(configured)
    shared = settings.shared_dir() / "pds4"
    if shared.is_dir():
        return shared
    return None


def _roots(base: Path) -> list[Path]:
    return [base, base / "schemas", base.parent]


def resolve(relative: str, base: Path | None = None) -> Path:
    """Absolute path of a catalog entry (``pds/v1/PDS4_PDS_1B00.xsd``) in the schema directory.

    Raises
    ------
    SchemaNotFoundError
        when the schema directory is not configured or lacks the file.
    """
    base = base if base is not None else schema_dir()
    if base is None:
        raise SchemaNotFoundError(f"PDS4 schema files not found (no schema directory): {INSTALL_HINT}")
    for root in _roots(Path(base)):
        p = root / relative
        if p.is_file():
            return p
    raise SchemaNotFoundError(
        f"PDS4 schema file {Path(relative).name} not found under {base}: {INSTALL_HINT}")


def resolve_url(url: str, base: Path | None = None) -> Path:
    """Local file for an official schema URL (never fetched)."""
    cat = load_catalog()
    rel = cat.uri_map.get(url.strip())
    if rel is None:
        m = model_for_url(url)
        if m is None:
            raise SchemaNotFoundError(f"no local copy known for {url}: not in xsm's schema catalog")
        rel = m.xsd if url.strip().endswith(".xsd") else m.sch
    return resolve(rel, base)


def xsd_path(im: str = "1B00", base: Path | None = None) -> Path:
    return resolve(model(im).xsd, base)


def sch_path(im: str = "1B00", base: Path | None = None) -> Path:
    return resolve(model(im).sch, base)


def skeleton_paths(base: Path | None = None) -> list[Path]:
    """The ISO Schematron XSLT2 skeleton steps (include, abstract expansion, SVRL), in order."""
    return [resolve(rel, base) for rel in load_catalog().skeleton]


def install_schemas(source: str | Path, dest: str | Path | None = None) -> list[tuple[str, str]]:
    """Copy the official schema files named by the catalog from ``source`` into the user data dir.

    Every catalog file found under ``source`` (either layout of the module docstring) is copied
    to ``dest`` (default ``settings.data_dir() / "pds4"``) under its catalog path, and a
    ``SHA256SUMS`` manifest is written. Files of an IM not present in ``source`` are skipped, but
    at least one IM (``.xsd`` and ``.sch``) and the skeleton must be present.

    Returns
    -------
    list of (relative path, sha256)
    """
    source = Path(source)
    if not source.is_dir():
        raise SchemaNotFoundError(f"{source}: not a directory")
    dest = Path(dest) if dest is not None else settings.data_dir() / "pds4"
    cat = load_catalog()
    wanted: list[str] = []
    found_im = False
    for m in cat.models.values():
        try:
            resolve(m.xsd, source)
            resolve(m.sch, source)
        except SchemaNotFoundError:
            continue
        wanted += [m.xsd, m.sch]
        found_im = True
    if not found_im:
        raise SchemaNotFoundError(
            f"{source}: no PDS4 schema pair (PDS4_PDS_*.xsd + .sch) of {', '.join(cat.models)} found")
    wanted += list(cat.skeleton_all)
    copied: list[tuple[str, str]] = []
    for rel in wanted:
        src = resolve(rel, source)  # raises for a missing skeleton file
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        shutil.copyfile(src, tmp)
        tmp.replace(target)
        copied.append((rel, file_sha256(target)))
    manifest = dest / CHECKSUM_FILE
    tmp = manifest.with_name(f".{manifest.name}.part")
    tmp.write_text("".join(f"{h}  {rel}\n" for rel, h in copied))
    tmp.replace(manifest)
    return copied


def verify_installed(dest: str | Path | None = None) -> list[str]:
    """Problems of an installed schema copy (files missing or changed since installation)."""
    dest = Path(dest) if dest is not None else settings.data_dir() / "pds4"
    manifest = dest / CHECKSUM_FILE
    if not manifest.is_file():
        return [f"{manifest}: no checksum manifest"]
    problems = []
    for line in manifest.read_text().splitlines():
        digest, _, rel = line.partition("  ")
        p = dest / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif file_sha256(p) != digest:
            problems.append(f"{rel}: checksum differs from installation")
    return problems
