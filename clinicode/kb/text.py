"""Text normalisation shared by the knowledge base's term keys and search (no I/O)."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[A-Za-z0-9]+")
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
# Function words that carry no meaning for matching ("with" and "without" differ: keep the latter).
# "unspecified"/"NOS" add no specificity: "Hyperlipidemia, unspecified" is an exact match for
# "hyperlipidemia".
STOPWORDS = frozenset(
    "a an and as at by for from in into is of on or the to with nos nec unspecified".split()
)
_SUFFIXES = (
    "ations",
    "ation",
    "ically",
    "ness",
    "ions",
    "ion",
    "ive",
    "ies",
    "ic",
    "al",
    "ed",
    "ing",
    "es",
    "s",
    "y",
)


def normalize_code(code: str, system: str | None = None) -> str:
    """Display form of a code: upper case, no spaces; ICD-10-CM gets its dot after the category."""
    c = code.strip().upper().replace(" ", "")
    if system == "ICD-10-CM" and len(c) > 3 and "." not in c and "-" not in c:
        c = c[:3] + "." + c[3:]
    return c


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light, deterministic stem: ``diabetes``/``diabetic`` -> ``diabet``, ``fractured`` ->
    ``fractur``; used for exact-key matching and for query coverage (not for FTS)."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) <= 4 or w.isdigit():
        return w
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 4:
            w = w[: -len(suf)]
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


@lru_cache(maxsize=100_000)
def content_words(text: str, *, drop_parens: bool = True) -> tuple[str, ...]:
    """Stemmed content words of ``text`` (non-essential parenthesised parts dropped)."""
    if drop_parens:
        text = _PARENS.sub(" ", text)
    return tuple(
        stem(w) for w in _WORD.findall(text.replace("'s", "")) if w.lower() not in STOPWORDS
    )


def term_key(text: str) -> str | None:
    """Order-free key of a term: ``"Diabetes, type 2, with, chronic kidney disease"`` and
    ``"type 2 diabetes with chronic kidney disease"`` share one key."""
    words = sorted(set(content_words(text)))
    return " ".join(words) if words else None
