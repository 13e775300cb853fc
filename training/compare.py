"""Compare model packs on the same notes, with the noise of the comparison (``clinicode evaluate
--model A --model B ...``).

Each pack after the first is compared with the first one. The differences of MAP and of micro F1
(each pack at its own threshold, or its coded set in the served order) get a *paired bootstrap*
interval: the notes are resampled with replacement, both packs are scored on the same resample,
and the 2.5th and 97.5th percentiles of the difference over ``n_boot`` resamples bound it. The
resampling unit is the note (codes of a note are not independent), the generator is seeded, so
the same inputs give the same interval.

Per chapter and per code tables count true positives, false positives and false negatives of the
coded sets; "gained" and "lost" are the gold (note, code) pairs a pack codes that the first pack
misses, and the reverse.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from clinicode.training.data import LabeledNote, Task
from clinicode.training.evaluate import Order, evaluate_ranked, rank_notes, task_view
from clinicode.training.metrics import average_precision

if TYPE_CHECKING:
    from clinicode.kb import KnowledgeBase
    from clinicode.models.scoring import ScoringPath

Ranked = Mapping[str, Sequence[tuple[str, float]]]

N_BOOT = 2000
LEVEL = 0.95


@dataclass
class PackRun:
    """One pack's output on the notes, restricted to one task."""

    label: str
    version: str
    threshold: float
    scored: dict[str, list[tuple[str, float]]]  # note id -> ranked (system:code, score)
    chosen: dict[str, list[str]]  # note id -> the coded set its micro P/R/F1 are of
    figures: dict[str, Any]  # what ``clinicode evaluate`` prints for this pack


def chosen_at_threshold(scored: Ranked, threshold: float) -> dict[str, list[str]]:
    return {d: [c for c, s in pairs if s >= threshold] for d, pairs in scored.items()}


def run_pack(
    path: ScoringPath,
    notes: Sequence[LabeledNote],
    task: Task,
    *,
    label: str,
    order: Order = "ranker",
    setting: str = "outpatient",
    progress: bool = False,
) -> PackRun:
    """Score ``notes`` once with ``path``'s pack: ``evaluate``'s figures and the rankings."""
    ranked = rank_notes(path, notes, setting=setting, progress=progress)
    figures = evaluate_ranked(path, notes, task, ranked, order=order, setting=setting)
    scored, chosen = task_view(ranked, task, order)
    if chosen is None:
        chosen = chosen_at_threshold(scored, path.pack.threshold)
    return PackRun(label, path.info.version, path.pack.threshold, dict(scored), chosen, figures)


def unique_labels(names: Sequence[str]) -> list[str]:
    """``names`` with ``#2``, ``#3`` ... appended to repeats (two packs may share a folder name)."""
    seen: Counter[str] = Counter()
    out = []
    for n in names:
        seen[n] += 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


@dataclass
class DocStats:
    """Per-note average precision and coded-set counts, over the notes with gold codes."""

    docs: list[str]
    ap: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray


def doc_stats(gold: Mapping[str, Sequence[str]], run: PackRun) -> DocStats:
    """The per-note figures whose means (AP) and sums (tp/fp/fn) are ``evaluate``'s MAP and
    micro F1 (same notes: those with at least one gold code)."""
    docs = sorted(d for d, codes in gold.items() if set(codes))
    ap, tp, fp, fn = [], [], [], []
    for d in docs:
        g = set(gold[d])
        ap.append(average_precision(g, [c for c, _ in run.scored.get(d, [])]))
        p = set(run.chosen.get(d, []))
        tp.append(len(g & p))
        fp.append(len(p - g))
        fn.append(len(g - p))
    return DocStats(docs, np.asarray(ap, float), *(np.asarray(x, float) for x in (tp, fp, fn)))


