"""Sequencing: "code first" and "use additional code" order (I.A.13, I.B.7) and, inpatient, a
principal-diagnosis candidate (Section II, I.C.1.d.4): a code the note lists under a
"Principal diagnosis" header, else one documented in a diagnosis/admission section, else the
best supported. Tables: ``sequencing``, ``principal_header``, ``principal_sections``,
``symptom_codes``."""

from __future__ import annotations

import re

from .data import ICD, any_match, compile_cue
from .layer import Guidelines
from .rules import rule
from .state import Item, NoteState, explain, sentence_span

_BULLET = re.compile(r"[\s\-*•\d.)]*")


@rule("sequencing")
def rule_sequencing(g: Guidelines, note: NoteState) -> None:
    """ "Code first" order (I.A.13, I.B.7) and, inpatient, a principal-diagnosis candidate (II)."""
    kept = [it for it in note.kept() if it.s.status in ("suggested", "needs_query")]
    if not kept:
        return
    kept.sort(key=lambda it: (-it.s.score, it.order))
    if note.setting == "outpatient":
        _assessment_first(g, kept)
    _first_listed(g, kept)
    _adverse_effects_follow(g, note, kept)
    _note_order(g, kept)
    for rank, it in enumerate(kept):
        it.order = rank
    if note.setting != "inpatient":
        return
    if _principal(g, kept, note.text):
        for rank, it in enumerate(kept):
            it.order = rank


def _assessment_first(g: Guidelines, kept: list[Item]) -> None:
    """IV.G: the first-listed code is the reason for the visit chiefly responsible for the
    services, which the provider's assessment names first ("A/P: hypokalemia, adverse effect of
    HCTZ ... HTN controlled"): the kept diagnosis with the earliest evidence in an assessment
    section (``assessment_sections``) goes first."""
    assessed = set(g.rules["assessment_sections"])
    not_first = g.rules["sequencing"]["not_principal"]
    starts = {
        id(it): min(e.start for e in it.s.evidence if e.section in assessed)
        for it in kept
        if not any_match(not_first, it.s.code) and any(e.section in assessed for e in it.s.evidence)
    }
    if not starts:
        return
    first = min((it for it in kept if id(it) in starts), key=lambda it: starts[id(it)])
    if kept[0] is not first:
        kept.remove(first)
        kept.insert(0, first)
        explain(first, "IV.G", "first-listed: the assessment names it first")


def _first_listed(g: Guidelines, kept: list[Item]) -> None:
    """I.C.19.e.5.b: a poisoning code is sequenced before the manifestations it caused (an
    adverse effect code instead follows the nature of the effect, as it already does);
    I.C.21.c.5: a screening code is first-listed when the encounter is for the screening."""
    cfg = g.rules["sequencing"]
    rx = compile_cue(cfg["poisoning"])
    for section, why, test in (
        ("I.C.21.c.5", "screening code first-listed", lambda c: any_match(cfg["screening"], c)),
        ("I.C.19.e.5.b", "poisoning sequenced before its manifestations", rx.match),
    ):
        first = [it for it in kept if test(it.s.code)]
        if not first or kept[0] in first:
            continue
        for it in first:
            explain(it, section, why)
        kept[:] = first + [it for it in kept if it not in first]


def _adverse_effects_follow(g: Guidelines, note: NoteState, kept: list[Item]) -> None:
    """I.C.19.e.5.a: the nature of an adverse effect is coded first, followed by the adverse
    effect code: each adverse effect code moves after the kept codes its sentence states
    ("hypokalemia, adverse effect of HCTZ": E87.6, then T50.2X5A)."""
    rx = compile_cue(g.rules["sequencing"]["adverse_effect"])
    for it in [x for x in kept if rx.match(x.s.code)]:
        sentences = {sentence_span(note, e.start, e.end) for e in it.s.evidence}
        natures = [
            o
            for o in kept
            if o is not it
            and not rx.match(o.s.code)
            and any(sentence_span(note, e.start, e.end) in sentences for e in o.s.evidence)
        ]
        last = max((kept.index(o) for o in natures), default=-1)
        if last > kept.index(it):
            kept.remove(it)
            kept.insert(last, it)
            explain(it, "I.C.19.e.5.a", "sequenced after the nature of the adverse effect")


