"""Training rows: one feature row per (note, candidate code), labeled by the note's gold codes.

The trained pack (``training.train``) and the default pack (``training.default_pack``) build
their ranker's rows here, through the scoring path's own candidate stage
(:func:`clinicode.models.candidate_rows.note_candidates`), so the ranker learns on exactly the
rows it scores at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from clinicode.models.candidate_rows import note_candidates
from clinicode.schema import Mention

if TYPE_CHECKING:
    from clinicode.kb import KnowledgeBase

DocTop = Sequence[tuple[str, float, float]]


@dataclass
class Rows:
    """Feature rows of many notes, with their code keys, labels and note index (group)."""

    feats: list[dict[str, float]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    # rows labeled 0 because a coder rejected the code (an explicit negative), and candidates
    # left out because a coder saw them proposed and decided nothing (no label either way)
    explicit_negatives: int = 0
    unlabeled_dropped: int = 0
    base_rows: int = 0  # rows of the base pack's own training notes, after the new notes' rows

    def rankings(
        self, note_ids: Sequence[str], scores: np.ndarray
    ) -> dict[str, list[tuple[str, float]]]:
        """``{note id: [(key, score), ...]}`` ranked by ``scores`` (one per row), e.g. the
        ranker's out-of-fold calibrated scores."""
        garr = np.asarray(self.groups)
        out: dict[str, list[tuple[str, float]]] = {}
        for i, note_id in enumerate(note_ids):
            idx = np.flatnonzero(garr == i)
            out[note_id] = sorted(
                ((self.keys[j], float(scores[j])) for j in idx), key=lambda kv: -kv[1]
            )
        return out


def build_rows(
    texts: Sequence[str],
    mentions: Sequence[list[Mention]],
    generated: Sequence[Sequence[Any]],
    gold: Sequence[set[str]],
    *,
    candidates: Any,
    kb: KnowledgeBase,
    systems: Sequence[str],
    priors: Sequence[dict[str, float]],
    doc_tops: Sequence[DocTop],
    doc_sims: Sequence[float],
    rejected: Sequence[set[str]] | None = None,
    unreviewed: Sequence[set[str]] | None = None,
) -> Rows:
    """One row per candidate of each note, labeled 1 when its key is in the note's ``gold``.

    Per note: its ``priors[i]``, note-classifier ``doc_tops[i]`` / ``doc_sims[i]`` (out of fold
    in training) and candidates ``generated[i]``. From a coder's review, ``rejected[i]`` keys
    are negatives (label 0, counted in ``explicit_negatives``) even where the gold set holds
    them, and ``unreviewed[i]`` keys (proposed, never decided on) get no row at all: they are
    missing labels, not negatives. A code both rejected and kept cannot come from one review;
    the rejection wins.
    """
    rows = Rows()
    for i, text in enumerate(texts):
        nc = note_candidates(
            [text],
            [mentions[i]],
            doc=None,
            candidates=candidates,
            prior=priors[i],
            kb=kb,
            systems=systems,
            doc_top=[doc_tops[i]],
            doc_sims=[doc_sims[i]],
            generated=[generated[i]],
        )[0]
        neg = rejected[i] if rejected is not None else set()
        skip = (unreviewed[i] if unreviewed is not None else set()) - neg - gold[i]
        for feats, key in zip(nc.feats, nc.keys, strict=True):
            if key in skip:
                rows.unlabeled_dropped += 1
                continue
            rows.feats.append(feats)
            rows.keys.append(key)
            rows.y.append(int(key in gold[i] and key not in neg))
            rows.groups.append(i)
            rows.explicit_negatives += int(key in neg)
    return rows
