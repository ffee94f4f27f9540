"""Selection of calibration files by validity time, with an explanation (``caldb.md`` §5).

Three rules:

``reference``
    XSMDAS 1.2's ``queryCaldb`` (quirk Q07): ``CAL_CNAM`` equal (case-insensitive),
    ``CAL_QUAL == 0``, data MJD **strictly after** ``REF_TIME``; the largest ``REF_TIME`` wins and
    among equal ones the first row in file order. Boundaries ignored.
``default``
    The project's rule: as the reference but ``REF_TIME <= t``; a tie between good rows is a
    CALDB error; with a stop time, a validity start of the same code inside (start, stop) is an
    error (the product must be split). TELESCOP/INSTRUME/FILTER are matched when given.
``quzcif``
    HEASoft's quzcif/HDgtcalf: TELESCOP, INSTRUME, CNAM match; DETNAM/FILTER match or ``NONE``;
    ``CAL_QUAL == 0`` (5 = superseded is never selected); ``REF_TIME <= t``; the boundary
    expressions accept the query; **all** rows with the largest REF_TIME are returned (ties).

Times are MET seconds (``MJD = 57754 + MET/86400``, ``time.md``). Every :class:`Selection`
lists all candidate rows of the code with the rule that removed each, and the winner(s).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from xsm.caldb_manager.boundaries import matches, parse_query
from xsm.caldb_manager.index import CalIndex, IndexRow
from xsm.products.errors import ParameterError, SelectionError
from xsm.products.met import met_to_mjd, mjd_to_met

RULES = ("reference", "default", "quzcif")

CHOSEN = "chosen"


def normalise_rule(rule) -> str:
    """A rule name from a rule string or a processing :class:`~xsm.products.provenance.Mode`."""
    value = getattr(rule, "value", rule)
    value = str(value).lower()
    if value == "xsmdas-1.2":
        return "reference"
    if value in RULES:
        return value
    raise ParameterError(f"unknown CALDB selection rule {rule!r} (one of {', '.join(RULES)})")


@dataclass(frozen=True)
class Candidate:
    """One row of the code name and what the rule did with it."""

    row_number: int  # 0-based position in the index
    row: IndexRow
    verdict: str  # CHOSEN or the reason it was passed over

    @property
    def chosen(self) -> bool:
        return self.verdict == CHOSEN

    def to_dict(self) -> dict:
        return {"row": self.row_number + 1, "file": self.row.file, "ref_time": self.row.ref_time,
                "quality": self.row.qual, "verdict": self.verdict}


@dataclass(frozen=True)
class Selection:
    """The result of selecting one code name at one time."""

    code: str
    met: float
    rule: str
    caldbver: str
    candidates: tuple[Candidate, ...]
    query: dict = field(default_factory=dict, compare=False)

    @property
    def mjd(self) -> float:
        return float(met_to_mjd(self.met))

    @property
    def chosen(self) -> tuple[IndexRow, ...]:
        return tuple(c.row for c in self.candidates if c.chosen)

    @property
    def row(self) -> IndexRow:
        """The single chosen row; :class:`SelectionError` when none (or several, quzcif ties)."""
        rows = self.chosen
        if len(rows) != 1:
            raise SelectionError(self.failure_message())
        return rows[0]

    def failure_message(self) -> str:
        rows = self.chosen
        where = f"CALDB {self.caldbver or '?'}"
        if not rows:
            if not self.candidates:
                return f"{where}: no {self.code} entry in the index"
            return (f"{where}: no {self.code} file valid at MET {self.met:.3f} (MJD {self.mjd:.5f}) "
                    f"under the {self.rule} rule; " + "; ".join(
                        f"{c.row.file}: {c.verdict}" for c in self.candidates))
        return f"{where}: {len(rows)} {self.code} files tie at MET {self.met:.3f}: " + ", ".join(
            r.file for r in rows)

    def explain(self) -> str:
        """A human-readable account: the time, the rule, every candidate and its verdict."""
        lines = [f"{self.code} at MET {self.met:.3f} (MJD {self.mjd:.6f}), rule {self.rule}, "
                 f"CALDB {self.caldbver or '?'}"]
        if self.query:
            lines.append("  query: " + ", ".join(f"{k}={v}" for k, v in self.query.items()))
        if not self.candidates:
            lines.append(f"  no {self.code} row in the index")
        for c in self.candidates:
            mark = "->" if c.chosen else "  "
            lines.append(f"  {mark} row {c.row_number + 1:3d} {c.row.file:40s} REF_TIME {c.row.ref_time:.5f} "
                         f"QUAL {c.row.qual}: {c.verdict}")
        if not self.chosen:
            lines.append("  nothing selected")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"code": self.code, "met": self.met, "mjd": self.mjd, "rule": self.rule,
                "caldbver": self.caldbver, "query": self.query,
                "chosen": [r.file for r in self.chosen],
                "candidates": [c.to_dict() for c in self.candidates]}


def _match(want: str | None, have: str, wildcard: bool) -> bool:
    if want is None:
        return True
    h = have.strip().upper()
    return h == want.strip().upper() or (wildcard and h in ("NONE", ""))


def select(
    index: CalIndex,
    code: str,
    met: float,
    *,
    rule="reference",
    tstop: float | None = None,
    boundaries: str | Mapping[str, object] | None = None,
    telescop: str | None = None,
    instrume: str | None = None,
    detnam: str | None = None,
    filter: str | None = None,  # noqa: A002 - the OGIP column name
    quality: int = 0,
) -> Selection:
    """Select the file(s) of ``code`` valid at MET ``met`` under ``rule`` (see module doc).

    Never raises for "nothing found": inspect :attr:`Selection.chosen` or use
    :attr:`Selection.row`. Raises :class:`ParameterError` for an unknown rule and
    :class:`SelectionError` for a default-rule tie or a validity start inside (met, tstop).
    """
    rule = normalise_rule(rule)
    code = code.strip().upper()
    mjd = float(met_to_mjd(met))
    query = parse_query(boundaries) if rule == "quzcif" else {}
    verdicts: list[list] = []
    for i, r in index.rows_for(code):
        reason = None
        if rule in ("quzcif", "default"):
            if not _match(telescop, r.telescop, False):
                reason = f"TELESCOP {r.telescop} is not {telescop}"
            elif not _match(instrume, r.instrume, False):
                reason = f"INSTRUME {r.instrume} is not {instrume}"
            elif rule == "quzcif" and not _match(detnam, r.detnam, True):
                reason = f"DETNAM {r.detnam} is not {detnam}"
            elif not _match(filter, r.filter, True):
                reason = f"FILTER {r.filter} is not {filter}"
        want_q = quality if rule == "quzcif" else 0
        if reason is None and r.qual != want_q:
            reason = ("superseded (quality 5)" if r.qual == 5 else f"quality {r.qual}") + f", not {want_q}"
        if reason is None:
            if rule == "reference" and not mjd > r.ref_time:
                reason = f"REF_TIME {r.ref_time:.5f} not before the data (MJD {mjd:.5f}, strict)"
            elif rule != "reference" and not r.ref_time <= mjd:
                reason = f"REF_TIME {r.ref_time:.5f} after the data (MJD {mjd:.5f})"
        if reason is None and query:
            ok, why = matches(r.cbd, query)
            if not ok:
                reason = why
        verdicts.append([i, r, reason])
    valid = [v for v in verdicts if v[2] is None]
    if valid:
        latest = max(v[1].ref_time for v in valid)
        first = True
        for v in valid:
            if v[1].ref_time < latest:
                v[2] = f"REF_TIME {v[1].ref_time:.5f} older than {latest:.5f}"
            elif rule == "reference" and not first:
                v[2] = "same REF_TIME as an earlier row (the first row wins)"
            else:
                first = False
        winners = [v for v in valid if v[2] is None]
        if rule == "default" and len(winners) > 1:
            raise SelectionError(
                f"CALDB {index.caldbver or '?'}: {len(winners)} good {code} rows share REF_TIME {latest:.5f} "
                f"({', '.join(v[1].file for v in winners)}); set CAL_QUAL = 5 on the superseded one")
        if rule == "default" and tstop is not None:
            stop_mjd = float(met_to_mjd(tstop))
            inside = sorted({r.ref_time for _, r in index.rows_for(code)
                             if r.qual == 0 and mjd < r.ref_time < stop_mjd and _match(filter, r.filter, True)})
            if inside:
                raise SelectionError(
                    f"CALDB {index.caldbver or '?'}: a {code} validity start (MJD {inside[0]:.5f}, MET "
                    f"{float(mjd_to_met(inside[0])):.0f}) lies inside MET {met:.3f}-{tstop:.3f}; "
                    f"split the product there")
    cands = tuple(Candidate(i, r, CHOSEN if reason is None else reason) for i, r, reason in verdicts)
    return Selection(code=code, met=float(met), rule=rule, caldbver=index.caldbver, candidates=cands,
                     query=query)


def validity_starts(index: CalIndex, code: str) -> list[float]:
    """Sorted distinct REF_TIMEs (MJD) of the good rows of ``code``."""
    return sorted({r.ref_time for _, r in index.rows_for(code) if r.good})
