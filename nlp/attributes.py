"""Attributes of mentions with their evidence offsets.

Found by regular expressions over the note, then attached to the mentions of the same sentence
by distance rules per attribute:

* ``laterality`` (left / right / bilateral): inside the span or within 30 characters around it;
* ``acuity`` (acute / chronic / acute on chronic / subacute) and ``severity`` (mild / moderate /
  severe ...): inside the span or within 25 characters before it;
* ``stage`` (CKD stage 3b, stage IV, GOLD 2) and ``nyha_class``: inside or within 40 after/25 before;
* ``episode`` (initial / subsequent / sequela), ``pregnancy_weeks``, ``bmi``: anywhere in the sentence.

Every attribute found goes to ``doc.spans["attributes"]`` (label = name, ``span._.attr_value``);
each mention gets ``span._.attributes``: a tuple of ``(name, value, start_char, end_char)``.
"""

import re
from dataclasses import dataclass

from spacy.language import Language
from spacy.tokens import Doc, Span

from clinicode.nlp.sentences import SentenceIndex

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


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("laterality", re.compile(r"\b(bilateral(?:ly)?|left|right)\b", re.I)),
    (
        "acuity",
        re.compile(r"\b(acute[\s-]+on[\s-]+chronic|subacute|sub-acute|acute|chronic)\b", re.I),
    ),
    (
        "severity",
        re.compile(
            r"\b(mild(?:ly)?|moderate(?:ly)?(?:[\s-]+severe)?|severe(?:ly)?|critical|"
            r"life[\s-]threatening|massive|minimal)\b",
            re.I,
        ),
    ),
    (
        "stage",
        re.compile(
            r"\b(?:stage|gold|grade)\s*[:#]?\s*(\d[ab]?|[ivx]{1,3}[ab]?|[12345])\b(?!\s*(?:mg|%))",
            re.I,
        ),
    ),
    (
        "nyha_class",
        re.compile(r"\bnyha\s*(?:class|functional class)?\s*([ivx]{1,3}|[1-4])\b", re.I),
    ),
    (
        "episode",
        re.compile(
            r"\b(initial encounter|initial visit|subsequent encounter|follow[\s-]?up visit|"
            r"routine healing|delayed healing|nonunion|malunion|sequela[e]?|late effects?)\b",
            re.I,
        ),
    ),
    (
        "pregnancy_weeks",
        re.compile(
            r"\b(\d{1,2})(?:\s*(?:\+|and)\s*\d\s*(?:/7|days?))?\s*(?:weeks?|wks?\.?|w)\b"
            r"(?=[^.\n]{0,30}(?:gestation|pregnan|\bga\b|intrauterine|iup|g\d\s*p\d))"
            r"|\b(?:ga|gestational age|gestation)\s*(?:of|:)?\s*(\d{1,2})\s*(?:weeks?|wks?|w)\b"
            r"|\b(\d{1,2})\s*(?:weeks?|wks?)\s*(?:pregnant|gestation|of gestation|of pregnancy)",
            re.I,
        ),
    ),
    (
        "bmi",
        re.compile(
            r"\b(?:bmi|body mass index)\s*(?:is|was|of|:|=)?\s*(?:of\s*)?(\d{2}(?:\.\d{1,2})?)",
            re.I,
        ),
    ),
]

_WINDOWS: dict[str, tuple[int, int]] = {
    # name -> (chars before, chars after) around the mention; -1: whole sentence
    "laterality": (30, 30),
    "acuity": (25, 0),
    "severity": (25, 0),
    "stage": (25, 40),
    "nyha_class": (25, 60),
    "episode": (-1, -1),
    "pregnancy_weeks": (-1, -1),
    "bmi": (-1, -1),
}


def _normalize(name: str, raw: str) -> str:
    v = re.sub(r"[\s-]+", " ", raw.strip().lower()).rstrip(".")
    if name == "laterality":
        return {"lt": "left", "rt": "right", "both": "bilateral", "bilaterally": "bilateral"}.get(
            v, v
        )
    if name == "acuity":
        return "subacute" if v in ("subacute", "sub acute") else v
    if name == "severity":
        return v.removesuffix("ly").replace("moderate severe", "moderately severe")
    if name in ("stage", "nyha_class"):
        return _roman(v)
    if name == "episode":
        if v.startswith("initial"):
            return "initial"
        if v.startswith(("subsequent", "follow", "routine", "delayed", "nonunion", "malunion")):
            return "subsequent"
        return "sequela"
    return v


def find_attributes(text: str) -> list[Found]:
    """Every attribute mention in ``text`` with its value group's offsets."""
    out: list[Found] = []
    for name, pat in _PATTERNS:
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
                    tail = re.match(r"\s*(?:weeks?|wks?\.?|w)\b", text[end:], re.I)
                    if tail:
                        end += tail.end()
            else:
                start, end = m.span(gi)
                value = _normalize(name, m.group(gi))
            if value:
                out.append(Found(name, value, start, end))
    return out


def _closer_other(ranges: list[tuple[int, int]], f: Found, m_lo: int, m_hi: int, dist: int) -> bool:
    for a, b in ranges:
        if (a, b) == (m_lo, m_hi):
            continue
        d = a - f.end if f.end <= a else f.start - b if f.start >= b else 0
        if d < dist:
            return True
    return False


def _inside_other(ranges: list[tuple[int, int]], f: Found) -> bool:
    return any(a < f.end and f.start < b for a, b in ranges)


def register_extensions() -> None:
    if not Span.has_extension("attributes"):
        Span.set_extension("attributes", default=())
    if not Span.has_extension("attr_value"):
        Span.set_extension("attr_value", default="")


@Language.factory("clinicode_attributes", default_config={"span_group": "mentions"})
def make_attributes(nlp: Language, name: str, span_group: str) -> "AttributeTagger":
    return AttributeTagger(name=name, span_group=span_group)


class AttributeTagger:
    """Finds attributes and attaches them to the mentions in ``doc.spans[span_group]``."""

    def __init__(self, name: str = "clinicode_attributes", span_group: str = "mentions") -> None:
        register_extensions()
        self.name = name
        self.span_group = span_group

    def __call__(self, doc: Doc) -> Doc:
        found = find_attributes(doc.text)
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
        ranges = [(m.start_char, m.end_char) for m in doc.spans[self.span_group]]
        for mention in doc.spans[self.span_group]:
            s_lo, s_hi = sents.bounds(mention.start)
            m_lo, m_hi = mention.start_char, mention.end_char
            best: dict[str, tuple[int, Found]] = {}
            for f in found:
                if f.start < s_lo or f.end > s_hi:
                    continue
                before, after = _WINDOWS[f.name]
                inside = f.start < m_hi and f.end > m_lo  # overlapping counts as inside
                if not inside and _inside_other(ranges, f):
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
                if not inside and _closer_other(ranges, f, m_lo, m_hi, dist):
                    continue  # it belongs to a closer mention
                prev = best.get(f.name)
                if prev is None or dist < prev[0]:
                    best[f.name] = (dist, f)
            mention._.attributes = tuple(
                (f.name, f.value, f.start, f.end)
                for _, f in sorted(best.values(), key=lambda x: x[1].start)
            )
        return doc
