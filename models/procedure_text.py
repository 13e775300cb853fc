"""The parts of a note the procedure rule coders read (CPT, HCPCS): sentences, their section,
whether a phrase there was done in this encounter, laterality, sizes and counts.

Clinical knowledge (section names, not-done cues, laterality words ...) is data in
``models/resources/procedure_context.yaml`` (:func:`load_context`); section headers are the NLP's
(``nlp/resources/sections.json``). Works on the raw text, so the rule coders run with or
without the NLP pipeline; when NLP mentions are given, a mention over a phrase that the NLP
marked negated, hypothetical, historical or family also rules it out. Importing does no I/O.
"""

from __future__ import annotations

import bisect
import re
import re._constants as _c
import re._parser as _parser
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from clinicode.models.resources import load_resource
from clinicode.models.text_scan import bounded_width, finditer_near
from clinicode.schema import Mention

Span = tuple[int, int]
_NOT_PRESENT = {"negated", "hypothetical", "historical", "family"}
# a sentence ends at . ! ? ; before a capital, at a blank line, and at a line break unless the
# next line goes on in lower case or with a dose or size (hard-wrapped prose)
_SENT_END = re.compile(
    r"(?<=[.!?;])[ \t]+(?=[A-Z0-9(\-])|\n\s*\n\s*|\n[ \t]*(?![a-z]|\d+(?:\.\d+)?\s*(?:mg|mcg|g|mL|cc|cm|mm|units?|%)\b)"
    r"|(?<=[.!?;:])[ \t]*\n\s*"
)
_CM = re.compile(r"(\d+(?:\.\d+)?)\s*-?\s*(?:cm|centimeters?)\b", re.I)
_DOSE_NUMBERS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen"
        " fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}


def load_context() -> dict[str, Any]:
    """``procedure_context.yaml`` (read once; callers must not mutate it)."""
    return load_yaml("procedure_context.yaml")


@lru_cache(maxsize=1)
def _count_rx() -> re.Pattern[str]:
    """A count (digits or a number word) of what ``procedure_context.yaml`` lists as counted."""
    counted = "|".join(str(w) for w in load_context()["counted"])
    return re.compile(
        r"\b(\d{1,2}|" + "|".join(_DOSE_NUMBERS) + r")\s+(?:[\w/-]+\s+){0,3}?"
        rf"(?:{counted})\b",
        re.I,
    )


def load_yaml(name: str) -> dict[str, Any]:
    """One data file of ``models/resources`` (``models.resources.load_resource``)."""
    return load_resource(name)


# a note at least this long has its patterns searched near their required parts only
_LONG_NOTE = 10_000
GRAM = 3  # the length of the pieces :meth:`NoteText.has` indexes a note by


@lru_cache(maxsize=8192)
def rx(pattern: str) -> re.Pattern[str]:
    """A data pattern, case-insensitive, compiled once."""
    return re.compile(pattern, re.I)


@lru_cache(maxsize=8192)
def triggers(pattern: str) -> tuple[str, ...] | None:
    """Lower-case strings one of which any match of ``pattern`` contains (its first required
    literal run, or one per alternative), or None when the pattern has none: a cheap ``in``
    test on the lowered note skips most patterns before the regular expression runs."""
    try:
        return _required(list(_parser.parse(pattern, re.I)))
    except (re.error, TypeError, ValueError):
        return None


def _required(items: list[Any]) -> tuple[str, ...] | None:
    """The best set of alternatives one of which every match contains: the candidate (a
    literal run, or the alternatives of a required group) whose shortest string is longest."""
    best: tuple[str, ...] | None = None
    run: list[str] = []

    def consider(cand: tuple[str, ...] | None) -> None:
        nonlocal best
        if cand and min(map(len, cand)) > (min(map(len, best)) if best else 1):
            best = cand

    for op, arg in items:
        if op is _c.LITERAL:
            run.append(chr(arg).lower())
            continue
        consider(("".join(run),) if run else None)
        run = []
        if op is _c.SUBPATTERN:
            consider(_required(list(arg[-1])))
        elif op is _c.BRANCH:
            alts = [_required(list(b)) for b in arg[1]]
            if all(a is not None for a in alts):
                consider(tuple(t for a in alts if a for t in a))
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and arg[0] >= 1:
            consider(_required(list(arg[2])))
    consider(("".join(run),) if run else None)
    return best


