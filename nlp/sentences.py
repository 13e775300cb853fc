"""Sentence boundaries for clinical notes: fast rules, robust to line-broken and numbered lists.

spaCy's plain sentencizer splits "1. Hypertension" after "1." and joins list items that have no
final period. Rules here (one pass over the tokens):

* a blank line always ends a sentence; a single line break ends one unless the next line
  starts in lower case (a wrapped line);
* a list marker at the start of a line ("1.", "2)", "-", "*", "•") starts a sentence, and its
  period does not end one;
* ".", "!", "?" end a sentence when the next word starts with a capital, a digit or a marker,
  unless the period belongs to a title or Latin abbreviation ("Dr.", "e.g.", "b.i.d.");
* ";" never ends a sentence; a header colon followed by a line break does.
"""

import bisect
import re
from functools import lru_cache

import numpy
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokens import Doc

from clinicode.nlp.resources import load_resource

_TERMINAL = frozenset({".", "!", "?", "..."})
_MARKER = re.compile(r"^(?:\d{1,2}[.)]?|[-*•·]|[a-zA-Z][.)])$")


@lru_cache(maxsize=1)
def _no_split_abbrev() -> frozenset[str]:
    """Abbreviations whose period ends no sentence ("Dr.", "b.i.d.": ``words.json``)."""
    return frozenset(load_resource("words.json")["no_split_abbreviations"])


def _starts_upper_or_marker(text: str) -> bool:
    c = text[:1]
    return c.isupper() or c.isdigit() or bool(_MARKER.match(text)) or c in "([\"'"


@Language.factory("clinicode_sentences", default_config={"split_on_newline": True})
def make_sentences(nlp: Language, name: str, split_on_newline: bool) -> "ClinicalSentencizer":
    return ClinicalSentencizer(name=name, split_on_newline=split_on_newline)


class ClinicalSentencizer:
    """Sets ``token.is_sent_start`` for every token."""

    def __init__(self, name: str = "clinicode_sentences", split_on_newline: bool = True) -> None:
        self.name = name
        self.split_on_newline = split_on_newline

    def __call__(self, doc: Doc) -> Doc:
        n = len(doc)
        if n == 0:
            return doc
        texts = [t.text for t in doc]
        no_split = _no_split_abbrev()
        starts = [False] * n
        starts[0] = True
        newlines = 0  # line breaks since the last non-space token
        pending = False  # the last non-space token ended a sentence (".", "!", "?")
        last = ""  # text of the last non-space token
        marker_period = False  # the next "." / ")" closes a list marker
        for i, text in enumerate(texts):
            if text.isspace():
                newlines += text.count("\n")
                continue
            if i > 0:
                if newlines >= 2:
                    starts[i] = True
                elif newlines == 1 and self.split_on_newline:
                    starts[i] = _starts_upper_or_marker(text) or pending or last.endswith(":")
                elif pending:
                    starts[i] = _starts_upper_or_marker(text)
            first_on_line = newlines > 0 or i == 0
            newlines = 0
            if marker_period and text in (".", ")"):
                marker_period = False
                pending = False
                last = text
                continue
            marker_period = False
            pending = False
            if (starts[i] or first_on_line) and _MARKER.match(text):
                starts[i] = True
                marker_period = not text.endswith((".", ")"))
            elif text in _TERMINAL:
                abbrev = (
                    text == "."
                    and i > 0
                    and not doc[i - 1].whitespace_
                    and texts[i - 1].lower() in no_split
                )
                pending = not abbrev
            last = text
        values = numpy.fromiter((1 if x else -1 for x in starts), dtype="int64", count=n)
        doc.from_array([SENT_START], values.astype("uint64").reshape(-1, 1))  # type: ignore[arg-type]
        return doc


class SentenceIndex:
    """Character bounds of the sentence of any token, computed once per doc (``span.sent`` is
    slow when called for every mention)."""

    def __init__(self, doc: Doc) -> None:
        self._starts: list[int] = []
        self._bounds: list[tuple[int, int]] = []
        if doc.has_annotation("SENT_START"):
            for s in doc.sents:
                self._starts.append(s.start)
                self._bounds.append((s.start_char, s.end_char))
        else:
            self._starts.append(0)
            self._bounds.append((0, len(doc.text)))

    def bounds(self, token_i: int) -> tuple[int, int]:
        """``(start_char, end_char)`` of the sentence holding token ``token_i``."""
        return self._bounds[max(bisect.bisect_right(self._starts, token_i) - 1, 0)]
