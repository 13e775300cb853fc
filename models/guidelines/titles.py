"""What a code title needs a note to state, as encoder word keys: the words a title, an
inclusion term or an Index path line needs (its absent and "unspecified" parts, optional and
nonessential words and acronyms aside), what a note's words imply, and residual titles. Read by
the documented-code rules and the rules that compare what codes document. Tables:
``documented`` in the guideline data."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from clinicode.models.encoder.words import absent_keys, keys, split_absent

# the syntax of titles and Index lines (parentheses, acronyms, "(see ...)"), no clinical words
_PAREN = re.compile(r"\(([^()]*)\)")
_ACRONYM = re.compile(r"^[A-Z][A-Z0-9-]+$")
_SEE = re.compile(r"\(see [^)]*\)")
_REFERRED = re.compile(r"\[[^\]]*\]")


@lru_cache(maxsize=8192)
def title_needs(title: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keys a note must state for ``title``: ``(all, alternative)`` where ``alternative``
    (possibly empty) is an acronym in parentheses that stands for the whole title ("(NSTEMI)");
    other parenthesised words are nonessential and need no documentation."""
    alt = _acronym_form(title)
    low = _PAREN.sub(" ", title.lower())
    first, *rest = low.split(",")
    # ", unspecified organism" needs nothing; ", unspecified with withdrawal delirium" needs
    # what follows its "with"
    unspec = _unspecified_part()
    low = " ".join(_absent_dropped(p) for p in [first, *(unspec.sub(" ", p) for p in rest)])
    optional = _optional_keys()
    need = tuple(k for k in dict.fromkeys(keys(low)) if k not in optional)
    implied = {k for k, by in _implied_keys().items() if by & set(need)}
    return tuple(k for k in need if k not in implied), alt


@lru_cache(maxsize=1)
def _implied_keys() -> dict[str, frozenset[str]]:
    """Key of a title word -> keys of the words that imply it (``documented.implied_words``)."""
    out: dict[str, frozenset[str]] = {}
    for word, by in documented_cfg().get("implied_words", {}).items():
        for k in keys(str(word)):
            out[k] = frozenset(x for w in by for x in keys(str(w)))
    return out


@lru_cache(maxsize=1)
def _unspecified_part() -> re.Pattern[str]:
    """A title part's "unspecified ..." up to its "with" (``documented.unspecified_part``)."""
    return re.compile(documented_cfg()["unspecified_part"])


def _acronym_form(title: str) -> tuple[str, ...]:
    """The keys of ``title`` written with its parenthesised acronym: the acronym, then the
    title words it does not abbreviate (*Subsequent ST elevation (STEMI) myocardial infarction
    of inferior wall*: "STEMI" stands for "ST elevation myocardial infarction" only, so
    "subsequent" and "inferior wall" are still needed); empty without an acronym. The words an
    acronym stands for are the run of title words around it whose initials (all letters of a
    capitalised word: "ST") spell it; where none does, it stands for the whole title."""
    for m in _PAREN.finditer(title):
        acronym = m.group(1).strip()
        if not _ACRONYM.match(acronym):
            continue
        before, after = title[: m.start()].split(), title[m.end() :].split()
        words, at = before + after, len(before)
        target = acronym.replace("-", "").upper()
        rest: list[str] = []
        for i in range(at, -1, -1):
            j = next(
                (j for j in range(at, len(words) + 1) if _initials(words[i:j]) == target), None
            )
            if j is not None:
                rest = words[:i] + words[j:]
                break
        return (*keys(acronym), *(k for k in keys(" ".join(rest)) if k not in keys(acronym)))
    return ()


def _initials(words: list[str]) -> str:
    """What a run of title words spells as an acronym ("Non-ST elevation" -> "NSTE")."""
    out = []
    for w in words:
        for part in w.split("-"):
            out.append(part if part.isupper() else part[:1].upper())
    return "".join(out)


def _absent_dropped(part: str) -> str:
    """A title part without what it says is absent (``encoder.words.split_absent``)."""
    return " ".join(split_absent(part)[0])


