"""Refinements: an unspecified code moves to the more specific code the note documents (I.B.2,
IV.F.3), from the ``refinements`` table, and asthma severity / status (I.C.10.a.1) from the
``asthma`` table."""

from __future__ import annotations

from clinicode.nlp.cues import negated_before

from .data import compile_cue
from .layer import Guidelines
from .rules import rule
from .state import NoteState, find_cue, window_text


@rule("refinements")
def rule_refinements(g: Guidelines, note: NoteState) -> None:
    """Data-driven moves to the more specific code the note documents, then asthma."""
    refine_codes(g, note)


def stated(cue: str, text: str) -> bool:
    """Whether ``text`` states the cue: a match that no negation cue (``nlp.cues``) precedes,
    so "not in exacerbation" refines nothing."""
    return any(not negated_before(text, m.start()) for m in compile_cue(cue).finditer(text))


def refine_codes(g: Guidelines, note: NoteState) -> None:
    """The refinement step; the billable/specificity rule repeats it on the codes it puts in
    place of a category (a code put in place of a category may refine further)."""
    _table_refinements(g, note)
    _asthma(g, note)


def _table_refinements(g: Guidelines, note: NoteState) -> None:
    """The first choice whose cue is in the text and whose code is billable (and, for a
    non-billable category, lies under it) wins."""
    for ref in g.rules["refinements"]:
        for item in note.kept():
            if item.s.code not in ref["codes"]:
                continue
            text = window_text(note, item, ref.get("scope", "sentence"))
            billable = g.is_billable(item.s.code)
            for ch in ref["choices"]:
                # "{base}": the code less its last character; "{tail}": after its category
                code = item.s.code
                target = str(ch["code"]).format(base=code[:-1], tail=code[3:])
                if not g.is_billable(target) or (
                    not billable and not target.startswith(item.s.code)
                ):
                    continue
                if not stated(ch["cue"], text):
                    continue
                if target != item.s.code:
                    new = g.replace(
                        note,
                        [item],
                        target,
                        ref["section"],
                        f"documentation supports {target} ({g.title(target)})",
                    )
                    if new is not None:
                        ev = find_cue(note, ch["cue"])
                        if ev is not None:
                            new.s.evidence.append(ev)
                break


def _asthma(g: Guidelines, note: NoteState) -> None:
    """Asthma severity and exacerbation/status asthmaticus (I.C.10.a.1)."""
    cfg = g.rules["asthma"]
    for item in note.kept_matching(cfg["category"]):
        text = window_text(note, item)
        own = next((p for p in cfg["severity_codes"] if item.s.code.startswith(p)), None)
        sev = next((r["code"] for r in cfg["severity"] if stated(r["cue"], text)), own)
        if sev is None:
            continue
        tail = item.s.code[len(own) :] if own else ""
        status = next((r["character"] for r in cfg["status"] if stated(r["cue"], text)), None)
        if status is None:
            status = tail if tail in cfg["status_characters"] else cfg["uncomplicated"]
        target = next(
            (
                str(x["code"])
                for x in cfg["exceptions"]
                if x["severity"] == sev and x["status"] == status
            ),
            sev + status,
        )
        if target != item.s.code and g.is_billable(target):
            g.replace(
                note,
                [item],
                target,
                "I.C.10.a.1",
                f"asthma severity/exacerbation documented: {g.title(target)}",
            )
