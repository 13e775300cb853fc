"""CPT codes from the procedures a note documents (``models.registry`` kind ``rule_coder``,
name ``cpt``), with the common modifiers.

The rules are data (``models/resources/cpt_procedures*.yaml``: procedure phrases, approach and
extent words -> code; ``procedure_context.yaml``: not-done cues, laterality, distinct-site
words, the pairs that take -XS/-59, the -25 table). For each phrase done in this encounter
(:class:`~clinicode.models.procedure_text.NoteText`), the rule's variants pick the code from
the words of its block (the text from the phrase to the next procedure phrase), or of the whole
note for approach words; every code carries the phrase and the words that decided it as
evidence, and the path as ``explanation``.

Modifiers are in ``CodeSuggestion.modifiers`` (``code`` stays the 5-character code):
RT/LT/50 from the documented side for paired-organ procedures, LD/LC/RC/LM/RI for the coronary
vessel treated, XS (distinct site) or 59 (distinct service) on the column-2 code of a bundled
pair when the note says so. -25 belongs on an E/M code billed with a same-day procedure; the
E/M level is another coder's, so :func:`add_modifier_25` does it over the final code list.

Setting: CPT is the professional claim's code set, so procedures are coded for inpatient
encounters too (the surgeon's claim; the facility's is ICD-10-PCS). Drug and vaccine
administration, vaccine products and office tests (rules with ``settings: [outpatient]``) are
outpatient only: inpatient they are the facility's. Importing does no I/O.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from clinicode.models.procedure_text import (
    GRAM,
    NoteText,
    Span,
    flat,
    load_context,
    load_yaml,
    rx,
    triggers,
)
from clinicode.models.resources import compile_every
from clinicode.schema import CodeSuggestion, Evidence, Mention, Query

SYSTEM = "CPT"
RULE_FILES = (
    "cpt_procedures.yaml",
    "cpt_procedures_medicine.yaml",
    "cpt_procedures_diagnostics.yaml",
)
SCORE_SUGGESTED = 0.9
SCORE_QUERY = 0.6


@lru_cache(maxsize=1)
def load_rules() -> dict[str, Any]:
    """Every procedure rule and the vaccine tables (read once; callers must not mutate)."""
    rules: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    for name in RULE_FILES:
        data = load_yaml(name)
        for r in data.get("procedures", []):
            rules.append({**r, "_file": name})
        for key in ("vaccines", "vaccine_given", "vaccine_admin"):
            if key in data:
                out[key] = data[key]
    out["procedures"] = rules
    return out


@dataclass
class Found:
    """One code the rules give, before it becomes a suggestion."""

    code: str
    rule: str
    evidence: list[Span]
    why: list[str]
    modifiers: list[str] = field(default_factory=list)
    units: int | None = None
    query: Query | None = None


class CPTCoder:
    """CPT from procedure phrases (``types.RuleCoder``)."""

    name = "cpt"
    systems: tuple[str, ...] = (SYSTEM,)

    def __init__(self, kb: Any) -> None:
        self.kb = kb
        self.rules = load_rules()
        self.ctx = load_context()
        self.phrases = PhraseIndex(self.rules["procedures"])

    def warm_up(self) -> None:
        """Compile every pattern of the procedure rules and their context now, not on the
        note that first needs one (some 300 compiles spread over a server's first hundred
        notes)."""
        compile_every([self.rules, self.ctx], rx)

    def code(self, text: str, mentions: list[Mention], *, setting: str) -> list[CodeSuggestion]:
        note = NoteText(text, mentions)
        found = find_codes(note, self.rules, setting, self.phrases)
        apply_distinct(note, found, self.ctx)
        return [s for f in found if (s := self._suggestion(note, f)) is not None]

    def _suggestion(self, note: NoteText, f: Found) -> CodeSuggestion | None:
        rec = self.kb.get(f.code, SYSTEM)
        if rec is None:
            return None  # a licensed CPT file without this code: never invent a title
        ev = []
        for s, e in f.evidence:
            sent = note.sentence_at(s)
            ev.append(Evidence(start=s, end=e, text=note.text[s:e], section=sent.section))
        return CodeSuggestion(
            system=SYSTEM,
            code=f.code,
            title=rec.title,
            billable=rec.billable,
            description_source=rec.description_source,
            score=SCORE_QUERY if f.query else SCORE_SUGGESTED,
            status="needs_query" if f.query else "suggested",
            evidence=ev,
            explanation=[f"rule cpt: {f.rule}", *f.why],
            query=f.query,
            modifiers=f.modifiers,
            units=f.units,
        )


# -- finding codes ------------------------------------------------------------------------------
@dataclass
class _Hit:
    rule: dict[str, Any]
    start: int
    end: int
    block_end: int = 0


def find_codes(
    note: NoteText, rules: dict[str, Any], setting: str, phrases: PhraseIndex
) -> list[Found]:
    """Every CPT code the procedure rules and the vaccine tables give for a note
    (``phrases``: the :class:`PhraseIndex` of ``rules["procedures"]``)."""
    hits = _phrase_hits(note, phrases)
    by_rule: dict[str, list[_Hit]] = {}
    for h in hits:
        by_rule.setdefault(h.rule["id"], []).append(h)
    out: list[Found] = []
    for rule_hits in by_rule.values():
        rule = rule_hits[0].rule
        if setting not in rule.get("settings", ("inpatient", "outpatient")):
            continue
        done = [h for h in rule_hits if _fires(note, h)]
        if done:
            out.extend(_rule_codes(note, rule, done))
    if setting == "outpatient":
        out.extend(vaccine_codes(note, rules))
    merged: dict[str, Found] = {}
    for f in out:
        if f.code in merged:
            merged[f.code].evidence.extend(f.evidence)
        else:
            merged[f.code] = f
    return unbundle(list(merged.values()), note.ctx.get("bundles", []))


def unbundle(found: list[Found], bundles: Sequence[dict[str, Any]]) -> list[Found]:
    """Drop a code that is part of another code of the same session (``bundles``)."""
    codes = {f.code for f in found}
    drop = {
        str(b["drop"])
        for b in bundles
        if str(b["drop"]) in codes
        and any(_in_ranges(c, b["with"]) for c in codes - {str(b["drop"])})
    }
    return [f for f in found if f.code not in drop]


class PhraseIndex:
    """The procedure rules' phrases (vaccine rules aside) by the parts one of which any match
    contains (``procedure_text.triggers``): a note is asked once per part, not once per phrase,
    and only the phrases of the parts it holds are searched."""

    def __init__(self, rules: Sequence[dict[str, Any]]) -> None:
        self.rules = [r for r in rules if not r.get("vaccine")]
        self.always: list[tuple[int, int]] = []  # (rule, phrase) with no part to test
        self.by_part: dict[str, list[tuple[int, int]]] = {}
        for ri, rule in enumerate(self.rules):
            for pi, p in enumerate(rule["find"]):
                parts = triggers(p)
                if parts is None:
                    self.always.append((ri, pi))
                for part in parts or ():
                    self.by_part.setdefault(part, []).append((ri, pi))
        # parts by their first 3 characters, so a note is asked only about the parts whose
        # first piece it holds (``NoteText.has``, one set intersection for all the rest)
        self.short = [p for p in self.by_part if len(p) < GRAM]
        self.by_first: dict[str, list[str]] = {}
        for part in self.by_part:
            if len(part) >= GRAM:
                self.by_first.setdefault(part[:GRAM], []).append(part)

    def candidates(self, note: NoteText) -> list[tuple[int, int]]:
        """``(rule, phrase)`` indices that may match ``note``, in the rules' order."""
        found = set(self.always)
        for part in self.short:
            if part in note.low:
                found.update(self.by_part[part])
        grams, low = note.grams(), note.low
        for first in grams.intersection(self.by_first):
            for part in self.by_first[first]:
                if part[-GRAM:] in grams and part in low:
                    found.update(self.by_part[part])
        return sorted(found)


