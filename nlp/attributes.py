"""Attributes of mentions with their evidence offsets.

Found by regular expressions over the note, then attached to the mentions of the same sentence
by distance rules per attribute (patterns, windows and value tables are data:
``nlp/resources/attributes.json``):

* ``laterality`` (left / right / bilateral): inside the span or within 30 characters around it;
* ``acuity`` (acute / chronic / acute on chronic / subacute) and ``severity`` (mild / moderate /
  severe ...): inside the span or within 25 characters before it;
* ``stage`` (CKD stage 3b, stage IV, GOLD 2) and ``nyha_class``: inside or within 40 after/25 before;
* ``spine_region`` (a range of vertebral levels, "C3-C4", "L5-S1": cervical spine, lumbosacral
  spine ...): within 40 characters before or 60 after;
* ``episode`` (initial / subsequent / sequela), ``pregnancy_weeks``, ``bmi``: anywhere in the sentence.

Every attribute found goes to ``doc.spans["attributes"]`` (label = name, ``span._.attr_value``);
each mention gets ``span._.attributes``: a tuple of ``(name, value, start_char, end_char)``.
"""

import bisect
import heapq
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span

from clinicode.nlp.resources import load_resource
from clinicode.nlp.sentences import SentenceIndex
from clinicode.nlp.tokenizer import add_limit, doc_text

SPAN_GROUP = "attributes"
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5"}


@dataclass(frozen=True)
class Found:
    name: str
    value: str
    start: int
    end: int


def _roman(v: str) -> str:
    low = v.lower()
    m = re.fullmatch(r"([ivx]+)([ab]?)", low)
    if m and m.group(1) in _ROMAN:
        return _ROMAN[m.group(1)] + m.group(2)
    return low


@lru_cache(maxsize=1)
def _data() -> tuple[list[tuple[str, re.Pattern[str]]], dict[str, tuple[int, int]], dict[str, Any]]:
    """The attribute patterns in search order, each name's window (characters before and after
    the mention; -1: the whole sentence) and the value tables (``nlp/resources/attributes.json``)."""
    data = load_resource("attributes.json")
    patterns = [(str(p["name"]), re.compile(p["regex"], re.I)) for p in data["patterns"]]
    windows = {str(p["name"]): (int(p["window"][0]), int(p["window"][1])) for p in data["patterns"]}
    return patterns, windows, data


def _normalize(name: str, raw: str) -> str:
    data = _data()[2]
    v = re.sub(r"[\s-]+", " ", raw.strip().lower()).rstrip(".")
    if name == "severity":
        v = v.removesuffix("ly")
    if name in ("stage", "nyha_class"):
        return _roman(v)
    if name == "spine_region":  # "l5 s1" -> "ls" (lumbosacral), "c3 c4" -> "c" (cervical)
        v = "".join(dict.fromkeys(re.findall(r"([a-z])\d", v)))
    if name == "episode":
        for value, prefixes in data["episode"].items():
            if v.startswith(tuple(prefixes)):
                return str(value)
        return "sequela"
    return str(data["aliases"].get(name, {}).get(v, v))


def find_attributes(text: str) -> list[Found]:
    """Every attribute mention in ``text`` with its value group's offsets."""
    out: list[Found] = []
    patterns, _, data = _data()
    for name, pat in patterns:
        for m in pat.finditer(text):
            gi = next((i for i in range(1, (m.lastindex or 0) + 1) if m.group(i)), 0)
            if name in ("stage", "nyha_class", "pregnancy_weeks", "bmi"):
                start, end = m.span()
                value = _normalize(name, m.group(gi)) if gi else ""
                if name == "pregnancy_weeks":
                    end = m.end(gi) if gi else end
                    value = str(int(m.group(gi)))
                    start = m.start(gi)
                    # keep the "weeks" word in the evidence
                    tail = re.match(data["weeks_tail"], text[end:], re.I)
                    if tail:
                        end += tail.end()
            else:
                start, end = m.span(gi)
                value = _normalize(name, m.group(gi))
            if value:
                out.append(Found(name, value, start, end))
    return out


