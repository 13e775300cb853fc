""" "Use additional code" notes from the tabular list, resolved from the note (I.B.7): CKD stage,
long-term drugs, infectious agent, weeks of gestation, BMI, the codes the Tabular List chooses
(``tabular_refs``: an ulcer's site and severity); and long-term drug status codes
documented anywhere (I.C.21.c.3). Tables: ``use_additional``, ``status_codes``, ``ckd_stage``,
``long_term_drugs``, ``organisms``, ``gestation``, ``bmi``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from clinicode.schema import Evidence

from .combinations import organism_combinations
from .data import (
    ICD,
    any_match,
    code_matches,
    compile_cue,
    load_rules,
    note_refs,
)
from .layer import Guidelines
from .rules import rule
from .state import (
    Item,
    NoteState,
    assertions_of,
    find_cue,
    sentence_cue,
)
from .tabular_refs import resolve_tabular

Resolver = Callable[[Guidelines, NoteState, Item, list[str]], bool]


def resolve_ckd_stage(g: Guidelines, note: NoteState, owner: Item, refs: list[str]) -> bool:
    """Stage of CKD (N18.-) for E11.22, I12, I13 ... from the note (I.C.14.a.1): the stage the
    note writes ("stage 3a", ESRD), else a stage code the ranker found in the note's words (a
    retrained ranker's prior for a stage is no documentation of it)."""
    cfg = g.rules["ckd_stage"]
    stated = _stated_ckd_stage(note, cfg)
    if stated is not None:
        code, ev = stated
        if not any_match(refs, code) and code != cfg["unspecified"]:
            return False
        chosen: tuple[str, list[Evidence], float] = (code, [ev], owner.s.score)
    else:
        found = (
            it
            for it in note.items.values()
            if it.s.system == ICD
            and code_matches(cfg["category"], it.s.code)
            and it.fate == "candidate"
            and it.s.evidence
            and any_match(refs, it.s.code)
            and "present" in assertions_of(it.s, note.mentions)
        )
        it = next(found, None)  # the ranker already had a stage code: promote it
        if it is None:
            return False
        chosen = (it.s.code, [], it.s.score)
    g.add(
        note,
        chosen[0],
        section="I.B.7",
        message=f"use additional code with {owner.s.code}: CKD stage",
        evidence=chosen[1],
        score=chosen[2],
    )
    return True


def _stated_ckd_stage(note: NoteState, cfg: dict[str, Any]) -> tuple[str, Evidence] | None:
    """The N18 code of the stage the note writes (ESRD first), with its evidence."""
    ev = find_cue(note, cfg["esrd_cue"])
    if ev is not None:
        return str(cfg["esrd_code"]), ev
    m = compile_cue(cfg["cue"]).search(note.text)
    if m is None:
        return None
    st = (m.group(1) or "").replace(" ", "").lower()
    st = cfg["roman"].get(st.upper(), st)
    code = str(cfg["stages"].get(st, cfg["unspecified"]))
    return code, Evidence(start=m.start(), end=m.end(), text=m.group(0))


def drug_cue(note: NoteState, row: dict[str, Any]) -> Evidence | None:
    """A documented current drug (not negated), unless its sentence says the use is only
    temporary: insulin given to control sugars during a stay is not Z79.4 (I.C.4.a.3)."""
    return sentence_cue(note, row)


def documented_drugs(note: NoteState, rows: list[dict[str, Any]]) -> Iterator[tuple[str, Evidence]]:
    """``(code, cue evidence)`` of each long-term drug row whose drug the note documents."""
    for row in rows:
        ev = drug_cue(note, row)
        if ev is not None:
            yield str(row["code"]), ev


def resolve_long_term_drug(g: Guidelines, note: NoteState, owner: Item, refs: list[str]) -> bool:
    added = False
    rows = [r for r in g.rules["long_term_drugs"] if any_match(refs, str(r["code"]))]
    for code, ev in documented_drugs(note, rows):
        g.add(
            note,
            code,
            section="I.C.4.a.3",
            message=f"use additional code with {owner.s.code}: long-term drug use "
            f"documented ('{ev.text}')",
            evidence=[ev],
            score=owner.s.score,
        )
        added = True
    return added


def resolve_organism(g: Guidelines, note: NoteState, owner: Item, refs: list[str]) -> bool:
    for org in g.rules["organisms"]:
        if not any_match(refs, str(org["code"])):
            continue
        ev = find_cue(note, org["cue"])
        if ev is None:
            continue
        if _organism_coded(g, note, org):
            return True  # a combination code kept already names the organism (J15.1)
        g.add(
            note,
            str(org["code"]),
            section="I.B.7",
            message=f"use additional code with {owner.s.code}: infectious agent '{ev.text}'",
            evidence=[ev],
            score=owner.s.score,
        )
        return True
    return False


def _organism_coded(g: Guidelines, note: NoteState, org: dict[str, Any]) -> bool:
    """Whether a kept code is a combination code that includes the organism (J15.1)."""
    combos = {code for code, _ in organism_combinations(g, org)}
    return any(it.s.code in combos for it in note.kept())


