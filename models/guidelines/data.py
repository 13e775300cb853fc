"""The guideline tables (one loader) and the code patterns they are written in.

Everything clinical the rules read is data in ``models/resources/guidelines_rules.yaml``, read
once by :func:`load_rules`. A code pattern is a prefix (``E11``, ``O24.4-``) or an inclusive
range compared on the characters each bound gives (``N18.1-N18.4``, ``B95-B97``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from clinicode.models.resources import load_resource

ICD = "ICD-10-CM"

_CODE = r"[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?"
_REF = re.compile(rf"\b({_CODE})(?:\s*-\s*({_CODE})|\.?-)?")
CODE_FULL = re.compile(rf"^{_CODE}$")


def load_rules() -> dict[str, Any]:
    """The rule tables of ``models/resources/guidelines_rules.yaml`` (read once, cached;
    callers must not mutate them)."""
    return load_resource("guidelines_rules.yaml")


@lru_cache(maxsize=4096)
def compile_cue(pattern: str) -> re.Pattern[str]:
    """A cue of the tables as a case-insensitive regular expression (compiled once)."""
    return re.compile(pattern, re.I)


@lru_cache(maxsize=8192)
def _bounds(pattern: str) -> tuple[str, str | None]:
    """A pattern as ``(prefix, None)`` or ``(low, high)`` range bounds, dots removed."""
    pattern = pattern.strip().upper()
    m = re.fullmatch(rf"({_CODE})\s*-\s*({_CODE})", pattern)
    if m:
        return m.group(1).replace(".", ""), m.group(2).replace(".", "")
    return pattern.rstrip("-").rstrip(".").replace(".", ""), None


@lru_cache(maxsize=131072)
def code_matches(pattern: str, code: str) -> bool:
    """Whether ``code`` falls under ``pattern``: a prefix (``E11``, ``O24.4-``) or a range
    (``N18.1-N18.4``, ``B95-B97``) compared on the characters each bound gives."""
    c = code.replace(".", "").upper()
    lo, hi = _bounds(pattern)
    if hi is None:
        return c.startswith(lo)
    return c[: len(lo)] >= lo and c[: len(hi)] <= hi


@lru_cache(maxsize=4096)
def _split_patterns(
    patterns: tuple[str, ...],
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """A pattern list as (prefixes, ranges), so one ``startswith`` tests all the prefixes."""
    prefixes: list[str] = []
    ranges: list[tuple[str, str]] = []
    for p in patterns:
        lo, hi = _bounds(p)
        if hi is None:
            prefixes.append(lo)
        else:
            ranges.append((lo, hi))
    return tuple(prefixes), tuple(ranges)


@lru_cache(maxsize=65536)
def _any_match(patterns: tuple[str, ...], code: str) -> bool:
    # the same test as ``any(code_matches(p, code) for p in patterns)``, without a call per pattern
    c = code.replace(".", "").upper()
    prefixes, ranges = _split_patterns(patterns)
    if prefixes and c.startswith(prefixes):
        return True
    return any(c[: len(lo)] >= lo and c[: len(hi)] <= hi for lo, hi in ranges)


def any_match(patterns: Iterable[str], code: str) -> bool:
    """Whether ``code`` falls under any of ``patterns`` (cached per pattern list and code)."""
    return _any_match(tuple(patterns), code)


def note_refs(note: str) -> list[str]:
    """Code patterns named in an instructional note: ``"(N18.1-N18.6)"`` -> ``["N18.1-N18.6"]``."""
    out = []
    for m in _REF.finditer(note):
        out.append(f"{m.group(1)}-{m.group(2)}" if m.group(2) else m.group(1))
    return out


def first_rule(table: list[dict[str, Any]], code: str) -> dict[str, Any] | None:
    """The first row of ``table`` whose ``when`` pattern ``code`` falls under."""
    for row in table:
        if code_matches(str(row["when"]), code):
            return row
    return None