def maybe(pattern: str, low: str) -> bool:
    """False only when ``pattern`` surely does not match the text lowered as ``low``."""
    t = triggers(pattern)
    return t is None or any(x in low for x in t)


def flat(patterns: Iterable[Any]) -> list[str]:
    """Patterns with nested lists (YAML anchors inside a list) flattened."""
    out: list[str] = []
    for p in patterns:
        out.extend(flat(p) if isinstance(p, list) else [p])
    return out


def search(
    patterns: Iterable[Any], text: str, spans: Sequence[Span], low: str | None = None
) -> Span | None:
    """The first match (in ``spans`` order) of any pattern inside the spans of ``text``
    (``low``: the text lowered, to skip patterns that cannot match)."""
    best: Span | None = None
    pats = flat(patterns)
    if low is not None:
        pats = [p for p in pats if maybe(p, low)]
    for s, e in spans:
        for p in pats:
            m = rx(p).search(text, s, e)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), m.end())
        if best is not None:
            return _whole_words(text, best)
    return None


def _whole_words(text: str, span: Span) -> Span:
    """A match grown to the words it starts and ends in ("Laparoscop" -> "Laparoscopic")."""
    s, e = span
    while e < len(text) and e > s and text[e - 1].isalpha() and text[e].isalpha():
        e += 1
    while s > 0 and s < e and text[s].isalpha() and text[s - 1].isalpha():
        s -= 1
    return s, e


@lru_cache(maxsize=1)
def _headers() -> tuple[re.Pattern[str], dict[str, str]]:
    """One pattern for every section header literal (longest first) and literal -> section."""
    from clinicode.nlp.resources import load_resource

    cats: dict[str, str] = {}
    for cat, lits in load_resource("sections.json")["sections"].items():
        for lit in lits:
            cats.setdefault(lit.lower(), cat)
    alts = "|".join(re.escape(lit) for lit in sorted(cats, key=len, reverse=True))
    pat = re.compile(
        r"[ \t]*(?:(?:\d{1,2}|[A-Za-z]|[IVX]{1,4})[.)][ \t]*)?(" + alts + r")[ \t]*(?::|-|$)",
        re.I | re.M,
    )
    return pat, cats


_INLINE_HEADER = re.compile(r"(?<![A-Za-z])([A-Z][A-Z/&]*(?: [A-Z/&]+)*):[ \t]")


def line_sections(
    text: str, inline: Collection[str] = ()
) -> list[tuple[int, str | None, str | None]]:
    """``(offset, section, section after its first sentence)`` where sections change: a header
    at the start of a line (any case), or one in capitals inside a line ("... HPI: ..."), as
    transcriptions run them together. A header of an ``inline`` section ("Dx: ...",
    "Indication: ...") with text after it on its line covers its first sentence only."""
    pat, cats = _headers()
    out: list[tuple[int, str | None, str | None]] = []
    current: str | None = None
    pos = 0
    for line in text.splitlines(keepends=True):
        m = pat.match(line)
        cat = cats.get(m.group(1).lower()) if m is not None else None
        if m is not None and cat in inline and line[m.end() :].strip():
            out.append((pos, cat, current))
        else:
            current = cat if cat is not None else current
            out.append((pos, current, current))
        for h in _INLINE_HEADER.finditer(line, m.end() if m is not None else 0):
            mid = cats.get(h.group(1).lower())
            if mid is not None and h.start() > 0:
                current = mid
                out.append((pos + h.start(), mid, mid))
        pos += len(line)
    return out