def _phrase_hits(note: NoteText, index: PhraseIndex) -> list[_Hit]:
    """Every procedure phrase in the note (done or not: all of them end blocks).

    A phrase's block ends at the first later phrase of another rule that starts after it and
    outside its clause. Linear in the phrases (bar a bisect each): phrases are sorted, so those
    past the clause come after one bisect, and a run of one rule's phrases is skipped whole."""
    hits: list[_Hit] = []
    text = note.text
    taken: list[Span] = []  # the current rule's phrases so far, disjoint, sorted by start
    last_rule = -1
    for ri, pi in index.candidates(note):
        rule = index.rules[ri]
        if ri != last_rule:
            taken, last_rule = [], ri
        for m in note.finditer(rule["find"][pi]):
            if not _overlaps(taken, m.start(), m.end()):
                bisect.insort(taken, (m.start(), m.end()))
                hits.append(_Hit(rule, m.start(), m.end()))
    hits.sort(key=lambda h: h.start)
    starts = [h.start for h in hits]
    run_end = list(range(1, len(hits) + 1))  # first index past the run of i's rule from i
    for i in range(len(hits) - 2, -1, -1):
        if hits[i + 1].rule["id"] == hits[i].rule["id"]:
            run_end[i] = run_end[i + 1]
    for i, h in enumerate(hits):
        own_end = note.clause(note.sentence_at(h.start), h.start)[1]
        k = bisect.bisect_left(starts, max(h.end, own_end), lo=i + 1)
        if k < len(hits) and hits[k].rule["id"] == h.rule["id"]:
            k = run_end[k]
        h.block_end = hits[k].start if k < len(hits) else len(text)
    return hits


