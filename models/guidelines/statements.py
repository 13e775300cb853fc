"""Codes a statement in the note documents by itself, with no condition mention to rank: a
vaccine given this visit (Z23, I.C.21.c.2), an exposure to a communicable disease without the
disease (Z20, I.C.1.g.1.e), a screening examination (Z12, I.C.21.c.5). Table:
``statement_codes`` (a cue, optionally words its sentence must also have, words that cancel it,
and codes whose presence makes it redundant)."""

from __future__ import annotations

from .data import any_match
from .layer import Guidelines
from .rules import rule
from .state import NoteState, sentence_cue


@rule("statement_codes")
def rule_statement_codes(g: Guidelines, note: NoteState) -> None:
    """Each ``statement_codes`` row whose cue the note states (not negated) in a sentence that
    has its ``needs`` words and none of its ``not_if`` words."""
    for row in g.rules["statement_codes"]:
        code = str(row["code"])
        if any(it.s.code == code for it in note.kept()):
            continue
        if any(any_match(row.get("unless_coded", []), it.s.code) for it in note.kept()):
            continue
        ev = sentence_cue(note, row)
        if ev is None:
            continue
        g.add(
            note,
            code,
            section=str(row["section"]),
            message=f"{row['why']} ('{ev.text}')",
            evidence=[ev],
            score=note.threshold,
        )


@rule("implied_codes")
def rule_implied_codes(g: Guidelines, note: NoteState) -> None:
    """Codes another kept code implies (``implied_codes``): septic shock or severe sepsis
    (R65.2-) is sepsis, A41.9 when no systemic infection is coded (I.C.1.d.2, I.C.1.d.4)."""
    for row in g.rules["implied_codes"]:
        owners = [it for it in note.kept() if any_match(row["when_kept"], it.s.code)]
        if not owners or any(any_match(row["unless_kept"], it.s.code) for it in note.kept()):
            continue
        owner = max(owners, key=lambda it: it.s.score)
        g.add(
            note,
            str(row["code"]),
            section=str(row["section"]),
            message=f"{row['why']} ({owner.s.code})",
            evidence=owner.s.evidence,
            score=owner.s.score,
        )
