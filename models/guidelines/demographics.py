"""Codes the patient cannot have: by sex, by age and by pregnancy (I.C.15.a.1, I.C.16.a).

Who the patient is comes from the NLP side (``clinicode.nlp.demographics``: sex, age, newborn,
pregnancy as the note states them); the code lists are ``demographics`` in the guideline data.
A check only applies when the note settles the question: an undocumented sex suppresses nothing.
"""

from __future__ import annotations

from clinicode.nlp.demographics import Demographics

from .data import ICD, any_match
from .layer import Guidelines
from .rules import rule
from .state import NoteState


def conflict(code: str, who: Demographics, cfg: dict[str, object]) -> str | None:
    """Why ``code`` cannot be the patient's (None: no conflict the note documents)."""

    def under(key: str) -> bool:
        patterns = cfg[key]
        assert isinstance(patterns, list)
        return any_match([str(p) for p in patterns], code)

    if who.sex == "male" and under("female_only"):
        return "a female-only code, and the note documents a male patient"
    if who.sex == "female" and under("male_only"):
        return "a male-only code, and the note documents a female patient"
    if under("pregnancy") and who.pregnant is not True:
        state = "denies" if who.pregnant is False else "does not document"
        return f"a pregnancy code, and the note {state} a pregnancy (I.C.15.a.1)"
    adult = cfg["adult_from_age"]
    assert isinstance(adult, int)
    if under("perinatal") and who.age_years is not None and who.age_years >= adult:
        return (
            f"a newborn/perinatal code for a patient aged {who.age_years:g}; code the condition "
            "itself unless documented as originating in the perinatal period (I.C.16.a.4)"
        )
    return None


@rule("demographic_edits")
def rule_demographic_edits(g: Guidelines, note: NoteState) -> None:
    """Suppress the codes the note's patient cannot have (sex, age, pregnancy)."""
    cfg = g.rules["demographics"]
    who = note.demographics()
    for item in list(note.items.values()):
        if item.fate not in ("keep", "candidate") or item.s.system != ICD:
            continue
        why = conflict(item.s.code, who, cfg)
        if why is not None:
            g.drop(item, "I.C.15/I.C.16", why, fate="suppressed")
