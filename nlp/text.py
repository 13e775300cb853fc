"""Word normalization shared by the lexicon builder and the mention matcher.

Both sides of a match (KB terms and note tokens) go through :class:`Normalizer`, so the
equivalences (British spellings, ``renal`` = ``kidney``, plural and ``-ed``/``-ing`` endings,
dropped function words) hold symmetrically.
"""

from __future__ import annotations

import re
from functools import lru_cache

from clinicode.nlp.resources import load_resource

WORD_RE = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1)
def _plurals() -> tuple[dict[str, str], tuple[str, ...], frozenset[str]]:
    """Greek and Latin plurals -> singular, the ``-oses`` words that are no plural of an
    ``-osis`` word, and the species names kept whole (``words.json``)."""
    words = load_resource("words.json")
    return (
        dict(words["irregular_plurals"]),
        tuple(words["oses_plural_exceptions"]),
        frozenset(words["latin_genitives"]),
    )


def singular(word: str) -> str:
    """The singular of a Greek or Latin plural ("calculi", "keratoses"); other words unchanged."""
    table, not_osis, _ = _plurals()
    hit = table.get(word)
    if hit is not None:
        return hit
    if len(word) > 6 and word.endswith("oses") and not word.endswith(not_osis):
        return word[:-2] + "is"
    return word


@lru_cache(maxsize=65536)
def light_stem(word: str) -> str:
    """A conservative stem: plural, ``-ed``, ``-ing`` and final ``-e`` removed (lower case in)."""
    if word in _plurals()[2]:
        return word  # "pneumoniae" in "Klebsiella pneumoniae": no plural of pneumonia
    w = singular(word)
    if len(w) <= 3 or w.isdigit():
        return w
    if w.endswith(("is", "us")) and w != word:
        return w  # a Greek or Latin singular: nothing more to strip
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "xes", "ches", "shes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is", "ous")):
        w = w[:-1]
    elif w.endswith("ae") and len(w) > 5:
        w = w[:-1]
    if w.endswith("ed") and len(w) > 5:
        w = w[:-2]
    elif w.endswith("ing") and len(w) > 6:
        w = w[:-3]
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    if w.endswith("y") and len(w) > 4:
        w = w[:-1] + "i"
    return w


@lru_cache(maxsize=1)
def _not_plural() -> frozenset[str]:
    """Words ending in s that are no plural ("diabetes", "pelvis": ``words.json``)."""
    return frozenset(load_resource("words.json")["not_plural"])


def lemma(word: str) -> str:
    """A readable base form for normalized mention text (plural to singular only)."""
    w = word.lower()
    if len(w) <= 3 or not w.isalpha() or w in _not_plural():
        return w
    if w in _plurals()[2]:
        return w
    if (one := singular(w)) != w:
        return one
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "xes", "ches", "shes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is", "ous", "as")):
        return w[:-1]
    return w


class Normalizer:
    """Turns text into the stems used as bag-of-words keys."""

    def __init__(self) -> None:
        syn = load_resource("synonyms.json")
        self.token_map: dict[str, tuple[str, ...]] = {
            k.lower(): tuple(WORD_RE.findall(v.lower())) for k, v in syn["token_map"].items()
        }
        self.drop: frozenset[str] = frozenset(w.lower() for w in syn["drop_tokens"])
        self.generic: frozenset[str] = frozenset(
            light_stem(w.lower()) for w in syn["generic"]
        ) | frozenset(syn["generic"])
        self.weak: frozenset[str] = frozenset(
            light_stem(w.lower()) for w in syn["weak"]
        ) | frozenset(syn["weak"])
        self._cache: dict[str, tuple[str, ...]] = {}

    def word_stems(self, word: str) -> tuple[str, ...]:
        """Stems of one lower-case word (none for function words; several for mapped ones)."""
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        words = self.token_map.get(word, (word,))
        out = tuple(light_stem(w) for w in words if w not in self.drop)
        if len(self._cache) < 200_000:
            self._cache[word] = out
        return out

    def stems(self, text: str) -> list[str]:
        """Stems of every word of ``text``, in order."""
        out: list[str] = []
        for w in WORD_RE.findall(text.lower()):
            out.extend(self.word_stems(w))
        return out

    def key(self, stems: list[str] | set[str] | tuple[str, ...]) -> str:
        """The bag-of-words key: unique stems, sorted, space-separated."""
        return " ".join(sorted(set(stems)))

    def is_generic(self, stems: set[str] | frozenset[str]) -> bool:
        """True when the bag names nothing: one generic word ("knee", "acute", "2") or only weak
        words ("other disorder", "type 2"); "chronic kidney disease" is not generic."""
        if len(stems) == 1:
            s = next(iter(stems))
            return s in self.generic or s in self.weak or s.isdigit() or len(s) < 3
        return all(s in self.weak or s.isdigit() or len(s) < 2 for s in stems)


@lru_cache(maxsize=1)
def get_normalizer() -> Normalizer:
    return Normalizer()
