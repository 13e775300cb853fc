"""The Table of Drugs and Chemicals (I.C.19.e.5): a drug the note says was taken in overdose,
caused an adverse effect, or was taken in less than the prescribed amount gets the table's code
for that drug and column, with its 7th character. Table: ``drug_table``.

The table comes from the imported Drug Table (``clinicode codes import drug``); on a code set
without it the rule does nothing. A drug is found as the NLP's medication mention, its text or
expansion naming a table entry ("acetaminophen", "HCTZ" -> "hydrochlorothiazide"); the column
from a cue in the same sentence that no negation precedes ("no side effects" is none); the
poisoning intent from its own cues, accidental when none is documented (I.C.19.e.5.b).
"""

from __future__ import annotations

import re
from typing import Any

from clinicode.nlp.cues import negated_before

from .data import ICD, any_match, compile_cue
from .layer import Guidelines
from .rules import rule
from .state import NoteState, evidence_from_mention, sentence_span

_PARENS = re.compile(r"\s*\([^)]*\)")


def _columns(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    """(column key, the term tail that names it, without parenthesized words) for every column
    of the table."""
    out = [(f"poisoning|{i['intent']}", f"poisoning, {i['intent']}") for i in cfg["intents"]]
    out.append((f"poisoning|{cfg['default_intent']}", f"poisoning, {cfg['default_intent']}"))
    out += [("adverse effect", "adverse effect"), ("underdosing", "underdosing")]
    return [(key, _PARENS.sub("", tail)) for key, tail in out]


def drug_codes(g: Guidelines) -> dict[str, dict[str, str]]:
    """Drug name (lower case, without parenthesized words) -> column key -> code, from the
    imported Drug Table (built once per layer)."""

    def build(_: str) -> dict[str, dict[str, str]]:
        columns = _columns(g.rules["drug_table"])
        table: dict[str, dict[str, str]] = {}
        for term in g.kb.iter_terms(systems=[ICD], sources=["drug"]):
            plain = _PARENS.sub("", term.text.lower())
            for key, tail in columns:
                if plain.endswith(tail):
                    name = " ".join(plain[: -len(tail)].replace(",", " ").split())
                    if name:
                        table.setdefault(name, {}).setdefault(key, term.code)
                    break
        return table

    return g.memo("drug_table", "", build)


def _column(cfg: dict[str, Any], text: str, lo: int, hi: int) -> str | None:
    """The column a sentence states for its drug, or None."""
    for name in ("poisoning", "adverse", "underdosing"):
        rx = compile_cue(cfg[f"{name}_cue"])
        if any(not negated_before(text, m.start()) for m in rx.finditer(text, lo, hi)):
            if name != "poisoning":
                return "adverse effect" if name == "adverse" else "underdosing"
            for row in cfg["intents"]:
                if compile_cue(row["cue"]).search(text, lo, hi):
                    return f"poisoning|{row['intent']}"
            return f"poisoning|{cfg['default_intent']}"
    return None


@rule("drug_table")
def rule_drug_table(g: Guidelines, note: NoteState) -> None:
    """Poisoning, adverse effect and underdosing codes from the Table of Drugs (I.C.19.e.5)."""
    cfg = g.rules["drug_table"]
    drugs = [m for m in note.mentions if m.kind == "medication" and m.assertion == "present"]
    if not drugs:
        return
    table = drug_codes(g)
    if not table:
        return
    added_self_harm = False
    for m in drugs:
        columns = table.get(" ".join(m.normalized.lower().split())) or table.get(m.text.lower())
        if not columns:
            continue
        lo, hi = sentence_span(note, m.start, m.end)
        column = _column(cfg, note.text, lo, hi)
        code = columns.get(column) if column else None
        full = _seventh(g, code, cfg) if code else None
        if column is None or full is None:
            continue
        g.add(
            note,
            full,
            section="I.C.19.e.5",
            message=f"Table of Drugs: {m.text}, {column.replace('|', ', ')}",
            evidence=[evidence_from_mention(m)],
            score=max([note.threshold, *(it.s.score for it in note.kept())]),
        )
        added_self_harm |= "self-harm" in column
    if added_self_harm:
        for it in note.kept():
            if any_match(cfg["replaced_by_self_harm_poisoning"], it.s.code):
                g.drop(it, "I.C.19.e.5", "the poisoning code documents the suicide attempt")


def _seventh(g: Guidelines, code: str, cfg: dict[str, Any]) -> str | None:
    """The billable code: the table's code itself, or with the initial-encounter 7th character
    (placeholder X's added as the tabular requires)."""
    rec = g.rec(code)
    if rec is not None and rec.billable:
        return code
    char = str(cfg["seventh_character"])
    for cand in (code + char, code.ljust(7, "X") + char):
        rec = g.rec(cand)
        if rec is not None and rec.billable:
            return cand
    return None
