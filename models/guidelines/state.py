"""The per-note working state of the guidelines layer and the helpers the rules read it with.

A :class:`NoteState` holds one :class:`Item` per (system, code) the ranker or a rule brought,
with its fate (``keep`` | ``candidate`` | ``suppressed`` | ``dropped``). Negation and sentence or
clause bounds come from :mod:`clinicode.nlp.cues`, not from a second detector here.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from clinicode.nlp.cues import clause_bounds, negated_before, sentence_bounds
from clinicode.nlp.demographics import Demographics, patient_demographics
from clinicode.schema import CodeSuggestion, Evidence, Mention

from .data import ICD, code_matches, compile_cue


@dataclass
class Item:
    """One code in the working set and what the rules decided about it."""

    s: CodeSuggestion
    fate: str  # keep | candidate | suppressed | dropped
    added: bool = False
    order: int = 0


@dataclass
class NoteState:
    """Everything the rules read about one note."""

    text: str
    mentions: list[Mention]
    setting: str
    threshold: float
    items: dict[tuple[str, str], Item] = field(default_factory=dict)
    n_added: int = 0
    input_pos: dict[tuple[str, str], int] = field(default_factory=dict)  # the ranker's order
    # (starts, longest mention) when ``mentions`` are in order of start; built on first use
    _spans: tuple[list[int], int] | None = field(default=None, init=False, repr=False)
    _who: Demographics | None = field(default=None, init=False, repr=False)
    # what rules read of the note once and share (``documented.Stated``: each mention's words)
    shared: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def demographics(self) -> Demographics:
        """Who the patient is, as the note states it (read once per note: several rules ask)."""
        if self._who is None:
            self._who = patient_demographics(self.text)
        return self._who

    def overlapping(self, start: int, end: int) -> Iterator[Mention]:
        """The mentions overlapping ``[start, end)``, in list order: through the mentions'
        starts, not a walk over all of them (a note of 3,000 mentions asked once per
        evidence span made the layer cost their number squared)."""
        ms = self.mentions
        if self._spans is None:
            starts = [m.start for m in ms]
            ordered = all(a <= b for a, b in itertools.pairwise(starts))
            longest = max((m.end - m.start for m in ms), default=0)
            self._spans = (starts, longest) if ordered else ([], -1)
        starts, longest = self._spans
        if longest < 0:  # not in order of start: every mention is looked at
            return (m for m in ms if m.start < end and start < m.end)
        # a mention ending after ``start`` starts after ``start - longest``
        lo = bisect.bisect_right(starts, start - longest)
        hi = bisect.bisect_left(starts, end)
        return (ms[i] for i in range(lo, hi) if start < ms[i].end)

    def kept(self, system: str | None = ICD) -> list[Item]:
        return [
            it
            for it in self.items.values()
            if it.fate == "keep" and (system is None or it.s.system == system)
        ]

    def kept_matching(self, pattern: str) -> list[Item]:
        return [it for it in self.kept() if code_matches(pattern, it.s.code)]


def explain(item: Item, section: str, message: str) -> None:
    """Append ``"section: message"`` to the code's explanation (once)."""
    line = f"{section}: {message}"
    if line not in item.s.explanation:
        item.s.explanation.append(line)


def spans(item: Item) -> frozenset[tuple[int, int]]:
    return frozenset((e.start, e.end) for e in item.s.evidence)


def assertions_of(s: CodeSuggestion, mentions: list[Mention]) -> set[str]:
    """Assertion values of a code's evidence (its matching mentions when it has no evidence).

    Where the evidence disagrees, the words that name the code decide: "chest pain, rule out
    angina" leaves angina (I20.9) uncertain although "chest pain" (present) is also evidence
    for it, since only "angina" names it."""
    found: set[str] = {e.assertion for e in s.evidence}
    if not found:
        key = f"{s.system}:{s.code}"
        found = {m.assertion for m in mentions if key in m.concepts or s.code in m.concepts}
    elif len(found) > 1:
        named: set[str] = {
            e.assertion
            for e in s.evidence
            if any(m.start <= e.start and e.end <= m.end and _names(m, s) for m in mentions)
        }
        if named:
            return named
    return found or {"present"}


