"""Mention-free phrases: noun-phrase-like spans of raw note text, with exact offsets.

Candidate generators search them where the NLP pipeline found no mention (or, with
``phrases="always"``, beside the mentions); :func:`query_strings` turns mentions into the search
strings the generators use.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from clinicode.models.resources import load_resource
from clinicode.schema import Mention

# -- text normalisation ------------------------------------------------------------------
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


class TermPatterns(NamedTuple):
    """How a KB term is read (``models/resources/terms.yaml``)."""

    episode_suffix: re.Pattern[str]  # ", initial encounter" ... (case-insensitive)
    unspecified: re.Pattern[str]  # a leading or trailing "unspecified" (case-insensitive)
    nos: re.Pattern[str]  # "nos" in a lower-cased term


@lru_cache(maxsize=1)
def term_patterns() -> TermPatterns:
    data = load_resource("terms.yaml")
    return TermPatterns(
        episode_suffix=re.compile(data["episode_suffix"], re.IGNORECASE),
        unspecified=re.compile(data["unspecified"], re.IGNORECASE),
        nos=re.compile(data["nos"]),
    )


def normalize_term(text: str) -> str:
    """Lower case, letters and digits only, single spaces (``"Diabetes, type 2"`` ->
    ``"diabetes type 2"``)."""
    return _NON_ALNUM.sub(" ", text.lower()).strip()


_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


def term_variants(text: str) -> list[str]:
    """Normalised forms of a KB term: as written, then without its parenthesised
    non-essential modifiers, then also without "unspecified" / "NOS"."""
    out: list[str] = []
    bare = _PARENS.sub(" ", text).strip()
    pats = term_patterns()
    short = pats.nos.sub(" ", pats.unspecified.sub("", bare).lower())
    for form in (text, bare, short):
        norm = normalize_term(form)
        if norm and norm not in out:
            out.append(norm)
    return out


# -- phrases -----------------------------------------------------------------------------


_SENT_SPLIT = re.compile(r"\n+|(?<=[.!?;])\s+(?=[A-Z0-9(])")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-/+]*")
_BREAK_CHARS = re.compile(r"[,:()\[\]\"]")
# English function words and reporting verbs that end a phrase; "with", "without", "of", "due"
# and "to" are kept inside phrases because code titles use them ("X with Y", "X of Y"), but never
# start or end one.
_STOP = frozenset(
    """a an the this that these those is are was were be been being has have had having do does did
    in on at by for from as into onto upon about after before during since until while than then
    there here which who whom whose what when where why how it its it's he she his her him they
    them their we our us you your i my me not no nor but or so if also only very more most less
    some any all each both other such same own can could would should may might will shall must
    and or
    showed shows show revealed reveals found performed underwent presented presents presenting
    reported reports complained complaining admitted observed noted seen given treated started
    patient patients year years old day days month months week weeks hours time case
    """.split()
)
_CONNECT = frozenset({"with", "without", "of", "due", "to"})
_MAX_PHRASE_TOKENS = 8


def phrase_mentions(
    text: str, *, join_adjacent: bool = True, sub_spans: bool = True
) -> list[Mention]:
    """See :func:`_phrase_mentions`; the last few notes' phrases are kept, since one note's
    evidence, candidates and structure walk all ask for them (a copy of the list each time)."""
    return list(_phrase_mentions(text, join_adjacent=join_adjacent, sub_spans=sub_spans))


@lru_cache(maxsize=4)
def _phrase_mentions(
    text: str, *, join_adjacent: bool = True, sub_spans: bool = True
) -> tuple[Mention, ...]:
    """Noun-chunk-like phrases of ``text`` as :class:`Mention` objects (``source="phrase"``).

    Sentences split on line breaks and end punctuation; phrases break at punctuation and at
    function words. With ``join_adjacent`` two neighbouring phrases of a sentence separated by
    at most two function words are also offered as one ("pain in the right renal fossa").
    With ``sub_spans`` the words (4 letters or more) and the last two words of a longer phrase
    are offered too ("right renal fossa" -> "renal fossa", "fossa", "renal", "right").
    Deterministic: the same text always gives the same list.
    """
    out: list[Mention] = []
    pos = 0
    for part in _SENT_SPLIT.split(text):
        s_start = text.find(part, pos) if part else pos
        if s_start < 0:
            s_start = pos
        s_end = s_start + len(part)
        pos = s_end
        if not part.strip():
            continue
        tokens = [
            (m.start() + s_start, m.end() + s_start, m.group()) for m in _TOKEN.finditer(part)
        ]
        chunks: list[tuple[int, int]] = []  # first and last token index of each phrase
        cur: list[int] | None = None
        for i, (t_start, _t_end, tok) in enumerate(tokens):
            broken = i > 0 and bool(_BREAK_CHARS.search(text[tokens[i - 1][1] : t_start]))
            is_stop = tok.lower() in _STOP or tok.isdigit()
            if cur is not None and (broken or is_stop or cur[1] - cur[0] + 1 >= _MAX_PHRASE_TOKENS):
                chunks.append((cur[0], cur[1]))
                cur = None
            if not is_stop:
                if cur is None:
                    cur = [i, i]
                else:
                    cur[1] = i
        if cur is not None:
            chunks.append((cur[0], cur[1]))
        chunks = _trim_connectors(chunks, tokens)
        spans = [(tokens[a][0], tokens[b][1]) for a, b in chunks]
        if sub_spans:
            for a, b in chunks:
                if b > a:
                    if b - a >= 2 and tokens[b - 1][2].lower() not in _CONNECT:
                        spans.append((tokens[b - 1][0], tokens[b][1]))
                    spans.extend(
                        (tokens[i][0], tokens[i][1])
                        for i in range(a, b + 1)
                        if len(tokens[i][2]) >= 4 and tokens[i][2].lower() not in _CONNECT
                    )
        if join_adjacent:
            for (a, b), (c, d) in itertools.pairwise(chunks):
                gap = text[tokens[b][1] : tokens[c][0]]
                if (
                    c - b - 1 <= 2
                    and not _BREAK_CHARS.search(gap)
                    and d - a < 2 * _MAX_PHRASE_TOKENS
                ):
                    spans.append((tokens[a][0], tokens[d][1]))
        for start, end in sorted(set(spans)):
            span = text[start:end]
            if len(span) < 3 or span.lower().strip("'-/+") in _STOP:
                continue
            out.append(
                Mention(
                    start=start,
                    end=end,
                    text=span,
                    normalized=normalize_term(span),
                    kind="other",
                    sentence_start=s_start,
                    sentence_end=s_end,
                    source="phrase",
                )
            )
    return tuple(out)


def _trim_connectors(
    chunks: list[tuple[int, int]], tokens: list[tuple[int, int, str]]
) -> list[tuple[int, int]]:
    out = []
    for a, b in chunks:
        while a <= b and tokens[a][2].lower() in _CONNECT:
            a += 1
        while b >= a and tokens[b][2].lower() in _CONNECT:
            b -= 1
        if a <= b:
            out.append((a, b))
    return out


def query_strings(text: str, mentions: Sequence[Mention]) -> tuple[list[str], list[Mention]]:
    """The strings to look up for a note: the mentions' normalised texts, or phrases when none."""
    if not mentions:
        mentions = phrase_mentions(text)
    queries = [normalize_term(m.normalized or m.text) or normalize_term(m.text) for m in mentions]
    return queries, list(mentions)