def _overlaps(spans: list[Span], start: int, end: int) -> bool:
    """Whether ``[start, end)`` overlaps one of ``spans`` (disjoint, sorted by start)."""
    i = bisect.bisect_left(spans, (end,))
    return i > 0 and spans[i - 1][1] > start


def _fires(note: NoteText, h: _Hit) -> bool:
    ok, _ = note.done_here(h.start, h.end)
    if not ok:
        return False
    rule, block = h.rule, _block(note, h)
    sent = note.sentence_at(h.start)
    if note.search(rule.get("none_in_sentence", []), [(sent.start, sent.end)]):
        return False
    if note.search(rule.get("none_in_block", []), block):
        return False
    if note.search(rule.get("none_in_note", []), note.eligible_spans()):
        return False
    if rule.get("kind") in ("imaging", "test") and not _authors_study(note, h, block):
        return False
    here = [(sent.start, sent.end)]
    if not all(note.search(g, here) for g in rule.get("requires_sentence", [])):
        return False
    return all(note.search(g, block) for g in rule.get("requires", []))


def _authors_study(note: NoteText, h: _Hit, block: list[Span]) -> bool:
    """Whether the note is the study's report or its author did or read it (not a review of a
    result): ``procedure_context.yaml`` ``report_*``."""
    ctx = note.ctx
    line_start = note.text.rfind("\n", 0, h.start) + 1
    line_end = note.text.find("\n", h.start)
    line = note.text[line_start : line_end if line_end >= 0 else len(note.text)]
    first = note.text.count("\n", 0, line_start) < int(ctx["report_lines"])
    if first and h.start < int(ctx["report_chars"]):
        return True
    if any(rx(p).search(line) for p in ctx["report_headers"]) or re.match(
        ctx["report_title"], line
    ):
        return True
    sent = note.sentence_at(h.start)
    return note.search(ctx["report_cues"], [(sent.start, sent.end), *block]) is not None


def _block(note: NoteText, h: _Hit) -> list[Span]:
    """From the start of the phrase's clause ("R knee injection") to the next phrase."""
    start = note.clause(note.sentence_at(h.start), h.start)[0]
    return note.eligible_spans(min(start, h.start), h.block_end)


def _scope(note: NoteText, rule: dict[str, Any], h: _Hit) -> list[Span]:
    block = _block(note, h)
    return block + note.eligible_spans() if rule.get("scope") == "note" else block


def _fits(
    note: NoteText, cond: dict[str, Any], spans: list[Span]
) -> tuple[bool, list[Span], list[str]]:
    """Whether a variant/component fits the spans: its words, evidence and why."""
    ev: list[Span] = []
    why: list[str] = []
    for group in cond.get("all", []):
        hit = note.search(group, spans)
        if hit is None:
            return False, [], []
        ev.append(hit)
        why.append(f"'{note.text[hit[0] : hit[1]]}'")
    if note.search(cond.get("none", []), spans):
        return False, [], []
    if "size" in cond:
        size = note.size_cm(spans)
        lo, hi = cond["size"]
        if size is None or not lo <= size[0] <= hi:
            return False, [], []
        ev.append(size[1])
        why.append(f"size {size[0]:g} cm")
    if "count" in cond:
        n = note.count(spans)
        lo, hi = cond["count"]
        value = n[0] if n else 1
        if not lo <= value <= hi:
            return False, [], []
        if n:
            ev.append(n[1])
    return True, ev, why


