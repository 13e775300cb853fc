"""Ranking and set metrics for code suggestion, matching the CodiEsp definitions.

``mean_average_precision`` is the CodiEsp MAP as this project reports it: the mean over *every*
gold document (a document with gold codes but no prediction scores 0), each document's average
precision being ``sum(P@k for each rank k holding a new gold code) / n_gold``.

``official_map`` is the variant of the official CodiEsp script, which follows trec_eval: only
documents that have predictions are averaged (trec_eval without ``-c``), and predicted codes
outside the valid code list are dropped before ranking.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def average_precision(gold: Iterable[str], ranked: Sequence[str]) -> float:
    """AP of one ranked list: duplicates count once; gold codes never retrieved count as 0."""
    g = set(gold)
    if not g:
        return 0.0
    seen: set[str] = set()
    hits = 0
    total = 0.0
    k = 0
    for code in ranked:
        if code in seen:
            continue
        seen.add(code)
        k += 1
        if code in g:
            hits += 1
            total += hits / k
    return total / len(g)


def mean_average_precision(
    gold: Mapping[str, Iterable[str]], ranked: Mapping[str, Sequence[str]]
) -> float:
    """MAP over all documents with at least one gold code (no predictions = 0)."""
    docs = [d for d, codes in gold.items() if set(codes)]
    if not docs:
        return 0.0
    return sum(average_precision(gold[d], ranked.get(d, [])) for d in docs) / len(docs)


def official_map(
    gold: Mapping[str, Iterable[str]],
    ranked: Mapping[str, Sequence[str]],
    valid_codes: set[str] | None = None,
) -> float:
    """CodiEsp-script MAP: invalid codes dropped, only gold documents with predictions averaged."""
    docs = []
    for d, codes in gold.items():
        preds = [c for c in ranked.get(d, []) if valid_codes is None or c in valid_codes]
        if set(codes) and preds:
            docs.append(average_precision(codes, preds))
    return sum(docs) / len(docs) if docs else 0.0


def precision_at(gold: Iterable[str], ranked: Sequence[str], k: int) -> float:
    top = list(dict.fromkeys(ranked))[:k]
    g = set(gold)
    return sum(1 for c in top if c in g) / k


def recall_at(gold: Iterable[str], ranked: Sequence[str], k: int) -> float:
    g = set(gold)
    if not g:
        return 0.0
    top = list(dict.fromkeys(ranked))[:k]
    return sum(1 for c in top if c in g) / len(g)


def micro_prf(
    gold: Mapping[str, Iterable[str]], predicted: Mapping[str, Iterable[str]]
) -> dict[str, float]:
    """Micro precision/recall/F1 of code sets over the union of documents."""
    tp = fp = fn = 0
    for d in set(gold) | set(predicted):
        g, p = set(gold.get(d, [])), set(predicted.get(d, []))
        tp += len(g & p)
        fp += len(p - g)
        fn += len(g - p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def evaluate_rankings(
    gold: Mapping[str, Iterable[str]],
    scored: Mapping[str, Sequence[tuple[str, float]]],
    threshold: float,
    valid_codes: set[str] | None = None,
    chosen: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, float]:
    """All the figures ``clinicode evaluate`` prints, from ranked ``(code, score)`` lists (in
    their given order). The micro P/R/F1 are of ``chosen`` (each document's coded set) when
    given, else of the codes scoring at least ``threshold``."""
    ranked = {d: [c for c, _ in pairs] for d, pairs in scored.items()}
    if chosen is None:
        chosen = {d: [c for c, s in pairs if s >= threshold] for d, pairs in scored.items()}
    docs = [d for d, codes in gold.items() if set(codes)]
    n = max(len(docs), 1)
    prf = micro_prf({d: gold[d] for d in docs}, {d: chosen.get(d, []) for d in docs})
    return {
        "documents": float(len(docs)),
        "map": mean_average_precision(gold, ranked),
        "map_official": official_map(gold, ranked, valid_codes),
        "micro_precision": prf["precision"],
        "micro_recall": prf["recall"],
        "micro_f1": prf["f1"],
        "threshold": threshold,
        "p_at_5": sum(precision_at(gold[d], ranked.get(d, []), 5) for d in docs) / n,
        "p_at_10": sum(precision_at(gold[d], ranked.get(d, []), 10) for d in docs) / n,
        "r_at_10": sum(recall_at(gold[d], ranked.get(d, []), 10) for d in docs) / n,
        "r_at_50": sum(recall_at(gold[d], ranked.get(d, []), 50) for d in docs) / n,
    }


def best_threshold(
    gold: Mapping[str, Iterable[str]], scored: Mapping[str, Sequence[tuple[str, float]]]
) -> tuple[float, float]:
    """The score threshold with the best micro F1 (returns threshold, F1)."""
    best = (0.5, -1.0)
    for t in [i / 100 for i in range(2, 96)]:
        chosen = {d: [c for c, s in pairs if s >= t] for d, pairs in scored.items()}
        f1 = micro_prf(gold, chosen)["f1"]
        if f1 > best[1]:
            best = (t, f1)
    return best
