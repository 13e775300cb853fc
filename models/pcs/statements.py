"""Where a note states the procedures performed: the items under a procedure heading
("PROCEDURE PERFORMED:", "OPERATION:", "Procedures:" ...) and the sentences of the procedure
mentions the NLP found elsewhere (present ones only: a planned or past operation is not coded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clinicode.schema import Mention

_HEADING = re.compile(
    r"^[ \t]*(?:(?:principal|secondary|other|primary)\s+)?"
    r"(?:procedures?|operations?|surgery|surgeries)(?:\s*\(\w+\))?"
    # "PROCEDURES PERFORMED DURING THIS ADMISSION:", not "PROCEDURE IN DETAIL:" or "PLANNED"
    r"(?:[ \t]+(?!(?:planned|history|note|in|details?|description|indications?)\b)[a-z/]+){0,4}"
    r"[ \t]*:",
    re.I | re.M,
)
_NAMED_HEADING = re.compile(
    r"^[ \t]*(?:name|title) of (?:the )?(?:procedure|operation)[ \t]*:", re.I | re.M
)
_NEXT_HEADING = re.compile(r"^[ \t]*[A-Za-z][A-Za-z /&()-]{1,40}:", re.M)
_BLANK = re.compile(r"\n[ \t]*\n")
# items of a list, and sentences: "1. ...", "2) ...", "; ", ". Next"
_ITEM_SPLIT = re.compile(
    r"(?:^|\n|(?<=\n))[ \t]*(?:\d{1,2}[.)]|[-*\u2022])[ \t]+|;\s+|(?<=[a-z)\]])\.\s+"
)

_PAST = re.compile(r"\b(?:was|were|is|are|had|has)\b", re.I)


@dataclass(frozen=True)
class Statement:
    """One procedure statement: ``text == note[start:end]``."""

    start: int
    end: int
    text: str
    source: str  # "heading" | "mention"


def _blocks(text: str) -> list[tuple[int, int]]:
    """The spans of text under procedure headings (to the next heading or blank line)."""
    out = []
    heads = sorted(
        [m for m in _HEADING.finditer(text)] + [m for m in _NAMED_HEADING.finditer(text)],
        key=lambda m: m.start(),
    )
    for m in heads:
        start = m.end()
        end = len(text)
        nxt = _NEXT_HEADING.search(text, start)
        if nxt is not None and nxt.start() > start:
            end = nxt.start()
        blank = _BLANK.search(text, start, end)
        if blank is not None and text[start : blank.start()].strip():
            end = blank.start()
        out.append((start, end))
    return out


def _narrative(item: str) -> bool:
    """A sentence of the operative narrative rather than the name of a procedure."""
    words = item.split()
    return len(words) > 30 or (len(words) > 5 and _PAST.search(item) is not None)


def _items(text: str, start: int, end: int, source: str) -> list[Statement]:
    """The items of a list (or the sentences of a mention's sentence); under a heading, the
    list ends where the operative narrative starts."""
    out = []
    pos = start
    pieces = []
    for m in _ITEM_SPLIT.finditer(text, start, end):
        pieces.append((pos, m.start()))
        pos = m.end()
    pieces.append((pos, end))
    for a, b in pieces:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1] in " \t\r\n.":
            b -= 1
        if source == "heading" and _narrative(text[a:b]):
            break
        if b - a >= 3:
            out.append(Statement(a, b, text[a:b], source))
    return out


def find_statements(
    text: str, mentions: list[Mention], skipped_sections: frozenset[str] = frozenset()
) -> list[Statement]:
    """Procedure statements of a note, in order, without overlaps; mentions in
    ``skipped_sections`` (past surgical history, plan ...) are not statements."""
    blocks = _blocks(text)
    found: list[Statement] = []
    for a, b in blocks:
        found.extend(_items(text, a, b, "heading"))
    for m in mentions:
        if m.kind != "procedure" or m.assertion != "present":
            continue
        if m.section in skipped_sections:
            continue
        if any(a <= m.start < b for a, b in blocks):
            continue
        s, e = m.sentence_start, m.sentence_end
        if e <= s:
            s, e = m.start, m.end
        if any(st.start <= m.start < st.end for st in found):
            continue
        found.extend(_items(text, s, e, "mention"))
    return sorted(found, key=lambda st: st.start)
