"""Offline validation of PDS4 labels (``spec/pds4.md`` §5, §6).

For every label:

1. well-formed XML (``xml.malformed``), label file name rules (``label.name``);
2. the information model it names: ``<?xml-model?>`` with the Schematron ``schematypens``, the
   ``xsi:schemaLocation``, ``information_model_version`` agreeing (``label.model``);
3. XSD validity against the local schema of that IM (``xsd``): lxml, built once per process;
   schema URLs are mapped to local files through ``xsm.schemas`` and never fetched;
4. Schematron of the same IM (``schematron``; ``role="warning"`` rules give warnings): the
   ``.sch`` is compiled once through the ISO XSLT2 skeleton with saxonche and the compiled
   XSLT cached in the user data directory (``<data_dir>/cache/schematron``);
5. LID/LIDVID syntax (``lid.syntax``, ``lid.version``, ``lid.reference``) and time order;
6. the data checks NASA's validate makes: the file exists beside the label (``data.file.missing``),
   size and md5 (``data.file.size``, ``data.file.md5``), every ``Header`` and ``Table_Binary``
   offset and length against the FITS file (``data.header.offset``, ``data.header.length``,
   ``data.table.offset``, ``data.table.records``, ``data.record.length``), objects in order and
   not overlapping (``data.object.order``), the file covered to its end (``data.file.extent``),
   fields and groups inside the record, sequential, typed as the TFORM says (``data.field.*``,
   ``data.group.*``), ``File/records`` (``data.file.records``); inventories: CRLF, P/S, LIDVIDs,
   ``records`` (``inventory.*``);
7. across the labels of one call: unique LIDVIDs, bundle members and inventory members present
   (``bundle.*``) when the bundle's labels are validated together.

Without schema files (none configured or installed: ``xsm.schemas.locator``) steps 3 and 4 are
skipped and ONE warning finding ``schema.unavailable`` says so and how to install the schemas;
every other check still runs. Callers that must have full validation (a release for ISDA) pass
``require_schemas=True`` and get :class:`~xsm.schemas.locator.SchemaNotFoundError` instead.

:func:`validate_labels` returns :class:`Findings` (rule, severity, location, message); it never
raises for a bad label. With ``workers > 1`` labels are spread over a process pool, each worker
building its validators once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from lxml import etree

from xsm.labels import lidvid as L
from xsm.labels.fitsmap import PDS4_TYPES, FitsStructure, scan_fits
from xsm.products import settings
from xsm.products.errors import InputFormatError, LabelValidationError, XsmError
from xsm.products.fitsio import atomic_path
from xsm.products.provenance import file_md5
from xsm.schemas import locator

log = logging.getLogger(__name__)

PDS_NS = "http://pds.nasa.gov/pds4/pds/v1"
NS = {"pds": PDS_NS}
SVRL_NS = "http://purl.oclc.org/dsdl/svrl"
SCHEMATRON_NS = "http://purl.oclc.org/dsdl/schematron"
XSI_LOCATION = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

ERROR = "error"
WARNING = "warning"
#: Rule of the one warning finding when XSD/Schematron were skipped for lack of schema files.
SCHEMA_UNAVAILABLE = "schema.unavailable"


@dataclass(frozen=True)
class Finding:
    """One problem: the rule it breaks, how bad, where, and what."""

    rule: str
    severity: str
    location: str
    message: str
    label: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Findings:
    """All findings of a validation run, with the labels checked."""

    items: list[Finding] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.items if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.items if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def rules(self, severity: str | None = ERROR) -> set[str]:
        return {f.rule for f in self.items if severity is None or f.severity == severity}

    def for_label(self, label: str | Path) -> list[Finding]:
        return [f for f in self.items if f.label == str(label)]

    def extend(self, other: Iterable[Finding]) -> None:
        self.items.extend(other)

    def to_json(self) -> str:
        return json.dumps({"labels": self.labels, "errors": len(self.errors),
                           "warnings": len(self.warnings),
                           "findings": [f.as_dict() for f in self.items]}, indent=2)

    def raise_if_errors(self) -> None:
        if self.errors:
            first = self.errors[0]
            raise LabelValidationError(f"{len(self.errors)} error(s); first: {first.location}: "
                                       f"[{first.rule}] {first.message}")


# --- validators (built once per process) ------------------------------------------------------

_XSD_CACHE: dict[str, etree.XMLSchema] = {}
_SCH_CACHE: dict[str, object] = {}
_SAXON: dict[str, object] = {}


def _xsd(im: str) -> etree.XMLSchema:
    path = locator.xsd_path(im)
    key = str(path)
    if key not in _XSD_CACHE:
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        _XSD_CACHE[key] = etree.XMLSchema(etree.parse(str(path), parser))
    return _XSD_CACHE[key]


def _processor():
    if "proc" not in _SAXON:
        from saxonche import PySaxonProcessor

        proc = PySaxonProcessor(license=False)
        _SAXON["proc"] = proc
        _SAXON["xslt"] = proc.new_xslt30_processor()
    return _SAXON["proc"], _SAXON["xslt"]


def schematron_cache_dir() -> Path:
    return settings.data_dir() / "cache" / "schematron"


def compiled_schematron(im: str) -> Path:
    """Path of the validator XSLT compiled from the ``.sch`` of ``im`` (compiled once, cached).

    The cache key is the sha256 of the ``.sch`` and of the skeleton files, so a changed schema
    or skeleton is recompiled.
    """
    sch = locator.sch_path(im)
    steps = locator.skeleton_paths()
    h = hashlib.sha256(sch.read_bytes())
    for s in steps:
        h.update(s.read_bytes())
    target = schematron_cache_dir() / f"{sch.stem}-{h.hexdigest()[:20]}.xsl"
    if target.is_file():
        return target
    proc, xslt = _processor()
    current = str(sch)
    text = ""
    try:
        for step in steps:
            ex = xslt.compile_stylesheet(stylesheet_file=str(step))
            if "svrl" in step.name:
                ex.set_parameter("allow-foreign", proc.make_string_value("true"))
            text = ex.transform_to_string(source_file=current)
            if not text:
                raise LabelValidationError(f"compiling {sch.name} with {step.name} failed: "
                                           f"{getattr(ex, 'error_message', '') or 'no output'}")
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{step.stem}.part")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            current = str(tmp)
        os.replace(current, target)
    finally:  # the intermediate steps' files, also when a step failed
        for p in target.parent.glob(f".{target.name}.{os.getpid()}.*.part"):
            p.unlink(missing_ok=True)
    log.info("compiled %s to %s", sch.name, target)
    return target


XSL_NS = "http://www.w3.org/1999/XSL/Transform"
#: Use the single-pass form of the compiled Schematron (:func:`single_pass_xslt`) when possible.
SINGLE_PASS = True
_MODE_RE = re.compile(r"^M\d+$")


def single_pass_xslt(compiled: Path) -> Path | None:
    """A one-traversal version of a skeleton-compiled Schematron validator (cached beside it).

    The ISO skeleton gives every pattern its own mode and walks the whole document once per
    pattern (twice, counting the ``active-pattern`` output): 526 walks for the 1B00 rules, which
    dominate validation time. When every pattern has exactly one rule (true of the PDS4 core
    Schematron files), the rule templates can share one mode, each with its own priority (in
    pattern order) and ending in ``xsl:next-match``, so that every rule matching a node fires,
    as in Schematron, during a single walk. The failed asserts and successful reports are the
    same (``tests/labels/test_labels_validate.py`` compares both on broken labels); only the
    ``active-pattern``/``fired-rule`` bookkeeping of the SVRL differs.

    Returns None (use the original) when the stylesheet does not have that shape.
    """
    target = compiled.with_name(compiled.stem + "-single-pass.xsl")
    if target.is_file():
        return target
    tree = etree.parse(str(compiled))
    root = tree.getroot()
    x = f"{{{XSL_NS}}}"
    templates = [t for t in root if t.tag == x + "template" and _MODE_RE.match(t.get("mode") or "")]
    rules: dict[str, list] = {}
    for t in templates:
        if t.get("priority") == "1000":
            rules.setdefault(t.get("mode"), []).append(t)
    modes = {t.get("mode") for t in templates}
    if not rules or any(len(v) != 1 for v in rules.values()) or set(rules) != modes:
        log.info("%s: not one rule per pattern; keeping the skeleton's multi-pass validator", compiled.name)
        return None
    for t in templates:
        mode = t.get("mode")
        if t.get("priority") != "1000":
            root.remove(t)  # the per-mode text() and @*|node() fallbacks
            continue
        last = [c for c in t if isinstance(c.tag, str)][-1]
        if last.tag != x + "apply-templates" or last.get("mode") != mode or last.get("select") != "*":
            log.info("%s: unexpected rule template shape; keeping the multi-pass validator", compiled.name)
            return None
        t.remove(last)
        etree.SubElement(t, x + "next-match")
        t.set("mode", "XSMALL")
        t.set("priority", str(1_000_000 - int(mode[1:])))
    for match in ("*", "/"):
        fb = etree.SubElement(root, x + "template", match=match, priority="-100", mode="XSMALL")
        etree.SubElement(fb, x + "apply-templates", select="*", mode="XSMALL")
    # the root template: one walk instead of an active-pattern + a walk per pattern
    main = next(t for t in root if t.tag == x + "template" and t.get("match") == "/" and not t.get("mode"))
    out = next(c for c in main if isinstance(c.tag, str))
    first = None
    for c in list(out):
        if not isinstance(c.tag, str):
            continue
        if etree.QName(c).localname == "active-pattern" or (c.tag == x + "apply-templates" and
                                                            _MODE_RE.match(c.get("mode") or "")):
            if first is None:
                first = out.index(c)
            out.remove(c)
    walk = etree.Element(x + "apply-templates", select="/", mode="XSMALL")
    out.insert(first if first is not None else len(out), walk)
    with atomic_path(target) as tmp:
        tree.write(str(tmp), xml_declaration=True, encoding="UTF-8")
    return target


def _schematron(im: str):
    if im not in _SCH_CACHE:
        path = compiled_schematron(im)
        if SINGLE_PASS:
            path = single_pass_xslt(path) or path
        _, xslt = _processor()
        _SCH_CACHE[im] = xslt.compile_stylesheet(stylesheet_file=str(path))
    return _SCH_CACHE[im]


def prepare(ims: Sequence[str] = ("1B00",)) -> None:
    """Build the XSD and Schematron validators of ``ims`` now (raises if schemas are missing)."""
    for im in ims:
        _xsd(im)
        _schematron(im)


# --- one label ---------------------------------------------------------------------------------

class _Ctx:
    def __init__(self, path: Path):
        self.path = path
        self.name = str(path)
        self.items: list[Finding] = []

    def add(self, rule: str, message: str, where=None, severity: str = ERROR) -> None:
        if where is None:
            loc = self.name
        elif isinstance(where, int):
            loc = f"{self.name}:{where}"
        elif isinstance(where, str):
            loc = f"{self.name}:{where}" if where else self.name
        else:  # element
            loc = f"{self.name}:{where.sourceline}" if getattr(where, "sourceline", None) else self.name
        self.items.append(Finding(rule, severity, loc, " ".join(str(message).split()), self.name))


def _local(el) -> str:
    """Local name of an element ('' for comments and processing instructions)."""
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _text(el, path: str, default=None):
    found = el.find(path, NS)
    return found.text.strip() if found is not None and found.text is not None else default


def _int(el, path: str):
    t = _text(el, path)
    try:
        return int(t) if t is not None else None
    except ValueError:
        return None


def _model_of(tree, ctx: _Ctx) -> str | None:
    """IM code named by the label (xml-model PI, schemaLocation), with consistency findings."""
    root = tree.getroot()
    sch_im = None
    found_pi = False
    for node in root.itersiblings(preceding=True):
        if isinstance(node, etree._ProcessingInstruction) and node.target == "xml-model":
            found_pi = True
            href = node.get("href") or ""
            if node.get("schematypens") != SCHEMATRON_NS:
                ctx.add("label.model", f"<?xml-model?> for {href} lacks schematypens=\"{SCHEMATRON_NS}\"", node)
            m = locator.model_for_url(href)
            if m is None:
                ctx.add("label.model", f"<?xml-model?> names an unknown schematron {href}", node)
            else:
                sch_im = m.im
    if not found_pi:
        ctx.add("label.model", "no <?xml-model?> processing instruction naming the Schematron file", 1)
    xsd_im = None
    loc = (root.get(XSI_LOCATION) or "").split()
    for ns, url in zip(loc[::2], loc[1::2]):
        if ns == PDS_NS:
            m = locator.model_for_url(url)
            if m is None:
                ctx.add("label.model", f"xsi:schemaLocation names an unknown schema {url}", root)
            else:
                xsd_im = m.im
    if xsd_im is None and not any(f.rule == "label.model" for f in ctx.items):
        ctx.add("label.model", "xsi:schemaLocation names no PDS4 core schema", root)
    if sch_im and xsd_im and sch_im != xsd_im:
        ctx.add("label.model", f"Schematron ({sch_im}) and XSD ({xsd_im}) versions differ", root)
    im = xsd_im or sch_im
    if im:
        version = _text(root, "pds:Identification_Area/pds:information_model_version")
        want = locator.model(im).version
        if version is not None and version != want:
            ctx.add("label.model", f"information_model_version {version} but the schema is {im} ({want})", root)
    return im


def _check_name(ctx: _Ctx) -> None:
    name = ctx.path.name
    if not name.endswith(".xml"):
        ctx.add("label.name", f"label file name {name} does not end in .xml")
    if len(name) > 255 or not _NAME_RE.match(name):
        ctx.add("label.name", f"label file name {name} breaks [A-Za-z0-9][A-Za-z0-9_.-]* / 255 characters")


def _check_xsd(tree, im: str, ctx: _Ctx) -> None:
    schema = _xsd(im)
    if not schema.validate(tree):
        for e in schema.error_log:
            ctx.add("xsd", e.message, e.line)


def run_schematron(executable, path: Path) -> list[tuple[str, str, str]] | None:
    """(severity, location XPath, message) of every failed assert / successful report; None on failure."""
    out = executable.transform_to_string(source_file=str(Path(path).resolve()))
    if not out:
        return None
    svrl = etree.fromstring(out.encode("utf-8"))
    results = []
    rule_role = None
    for el in svrl:
        tag = _local(el)
        if tag == "fired-rule":
            rule_role = el.get("role")
        elif tag in ("failed-assert", "successful-report"):
            role = (el.get("role") or rule_role or "").lower()
            sev = WARNING if role in ("warning", "warn", "info", "information") else ERROR
            results.append((sev, el.get("location", ""), " ".join("".join(el.itertext()).split())))
    return results


def _check_schematron(path: Path, im: str, ctx: _Ctx) -> None:
    ex = _schematron(im)
    results = run_schematron(ex, path)
    if results is None:
        ctx.add("schematron", f"Schematron run failed: {getattr(ex, 'error_message', '') or 'no output'}")
        return
    for sev, location, text in results:
        ctx.add("schematron", text, location, sev)


def _check_ids(root, ctx: _Ctx) -> None:
    ia = root.find("pds:Identification_Area", NS)
    if ia is None:
        return
    lid_el = ia.find("pds:logical_identifier", NS)
    level = {"Product_Bundle": "bundle", "Product_Collection": "collection"}.get(
        etree.QName(root).localname, "product")
    if lid_el is not None and lid_el.text:
        for p in L.lid_problems(lid_el.text.strip(), level=level):
            ctx.add("lid.syntax", f"logical_identifier {lid_el.text.strip()}: {p}", lid_el)
    for vid in ia.iterfind(".//pds:version_id", NS):
        try:
            L.Version.parse(vid.text or "")
        except L.LidError as exc:
            ctx.add("lid.version", str(exc), vid)
    hist = [v.text.strip() for v in ia.iterfind("pds:Modification_History/pds:Modification_Detail/pds:version_id", NS)
            if v.text]
    own = _text(ia, "pds:version_id")
    if hist and own and hist[-1] != own:
        ctx.add("lid.version", f"the last Modification_Detail version ({hist[-1]}) is not version_id {own}", ia)
    for ref in root.iterfind(".//pds:lidvid_reference", NS):
        try:
            lid, v = L.split_lidvid(ref.text or "")
            if v is None:
                ctx.add("lid.reference", f"lidvid_reference {ref.text} has no ::version", ref)
            elif ":context:" in lid and ref.text.strip() not in L.KNOWN_CONTEXT:
                ctx.add("lid.context", f"context product {ref.text.strip()} is not in xsm's local list of "
                        "context products (Chandrayaan-2 context products are not in NASA's registry)",
                        ref, WARNING)
        except L.LidError as exc:
            ctx.add("lid.reference", str(exc), ref)
    start = root.find(".//pds:Time_Coordinates/pds:start_date_time", NS)
    stop = root.find(".//pds:Time_Coordinates/pds:stop_date_time", NS)
    if start is not None and stop is not None and start.text and stop.text:
        if start.text.strip().rstrip("Z") > stop.text.strip().rstrip("Z"):
            ctx.add("label.time", f"start_date_time {start.text} is after stop_date_time {stop.text}", start)


def _check_file(file_el, base: Path, ctx: _Ctx) -> Path | None:
    """File exists, size and md5 match; returns the data path when present."""
    name = _text(file_el, "pds:file_name")
    if not name:
        return None
    if len(name) > 255 or not _NAME_RE.match(name):
        ctx.add("data.file.name", f"file_name {name} breaks [A-Za-z0-9][A-Za-z0-9_.-]* / 255 characters", file_el)
    data = base / name
    if not data.is_file() or name not in os.listdir(base):  # case-sensitive even on odd filesystems
        ctx.add("data.file.missing", f"data file {name} not found beside the label", file_el)
        return None
    size = _int(file_el, "pds:file_size")
    actual = data.stat().st_size
    if size is not None and size != actual:
        ctx.add("data.file.size", f"file_size {size} but {name} has {actual} bytes", file_el.find("pds:file_size", NS))
    md5 = _text(file_el, "pds:md5_checksum")
    if md5 is not None:
        got = file_md5(data)
        if md5.lower() != got:
            ctx.add("data.file.md5", f"md5_checksum {md5} but {name} has {got}", file_el.find("pds:md5_checksum", NS))
    return data


def _check_fields(record, record_length: int, columns, ctx: _Ctx, where: str) -> None:
    """Fields/groups inside the record, sequential, non-overlapping, typed as the TFORMs say."""
    items = [el for el in record if _local(el) in ("Field_Binary", "Group_Field_Binary")]
    nf = sum(_local(el) == "Field_Binary" for el in items)
    ng = len(items) - nf
    if _int(record, "pds:fields") not in (None, nf):
        ctx.add("data.record.fields", f"{where}: fields = {_int(record, 'pds:fields')} but {nf} Field_Binary", record)
    if _int(record, "pds:groups") not in (None, ng):
        ctx.add("data.record.fields", f"{where}: groups = {_int(record, 'pds:groups')} but {ng} Group_Field_Binary", record)
    prev_end = 1
    for i, el in enumerate(items):
        is_group = _local(el) == "Group_Field_Binary"
        if is_group:
            loc = _int(el, "pds:group_location")
            reps = _int(el, "pds:repetitions") or 0
            glen = _int(el, "pds:group_length") or 0
            inner = el.find("pds:Field_Binary", NS)
            flen = _int(inner, "pds:field_length") if inner is not None else None
            dtype = _text(inner, "pds:data_type") if inner is not None else None
            name = _text(inner, "pds:name") if inner is not None else "?"
            if inner is not None and flen is not None and reps * flen != glen:
                ctx.add("data.group.length", f"{where}: group {name}: group_length {glen} != repetitions "
                        f"{reps} x field_length {flen}", el)
            if inner is not None and _int(inner, "pds:field_location") != 1:
                ctx.add("data.group.location", f"{where}: group {name}: inner field_location must be 1", inner)
            length = glen
        else:
            loc = _int(el, "pds:field_location")
            flen = _int(el, "pds:field_length") or 0
            dtype = _text(el, "pds:data_type")
            name = _text(el, "pds:name")
            reps = 1
            length = flen
        if loc is None:
            continue
        if loc < 1 or loc + length - 1 > record_length:
            ctx.add("data.field.location", f"{where}: {name} at {loc} length {length} lies outside the "
                    f"{record_length}-byte record", el)
        if loc < prev_end:
            ctx.add("data.field.overlap", f"{where}: {name} at {loc} overlaps the previous field (ends at {prev_end - 1})", el)
        prev_end = max(prev_end, loc + length)
        if columns is not None:
            col = next((c for c in columns if c.location == loc), None)
            if col is None:
                ctx.add("data.field.location", f"{where}: no FITS column starts at byte {loc} ({name})", el)
                continue
            want_type, width = PDS4_TYPES.get(col.code, (None, None))
            want_len = col.repeat if col.code == "A" else width
            want_reps = 1 if col.code == "A" else col.repeat
            if want_type != dtype or want_len != flen:
                ctx.add("data.field.type", f"{where}: {name}: {dtype}/{flen} bytes but column {col.name} "
                        f"is TFORM {col.tform} ({want_type}/{want_len} bytes)", el)
            fel = el.find("pds:Field_Binary", NS) if is_group else el
            for tag, want in (("value_offset", col.tzero), ("scaling_factor", col.tscal)):
                neutral = 0.0 if tag == "value_offset" else 1.0
                got_text = _text(fel, f"pds:{tag}") if fel is not None else None
                try:
                    got = float(got_text) if got_text is not None else neutral
                except ValueError:
                    continue  # the XSD reports it
                if got != (float(want) if want is not None else neutral):
                    ctx.add("data.field.scaling", f"{where}: {name}: {tag} {got_text or 'absent'} but column "
                            f"{col.name} has {'TZERO' if tag == 'value_offset' else 'TSCAL'} "
                            f"{want if want is not None else 'absent'}", el)
            if want_reps != reps:
                ctx.add("data.group.repetitions", f"{where}: {name}: {reps} repetition(s) but column "
                        f"{col.name} is TFORM {col.tform}", el)
    if prev_end - 1 > record_length:
        ctx.add("data.record.length", f"{where}: fields end at byte {prev_end - 1} beyond record_length {record_length}", record)


def _check_fits_objects(fa, structure: FitsStructure, ctx: _Ctx) -> None:
    hdus = structure.hdus
    by_header = {h.header_offset: h for h in hdus}
    by_data = {h.data_offset: h for h in hdus}
    objects = []  # (offset, length, element)
    headers = fa.findall("pds:Header", NS)
    for el in headers:
        off = _int(el, "pds:offset")
        length = _int(el, "pds:object_length")
        lid = _text(el, "pds:local_identifier", "Header")
        h = by_header.get(off)
        if h is None:
            ctx.add("data.header.offset", f"Header {lid}: offset {off} is not the start of a FITS header "
                    f"(headers start at {sorted(by_header)})", el.find("pds:offset", NS))
        elif length is not None and length != h.header_length:
            ctx.add("data.header.length", f"Header {lid}: object_length {length} but the FITS header at "
                    f"{off} is {h.header_length} bytes", el.find("pds:object_length", NS))
        objects.append((off, length if length is not None else 0, el))
    if len(headers) != len(hdus):
        ctx.add("data.header.count", f"{len(headers)} Header object(s) for {len(hdus)} HDU(s) in {structure.path.name}", fa)
    tables = fa.findall("pds:Table_Binary", NS)
    for el in tables:
        off = _int(el, "pds:offset")
        lid = _text(el, "pds:local_identifier", "Table_Binary")
        rec = el.find("pds:Record_Binary", NS)
        records = _int(el, "pds:records")
        rlen = _int(rec, "pds:record_length") if rec is not None else None
        h = by_data.get(off)
        if h is None or not h.is_table:
            ctx.add("data.table.offset", f"Table_Binary {lid}: offset {off} is not the start of a binary "
                    f"table's data (tables start at {[t.data_offset for t in structure.tables]})",
                    el.find("pds:offset", NS))
            columns = None
        else:
            columns = h.columns
            if records is not None and records != h.naxis2:
                ctx.add("data.table.records", f"Table_Binary {lid}: records {records} but NAXIS2 = {h.naxis2}",
                        el.find("pds:records", NS))
            if rlen is not None and rlen != h.naxis1:
                ctx.add("data.record.length", f"Table_Binary {lid}: record_length {rlen} but NAXIS1 = {h.naxis1}",
                        rec.find("pds:record_length", NS))
        if rec is not None and rlen is not None:
            _check_fields(rec, rlen, columns, ctx, lid)
        objects.append((off, (records or 0) * (rlen or 0), el))
    filled = [t for t in structure.tables if t.naxis2 > 0]  # PDS4 cannot describe empty tables
    if len(tables) != len(filled):
        ctx.add("data.table.count", f"{len(tables)} Table_Binary object(s) for {len(filled)} "
                f"binary table(s) with rows in {structure.path.name}", fa)
    # order and overlaps, in document order
    prev_end = 0
    for off, length, el in sorted(objects, key=lambda o: o[2].sourceline or 0):
        if off is None:
            continue
        if off < prev_end:
            ctx.add("data.object.order", f"{_text(el, 'pds:local_identifier', 'object')} at {off} overlaps or "
                    f"precedes the previous object (ending at {prev_end})", el)
        prev_end = max(prev_end, off + length)
    last = hdus[-1]
    end = last.data_offset + last.padded_data_length
    if structure.trailing_bytes or end != structure.size:
        ctx.add("data.file.extent", f"{structure.path.name}: the FITS HDUs end at {end} but the file has "
                f"{structure.size} bytes", fa)
    file_records = _int(fa, "pds:File/pds:records")
    if file_records is not None and structure.tables and file_records != structure.tables[0].naxis2:
        ctx.add("data.file.records", f"File/records {file_records} but the table has "
                f"{structure.tables[0].naxis2} rows", fa.find("pds:File/pds:records", NS))


def _check_observational(root, base: Path, ctx: _Ctx, content: bool = False) -> None:
    for fa in root.iterfind("pds:File_Area_Observational", NS):
        file_el = fa.find("pds:File", NS)
        if file_el is None:
            continue
        data = _check_file(file_el, base, ctx)
        if data is None:
            continue
        if any(_text(h, "pds:parsing_standard_id") == "FITS 3.0" for h in fa.iterfind("pds:Header", NS)):
            try:
                structure = scan_fits(data)
            except InputFormatError as exc:
                ctx.add("data.fits", str(exc), file_el)
                continue
            _check_fits_objects(fa, structure, ctx)
            if content and not any(f.severity == ERROR and f.rule.startswith("data.") for f in ctx.items):
                _check_content(ctx.path, data, ctx)


def _check_collection(root, base: Path, ctx: _Ctx) -> list[str]:
    """Inventory checks; returns the member LIDVIDs/LIDs (for cross-label checks)."""
    fa = root.find("pds:File_Area_Inventory", NS)
    if fa is None:
        return []
    file_el = fa.find("pds:File", NS)
    data = _check_file(file_el, base, ctx) if file_el is not None else None
    if data is None:
        return []
    raw = data.read_bytes()
    inv = fa.find("pds:Inventory", NS)
    lines = raw.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines = lines[:-1]
    if b"\n" in raw.replace(b"\r\n", b"") or b"\r" in raw.replace(b"\r\n", b"") or not raw.endswith(b"\r\n"):
        ctx.add("inventory.crlf", f"{data.name}: lines must end with CR LF", inv)
    records = _int(inv, "pds:records") if inv is not None else None
    if records is not None and records != len(lines):
        ctx.add("inventory.records", f"{data.name}: records {records} but the file has {len(lines)} lines",
                inv.find("pds:records", NS))
    lid = _text(root, "pds:Identification_Area/pds:logical_identifier", "")
    from xsm.labels.bundle import InventoryEntry, inventory_problems

    entries = []
    for ln in lines:
        status, _, ref = ln.decode("ascii", "replace").partition(",")
        entries.append(InventoryEntry(status, ref))
    for p in inventory_problems(entries, lid):
        ctx.add("inventory.member", f"{data.name}: {p}", inv)
    return [e.reference for e in entries if e.status == "P"]


def _check_content(label: Path, data: Path, ctx: _Ctx) -> None:
    """Read the tables through the label (pds4_tools) and compare with astropy (``pds4.md`` §5 #8)."""
    try:
        import warnings

        import numpy as np
        import pds4_tools
        from astropy.io import fits
    except ImportError:
        ctx.add("data.content", "content read-back needs pds4_tools (pip install pds4-tools)", None, WARNING)
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            struct = pds4_tools.read(str(label), quiet=True, lazy_load=False)
        tables = [s for s in struct.structures if s.is_table()]
        with fits.open(data, memmap=True) as hdul:
            exts = [h for h in hdul if isinstance(h, fits.BinTableHDU)]
            if len(tables) != len(exts):
                ctx.add("data.content", f"{len(tables)} tables read through the label, {len(exts)} in the file")
                return
            for st, hdu in zip(tables, exts):
                names = [f.meta_data["name"] for f in st.fields]
                for name, col in zip(names, hdu.columns):
                    a, b = np.asarray(st[name]), np.asarray(hdu.data[col.name])
                    if a.dtype.kind in "SU" or b.dtype.kind in "SU":
                        same = np.array_equal(np.char.rstrip(a.astype(str)), np.char.rstrip(b.astype(str)))
                    else:
                        same = a.shape == b.shape and np.array_equal(a, b)
                    if not same:
                        ctx.add("data.content", f"{st.id}/{name}: values read through the label differ from "
                                f"column {col.name} of {data.name}")
    except Exception as exc:  # a label pds4_tools cannot read is a finding, not a crash
        ctx.add("data.content", f"pds4_tools cannot read {data.name} through the label: {exc}")


def _check_simple_files(root, base: Path, ctx: _Ctx) -> None:
    for file_el in root.iterfind(".//pds:File", NS):
        _check_file(file_el, base, ctx)


def validate_label(path: str | Path, *, data: bool = True, schematron: bool = True,
                   content: bool = False, skip_schema: Mapping[str, str] | None = None
                   ) -> tuple[list[Finding], dict]:
    """Findings of one label and its identity (``lidvid``, ``class``, members) for cross checks.

    ``skip_schema``: information model -> ``"all"`` (no XSD file: no XSD or Schematron checks)
    or ``"schematron"`` (no ``.sch`` or skeleton: the XSD check still runs), for the models
    whose schema files are unavailable (:func:`validate_labels` reports that once).
    """
    skip_schema = skip_schema or {}
    path = Path(path)
    ctx = _Ctx(path)
    info: dict = {"label": str(path)}
    if not path.is_file():
        ctx.add("label.missing", f"label {path} not found")
        return ctx.items, info
    _check_name(ctx)
    try:
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        tree = etree.parse(str(path), parser)
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        ctx.add("xml.malformed", f"not well-formed XML: {exc.msg if hasattr(exc, 'msg') else exc}", line)
        return ctx.items, info
    root = tree.getroot()
    cls = etree.QName(root).localname
    info["class"] = cls
    lid = _text(root, "pds:Identification_Area/pds:logical_identifier")
    vid = _text(root, "pds:Identification_Area/pds:version_id")
    if lid and vid:
        info["lidvid"] = f"{lid}::{vid}"
    im = _model_of(tree, ctx)
    skipped = skip_schema.get(im) if im is not None else "all"
    if skipped != "all":
        try:
            _check_xsd(tree, im, ctx)
            if schematron and skipped != "schematron":
                _check_schematron(path, im, ctx)
        except locator.SchemaNotFoundError as exc:
            ctx.add("schema.missing", str(exc))
    _check_ids(root, ctx)
    if data:
        base = path.parent
        if cls == "Product_Observational":
            _check_observational(root, base, ctx, content)
        elif cls == "Product_Collection":
            info["members"] = _check_collection(root, base, ctx)
        else:
            _check_simple_files(root, base, ctx)
    if cls == "Product_Bundle":
        info["members"] = [r.text.strip() for r in root.iterfind("pds:Bundle_Member_Entry/pds:lidvid_reference", NS)
                           if r.text]
    info["files"] = [f.text.strip() for f in root.iterfind(".//pds:File/pds:file_name", NS) if f.text]
    return ctx.items, info


def _validate_chunk(paths: Sequence[str], data: bool, schematron: bool, content: bool = False,
                    skip_schema: Mapping[str, str] | None = None) -> list[tuple[list[Finding], dict]]:
    return [validate_label(p, data=data, schematron=schematron, content=content,
                           skip_schema=skip_schema) for p in paths]


def _directory_checks(infos: list[dict]) -> list[Finding]:
    """In a bundle: every file is a label or referenced by exactly one label; no case-only twins."""
    out = []
    dirs: dict[Path, list[dict]] = {}
    for info in infos:
        dirs.setdefault(Path(info["label"]).parent, []).append(info)
    for d, group in sorted(dirs.items()):
        names = sorted(p.name for p in d.iterdir() if p.is_file())
        lower: dict[str, str] = {}
        for n in names:
            if n.lower() in lower:
                out.append(Finding("bundle.file.case", ERROR, str(d / n),
                                   f"{n} and {lower[n.lower()]} differ only in case", str(d / n)))
            lower.setdefault(n.lower(), n)
        refs: dict[str, int] = {}
        for info in group:
            for f in info.get("files", []):
                refs[f] = refs.get(f, 0) + 1
        labels = {Path(i["label"]).name for i in group}
        for n in names:
            if n in labels or n.startswith("."):
                continue
            if refs.get(n, 0) == 0 and not n.lower().startswith("readme"):
                out.append(Finding("bundle.file.unreferenced", ERROR, str(d / n),
                                   f"{n} is not described by any label", str(d / n)))
            elif refs.get(n, 0) > 1:
                out.append(Finding("bundle.file.shared", ERROR, str(d / n),
                                   f"{n} is described by {refs[n]} labels (must be exactly 1)", str(d / n)))
    return out


_BUNDLE_DIR_RE = re.compile(r"^(browse|calibration|context|data|document|geometry|miscellaneous|xml_schema|"
                            r"spice_kernels)[A-Za-z0-9_-]*$")


def _bundle_layout(label: Path) -> list[Finding]:
    """The bundle root holds only readme* and the bundle label, and the named sub-directories."""
    out = []
    for p in sorted(label.parent.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            ok = bool(_BUNDLE_DIR_RE.match(p.name))
        else:
            ok = p == label or p.name.lower().startswith("readme")
        if not ok:
            out.append(Finding("bundle.layout", ERROR, str(p),
                               f"{p.name} in the bundle root: only readme*, the bundle label and "
                               "browse|calibration|context|data|document|geometry|miscellaneous|xml_schema|"
                               "spice_kernels* directories may be there (pds4.md §4.4)", str(label)))
    return out


def _cross_checks(infos: list[dict]) -> list[Finding]:
    out = []
    if any(i.get("class") == "Product_Bundle" for i in infos):
        out += _directory_checks(infos)
        for info in infos:
            if info.get("class") == "Product_Bundle":
                out += _bundle_layout(Path(info["label"]))
    seen: dict[str, str] = {}
    for info in infos:
        lv = info.get("lidvid")
        if not lv:
            continue
        if lv in seen:
            out.append(Finding("bundle.lidvid.unique", ERROR, info["label"],
                               f"LIDVID {lv} also used by {seen[lv]}", info["label"]))
        seen.setdefault(lv, info["label"])
    known = set(seen)
    for info in infos:
        if info.get("class") == "Product_Bundle":
            for m in info.get("members", []):
                if m not in known:
                    out.append(Finding("bundle.member.missing", ERROR, info["label"],
                                       f"bundle member {m} is not among the labels validated", info["label"]))
    if any(i.get("class") == "Product_Bundle" for i in infos):
        listed: dict[str, int] = {}
        for info in infos:
            if info.get("class") == "Product_Collection":
                for m in info.get("members", []):
                    listed[m] = listed.get(m, 0) + 1
                    if m not in known:
                        out.append(Finding("bundle.inventory.missing", ERROR, info["label"],
                                           f"inventory member {m} is not among the labels validated", info["label"]))
        for info in infos:
            if info.get("class") not in ("Product_Bundle", "Product_Collection", "Product_Zipped") \
                    and info.get("lidvid"):
                n = listed.get(info["lidvid"], 0)
                if n != 1:
                    out.append(Finding("bundle.inventory.membership", ERROR, info["label"],
                                       f"{info['lidvid']} is a primary member of {n} collection inventories "
                                       "(must be exactly 1)", info["label"]))
    return out


def validate_labels(paths: Iterable[str | Path], *, data: bool = True, schematron: bool = True,
                    content: bool = False, workers: int | None = None, chunk_size: int = 25,
                    require_schemas: bool = False) -> Findings:
    """Validate PDS4 labels offline (see module docstring); never raises for a bad label.

    Parameters
    ----------
    paths : iterable of path
        Label files (a directory is expanded to its ``*.xml`` files, recursively).
    data : bool
        Run the data checks (file, size, md5, FITS objects, inventories).
    schematron : bool
        Run the Schematron rules (XSD always runs).
    content : bool
        Also read every table through the label with pds4_tools and compare it with astropy's
        reading of the FITS file (``data.content``; slow on full level-1 days).
    workers : int, optional
        Processes to use; default 1 (in-process). Each worker compiles nothing: the Schematron
        XSLT is compiled (or taken from the cache) before the pool starts.
    require_schemas : bool
        Refuse to validate without the schema files. By default, when they are not configured
        or installed, the XSD/Schematron checks are skipped and reported by one
        ``schema.unavailable`` warning; all other checks run.

    Raises
    ------
    SchemaNotFoundError
        with ``require_schemas`` only, when the schema files are not installed (with how to
        install them).
    """
    files: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(str(x) for x in p.rglob("*.xml"))
        else:
            files.append(str(p))
    findings = Findings(labels=files)
    # fail early and clearly when schemas are required but missing; else skip them, say so once;
    # compile the Schematron once for the pool
    ims = {"1B00"}
    for f in files:
        ims |= _cheap_im(f)
    missing = missing_schemas(sorted(ims), schematron=schematron)
    if missing and require_schemas:
        raise next(iter(missing.values()))
    # a model with its XSD but no Schematron (or no skeleton) is still XSD-checked
    skip = {im: "all" if not _has_xsd(im) else "schematron" for im in missing}
    if missing:
        findings.extend([schema_unavailable_finding(missing, skip)])
    for im in sorted(ims - set(missing)):
        if schematron:
            compiled_schematron(im)
    workers = workers or 1
    results: list[tuple[list[Finding], dict]] = []
    if workers <= 1 or len(files) <= chunk_size:
        results = _validate_chunk(files, data, schematron, content, skip)
    else:
        chunks = [files[i:i + chunk_size] for i in range(0, len(files), chunk_size)]
        # spawn (not fork): saxonche's runtime must not be forked; children inherit os.environ
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for part in pool.map(_validate_chunk, chunks, [data] * len(chunks), [schematron] * len(chunks),
                                 [content] * len(chunks), [skip] * len(chunks)):
                results += part
    infos = []
    for items, info in results:
        findings.extend(items)
        infos.append(info)
    findings.extend(_cross_checks(infos))
    return findings


_IM_RE = re.compile(rb"PDS4_PDS_(\w{4})\.(?:xsd|sch)")


def _cheap_im(path: str) -> set[str]:
    """IM codes a label names (a quick scan of its first 2 kB, to prepare validators)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2048)
    except OSError:
        return set()
    known = set(locator.information_models())
    return {m.decode() for m in _IM_RE.findall(head) if m.decode() in known}


def missing_schemas(ims: Sequence[str], *, schematron: bool = True) -> dict[str, locator.SchemaNotFoundError]:
    """The information models among ``ims`` whose XSD (and, with ``schematron``, ``.sch`` and
    ISO skeleton) files are not available locally, with the locator's error for each."""
    missing: dict[str, locator.SchemaNotFoundError] = {}
    for im in ims:
        try:
            locator.xsd_path(im)
            if schematron:
                locator.sch_path(im)
                locator.skeleton_paths()
        except locator.SchemaNotFoundError as exc:
            missing[im] = exc
    return missing


def _has_xsd(im: str) -> bool:
    try:
        locator.xsd_path(im)
    except locator.SchemaNotFoundError:
        return False
    return True


def schema_unavailable_finding(missing: dict[str, locator.SchemaNotFoundError],
                               skip: Mapping[str, str] | None = None) -> Finding:
    """The one ``schema.unavailable`` warning: which models were not schema-checked and why.

    ``skip``: model -> ``"all"`` or ``"schematron"`` (default: all checks skipped).
    """
    base = locator.schema_dir()
    where = str(base) if base is not None else "PDS4 schemas"
    skip = skip or {im: "all" for im in missing}

    def names(kind: str) -> str:
        return ", ".join(f"{im} (IM {locator.model(im).version})" for im in sorted(missing)
                         if skip.get(im, "all") == kind)

    parts = []
    if names("all"):
        parts.append(f"XSD and Schematron checks skipped for {names('all')}, only the data checks ran")
    if names("schematron"):
        parts.append(f"Schematron checks skipped for {names('schematron')} (the XSD check ran)")
    first = str(next(iter(missing.values())))
    return Finding(SCHEMA_UNAVAILABLE, WARNING, where, f"{'; '.join(parts)}: {first}", where)


def check_schemas_available(ims: Sequence[str] = ("1B00",)) -> None:
    """Raise :class:`SchemaNotFoundError` (with install instructions) unless all files exist."""
    for im in ims:
        locator.xsd_path(im)
        locator.sch_path(im)
    locator.skeleton_paths()


__all__ = ["Finding", "Findings", "validate_labels", "validate_label", "compiled_schematron",
           "prepare", "check_schemas_available", "missing_schemas", "SCHEMA_UNAVAILABLE", "XsmError"]
