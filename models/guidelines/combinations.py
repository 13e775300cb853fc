"""Combination codes ("with", I.A.15 / I.B.9): hypertension with heart disease / CKD, diabetes
with complications, COPD with lower respiratory infection, influenza with pneumonia, pneumonia
or sepsis due to an organism. Tables: ``hypertension``, ``diabetes``,
``diabetes_complications``, ``unlinked_cue``, ``copd_infection``, ``influenza_pneumonia``,
``organism_combinations`` and ``organisms``."""

from __future__ import annotations

import re
from typing import Any

from .data import ICD, any_match, code_matches, compile_cue, first_rule
from .layer import Guidelines
from .refinements import stated
from .rules import rule
from .state import Item, NoteState, explain, find_cue, window_text


def unlinked(g: Guidelines, note: NoteState, item: Item) -> bool:
    """The documentation breaks the presumed "with" link ("unrelated to", "non-diabetic")."""
    return bool(compile_cue(g.rules["unlinked_cue"]).search(window_text(note, item)))


def _hypertension_target(
    cfg: dict[str, Any], flags: dict[str, bool]
) -> tuple[str, str, str] | None:
    """(code, section, message) of the first combination row the flags satisfy."""
    for row in cfg["combinations"]:
        if not all(flags[f] for f in row["when"]):
            continue
        for t in row["targets"]:
            if all(flags[f] for f in t["if"]):
                return str(t["code"]), str(row["section"]), str(row["message"])
    return None


@rule("hypertension")
def rule_hypertension(g: Guidelines, note: NoteState) -> None:
    """Hypertension with heart disease / CKD / both: I11, I12, I13 (I.C.9.a.1-3, link presumed)."""
    cfg = g.rules["hypertension"]
    htn = [it for it in note.kept() if any_match(cfg["hypertension"], it.s.code)]
    if not htn:
        return
    hf = [it for it in note.kept() if any_match(cfg["heart_failure"], it.s.code)]
    heart = [it for it in note.kept() if any_match(cfg["heart_disease"], it.s.code)]
    ckd = [it for it in note.kept() if any_match(cfg["ckd"], it.s.code)]
    codes = {it.s.code for it in htn}
    has_hf = bool(hf) or any(c in cfg["says_heart_failure"] for c in codes)
    flags = {
        "heart_failure": has_hf,
        "heart_disease": has_hf
        or bool(heart)
        or any(any_match(cfg["says_heart_disease"], c) for c in codes),
        "ckd": bool(ckd) or any(any_match(cfg["says_ckd"], c) for c in codes),
        "esrd": any(it.s.code in cfg["esrd"] for it in ckd)
        or any(c in cfg["says_esrd"] for c in codes),
    }
    if any(unlinked(g, note, it) for it in [*hf, *heart, *ckd]):
        return
    got = _hypertension_target(cfg, flags)
    if got is None:
        return
    target, section, msg = got
    if codes == {target}:
        return
    new = g.replace(note, htn, target, section, msg)
    if new is None:
        return
    for it in [*hf, *heart, *ckd]:
        new.s.evidence.extend(e for e in it.s.evidence if e not in new.s.evidence)
        if any_match(cfg["included"], it.s.code):
            g.drop(it, section, f"{msg}; heart disease included in {target}")
        else:
            explain(it, section, f"use additional code with {target}")