def _note_order(g: Guidelines, kept: list[Item]) -> None:
    """Reorder ``kept`` by the tabular notes: the code a "code first" note names moves ahead
    of the code carrying it; the code carrying a "use additional code" note precedes the
    additional code."""
    for it in list(kept):
        firsts = g.note_refs(it.s.code, "code_first")
        if not firsts:
            continue
        for other in kept:
            if (
                other is not it
                and any_match(firsts, other.s.code)
                and kept.index(other) > kept.index(it)
            ):
                kept.remove(other)
                kept.insert(kept.index(it), other)
                explain(it, "I.A.13", f"sequenced after {other.s.code} (code first note)")
    for it in list(kept):
        refs = g.note_refs(it.s.code, "use_additional")
        for other in kept:
            if (
                other is not it
                and any_match(refs, other.s.code)
                and kept.index(other) < kept.index(it)
            ):
                kept.remove(it)
                kept.insert(kept.index(other), it)
                explain(other, "I.B.7", f"sequenced after {it.s.code} (use additional code)")


def _in_sections(pool: list[Item], sect_rx: re.Pattern[str]) -> list[Item]:
    """The items of ``pool`` with evidence in a section whose name ``sect_rx`` finds."""
    return [
        it for it in pool if any(e.section and sect_rx.search(e.section) for e in it.s.evidence)
    ]


def _under_header(text: str, pool: list[Item], header_rx: re.Pattern[str]) -> list[Item]:
    """The items of ``pool`` with evidence on a line headed by what ``header_rx`` finds
    ("Principal diagnosis: ..."), or on the first line after such a header alone on its line
    (the NLP's section names fold "Principal diagnosis" and "Other diagnoses" together)."""

    def headed(start: int) -> bool:
        lo = text.rfind("\n", 0, start) + 1
        found = list(header_rx.finditer(text, lo, start))
        if found:  # and no other header ("Other diagnoses:") between it and the evidence
            return ":" not in text[found[-1].end() : start]
        if not _BULLET.fullmatch(text[lo:start]):  # words before it on its line
            return False
        prev = text.rfind("\n", 0, max(lo - 1, 0)) + 1
        return lo > 0 and header_rx.search(text[prev : lo - 1]) is not None

    return [it for it in pool if any(headed(e.start) for e in it.s.evidence)]


def _follows(g: Guidelines, code: str, underlying: list[str]) -> bool:
    """Whether a "code first" note of the code (or of a level above it) asks for its
    underlying condition first (I.A.13, the etiology/manifestation convention: *Severe sepsis*
    after its infection, *Insomnia due to medical condition* after the condition): such a code
    is never the principal diagnosis. A note listing what to code first "if applicable" is
    stored without those words, so only a note that begins with ``underlying_first`` counts."""
    first: dict[str, str] = {}
    for src, text in g.notes(code).get("code_first", []):
        first.setdefault(src, text.lower().lstrip(" ,"))  # the first line names what it wants
    return any(text.startswith(tuple(underlying)) for text in first.values())


def _principal(g: Guidelines, kept: list[Item], text: str) -> bool:
    """Mark the principal-diagnosis candidate and move it first in ``kept`` (whether one was)."""
    cfg = g.rules["sequencing"]
    manifestation = cfg["manifestation_title"]
    eligible = [
        it
        for it in kept
        if it.s.system == ICD
        and not any_match(cfg["not_principal"], it.s.code)
        and manifestation not in g.title(it.s.code).lower()
        and not _follows(g, it.s.code, cfg["underlying_first"])
    ]
    definitive = [it for it in eligible if not any_match(g.rules["symptom_codes"], it.s.code)]
    pool = definitive or eligible
    if not pool:
        return False
    named = _under_header(text, pool, compile_cue(g.rules["principal_header"]))
    in_section = named or _in_sections(pool, compile_cue(g.rules["principal_sections"]))
    choice = in_section or pool
    principal = choice[0]
    section = "Section II"
    why = (
        "documented as the principal diagnosis"
        if named
        else "documented in a diagnosis/admission section"
        if in_section
        else "best supported"
    )
    sepsis = [it for it in choice if any_match(cfg["sepsis_first"], it.s.code)]
    if sepsis and sepsis[0] is not principal:
        principal, section = sepsis[0], "I.C.1.d.4"
        why = "sepsis present on admission with a localized infection is sequenced first"
    principal.s.principal = True
    explain(principal, section, f"principal diagnosis candidate ({why}); sequenced first")
    kept.remove(principal)
    kept.insert(0, principal)
    return True
