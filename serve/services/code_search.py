"""Code search that understands how people write: lay and clinical synonyms and abbreviations
from the NLP lexicon (``nlp/resources/synonyms.json``, ``abbreviations.json``) and the Alphabetic
Index's *see* references when the Index is loaded. "heart attack" finds I21.x through the
lexicon's phrase of the same concepts ("myocardial infarction"); "MI" through its expansion;
"renal failure" through the word map (renal -> kidney).

Each hit says how it was found (``via``): the words typed, or the synonym searched instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from clinicode.kb import KnowledgeBase
from clinicode.kb.views import hit_json
from clinicode.nlp.resources import load_resource

_WORD = re.compile(r"[A-Za-z0-9]+")


def _norm(text: str) -> str:
    return " ".join(w.lower() for w in _WORD.findall(text))


def lexicon_synonyms(query: str) -> list[str]:
    """Other wordings of ``query`` in the lexicon, best first (never ``query`` itself)."""
    q = _norm(query)
    if not q:
        return []
    syn = load_resource("synonyms.json")
    out: list[str] = []
    # a phrase of the lexicon: the other phrases naming the same concepts
    concepts: set[str] = set()
    for ph in syn["phrases"]:
        if _norm(ph["term"]) == q:
            concepts.update(ph.get("concepts", []))
    if concepts:
        for ph in syn["phrases"]:
            if concepts & set(ph.get("concepts", [])):
                out.append(_norm(ph["term"]))
    # an abbreviation: its expansion (exact-case entries only when typed in that case)
    for abbr, entry in load_resource("abbreviations.json")["abbreviations"].items():
        exp = entry.get("expansion")
        if not exp:
            continue
        if (entry.get("case") == "exact" and query.strip() == abbr) or (
            entry.get("case") != "exact" and q == abbr.lower()
        ):
            out.append(_norm(exp))
    # the word map (cardiac -> heart, htn -> hypertension, heartattack -> ...)
    tmap: dict[str, str] = syn["token_map"]
    words = q.split()
    if any(w in tmap and len(w) > 2 for w in words):
        mapped = " ".join(tmap.get(w, w) if len(w) > 2 else w for w in words).split()
        out.append(" ".join(mapped))
    return [s for s in dict.fromkeys(out) if s and s != q]


def index_see(kb: KnowledgeBase, query: str) -> list[str]:
    """The *see* targets of the Index entries a short query names, in either word order
    ("heart attack" -> Attack, heart -> see Infarct, myocardium)."""
    words = _norm(query).split()
    if not 1 <= len(words) <= 3 or kb.index_count() == 0:
        return []
    orders = [words, words[::-1]] if len(words) > 1 else [words]
    out: list[str] = []
    for path in orders:
        entry = kb.index_lookup(path)
        if entry is not None and entry.see:
            out.append(_norm(entry.see.replace(",", " ")))
    return list(dict.fromkeys(out))


def search(
    kb: KnowledgeBase,
    query: str,
    *,
    systems: Sequence[str] | None,
    limit: int,
    billable_only: bool,
) -> list[dict[str, Any]]:
    """The words typed, and their synonyms: hits of a synonym of the whole query first (it
    names what was meant), then the direct hits, each once, ``via`` saying how."""
    versions = kb.versions()
    alternatives = [*index_see(kb, query), *lexicon_synonyms(query)]
    seen: set[tuple[str, str]] = set()
    out: list[dict[str, Any]] = []

    def take(q: str, via: str) -> None:
        for h in kb.search(q, systems=systems, limit=limit, billable_only=billable_only):
            if (h.system, h.code) in seen:
                continue
            seen.add((h.system, h.code))
            out.append({**hit_json(h, versions), "via": via})

    for alt in alternatives:
        take(alt, f"synonym: {alt}")
    take(query, "words")
    if alternatives:
        # synonym hits lead; keep at most `limit`, with room for the direct ones
        syn = [h for h in out if h["via"] != "words"]
        direct = [h for h in out if h["via"] == "words"]
        keep_syn = syn[: max(limit - min(len(direct), limit // 3), 0)]
        out = keep_syn + direct
    return out[:limit]