@rule("diabetes")
def rule_diabetes(g: Guidelines, note: NoteState) -> None:
    """Diabetes with complications: E08-E13 combination codes (I.A.15, I.C.4.a)."""
    cfg = g.rules["diabetes"]
    dm = [it for it in note.kept() if code_matches(cfg["codes"], it.s.code)]
    if not dm:
        return
    cat = next(iter(dict.fromkeys(it.s.code[:3] for it in dm)))
    for comp in list(note.kept()):
        row = first_rule(g.rules["diabetes_complications"], comp.s.code)
        if row is None or unlinked(g, note, comp):
            continue
        target = cat + str(row["suffix"])
        if not g.is_billable(target):
            continue
        new: Item | None
        if any(it.s.code == target for it in dm if it.fate == "keep"):
            new = note.items[(ICD, target)]
        else:
            new = g.add(
                note,
                target,
                section="I.A.15",
                message=f"diabetes with {g.title(comp.s.code).lower()} presumed linked "
                "(combination code, I.C.4.a)",
                evidence=[*dm[0].s.evidence, *comp.s.evidence],
                score=max(dm[0].s.score, comp.s.score),
            )
        if new is None:
            continue
        if row["separate"] == "drop":
            g.drop(comp, "I.B.9", f"covered by the combination code {target}")
        else:
            explain(comp, "I.B.7", f"use additional code with {target}")
    without = cfg["without_complications_suffix"]
    specific = [
        it
        for it in note.kept()
        if code_matches(cfg["codes"], it.s.code) and not it.s.code.endswith(without)
    ]
    for it in note.kept():
        if code_matches(cfg["codes"], it.s.code) and it.s.code.endswith(without) and specific:
            others = ", ".join(x.s.code for x in specific)
            g.drop(it, "I.B.9", f"diabetes 'without complications' conflicts with {others}")


@rule("copd_infection")
def rule_copd_infection(g: Guidelines, note: NoteState) -> None:
    """COPD with (acute) lower respiratory infection: J44.0 plus the infection (code also)."""
    cfg = g.rules["copd_infection"]
    combination = str(cfg["combination"])
    copd = note.kept_matching(cfg["copd"])
    if not copd:
        return
    infection = [it for it in note.kept() if any_match(cfg["infections"], it.s.code)]
    if not infection:
        # J44.0 says "with (acute) lower respiratory infection": without a documented (kept)
        # infection the ranker's J44.0 is not supported, whatever its score.
        for it in copd:
            if it.s.code == combination:
                g.drop(it, "I.B.9", f"{combination} needs a documented lower respiratory infection")
        return
    has_combination = any(it.s.code == combination for it in copd)
    plain = [it for it in copd if it.s.code in cfg["replaced"]]
    message = "COPD with lower respiratory infection (combination code)"
    if not has_combination:
        if plain:
            g.replace(note, plain, combination, "I.B.9", message)
        else:
            ev = [e for it in copd for e in it.s.evidence]
            g.add(
                note,
                combination,
                section="I.B.9",
                message=message,
                evidence=ev,
                score=max(it.s.score for it in copd),
            )
    for it in infection:
        explain(it, "I.A.17", f"code also the infection with {combination}")


@rule("combination_pairs")
def rule_combination_pairs(g: Guidelines, note: NoteState) -> None:
    """Two conditions one combination code names (``combination_pairs``, I.B.9): "acute and
    chronic cholecystitis with cholelithiasis" is K80.12, not K81.2 beside a gallstone code."""
    for row in g.rules["combination_pairs"]:
        first = note.kept_matching(str(row["when"]))
        own = {(e.start, e.end) for it in first for e in it.s.evidence}
        # the other condition on words of its own ("gallstones"), not on the first's words
        # ("acute cholecystitis" also matches *Calculus of gallbladder with acute cholecystitis*)
        second = [
            it
            for it in note.items.values()
            if it.fate in ("keep", "candidate")
            and any_match(row["with"], it.s.code)
            and any(
                e.assertion == "present" and not any(lo < e.end and e.start < hi for lo, hi in own)
                for e in it.s.evidence
            )
        ]
        unless = str(row.get("unless") or "")
        if not first or not second or (unless and stated(unless, note.text)):
            continue
        code = str(row["code"])
        new = g.replace(note, first, code, "I.B.9", "combination code for both conditions")
        if new is None:
            continue
        have = {(e.start, e.end) for e in new.s.evidence}
        more = [
            e
            for it in second
            if it is not new
            for e in it.s.evidence
            if e.assertion == "present" and (e.start, e.end) not in have | own
        ]
        new.s.evidence.extend(more)
        for it in second:
            if it is not new and it.fate == "keep":
                g.drop(it, "I.B.9", f"covered by the combination code {code}")


