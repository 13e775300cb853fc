"""The scoring stages over precomputed inputs: a note's candidate codes with their feature rows,
and the ranker's calibrated scores of them.

:class:`clinicode.models.scoring.ScoringPath` chains these for the engine; training
(``training/rows.py``, ``training/train.py``) calls them with out-of-fold note-classifier
scores, so the ranker learns on exactly the rows it scores when serving.

Importing this module does no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from clinicode.schema import Mention

if TYPE_CHECKING:
    from clinicode.kb import KnowledgeBase
    from clinicode.models.candidates import CandidatePipeline
    from clinicode.models.doc_classifier import DocClassifier
    from clinicode.models.features import NoteCandidates
    from clinicode.models.types import Candidate, Ranker


def phrase_fallback(text: str) -> list[Mention]:
    """Raw-text phrases standing in for mentions when the NLP found none."""
    from clinicode.models.phrases import phrase_mentions

    return phrase_mentions(text)


def evidence_mentions(
    texts: Sequence[str], mentions: Sequence[list[Mention]]
) -> list[list[Mention]]:
    """The mentions candidates are generated from: the NLP's, else the note's phrases."""
    return [m if m else phrase_fallback(t) for t, m in zip(texts, mentions, strict=True)]


def doc_top_lists(
    doc: DocClassifier, texts: Sequence[str], top_n: int
) -> tuple[list[list[tuple[str, float, float]]], list[float]]:
    """The note classifier's top ``top_n`` labels per note as ``(key, krr, knn)``, and each
    note's similarity to its nearest training note."""
    s = doc.scores(list(texts))
    combined = s["krr"] + s["knn"]
    tops, sims = [], []
    for i in range(len(texts)):
        order = np.argsort(-combined[i])[:top_n]
        tops.append(
            [(doc.classes_[j], float(s["krr"][i, j]), float(s["knn"][i, j])) for j in order]
        )
        sims.append(float(s["sim_max"][i]))
    return tops, sims


def note_candidates(
    texts: Sequence[str],
    mentions: Sequence[list[Mention]],
    *,
    doc: DocClassifier | None,
    candidates: CandidatePipeline | None,
    prior: dict[str, float],
    kb: KnowledgeBase,
    systems: Sequence[str],
    doc_top_n: int = 60,
    max_generated: int = 120,
    doc_top: Sequence[Sequence[tuple[str, float, float]]] | None = None,
    doc_sims: Sequence[float] | None = None,
    generated: Sequence[Sequence[Candidate]] | None = None,
    needed: Sequence[str] | None = None,
) -> list[NoteCandidates]:
    """Feature dicts of every candidate code of each note (``models.features.NoteCandidates``).

    ``doc_top``/``doc_sims``/``generated`` may be given precomputed (training uses out-of-fold
    note-classifier scores); otherwise they come from ``doc`` and ``candidates``. ``needed``:
    the features the ranker reads (``features.collect``); None, all of them.
    """
    from clinicode.models.features import category_scores, collect, local_title_needed

    n = len(texts)
    if doc_top is None:
        if doc is not None:
            doc_top, doc_sims = doc_top_lists(doc, texts, doc_top_n)
        else:
            doc_top, doc_sims = [[] for _ in range(n)], [0.0] * n
    if generated is None:
        generated = [
            candidates.generate(t, list(m), max_candidates=max_generated)
            if candidates is not None
            else []
            for t, m in zip(texts, mentions, strict=True)
        ]
    idx = kb.code_index()
    local = local_title_needed(needed)
    out = []
    for i in range(n):
        spans = (
            [(m.start, m.end) for m in candidates.mentions_for(texts[i], list(mentions[i]))]
            if candidates is not None and local
            else []
        )
        top = list(doc_top[i])
        out.append(
            collect(
                top,
                category_scores(top),
                float(doc_sims[i]) if doc_sims is not None else 0.0,
                generated[i],
                prior=prior,
                kb_info=idx.info,
                systems=systems,
                note_text=texts[i],
                title_of=idx.title,
                mention_spans=spans,
                needed=needed,
            )
        )
    return out


def score_candidates(
    ranker: Ranker, feature_names: Sequence[str], notes: Sequence[NoteCandidates]
) -> list[np.ndarray]:
    """Calibrated probabilities for each note's candidate keys (one array per note)."""
    from clinicode.models.features import vectorize

    rows = [f for nc in notes for f in nc.feats]
    if not rows:
        return [np.zeros(0) for _ in notes]
    probs = ranker.predict_proba(vectorize(rows, feature_names))[:, 1]
    out, pos = [], 0
    for nc in notes:
        out.append(probs[pos : pos + len(nc.keys)])
        pos += len(nc.keys)
    return out
