"""Word keys and the context a mention is coded in.

A key is a lower-case word with its inflection removed (``diabetes``/``diabetic`` -> ``diabet``,
``calculous``/``calculus`` -> ``calcul``), so the note's words meet the Index's and the
tabular's. A :class:`Context` weighs each key by where the note states it: in the mention, in
its sentence, elsewhere in the note (present mentions only: a negated mention states nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from typing import Any

from clinicode.models.resources import load_resource
from clinicode.schema import Mention

_WORD = re.compile(r"[a-z0-9]+(?:'s)?")
_NUMBER = re.compile(r"^\d")
_SUBSTAGE = re.compile(r"^\d+[a-z]$")
# assertions under which a mention states nothing about the patient now
_UNSTATED = frozenset({"negated", "family", "hypothetical"})


def load_encoder_data() -> dict[str, Any]:
    """``models/resources/encoder.yaml`` (read once; callers must not mutate it)."""
    return load_resource("encoder.yaml")


@lru_cache(maxsize=1)
def _tables() -> tuple[frozenset[str], tuple[str, ...], dict[str, str], dict[str, str]]:
    d = load_encoder_data()
    suffixes = tuple(sorted(set(d["suffixes"]), key=len, reverse=True))
    return frozenset(d["stopwords"]), suffixes, dict(d["numerals"]), dict(d["word_forms"])


@lru_cache(maxsize=65536)
def key(word: str) -> str:
    """The key of one lower-case word ('' for a stop word)."""
    stop, suffixes, numerals, forms = _tables()
    w = word.removesuffix("'s")
    if w in stop:
        return ""
    if w in numerals:
        return numerals[w]
    w = forms.get(w, w)
    if w.isdigit() or any(ch.isdigit() for ch in w):
        return w
    for _ in range(3):
        for suf in suffixes:
            if w.endswith(suf) and len(w) - len(suf) >= 3:
                w = w[: -len(suf)]
                break
        else:
            break
    return w


def keys(text: str) -> list[str]:
    """The keys of a text, in order, without stop words."""
    return list(_keys(text))


@lru_cache(maxsize=65536)  # titles and mention texts are asked about again and again
def _keys(text: str) -> tuple[str, ...]:
    return tuple(k for k in (key(w) for w in _WORD.findall(text.lower())) if k)


def keys_without_durations(text: str) -> list[str]:
    """The keys of a mention's sentence, without its durations ("for five days": how long a
    condition has lasted names none of its subterms)."""
    return list(_keys_without_durations(text))


@lru_cache(maxsize=65536)  # sentences and mention texts are read again and again
def _keys_without_durations(text: str) -> tuple[str, ...]:
    return _keys(_duration().sub(" ", text))


@lru_cache(maxsize=1)
def _duration() -> re.Pattern[str]:
    return re.compile(str(load_encoder_data()["duration"]), re.IGNORECASE)


def split_absent(part: str) -> tuple[list[str], list[str]]:
    """The words of one lower-case title part that it states, and those it says are absent
    (the "without" or "not" that starts them left out): from a start word, or a part's leading
    "not" (", not intractable"), up to an end word ("with": *Calculus of gallbladder without
    cholecystitis with obstruction* states obstruction; "of"/"in": *Laceration without foreign
    body of lip* states the lip) unless the word before it continues the absent thing
    ("without loss of consciousness"). Word lists: ``absent``."""
    cfg = load_encoder_data()["absent"]
    starts, ends, continues = set(cfg["starts"]), set(cfg["ends"]), set(cfg["continues"])
    words = part.split()
    out: list[str] = []
    gone: list[str] = []
    absent = bool(words) and words[0] == "not"
    prev = ""
    for w in words:
        if w in starts:
            absent = True
        elif absent and w in ends and prev not in continues:
            absent = False
        if not absent:
            out.append(w)
        elif w not in starts and w != "not":
            gone.append(w)
        prev = w
    return out, gone


def absent_keys(title: str) -> frozenset[str]:
    """The keys of what a title (its parentheses removed) says is absent, part by part."""
    return frozenset(
        k for p in title.lower().split(",") for w in split_absent(p)[1] for k in keys(w)
    )


def word_keys(text: str) -> list[tuple[str, str]]:
    """Each word of a text with its key (stop words left out)."""
    out = []
    for w in _WORD.findall(text.lower()):
        k = key(w)
        if k:
            out.append((w, k))
    return out


def spelled_alike(a: str, b: str) -> bool:
    """Whether two words of one key are one word and not two that the suffix list cut to the
    same short stem ("canal" and "canities", "care" and "caries", "infant" and "infusion" are
    all three letters long once cut): one begins the other, or they share four letters (an
    irregular form as its word: ``word_forms``)."""
    forms = _tables()[3]
    a, b = forms.get(a, a), forms.get(b, b)
    if a.startswith(b) or b.startswith(a):
        return True
    return len(a) >= 4 and len(b) >= 4 and a[:4] == b[:4]


@dataclass
class Context:
    """Where the note states each key: ``local`` (mention, then sentence weights) and ``note``
    (the whole note's present mentions, for note-wide connectors such as "with")."""

    local: dict[str, float] = field(default_factory=dict)
    note: dict[str, float] = field(default_factory=dict)
    # adjacent key pairs of the local text: a number must follow its word ("stage 3b")
    pairs: set[tuple[str, str]] = field(default_factory=set)

    def spells(self, alt: tuple[str, ...]) -> bool:
        """Whether every number of ``alt`` follows the key before it in the note, as written."""
        return all(
            (alt[i - 1], k) in self.pairs for i, k in enumerate(alt) if i and _NUMBER.match(k)
        )

    def weight(self, k: str, *, note_wide: bool) -> float:
        w = self.local.get(k, 0.0)
        if note_wide and not w:
            return self.note.get(k, 0.0)
        return w


def note_sides(text: str) -> dict[str, str]:
    """Site key -> side key for each paired site (``note_sides`` in encoder.yaml) the note
    names with one side only ("EXAM: MRI RIGHT ANKLE ... right ankle pain": ankle -> right)."""
    cfg = load_encoder_data()["note_sides"]
    side_of = {k: side for side, words in cfg["sides"].items() for w in words for k in keys(w)}
    sites = {k for w in cfg["sites"] for k in keys(w)}
    reach = int(cfg["reach"])
    ks = keys(text)
    seen: dict[str, set[str]] = {}
    for i, k in enumerate(ks):
        side = side_of.get(k)
        if side is None:
            continue
        for site in ks[i + 1 : i + 1 + reach]:
            if site in side_of:
                break
            if site in sites:
                seen.setdefault(site, set()).add(side)
    return {
        site: keys(next(iter(sides)))[0]
        for site, sides in seen.items()
        if len(sides) == 1 and "bilateral" not in sides
    }


def with_note_side(ctx: Context, sided: dict[str, str], weight: float) -> None:
    """Adds to ``ctx`` the one side the note states for the sites its sentence names, where the
    sentence states no side of its own."""
    if not sided or any(ctx.local.get(k) for k in side_keys()):
        return
    sides = {side for site, side in sided.items() if ctx.local.get(site)}
    if len(sides) == 1:
        ctx.local.setdefault(sides.pop(), weight)


@lru_cache(maxsize=1)
def side_keys() -> frozenset[str]:
    """The keys of the side words (right, left, bilateral and their abbreviations)."""
    cfg = load_encoder_data()["note_sides"]
    return frozenset(k for words in cfg["sides"].values() for w in words for k in keys(w))


def stated_mentions(mentions: Sequence[Mention]) -> list[Mention]:
    """The mentions that state something of the patient (not negated, family, hypothetical)."""
    return [m for m in mentions if m.assertion not in _UNSTATED]


def note_keys(mentions: Sequence[Mention], weight: float) -> dict[str, float]:
    """Keys of the note's stated mentions (their words and normalized forms)."""
    out: dict[str, float] = {}
    for m in stated_mentions(mentions):
        for k in (*keys(m.text), *keys(m.normalized)):
            out[k] = weight
    return out


def mention_context(
    text: str,
    mention: Mention,
    mentions: Sequence[Mention],
    note: dict[str, float],
    weights: dict[str, float],
    sentence_keys: list[str] | None = None,
) -> Context:
    """The context of one mention: its own words (and normalized form, attributes), then the
    words of its sentence outside negated or family mentions, then the note's.
    ``sentence_keys``: the sentence's keys when the caller already has them (one sentence
    holding many mentions is read once)."""
    local: dict[str, float] = {}
    pairs: set[tuple[str, str]] = set()
    sentence = (
        sentence_keys
        if sentence_keys is not None
        else keys_without_durations(text[mention.sentence_start : mention.sentence_end])
    )
    _add(local, sentence, weights["sentence"])
    _pairs(pairs, sentence)
    for m in mentions:
        inside = m.start >= mention.sentence_start and m.end <= mention.sentence_end
        if not inside or m is mention:
            continue
        if m.assertion in _UNSTATED:
            for k in keys(m.text):
                local.pop(k, None)
        else:  # its normalized form and attributes ("R" read as right) as written
            _add(local, keys(m.normalized), weights["sentence"])
            _add(local, [k for a in m.attributes for k in keys(a.value)], weights["sentence"])
            _pairs(pairs, keys(m.normalized))
    own = [*keys_without_durations(mention.text), *keys_without_durations(mention.normalized)]
    own += [k for a in mention.attributes for k in keys(a.value)]
    _add(local, own, weights["mention"])
    _pairs(pairs, keys(mention.normalized))
    # an organ's adjective in the mention's own phrase states the organ ("gastric polyp")
    lead = PHRASE_END.split(text[mention.sentence_start : mention.start])[-1]
    organs = _organs()
    for k in (*own, *keys(lead)):
        if k in organs:
            _add(local, [organs[k]], local.get(k, weights["sentence"]))
    return Context(local=local, note=note, pairs=pairs)


# where a mention's phrase ends: punctuation, a blank line, or a word joining another phrase
PHRASE_END = re.compile(r"[,.;:]|\n\s*\n|\b(?:with|and|s/p|status post|from)\b", re.I)


@lru_cache(maxsize=1)
def _organs() -> dict[str, str]:
    """Key of an organ's adjective -> key of the organ (``organ_adjectives``)."""
    out: dict[str, str] = {}
    for adj, noun in load_encoder_data()["organ_adjectives"].items():
        a, n = keys(str(adj)), keys(str(noun))
        if len(a) == 1 and len(n) == 1 and a != n:
            out[a[0]] = n[0]
    return out


def _pairs(into: set[tuple[str, str]], ks: list[str]) -> None:
    into.update(pairwise(ks))
    into.update((a, b[:-1]) for a, b in pairwise(ks) if _SUBSTAGE.match(b))


def _add(into: dict[str, float], ks: Iterable[str], w: float) -> None:
    for k in ks:
        if into.get(k, 0.0) < w:
            into[k] = w
        if _SUBSTAGE.match(k) and into.get(k[:-1], 0.0) < w:  # "3b" states stage 3 too
            into[k[:-1]] = w
