"""Feature rows of the learned ranker: one row per (note, candidate code).

A note's candidates are the union of the note classifier's top codes and the candidate
generators' codes (``models.candidates``). Each row joins the note classifier's scores for the
code (and for its 3-character category), the generators' per-code features (lexical / dense
similarity, exact and index match, structure, assertion, section, mention count, position,
attribute agreement), KB facts (billable, specificity, known code) and the training prior.
Features a row lacks are 0 (``has_doc`` / ``has_gen`` say which source proposed the code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
) -> NoteCandidates:
    """Merge the classifier's and the generators' codes of one note into feature dicts.

    ``doc_cat`` maps ``system:category`` to the best (krr, knn) of the classifier's labels in it;
    ``kb_info(system, code) -> (in_kb, billable) | None`` reads the code set.
    """
    out = NoteCandidates()
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
            f[name] = max(f.get(name, value), float(value))
        f["has_gen"] = 1.0
        f["gen_score"] = float(cand.score)
        f["gen_rank_inv"] = 1.0 / (1 + rank)
        out.candidates[key] = cand
    n_cands = float(np.log1p(len(out.keys)))
    prior_logs: dict[float, float] = {}  # np.log10 per distinct prior (most are 0)
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
    return out


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
