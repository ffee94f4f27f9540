"""PDS4 logical identifiers (LID), versions and LIDVIDs of the XSM archive (``spec/pds4.md`` §2).

Patterns (ISDA's, ``pds4.md`` §2.1)::

    bundle       urn:isro:isda:ch2_cho.xsm
    collection   urn:isro:isda:ch2_cho.xsm:data_raw | :data_calibrated
    product      urn:isro:isda:ch2_cho.xsm:data_raw:ch2_xsm_YYYYMMDD_level1_fits
                 urn:isro:isda:ch2_cho.xsm:data_calibrated:ch2_xsm_YYYYMMDD_level2_lc
    day zip      urn:isro:isda:ch2_cho.xsm:daywise_zip:ch2_xsm_YYYYMMDD      (archive.md §2)

The LID carries no processing version: ``v1`` lives only in the file name; the label's
``version_id`` is ``M.n``. Rules (schematron-enforced in 1B00, ``pds4.md`` §2.2): ``urn:``,
lower case, at most 255 characters, no ``::``, bundle 3 colons, collection 4, product 5.

Version rules (``pds4.md`` §2.3): first release 1.0 (``_v1_``); data changed -> next major
(2.0, file ``_v2_``); label-only correction -> next minor (1.1, same file name).

Examples
--------
>>> product_lid_for_file("ch2_xsm_20210828_v1_level2.lc")
'urn:isro:isda:ch2_cho.xsm:data_calibrated:ch2_xsm_20210828_level2_lc'
>>> str(next_version(Version(1, 0), data_changed=True))
'2.0'
>>> lidvid("urn:isro:isda:ch2_cho.xsm", "1.0")
'urn:isro:isda:ch2_cho.xsm::1.0'
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from xsm.products.errors import ParameterError

BUNDLE_LID = "urn:isro:isda:ch2_cho.xsm"
COLLECTION_RAW = f"{BUNDLE_LID}:data_raw"
COLLECTION_CALIBRATED = f"{BUNDLE_LID}:data_calibrated"
#: Collection-like prefix of the day-zip products (``archive.md`` §2).
DAYWISE_ZIP = f"{BUNDLE_LID}:daywise_zip"
INVESTIGATION_LIDVID = "urn:isro:isda:context:investigation:mission.chandrayaan2::1.0"
#: Context products labels may reference (checked locally: they are not in NASA's registry).
KNOWN_CONTEXT = frozenset({INVESTIGATION_LIDVID})

#: Collection id (last LID component) by kind of collection.
COLLECTIONS = {"raw": COLLECTION_RAW, "calibrated": COLLECTION_CALIBRATED}

MAX_LID_LENGTH = 255
_LID_RE = re.compile(r"^urn:[a-z0-9][a-z0-9._\-]*(:[a-z0-9][a-z0-9._\-]*)+$")
_VID_RE = re.compile(r"^(\d+)\.(\d+)$")
#: Registered LID prefixes accepted by the 1B00 schematron (subset relevant here).
REGISTERED_PREFIXES = ("urn:nasa:pds:", "urn:esa:psa:", "urn:ros:rssa:", "urn:jaxa:darts:", "urn:isro:isda:")

#: ``ch2_xsm_YYYYMMDD_vN_level1.fits`` etc. -> (day, version, level, kind).
_FILE_RE = re.compile(
    r"^ch2_xsm_(?P<day>\d{8})_v(?P<ver>\d+)_level(?P<level>[12])(?P<tag>_[a-z0-9]+)?\."
    r"(?P<ext>fits|hk|sa|gti|pha|lc|arf)$")
_ZIP_RE = re.compile(r"^ch2_xsm_(?P<day>\d{8})_v(?P<ver>\d+)\.zip$")


class LidError(ParameterError):
    """A LID, VID or LIDVID breaks the PDS4 rules."""


@total_ordering
@dataclass(frozen=True)
class Version:
    """A PDS4 ``version_id`` ``major.minor``."""

    major: int = 1
    minor: int = 0

    @classmethod
    def parse(cls, text: str | Version) -> Version:
        if isinstance(text, Version):
            return text
        m = _VID_RE.match(str(text).strip())
        if not m:
            raise LidError(f"malformed version_id {text!r}: expected M.n (digits), e.g. 1.0")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def __lt__(self, other: Version) -> bool:
        return (self.major, self.minor) < (other.major, other.minor)

    def next(self, *, data_changed: bool) -> Version:
        return next_version(self, data_changed=data_changed)


def next_version(current: str | Version, *, data_changed: bool) -> Version:
    """Version after ``current``: next major when the data changed, else next minor.

    A new product version also requires new versions of its collection (its inventory changed)
    and of the bundle: use ``data_changed=False`` for those unless their own files changed.
    """
    v = Version.parse(current)
    return Version(v.major + 1, 0) if data_changed else Version(v.major, v.minor + 1)


def file_version(major: int | str | Version) -> int:
    """The ``_vN_`` number of the file names for a version (its major number)."""
    if isinstance(major, Version):
        return major.major
    if isinstance(major, str) and "." in major:
        return Version.parse(major).major
    return int(major)


def lid_problems(lid: str, *, level: str | None = None) -> list[str]:
    """Every rule of ``pds4.md`` §2.2 that ``lid`` breaks (empty list when valid).

    ``level`` (``'bundle'``, ``'collection'``, ``'product'``) also checks the colon count.
    """
    problems = []
    if lid != lid.strip():
        problems.append("leading or trailing white space")
    lid = lid.strip()
    if len(lid) > MAX_LID_LENGTH:
        problems.append(f"longer than {MAX_LID_LENGTH} characters")
    if lid != lid.lower():
        problems.append("upper-case characters (LIDs are lower case)")
    if "::" in lid:
        problems.append("contains '::' (a LID has no version; use the LIDVID form only in references)")
    elif not _LID_RE.match(lid.lower()):
        problems.append("not of the form urn:agency:authority:... with [a-z0-9._-] components")
    if not lid.lower().startswith(REGISTERED_PREFIXES):
        problems.append("does not start with a registered prefix (urn:isro:isda:, urn:nasa:pds:, ...)")
    want = {"bundle": 3, "collection": 4, "product": 5}.get(level or "")
    if want is not None and lid.count(":") != want:
        problems.append(f"a {level} LID has {want} colons, this one {lid.count(':')}")
    return problems


def check_lid(lid: str, *, level: str | None = None) -> str:
    """Return ``lid`` when valid, else raise :class:`LidError` naming the broken rules."""
    problems = lid_problems(lid, level=level)
    if problems:
        raise LidError(f"malformed LID {lid!r}: {'; '.join(problems)}")
    return lid


def lidvid(lid: str, version: str | Version) -> str:
    """``LID::M.n``."""
    return f"{check_lid(lid)}::{Version.parse(version)}"


def split_lidvid(text: str) -> tuple[str, Version | None]:
    """(LID, Version or None) of a LID or LIDVID; raises :class:`LidError` when malformed."""
    lid, sep, vid = text.strip().partition("::")
    check_lid(lid)
    return lid, (Version.parse(vid) if sep else None)


def is_lidvid(text: str) -> bool:
    try:
        return split_lidvid(text)[1] is not None
    except LidError:
        return False


def level_of(lid: str) -> str:
    """``'bundle'``, ``'collection'`` or ``'product'`` by the number of colons."""
    return {3: "bundle", 4: "collection"}.get(lid.count(":"), "product")


def collection_of(lid: str) -> str:
    """The collection LID a product LID belongs to (``pds4.md`` §2.2: product = collection + id)."""
    return lid.rsplit(":", 1)[0]


def collection_lid(kind: str, bundle: str = BUNDLE_LID) -> str:
    """Collection LID: ``kind`` = ``raw``/``calibrated`` or a collection id (``data_raw``)."""
    cid = {"raw": "data_raw", "calibrated": "data_calibrated"}.get(kind, kind)
    return check_lid(f"{bundle}:{cid}", level="collection")


def product_lid(day: str, level: int, kind: str, *, tag: str = "") -> str:
    """Product LID of an archive file: ``day`` ``YYYYMMDD``, level 1/2, ``kind`` = file extension.

    ``tag`` (``bkg``, ``cal``, ``hr``, …) is appended to the product id for non-standard files.
    """
    if not re.fullmatch(r"\d{8}", str(day)):
        raise LidError(f"day {day!r} is not YYYYMMDD")
    coll = COLLECTION_RAW if int(level) == 1 else COLLECTION_CALIBRATED
    pid = f"ch2_xsm_{day}_level{int(level)}_{kind}" + (f"_{tag.strip('_')}" if tag else "")
    return check_lid(f"{coll}:{pid}", level="product")


def zip_lid(day: str) -> str:
    """LID of a day zip ``ch2_xsm_YYYYMMDD_vN.zip`` (``archive.md`` §2)."""
    return check_lid(f"{DAYWISE_ZIP}:ch2_xsm_{day}", level="product")


@dataclass(frozen=True)
class FileIdentity:
    """What an archive file name says: day, processing version, level, kind, optional tag."""

    day: str
    version: int
    level: int
    kind: str
    tag: str = ""

    @property
    def lid(self) -> str:
        return product_lid(self.day, self.level, self.kind, tag=self.tag)

    @property
    def label_name(self) -> str:
        """Label file name: ``ch2_xsm_YYYYMMDD_v1_level2_lc.xml`` (``pds4.md`` §2.1)."""
        tag = f"_{self.tag}" if self.tag else ""
        return f"ch2_xsm_{self.day}_v{self.version}_level{self.level}{tag}_{self.kind}.xml"


def parse_file_name(name: str) -> FileIdentity | None:
    """:class:`FileIdentity` of an archive file name, or None when it does not follow the pattern."""
    m = _FILE_RE.match(name)
    if not m:
        return None
    return FileIdentity(day=m["day"], version=int(m["ver"]), level=int(m["level"]), kind=m["ext"],
                        tag=(m["tag"] or "").strip("_"))


def product_lid_for_file(name: str) -> str:
    """Product LID for an archive file name (raises :class:`LidError` when it has no pattern)."""
    ident = parse_file_name(name)
    if ident is None:
        m = _ZIP_RE.match(name)
        if m:
            return zip_lid(m["day"])
        raise LidError(f"{name}: not an archive file name (ch2_xsm_YYYYMMDD_vN_levelL.EXT); "
                       "give the LID explicitly")
    return ident.lid


def label_name_for_file(name: str) -> str:
    """Label file name beside a data file: ISDA's pattern, else ``<stem>_<ext>.xml``."""
    ident = parse_file_name(name)
    if ident is not None:
        return ident.label_name
    m = _ZIP_RE.match(name)
    if m:
        return name[:-4] + ".xml"
    stem, _, ext = name.rpartition(".")
    return f"{stem}_{ext}.xml" if stem else f"{name}.xml"