@rule("influenza_pneumonia")
def rule_influenza_pneumonia(g: Guidelines, note: NoteState) -> None:
    """Influenza with pneumonia is one combination code (I.B.9, I.A.15)."""
    cfg = g.rules["influenza_pneumonia"]
    flu = [it for it in note.kept() if any_match(cfg["influenza"], it.s.code)]
    combined = [it for it in flu if any_match(cfg["with_pneumonia"], it.s.code)]
    if combined:
        for it in flu:
            if it not in combined:
                g.drop(it, "I.B.9", f"influenza with pneumonia is coded {combined[0].s.code}")
        flu = combined
    pneu = [it for it in note.kept() if any_match(cfg["pneumonia"], it.s.code)]
    if not flu or not pneu:
        return
    cat = _influenza_category(note, cfg, {it.s.code[:3] for it in flu})
    unspecified = cfg["unspecified_pneumonia"]
    specified = [it for it in pneu if not code_matches(unspecified, it.s.code)]
    template = cfg["with_specified"] if specified else cfg["with_unspecified"]
    target = str(cfg["fixed"].get(cat) or template.format(category=cat))
    # the combination code takes the place of every other influenza code (one code, I.B.9)
    new = g.replace(note, flu, target, "I.B.9", "influenza with pneumonia (combination code)")
    if new is None:
        return
    for it in pneu:
        if code_matches(unspecified, it.s.code):
            g.drop(it, "I.B.9", f"pneumonia included in {target}")
            new.s.evidence.extend(it.s.evidence)
        else:
            explain(it, "I.A.17", f"code also the specified pneumonia with {target}")


def _influenza_category(note: NoteState, cfg: dict[str, Any], kept: set[str]) -> str:
    """The influenza category of the combination code: the one the note's virus calls for
    (an identified type or subtype, else unidentified) when it is among the kept codes, else
    the first kept one (J09, novel influenza A, first)."""
    identified = re.search(cfg["identified"], note.text, re.I) is not None
    wanted = cfg["identified_category"] if identified else cfg["unidentified_category"]
    return str(wanted) if wanted in kept else sorted(kept)[0]


@rule("organism_combination")
def rule_organism_combination(g: Guidelines, note: NoteState) -> None:
    """Pneumonia or sepsis due to a documented organism is one code (J13-J15, A40-A41), not the
    unspecified code plus B95/B96 (I.B.9, I.C.1.d.1.a)."""
    combine_organisms(g, note)


def combine_organisms(g: Guidelines, note: NoteState) -> None:
    """The organism step; the billable/specificity rule repeats it on the codes it puts in
    place of a category."""
    for combo in g.rules["organism_combinations"]:
        key, section, what = combo["key"], combo["section"], combo["what"]
        for item in [it for it in note.kept() if it.s.code in combo["open_codes"]]:
            if unlinked(g, note, item):
                continue
            for org in g.rules["organisms"]:
                if key not in org:
                    continue
                ev = find_cue(note, org["cue"])
                if ev is None:
                    continue
                target = str(org[key])
                new = g.replace(
                    note,
                    [item],
                    target,
                    section,
                    f"{what} due to the documented organism '{ev.text}'",
                )
                if new is not None:
                    new.s.evidence.append(ev)
                break
    _organism_in_combination(g, note)


def organism_combinations(g: Guidelines, org: dict[str, Any]) -> list[tuple[str, str]]:
    """``(code, section)`` of each combination code of an organism row that includes the
    organism (its pneumonia code; a sepsis code still takes the B95-B97 code beside it)."""
    return [
        (str(org[c["key"]]), str(c["section"]))
        for c in g.rules["organism_combinations"]
        if c["includes_organism"] and c["key"] in org
    ]


def _organism_in_combination(g: Guidelines, note: NoteState) -> None:
    """An organism code (B95-B97) is not kept beside a combination code that includes the
    organism, however both came in: made here from an open code, or ranked (J15.1 pneumonia
    due to Pseudomonas with B96.5)."""
    kept = {it.s.code for it in note.kept()}
    for org in g.rules["organisms"]:
        b = note.items.get((ICD, str(org["code"])))
        if b is None or b.fate != "keep":
            continue
        for target, section in organism_combinations(g, org):
            if target in kept:
                g.drop(b, section, f"organism included in {target}")
                break
