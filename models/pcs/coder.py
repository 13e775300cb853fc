"""The ICD-10-PCS rule coder (``models.registry`` kind ``rule_coder``, name ``pcs``).

Inpatient notes only (ICD-10-PCS is the inpatient facility's procedure code set): every
procedure statement of the note (:mod:`.statements`) becomes zero or more codes built axis by
axis (:mod:`.builder`), each with the note spans that document its axes and an explanation
that names every axis. A code with an axis the note does not document has status
``needs_query`` and a :class:`~clinicode.schema.Query` naming that axis.
"""

from __future__ import annotations

import re
from typing import Any

from clinicode.models.pcs.builder import Axis, Built, PcsBuilder
from clinicode.models.pcs.knowledge import Knowledge, load_knowledge
from clinicode.models.pcs.statements import find_statements
from clinicode.models.pcs.tables import SYSTEM, PcsTables
from clinicode.schema import CodeSuggestion, Evidence, Mention, Query

SCORE_DOCUMENTED = 0.9
SCORE_QUERY = 0.5


class PcsCoder:
    """Builds ICD-10-PCS codes from the procedure statements of inpatient notes."""

    name = "pcs"
    systems: tuple[str, ...] = (SYSTEM,)

    def __init__(self, kb: Any) -> None:
        self.kb = kb
        self._builder: PcsBuilder | None = None

    @property
    def builder(self) -> PcsBuilder:
        if self._builder is None:
            self._builder = PcsBuilder(PcsTables.from_kb(self.kb), load_knowledge())
        return self._builder

    def build(self, text: str, mentions: list[Mention]) -> list[Built]:
        """Every code built from the note's statements (first one per code)."""
        if not self.builder.tables:
            return []
        out: dict[str, Built] = {}
        for st in find_statements(text, mentions, self.builder.k.skipped_sections):
            for b in self.builder.build(st):
                out.setdefault(b.code, b)
        return drop_routine_inspections(list(out.values()))

    def code(self, text: str, mentions: list[Mention], *, setting: str) -> list[CodeSuggestion]:
        if setting != "inpatient":
            return []
        return [self.suggestion(text, b, mentions) for b in self.build(text, mentions)]

    def suggestion(self, text: str, b: Built, mentions: list[Mention]) -> CodeSuggestion:
        section = _section_of(b.statement.start, mentions)
        evidence = [Evidence(start=a, end=e, text=text[a:e], section=section) for a, e in b.spans()]
        query = None
        if b.missing:
            tables, k = self.builder.tables, self.builder.k
            asks = [_ask(b, a, tables, k) for a in b.axes if a.how == "not documented"]
            query = Query(
                axis=b.missing[0],
                question=f"{' and '.join(b.missing).capitalize()} not documented for"
                f" '{b.statement.text}'. {' '.join(asks)}",
            )
        return CodeSuggestion(
            system=SYSTEM,
            code=b.code,
            title=self.builder.tables.title(b.code),
            score=SCORE_QUERY if b.missing else SCORE_DOCUMENTED,
            status="needs_query" if b.missing else "suggested",
            evidence=evidence,
            explanation=explain(text, b, self.builder.tables, self.builder.k),
            query=query,
        )


def drop_routine_inspections(built: list[Built]) -> list[Built]:
    """An inspection done on the way to another procedure by the same approach is not coded
    separately (guidelines B3.11a-c): the exploratory laparotomy of an open colectomy, the
    arthroscopy of an arthroscopic meniscectomy. One by another approach stays."""
    definitive = {b.code[4] for b in built if b.op.op_name != "inspection"}
    return [b for b in built if b.op.op_name != "inspection" or b.code[4] not in definitive]


def _section_of(start: int, mentions: list[Mention]) -> str | None:
    for m in mentions:
        if m.sentence_start <= start < max(m.sentence_end, m.end):
            return m.section
    return None


def _ask(b: Built, axis: Axis, tables: PcsTables, k: Knowledge) -> str:
    """The question for one undocumented axis, with the values the tables allow."""
    if axis.position == 4 and axis.options:
        return f"Which side was operated on ({', '.join(axis.options)})? {axis.note}."
    fixed = {i: b.code[i - 1] for i in range(1, axis.position)}
    labels = []
    for value in axis.options:
        codes = tables.completions({**fixed, axis.position: value})
        label = axis_label(codes[0], axis.position, tables, k) if codes else ""
        labels.append(f"{label} ({value})" if label else value)
    return (
        f"Which {axis.name} was used? The table allows: {', '.join(labels)};"
        f" {axis.value} is shown until the note says."
    )


def axis_label(code: str, pos: int, tables: PcsTables, k: Knowledge, note: str = "") -> str:
    """The label of the value at ``pos`` of ``code``: the tables XML's when imported, else
    from our data and the order file's titles."""
    value = code[pos - 1]
    xml = tables.label(code, pos)
    if xml:
        return xml
    header = tables.title(code[:3])
    title = tables.title(code)
    if pos == 1:
        return k.sections.get(value, "")
    if pos == 2:
        return header.rsplit(", ", 1)[0] if header else ""
    if pos == 3:
        return header.rsplit(", ", 1)[-1] if header else ""
    if pos == 4:
        return note.split(":")[0]
    if pos == 5 and code[0] == "0":
        return k.approach_labels.get(value, "")
    if pos == 5:
        return title.rsplit(", ", 1)[-1] if ", " in title else ""
    if value == "Z":
        return "No Device" if pos == 6 else "No Qualifier"
    if pos == 6:
        m = re.search(r" with (.+?)(?:,|$)", title)
        return m.group(1) if m else ""
    return title.rsplit(", ", 1)[-1] if ", " in title else ""


def explain(text: str, b: Built, tables: PcsTables, k: Knowledge) -> list[str]:
    """The path to the code: the statement, every axis with its evidence, the validation."""
    lines = [f"ICD-10-PCS built axis by axis from the procedure statement '{b.statement.text}'"]
    for axis in b.axes:
        label = axis_label(b.code, axis.position, tables, k, axis.note)
        quoted = f"'{text[axis.span[0] : axis.span[1]]}'" if axis.span else ""
        if axis.position == 3:
            info = k.root_operations.get(b.op.op_name)
            why = f" = {info['definition']}" if info and b.code[0] == "0" else ""
            detail = f" ({quoted}{why})"
        elif axis.how == "documented":
            detail = f" ({quoted})" if quoted else ""
        elif axis.how == "not documented":
            detail = f" [QUERY: {axis.note}]"
        elif axis.how == "tables":
            detail = " (the only value the table allows)"
        elif axis.how == "implied":
            detail = f" (implied by {quoted})" if quoted else ""
        else:
            detail = " (none documented)"
        lines.append(f"{axis.name} {axis.value}{': ' + label if label else ''}{detail}")
    lines.append(f"valid combination of table {b.code[:3]} ({tables.source})")
    return lines
