"""Coding guidelines layer: from ranked candidate codes to the code set a certified coder would sign.

Sits after the ranker and before output (``GuidelinesLayer`` in ``models/types.py``). Each rule is
a small named function below or data in ``models/resources/guidelines_rules.yaml`` (loaded once by
:func:`load_rules`), and every change it makes to a code appends a line to that code's
``explanation`` naming the rule's guideline section, e.g. ``"I.C.9.a.2: hypertension with CKD
presumed linked"``. Section numbers quote the ICD-10-CM Official Guidelines FY2026.

Order of the rules (each sees the result of the previous one):

1. assertion policy (negated / hypothetical / family / historical / uncertain by setting);
2. refinements to a more specific code the note documents (AMI wall, COPD exacerbation ...);
3. combination codes ("with", I.A.15 / I.B.9): hypertension + heart / CKD, diabetes +
   complications, COPD + lower respiratory infection, influenza + pneumonia, pneumonia + organism;
4. symptoms integral to a kept definitive diagnosis are dropped (I.B.5);
5. "use additional code" notes from the KB (CKD stage, long-term drugs, organism, weeks, BMI);
6. billable enforcement, specificity and provider queries (I.B.2, IV.F);
7. Excludes1 pairs (I.A.12.a): the better-supported code stays;
8. sequencing: "code first" order (I.A.13) and, inpatient, a principal-diagnosis candidate (II).

Benchmark switch (``benchmark=True``): CodiEsp annotators coded negated and other non-present
mentions too, and follow their own conventions, so on the benchmark path the layer neither
removes nor reorders the ranker's codes. ``codes`` is the same set as on the normal path; every
other input code (suppressed, replaced by a combination code, integral symptom, Excludes1 loser)
stays in ``candidates``; ``suppressed`` is empty. Both lists, and ``rank`` over ``codes +
candidates``, follow the ranker's input order, with codes the rules added after all input codes.
The ranking MAP is scored on is therefore the ranker's own with additions at its tail, so the
layer cannot lower MAP (an earlier version demoted suppressed codes by score: it cost 0.027 dev
MAP with the CodiEsp-trained pack).
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from clinicode.kb.records import CodeRecord
from clinicode.models.types import GuidelineResult
from clinicode.schema import CodeSuggestion, Evidence, Mention, Query

ICD = "ICD-10-CM"

_CODE = r"[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?"
_REF = re.compile(rf"\b({_CODE})(?:\s*-\s*({_CODE})|\.?-)?")
_NEG_BEFORE = re.compile(
    r"\b(no|not|denies|denied|without|off|stopped|discontinued|never)\b[^.\n]{0,25}$", re.I
)


# -- rules as data -------------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_rules() -> dict[str, Any]:
    """The rule tables of ``models/resources/guidelines_rules.yaml`` (read once, cached)."""
    text = (
        resources.files("clinicode.models.resources")
        .joinpath("guidelines_rules.yaml")
        .read_text(encoding="utf-8")
    )
    data: dict[str, Any] = yaml.safe_load(text)
    return data


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


_INDEX_LOCK = threading.Lock()
_INDEX: dict[str, tuple[list[str], dict[str, str], set[str]]] = {}
_CODE_FULL = re.compile(rf"^{_CODE}$")


def _code_index(kb: Any) -> tuple[list[str], dict[str, str], set[str]]:
    """Sorted ICD-10-CM codes, their titles and the leaves (billable codes), once per KB file."""
    key = str(getattr(kb, "path", id(kb)))
    with _INDEX_LOCK:
        got = _INDEX.get(key)
        if got is None:
            titles = {c: t for c, t in kb.titles(ICD).items() if _CODE_FULL.match(c)}
            codes = sorted(titles)
            leaves = {
                c
                for i, c in enumerate(codes)
                if not (i + 1 < len(codes) and codes[i + 1].startswith(c))
            }
            got = _INDEX[key] = (codes, titles, leaves)
        return got


# -- code patterns ---------------------------------------------------------------------------
@lru_cache(maxsize=8192)
def _bounds(pattern: str) -> tuple[str, str | None]:
    """A pattern as ``(prefix, None)`` or ``(low, high)`` range bounds, dots removed."""
    pattern = pattern.strip().upper()
    m = re.fullmatch(rf"({_CODE})\s*-\s*({_CODE})", pattern)
    if m:
        return m.group(1).replace(".", ""), m.group(2).replace(".", "")
    return pattern.rstrip("-").rstrip(".").replace(".", ""), None


@lru_cache(maxsize=131072)
def code_matches(pattern: str, code: str) -> bool:
    """Whether ``code`` falls under ``pattern``: a prefix (``E11``, ``O24.4-``) or a range
    (``N18.1-N18.4``, ``B95-B97``) compared on the characters each bound gives."""
    c = code.replace(".", "").upper()
    lo, hi = _bounds(pattern)
    if hi is None:
        return c.startswith(lo)
    return c[: len(lo)] >= lo and c[: len(hi)] <= hi


@lru_cache(maxsize=4096)
def _split_patterns(
    patterns: tuple[str, ...],
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """A pattern list as (prefixes, ranges), so one ``startswith`` tests all the prefixes."""
    prefixes: list[str] = []
    ranges: list[tuple[str, str]] = []
    for p in patterns:
        lo, hi = _bounds(p)
        if hi is None:
            prefixes.append(lo)
        else:
            ranges.append((lo, hi))
    return tuple(prefixes), tuple(ranges)


@lru_cache(maxsize=65536)
def _any_match(patterns: tuple[str, ...], code: str) -> bool:
    # the same test as ``any(code_matches(p, code) for p in patterns)``, without a call per pattern
    c = code.replace(".", "").upper()
    prefixes, ranges = _split_patterns(patterns)
    if prefixes and c.startswith(prefixes):
        return True
    return any(c[: len(lo)] >= lo and c[: len(hi)] <= hi for lo, hi in ranges)


def any_match(patterns: Iterable[str], code: str) -> bool:
    """Whether ``code`` falls under any of ``patterns`` (cached per pattern list and code)."""
    return _any_match(tuple(patterns), code)


def note_refs(note: str) -> list[str]:
    """Code patterns named in an instructional note: ``"(N18.1-N18.6)"`` -> ``["N18.1-N18.6"]``."""
    out = []
    for m in _REF.finditer(note):
        out.append(f"{m.group(1)}-{m.group(2)}" if m.group(2) else m.group(1))
    return out


def first_rule(table: list[dict[str, Any]], code: str) -> dict[str, Any] | None:
    for row in table:
        if code_matches(str(row["when"]), code):
            return row
    return None


# -- working state -----------------------------------------------------------------------------
@dataclass
class _Item:
    s: CodeSuggestion
    fate: str  # keep | candidate | suppressed | dropped
    added: bool = False
    order: int = 0


@dataclass
class _Note:
    """Everything the rules read about one note."""

    text: str
    mentions: list[Mention]
    setting: str
    threshold: float
    items: dict[tuple[str, str], _Item] = field(default_factory=dict)
    n_added: int = 0
    input_pos: dict[tuple[str, str], int] = field(default_factory=dict)  # the ranker's order

    def kept(self, system: str | None = ICD) -> list[_Item]:
        return [
            it
            for it in self.items.values()
            if it.fate == "keep" and (system is None or it.s.system == system)
        ]

    def kept_matching(self, pattern: str) -> list[_Item]:
        return [it for it in self.kept() if code_matches(pattern, it.s.code)]


def _explain(item: _Item, section: str, message: str) -> None:
    line = f"{section}: {message}"
    if line not in item.s.explanation:
        item.s.explanation.append(line)


class Guidelines:
    """The guidelines layer over one code-set knowledge base.

    ``Guidelines(kb).apply(ranked, mentions, text=..., setting=..., threshold=...)`` returns a
    :class:`GuidelineResult`. KB lookups are cached per instance, so the layer adds little time.
    """

    def __init__(self, kb: Any) -> None:
        self.kb = kb
        self.rules = load_rules()
        self._rec_cache: dict[str, CodeRecord | None] = {}
        self._notes_cache: dict[str, dict[str, list[tuple[str, str]]]] = {}
        self._desc_cache: dict[str, list[CodeRecord]] = {}

    # -- KB helpers (cached) -----------------------------------------------------------------
    def rec(self, code: str) -> CodeRecord | None:
        if code not in self._rec_cache:
            self._rec_cache[code] = self.kb.get(code, ICD)
        return self._rec_cache[code]

    def notes(self, code: str) -> dict[str, list[tuple[str, str]]]:
        if code not in self._notes_cache:
            self._notes_cache[code] = self.kb.effective_notes(code, ICD)
        return self._notes_cache[code]

    def billable_descendants(self, code: str) -> list[CodeRecord]:
        """Billable codes below ``code`` (from a sorted in-memory index of the code set)."""
        if code not in self._desc_cache:
            codes, titles, leaves = _code_index(self.kb)
            out: list[CodeRecord] = []
            i = bisect.bisect_right(codes, code)
            while i < len(codes) and codes[i].startswith(code):
                c = codes[i]
                if c in leaves:
                    out.append(CodeRecord(system=ICD, code=c, title=titles[c], billable=True))
                i += 1
            self._desc_cache[code] = out
        return self._desc_cache[code]

    def is_billable(self, code: str) -> bool:
        r = self.rec(code)
        return r is not None and r.billable

    def title(self, code: str) -> str:
        r = self.rec(code)
        return r.title if r is not None else code

    # -- entry point -------------------------------------------------------------------------------
    def apply(
        self,
        ranked: list[CodeSuggestion],
        mentions: list[Mention],
        *,
        text: str,
        setting: str,
        threshold: float,
        benchmark: bool = False,
        copy: bool = True,
    ) -> GuidelineResult:
        """``copy=False`` lets the rules change the suggestions in ``ranked`` in place: for a
        caller that built them for this call only (the engine), it saves a copy of each."""
        note = _Note(text=text, mentions=mentions, setting=setting, threshold=threshold)
        for i, s in enumerate(ranked):
            key = (s.system, s.code)
            if key in note.items:  # the same code twice: keep the first (higher score)
                note.items[key].s.evidence.extend(s.evidence)
                continue
            # copy what the rules change; Evidence objects are never mutated, so shared
            if copy:
                s = s.model_copy(
                    update={"evidence": list(s.evidence), "explanation": list(s.explanation)}
                )
            fate = "keep" if s.score >= threshold else "candidate"
            if s.system == ICD and not fate == "candidate" and self.rec(s.code) is None:
                fate = "candidate"
            note.items[key] = _Item(s=s, fate=fate, order=i)
            note.input_pos[key] = i
        for rule in RULES:
            rule(self, note)
        return _result_impl(self, note, benchmark)

    # -- helpers used by the rules -----------------------------------------------------------------
    def add(
        self,
        note: _Note,
        code: str,
        *,
        section: str,
        message: str,
        evidence: list[Evidence],
        score: float,
        system: str = ICD,
        status: str = "suggested",
    ) -> _Item | None:
        """Put ``code`` in the kept set (promoting it when the ranker had it lower)."""
        rec = self.rec(code) if system == ICD else None
        if system == ICD and rec is None:
            return None
        key = (system, code)
        item = note.items.get(key)
        if item is None:
            note.n_added += 1
            s = CodeSuggestion(
                system=system,
                code=code,
                title=rec.title if rec else code,
                billable=rec.billable if rec else True,
                score=max(0.0, min(1.0, score)),
                evidence=[e.model_copy() for e in evidence],
            )
            item = _Item(s=s, fate="keep", added=True, order=10_000 + note.n_added)
            note.items[key] = item
        else:
            if item.fate == "keep":
                return item
            item.fate = "keep"
            item.s.status = "suggested"
            item.s.reason = None
            item.s.score = max(item.s.score, min(1.0, score))
            have = {(e.start, e.end) for e in item.s.evidence}
            item.s.evidence.extend(e for e in evidence if (e.start, e.end) not in have)
        item.s.status = status  # type: ignore[assignment]
        _explain(item, section, message)
        return item

    def drop(self, item: _Item, section: str, message: str, *, fate: str = "dropped") -> None:
        item.fate = fate
        item.s.status = "suppressed" if fate == "suppressed" else "candidate"
        item.s.reason = message
        item.s.principal = False
        _explain(item, section, message)

    def replace(
        self, note: _Note, old: list[_Item], new_code: str, section: str, message: str
    ) -> _Item | None:
        """A combination or more specific code takes the place of ``old``."""
        if not old:
            return None
        evidence = [e for it in old for e in it.s.evidence]
        score = max(it.s.score for it in old)
        new = self.add(
            note, new_code, section=section, message=message, evidence=evidence, score=score
        )
        if new is None:
            return None
        for it in old:
            if it is not new:
                self.drop(it, section, f"{message}; replaced by {new_code}")
        return new


# -- shared helpers for rules ---------------------------------------------------------------------
def assertions_of(s: CodeSuggestion, mentions: list[Mention]) -> set[str]:
    """Assertion values of a code's evidence (its matching mentions when it has no evidence)."""
    found: set[str] = {e.assertion for e in s.evidence}
    if not found:
        key = f"{s.system}:{s.code}"
        found = {m.assertion for m in mentions if key in m.concepts or s.code in m.concepts}
    return found or {"present"}


