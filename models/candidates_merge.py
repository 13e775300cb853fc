"""Merging the generators' candidates of one note into one ranked, capped list.

The pre-ranking score orders and caps the candidates before the learned ranker sees them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import mul

import numpy as np

from clinicode.models.types import Candidate
from clinicode.schema import ASSERTIONS, Mention

# Weights of the pre-ranking score (orders and caps the candidates before the learned ranker
# sees them): logistic regression of "is a gold code" on the merged features, fitted on the
# first 120 of 200 CodiEsp *train* notes (phrases, KB with the 2025 Alphabetic Index and
# Neoplasm table imported), never on dev. Reproduce with
# ``bench/bench_candidates.py --split train --limit 200 --fit-weights``.
SCORE_WEIGHTS: dict[str, float] = {
    "enc_hit": 2.0,  # not fitted: keeps the encoder's codes inside the cap (see below)
    "dense_max": 4.01,
    "lex_mean": 3.391,
    "struct_seventh": -3.3,
    "lex_max": 2.722,
    "dense_mean": 2.055,
    "struct_sibling": 1.969,
    "src_lexical": -1.943,
    "struct_parent": -1.845,
    "n_sources": -1.815,
    "exact": 1.612,
    "src_structure": 1.409,
    "n_mentions_log": 1.31,
    "src_dense": -1.28,
    "struct_child": 0.982,
    "lex_rank_inv": 0.968,
    "any_present": -0.901,
    "first_position": -0.688,
    "dense_rank_inv": 0.492,
    "struct_episode_stated": -0.247,
    "code_length": -0.211,
    "dense_n_mentions": -0.157,
    "exact_as_written": 0.129,
    "struct_attr_agree": -0.061,
    "struct_score": 0.041,
    "n_mentions": 0.039,
    "lex_n_mentions": -0.037,
}
# The same fit for a pipeline without the dense generator.
SCORE_WEIGHTS_NO_DENSE: dict[str, float] = {
    "enc_hit": 2.0,
    "lex_mean": 3.991,
    "struct_score": 3.927,
    "struct_seventh": -3.763,
    "lex_max": 3.604,
    "struct_parent": -2.816,
    "src_lexical": -2.735,
    "n_sources": -2.353,
    "exact": 1.862,
    "first_position": -1.247,
    "lex_rank_inv": 1.131,
    "n_mentions_log": 1.098,
    "struct_sibling": 0.76,
    "code_length": -0.41,
    "src_structure": 0.382,
    "struct_episode_stated": -0.19,
    "struct_attr_agree": -0.139,
    "n_mentions": -0.076,
    "lex_n_mentions": 0.066,
    "exact_as_written": -0.026,
    "struct_child": 0.019,
    "any_present": -0.002,
}
# ``enc_hit`` (a code the Index-to-Tabular encoder reached) was added by hand to both sets, after
# the fit above and without one: the learned ranker decides how far to trust the encoder; the
# pre-ranking score only has to keep its codes among those the ranker sees.


def score_weights(generators: Iterable[str]) -> dict[str, float]:
    """The pre-ranking weights for a set of generators."""
    return SCORE_WEIGHTS if "dense" in set(generators) else SCORE_WEIGHTS_NO_DENSE


def merge(
    results: dict[str, list[Candidate]],
    mentions: Sequence[Mention],
    *,
    text_length: int = 0,
    max_candidates: int | None = None,
    weights: dict[str, float] | None = None,
) -> list[Candidate]:
    """Union the generators' candidates per code, with per-code features.

    Generators put per-code raw features in ``Candidate.features`` under their own prefix
    (``lex_max``, ``dense_max``, ``struct_*`` ...); ``merge`` keeps the maximum of each feature
    and the union of supporting mentions and sources, then adds note-level features: number of
    supporting mentions, first position and the best mention's assertion (no ranker read the
    best mention's section, which it once added as ``section_*``). The result is
    sorted by a linear pre-ranking score (``Candidate.score``; ``weights``, default
    :func:`score_weights` of the generators present) and cut to ``max_candidates``.
    """
    return merge_more(
        [],
        results,
        mentions,
        text_length=text_length,
        max_candidates=max_candidates,
        weights=weights if weights is not None else score_weights(results),
    )


def merge_more(
    merged: list[Candidate],
    results: dict[str, list[Candidate]],
    mentions: Sequence[Mention],
    *,
    text_length: int = 0,
    max_candidates: int | None = None,
    weights: dict[str, float],
) -> list[Candidate]:
    """``merge(first | results)`` from ``merged = merge(first)`` (uncut, same mentions and
    weights), without redoing the union of ``first``: a seeded generator's output joins the
    seeds it was given. The candidates of ``merged`` are reused (updated in place)."""
    w_keys, w_values = tuple(weights), tuple(weights.values())
    zeros = (0.0,) * len(w_keys)
    by_key = {(c.system, c.code): c for c in merged}
    touched = _union(results, by_key)
    n = max(len(mentions), 1)
    log1p: dict[int, float] = {}
    # candidates often share their mentions (one mention, several codes): work out the mention
    # features once per set of mentions
    by_ids: dict[tuple[int, ...], dict[str, float]] = {}
    for c in touched:
        f = c.features
        ids = c.mention_ids
        ids.sort()
        k = len(ids)
        lg = log1p.get(k)
        if lg is None:
            lg = log1p[k] = float(np.log1p(k))
        f["n_mentions"] = float(k)
        f["n_mentions_log"] = lg
        sources = c.sources
        f["src_lexical"] = float("lexical" in sources)
        f["src_dense"] = float("dense" in sources)
        f["src_structure"] = float("structure" in sources)
        f["src_encoder"] = float("encoder" in sources)
        f["n_sources"] = float(len(sources))
        f["code_length"] = float(len(c.code.replace(".", "")))
        rank = f.get("lex_min_rank")
        f["lex_rank_inv"] = 0.0 if rank is None else 1.0 / (1.0 + rank)
        rank = f.get("dense_min_rank")
        f["dense_rank_inv"] = 0.0 if rank is None else 1.0 / (1.0 + rank)
        if ids:
            key = tuple(ids)
            known = by_ids.get(key)
            if known is None:
                known = by_ids[key] = {}
                _mention_features(known, ids, mentions, text_length, n)
            f.update(known)
        # sum(v * f.get(k, 0.0)) in the weights' order, without a Python step per weight
        c.score = float(sum(map(mul, w_values, map(f.get, w_keys, zeros))))
    out = list(by_key.values())
    out.sort(key=lambda c: (-c.score, c.system, c.code))
    if max_candidates is not None:
        out = out[:max_candidates]
    return out


def _union(
    results: dict[str, list[Candidate]], merged: dict[tuple[str, str], Candidate]
) -> list[Candidate]:
    """One candidate per code in ``merged`` (added to in place): the maximum of each feature
    (minimum of ``*_min_rank``; the first value wins ties), the union of sources and of
    supporting mentions (first-seen order). Returns the candidates ``results`` touched."""
    seen_mids: dict[tuple[str, str], set[int]] = {}
    touched: dict[tuple[str, str], Candidate] = {}
    is_min: dict[str, bool] = {}  # feature name -> ends with "_min_rank"
    for name, cands in results.items():
        own = {name}
        for c in cands:
            key = (c.system, c.code)
            m = merged.get(key)
            if m is None:
                m = merged[key] = Candidate(system=c.system, code=c.code)
                seen = seen_mids[key] = set()
            elif key in seen_mids:
                seen = seen_mids[key]
            else:  # a candidate of the earlier merge: its mentions so far
                seen = seen_mids[key] = set(m.mention_ids)
            touched[key] = m
            m.sources |= c.sources or own
            for p in c.paths:
                if p not in m.paths:
                    m.paths.append(p)
            ids = m.mention_ids
            for mid in c.mention_ids:
                if mid not in seen:
                    seen.add(mid)
                    ids.append(mid)
            mf = m.features
            for f, v in c.features.items():
                old = mf.get(f)
                if old is None:
                    mf[f] = v
                    continue
                low = is_min.get(f)
                if low is None:
                    low = is_min[f] = f.endswith("_min_rank")
                # same as min(old, v) / max(old, v): the old value wins ties
                if (v < old) if low else (v > old):
                    mf[f] = v
    return list(touched.values())


def _mention_features(
    f: dict[str, float],
    ids: list[int],
    mentions: Sequence[Mention],
    text_length: int,
    n: int,
) -> None:
    """Position and assertion of a candidate's supporting mentions."""
    ms = [mentions[i] for i in ids if i < len(mentions)]
    if not ms:
        return
    first = min(m.start for m in ms)
    f["first_position"] = first / text_length if text_length else first / n
    best = _best_mention(ms)
    for a in ASSERTIONS:
        f[f"assert_{a}"] = float(best.assertion == a)
    f["any_present"] = float(any(m.assertion == "present" for m in ms))


def _best_mention(ms: Sequence[Mention]) -> Mention:
    """The mention that speaks for the code: a present one first, then the earliest."""
    return min(ms, key=lambda m: (m.assertion != "present", m.start))