@lru_cache(maxsize=8192)
def title_absent(title: str) -> frozenset[str]:
    """The keys of what ``title`` says is absent (*Spondylosis without myelopathy or
    radiculopathy, ...*: myelopathy, radiculopathy): a note that states one of them does not
    document the code. A word the title also needs is not among them (*Right tubal pregnancy
    without intrauterine pregnancy*: intrauterine)."""
    return absent_keys(_PAREN.sub(" ", title)) - set(title_needs(title)[0])


@lru_cache(maxsize=1)
def documented_cfg() -> dict[str, Any]:
    from .data import load_rules

    return dict(load_rules()["documented"])


@lru_cache(maxsize=1)
def _index_connectors() -> frozenset[str]:
    """The Index's subterm connectors, no words of a condition (``documented.index_connectors``)."""
    return frozenset(str(w) for w in documented_cfg()["index_connectors"])


@lru_cache(maxsize=1)
def _optional_keys() -> frozenset[str]:
    """Keys of the title words a note need not state (``documented.optional_words``)."""
    return frozenset(k for w in documented_cfg()["optional_words"] for k in keys(str(w)))


@lru_cache(maxsize=1)
def implied_keys() -> dict[str, tuple[str, ...]]:
    """Note word key -> title keys it states ("leg" states "lower limb")."""
    out: dict[str, tuple[str, ...]] = {}
    for word, title_words in documented_cfg()["implies"].items():
        for k in keys(str(word)):
            out[k] = tuple(k2 for w in title_words for k2 in keys(str(w)))
    return out


def stated_keys(text: str) -> set[str]:
    """The keys a text states, with what its words imply ("leg": "lower", "limb")."""
    out = set(keys(text))
    implies = implied_keys()
    for k in list(out):
        out.update(implies.get(k, ()))
    return out


def specific_stated(title: str, category_title: str, stated: set[str]) -> int:
    """How many of ``title``'s words beyond its category's title the ``stated`` keys name
    ("oropharyngeal" of *Dysphagia, oropharyngeal phase* under *Dysphagia*)."""
    need, _ = title_needs(title)
    return len({k for k in need if k in stated} - set(keys(category_title)))


def undocumented(title: str, stated: set[str]) -> int:
    """How many of ``title``'s needed words the ``stated`` keys lack."""
    need, _ = title_needs(title)
    return len([k for k in need if k not in stated])


@lru_cache(maxsize=65536)
def residual(title: str) -> bool:
    """Whether ``title`` names a residual category ("Other ...", "not elsewhere classified")."""
    return _residual_rx().search(title) is not None


@lru_cache(maxsize=1)
def _residual_rx() -> re.Pattern[str]:
    return re.compile(documented_cfg()["residual_title"], re.I)


@lru_cache(maxsize=8192)
def title_keys(title: str) -> frozenset[str]:
    return frozenset(keys(title))


@lru_cache(maxsize=16384)
def index_term(line: str) -> str:
    """The words of an encoder's Index path line ("Index: Influenza, with, pneumonia -> J11.00"
    -> "Influenza pneumonia"): its entries less "see" references, connectors and the entries
    a subterm's reference led to ("Varicose, vein, [Varix], leg": the note says "varicose
    veins of the leg", not "varix")."""
    entries = _REFERRED.sub("", _SEE.sub("", line[len("Index: ") : line.index(" -> ")]))
    return " ".join(p for p in entries.split(",") if p.strip() not in _index_connectors())


@lru_cache(maxsize=8192)
def lone_head(title: str) -> frozenset[str]:
    """The optional head words (``optional_words``) a title needs after all when only one other
    word is left: a lone modifier is no diagnosis ("endocrine" of *Endocrine disorder,
    unspecified*), while *Type 2 diabetes mellitus* needs no "mellitus"."""
    optional = _optional_keys()
    low = _PAREN.sub(" ", title.lower()).split(",")[0]
    return frozenset(k for k in keys(low) if k in optional)