@dataclass
class Sentence:
    start: int
    end: int
    section: str | None
    eligible: bool  # not in a history/indication/medication section


class NoteText:
    """A note split into sentences with their sections, and the tests the rules ask of it."""

    def __init__(self, text: str, mentions: Sequence[Mention] = ()) -> None:
        self.text = text
        self.low = text.lower()
        self.ctx = load_context()
        skip = set(self.ctx["skip_sections"])
        lines = line_sections(text, set(self.ctx["inline_sections"]))
        self.sentences: list[Sentence] = []
        li = 0
        for s, e in _sentence_spans(text):
            while li + 1 < len(lines) and lines[li + 1][0] <= s:
                li += 1
            first = not lines or s <= lines[li][0] + _lead(text, lines[li][0])
            sec = (lines[li][1] if first else lines[li][2]) if lines else None
            self.sentences.append(Sentence(s, e, sec, sec not in skip))
        self._starts = [s.start for s in self.sentences]
        self._not_present = [(m.start, m.end) for m in mentions if m.assertion in _NOT_PRESENT]
        self._maybe: dict[str, bool] = {}
        self._grams: set[str] | None = None
        self._cuts: dict[Span, tuple[list[int], list[int]]] = {}

    def maybe(self, pattern: str) -> bool:
        """:func:`maybe` of ``pattern`` in this note, worked out once per pattern (each test
        reads the whole note: asked per sentence, it made a long note cost its length squared)."""
        known = self._maybe.get(pattern)
        if known is None:
            t = triggers(pattern)
            known = self._maybe[pattern] = t is None or any(self.has(x) for x in t)
        return known

    def has(self, part: str) -> bool:
        """``part in self.low``, most often answered by the note's set of 3-character pieces
        (lower case; a part whose first or last 3 characters the note lacks is not in it) instead of a
        scan of the whole note: the rule tables ask about some 1,200 parts per note."""
        if len(part) < GRAM:
            return part in self.low
        grams = self.grams()
        return part[:GRAM] in grams and part[-GRAM:] in grams and part in self.low

    def grams(self) -> set[str]:
        """The note's 3-character pieces (lower case), made on first use."""
        if self._grams is None:
            low = self.low
            self._grams = {low[i : i + GRAM] for i in range(len(low) - GRAM + 1)}
        return self._grams

    def finditer(self, pattern: str) -> Iterator[re.Match[str]]:
        """``rx(pattern).finditer(self.text)``; in a long note, searched only near the parts
        every match holds (``text_scan.finditer_near``: the same matches)."""
        compiled = rx(pattern)
        if len(self.text) >= _LONG_NOTE:
            width, parts = bounded_width(pattern), triggers(pattern)
            if width is not None and parts:
                near = finditer_near(compiled, self.text, self.low, parts, width)
                if near is not None:
                    return near
        return compiled.finditer(self.text)

    def search(self, patterns: Iterable[Any], spans: Sequence[Span]) -> Span | None:
        """:func:`search` in this note."""
        return search([p for p in flat(patterns) if self.maybe(p)], self.text, spans)

    # -- where ----------------------------------------------------------------------------------
    def sentence_at(self, pos: int) -> Sentence:
        i = bisect.bisect_right(self._starts, pos) - 1
        if i >= 0 and pos < self.sentences[i].end:
            return self.sentences[i]
        return Sentence(pos, pos, None, False)

    def eligible_spans(self, start: int = 0, end: int | None = None) -> list[Span]:
        """Eligible sentence spans clipped to ``[start, end)``."""
        end = len(self.text) if end is None else end
        return [
            (max(s.start, start), min(s.end, end))
            for s in self.sentences
            if s.eligible and s.end > start and s.start < end
        ]

    def clause(self, sent: Sentence, pos: int) -> Span:
        """The clause of ``sent`` holding ``pos`` (split at ; , - but then): from the end of
        the last split ending at or before ``pos`` to the start of the first split starting at
        or after it. The splits of a sentence are found once (a bisect per call after that)."""
        cuts = self._cuts.get((sent.start, sent.end))
        if cuts is None:
            found = rx(self.ctx["clause_split"]).finditer(self.text, sent.start, sent.end)
            spans = [m.span() for m in found]
            cuts = self._cuts[(sent.start, sent.end)] = (
                [s for s, _ in spans],
                [e for _, e in spans],
            )
        starts, ends = cuts
        i = bisect.bisect_right(ends, pos)
        j = bisect.bisect_left(starts, pos)
        return (ends[i - 1] if i else sent.start), (starts[j] if j < len(starts) else sent.end)

    # -- was it done here ------------------------------------------------------------------------
    def done_here(self, start: int, end: int) -> tuple[bool, str]:
        """Whether a phrase at ``[start, end)`` was done in this encounter, and why not."""
        sent = self.sentence_at(start)
        if not sent.eligible:
            return False, f"in section {sent.section}"
        if any(s < end and start < e for s, e in self._not_present):
            return False, "the NLP marks it not present"
        cs, ce = self.clause(sent, start)
        cue = self.search(self.ctx["not_done"], [(cs, ce)])
        if cue is not None:
            return False, f"'{self.text[cue[0] : cue[1]]}'"
        if sent.section in self.ctx["plan_sections"] and not self.search(
            self.ctx["done"], [(sent.start, sent.end)]
        ):
            return False, f"in section {sent.section} without a word saying it was done"
        return True, ""

    def done_cue(self, span: Span) -> bool:
        return self.search(self.ctx["done"], [span]) is not None

    # -- attributes ------------------------------------------------------------------------------
    def laterality(self, spans: Sequence[Span]) -> tuple[str, Span] | None:
        """``("50" | "RT" | "LT", evidence span)`` from the first span that names a side."""
        lat = self.ctx["laterality"]
        for span in spans:
            both = self.search(lat["bilateral"], [span])
            if both is not None:
                return "50", both
            right = self.search(lat["right"], [span])
            left = self.search(lat["left"], [span])
            if right and left:
                return "50", (min(right[0], left[0]), max(right[1], left[1]))
            if right:
                return "RT", right
            if left:
                return "LT", left
        return None

    def coronary(self, spans: Sequence[Span]) -> tuple[str, Span] | None:
        for span in spans:
            for mod, pats in self.ctx["coronary"].items():
                hit = self.search(pats, [span])
                if hit is not None:
                    return str(mod), hit
        return None

    def size_cm(self, spans: Sequence[Span]) -> tuple[float, Span] | None:
        for s, e in spans:
            m = _CM.search(self.text, s, e)
            if m:
                return float(m.group(1)), (m.start(), m.end())
        return None

    def count(self, spans: Sequence[Span]) -> tuple[int, Span] | None:
        """The largest count of lesions/sites written in the first span that has one."""
        for s, e in spans:
            best: tuple[int, Span] | None = None
            for m in _count_rx().finditer(self.text, s, e):
                raw = m.group(1).lower()
                n = int(raw) if raw.isdigit() else _DOSE_NUMBERS[raw]
                if best is None or n > best[0]:
                    best = (n, (m.start(), m.end()))
            if best is not None:
                return best
        return None


def _lead(text: str, pos: int) -> int:
    """Width of the blank characters at ``pos``."""
    n = 0
    while pos + n < len(text) and text[pos + n] in " \t":
        n += 1
    return n


def _sentence_spans(text: str) -> list[Span]:
    out: list[Span] = []
    start = 0
    for m in _SENT_END.finditer(text):
        if m.start() > start:
            out.append((start, m.start()))
        start = m.end()
    if start < len(text):
        out.append((start, len(text)))
    return [(s, e) for s, e in out if text[s:e].strip()]