def _rule_codes(note: NoteText, rule: dict[str, Any], hits: list[_Hit]) -> list[Found]:
    first = hits[0]
    phrase = [(h.start, h.end) for h in hits]
    where = note.sentence_at(first.start).section or "no section"
    base_why = [f"phrase '{note.text[first.start : first.end]}' ({where})"]
    found: list[Found] = []
    if "code" in rule:
        found.append(Found(str(rule["code"]), rule["id"], phrase, list(base_why)))
    elif "variants" in rule:
        best: tuple[int, Found] | None = None
        for h in hits:
            spans = _scope(note, rule, h)
            for i, var in enumerate(rule["variants"]):
                ok, ev, why = _fits(note, var, spans)
                if ok:
                    if best is None or i < best[0]:
                        words = f"variant {var['code']}: " + (", ".join(why) or "the default")
                        best = (
                            i,
                            Found(str(var["code"]), rule["id"], phrase + ev, [*base_why, words]),
                        )
                    break
        if best is not None:
            found.append(best[1])
        elif "default" in rule and "query" in rule:
            q = Query(axis="procedure detail", question=str(rule["query"]))
            found.append(
                Found(
                    str(rule["default"]),
                    rule["id"],
                    phrase,
                    [*base_why, f"query: {rule['query']}"],
                    query=q,
                )
            )
    elif "components" in rule:
        for comp in rule["components"]:
            matched = [(h, _fits(note, comp, _scope(note, rule, h))) for h in hits]
            matched = [(h, r) for h, r in matched if r[0]]
            if matched:
                ev = [s for _, r in matched for s in r[1]]
                f = Found(
                    str(comp["code"]),
                    rule["id"],
                    phrase + ev,
                    [*base_why, f"component {comp['code']}: " + ", ".join(matched[0][1][2])],
                )
                f.units = len(matched) if rule.get("count_addon") else None
                found.append(f)
        if not found and "base" in rule:
            found.append(
                Found(
                    str(rule["base"]),
                    rule["id"],
                    phrase,
                    [*base_why, f"no extra work documented: {rule['base']}"],
                )
            )
    for f in found:
        _modifiers(note, rule, first, f)
    return _add_ons(note, rule, hits, found)


def _modifiers(note: NoteText, rule: dict[str, Any], h: _Hit, f: Found) -> None:
    sent = note.sentence_at(h.start)
    spans = [(sent.start, sent.end), *_block(note, h)]
    if rule.get("lateral"):
        side = note.laterality(spans)
        if side is None:
            f.query = f.query or Query(
                axis="laterality", question="laterality not documented (right, left or bilateral)"
            )
            f.why.append("laterality not documented")
        else:
            f.modifiers.append(side[0])
            f.evidence.append(side[1])
            f.why.append(f"modifier {side[0]}: '{note.text[side[1][0] : side[1][1]]}'")
    if rule.get("coronary"):
        vessel = note.coronary(spans)
        if vessel is not None:
            f.modifiers.append(vessel[0])
            f.evidence.append(vessel[1])
            f.why.append(f"modifier {vessel[0]}: '{note.text[vessel[1][0] : vessel[1][1]]}'")


def _add_ons(
    note: NoteText, rule: dict[str, Any], hits: list[_Hit], found: list[Found]
) -> list[Found]:
    """Add-on codes for the further lesions (``count_addon``): units = count - 1."""
    addon = rule.get("count_addon") or {}
    out = list(found)
    for f in found:
        extra = addon.get(f.code)
        if extra is None:
            continue
        if f.units is not None:  # counted from the phrases (one per biopsy)
            n = f.units
        else:
            sent = note.sentence_at(hits[0].start)
            c = note.count([(sent.start, sent.end), *_block(note, hits[0])])
            n = c[0] if c else 1
        f.units = None
        if n > 1:
            out.append(
                Found(
                    str(extra),
                    rule["id"],
                    list(f.evidence),
                    [*f.why, f"{n} documented: {n - 1} more"],
                    units=n - 1,
                )
            )
    return out


