"""The E/M calculator's tables (one loader) and the cue matcher they are written for.

Everything clinical the calculator reads (section headers, problem, data and risk cues, the
level tables, time thresholds, own-words titles) is data in ``models/resources/em_rules.yaml``,
read once by :func:`load_em_rules`. A cue list becomes one case-insensitive :class:`Cues`
matcher that finds whole-word hits with their offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from clinicode.models.resources import load_resource

_LEFT = r"(?<![A-Za-z0-9])"
_RIGHT = r"(?![A-Za-z0-9])"


def load_em_rules() -> dict[str, Any]:
    """The tables of ``models/resources/em_rules.yaml`` (read once, cached; callers must not
    mutate them)."""
    return load_resource("em_rules.yaml")


@dataclass(frozen=True)
class Hit:
    """One cue found in the note: absolute offsets, the matched text and the cue's group."""

    start: int
    end: int
    text: str
    group: str


class Cues:
    """A cue list (or named groups of cue lists) as one whole-word, case-insensitive regex."""

    def __init__(self, groups: dict[str, Sequence[str]] | Sequence[str]) -> None:
        named = groups if isinstance(groups, dict) else {"": groups}
        self._names: list[str] = []
        parts = []
        for i, (name, pats) in enumerate(named.items()):
            self._names.append(name)
            alts = "|".join(f"(?:{p})" for p in sorted(pats, key=len, reverse=True))
            parts.append(f"(?P<g{i}>{alts})")
        self._re = re.compile(_LEFT + "(?:" + "|".join(parts) + ")" + _RIGHT, re.I)

    def finditer(self, text: str, offset: int = 0) -> Iterator[Hit]:
        for m in self._re.finditer(text):
            idx = int((m.lastgroup or "g0")[1:])
            yield Hit(offset + m.start(), offset + m.end(), m.group(0), self._names[idx])

    def search(self, text: str) -> bool:
        return self._re.search(text) is not None


@lru_cache(maxsize=64)
def cues(*path: str) -> Cues:
    """The :class:`Cues` of the table at ``path`` in the rules (compiled once)."""
    node: Any = load_em_rules()
    for key in path:
        node = node[key]
    return Cues(node)


def longest_first(hits: Iterable[Hit]) -> list[Hit]:
    """Hits with overlaps resolved: a longer hit wins over one it overlaps (then the earlier)."""
    kept: list[Hit] = []
    for h in sorted(hits, key=lambda h: (-(h.end - h.start), h.start)):
        if all(h.end <= k.start or h.start >= k.end for k in kept):
            kept.append(h)
    return sorted(kept, key=lambda h: h.start)
