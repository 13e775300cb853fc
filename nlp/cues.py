"""Negation and sentence/clause bounds for text outside the spaCy pipeline (the guidelines layer).

The layer searches the note for cue words (an organism, a drug, a CKD stage) that no mention
carries, so it needs two answers from the NLP side without running the pipeline again: is this
match negated ("no MRSA", "stopped warfarin"), and where are the sentence and the clause around a
span. The words and stop characters are data in ``nlp/resources/cues.json`` (read through
:func:`clinicode.nlp.resources.load_resource`).
"""

from __future__ import annotations

import re
from functools import lru_cache

from clinicode.nlp.resources import load_resource


@lru_cache(maxsize=1)
def _negation() -> tuple[re.Pattern[str], int]:
    cfg = load_resource("cues.json")["negation_before"]
    words = "|".join(re.escape(w) for w in cfg["words"])
    rx = re.compile(rf"\b({words})\b[^.\n]{{0,{int(cfg['max_gap'])}}}$", re.I)
    return rx, int(cfg["lookback"])


def negated_before(text: str, start: int) -> bool:
    """Whether a negation word precedes ``text[start:]`` closely, in the same sentence and line
    ("denies chest pain", "off warfarin for a week")."""
    rx, lookback = _negation()
    return rx.search(text[max(0, start - lookback) : start]) is not None


def _bounded(text: str, start: int, end: int, stops: str) -> tuple[int, int]:
    """The span around ``[start, end)`` up to (not including) the nearest stop characters."""
    lo = max(text.rfind(c, 0, start) for c in stops) + 1
    his = [i for i in (text.find(c, end) for c in stops) if i >= 0]
    return lo, min(his) if his else len(text)


def sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence around ``[start, end)`` by its stop characters (for a span no mention of
    the pipeline covers; a mention carries its own sentence)."""
    return _bounded(text, start, end, load_resource("cues.json")["sentence_stops"])


def clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The clause around ``[start, end)``: up to the nearest comma, semicolon, bracket or line
    break, and a sentence end (". ") inside those bounds closes it too."""
    lo, hi = _bounded(text, start, end, load_resource("cues.json")["clause_stops"])
    dot = text.find(". ", end, hi)
    hi = dot if dot >= 0 else hi
    dot = text.rfind(". ", lo, start)
    lo = dot + 2 if dot >= 0 else lo
    return lo, hi
