"""Assertion policy: negated / hypothetical / family / historical / uncertain mentions (I.A.19,
I.C.2.m, I.C.21.c.4, II.H, III.C, IV.H). Tables: ``assertion``, ``family_history``,
``personal_history`` and ``symptom_codes`` in the guideline data."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from clinicode.nlp.cues import clause_bounds, negated_before
from clinicode.schema import Mention

from .data import ICD, any_match, code_matches, compile_cue, first_rule, note_refs
from .demographics import conflict
from .documented import Stated, documented_in_full
from .layer import Guidelines
from .rules import rule
from .state import (
    Item,
    NoteState,
    after_texts,
    assertions_of,
    clause_texts,
    evidence_from_mention,
    explain,
    sentence_span,
    spans,
)


@dataclass
class _Policy:
    """What one run of the assertion policy reads and collects."""

    g: Guidelines
    note: NoteState
    cfg: dict[str, Any]
    former: re.Pattern[str]
    inpatient: bool
    screening: bool = False  # the note names a screening anywhere
    uncertain_dropped: list[Item] = field(default_factory=list)
    _chronic: set[tuple[int, int]] | None = None
    _diagnoses: bool | None = None

    def has_diagnoses(self) -> bool:
        """Whether the note states its diagnoses somewhere (a pre-/postoperative or discharge
        diagnosis list, an impression, an assessment) that names something; read once."""
        if self._diagnoses is None:
            wanted = set(self.cfg["diagnosis_sections"])
            self._diagnoses = any(m.section in wanted for m in self.note.mentions)
        return self._diagnoses

    def chronic_spans(self) -> set[tuple[int, int]]:
        """Evidence spans of chronic-condition codes (a history code is not made from them),
        taken the first time they are asked for."""
        if self._chronic is None:
            self._chronic = {
                (e.start, e.end)
                for it in self.note.items.values()
                if it.s.system == ICD and any_match(self.cfg["chronic_persisting"], it.s.code)
                for e in it.s.evidence
            }
        return self._chronic


@rule("assertion_policy")
def rule_assertion_policy(g: Guidelines, note: NoteState) -> None:
    """Negated / hypothetical / family / historical / uncertain mentions (I.A.19, I.C.21.c.4,
    II.H, III.C, IV.H)."""
    cfg = g.rules["assertion"]
    policy = _Policy(
        g=g,
        note=note,
        cfg=cfg,
        former=compile_cue(cfg["former_cue"]),
        inpatient=note.setting == "inpatient",
        screening=compile_cue(g.rules["screening_cue"]).search(note.text) is not None,
    )
    for item in list(note.items.values()):
        if item.fate in ("keep", "candidate") and not _unstated_here(policy, item):
            _judge(policy, item)
    _mention_history_codes(g, note)
    if policy.uncertain_dropped:
        _symptoms_instead(g, note, policy.uncertain_dropped)


def _judge(p: _Policy, item: Item) -> None:
    """The policy for one code whose evidence is not (only) present."""
    s = item.s
    a = assertions_of(s, p.note.mentions)
    if "present" in a and _screened(p, item):
        a = {"hypothetical"}  # "lung cancer screening": what the screening looks for
    if "present" in a:
        return
    is_icd = s.system == ICD
    # a history code (Z80-Z87, old MI ...) is what a family/past mention should produce
    history_code = is_icd and any_match(p.cfg["history_codes"], s.code)
    if history_code and a & {"family", "historical"}:
        return
    named_history = "negated" in a and _names_history(p, item)
    if history_code and named_history:
        return  # "Hx of kidney stones, none in 5 years": no recurrence, the history stands
    cues = clause_texts(p.note, item) if "negated" in a else []
    if (
        "negated" in a
        and (any(p.former.search(t) for t in cues) or named_history)
        and not _resolved_in_stay(p, cues, item)
    ):
        a = {"historical"}  # "former smoker", "DVT 2022, resolved": a past condition
    if "uncertain" in a:
        _uncertain(p, item)
    elif "historical" in a and is_icd:
        _historical(p, item)
    elif "family" in a and is_icd:
        _family(p, item)
    elif "family" in a or "historical" in a:
        p.g.drop(
            item,
            "I.C.21.c.4",
            "family or past procedure, not performed this encounter",
            fate="suppressed",
        )
    else:
        _negated_or_hypothetical(p, item, a, cues)


def _unstated_here(p: _Policy, item: Item) -> bool:
    """Drop a diagnosis code whose evidence all lies where the note states no condition of the
    patient; say whether it was dropped. The allergy list names allergens and past reactions
    (I.A.19); an operative report's narrative (technique, blood loss, instruments) is coded
    through its diagnoses (IV.N), so it counts only in a report that states them nowhere. A
    kept code is suppressed, where the coder sees why; a mere candidate stays a candidate that
    nothing may promote (the list would otherwise fill with every poisoning code of each
    allergen)."""
    s = item.s
    if s.system != ICD or not s.evidence:
        return False
    sections = {e.section for e in s.evidence}
    if sections <= set(p.cfg["allergy_sections"]):
        if any_match(p.cfg["allergy_status_codes"], s.code):
            return False
        section, message = "I.A.19", "named in the allergy list: an allergen or past reaction"
    elif sections <= set(p.cfg["narrative_sections"]) and p.has_diagnoses():
        section = "IV.N"
        message = "named only in the narrative of the procedure; its diagnoses are coded"
    else:
        return False
    p.g.drop(
        item,
        section,
        f"{message}, not a condition stated",
        fate="suppressed" if item.fate == "keep" else "dropped",
    )
    return True


def _names_history(p: _Policy, item: Item) -> bool:
    """Whether the code's evidence says "history of", in its words or just before them in its
    clause, with no negation before it: a negation after it ("Hx of kidney stones, none in 5
    years") denies a recurrence, not the past condition."""
    rx = compile_cue(p.cfg["history_words"])
    return any(_history_stated(p.note.text, e.start, e.end, rx) for e in item.s.evidence)


def _history_stated(text: str, start: int, end: int, rx: re.Pattern[str]) -> bool:
    """ "History of" in the words ``[start, end)`` or before them in their clause, with no
    negation before them."""
    lo = clause_bounds(text, start, end)[0]
    return rx.search(text, lo, end) is not None and not negated_before(text, start)


def _uncertain(p: _Policy, item: Item) -> None:
    if p.inpatient:
        explain(
            item,
            "II.H/III.C",
            "uncertain diagnosis at discharge (inpatient) coded as if it existed",
        )
        return
    if item.fate == "keep":
        p.uncertain_dropped.append(item)
    p.g.drop(
        item,
        "IV.H",
        "uncertain diagnosis (probable/suspected/rule out) is not "
        "coded in the outpatient setting; code the documented signs and symptoms",
        fate="suppressed",
    )


def _historical(p: _Policy, item: Item) -> None:
    g, note, s = p.g, p.note, item.s
    if _cancer_under_treatment(g, note, item):
        explain(
            item,
            "I.C.2.m",
            "malignancy documented as history is still under treatment: coded as current",
        )
        return
    chronic = any_match(p.cfg["chronic_persisting"], s.code)
    resolved_rx = compile_cue(p.cfg["resolved_cue"])
    resolved = any(resolved_rx.search(t) for t in clause_texts(note, item))
    if chronic and not resolved:
        explain(
            item,
            "I.C.21.c.4",
            "chronic condition listed as history is still "
            "present; a personal-history code is only for conditions that no "
            "longer exist",
        )
        return
    row = _history_row(g, note, s.code)
    same_span_chronic = bool(spans(item) & p.chronic_spans())
    if (
        row is not None
        and item.fate == "keep"
        and not same_span_chronic
        and _best_of_span(note, item)
    ):
        g.add(
            note,
            str(row["code"]),
            section="I.C.21.c.4",
            message=f"personal history of {s.code} ({g.title(s.code)}); the condition no "
            "longer exists",
            evidence=s.evidence,
            score=s.score,
        )
    g.drop(
        item,
        "I.C.21.c.4",
        "past condition documented as history, not an active disease",
        fate="suppressed",
    )


def _best_of_span(note: NoteState, item: Item) -> bool:
    """Whether no other diagnosis code read from the same words scores higher: one past
    condition gives one history code ("DVT" also names O87.1, a puerperal thrombosis, whose
    history code would be Z87.59)."""
    key = spans(item)
    return not any(
        other is not item
        and other.s.system == ICD
        and other.s.score > item.s.score
        and spans(other) == key
        for other in note.items.values()
    )


def _family(p: _Policy, item: Item) -> None:
    g, s = p.g, item.s
    row = first_rule(g.rules["family_history"], s.code)
    if row is not None and item.fate == "keep":
        g.add(
            p.note,
            str(row["code"]),
            section="I.C.21.c.4",
            message=f"family history of {s.code} ({g.title(s.code)})",
            evidence=s.evidence,
            score=s.score,
        )
    g.drop(
        item,
        "I.C.21.c.4",
        "family member's condition, not the patient's",
        fate="suppressed",
    )


def _resolved_in_stay(p: _Policy, cues: list[str], item: Item) -> bool:
    """Inpatient: the clause says the condition resolved during the stay ("resolved with IV
    fluids"), so it was treated and is reported (Section III), not a past condition."""
    if not p.inpatient:
        return False
    rx = compile_cue(p.cfg["resolved_in_stay"])
    return any(rx.search(t) for t in (*cues, *after_texts(p.note, item)))


def _negated_or_hypothetical(p: _Policy, item: Item, a: set[str], cues: list[str]) -> None:
    if "negated" in a and _resolved_in_stay(p, cues, item):
        explain(
            item,
            "Section III",
            "condition treated during the stay and documented as resolved is still "
            "reported for this admission",
        )
        return
    why = "negated" if "negated" in a else "hypothetical"
    if why == "hypothetical":
        _screening(p, item)
    p.g.drop(
        item,
        "I.A.19",
        f"{why} mention: the provider does not state that the condition exists",
        fate="suppressed",
    )


def _screened(p: _Policy, item: Item) -> bool:
    """Whether every evidence span of a code the screening table knows names what a screening
    looks for ("lung cancer screening", "screening for colon cancer", "... for lung cancer
    screening"), not a condition the patient has (I.C.21.c.5)."""
    s, g = item.s, p.g
    if not p.screening or s.system != ICD or not s.evidence:
        return False
    if first_rule(g.rules["screening"], s.code) is None:
        return False
    cue = compile_cue(g.rules["screening_cue"])
    after = compile_cue(g.rules["screening_after"])
    before = compile_cue(g.rules["screening_before"])
    text = p.note.text
    for e in s.evidence:
        if cue.search(e.text):
            continue
        if after.match(text, e.end) or before.search(text[max(0, e.start - 40) : e.start]):
            continue
        return False
    return True


def _screening(p: _Policy, item: Item) -> None:
    """I.C.21.c.5: a condition named as what a screening looks for gives the screening code."""
    g, s = p.g, item.s
    if item.fate != "keep" or s.system != ICD:
        return
    rx = compile_cue(g.rules["screening_cue"])
    if not any(rx.search(t) for t in clause_texts(p.note, item)):
        return
    row = first_rule(g.rules["screening"], s.code)
    if row is None:
        return
    g.add(
        p.note,
        str(row["code"]),
        section="I.C.21.c.5",
        message=f"screening for {s.code} ({g.title(s.code)}): the encounter is a screening, "
        "the condition is not documented",
        evidence=s.evidence,
        score=s.score,
    )


def _cancer_under_treatment(g: Guidelines, note: NoteState, item: Item) -> bool:
    """A malignancy whose sentence names treatment that is not over (I.C.2.m)."""
    cfg = g.rules["assertion"]
    if not code_matches(cfg["malignancy"], item.s.code):
        return False
    rx = compile_cue(cfg["current_cancer_treatment"])
    done = compile_cue(cfg["treatment_completed"])
    lookback = int(cfg["treatment_completed_lookback"])
    for e in item.s.evidence:
        lo, hi = sentence_span(note, e.start, e.end)
        for m in rx.finditer(note.text, lo, hi):
            if not done.search(note.text[max(lo, m.start() - lookback) : m.start()]):
                return True
    return False


def _mention_history_codes(g: Guidelines, note: NoteState) -> None:
    """Family / personal history from NLP mentions the ranker scored nowhere above threshold."""
    cfg = g.rules["assertion"]
    former_rx = compile_cue(cfg["former_cue"])
    history_rx = compile_cue(cfg["history_words"])
    for m in note.mentions:
        assertion: str = m.assertion
        if assertion == "negated" and m.assertion_cue and former_rx.search(m.assertion_cue):
            assertion = "historical"  # "former smoker, quit ..." is a past condition
        elif assertion == "negated" and _history_stated(note.text, m.start, m.end, history_rx):
            assertion = "historical"  # "Hx of kidney stones, none in 5 years"
        elif assertion == "present":
            assertion = _whose_named(cfg, note, m) or assertion  # "Family history of ..."
        if assertion not in ("family", "historical") or m.kind in ("procedure", "medication"):
            continue
        if compile_cue(cfg["whose_words"]["family"]).search(m.text):
            assertion = "family"  # its own words say whose: "Family hx of prostate cancer"
        codes = [
            c.split(":", 1)[-1]
            for c in m.concepts
            if not c.startswith(("ICD-10-PCS", "CPT", "HCPCS"))
        ]
        if assertion == "historical" and any(
            any_match(cfg["chronic_persisting"], c) for c in codes
        ):
            continue
        if any((ICD, c) in note.items and note.items[(ICD, c)].fate == "keep" for c in codes):
            continue  # coded as current by a rule above (chronic, under treatment ...)
        if _supports_kept(note, m, cfg["history_codes"]):
            continue  # its words are the evidence of a code kept as current ("breast cancer
            # diagnosed in 2019, on tamoxifen": C50.911, no Z85.3 beside it)
        _history_code_for(g, note, m, assertion, codes)


def _whose_named(cfg: dict[str, Any], note: NoteState, m: Mention) -> str | None:
    """``family`` or ``historical`` where every ICD-10-CM code a present mention names is a
    history code of that kind and the mention's words say whose history it is (its words are
    the code's title: "Family history of breast cancer" is Z80.3 as written, whatever the
    ranker scored it); None where a word just before it names a relative."""
    codes = [c.split(":", 1)[-1] for c in m.concepts if c.startswith(ICD)]
    lo = sentence_span(note, m.start, m.end)[0]
    if not codes or compile_cue(cfg["family_before"]).search(note.text[lo : m.start]):
        return None
    for whose, pattern in cfg["whose_history"].items():
        said = compile_cue(cfg["whose_words"][whose]).search(m.text)
        if said and all(any_match(pattern, c) for c in codes):
            return str(whose)
    return None


def _supports_kept(note: NoteState, m: Mention, history: Any) -> bool:
    """Whether a code kept as current (no ``history`` code) has mention ``m`` among its
    evidence."""
    return any(
        it.fate == "keep"
        and not any_match(history, it.s.code)
        and any(e.start <= m.start and m.end <= e.end for e in it.s.evidence)
        for it in note.kept()
    )


def _history_code_for(
    g: Guidelines, note: NoteState, m: Mention, assertion: str, codes: list[str]
) -> None:
    """The history code of the first of a mention's codes that has one, skipping the codes
    the patient cannot have ("smoking" also names O99.33, smoking complicating pregnancy: a
    past smoker who is not pregnant has a history of nicotine dependence, not of a pregnancy
    complication)."""
    table = g.rules["family_history" if assertion == "family" else "personal_history"]
    who = note.demographics() if assertion == "historical" else None
    for c in codes:
        if g.rec(c) is None:
            continue
        if who is not None and conflict(c, who, g.rules["demographics"]) is not None:
            continue
        if any_match(g.rules["assertion"]["history_named_by_mention"], c):
            if not any_match(g.rules["assertion"]["whose_history"][assertion], c):
                continue  # a family history code for the patient's own past, or the reverse
            it = note.items.get((ICD, c))  # the mention names the history code itself
            if g.is_billable(c) and (it is None or it.fate != "keep"):
                g.add(
                    note,
                    c,
                    section="I.C.21.c.4",
                    message=f"{assertion} history documented in the note",
                    evidence=[evidence_from_mention(m)],
                    score=max(it.s.score if it else 0.0, note.threshold),
                )
            return
        row = _history_row(g, note, c, table)
        if row is None:
            continue
        z = str(row["code"])
        if _stated_current(g, note, z):
            return
        it = note.items.get((ICD, z))
        if it is None or it.fate != "keep":
            scores = [note.items[(ICD, c2)].s.score for c2 in codes if (ICD, c2) in note.items]
            g.add(
                note,
                z,
                section="I.C.21.c.4",
                message=f"{assertion} history of {c} documented in the note",
                evidence=[evidence_from_mention(m)],
                score=max([*scores, note.threshold]),
            )
        return


def _stated_current(g: Guidelines, note: NoteState, z: str) -> bool:
    """Whether a present mention in the note names a code that history code ``z`` excludes
    (Excludes1): the condition is current, so it is not history ("She smokes a pack a week,
    and prior to that had been smoking half a pack a day": *Personal history of nicotine
    dependence* excludes current nicotine dependence, F17.2-), whatever the ranker scored the
    current code."""
    refs = [r for _s, t in g.notes(z).get("excludes1", []) for r in note_refs(t)]
    if not refs:
        return False
    return any(
        m.assertion == "present"
        and m.kind not in ("procedure", "medication")
        and any(any_match(refs, c.split(":", 1)[-1]) for c in m.concepts if c.startswith(ICD))
        for m in note.mentions
    )


def _history_row(
    g: Guidelines,
    note: NoteState,
    code: str,
    table: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The personal-history row for ``code``, unless the note states (not negated) what the
    history code excludes (its ``unless`` cue: a "residual" of a stroke is a sequela, I.C.9.d,
    not "without residual deficits"): the more specific statement wins."""
    row = first_rule(table if table is not None else g.rules["personal_history"], code)
    if row is None or "unless" not in row:
        return row
    rx = compile_cue(str(row["unless"]))
    if any(not negated_before(note.text, m.start()) for m in rx.finditer(note.text)):
        return None
    return row


def _symptoms_instead(g: Guidelines, note: NoteState, dropped: list[Item]) -> None:
    """IV.H: with the uncertain diagnosis not coded, the documented symptoms are: those whose
    title the note states in full ("cough" for *Cough, unspecified*; not "pelvic" for
    *Intra-abdominal and pelvic swelling, mass and lump*)."""
    names = ", ".join(it.s.code for it in dropped)
    symptoms = g.rules["symptom_codes"]
    stated = Stated.of_note(note)
    best: dict[frozenset[tuple[int, int]], Item] = {}  # one symptom code per documented symptom
    for item in note.items.values():
        if item.fate != "candidate" or item.s.system != ICD:
            continue
        if not any_match(symptoms, item.s.code):
            continue
        if assertions_of(item.s, note.mentions) != {"present"} or not item.s.evidence:
            continue
        if not g.is_billable(item.s.code) or not documented_in_full(g, stated, item):
            continue
        key = spans(item)
        if key not in best or item.s.score > best[key].s.score:
            best[key] = item
    for item in best.values():
        g.add(
            note,
            item.s.code,
            section="IV.H",
            message=f"documented sign/symptom coded instead of the uncertain {names}",
            evidence=[],
            score=item.s.score,
        )
