"""Feature rows of the learned ranker: one row per (note, candidate code).

A note's candidates are the union of the note classifier's top codes and the candidate
generators' codes (``models.candidates``). Each row joins the note classifier's scores for the
code (and for its 3-character category), the generators' per-code features (lexical / dense
similarity, exact and index match, structure, assertion, section, mention count, position,
attribute agreement), KB facts (billable, specificity, known code) and the training prior.
Features a row lacks are 0 (``has_doc`` / ``has_gen`` say which source proposed the code).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from clinicode.models.resources import load_resource
from clinicode.models.types import Candidate

BASE_FEATURES: tuple[str, ...] = (
    "doc_krr",
    "doc_knn",
    "doc_rank_inv",
    "doc_cat_krr",
    "doc_cat_knn",
    "doc_sim_max",
    "has_doc",
    "has_gen",
    "gen_score",
    "gen_rank_inv",
    "prior",
    "prior_log",
    "in_kb",
    "billable",
    "specificity",
    "n_candidates_log",
    "is_dx",
)


_WORD = re.compile(r"[a-z][a-z0-9]+")
_STEM_LEN = 6


def _stem(word: str) -> str:
    """Crude stem: lower-case prefix (``hematuria``/``hematuric``, ``kidney``/``kidneys``)."""
    return word[:_STEM_LEN]


def note_stems(text: str) -> frozenset[str]:
    """The stems of every word of a note (for :func:`title_features`)."""
    return frozenset(_stem(w) for w in _WORD.findall(text.lower()))


@lru_cache(maxsize=1)
def _title_filler() -> frozenset[str]:
    """Words of code titles that say nothing a note would state ("Other specified disorders
    of ..."): ``title_filler`` of ``models/resources/terms.yaml``."""
    return frozenset(str(w) for w in load_resource("terms.yaml")["title_filler"])


@lru_cache(maxsize=200_000)
def _title_parts(title: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(stems the title needs the note to state, stems it excludes: the words after
    "without"), filler words dropped."""
    filler = _title_filler()
    low = title.lower()
    _, _, excluded = low.partition(" without ")
    excluded = excluded.split(",", 1)[0]
    neg = tuple(_stem(w) for w in _WORD.findall(excluded) if w not in filler)
    needed = tuple(
        dict.fromkeys(
            st for w in _WORD.findall(low) if w not in filler and (st := _stem(w)) not in neg
        )
    )
    return needed, neg


# The row features of :func:`title_features`; ``collect`` adds each again with ``LOCAL_PREFIX``.
TITLE_FEATURES = ("title_cover", "title_missing", "title_excluded_stated")
LOCAL_PREFIX = "local_"


def title_features(title: str, stems: frozenset[str]) -> dict[str, float]:
    """How much of a code's title the note states (``title_cover``: share of the title's content
    words found in the note; ``title_missing``: how many are not) and whether the note states
    what the title excludes (``title_excluded_stated``: "... without hematuria" in a note that
    says hematuria)."""
    needed, neg = _title_parts(title)
    found = sum(1 for w in needed if w in stems)
    cover, missing, excluded = TITLE_FEATURES
    return {
        cover: found / len(needed) if needed else 0.0,
        missing: float(len(needed) - found),
        excluded: float(any(w in stems for w in neg)),
    }


_LOCAL_WINDOW = 60  # characters either side of a mention


def _local_stems(
    text: str,
    spans: Sequence[tuple[int, int]],
    ids: Sequence[int],
    cache: dict[tuple[int, ...], frozenset[str]],
) -> frozenset[str]:
    key = tuple(sorted(ids))
    hit = cache.get(key)
    if hit is None:
        parts = [
            text[max(0, spans[i][0] - _LOCAL_WINDOW) : spans[i][1] + _LOCAL_WINDOW]
            for i in key
            if 0 <= i < len(spans)
        ]
        hit = cache[key] = note_stems(" ".join(parts))
    return hit


def code_key(system: str, code: str) -> str:
    return f"{system}:{code}"


def split_key(key: str) -> tuple[str, str]:
    system, code = key.split(":", 1)
    return system, code


@dataclass
class NoteCandidates:
    """All candidate codes of one note with their feature dicts (before vectorising)."""

    keys: list[str] = field(default_factory=list)
    feats: list[dict[str, float]] = field(default_factory=list)
    candidates: dict[str, Candidate] = field(default_factory=dict)


def collect(
    doc_top: Sequence[tuple[str, float, float]],
    doc_cat: dict[str, tuple[float, float]],
    sim_max: float,
    generated: Sequence[Candidate],
    *,
    prior: dict[str, float],
    kb_info: Any,
    systems: Sequence[str],
    note_text: str | None = None,
    title_of: Callable[[str, str], str | None] | None = None,
    mention_spans: Sequence[tuple[int, int]] = (),
    needed: Collection[str] | None = None,
) -> NoteCandidates:
    """Merge the classifier's and the generators' codes of one note into feature dicts.

    ``doc_cat`` maps ``system:category`` to the best (krr, knn) of the classifier's labels in it;
    ``kb_info(system, code) -> (in_kb, billable) | None`` reads the code set; with ``note_text``
    and ``title_of(system, code) -> title`` each row also gets :func:`title_features`, over the
    whole note and (``local_*``, with ``mention_spans``: the spans that ``Candidate.mention_ids``
    index) over the text around the candidate's own mentions.

    ``needed`` (the pack's feature list, at inference) limits the generator and title features
    to those a ranker reads: the others change no score and cost a note some milliseconds
    (the default ranker reads no title feature). ``None`` (training) keeps every feature. The
    base features are always there (``has_doc``/``has_gen`` also explain a code).
    """
    out = NoteCandidates()
    keep = None if needed is None else frozenset(needed)
    want_whole, want_local = _title_needs(keep)
    index: dict[str, int] = {}

    def row(key: str) -> dict[str, float]:
        if key not in index:
            index[key] = len(out.keys)
            out.keys.append(key)
            out.feats.append({})
        return out.feats[index[key]]

    for rank, (key, krr, knn) in enumerate(doc_top):
        if split_key(key)[0] not in systems:
            continue
        f = row(key)
        f.update(doc_krr=krr, doc_knn=knn, doc_rank_inv=1.0 / (1 + rank), has_doc=1.0)
    gens = [c for c in generated if c.system in systems]
    for rank, cand in enumerate(gens):
        key = code_key(cand.system, cand.code)
        f = row(key)
        for name, value in cand.features.items():
            if keep is None or name in keep:
                f[name] = max(f.get(name, value), float(value))
        f["has_gen"] = 1.0
        f["gen_score"] = float(cand.score)
        f["gen_rank_inv"] = 1.0 / (1 + rank)
        out.candidates[key] = cand
    n_cands = float(np.log1p(len(out.keys)))
    prior_logs: dict[float, float] = {}  # np.log10 per distinct prior (most are 0)
    stems = (
        note_stems(note_text)
        if (want_whole or want_local) and note_text is not None and title_of is not None
        else None
    )
    local_cache: dict[tuple[int, ...], frozenset[str]] = {}
    for key, f in zip(out.keys, out.feats, strict=True):
        system, code = split_key(key)
        cat = doc_cat.get(f"{system}:{code[:3]}")
        if cat is not None:
            f["doc_cat_krr"], f["doc_cat_knn"] = cat
        f["doc_sim_max"] = sim_max
        p = prior.get(key, 0.0)
        f["prior"] = p
        lg = prior_logs.get(p)
        if lg is None:
            lg = prior_logs[p] = float(np.log10(p + 1e-4))
        f["prior_log"] = lg
        info = kb_info(system, code)
        if info is not None:
            f["in_kb"], f["billable"] = 1.0, float(info[1])
        f["specificity"] = float(len(code.replace(".", "")))
        f["n_candidates_log"] = n_cands
        f["is_dx"] = float(system == "ICD-10-CM")
        if stems is not None and title_of is not None:
            title = title_of(system, code)
            if title:
                if want_whole:
                    f.update(title_features(title, stems))
                cand = out.candidates.get(key)
                if want_local and cand is not None and mention_spans and note_text is not None:
                    local = _local_stems(note_text, mention_spans, cand.mention_ids, local_cache)
                    for name, value in title_features(title, local).items():
                        f[LOCAL_PREFIX + name] = value
    return out


def _title_needs(keep: frozenset[str] | None) -> tuple[bool, bool]:
    """Whether rows need the whole-note and the local title features."""
    if keep is None:
        return True, True
    return (
        any(n in keep for n in TITLE_FEATURES),
        any(LOCAL_PREFIX + n in keep for n in TITLE_FEATURES),
    )


def local_title_needed(needed: Collection[str] | None) -> bool:
    """Whether rows limited to ``needed`` use the text around each candidate's mentions."""
    return _title_needs(None if needed is None else frozenset(needed))[1]


def category_scores(doc_top: Sequence[tuple[str, float, float]]) -> dict[str, tuple[float, float]]:
    """Best (krr, knn) of the classifier's labels per ``system:category`` (first 3 characters)."""
    out: dict[str, tuple[float, float]] = {}
    for key, krr, knn in doc_top:
        system, code = split_key(key)
        cat = f"{system}:{code[:3]}"
        prev = out.get(cat)
        out[cat] = (krr, knn) if prev is None else (max(prev[0], krr), max(prev[1], knn))
    return out


def feature_names(
    rows: Sequence[dict[str, float]], extra_prefixes: Sequence[str] = ()
) -> list[str]:
    """The ranker's feature list: the base features, then every generator feature seen."""
    seen: set[str] = set()
    for f in rows:
        seen.update(f)
    extra = sorted(
        n
        for n in seen - set(BASE_FEATURES)
        if not n.startswith(("section_",)) or n in extra_prefixes
    )
    return [*BASE_FEATURES, *extra]


def vectorize(rows: Sequence[dict[str, float]], names: Sequence[str]) -> np.ndarray:
    X = np.zeros((len(rows), len(names)), dtype=np.float32)
    col = {n: i for i, n in enumerate(names)}
    # one fancy-index assignment instead of a numpy scalar write per value (same float32 values)
    flat: list[int] = []
    values: list[float] = []
    width = len(names)
    for i, f in enumerate(rows):
        base = i * width
        for n, v in f.items():
            j = col.get(n)
            if j is not None:
                flat.append(base + j)
                values.append(v)
    if flat:
        X.reshape(-1)[flat] = np.asarray(values, dtype=np.float64)
    return X
