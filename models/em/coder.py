"""The E/M level as a rule coder (``models.registry`` kind ``rule_coder``, name ``em``).

For a visit note it gives one CPT E/M code (and a prolonged-service add-on when the documented
time runs past the top level): the family from the setting and the note (see
:mod:`clinicode.models.em.note`), the level from medical decision making (two of three
elements, :mod:`clinicode.models.em.mdm`) or the total time on the date of the encounter when
documented, whichever is higher (office and hospital; ED levels have no time; discharge day
is by time alone). Every element is shown with its level and spans, and the rule that decided;
what the note lacks becomes a query with status ``needs_query``:

- new vs established patient not documented (office): the established level is suggested;
- discharge time not documented: 99238 (30 minutes or less) is suggested;
- fewer than two MDM elements documented and no time: the level MDM gives is suggested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clinicode.models.em.data import Hit, load_em_rules
from clinicode.models.em.mdm import Element, data, mdm_level, problems, risk
from clinicode.models.em.note import Facts, Line, read_note
from clinicode.schema import CodeSuggestion, Evidence, Mention, Query

SYSTEM = "CPT"
_OFF_ASSERTIONS = {"negated", "family", "hypothetical"}


@dataclass
class Level:
    """The E/M decision for one note (what :class:`EMCoder` turns into suggestions)."""

    family: str  # a key of ``families`` in the rules (office_new, ed, ...)
    code: str
    lines: list[str]
    hits: list[Hit]
    queries: list[Query]
    addon: tuple[str, int] | None = None  # prolonged-service code and its units
    note_lines: tuple[Line, ...] = ()  # the note's lines with their section kinds


def _code_by_time(fam: dict[str, Any], minutes: int) -> str | None:
    for floor, code in fam.get("by_time", []):
        if minutes >= int(floor):
            return str(code)
    return None


def _prolonged(fam: dict[str, Any], minutes: int) -> tuple[str, int] | None:
    p = fam.get("prolonged")
    if not p or minutes < int(p["from"]):
        return None
    return str(p["code"]), (minutes - int(p["base"])) // 15


def _family_key(facts: Facts) -> str:
    if facts.family == "office":
        return "office_new" if facts.status == "new" else "office_established"
    return str(facts.family)


def decide(text: str, setting: str, mentions: Sequence[Mention] = ()) -> Level | None:
    """The E/M code of one note, with its reasoning, or None when the note is not a visit.

    ``mentions`` (the NLP's, optional) sharpen it: negated, family or hypothetical conditions
    are not problems; a present condition that no cue names is a problem of unknown
    complexity; a medication that no cue names is a prescription drug."""
    facts = read_note(text, setting)
    if facts.family is None:
        return None
    rules = load_em_rules()
    key = _family_key(facts)
    fam = rules["families"][key]
    lines = [_family_line(facts, fam)]
    hits = [h for h in (facts.family_hit, facts.status_hit) if h is not None]
    queries: list[Query] = []
    if facts.family == "office" and facts.status is None:
        queries.append(
            Query(
                axis="patient_status",
                question="New vs established patient not documented: was the patient seen by "
                "this physician or group (same specialty) within the past three years?",
            )
        )
    if key == "hospital_discharge":
        return _discharge(facts, fam, lines, hits, queries)
    blocked = [(m.start, m.end) for m in mentions if m.assertion in _OFF_ASSERTIONS]
    conditions = [
        (m.start, m.end)
        for m in mentions
        if m.kind in ("condition", "finding") and m.assertion in ("present", "uncertain")
    ]
    drugs = [(m.start, m.end) for m in mentions if m.kind == "medication"]
    elements = [problems(facts, blocked, conditions), data(facts), risk(facts, drugs)]
    mdm = mdm_level(elements)
    by_mdm = str(fam["by_mdm"][mdm])
    lines.append(
        "MDM: "
        + ", ".join(e.describe() for e in elements)
        + f" -> {rules['levels']['mdm'][mdm]} (two of three elements) -> {by_mdm}"
    )
    for e in elements:
        hits.extend(e.hits)
    code, addon = by_mdm, None
    if "by_time" not in fam:
        lines.append("time: not used for this family's level (decided by MDM)")
        lines.append(f"decided by: MDM -> {by_mdm}")
    elif facts.minutes is None:
        lines.append("time: total time on the date of the encounter not documented")
        lines.append(f"decided by: MDM -> {by_mdm}")
        if sum(1 for e in elements if e.hits) < 2:
            queries.append(_mdm_query(elements))
    else:
        code, addon = _by_time(facts, fam, by_mdm, lines)
        assert facts.time_hit is not None
        hits.append(facts.time_hit)
    return Level(key, code, lines, hits, queries, addon, tuple(facts.lines))


def _family_line(facts: Facts, fam: dict[str, Any]) -> str:
    shown = [h for h in (facts.family_hit, facts.status_hit) if h is not None]
    said = f" ({', '.join(repr(h.text) for h in shown)})" if shown else ""
    if facts.family == "office" and facts.status is None:
        said += " (new vs established not documented: established assumed)"
    return f"E/M family: {fam['label']}, {fam['rules']}{said}"


def _by_time(facts: Facts, fam: dict[str, Any], by_mdm: str, lines: list[str]) -> tuple[str, Any]:
    minutes = int(facts.minutes or 0)
    by_time = _code_by_time(fam, minutes)
    lines.append(
        f"time: {minutes} min on the date of the encounter -> {by_time or 'below the lowest level'}"
    )
    order = [str(c) for c in fam["by_mdm"].values()]
    addon = _prolonged(fam, minutes) if by_time == order[-1] else None
    if by_time is None or order.index(by_time) < order.index(by_mdm):
        lines.append(f"decided by: MDM -> {by_mdm} (time gives a lower level)")
        return by_mdm, None
    if by_time == by_mdm and addon is None:
        lines.append(f"decided by: MDM -> {by_mdm} (time gives the same level)")
        return by_mdm, None
    lines.append(f"decided by: time {minutes} min -> {by_time} (MDM gives {by_mdm})")
    if addon:
        lines.append(
            f"prolonged service: {minutes} min passes {by_time}'s time by 15 min or more "
            f"-> {addon[0]} x {addon[1]}"
        )
    return by_time, addon


def _discharge(
    facts: Facts, fam: dict[str, Any], lines: list[str], hits: list[Hit], queries: list[Query]
) -> Level:
    if facts.minutes is None:
        code = str(fam["by_time"][-1][1])
        lines.append(f"time: discharge-day time not documented -> {code} (30 minutes or less)")
        queries.append(
            Query(
                axis="time",
                question="Total time spent on discharge day management not documented: "
                "more than 30 minutes supports 99239.",
            )
        )
    else:
        code = _code_by_time(fam, facts.minutes) or str(fam["by_time"][-1][1])
        lines.append(f"time: discharge-day time {facts.minutes} min -> {code}")
        assert facts.time_hit is not None
        hits.append(facts.time_hit)
    lines.append(f"decided by: discharge-day time -> {code}")
    return Level("hospital_discharge", code, lines, hits, queries, None, tuple(facts.lines))


def _mdm_query(elements: list[Element]) -> Query:
    missing = ", ".join(e.name for e in elements if not e.hits)
    return Query(
        axis="time",
        question=f"Total time not documented, and medical decision making lacks {missing}: "
        "document the problems addressed, data reviewed and management risk, or the total time.",
    )


class EMCoder:
    """The E/M level calculator as a ``types.RuleCoder``."""

    name = "em"
    systems: tuple[str, ...] = (SYSTEM,)

    def __init__(self, kb: Any = None) -> None:
        self.kb = kb
        self._titles: dict[str, tuple[str, str]] = {}

    def code(self, text: str, mentions: list[Mention], *, setting: str) -> list[CodeSuggestion]:
        level = decide(text, setting, mentions)
        if level is None:
            return []
        evidence = _evidence(text, level.hits, level.note_lines)
        scores = load_em_rules()["scores"]
        status = "needs_query" if level.queries else "suggested"
        main = self._suggestion(level.code, status, float(scores[status]), evidence, level.lines)
        if level.queries:
            main.query = level.queries[0]
            main.explanation += [f"query: {q.question}" for q in level.queries]
        out = [main]
        if level.addon:
            code, units = level.addon
            why = [*level.lines, f"units: {units} (one per full 15 minutes past the threshold)"]
            out.append(self._suggestion(code, status, float(scores[status]), evidence, why))
        return out

    def _suggestion(
        self, code: str, status: str, score: float, evidence: list[Evidence], lines: list[str]
    ) -> CodeSuggestion:
        title, source = self._title(code)
        return CodeSuggestion(
            system=SYSTEM,
            code=code,
            title=title,
            description_source=source,  # type: ignore[arg-type]
            score=score,
            status=status,  # type: ignore[arg-type]
            evidence=list(evidence),
            explanation=list(lines),
        )

    def _title(self, code: str) -> tuple[str, str]:
        """The KB's title of a code when the KB has it, else our own words."""
        if code not in self._titles:
            rec = self.kb.get(code, SYSTEM) if self.kb is not None else None
            if rec is not None:
                self._titles[code] = (rec.title, rec.description_source)
            else:
                own = str(load_em_rules()["titles"][code])
                self._titles[code] = (own, "clinicode-own-words")
        return self._titles[code]


def _evidence(text: str, hits: list[Hit], lines: tuple[Line, ...]) -> list[Evidence]:
    """The spans behind the level, in note order, each with its section kind."""
    seen: set[tuple[int, int]] = set()
    out = []
    for h in sorted(hits, key=lambda h: h.start):
        if (h.start, h.end) in seen or text[h.start : h.end] != h.text:
            continue
        seen.add((h.start, h.end))
        kind = next((ln.kind for ln in lines if ln.start <= h.start < ln.end + 1), None)
        out.append(Evidence(start=h.start, end=h.end, text=h.text, section=kind))
    return out