class _Ranges:
    """The mentions' character ranges, sorted for the two questions the tagger asks of each
    attribute (does a mention overlap it; is another mention closer to it than ``dist``) in
    logarithmic time rather than one pass over every mention."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.by_start = sorted(ranges)
        self.starts = [a for a, _ in self.by_start]
        self.by_end = sorted(ranges, key=lambda r: (r[1], r[0]))
        self.ends = [b for _, b in self.by_end]
        self.max_end: list[int] = []  # max end of by_start[: i + 1]
        top = -1
        for _, b in self.by_start:
            top = max(top, b)
            self.max_end.append(top)

    def overlaps(self, f: Found) -> bool:
        """Some mention overlaps ``f`` (``a < f.end and f.start < b``)."""
        k = bisect.bisect_left(self.starts, f.end)  # ranges [0, k) start before f.end
        return k > 0 and self.max_end[k - 1] > f.start

    def closer_other(self, f: Found, own: tuple[int, int], dist: int) -> bool:
        """A mention other than ``own`` lies nearer than ``dist`` to ``f`` (which overlaps none):
        one ending in (f.start - dist, f.start] or starting in [f.end, f.end + dist)."""
        lo = bisect.bisect_right(self.ends, f.start - dist)
        hi = bisect.bisect_right(self.ends, f.start)
        if any(r != own for r in self.by_end[lo:hi]):
            return True
        lo = bisect.bisect_left(self.starts, f.end)
        hi = bisect.bisect_left(self.starts, f.end + dist)
        return any(r != own for r in self.by_start[lo:hi])


def register_extensions() -> None:
    if not Span.has_extension("attributes"):
        Span.set_extension("attributes", default=())
    if not Span.has_extension("attr_value"):
        Span.set_extension("attr_value", default="")


@Language.factory(
    "clinicode_attributes", default_config={"span_group": "mentions", "max_per_mention": 64}
)
def make_attributes(
    nlp: Language, name: str, span_group: str, max_per_mention: int
) -> "AttributeTagger":
    return AttributeTagger(name=name, span_group=span_group, max_per_mention=max_per_mention)


class AttributeTagger:
    """Finds attributes and attaches them to the mentions in ``doc.spans[span_group]``."""

    def __init__(
        self,
        name: str = "clinicode_attributes",
        span_group: str = "mentions",
        max_per_mention: int = 64,
    ) -> None:
        register_extensions()
        self.name = name
        self.span_group = span_group
        self.max_per_mention = max(1, max_per_mention)

    def __call__(self, doc: Doc) -> Doc:
        found = find_attributes(doc_text(doc))
        windows = _data()[1]
        attr_spans = []
        for f in found:
            span = doc.char_span(f.start, f.end, label=f.name, alignment_mode="expand")
            if span is not None:
                span._.attr_value = f.value
                attr_spans.append(span)
        doc.spans[SPAN_GROUP] = attr_spans
        if self.span_group not in doc.spans:
            return doc
        sents = SentenceIndex(doc)
        ranges = _Ranges([(m.start_char, m.end_char) for m in doc.spans[self.span_group]])
        in_other = [ranges.overlaps(f) for f in found]
        order = sorted(range(len(found)), key=lambda i: found[i].start)
        starts = [found[i].start for i in order]
        for mention in doc.spans[self.span_group]:
            s_lo, s_hi = sents.bounds(mention.start)
            m_lo, m_hi = mention.start_char, mention.end_char
            best: dict[str, tuple[int, Found]] = {}
            near = self._near(order, starts, found, s_lo, s_hi, m_lo, m_hi)
            if near is None:
                near = order[bisect.bisect_left(starts, s_lo) : bisect.bisect_left(starts, s_hi)]
                near = sorted(near)
            else:
                add_limit(
                    doc,
                    f"a sentence holds over {self.max_per_mention} attributes: each mention "
                    f"read its {self.max_per_mention} nearest",
                )
            for i in near:
                f = found[i]
                if f.start < s_lo or f.end > s_hi:
                    continue
                before, after = windows[f.name]
                inside = f.start < m_hi and f.end > m_lo  # overlapping counts as inside
                if not inside and in_other[i]:
                    continue  # it qualifies the mention it sits in
                if inside:
                    dist = 0
                elif f.end <= m_lo:
                    dist = m_lo - f.end
                    if before >= 0 and dist > before:
                        continue
                elif f.start >= m_hi:
                    dist = f.start - m_hi
                    if after >= 0 and dist > after:
                        continue
                else:
                    continue  # straddles the mention's edge
                if not inside and ranges.closer_other(f, (m_lo, m_hi), dist):
                    continue  # it belongs to a closer mention
                prev = best.get(f.name)
                if prev is None or dist < prev[0]:
                    best[f.name] = (dist, f)
            mention._.attributes = tuple(
                (f.name, f.value, f.start, f.end)
                for _, f in sorted(best.values(), key=lambda x: x[1].start)
            )
        return doc

    def _near(
        self,
        order: list[int],
        starts: list[int],
        found: list[Found],
        s_lo: int,
        s_hi: int,
        m_lo: int,
        m_hi: int,
    ) -> list[int] | None:
        """When the mention's sentence holds over ``max_per_mention`` attributes (a hostile
        note), the indices (in ``found`` order) of the nearest that many; else None (read
        them all)."""
        lo, hi = bisect.bisect_left(starts, s_lo), bisect.bisect_left(starts, s_hi)
        if hi - lo <= self.max_per_mention:
            return None

        def gap(i: int) -> int:
            f = found[i]
            return max(m_lo - f.end, f.start - m_hi, 0)

        return sorted(heapq.nsmallest(self.max_per_mention, order[lo:hi], key=gap))
