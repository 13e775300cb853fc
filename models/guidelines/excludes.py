"""Excludes1 (I.A.12.a): two codes whose tabular notes exclude each other are never reported
together; the better-supported one stays. Table: ``diabetes`` (codes of one diabetes category
are exempt: one phrase can need several of them, I.C.4.a)."""

from __future__ import annotations

from .data import any_match, code_matches, note_refs
from .documented import Stated, documented_size
from .layer import Guidelines
from .rules import rule
from .state import Item, NoteState
from .titles import residual


def _support(g: Guidelines, stated: Stated, item: Item) -> tuple[int, int, bool, float, int, int]:
    """A definitive diagnosis before a sign or symptom (chapter R, I.B.5: one integral to it is
    not coded); then the code whose evidence states the most words of its title (or of an
    inclusion term, or of its Index path) in full, none for a title that names what the note
    does not say (*Gestational diabetes mellitus in pregnancy, diet controlled* over *Type 2
    diabetes mellitus without complications* for "gestational diabetes, diet controlled";
    *Other chest pain* over *Pain, unspecified* for "chest pain"), whatever a retrained
    ranker's priors score them; then a code that names the type over a residual one
    (*Pneumonia due to Streptococcus pneumoniae* over *Pneumonia due to other streptococci*);
    then score, present evidence and specificity."""
    present = sum(1 for e in item.s.evidence if e.assertion == "present")
    return (
        int(not item.s.code.startswith("R")),
        documented_size(g, stated, item),
        not residual(g.title(item.s.code)),
        item.s.score,
        present,
        len(item.s.code),
    )


@rule("excludes1")
def rule_excludes1(g: Guidelines, note: NoteState) -> None:
    """Excludes1 pairs are never reported together: keep the better-supported code (I.A.12.a)."""
    diabetes = g.rules["diabetes"]["codes"]
    kept = note.kept()
    for a in kept:
        if a.fate != "keep":
            continue
        refs = [r for _s, t in g.notes(a.s.code).get("excludes1", []) for r in note_refs(t)]
        if not refs:
            continue
        for b in kept:
            if b is a or b.fate != "keep" or not any_match(refs, b.s.code):
                continue
            if a.s.code[:3] == b.s.code[:3] and code_matches(diabetes, a.s.code):
                continue
            stated = Stated.of_note(note)  # built for the first Excludes1 pair, then shared
            win, lose = (a, b) if _support(g, stated, a) >= _support(g, stated, b) else (b, a)
            g.drop(
                lose,
                "I.A.12.a",
                f"Excludes1 with {win.s.code} ({g.title(win.s.code)}); "
                f"{win.s.code} is the definitive diagnosis or better documented or supported (score "
                f"{win.s.score:.2f} vs "
                f"{lose.s.score:.2f})",
            )
            if lose is a:
                break