def micro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Micro F1 from summed counts (element-wise over resamples); 0 where nothing is counted."""
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(den, dtype=float), where=den > 0)


def _interval(point: float, samples: np.ndarray, level: float) -> dict[str, float | bool]:
    lo, hi = np.percentile(samples, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return {
        "difference": float(point),
        "low": float(lo),
        "high": float(hi),
        "excludes_zero": bool(lo > 0 or hi < 0),
    }


def paired_bootstrap(
    a: DocStats,
    b: DocStats,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = LEVEL,
    chunk: int = 100,
) -> dict[str, dict[str, float | bool]]:
    """Percentile intervals of ``b - a`` for MAP and micro F1, resampling notes (paired: the
    same resample for both packs)."""
    if a.docs != b.docs:
        raise ValueError("paired bootstrap needs both packs scored on the same notes")
    n = len(a.docs)
    if n == 0:
        raise ValueError("no note with gold codes to compare on")
    rng = np.random.default_rng(seed)
    d_ap = b.ap - a.ap
    maps: list[np.ndarray] = []
    f1s: list[np.ndarray] = []
    for lo in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - lo), n))
        maps.append(d_ap[idx].mean(axis=1))
        f_b = micro_f1(b.tp[idx].sum(1), b.fp[idx].sum(1), b.fn[idx].sum(1))
        f_a = micro_f1(a.tp[idx].sum(1), a.fp[idx].sum(1), a.fn[idx].sum(1))
        f1s.append(f_b - f_a)
    point_f1 = (
        micro_f1(*(np.asarray([x.sum()]) for x in (b.tp, b.fp, b.fn)))[0]
        - micro_f1(*(np.asarray([x.sum()]) for x in (a.tp, a.fp, a.fn)))[0]
    )
    return {
        "map": _interval(float(d_ap.mean()), np.concatenate(maps), level),
        "micro_f1": _interval(float(point_f1), np.concatenate(f1s), level),
    }


# -- tables ---------------------------------------------------------------------------------
def chapter_of(kb: KnowledgeBase | None, key: str, cache: dict[str, str] | None = None) -> str:
    """ICD-10-CM: the code's chapter in the KB ("E00-E89 Endocrine, ..."); PCS: its section
    (first character); CPT and HCPCS: the system. Codes the KB lacks: their first letter."""
    system, code = key.split(":", 1)
    if system != "ICD-10-CM":
        return f"ICD-10-PCS section {code[:1]}" if system == "ICD-10-PCS" else system
    cat = code[:3]
    if cache is not None and cat in cache:
        return cache[cat]
    name = f"{code[:1]} (not in the code set)"
    if kb is not None:
        chapters = [r for r in kb.ancestors(code, system) if r.kind == "chapter"]
        if not chapters and kb.get(cat, system) is not None:
            chapters = [r for r in kb.ancestors(cat, system) if r.kind == "chapter"]
        if chapters:
            name = f"{chapters[0].code} {chapters[0].title}"
    if cache is not None:
        cache[cat] = name
    return name


def _counts(gold: Mapping[str, Sequence[str]], run: PackRun, group: Any) -> dict[str, Counter]:
    """``{group: Counter(tp=, fp=, fn=, support=)}`` with ``group(key) -> name``."""
    out: dict[str, Counter] = {}
    for d, codes in gold.items():
        if not set(codes):
            continue
        g, p = set(codes), set(run.chosen.get(d, []))
        for k in g | p:
            c = out.setdefault(group(k), Counter())
            c["support"] += k in g
            c["tp"] += k in g and k in p
            c["fp"] += k in p and k not in g
            c["fn"] += k in g and k not in p
    return out


def _f1(c: Counter) -> float:
    den = 2 * c["tp"] + c["fp"] + c["fn"]
    return 2 * c["tp"] / den if den else 0.0


def breakdown(
    gold: Mapping[str, Sequence[str]], runs: Sequence[PackRun], group: Any, top: int | None
) -> list[dict[str, Any]]:
    """One row per group (chapter or code): gold support, and per pack tp/fp/fn/F1 and the F1
    difference with the first pack; by support, then name."""
    per_pack = [_counts(gold, r, group) for r in runs]
    names = sorted(
        {n for c in per_pack for n in c},
        key=lambda n: (-per_pack[0].get(n, Counter())["support"], n),
    )
    rows = []
    for n in names:
        cs = [c.get(n, Counter()) for c in per_pack]
        support = max(c["support"] for c in cs)
        row: dict[str, Any] = {"name": n, "support": support, "packs": []}
        for r, c in zip(runs, cs, strict=True):
            row["packs"].append(
                {
                    "label": r.label,
                    "tp": c["tp"],
                    "fp": c["fp"],
                    "fn": c["fn"],
                    "f1": _f1(c),
                    "f1_diff": _f1(c) - _f1(cs[0]),
                }
            )
        rows.append(row)
    rows.sort(key=lambda r: (-r["support"], r["name"]))
    return rows if top is None else rows[:top]


def gained_lost(
    gold: Mapping[str, Sequence[str]], base: PackRun, other: PackRun
) -> dict[str, list[tuple[str, int]]]:
    """Gold (note, code) pairs ``other`` codes and ``base`` misses (gained), and the reverse
    (lost), counted per code, most frequent first."""
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    for d, codes in gold.items():
        g = set(codes)
        a, b = set(base.chosen.get(d, [])) & g, set(other.chosen.get(d, [])) & g
        gained.update(b - a)
        lost.update(a - b)

    def ordered(c: Counter[str]) -> list[tuple[str, int]]:
        return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))

    return {"gained": ordered(gained), "lost": ordered(lost)}


def compare_runs(
    runs: Sequence[PackRun],
    gold: Mapping[str, Sequence[str]],
    *,
    kb: KnowledgeBase | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = LEVEL,
    top: int | None = 40,
) -> dict[str, Any]:
    """The comparison ``clinicode evaluate`` prints for several packs (the first is the base)."""
    if not runs:
        raise ValueError("no pack to compare")
    stats = [doc_stats(gold, r) for r in runs]
    cache: dict[str, str] = {}
    differences = []
    changes = []
    for r, s in zip(runs[1:], stats[1:], strict=True):
        differences.append(
            {
                "pack": r.label,
                "vs": runs[0].label,
                **paired_bootstrap(stats[0], s, n_boot=n_boot, seed=seed, level=level),
            }
        )
        gl = gained_lost(gold, runs[0], r)
        changes.append(
            {
                "pack": r.label,
                "vs": runs[0].label,
                "gained_pairs": sum(n for _, n in gl["gained"]),
                "lost_pairs": sum(n for _, n in gl["lost"]),
                "gained": gl["gained"][: top or None],
                "lost": gl["lost"][: top or None],
            }
        )
    return {
        "documents": len(stats[0].docs),
        "bootstrap": {
            "n_boot": n_boot,
            "seed": seed,
            "level": level,
            "unit": "note (paired: the same resampled notes for every pack)",
            "method": "percentile",
        },
        "packs": [{"label": r.label, **r.figures} for r in runs],
        "differences": differences,
        "per_chapter": breakdown(gold, runs, lambda k: chapter_of(kb, k, cache), None),
        "per_code": breakdown(gold, runs, lambda k: k, top),
        "codes_gained_lost": changes,
    }