def mention_at(note: _Note, start: int, end: int) -> Mention | None:
    for m in note.mentions:
        if m.start < end and start < m.end:
            return m
    return None


def _bounded(text: str, start: int, end: int, stops: str) -> tuple[int, int]:
    """The span around ``[start, end)`` up to (not including) the nearest stop characters."""
    lo = max(text.rfind(c, 0, start) for c in stops) + 1
    his = [i for i in (text.find(c, end) for c in stops) if i >= 0]
    return lo, min(his) if his else len(text)


def sentence_span(note: _Note, start: int, end: int) -> tuple[int, int]:
    m = mention_at(note, start, end)
    if m is not None and m.sentence_end > m.sentence_start:
        return m.sentence_start, m.sentence_end
    return _bounded(note.text, start, end, ".!?;\n")


def window_text(note: _Note, item: _Item, scope: str = "sentence") -> str:
    if scope == "note" or not item.s.evidence:
        return note.text
    parts = []
    for e in item.s.evidence:
        lo, hi = sentence_span(note, e.start, e.end)
        parts.append(note.text[lo:hi])
    return " | ".join(parts)


_RESOLVED_IN_STAY = re.compile(
    r"^\s*(?:now |has |had )?(resolved|resolving|resolution|improved|cleared)\s*$"
    r"|\b(resolved|resolving|improved|cleared) (?:with|after|on|following)\b",
    re.I,
)


