"""Codes that say the same thing twice: symptoms integral to a kept diagnosis (I.B.5), the
work-up's symptoms beside the assessment's diagnosis (I.B.4-5), codes of one category read off
the same words (I.B.2), an unspecified code next to a specific one of its category (I.B.2,
IV.F.3). Tables: ``integral_symptoms``, ``symptoms_outside_assessment``, ``diabetes``."""

from __future__ import annotations

from typing import Any

from .data import any_match, code_matches, compile_cue
from .documented import Stated, documented_in_full
from .layer import Guidelines
from .rules import rule
from .state import Item, NoteState, clause_texts, spans, window_text
from .titles import documented_cfg, specific_stated, stated_keys, undocumented


@rule("same_mention_alternatives")
def rule_same_mention_alternatives(g: Guidelines, note: NoteState) -> None:
    """Codes of one category read off the very same words are alternatives, not two
    conditions: one is reported (I.B.2). The one whose title names the most words beyond its
    category's title that the sentence states wins ("left lower leg" for *Cellulitis of left
    lower limb*, "oropharyngeal" for *Dysphagia, oropharyngeal phase*: the most specific code
    documented); then the one with fewest title words the note lacks ("right" or "with
    hematuria" is a detail not documented); then the unspecified code (I.A.9.b: the note gives
    no more detail); then the ranker's score. Diabetes is exempt: one phrase can need several
    E08-E13 codes (I.C.4.a)."""
    diabetes = g.rules["diabetes"]["codes"]
    for items in _alternative_groups(note, diabetes):
        if len(items) < 2:
            continue
        stated = stated_keys(window_text(note, items[0]))
        # the words of the evidence's own clause decide a tie of the sentence's: "ER positive,
        # PR positive, HER2 negative" states both of HER2's statuses, its clause one
        clause = stated_keys(" | ".join(clause_texts(note, items[0])))
        category = g.title(items[0].s.code[:3])

        def key(
            it: Item, stated: set[str] = stated, clause: set[str] = clause, category: str = category
        ) -> tuple[int, int, int, int, float, int]:
            title = g.title(it.s.code)
            unspecified = "unspecified" in title.lower() or "nos" in title.lower().split()
            return (
                -specific_stated(title, category, stated),
                -specific_stated(title, category, clause),
                undocumented(title, stated),
                0 if unspecified else 1,
                -it.s.score,
                it.order,
            )

        items.sort(key=key)
        for it in items[1:]:
            g.drop(
                it,
                "I.B.2",
                f"alternative code for the same words as {items[0].s.code}, which matches "
                "the documentation better",
            )


def _alternative_groups(note: NoteState, diabetes: Any) -> list[list[Item]]:
    """Kept codes of one category read off the same words: the same spans, or the spans of
    one among the other's ("perforated acute appendicitis with generalized peritonitis":
    K35.201 on both mentions, K35.32 from "Perforation, appendix" on one of them)."""
    by_category: dict[str, list[Item]] = {}
    for it in note.kept():
        if not spans(it) or it.added or code_matches(diabetes, it.s.code):
            continue  # codes the rules made (J44.0 + J44.1 ...) are not alternatives
        by_category.setdefault(it.s.code[:3], []).append(it)
    groups: list[list[Item]] = []
    for items in by_category.values():
        mine: list[list[Item]] = []  # this category's groups only
        for it in sorted(items, key=lambda it: -len(spans(it))):
            home = next((gr for gr in mine if spans(it) <= spans(gr[0])), None)
            if home is not None:
                home.append(it)
            else:
                mine.append([it])
        groups += mine
    return groups


@rule("undocumented_alternatives")
def rule_undocumented_alternatives(g: Guidelines, note: NoteState) -> None:
    """Of kept codes read off the very same words, one whose title (or inclusion term, or Index
    path) those words state in full leaves out an "unspecified" code whose title names what
    the note does not state, whatever their scores (I.B.2, I.A.19: for "chronic hepatitis C",
    *Chronic viral hepatitis C* and not *Unspecified viral hepatitis C without hepatic coma*;
    for "hypertension" alone, *Essential (primary) hypertension* and not *Hypertensive chronic
    kidney disease with ... unspecified chronic kidney disease*). A code that says more than
    the documented one (*Dysphagia, oropharyngeal phase* beside *Dysphagia, unspecified*) is
    left to the later rules. Diabetes codes and codes the rules made are exempt, as in
    ``same_mention_alternatives``."""
    diabetes = g.rules["diabetes"]["codes"]
    groups: dict[frozenset[tuple[int, int]], list[Item]] = {}
    for it in note.kept():
        item_spans = spans(it)
        if item_spans and not it.added and not code_matches(diabetes, it.s.code):
            groups.setdefault(item_spans, []).append(it)
    for items in groups.values():
        if len(items) < 2:
            continue
        stated = Stated.of_note(note)  # built for the note's first such group, then shared
        full = [it for it in items if documented_in_full(g, stated, it)]
        if not full:
            continue
        for it in items:
            if it not in full and "unspecified" in g.title(it.s.code).lower():
                g.drop(
                    it,
                    "I.B.2",
                    f"{full[0].s.code} is what these words document; this code's title names "
                    "what the note does not state",
                )