def _names(m: Mention, s: CodeSuggestion) -> bool:
    """Whether one of the mention's concepts is the code or a category above it."""
    for concept in m.concepts:
        system, _, code = concept.rpartition(":")
        if (not system or system == s.system) and len(code) >= 3 and s.code.startswith(code):
            return True
    return False


def mention_at(note: NoteState, start: int, end: int) -> Mention | None:
    return next(note.overlapping(start, end), None)


def sentence_span(note: NoteState, start: int, end: int) -> tuple[int, int]:
    """The sentence of the mention over ``[start, end)``, else nlp's sentence bounds."""
    m = mention_at(note, start, end)
    if m is not None and m.sentence_end > m.sentence_start:
        return m.sentence_start, m.sentence_end
    return sentence_bounds(note.text, start, end)


def window_text(note: NoteState, item: Item, scope: str = "sentence") -> str:
    if scope == "note" or not item.s.evidence:
        return note.text
    spans = {sentence_span(note, e.start, e.end): None for e in item.s.evidence}
    return " | ".join(note.text[lo:hi] for lo, hi in spans)  # each sentence once


def clause_texts(note: NoteState, item: Item) -> list[str]:
    """The clause around each evidence span plus the NLP's assertion cue for it: where a
    'resolved' or 'unrelated' cue must sit to concern this condition rather than its neighbours
    in a list."""
    out = []
    for e in item.s.evidence:
        lo, hi = clause_bounds(note.text, e.start, e.end)
        out.append(note.text[lo:hi])
        m = mention_at(note, e.start, e.end)
        if m is not None and m.assertion_cue:
            out.append(m.assertion_cue)
    return out


def after_texts(note: NoteState, item: Item) -> list[str]:
    """From each evidence span to the end of its sentence ("Dehydration, resolved with ...")."""
    return [note.text[e.start : sentence_span(note, e.start, e.end)[1]] for e in item.s.evidence]


def find_cue(
    note: NoteState,
    pattern: str,
    *,
    skip_negated: bool = True,
    scope: tuple[int, int] | None = None,
) -> Evidence | None:
    """First match of ``pattern`` in the note (or in ``scope``) as evidence, skipping the
    matches nlp calls negated unless ``skip_negated`` is false."""
    rx = compile_cue(pattern)
    lo, hi = scope or (0, len(note.text))
    for m in rx.finditer(note.text, lo, hi):
        if skip_negated and negated_before(note.text, m.start()):
            continue
        return Evidence(start=m.start(), end=m.end(), text=m.group(0))
    return None


def sentence_cue(note: NoteState, row: dict[str, Any]) -> Evidence | None:
    """The first match of ``row["cue"]`` (not negated) whose sentence has the row's ``needs``
    words, if it gives any, and none of its ``not_if`` words."""
    needs = compile_cue(row["needs"]) if row.get("needs") else None
    not_if = compile_cue(row["not_if"]) if row.get("not_if") else None
    lo = 0
    while True:
        ev = find_cue(note, row["cue"], scope=(lo, len(note.text)))
        if ev is None:
            return None
        s0, s1 = sentence_span(note, ev.start, ev.end)
        sentence = note.text[s0:s1]
        if (needs is None or needs.search(sentence)) and not (
            not_if is not None and not_if.search(sentence)
        ):
            return ev
        lo = ev.end


def attributes_of(note: NoteState, item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e in item.s.evidence:
        for m in note.overlapping(e.start, e.end):
            for a in m.attributes:
                out.setdefault(a.name, a)
    return out


def evidence_from_mention(m: Mention) -> Evidence:
    return Evidence(start=m.start, end=m.end, text=m.text, section=m.section, assertion=m.assertion)
