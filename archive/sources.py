"""Level-0 sources of the pipeline's sync and download stages (``archive.md`` §3.1).

A source lists the session packages it offers (``<SID>.tar`` or ``<SID>.tar.gz`` with the
trigger file ``<SID>.trg`` beside it, ``level0.md`` §3.2) and copies one package to a local
file. Two kinds, chosen from the location by :func:`open_source` (each class says which
locations it handles, no if-chain):

* :class:`LocalSource`: a directory;
* :class:`HttpSource`: an ``http://`` or ``https://`` URL whose page lists the files as links
  (``python -m http.server`` directory listings, Apache/nginx autoindex).

A package is offered only once its trigger file is there (the trigger is written last).
"""
from __future__ import annotations

import http.client
import logging
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from xsm.products.errors import InputFormatError, ParameterError, StageError

log = logging.getLogger(__name__)

#: Package suffixes, in order of preference (``level0.md`` §3.2).
PACKAGE_SUFFIXES = (".tar", ".tar.gz")
TRIGGER_SUFFIX = ".trg"
#: Seconds an HTTP request may take before it counts as failed.
HTTP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Trigger:
    """Content of a trigger file: package size (bytes) and md5 (hex)."""

    size: int
    md5: str | None = None


@dataclass(frozen=True)
class Offer:
    """One package a source offers: session id, package file name, trigger file name."""

    sid: str
    package: str
    trigger: str


def parse_trigger(text: str, name: str = "trigger") -> Trigger:
    """Parse ``size=<bytes>`` / ``md5=<hex>`` lines; a missing or bad size is an error."""
    kv = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            kv[k.strip().lower()] = v.strip()
    try:
        size = int(kv["size"])
    except (KeyError, ValueError):
        raise InputFormatError(f"{name}: no valid size=<bytes> line") from None
    md5 = kv.get("md5") or None
    if md5 is not None and not re.fullmatch(r"[0-9a-fA-F]{32}", md5):
        raise InputFormatError(f"{name}: md5={md5!r} is not 32 hex digits")
    return Trigger(size, md5.lower() if md5 else None)


def offers_from_names(names) -> list[Offer]:
    """Packages with both the package file and its trigger among ``names`` (sorted by SID)."""
    names = set(names)
    out = []
    for n in names:
        if not n.endswith(TRIGGER_SUFFIX):
            continue
        sid = n[: -len(TRIGGER_SUFFIX)]
        pkg = next((sid + s for s in PACKAGE_SUFFIXES if sid + s in names), None)
        if pkg is not None:
            out.append(Offer(sid, pkg, n))
    return sorted(out, key=lambda o: o.sid)


class Source:
    """Base class: ``handles(location)`` picks the class; subclasses register themselves."""

    kinds: list[type[Source]] = []

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        Source.kinds.append(cls)

    location: str

    @classmethod
    def handles(cls, location: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def offers(self) -> list[Offer]:
        """Packages offered now (trigger present)."""
        raise NotImplementedError

    def read_trigger(self, offer: Offer) -> Trigger:
        raise NotImplementedError

    def fetch(self, offer: Offer, dest: Path) -> int:
        """Copy the package to ``dest``; returns the number of bytes written."""
        raise NotImplementedError


class LocalSource(Source):
    """A directory holding ``<SID>.tar[.gz]`` + ``<SID>.trg``."""

    def __init__(self, location: str):
        self.location = location
        self.dir = Path(location)
        if not self.dir.is_dir():
            raise ParameterError(f"{location}: inbox directory does not exist")

    @classmethod
    def handles(cls, location: str) -> bool:
        return "://" not in location or location.startswith("file://")

    def offers(self) -> list[Offer]:
        return offers_from_names(p.name for p in self.dir.iterdir() if p.is_file())

    def read_trigger(self, offer: Offer) -> Trigger:
        p = self.dir / offer.trigger
        try:
            return parse_trigger(p.read_text(errors="replace"), str(p))
        except OSError as exc:
            raise StageError(f"{p}: cannot read the trigger file ({exc.strerror})") from None

    def fetch(self, offer: Offer, dest: Path) -> int:
        src = self.dir / offer.package
        try:
            with open(src, "rb") as f, open(dest, "wb") as out:
                shutil.copyfileobj(f, out, 1 << 20)
        except OSError as exc:
            raise StageError(f"{src}: download failed ({exc.strerror})") from None
        return dest.stat().st_size


def _why(exc: Exception) -> str:
    """One-line reason of a failed request (``HTTP 503 busy`` or the socket error)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    return str(getattr(exc, "reason", None) or exc).splitlines()[0]


_HREF = re.compile(r'href="([^"?#]+)"', re.IGNORECASE)


class HttpSource(Source):
    """An HTTP(S) URL whose page links the packages and triggers (a directory listing)."""

    def __init__(self, location: str):
        self.location = location if location.endswith("/") else location + "/"

    @classmethod
    def handles(cls, location: str) -> bool:
        return location.startswith(("http://", "https://"))

    def _get(self, name: str) -> bytes:
        url = urllib.parse.urljoin(self.location, urllib.parse.quote(name))
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as r:
                return r.read()
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            raise StageError(f"{url}: {_why(exc)}") from None

    def offers(self) -> list[Offer]:
        page = self._get("").decode("utf-8", "replace")
        names = {urllib.parse.unquote(h).rsplit("/", 1)[-1] for h in _HREF.findall(page)}
        return offers_from_names(n for n in names if n)

    def read_trigger(self, offer: Offer) -> Trigger:
        return parse_trigger(self._get(offer.trigger).decode("ascii", "replace"),
                             self.location + offer.trigger)

    def fetch(self, offer: Offer, dest: Path) -> int:
        url = urllib.parse.urljoin(self.location, urllib.parse.quote(offer.package))
        n = 0
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as r, open(dest, "wb") as out:
                while True:
                    b = r.read(1 << 20)
                    if not b:
                        break
                    out.write(b)
                    n += len(b)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            # a connection cut mid-body is a short download: the size check reports it
            if n == 0:
                raise StageError(f"{url}: download failed ({_why(exc)})") from None
            log.warning("%s: transfer stopped after %d bytes (%s)", url, n, exc)
        return n


def open_source(location: str | Path) -> Source:
    """The :class:`Source` for a directory or URL."""
    loc = str(location)
    for kind in Source.kinds:
        if kind.handles(loc):
            return kind(loc[len("file://"):] if loc.startswith("file://") else loc)
    raise ParameterError(f"{loc}: no source handles this location (a directory or an http(s) URL)")