def _parent(g: Guidelines, code: str) -> str:
    """The subcategory a code's siblings share (its category for a three-character code)."""
    rec = g.rec(code)
    parent = rec.parent if rec is not None and rec.parent else code[:3]
    return code[:3] if "-" in parent else parent


@rule("unspecified_with_specific")
def rule_unspecified_with_specific(g: Guidelines, note: NoteState) -> None:
    """An unspecified code next to a specific code of the same category says the same thing
    less precisely: report the specific one (I.B.2, IV.F.3). An "uncomplicated" code
    (``uncomplicated_title``) next to a code of its subcategory that names a complication
    contradicts it: *Alcohol dependence, uncomplicated* beside *Alcohol dependence with
    withdrawal delirium*, *Unspecified asthma, uncomplicated* beside *... with (acute)
    exacerbation*: the complication is reported."""
    kept = note.kept()
    plain = compile_cue(g.rules["uncomplicated_title"])
    for it in kept:
        title = g.title(it.s.code)
        unspecified = "unspecified" in title.lower()
        uncomplicated = plain.search(title) is not None
        if it.fate != "keep" or not (unspecified or uncomplicated):
            continue
        parent = _parent(g, it.s.code)
        for o in kept:
            if o is it or o.fate != "keep" or not o.s.code.startswith(parent):
                continue
            other = g.title(o.s.code)
            if unspecified and "unspecified" not in other.lower() and spans(o) != spans(it):
                why = f"{o.s.code} documents the same condition more specifically"
            elif uncomplicated and plain.search(other) is None:
                why = f"{o.s.code} names a complication that this code's title rules out"
            else:
                continue
            g.drop(it, "I.B.2", why)
            break


@rule("integral_symptoms")
def rule_integral_symptoms(g: Guidelines, note: NoteState) -> None:
    """Signs and symptoms routinely part of a kept definitive diagnosis are not coded (I.B.5)."""
    kept = note.kept()
    for row in g.rules["integral_symptoms"]:
        dx = [it for it in kept if it.fate == "keep" and code_matches(row["dx"], it.s.code)]
        if not dx:
            continue
        for it in kept:
            if it.fate == "keep" and it not in dx and any_match(row["symptoms"], it.s.code):
                g.drop(it, "I.B.5", f"symptom integral to {dx[0].s.code} ({g.title(dx[0].s.code)})")


@rule("symptoms_outside_assessment")
def rule_symptoms_outside_assessment(g: Guidelines, note: NoteState) -> None:
    """A kept sign or symptom (``symptom_codes``) whose every evidence span lies in the note's
    work-up (``workup_sections``: "new temporal headache" of the opening line, "Admitted with
    fever, cough") is not coded when a kept definitive diagnosis (outside
    ``documented.not_diagnoses``) stands on the note's assessment (``assessment_sections``): the
    provider's assessment names what the symptoms were (I.B.4-I.B.5, IV.D). The codes of
    ``always_coded``, and those a kept code's "use additional code" note asks for, are
    exempt."""
    cfg = g.rules["symptoms_outside_assessment"]
    assessed, workup = set(g.rules["assessment_sections"]), set(cfg["workup_sections"])
    not_dx = documented_cfg()["not_diagnoses"]
    kept = note.kept()
    dx = next(
        (
            it
            for it in kept
            if not any_match(not_dx, it.s.code)
            and any(e.section in assessed for e in it.s.evidence)
        ),
        None,
    )
    if dx is None:
        return
    # a symptom a kept code's "use additional code" note asks for (R13.1- of I69.391
    # *Dysphagia following cerebral infarction*) is part of that code, not of the work-up
    asked = [ref for it in kept for ref in g.note_refs(it.s.code, "use_additional")]
    for it in kept:
        s = it.s
        if not s.evidence or not any_match(g.rules["symptom_codes"], s.code):
            continue
        if any_match([*cfg["always_coded"], *asked], s.code) or any(
            e.section not in workup for e in s.evidence
        ):
            continue
        g.drop(
            it,
            "I.B.4",
            f"a symptom of the work-up; the assessment documents the diagnosis ({dx.s.code}, "
            f"{g.title(dx.s.code)})",
        )
