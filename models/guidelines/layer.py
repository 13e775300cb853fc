"""The :class:`Guidelines` layer: KB lookups, the rule run, the edits rules make, the result."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from typing import Any, TypeVar

from clinicode.kb import KnowledgeBase
from clinicode.kb.records import CodeRecord
from clinicode.models.resources import compile_every
from clinicode.models.types import GuidelineResult
from clinicode.schema import CodeSuggestion, Evidence, Mention

from .data import CODE_FULL, ICD, compile_cue, load_rules, note_refs
from .rules import ordered_rules
from .state import Item, NoteState, explain

T = TypeVar("T")


def _code_index(kb: KnowledgeBase) -> tuple[list[str], dict[str, str], set[str]]:
    """Sorted ICD-10-CM codes, their titles and the leaves (billable codes), kept on the KB."""
    return kb.derived("guidelines_code_index", _build_code_index)


def _build_code_index(kb: KnowledgeBase) -> tuple[list[str], dict[str, str], set[str]]:
    titles = {c: t for c, t in kb.titles(ICD).items() if CODE_FULL.match(c)}
    codes = sorted(titles)
    leaves = {
        c for i, c in enumerate(codes) if not (i + 1 < len(codes) and codes[i + 1].startswith(c))
    }
    return codes, titles, leaves


class Guidelines:
    """The guidelines layer over one code-set knowledge base.

    ``Guidelines(kb).apply(ranked, mentions, text=..., setting=..., threshold=...)`` returns a
    :class:`GuidelineResult`. KB lookups are cached per instance, so the layer adds little time.
    """

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.rules = load_rules()
        self.pipeline = ordered_rules()
        self._rec_cache: dict[str, CodeRecord | None] = {}  # filled in bulk by ``prefetch``
        self._memo: dict[str, dict[str, Any]] = {}

    def warm_up(self) -> None:
        """Build the in-memory code index and the Table of Drugs, and compile every cue of the
        guideline data, now rather than on the notes that first need them."""
        from .drug_table import drug_codes  # the rule module imports this one

        _code_index(self.kb)
        drug_codes(self)
        compile_every(self.rules, compile_cue)

    # -- KB helpers (cached) -----------------------------------------------------------------
    def rec(self, code: str) -> CodeRecord | None:
        if code not in self._rec_cache:
            self._rec_cache[code] = self.kb.get(code, ICD)
        return self._rec_cache[code]

    def prefetch(self, codes: list[str]) -> None:
        """Read the records of ``codes`` not cached yet in one KB query (``rec`` reads them one
        by one otherwise: most of a note's codes are new to the cache)."""
        cache = self._rec_cache
        missing = [c for c in codes if c not in cache]
        if missing:
            found = self.kb.get_many(missing, ICD)
            for c in missing:
                cache[c] = found.get(c)

    def memo(self, kind: str, code: str, build: Callable[[str], T]) -> T:
        """``build(code)``, worked out once per code on this layer: for what a rule derives
        from the code set alone (``kind`` names it), never from a note."""
        table = self._memo.setdefault(kind, {})
        if code not in table:
            table[code] = build(code)
        value: T = table[code]
        return value

    def notes(self, code: str) -> dict[str, list[tuple[str, str]]]:
        return self.memo("notes", code, lambda c: self.kb.effective_notes(c, ICD))

    def note_refs(self, code: str, kind: str) -> list[str]:
        """The code patterns the ``kind`` notes of ``code`` name ("use_additional" of I69.391:
        ``["R13.1"]``)."""
        return [r for _src, text in self.notes(code).get(kind, []) for r in note_refs(text)]

    def billable_descendants(self, code: str) -> list[CodeRecord]:
        """Billable codes below ``code`` (from a sorted in-memory index of the code set)."""
        return self.memo("billable_descendants", code, self._find_billable_descendants)

    def _find_billable_descendants(self, code: str) -> list[CodeRecord]:
        codes, titles, leaves = _code_index(self.kb)
        out: list[CodeRecord] = []
        i = bisect.bisect_right(codes, code)
        while i < len(codes) and codes[i].startswith(code):
            c = codes[i]
            if c in leaves:
                out.append(CodeRecord(system=ICD, code=c, title=titles[c], billable=True))
            i += 1
        return out

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
        mentions, ranked = _current_habits(self.rules["assertion"], text, mentions, ranked)
        note = NoteState(text=text, mentions=mentions, setting=setting, threshold=threshold)
        self.prefetch([s.code for s in ranked if s.system == ICD])
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
            if (
                s.system == ICD
                and fate == "keep"
                and (self.rec(s.code) is None or _unstated(s, note))
            ):
                fate = "candidate"
            note.items[key] = Item(s=s, fate=fate, order=i)
            note.input_pos[key] = i
        for rule in self.pipeline:
            rule(self, note)
        return _result(self, note, benchmark)

    # -- edits the rules make ------------------------------------------------------------------------
    def add(
        self,
        note: NoteState,
        code: str,
        *,
        section: str,
        message: str,
        evidence: list[Evidence],
        score: float,
        system: str = ICD,
        status: str = "suggested",
    ) -> Item | None:
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
            item = Item(s=s, fate="keep", added=True, order=10_000 + note.n_added)
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
        explain(item, section, message)
        return item

    def drop(self, item: Item, section: str, message: str, *, fate: str = "dropped") -> None:
        item.fate = fate
        item.s.status = "suppressed" if fate == "suppressed" else "candidate"
        item.s.reason = message
        item.s.principal = False
        explain(item, section, message)

    def replace(
        self, note: NoteState, old: list[Item], new_code: str, section: str, message: str
    ) -> Item | None:
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


def _unstated(s: CodeSuggestion, note: NoteState) -> bool:
    """A code no span of the note states: no evidence and no mention whose terms matched it (a
    retrained pack's note-classifier prior from similar notes). It is listed, never coded on
    its score alone (I.A.19, Section III)."""
    if s.evidence:
        return False
    key = f"{s.system}:{s.code}"
    return not any(key in m.concepts for m in note.mentions)


# -- output -------------------------------------------------------------------------------------------------
def _result(g: Guidelines, note: NoteState, benchmark: bool) -> GuidelineResult:
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


def _only_in_header(before: str, cue: str) -> bool:
    """Whether ``cue`` is written before the mention only as a header ("HISTORY: Back pain",
    not "HPI: 65M with history of MI")."""
    found = list(re.finditer(rf"\b{re.escape(cue)}\b(\s*:)?", before, re.IGNORECASE))
    return bool(found) and all(f.group(1) for f in found)


def _current_habits(
    cfg: dict[str, Any], text: str, mentions: list[Mention], ranked: list[CodeSuggestion]
) -> tuple[list[Mention], list[CodeSuggestion]]:
    """Mentions historical only by their section header's own word ("Social history: Smokes
    1 ppd": the cue is the header's "history") are present, and so is the evidence on them: a
    habit the social history states is the patient's now, unless a cue of its own ("quit",
    "former", "remote") says it is over (``header_history_cues``)."""
    cues = cfg["header_history_cues"]
    spans = [
        (m.start, m.end)
        for m in mentions
        if m.assertion == "historical"
        and (cue := (m.assertion_cue or "").strip().lower()) in cues.get(m.section or "", ())
        and _only_in_header(text[m.sentence_start : m.start], cue)
    ]
    if not spans:
        return mentions, ranked

    def on(start: int, end: int) -> bool:
        return any(lo <= start and end <= hi for lo, hi in spans)

    mentions = [
        m.model_copy(update={"assertion": "present"}) if on(m.start, m.end) else m for m in mentions
    ]
    ranked = [
        s.model_copy(
            update={
                "evidence": [
                    e.model_copy(update={"assertion": "present"}) if on(e.start, e.end) else e
                    for e in s.evidence
                ]
            }
        )
        if any(on(e.start, e.end) for e in s.evidence)
        else s
        for s in ranked
    ]
    return mentions, ranked
