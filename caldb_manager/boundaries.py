"""CALDB boundary expressions (``CBDnnnn`` keywords, ``CAL_CBD`` column; ``caldb.md`` §4, §5).

OGIP syntax: ``PARAM(value)unit``, ``PARAM(lo-hi)unit``, ``PARAM(a,b,c)`` (a list of allowed
values) or ``NONE``. XSM files use non-standard strings that this module reads tolerantly:
quoted values (``TEC("0.0-2.5")V``), ``to`` as range separator and several parameters in one
string (``DETX("-3.5 to 3.5") DETY(-3.5 to 0)``). Files written by the project use the strict
syntax (:func:`format_boundary`).

A query expression (quzcif's ``expr``) is ``PARAM.eq.value`` terms joined by ``.and.``, or a
mapping ``{param: value}``. A parameter absent from a row's boundaries passes; a numeric value
passes a range when ``lo <= value <= hi``; a string value must equal one of the listed values
(case-insensitive).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TERM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(([^()]*)\)([A-Za-z%/*^0-9.\-]*)")
_RANGE = re.compile(rf"^\s*({_NUM})\s*(?:-|to|TO|:)\s*({_NUM})\s*$")
_SINGLE = re.compile(rf"^\s*({_NUM})\s*$")
_STRICT_TERM = re.compile(
    rf"^[A-Za-z_][A-Za-z0-9_]*\((?:{_NUM}(?:-{_NUM})?|[A-Za-z0-9_.+\-]+(?:,[A-Za-z0-9_.+\-]+)*)\)[A-Za-z%/*^0-9.\-]*$")


class BoundaryError(ValueError):
    """A boundary or query expression that cannot be parsed."""


@dataclass(frozen=True)
class Boundary:
    """One parameter's boundary: a numeric range [lo, hi] or a set of allowed strings."""

    param: str
    lo: float | None = None
    hi: float | None = None
    values: tuple[str, ...] = ()
    unit: str = ""

    @property
    def numeric(self) -> bool:
        return self.lo is not None

    def accepts(self, value) -> bool:
        if self.numeric:
            try:
                v = float(value)
            except (TypeError, ValueError):
                return False
            return self.lo <= v <= self.hi
        return str(value).strip().upper() in {s.upper() for s in self.values}


def parse_boundary(text: str) -> list[Boundary]:
    """The boundaries in one CBD string (empty for ``NONE`` or blank); tolerant of XSM's forms.

    Raises :class:`BoundaryError` when the string has no recognisable ``PARAM(...)`` term.
    """
    s = (text or "").strip()
    if not s or s.upper() == "NONE":
        return []
    terms = list(_TERM.finditer(s))
    if not terms:
        raise BoundaryError(f"boundary {text!r}: expected PARAM(value)unit or PARAM(lo-hi)unit")
    leftover = _TERM.sub("", s).strip()
    if leftover:
        raise BoundaryError(f"boundary {text!r}: unexpected text {leftover!r}")
    out = []
    for m in terms:
        param, body, unit = m.group(1).upper(), m.group(2).replace('"', "").replace("'", "").strip(), m.group(3)
        r = _RANGE.match(body)
        if r:
            lo, hi = float(r.group(1)), float(r.group(2))
            if lo > hi:
                raise BoundaryError(f"boundary {text!r}: range low {lo:g} above high {hi:g}")
            out.append(Boundary(param, lo, hi, unit=unit))
            continue
        one = _SINGLE.match(body)
        if one:
            v = float(one.group(1))
            out.append(Boundary(param, v, v, unit=unit))
            continue
        vals = tuple(v.strip() for v in body.split(",") if v.strip())
        if not vals:
            raise BoundaryError(f"boundary {text!r}: empty value for {param}")
        out.append(Boundary(param, values=vals, unit=unit))
    return out


def is_strict(text: str) -> bool:
    """Whether a CBD string follows the OGIP syntax exactly (what ``udcif`` accepts)."""
    s = (text or "").strip()
    return s.upper() == "NONE" or bool(_STRICT_TERM.match(s))


def format_boundary(param: str, lo: float | str, hi: float | None = None, unit: str = "") -> str:
    """A strict OGIP CBD string: ``PARAM(lo-hi)unit``, ``PARAM(value)unit`` or ``PARAM(A,B)``."""
    if isinstance(lo, str):
        return f"{param.upper()}({lo}){unit}"
    if hi is None or hi == lo:
        return f"{param.upper()}({lo:g}){unit}"
    return f"{param.upper()}({lo:g}-{hi:g}){unit}"


def parse_query(expr: str | Mapping[str, object] | None) -> dict[str, object]:
    """A query as ``{PARAM: value}`` from quzcif's syntax (``ENERGY.eq.1.5.and.FILTER.eq.OPEN``)."""
    if expr is None:
        return {}
    if isinstance(expr, Mapping):
        return {str(k).upper(): v for k, v in expr.items()}
    s = expr.strip()
    if not s or s == "-" or s.upper() == "NONE":
        return {}
    out: dict[str, object] = {}
    for term in re.split(r"\.and\.", s, flags=re.IGNORECASE):
        m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\.eq\.\s*(.+?)\s*$", term, flags=re.IGNORECASE)
        if not m:
            raise BoundaryError(f"query {expr!r}: expected PARAM.eq.VALUE terms joined by .and.")
        val: object = m.group(2)
        try:
            val = float(val)  # type: ignore[arg-type]
        except ValueError:
            pass
        out[m.group(1).upper()] = val
    return out


def matches(cbds: Iterable[str], query: Mapping[str, object]) -> tuple[bool, str]:
    """Whether a row's CBD strings accept ``query``; returns (ok, reason when not ok).

    Unparseable CBDs never reject (they are reported by certification instead).
    """
    bounds: dict[str, list[Boundary]] = {}
    for text in cbds:
        try:
            for b in parse_boundary(text):
                bounds.setdefault(b.param, []).append(b)
        except BoundaryError:
            continue
    for param, value in query.items():
        bs = bounds.get(str(param).upper())
        if not bs:
            continue  # a parameter absent from the boundaries passes
        if not any(b.accepts(value) for b in bs):
            b = bs[0]
            allowed = f"{b.lo:g}-{b.hi:g}" if b.numeric else ",".join(b.values)
            return False, f"boundary {param}={value} outside {param}({allowed})"
    return True, ""