def gestation_weeks(note: NoteState) -> tuple[int, Evidence] | None:
    """Completed weeks of gestation: a mention's attribute, else the first cue in the note."""
    for m in note.mentions:
        for a in m.attributes:
            if a.name == "pregnancy_weeks":
                digits = re.match(r"\d+", a.value)
                if digits:
                    return int(digits.group(0)), Evidence(start=a.start, end=a.end, text=a.text)
    rm = compile_cue(load_gestation()["cue"]).search(note.text)
    if rm is None:
        return None
    weeks = int(rm.group(1) or rm.group(2) or rm.group(3))
    return weeks, Evidence(start=rm.start(), end=rm.end(), text=rm.group(0))


def load_gestation() -> dict[str, Any]:
    gestation: dict[str, Any] = load_rules()["gestation"]
    return gestation


def weeks_code(weeks: int) -> str:
    """Completed weeks of gestation -> Z3A code."""
    cfg = load_gestation()
    if weeks < cfg["fewer_than"]["weeks"]:
        return str(cfg["fewer_than"]["code"])
    if weeks > cfg["more_than"]["weeks"]:
        return str(cfg["more_than"]["code"])
    return str(cfg["code"]).format(weeks=weeks)


def resolve_weeks(g: Guidelines, note: NoteState, owner: Item, refs: list[str]) -> bool:
    got = gestation_weeks(note)
    if got is None:
        return False
    weeks, ev = got
    g.add(
        note,
        weeks_code(weeks),
        section="I.C.15.a.7",
        message=f"use additional code with {owner.s.code}: {weeks} completed weeks of gestation",
        evidence=[ev],
        score=owner.s.score,
    )
    return True


def bmi_code(value: float) -> str:
    """Adult BMI value -> Z68 code (the ``bmi`` bands of the tables)."""
    for band in load_rules()["bmi"]["bands"]:
        if band["below"] is None or value < band["below"]:
            return str(band["code"]).format(whole=int(value))
    raise ValueError("the bmi bands end without an open upper band")


def resolve_bmi(g: Guidelines, note: NoteState, owner: Item, refs: list[str]) -> bool:
    cfg = g.rules["bmi"]
    value: float | None = None
    ev: Evidence | None = None
    for m in note.mentions:
        for a in m.attributes:
            if a.name == "bmi":
                try:
                    value, ev = float(a.value), Evidence(start=a.start, end=a.end, text=a.text)
                except ValueError:
                    pass
    if value is None:
        rm = compile_cue(cfg["cue"]).search(note.text)
        after = cfg["not_followed_by"]
        if rm is None or compile_cue(after["cue"]).search(
            note.text[rm.end() : rm.end() + int(after["within"])]
        ):
            return False
        value, ev = float(rm.group(1)), Evidence(start=rm.start(), end=rm.end(), text=rm.group(0))
    assert ev is not None
    g.add(
        note,
        bmi_code(value),
        section="I.B.14",
        message=f"use additional code with {owner.s.code}: BMI {value:g} (BMI may come from "
        "other clinicians; the weight diagnosis is the provider's)",
        evidence=[ev],
        score=owner.s.score,
    )
    return True


RESOLVERS: dict[str, Resolver] = {
    "ckd_stage": resolve_ckd_stage,
    "long_term_drug": resolve_long_term_drug,
    "organism": resolve_organism,
    "weeks": resolve_weeks,
    "bmi": resolve_bmi,
    "tabular": resolve_tabular,
}


@rule("use_additional")
def rule_use_additional(g: Guidelines, note: NoteState) -> None:
    """ "Use additional code" notes from the tabular list, resolved from the note (I.B.7)."""
    done: set[tuple[str, str]] = set()
    for owner in note.kept():
        for _src, text in g.notes(owner.s.code).get("use_additional", []):
            refs = note_refs(text)
            if not refs:
                continue
            for row in g.rules["use_additional"]:
                target = str(row["refs"])
                if not any(code_matches(target, r.split("-")[0]) for r in refs):
                    continue
                if not row.get("refine_kept") and any(
                    any_match(refs, it.s.code) for it in note.kept()
                ):
                    break  # the pair is already there
                key = (target, text if row.get("once_per_note_text") else "")
                if key in done:
                    break
                done.add(key)
                RESOLVERS[row["resolver"]](g, note, owner, refs)
                break
    _long_term_drugs_anywhere(g, note)


def _long_term_drugs_anywhere(g: Guidelines, note: NoteState) -> None:
    """Z79 status codes marked ``always`` in the rules: coded when the drug is documented as
    current and the note has a diagnosis to go with it (I.C.21.c.3)."""
    kept = [it for it in note.kept() if not any_match(g.rules["status_codes"], it.s.code)]
    if not kept:
        return
    rows = [
        r
        for r in g.rules["long_term_drugs"]
        if r.get("always") and not any(it.s.code == str(r["code"]) for it in note.kept())
    ]
    for code, ev in documented_drugs(note, rows):
        g.add(
            note,
            code,
            section="I.C.21.c.3",
            message=f"long-term (current) drug therapy documented ('{ev.text}')",
            evidence=[ev],
            score=max(it.s.score for it in kept),
        )