def clause_texts(note: _Note, item: _Item) -> list[str]:
    """The clause around each evidence span (up to the nearest comma, semicolon, bracket or
    sentence end) plus the NLP's assertion cue for it: where a 'resolved' or 'unrelated' cue
    must sit to concern this condition rather than its neighbours in a list."""
    out = []
    text = note.text
    for e in item.s.evidence:
        lo, hi = _bounded(text, e.start, e.end, ",;\n()")
        dot = text.find(". ", e.end, hi)  # a sentence end inside the clause closes it too
        hi = dot if dot >= 0 else hi
        dot = text.rfind(". ", lo, e.start)
        lo = dot + 2 if dot >= 0 else lo
        out.append(text[lo:hi])
        m = mention_at(note, e.start, e.end)
        if m is not None and m.assertion_cue:
            out.append(m.assertion_cue)
    return out


def after_texts(note: _Note, item: _Item) -> list[str]:
    """From each evidence span to the end of its sentence ("Dehydration, resolved with ...")."""
    return [note.text[e.start : sentence_span(note, e.start, e.end)[1]] for e in item.s.evidence]


def find_cue(
    note: _Note, pattern: str, *, skip_negated: bool = True, scope: tuple[int, int] | None = None
) -> Evidence | None:
    """First non-negated match of ``pattern`` in the note (or in ``scope``) as evidence."""
    rx = _compile(pattern)
    lo, hi = scope or (0, len(note.text))
    for m in rx.finditer(note.text, lo, hi):
        before = note.text[max(0, m.start() - 40) : m.start()]
        if skip_negated and _NEG_BEFORE.search(before):
            continue
        return Evidence(start=m.start(), end=m.end(), text=m.group(0))
    return None


def attributes_of(note: _Note, item: _Item) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e in item.s.evidence:
        for m in note.mentions:
            if m.start < e.end and e.start < m.end:
                for a in m.attributes:
                    out.setdefault(a.name, a)
    return out


def _evidence_from_mention(m: Mention) -> Evidence:
    return Evidence(start=m.start, end=m.end, text=m.text, section=m.section, assertion=m.assertion)