# -- vaccines -------------------------------------------------------------------------------------
def vaccine_codes(note: NoteText, rules: dict[str, Any]) -> list[Found]:
    """Vaccine products given in the encounter, and their administration codes."""
    given = rules.get("vaccine_given", [])
    table = [v for v in rules.get("vaccines", []) if any(note.maybe(p) for p in flat(v["names"]))]
    if not table:
        return []
    products: dict[str, tuple[Found, str]] = {}
    for sent in note.sentences:
        if not sent.eligible:
            continue
        families: set[str] = set()
        for v in table:
            fam = str(v.get("family", v["code"]))
            hit = None if fam in families else note.search(v["names"], [(sent.start, sent.end)])
            if hit is None or not note.done_here(*hit)[0]:
                continue
            if not note.search(given, [(sent.start, sent.end)]):
                continue
            families.add(fam)
            code = str(v["code"])
            why = [f"vaccine product '{note.text[hit[0] : hit[1]]}' given"]
            q = Query(axis="vaccine product", question=str(v["query"])) if v.get("query") else None
            if code not in products:
                products[code] = (
                    Found(code, "vaccine", [hit], why, query=q),
                    str(v.get("route", "injection")),
                )
    out = [f for f, _ in products.values()]
    admin = rules.get("vaccine_admin", {})
    inj = [f for f, r in products.values() if r == "injection"]
    other = [f for f, r in products.values() if r != "injection"]
    ev = [s for f in out for s in f.evidence]
    if inj:
        out.append(
            Found(
                admin["injection"]["first"],
                "vaccine administration",
                list(ev),
                ["first vaccine injected"],
            )
        )
        if len(inj) > 1:
            out.append(
                Found(
                    admin["injection"]["more"],
                    "vaccine administration",
                    list(ev),
                    [f"{len(inj) - 1} more injected"],
                    units=len(inj) - 1,
                )
            )
    if other:
        first_code = admin["other"]["more"] if inj else admin["other"]["first"]
        n_more = len(other) if inj else len(other) - 1
        if not inj:
            out.append(
                Found(
                    first_code,
                    "vaccine administration",
                    list(ev),
                    ["first vaccine by mouth or nose"],
                )
            )
        if n_more:
            out.append(
                Found(
                    admin["other"]["more"],
                    "vaccine administration",
                    list(ev),
                    [f"{n_more} more by mouth or nose"],
                    units=n_more,
                )
            )
    return out


# -- modifiers across codes ----------------------------------------------------------------------
def apply_distinct(note: NoteText, found: list[Found], ctx: dict[str, Any]) -> None:
    """XS/59 on the column-2 code of a bundled pair when the note documents a distinct site or
    service (``procedure_context.yaml`` ``distinct``/``distinct_pairs``)."""
    codes = {f.code: f for f in found}
    spans = note.eligible_spans()
    for col1, col2 in ctx.get("distinct_pairs", []):
        if col1 in codes and col2 in codes:
            for mod, pats in ctx["distinct"].items():
                hit = note.search(pats, spans)
                if hit is not None:
                    f = codes[col2]
                    f.modifiers.append(str(mod))
                    f.evidence.append(hit)
                    f.why.append(
                        f"modifier {mod}: {col2} bundles into {col1} unless distinct; '{note.text[hit[0] : hit[1]]}'"
                    )
                    break


def _in_ranges(code: str, ranges: Sequence[str]) -> bool:
    for r in ranges:
        lo, _, hi = r.partition("-")
        if (hi and lo <= code <= hi) or code == lo:
            return True
    return False


def is_em_code(code: str) -> bool:
    """Whether a CPT code is an E/M visit code of the -25 table."""
    return _in_ranges(code, load_context()["modifier_25"]["em"])


def add_modifier_25(codes: list[CodeSuggestion]) -> list[CodeSuggestion]:
    """Append modifier 25 to each E/M code of ``codes`` when a procedure of the -25 table
    (``procedure_context.yaml`` ``modifier_25``) is coded the same day; returns ``codes``.

    To be called on a note's final code set, after every rule coder (the E/M level and the CPT
    coder) has run, e.g. at the end of ``ScoringPath.rule_codes``."""
    table = load_context()["modifier_25"]
    cpt = [s for s in codes if s.system == SYSTEM and s.status != "suppressed"]
    procs = [
        s
        for s in cpt
        if _in_ranges(s.code, table["procedures"]) and not _in_ranges(s.code, table["em"])
    ]
    if not procs:
        return codes
    for s in cpt:
        if _in_ranges(s.code, table["em"]) and "25" not in s.modifiers:
            s.modifiers.append("25")
            s.explanation.append(
                f"modifier 25: separately identifiable visit on the day of {', '.join(p.code for p in procs)}"
            )
    return codes
