"""The mention lexicon: bag-of-stems keys built from the KB's terms and our synonyms.

KB titles are long ("Type 2 diabetes mellitus with diabetic chronic kidney disease") while notes
say "DM2 with CKD". Each term therefore yields several phrases: the whole term, its part before
the first comma (the qualifiers after it are sites, laterality, encounter), and the components
around "with", "without", "due to" ... ("type 2 diabetes mellitus", "diabetic chronic kidney
disease"). Each phrase becomes a key: the sorted set of its stems without function words, so
that word order and inflections do not matter ("femur fracture" = "fracture of femur").

A key maps to a kind and its concepts ("ICD-10-CM:E11.22"), best first: exact terms before
first parts before components, then shorter (more general) codes. Building takes a while, so
the result is cached as JSON under the data dir, keyed by the KB versions and the resource hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from clinicode.nlp.resources import load_resource, resources_hash
from clinicode.nlp.text import Normalizer, get_normalizer

log = logging.getLogger(__name__)

LEXICON_FORMAT = "9"
# Term sources that name a code (the drug table and external-cause index do not name diagnoses).
TERM_SOURCES: tuple[str, ...] = (
    "title",
    "inclusion",
    "index",
    "description",
    "synonym",
    "neoplasm",
)
KIND_CODES: dict[str, str] = {
    "c": "condition",
    "f": "finding",
    "p": "procedure",
    "m": "medication",
    "o": "other",
}
_KIND_LETTER = {v: k for k, v in KIND_CODES.items()}

_BRACKETS = re.compile(r"\[[^\]]*\]")
_PARENS = re.compile(r"\(([^)]*)\)")
_NOISE = re.compile(
    r"\b(?:not elsewhere classified|in diseases classified elsewhere|classified elsewhere|"
    r"not otherwise specified|other specified|unspecified|other|nec|nos)\b",
    re.IGNORECASE,
)
# "X with Y": both sides name conditions. "X due to Y": only X does (Y is often a cause such
# as "cement" or "drugs"), so the text after a cause connector is cut off before splitting.
_COMPONENT_SPLIT = re.compile(r"\b(?:with|without|associated with|and other)\b", re.IGNORECASE)
_CAUSE_CUT = re.compile(
    r"\b(?:due to|secondary to|following|complicating|resulting in|causing|caused by|"
    r"induced by|in diseases)\b.*$",
    re.IGNORECASE,
)

PRIORITY_EXACT, PRIORITY_FIRST, PRIORITY_COMPONENT = 0, 1, 2
MAIN_TERM_SHARE = 0.6


def code_kind(system: str, code: str) -> str:
    """Mention kind implied by a code: R codes are findings, Z/V-Y are other, PCS/CPT procedures."""
    c = code.upper()
    if system == "ICD-10-CM":
        if c.startswith("R"):
            return "finding"
        if c[:1] in ("Z", "V", "W", "X", "Y"):
            return "other"
        return "condition"
    if system == "HCPCS" and c.startswith("J"):
        return "medication"
    return "procedure"


_SIGNED = re.compile(r"\b([A-Z][A-Z0-9]{0,5})([+-])(?=[\s,;)]|$)")


def signed_words(text: str) -> str:
    """A signed acronym says its sign in words ("PR+" -> "PR positive", "HR- with HER2-"): the
    sign is what makes it the code, and without it the bare letters would name the code ("HR
    88", "PR interval", "seen in the ER")."""
    return _SIGNED.sub(
        lambda m: f"{m.group(1)} {'positive' if m.group(2) == '+' else 'negative'}", text
    )


def _clean(text: str) -> str:
    text = _NOISE.sub(" ", _BRACKETS.sub(" ", text))
    return re.sub(r"\s+", " ", text).strip(" ,;:-")


INDEX_SOURCES: frozenset[str] = frozenset({"index", "neoplasm", "eindex"})


def index_phrases(text: str) -> list[tuple[str, int]]:
    """Phrases of an Alphabetic Index path ("Calculus, bile duct, with, cholangitis"): the whole
    path and the main term with each tail of the path (intermediate modifiers left out:
    "Diabetes, diabetic, with, nephropathy" -> "Diabetes with nephropathy")."""
    base = _PARENS.sub(" ", text)
    parts = [p.strip() for p in base.split(",") if p.strip()]
    out: dict[str, int] = {}

    def add(phrase: str, prio: int) -> None:
        phrase = _clean(phrase)
        if phrase and out.get(phrase, 99) > prio:
            out[phrase] = prio

    if not parts:
        return []
    add(" ".join(parts), PRIORITY_EXACT)
    with_modifiers = _PARENS.sub(r" \1 ", text).replace(",", " ")
    if with_modifiers != base.replace(",", " "):
        add(with_modifiers, PRIORITY_FIRST)
    # The main term alone names only its own code (a one-part path), never a sub-entry's:
    # "Cord, around neck" must not make every "cord" a mention.
    for j in range(2, len(parts)):
        add(" ".join([parts[0], *parts[j:]]), PRIORITY_FIRST)
    return list(out.items())


def term_phrases(text: str, source: str = "title") -> list[tuple[str, int]]:
    """The phrases one KB term yields, with their priority (lower is better)."""
    if source in INDEX_SOURCES:
        return index_phrases(text)
    text = signed_words(text)
    variants = {_PARENS.sub(" ", text), _PARENS.sub(r" \1 ", text)}
    out: dict[str, int] = {}

    def add(phrase: str, prio: int) -> None:
        phrase = _clean(phrase)
        if phrase and out.get(phrase, 99) > prio:
            out[phrase] = prio

    for v in variants:
        add(v.replace(",", " "), PRIORITY_EXACT)
        parts = [p for p in v.split(",") if p.strip()]
        if not parts:
            continue
        first = parts[0]
        add(first, PRIORITY_FIRST)
        for whole in (first, v.replace(",", " ")):
            left = _CAUSE_CUT.sub("", whole)
            pieces = [p for p in _COMPONENT_SPLIT.split(left) if p.strip()]
            if len(pieces) > 1 or left != whole:
                for p in pieces:
                    add(p, PRIORITY_COMPONENT)
    return list(out.items())


@dataclass
class LexEntry:
    kind: str
    concepts: tuple[str, ...]
    priority: int


_SYSTEM_ALIAS = {"ICD-10-CM": "C", "ICD-10-PCS": "P", "CPT": "T", "HCPCS": "H"}
_ALIAS_SYSTEM = {v: k for k, v in _SYSTEM_ALIAS.items()}


def _pack_concept(concept: str) -> str:
    system, _, code = concept.partition(":")
    alias = _SYSTEM_ALIAS.get(system)
    return f"{alias}:{code}" if alias else concept


def _unpack_concept(packed: str) -> str:
    alias, _, code = packed.partition(":")
    system = _ALIAS_SYSTEM.get(alias)
    return f"{system}:{code}" if system else packed


class Lexicon:
    """``key -> LexEntry`` for bag-of-stems keys, plus the longest key size.

    Values are kept packed as one string each (``"c|0|C:E11 C:E11.9"``): the table holds
    hundreds of thousands of keys once the Alphabetic Index is imported.
    """

    def __init__(self, entries: dict[str, str], max_words: int) -> None:
        self._entries = entries
        self.max_words = max_words
        # Every stem that occurs in some key: a window holding any other stem cannot match.
        self.vocab: frozenset[str] = frozenset(w for key in entries for w in key.split())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> LexEntry | None:
        raw = self._entries.get(key)
        if raw is None:
            return None
        kind, prio, concepts = raw.split("|", 2)
        return LexEntry(
            KIND_CODES[kind],
            tuple(_unpack_concept(c) for c in concepts.split()) if concepts else (),
            int(prio),
        )


def _kb_fingerprint(kb: Any) -> str:
    parts = [
        f"{s.system}|{s.version}|{s.source_hash}|{s.imported_at}|{s.n_codes}|{sorted(s.extra.items())}"
        for s in kb.systems()
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def build_entries(
    terms: Iterable[tuple[str, str, str, str]],
    skip_codes: set[tuple[str, str]],
    *,
    max_concepts: int = 30,
    normalizer: Normalizer | None = None,
) -> tuple[dict[str, str], int]:
    """Build the key table from ``(system, code, text, source)`` terms and the synonyms file."""
    norm = normalizer or get_normalizer()
    acc: dict[str, dict[str, tuple[int, int]]] = {}  # key -> concept -> (prio, len)
    kinds: dict[str, dict[str, int]] = {}
    max_words = 1
    by_main: dict[str, list[tuple[str, str]]] = {}

    def add(key_stems: list[str], concept: str, kind: str, prio: int, force: bool = False) -> None:
        nonlocal max_words
        bag = set(key_stems)
        if not bag or len(bag) > 12 or (not force and norm.is_generic(bag)):
            return
        key = " ".join(sorted(bag))
        slot = acc.setdefault(key, {})
        prev = slot.get(concept)
        rank = (prio, len(concept))
        if prev is None or rank < prev:
            slot[concept] = rank
        kd = kinds.setdefault(key, {})
        kd[kind] = min(kd.get(kind, 9), prio)
        max_words = max(max_words, len(key_stems))

    for system, code, text, source in terms:
        if (system, code) in skip_codes:
            continue
        concept = f"{system}:{code}"
        kind = code_kind(system, code)
        for phrase, prio in term_phrases(text, source):
            add(norm.stems(phrase), concept, kind, prio)
        if source in INDEX_SOURCES and "," in text:
            main = _clean(_PARENS.sub(" ", text).split(",")[0])
            by_main.setdefault(main, []).append((concept, kind))

    # An index main term alone ("Paraparesis") names a condition when its sub-entries mostly
    # share one category; a main term whose sub-entries scatter ("Cord", "Rest") does not.
    for main, coded in by_main.items():
        cats: dict[str, int] = {}
        for concept, _ in coded:
            cat = concept.split(".")[0]
            cats[cat] = cats.get(cat, 0) + 1
        top, n_top = max(cats.items(), key=lambda kv: kv[1])
        if len(coded) >= 2 and n_top / len(coded) >= MAIN_TERM_SHARE:
            for concept, kind in coded:
                if concept.split(".")[0] == top:
                    add(norm.stems(main), concept, kind, PRIORITY_COMPONENT)

    for ph in load_resource("synonyms.json")["phrases"]:
        stems = norm.stems(ph["term"])
        concepts = ph.get("concepts") or []
        for i, c in enumerate(concepts):
            add(stems, c, ph["kind"], -10 + i, force=True)  # curated: first, in file order
        if not concepts:
            add(stems, "", ph["kind"], -10, force=True)
            kinds[norm.key(stems)] = {ph["kind"]: -100}

    entries: dict[str, str] = {}
    for key, concepts in acc.items():
        ranked = sorted((c for c in concepts if c), key=lambda c: (concepts[c], c))
        best_prio = min(p for p, _ in concepts.values())
        kd = kinds[key]
        kind = min(kd, key=lambda k: (kd[k], k != "condition"))
        packed = " ".join(_pack_concept(c) for c in ranked[:max_concepts])
        entries[key] = f"{_KIND_LETTER[kind]}|{best_prio}|{packed}"
    return entries, max_words


def _iter_kb_terms(kb: Any) -> tuple[list[tuple[str, str, str, str]], set[tuple[str, str]]]:
    skip: set[tuple[str, str]] = set()
    for info in kb.systems():
        for rec in kb.iter_codes(info.system):
            if rec.kind == "chapter":
                skip.add((rec.system, rec.code))
    terms = [(t.system, t.code, t.text, t.source) for t in kb.iter_terms(sources=TERM_SOURCES)]
    return terms, skip


def lexicon_path(kb: Any, cache_dir: Path, max_concepts: int) -> Path:
    tag = hashlib.sha256(
        f"{LEXICON_FORMAT}|{_kb_fingerprint(kb)}|{resources_hash()}|{max_concepts}".encode()
    ).hexdigest()[:20]
    return cache_dir / f"lexicon-{tag}.json"


def ensure_lexicon(kb: Any, cache_dir: Path, *, max_concepts: int = 30) -> Path:
    """The path of the cached lexicon for ``kb``, building it first when missing, or when its
    seal (:mod:`clinicode.integrity`) is missing or wrong: an edited cache is never loaded."""
    from clinicode.integrity import cache_problem

    path = lexicon_path(kb, cache_dir, max_concepts)
    if path.exists():
        problem = cache_problem(path)
        if problem is None:
            return path
        log.warning("the cached mention lexicon %s %s; rebuilding it", path.name, problem)
        load_lexicon.cache_clear()
    log.info("building the mention lexicon (once per KB version) -> %s", path)
    terms, skip = _iter_kb_terms(kb)
    entries, max_words = build_entries(terms, skip, max_concepts=max_concepts)
    write_lexicon(entries, max_words, path)
    return path


def write_lexicon(entries: dict[str, str], max_words: int, path: Path) -> Path:
    """Write a lexicon file atomically, sealed (what :func:`load_lexicon` reads)."""
    from clinicode.integrity import seal_cache

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": LEXICON_FORMAT, "max_words": max_words, "entries": entries}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(payload, f, separators=(",", ":"))
    os.replace(tmp, path)
    seal_cache(path)
    return path


@lru_cache(maxsize=4)
def load_lexicon(path: str) -> Lexicon:
    """Load a lexicon file written by :func:`write_lexicon` (cached per path); refuses one
    whose seal is missing or wrong."""
    from clinicode.errors import ClinicodeError
    from clinicode.integrity import cache_problem

    problem = cache_problem(Path(path))
    if problem is not None:
        raise ClinicodeError(
            f"the mention lexicon {Path(path).name} {problem}; refusing to load it (delete it: "
            "it is rebuilt from the knowledge base)"
        )
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("format") != LEXICON_FORMAT:
        raise ValueError(f"lexicon {path} has format {data.get('format')}, need {LEXICON_FORMAT}")
    return Lexicon(data["entries"], int(data["max_words"]))