# -- rule 1: assertion policy ----------------------------------------------------------------------
def rule_assertion_policy(g: Guidelines, note: _Note) -> None:
    """Negated / hypothetical / family / historical / uncertain mentions (I.A.19, I.C.21.c.4,
    II.H, III.C, IV.H)."""
    rules = g.rules["assertion"]
    resolved_rx = _compile(rules["resolved_cue"])
    former_rx = _compile(rules["former_cue"])
    inpatient = note.setting == "inpatient"
    uncertain_dropped: list[_Item] = []
    chronic_cache: list[set[tuple[int, int]]] = []

    def chronic_spans() -> set[tuple[int, int]]:
        """Evidence spans of chronic-condition codes (a history code is not made from them)."""
        if not chronic_cache:
            chronic_cache.append(
                {
                    (e.start, e.end)
                    for it in note.items.values()
                    if it.s.system == ICD and any_match(rules["chronic_persisting"], it.s.code)
                    for e in it.s.evidence
                }
            )
        return chronic_cache[0]

    for item in list(note.items.values()):
        if item.fate not in ("keep", "candidate"):
            continue
        s = item.s
        a = assertions_of(s, note.mentions)
        if "present" in a:
            continue
        is_icd = s.system == ICD
        # a history code (Z80-Z87, old MI ...) is what a family/past mention should produce
        history_code = is_icd and any_match(["Z80-Z87", "Z92", "I25.2", "Z91.8"], s.code)
        if history_code and a & {"family", "historical"}:
            continue
        cues = clause_texts(note, item) if "negated" in a else []
        if "negated" in a and any(former_rx.search(t) for t in cues):
            a = {"historical"}
        if "uncertain" in a:
            if inpatient:
                _explain(
                    item,
                    "II.H/III.C",
                    "uncertain diagnosis at discharge (inpatient) coded as if it existed",
                )
                continue
            if item.fate == "keep":
                uncertain_dropped.append(item)
            g.drop(
                item,
                "IV.H",
                "uncertain diagnosis (probable/suspected/rule out) is not "
                "coded in the outpatient setting; code the documented signs and symptoms",
                fate="suppressed",
            )
            continue
        if "historical" in a and is_icd and _cancer_under_treatment(g, note, item):
            _explain(
                item,
                "I.C.2.m",
                "malignancy documented as history is still under treatment: coded as current",
            )
            continue
        if "historical" in a and is_icd:
            chronic = any_match(rules["chronic_persisting"], s.code)
            resolved = any(resolved_rx.search(t) for t in clause_texts(note, item))
            if chronic and not resolved:
                _explain(
                    item,
                    "I.C.21.c.4",
                    "chronic condition listed as history is still "
                    "present; a personal-history code is only for conditions that no "
                    "longer exist",
                )
                continue
            row = first_rule(g.rules["personal_history"], s.code)
            same_span_chronic = bool(_spans(item) & chronic_spans())
            if row is not None and item.fate == "keep" and not same_span_chronic:
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
            continue
        if "family" in a and is_icd:
            row = first_rule(g.rules["family_history"], s.code)
            if row is not None and item.fate == "keep":
                g.add(
                    note,
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
            continue
        if "family" in a or "historical" in a:
            g.drop(
                item,
                "I.C.21.c.4",
                "family or past procedure, not performed this encounter",
                fate="suppressed",
            )
            continue
        stay = [*cues, *after_texts(note, item)] if inpatient and "negated" in a else []
        if any(_RESOLVED_IN_STAY.search(t) for t in stay):
            _explain(
                item,
                "Section III",
                "condition treated during the stay and documented as resolved is still "
                "reported for this admission",
            )
            continue
        why = "negated" if "negated" in a else "hypothetical"
        g.drop(
            item,
            "I.A.19",
            f"{why} mention: the provider does not state that the condition exists",
            fate="suppressed",
        )
    _mention_history_codes(g, note)
    if uncertain_dropped:
        _symptoms_instead(g, note, uncertain_dropped)


def _cancer_under_treatment(g: Guidelines, note: _Note, item: _Item) -> bool:
    """A malignancy (C00-C96) whose sentence names treatment that is not over (I.C.2.m)."""
    if not code_matches("C00-C96", item.s.code):
        return False
    rules = g.rules["assertion"]
    rx, done = _compile(rules["current_cancer_treatment"]), _compile(rules["treatment_completed"])
    for e in item.s.evidence:
        lo, hi = sentence_span(note, e.start, e.end)
        for m in rx.finditer(note.text, lo, hi):
            if not done.search(note.text[max(lo, m.start() - 40) : m.start()]):
                return True
    return False


def _mention_history_codes(g: Guidelines, note: _Note) -> None:
    """Family / personal history from NLP mentions the ranker scored nowhere above threshold."""
    former_rx = _compile(g.rules["assertion"]["former_cue"])
    for m in note.mentions:
        assertion = m.assertion
        if assertion == "negated" and m.assertion_cue and former_rx.search(m.assertion_cue):
            assertion = "historical"  # "former smoker, quit ..." is a past condition
        if assertion not in ("family", "historical") or m.kind in ("procedure", "medication"):
            continue
        table = g.rules["family_history" if assertion == "family" else "personal_history"]
        codes = [
            c.split(":", 1)[-1]
            for c in m.concepts
            if not c.startswith(("ICD-10-PCS", "CPT", "HCPCS"))
        ]
        if assertion == "historical" and any(
            any_match(g.rules["assertion"]["chronic_persisting"], c) for c in codes
        ):
            continue
        if any((ICD, c) in note.items and note.items[(ICD, c)].fate == "keep" for c in codes):
            continue  # coded as current by a rule above (chronic, under treatment ...)
        for c in codes:
            if g.rec(c) is None:
                continue
            if code_matches("Z80-Z87", c):  # the mention names the history code itself
                it = note.items.get((ICD, c))
                if g.is_billable(c) and (it is None or it.fate != "keep"):
                    g.add(
                        note,
                        c,
                        section="I.C.21.c.4",
                        message=f"{assertion} history documented in the note",
                        evidence=[_evidence_from_mention(m)],
                        score=max(it.s.score if it else 0.0, note.threshold),
                    )
                break
            row = first_rule(table, c)
            if row is None:
                continue
            z = str(row["code"])
            it = note.items.get((ICD, z))
            if it is None or it.fate != "keep":
                scores = [note.items[(ICD, c2)].s.score for c2 in codes if (ICD, c2) in note.items]
                g.add(
                    note,
                    z,
                    section="I.C.21.c.4",
                    message=f"{assertion} history of {c} documented in the note",
                    evidence=[_evidence_from_mention(m)],
                    score=max([*scores, note.threshold]),
                )
            break


def _symptoms_instead(g: Guidelines, note: _Note, dropped: list[_Item]) -> None:
    """IV.H: with the uncertain diagnosis not coded, the documented symptoms are."""
    names = ", ".join(it.s.code for it in dropped)
    best: dict[frozenset[tuple[int, int]], _Item] = {}  # one symptom code per documented symptom
    for item in note.items.values():
        if item.fate != "candidate" or item.s.system != ICD or not item.s.code.startswith("R"):
            continue
        if assertions_of(item.s, note.mentions) != {"present"} or not item.s.evidence:
            continue
        if not g.is_billable(item.s.code):
            continue
        key = _spans(item)
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


# -- rule 2: refinements -----------------------------------------------------------------------------
def rule_refinements(g: Guidelines, note: _Note) -> None:
    """Data-driven moves to the more specific code the note documents (I.B.2, IV.F.3).

    The first choice whose cue is in the text and whose code is billable (and, for a
    non-billable category, lies under it) wins."""
    for ref in g.rules["refinements"]:
        for item in note.kept():
            if item.s.code not in ref["codes"]:
                continue
            text = window_text(note, item, ref.get("scope", "sentence"))
            billable = g.is_billable(item.s.code)
            for ch in ref["choices"]:
                target = str(ch["code"]).format(base=item.s.code[:-1])
                if not g.is_billable(target) or (
                    not billable and not target.startswith(item.s.code)
                ):
                    continue
                if not _compile(ch["cue"]).search(text):
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
                        ev = find_cue(note, ch["cue"], skip_negated=False)
                        if ev is not None:
                            new.s.evidence.append(ev)
                break
    _asthma(g, note)


_ASTHMA_SEVERITY = [
    (r"\bmild intermittent\b", "J45.2"),
    (r"\bmild persistent\b", "J45.3"),
    (r"\bmoderate persistent\b", "J45.4"),
    (r"\bsevere persistent\b", "J45.5"),
]
_ASTHMA_STATUS = [
    (r"\bstatus asthmaticus\b", "2"),
    (r"\b(exacerbation|flare|attack|acute asthma)\b", "1"),
]


def _asthma(g: Guidelines, note: _Note) -> None:
    """Asthma severity and exacerbation/status asthmaticus (I.C.10.a.1)."""
    for item in note.kept_matching("J45"):
        text = window_text(note, item)
        own = next(
            (
                p
                for p in ("J45.2", "J45.3", "J45.4", "J45.5", "J45.90")
                if item.s.code.startswith(p)
            ),
            None,
        )
        sev = next((c for rx, c in _ASTHMA_SEVERITY if re.search(rx, text, re.I)), own)
        if sev is None:
            continue
        tail = item.s.code[len(own) :] if own else ""
        status = next((c for rx, c in _ASTHMA_STATUS if re.search(rx, text, re.I)), None)
        if status is None:
            status = tail if tail in ("1", "2") else "0"
        target = sev + status if sev != "J45.90" or status != "0" else "J45.909"
        if target != item.s.code and g.is_billable(target):
            g.replace(
                note,
                [item],
                target,
                "I.C.10.a.1",
                f"asthma severity/exacerbation documented: {g.title(target)}",
            )


# -- rule 3: combination codes -----------------------------------------------------------------------
def _unlinked(g: Guidelines, note: _Note, item: _Item) -> bool:
    return bool(_compile(g.rules["unlinked_cue"]).search(window_text(note, item)))


def rule_hypertension(g: Guidelines, note: _Note) -> None:
    """Hypertension with heart disease / CKD / both: I11, I12, I13 (I.C.9.a.1-3, link presumed)."""
    htn = [it for it in note.kept() if any_match(["I10", "I11", "I12", "I13"], it.s.code)]
    if not htn:
        return
    hf = [it for it in note.kept() if code_matches("I50", it.s.code)]
    heart = [it for it in note.kept() if any_match(["I51.4-I51.7", "I51.89", "I51.9"], it.s.code)]
    ckd = [it for it in note.kept() if code_matches("N18", it.s.code)]
    codes = {it.s.code for it in htn}
    has_hf = bool(hf) or any(c in ("I11.0", "I13.0", "I13.2") for c in codes)
    has_heart = has_hf or bool(heart) or any(c.startswith(("I11", "I13")) for c in codes)
    has_ckd = bool(ckd) or any(c.startswith(("I12", "I13")) for c in codes)
    esrd = any(it.s.code in ("N18.5", "N18.6") for it in ckd) or any(
        c in ("I12.0", "I13.11", "I13.2") for c in codes
    )
    if any(_unlinked(g, note, it) for it in [*hf, *heart, *ckd]):
        return
    if has_heart and has_ckd:
        target = ("I13.2" if esrd else "I13.0") if has_hf else ("I13.11" if esrd else "I13.10")
        section, msg = "I.C.9.a.3", "hypertension with heart disease and CKD presumed linked"
    elif has_ckd:
        target = "I12.0" if esrd else "I12.9"
        section, msg = "I.C.9.a.2", "hypertension with CKD presumed linked"
    elif has_heart:
        target = "I11.0" if has_hf else "I11.9"
        section, msg = "I.C.9.a.1", "hypertension with heart disease presumed linked"
    else:
        return
    if codes == {target}:
        return
    new = g.replace(note, htn, target, section, msg)
    if new is None:
        return
    for it in [*hf, *heart, *ckd]:
        new.s.evidence.extend(e for e in it.s.evidence if e not in new.s.evidence)
        if it.s.code.startswith("I51"):
            g.drop(it, section, f"{msg}; heart disease included in {target}")
        else:
            _explain(it, section, f"use additional code with {target}")


def rule_diabetes(g: Guidelines, note: _Note) -> None:
    """Diabetes with complications: E08-E13 combination codes (I.A.15, I.C.4.a)."""
    dm = [it for it in note.kept() if code_matches("E08-E13", it.s.code)]
    if not dm:
        return
    categories = list(dict.fromkeys(it.s.code[:3] for it in dm))
    cat = categories[0]
    made: list[_Item] = []
    for comp in list(note.kept()):
        row = first_rule(g.rules["diabetes_complications"], comp.s.code)
        if row is None or _unlinked(g, note, comp):
            continue
        target = cat + str(row["suffix"])
        if not g.is_billable(target):
            continue
        new: _Item | None
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
        made.append(new)
        if row["separate"] == "drop":
            g.drop(comp, "I.B.9", f"covered by the combination code {target}")
        else:
            _explain(comp, "I.B.7", f"use additional code with {target}")
    specific = [
        it
        for it in note.kept()
        if code_matches("E08-E13", it.s.code) and not it.s.code.endswith(".9")
    ]
    for it in note.kept():
        if code_matches("E08-E13", it.s.code) and it.s.code.endswith(".9") and specific:
            others = ", ".join(x.s.code for x in specific)
            g.drop(it, "I.B.9", f"diabetes 'without complications' conflicts with {others}")


def rule_copd_infection(g: Guidelines, note: _Note) -> None:
    """COPD with (acute) lower respiratory infection: J44.0 plus the infection (code also)."""
    copd = note.kept_matching("J44")
    if not copd:
        return
    infection = [
        it for it in note.kept() if any_match(["J09-J18", "J20-J22", "J85", "J86"], it.s.code)
    ]
    if not infection:
        # J44.0 says "with (acute) lower respiratory infection": without a documented (kept)
        # infection the ranker's J44.0 is not supported, whatever its score.
        for it in copd:
            if it.s.code == "J44.0":
                g.drop(it, "I.B.9", "J44.0 needs a documented lower respiratory infection")
        return
    has_j440 = any(it.s.code == "J44.0" for it in copd)
    plain = [it for it in copd if it.s.code in ("J44.9",)]
    if not has_j440:
        if plain:
            g.replace(
                note,
                plain,
                "J44.0",
                "I.B.9",
                "COPD with lower respiratory infection (combination code)",
            )
        else:
            ev = [e for it in copd for e in it.s.evidence]
            g.add(
                note,
                "J44.0",
                section="I.B.9",
                message="COPD with lower respiratory infection (combination code)",
                evidence=ev,
                score=max(it.s.score for it in copd),
            )
    for it in infection:
        _explain(it, "I.A.17", "code also the infection with J44.0")


def rule_influenza_pneumonia(g: Guidelines, note: _Note) -> None:
    """Influenza with pneumonia is one combination code (I.B.9, I.A.15)."""
    flu = [it for it in note.kept() if any_match(["J09", "J10", "J11"], it.s.code)]
    pneu = [it for it in note.kept() if any_match(["J12-J18"], it.s.code)]
    if not flu or not pneu:
        return
    cat = sorted({it.s.code[:3] for it in flu})[0]
    specified = [it for it in pneu if not code_matches("J18", it.s.code)]
    if cat == "J09":
        target = "J09.X1"
    else:
        target = f"{cat}.08" if specified else f"{cat}.00"
    new: _Item | None
    if any(it.s.code == target for it in flu):
        new = note.items[(ICD, target)]
    else:
        new = g.replace(note, flu, target, "I.B.9", "influenza with pneumonia (combination code)")
    if new is None:
        return
    for it in pneu:
        if code_matches("J18", it.s.code):
            g.drop(it, "I.B.9", f"pneumonia included in {target}")
            new.s.evidence.extend(it.s.evidence)
        else:
            _explain(it, "I.A.17", f"code also the specified pneumonia with {target}")


_ORGANISM_COMBOS = [
    # (codes that leave the organism open, organisms-table key, section, what)
    (
        ("J18", "J18.0", "J18.1", "J18.8", "J18.9", "J15.9", "J15.8"),
        "pneumonia",
        "I.B.9",
        "pneumonia",
    ),
    (("A41", "A41.9", "A41.8", "A41.89", "A41.5", "A41.50"), "sepsis", "I.C.1.d.1.a", "sepsis"),
]


def rule_organism_combination(g: Guidelines, note: _Note) -> None:
    """Pneumonia or sepsis due to a documented organism is one code (J13-J15, A40-A41), not the
    unspecified code plus B95/B96 (I.B.9, I.C.1.d.1.a)."""
    for open_codes, key, section, what in _ORGANISM_COMBOS:
        for item in [it for it in note.kept() if it.s.code in open_codes]:
            if _unlinked(g, note, item):
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
                    b = note.items.get((ICD, str(org["code"])))
                    if b is not None and b.fate == "keep" and key == "pneumonia":
                        g.drop(b, section, f"organism included in {target}")
                break


def _spans(item: _Item) -> frozenset[tuple[int, int]]:
    return frozenset((e.start, e.end) for e in item.s.evidence)


_TITLE_STOP = frozenset(
    "other unspecified specified with without of the and or due to in type disease disorder "
    "nos not elsewhere classified site part by for as a an on at from".split()
)


def undocumented_words(title: str, text: str) -> int:
    """How many content words of a code title the note text does not contain (the words after
    "without" name an absence, which needs no documentation)."""
    title = re.sub(r"\bwithout\b.*", "", title.lower())
    words = set(re.findall(r"[a-z]+", text.lower()))
    content = {w for w in re.findall(r"[a-z]+", title) if w not in _TITLE_STOP and len(w) > 2}
    return len(content - words)


def rule_same_mention_alternatives(g: Guidelines, note: _Note) -> None:
    """Codes of one category read off the very same words are alternatives, not two
    conditions: one is reported (I.B.2). The one whose title the note documents best wins (a
    title word the note lacks, "right" or "with hematuria", is a detail not documented); then,
    on a tie, the unspecified code (I.A.9.b: the note gives no more detail); then the ranker's
    score. Diabetes is exempt: one phrase can need several E08-E13 codes (I.C.4.a)."""
    groups: dict[tuple[str, frozenset[tuple[int, int]]], list[_Item]] = {}
    for it in note.kept():
        spans = _spans(it)
        if not spans or it.added or code_matches("E08-E13", it.s.code):
            continue  # codes the rules made (J44.0 + J44.1 ...) are not alternatives
        groups.setdefault((it.s.code[:3], spans), []).append(it)
    for items in groups.values():
        if len(items) < 2:
            continue
        text = window_text(note, items[0])

        def key(it: _Item, text: str = text) -> tuple[int, int, float, int]:
            title = g.title(it.s.code)
            unspecified = "unspecified" in title.lower() or "nos" in title.lower().split()
            return (undocumented_words(title, text), 0 if unspecified else 1, -it.s.score, it.order)

        items.sort(key=key)
        for it in items[1:]:
            g.drop(
                it,
                "I.B.2",
                f"alternative code for the same words as {items[0].s.code}, which matches "
                "the documentation better",
            )


def rule_unspecified_with_specific(g: Guidelines, note: _Note) -> None:
    """An unspecified code next to a specific code of the same category says the same thing
    less precisely: report the specific one (I.B.2, IV.F.3)."""
    kept = note.kept()
    for it in kept:
        if it.fate != "keep" or "unspecified" not in g.title(it.s.code).lower():
            continue
        rec = g.rec(it.s.code)
        parent = rec.parent if rec is not None and rec.parent else it.s.code[:3]
        if "-" in parent:  # a three-character code: its own category
            parent = it.s.code[:3]
        better = [
            o
            for o in kept
            if o is not it
            and o.fate == "keep"
            and o.s.code.startswith(parent)
            and "unspecified" not in g.title(o.s.code).lower()
            and _spans(o) != _spans(it)
        ]
        if better:
            g.drop(
                it, "I.B.2", f"{better[0].s.code} documents the same condition more specifically"
            )


# -- rule 4: integral symptoms ---------------------------------------------------------------------
def rule_integral_symptoms(g: Guidelines, note: _Note) -> None:
    """Signs and symptoms routinely part of a kept definitive diagnosis are not coded (I.B.5)."""
    kept = note.kept()
    for row in g.rules["integral_symptoms"]:
        dx = [it for it in kept if it.fate == "keep" and code_matches(row["dx"], it.s.code)]
        if not dx:
            continue
        for it in kept:
            if it.fate == "keep" and it not in dx and any_match(row["symptoms"], it.s.code):
                g.drop(it, "I.B.5", f"symptom integral to {dx[0].s.code} ({g.title(dx[0].s.code)})")


# -- rule 5: "use additional code" notes ----------------------------------------------------------------
_ROMAN = {"I": "1", "II": "2", "III": "3", "IV": "4", "V": "5"}
_CKD_RX = (
    r"\b(?:CKD|chronic kidney disease|chronic renal (?:disease|insufficiency|failure))"
    r"[,:\s-]*(?:(?:stage|stg\.?|st\.?)\s*)?(3\s?[ab]|[1-5]|IV|V|I{1,3})?\b"
)
_ESRD_RX = (
    r"\b(ESRD|end[- ]stage (?:renal|kidney) disease|CKD (?:stage )?5D?\s*on (?:HD|dialysis))\b"
)


def resolve_ckd_stage(g: Guidelines, note: _Note, owner: _Item, refs: list[str]) -> bool:
    """Stage of CKD (N18.-) for E11.22, I12, I13 ... from the note (I.C.14.a.1)."""
    for it in note.items.values():  # the ranker already had a stage code: promote it
        if (
            it.s.system == ICD
            and it.s.code.startswith("N18")
            and it.fate == "candidate"
            and any_match(refs, it.s.code)
            and "present" in assertions_of(it.s, note.mentions)
        ):
            g.add(
                note,
                it.s.code,
                section="I.B.7",
                message=f"use additional code with {owner.s.code}: CKD stage",
                evidence=[],
                score=it.s.score,
            )
            return True
    ev = find_cue(note, _ESRD_RX)
    code = "N18.6" if ev is not None else None
    if code is None:
        m = _compile(_CKD_RX).search(note.text)
        if m is None:
            return False
        ev = Evidence(start=m.start(), end=m.end(), text=m.group(0))
        st = (m.group(1) or "").replace(" ", "").lower()
        st = _ROMAN.get(st.upper(), st)
        code = {
            "1": "N18.1",
            "2": "N18.2",
            "3": "N18.30",
            "3a": "N18.31",
            "3b": "N18.32",
            "4": "N18.4",
            "5": "N18.5",
        }.get(st, "N18.9")
    if ev is None or (not any_match(refs, code) and code != "N18.9"):
        return False
    g.add(
        note,
        code,
        section="I.B.7",
        message=f"use additional code with {owner.s.code}: CKD stage",
        evidence=[ev],
        score=owner.s.score,
    )
    return True


def drug_cue(note: _Note, row: dict[str, Any]) -> Evidence | None:
    """A documented current drug (not negated), unless its sentence says the use is only
    temporary: insulin given to control sugars during a stay is not Z79.4 (I.C.4.a.3)."""
    not_if = _compile(row["not_if"]) if row.get("not_if") else None
    lo = 0
    while True:
        ev = find_cue(note, row["cue"], scope=(lo, len(note.text)))
        if ev is None:
            return None
        s0, s1 = sentence_span(note, ev.start, ev.end)
        if not_if is None or not not_if.search(note.text[s0:s1]):
            return ev
        lo = ev.end


def resolve_long_term_drug(g: Guidelines, note: _Note, owner: _Item, refs: list[str]) -> bool:
    added = False
    for row in g.rules["long_term_drugs"]:
        if not any_match(refs, str(row["code"])):
            continue
        ev = drug_cue(note, row)
        if ev is None:
            continue
        g.add(
            note,
            str(row["code"]),
            section="I.C.4.a.3",
            message=f"use additional code with {owner.s.code}: long-term drug use "
            f"documented ('{ev.text}')",
            evidence=[ev],
            score=owner.s.score,
        )
        added = True
    return added


def resolve_organism(g: Guidelines, note: _Note, owner: _Item, refs: list[str]) -> bool:
    for org in g.rules["organisms"]:
        if not any_match(refs, str(org["code"])):
            continue
        ev = find_cue(note, org["cue"])
        if ev is None:
            continue
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


_WEEKS_RX = (
    r"\b(\d{1,2})\s*(?:\+\s*\d\s*)?(?:w(?:ee)?ks?)\b(?:\s*(?:and\s*)?\d\s*d(?:ays?)?)?"
    r"\s*(?:of\s+)?(?:gestation|GA|EGA|pregnan\w*|IUP|gestational age)"
    r"|\b(?:GA|EGA|gestational age)\s*(?:of|:|=|is)?\s*(\d{1,2})"
    r"|\b(\d{1,2})\s?w(?:ks?)?\s?\d\s?d\b"
)


def gestation_weeks(note: _Note) -> tuple[int, Evidence] | None:
    for m in note.mentions:
        for a in m.attributes:
            if a.name == "pregnancy_weeks":
                digits = re.match(r"\d+", a.value)
                if digits:
                    return int(digits.group(0)), Evidence(start=a.start, end=a.end, text=a.text)
    rm = _compile(_WEEKS_RX).search(note.text)
    if rm is None:
        return None
    weeks = int(rm.group(1) or rm.group(2) or rm.group(3))
    return weeks, Evidence(start=rm.start(), end=rm.end(), text=rm.group(0))


def resolve_weeks(g: Guidelines, note: _Note, owner: _Item, refs: list[str]) -> bool:
    got = gestation_weeks(note)
    if got is None:
        return False
    weeks, ev = got
    code = "Z3A.01" if weeks < 8 else ("Z3A.49" if weeks > 42 else f"Z3A.{weeks:02d}")
    g.add(
        note,
        code,
        section="I.C.15.a.7",
        message=f"use additional code with {owner.s.code}: {weeks} completed weeks of gestation",
        evidence=[ev],
        score=owner.s.score,
    )
    return True


_BMI_RX = r"\bBMI\b[^0-9\n]{0,15}(\d{2}(?:\.\d+)?)"


def bmi_code(value: float) -> str:
    """Adult BMI value -> Z68 code."""
    if value < 20:
        return "Z68.1"
    if value < 30:
        return f"Z68.{int(value)}"
    if value < 40:
        return f"Z68.{int(value)}"
    for hi, code in ((45, "Z68.41"), (50, "Z68.42"), (60, "Z68.43"), (70, "Z68.44")):
        if value < hi:
            return code
    return "Z68.45"


def resolve_bmi(g: Guidelines, note: _Note, owner: _Item, refs: list[str]) -> bool:
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
        rm = _compile(_BMI_RX).search(note.text)
        if rm is None or re.search(r"percentile", note.text[rm.end() : rm.end() + 20], re.I):
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


Resolver = Callable[[Guidelines, _Note, _Item, list[str]], bool]
RESOLVERS: list[tuple[str, Resolver]] = [
    ("N18", resolve_ckd_stage),
    ("Z79", resolve_long_term_drug),
    ("B95-B97", resolve_organism),
    ("Z3A", resolve_weeks),
    ("Z68", resolve_bmi),
]


def rule_use_additional(g: Guidelines, note: _Note) -> None:
    """ "Use additional code" notes from the tabular list, resolved from the note (I.B.7)."""
    done: set[tuple[str, str]] = set()
    for owner in note.kept():
        for _src, text in g.notes(owner.s.code).get("use_additional", []):
            refs = note_refs(text)
            if not refs:
                continue
            for target, resolver in RESOLVERS:
                if not any(code_matches(target, r.split("-")[0]) for r in refs):
                    continue
                if any(any_match(refs, it.s.code) for it in note.kept()):
                    break  # the pair is already there
                key = (target, text if target == "Z79" else "")
                if key in done:
                    break
                done.add(key)
                resolver(g, note, owner, refs)
                break
    _long_term_drugs_anywhere(g, note)


def _long_term_drugs_anywhere(g: Guidelines, note: _Note) -> None:
    """Z79 status codes marked ``always`` in the rules: coded when the drug is documented as
    current and the note has a diagnosis to go with it (I.C.21.c.3)."""
    kept = [it for it in note.kept() if not it.s.code.startswith("Z")]
    if not kept:
        return
    for row in g.rules["long_term_drugs"]:
        code = str(row["code"])
        if not row.get("always") or any(it.s.code == code for it in note.kept()):
            continue
        ev = drug_cue(note, row)
        if ev is None:
            continue
        g.add(
            note,
            code,
            section="I.C.21.c.3",
            message=f"long-term (current) drug therapy documented ('{ev.text}')",
            evidence=[ev],
            score=max(it.s.score for it in kept),
        )


# -- rule 6: billable, specificity, queries ------------------------------------------------------------
_AXIS_WORDS = {
    "laterality": re.compile(r"^(right|left|bilateral|unilateral|unspecified|side)$"),
    "trimester": re.compile(r"^(first|second|third|unspecified|trimester)$"),
    "stage": re.compile(r"^(stage|unspecified|\d[ab]?|i{1,3}|iv|v)$"),
}
_AXIS_VALUE = {
    "laterality": re.compile(r"\b(right|left|bilateral)\b", re.I),
    "trimester": re.compile(r"\b(first|second|third) trimester\b", re.I),
    "stage": re.compile(r"\bstage \d", re.I),
}


def _stem(title: str, axis: str) -> frozenset[str]:
    """A title's words without those of one axis: siblings that differ only on it match."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    return frozenset(w for w in words if not _AXIS_WORDS[axis].match(w))


def _axis_siblings(g: Guidelines, code: str) -> tuple[str | None, list[CodeRecord]]:
    """The axis an unspecified code leaves open (its billable siblings differ from it only on
    laterality, trimester or stage) and those siblings."""
    rec = g.rec(code)
    if rec is None or not rec.parent or "unspecified" not in rec.title.lower():
        return None, []
    sibs = [r for r in g.billable_descendants(rec.parent) if r.code != code]
    for axis, value in _AXIS_VALUE.items():
        if value.search(rec.title):
            continue
        stem = _stem(rec.title, axis)
        same = [r for r in sibs if value.search(r.title) and _stem(r.title, axis) == stem]
        if same:
            return axis, same
    return None, []


def _axis_of(g: Guidelines, code: str) -> str | None:
    return _axis_siblings(g, code)[0]


def _attribute_target(
    g: Guidelines, note: _Note, item: _Item, pool: list[CodeRecord]
) -> tuple[str, str] | None:
    """A code in ``pool`` that the mentions' attributes (laterality, stage, trimester) select."""
    attrs = attributes_of(note, item)
    words: list[tuple[str, str]] = []
    lat = attrs.get("laterality")
    if lat is not None:
        words.append((rf"\b{re.escape(lat.value.lower())}\b", f"laterality '{lat.text}'"))
    st = attrs.get("stage")
    if st is not None:
        words.append((rf"\bstage {re.escape(st.value.lower())}\b", f"stage '{st.text}'"))
    tri = attrs.get("trimester")
    weeks = gestation_weeks(note) if any("trimester" in r.title for r in pool) else None
    if tri is not None:
        words.append((rf"\b{re.escape(tri.value.lower())} trimester\b", f"trimester '{tri.text}'"))
    elif weeks is not None:
        n = weeks[0]
        t = "first" if n < 14 else ("second" if n < 28 else "third")
        words.append((rf"\b{t} trimester\b", f"{n} weeks = {t} trimester (I.C.15.a.3)"))
    if not words:
        return None
    base = set(re.findall(r"\w+", g.title(item.s.code).lower())) - {"unspecified", "right", "left"}
    best: tuple[int, str, str] | None = None
    for r in pool:
        t = r.title.lower()
        if (
            "unspecified" in t
            and r.code != item.s.code
            and not all(re.search(w, t) for w, _ in words[:1])
        ):
            continue
        hits = [why for w, why in words if re.search(w, t)]
        if not hits:
            continue
        overlap = len(base & set(re.findall(r"\w+", t))) + 10 * len(hits)
        if best is None or overlap > best[0]:
            best = (overlap, r.code, "; ".join(hits))
    return (best[1], best[2]) if best else None


def _query_for(g: Guidelines, code: str, axis: str | None) -> Query | None:
    q = g.rules["queries"].get(code)
    if q is not None:
        return Query(axis=q["axis"], question=q["question"]) if q.get("question") else None
    if axis is None:
        return None
    tmpl = g.rules["generic_queries"].get(axis)
    return Query(axis=axis, question=tmpl.format(title=g.title(code))) if tmpl else None


def _supported(note: _Note, item: _Item) -> bool:
    """The note supports a code when it is present and either the ranker scored it at the
    threshold or the NLP matched one of its own terms in its evidence (a child the structure
    generator merely listed under a category is not supported)."""
    if "present" not in assertions_of(item.s, note.mentions):
        return False
    if item.s.score >= note.threshold:
        return True
    key = f"{item.s.system}:{item.s.code}"
    return any(
        key in m.concepts
        for e in item.s.evidence
        for m in note.mentions
        if m.start < e.end and e.start < m.end
    )


def rule_billable_specificity(g: Guidelines, note: _Note) -> None:
    """Non-billable codes never reach ``codes``; unspecified codes get a more specific one the
    note supports, else a provider query (I.B.2, IV.F.1-3). A code put in place of a category
    gets the same check (N18.3 -> N18.30 -> query 3a or 3b)."""
    seen: set[str] = set()
    for _ in range(3):
        todo = [it for it in note.kept() if it.s.code not in seen]
        if not todo:
            return
        seen.update(it.s.code for it in todo)
        rule_refinements(g, note)  # a code put in place of a category may refine further
        rule_organism_combination(g, note)
        _billable_specificity_pass(g, note, [it for it in todo if it.fate == "keep"])


def _billable_specificity_pass(g: Guidelines, note: _Note, items: list[_Item]) -> None:
    for item in items:
        code = item.s.code
        rec = g.rec(code)
        if rec is None:
            continue
        if not rec.billable:
            pool = g.billable_descendants(code)
            ranked_child = [
                note.items[(ICD, r.code)]
                for r in pool
                if (ICD, r.code) in note.items
                and note.items[(ICD, r.code)].fate in ("candidate", "keep")
                and _supported(note, note.items[(ICD, r.code)])
            ]
            if ranked_child:
                best = max(ranked_child, key=lambda it: it.s.score)
                g.replace(
                    note,
                    [item],
                    best.s.code,
                    "I.B.2",
                    f"{code} is a non-billable category; the ranker's best-supported "
                    f"billable code below it is {best.s.code}",
                )
                continue
            tgt = _attribute_target(g, note, item, pool)
            if tgt is not None:
                g.replace(
                    note,
                    [item],
                    tgt[0],
                    "I.B.2",
                    f"{code} is a non-billable category; documented {tgt[1]}",
                )
                continue
            axis = _axis_of(g, pool[0].code) if pool else None
            item.fate = "candidate"
            item.s.status = "needs_query"
            item.s.query = _query_for(g, code, axis) or Query(
                axis=axis or "specificity",
                question=f"{rec.title}: more detail is needed to choose a billable code "
                f"({len(pool)} options).",
            )
            _explain(
                item,
                "I.B.2",
                "non-billable category kept out of the code set until "
                "the documentation supports a billable code",
            )
            continue
        axis = _axis_of(g, code)
        q = g.rules["queries"].get(code)
        if axis is None and q is None:
            continue
        if axis is not None and rec.parent:
            tgt = _attribute_target(g, note, item, _axis_siblings(g, code)[1])
            if tgt is not None and tgt[0] != code:
                g.replace(note, [item], tgt[0], "I.B.2", f"more specific code: documented {tgt[1]}")
                continue
        query = _query_for(g, code, axis)
        if query is not None:
            item.s.status = "needs_query"
            item.s.query = query
            _explain(
                item,
                "I.B.2/IV.F.3",
                f"unspecified code kept; {query.axis} not documented, query the provider",
            )


# -- rule 7: Excludes1 ---------------------------------------------------------------------------------
def _support(item: _Item) -> tuple[float, int, int]:
    present = sum(1 for e in item.s.evidence if e.assertion == "present")
    return (item.s.score, present, len(item.s.code))


def rule_excludes1(g: Guidelines, note: _Note) -> None:
    """Excludes1 pairs are never reported together: keep the better-supported code (I.A.12.a)."""
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
            if a.s.code[:3] == b.s.code[:3] and code_matches("E08-E13", a.s.code):
                continue
            win, lose = (a, b) if _support(a) >= _support(b) else (b, a)
            g.drop(
                lose,
                "I.A.12.a",
                f"Excludes1 with {win.s.code} ({g.title(win.s.code)}); "
                f"{win.s.code} is better supported (score {win.s.score:.2f} vs "
                f"{lose.s.score:.2f})",
            )
            if lose is a:
                break


# -- rule 8: sequencing ---------------------------------------------------------------------------------
_NOT_PRINCIPAL = [
    "Z68",
    "Z3A",
    "Z79",
    "Z80-Z87",
    "B95-B97",
    "V00-Y99",
    "Z91",
    "Z92",
    "Z16",
    "Z77",
    "Z72",
    "N18",
    "Z99",
    "Z95",
    "Z94",
]


def rule_sequencing(g: Guidelines, note: _Note) -> None:
    """ "Code first" order (I.A.13, I.B.7) and, inpatient, a principal-diagnosis candidate (II)."""
    kept = [it for it in note.kept() if it.s.status in ("suggested", "needs_query")]
    if not kept:
        return
    kept.sort(key=lambda it: (-it.s.score, it.order))
    # code first: move the code named by a "code first" note ahead of the code carrying it
    for it in list(kept):
        firsts = [r for _s, t in g.notes(it.s.code).get("code_first", []) for r in note_refs(t)]
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
                _explain(it, "I.A.13", f"sequenced after {other.s.code} (code first note)")
    # use additional: the code carrying the note precedes the additional code
    for it in list(kept):
        refs = [r for _s, t in g.notes(it.s.code).get("use_additional", []) for r in note_refs(t)]
        for other in kept:
            if (
                other is not it
                and any_match(refs, other.s.code)
                and kept.index(other) < kept.index(it)
            ):
                kept.remove(it)
                kept.insert(kept.index(other), it)
                _explain(other, "I.B.7", f"sequenced after {it.s.code} (use additional code)")
    for rank, it in enumerate(kept):
        it.order = rank
    if note.setting != "inpatient":
        return
    sect_rx = _compile(g.rules["principal_sections"])
    eligible = [
        it
        for it in kept
        if it.s.system == ICD
        and not any_match(_NOT_PRINCIPAL, it.s.code)
        and "in diseases classified elsewhere" not in g.title(it.s.code).lower()
    ]
    definitive = [it for it in eligible if not it.s.code.startswith("R")]
    pool = definitive or eligible
    if not pool:
        return
    in_section = [
        it for it in pool if any(e.section and sect_rx.search(e.section) for e in it.s.evidence)
    ]
    choice = in_section or pool
    principal = choice[0]
    section = "Section II"
    why = "documented in a diagnosis/admission section" if in_section else "best supported"
    sepsis = [it for it in choice if any_match(["A40-A41", "A02.1", "A22.7", "B37.7"], it.s.code)]
    if sepsis and sepsis[0] is not principal:
        principal, section = sepsis[0], "I.C.1.d.4"
        why = "sepsis present on admission with a localized infection is sequenced first"
    principal.s.principal = True
    _explain(principal, section, f"principal diagnosis candidate ({why}); sequenced first")
    kept.remove(principal)
    kept.insert(0, principal)
    for rank, it in enumerate(kept):
        it.order = rank


RULES: list[Callable[[Guidelines, _Note], None]] = [
    rule_assertion_policy,
    rule_refinements,
    rule_hypertension,
    rule_diabetes,
    rule_copd_infection,
    rule_influenza_pneumonia,
    rule_organism_combination,
    rule_use_additional,
    rule_billable_specificity,
    rule_same_mention_alternatives,
    rule_unspecified_with_specific,
    rule_integral_symptoms,
    rule_excludes1,
    rule_sequencing,
]


# -- output -------------------------------------------------------------------------------------------------
def _result_impl(g: Guidelines, note: _Note, benchmark: bool) -> GuidelineResult:
    codes: list[CodeSuggestion] = []
    candidates: list[CodeSuggestion] = []
    suppressed: list[CodeSuggestion] = []
    kept = sorted((it for it in note.items.values() if it.fate == "keep"), key=lambda it: it.order)
    for it in kept:
        if it.s.system == ICD and not g.is_billable(it.s.code):
            it.fate = "candidate"
            it.s.status = "needs_query"
            continue
        codes.append(it.s)
    others = sorted(
        (it for it in note.items.values() if it.fate != "keep"),
        key=lambda it: (-it.s.score, it.order),
    )
    for it in others:
        if it.fate == "suppressed":
            suppressed.append(it.s)
        else:
            if it.s.status == "suggested":
                it.s.status = "candidate"
            candidates.append(it.s)
    if benchmark:
        # the ranker's order (input position), rule-added codes after every input code
        def pos(s: CodeSuggestion) -> tuple[int, float]:
            i = note.input_pos.get((s.system, s.code))
            return (i, 0.0) if i is not None else (len(note.input_pos), -s.score)

        candidates = sorted(candidates + suppressed, key=pos)
        suppressed = []
        codes = sorted(codes, key=pos)
        for i, s in enumerate(sorted(codes + candidates, key=pos)):
            s.rank = i + 1
    else:
        for i, s in enumerate(codes + candidates + suppressed):
            s.rank = i + 1
    return GuidelineResult(codes=codes, candidates=candidates, suppressed=suppressed)
