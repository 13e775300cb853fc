"""Finding a pattern's matches in a long note near the parts every match holds.

``re.finditer`` over the whole note costs the note's length for every pattern; the procedure
rules hold some 460, so a 200,000-character note spent about a second there. A pattern whose
matches are at most ``W`` characters long (its width, from the parsed pattern) and all contain
one of its required parts (``procedure_text.triggers``) can only match starting at most ``W``
characters before an occurrence of a part: :func:`finditer_near` searches only there and gives
exactly the matches ``finditer`` gives (same spans, same order, non-overlapping from the left),
for patterns of bounded width with no empty match and no look-around. Importing does no I/O.
"""

from __future__ import annotations

import re
import re._constants as _c
import re._parser as _parser
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

# the text past a window a match attempt may read: a word-boundary test looks one character on
_MARGIN = 8
# a part found more often than once per this many characters: the whole-note scan is cheaper
_DENSE = 64


@lru_cache(maxsize=8192)
def bounded_width(pattern: str) -> int | None:
    """The longest match of ``pattern`` (case-insensitive) when it is bounded, never empty and
    free of look-around; None otherwise (the caller then scans the whole text)."""
    try:
        parsed = _parser.parse(pattern, re.I)
    except (re.error, TypeError, ValueError):
        return None
    lo, hi = parsed.getwidth()
    if lo < 1 or hi >= _c.MAXREPEAT or _has_lookaround(list(parsed)):
        return None
    return int(hi)


def _has_lookaround(items: list[Any]) -> bool:
    op: Any
    arg: Any
    for op, arg in items:
        if op in (_c.ASSERT, _c.ASSERT_NOT, _c.GROUPREF, _c.GROUPREF_EXISTS):
            return True
        if op is _c.SUBPATTERN and _has_lookaround(list(arg[-1])):
            return True
        if op is _c.BRANCH and any(_has_lookaround(list(b)) for b in arg[1]):
            return True
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT, _c.ATOMIC_GROUP):
            inner = arg if op is _c.ATOMIC_GROUP else arg[2]
            if _has_lookaround(list(inner)):
                return True
    return False


def finditer_near(
    rx: re.Pattern[str], text: str, low: str, parts: Sequence[str], width: int
) -> Iterator[re.Match[str]] | None:
    """``rx.finditer(text)``, searched only where a match may start: within ``width``
    characters before an occurrence in ``low`` (``text`` lowered, same length) of one of
    ``parts``. None when that would not be cheaper (a part too frequent) or not exact."""
    if len(low) != len(text) or not parts:
        return None
    starts: list[tuple[int, int]] = []  # windows of possible match starts
    budget = len(text) // _DENSE + 1
    for part in parts:
        i = low.find(part)
        while i >= 0:
            starts.append((max(0, i + len(part) - width), i))
            if len(starts) > budget:
                return None
            i = low.find(part, i + 1)
    return _scan(rx, text, _merged(starts), width)


def _merged(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(windows):
        if out and s <= out[-1][1] + 1:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _scan(
    rx: re.Pattern[str], text: str, windows: list[tuple[int, int]], width: int
) -> Iterator[re.Match[str]]:
    pos = 0
    n = len(text)
    for ws, we in windows:
        at = max(ws, pos)
        while at <= we:
            m = rx.search(text, at, min(n, we + width + _MARGIN))
            if m is None or m.start() > we:
                break
            yield m
            pos = at = m.end()
