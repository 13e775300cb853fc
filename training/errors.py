"""Error analysis of a pack on labeled notes (the error-analysis notebook calls these).

From a :class:`~clinicode.training.compare.PackRun` (one pack scored once on the notes): the
codes with the most errors, the confusions (a gold code missed while a sibling code of the same
category was coded instead), why gold codes were missed (never a candidate, or ranked below the
threshold), and the evidence the engine showed for a few missed codes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from statistics import median
from typing import TYPE_CHECKING, Any

from clinicode.training.compare import PackRun, breakdown
from clinicode.training.data import LabeledNote
from clinicode.training.explore import Table

if TYPE_CHECKING:
    from clinicode.kb import KnowledgeBase
    from clinicode.models.scoring import ScoringPath

Gold = Mapping[str, Sequence[str]]


def _title(kb: KnowledgeBase | None, key: str) -> str:
    if kb is None:
        return ""
    system, code = key.split(":", 1)
    return kb.code_index().title(system, code) or ""


def worst_codes(gold: Gold, run: PackRun, kb: KnowledgeBase | None = None, n: int = 20) -> Table:
    """The codes with the most errors (false negatives + false positives), with their F1."""
    rows = breakdown(gold, [run], lambda k: k, None)
    rows.sort(key=lambda r: (-(r["packs"][0]["fn"] + r["packs"][0]["fp"]), r["name"]))
    out = Table()
    for r in rows[:n]:
        p = r["packs"][0]
        out.append({"code": r["name"].split(":", 1)[1], "title": _title(kb, r["name"]),
                    "gold": r["support"], "tp": p["tp"], "fp": p["fp"], "fn": p["fn"],
                    "f1": p["f1"]})  # fmt: skip
    return out


def confusions(gold: Gold, run: PackRun, n: int = 20) -> Table:
    """(gold code missed, code coded instead) pairs of the same system and 3-character
    category in the same note, most frequent first: the pack found the condition but not the
    right specificity."""
    pairs: Counter[tuple[str, str]] = Counter()
    for d, codes in gold.items():
        g, p = set(codes), set(run.chosen.get(d, []))
        for miss in g - p:
            for wrong in p - g:
                if miss.split(":", 1)[0] == wrong.split(":", 1)[0] and (
                    miss.split(":", 1)[1][:3] == wrong.split(":", 1)[1][:3]
                ):
                    pairs[(miss, wrong)] += 1
    return Table(
        {"gold (missed)": a.split(":", 1)[1], "coded instead": b.split(":", 1)[1], "notes": k}
        for (a, b), k in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    )


def miss_reasons(gold: Gold, run: PackRun) -> dict[str, Any]:
    """Each missed gold (note, code) pair: never a candidate of the pack, or a candidate ranked
    below the threshold (with its rank: a low rank means the ranker, not the candidates, lost it)."""
    never = below = 0
    ranks: list[int] = []
    for d, codes in gold.items():
        chosen = set(run.chosen.get(d, []))
        rank_of = {c: i + 1 for i, (c, _) in enumerate(run.scored.get(d, []))}
        for code in set(codes) - chosen:
            if code in rank_of:
                below += 1
                ranks.append(rank_of[code])
            else:
                never += 1
    missed = never + below
    return {
        "missed_pairs": missed,
        "never_a_candidate": never,
        "candidate_below_threshold": below,
        "share_never_a_candidate": never / missed if missed else 0.0,
        "median_rank_when_candidate": median(ranks) if ranks else None,
        "in_top_10_when_candidate": sum(1 for r in ranks if r <= 10),
    }


def missed_examples(
    path: ScoringPath,
    notes: Sequence[LabeledNote],
    run: PackRun,
    gold: Gold,
    n: int = 8,
    setting: str = "outpatient",
) -> Table:
    """Up to ``n`` missed gold codes that were candidates, with the evidence the engine showed
    for them (mention text and section), its status and, if suppressed, why."""
    by_id = {x.id: x for x in notes}
    todo: list[tuple[str, str, int, float]] = []
    for d in sorted(gold):
        chosen = set(run.chosen.get(d, []))
        for i, (code, score) in enumerate(run.scored.get(d, [])):
            if code in set(gold[d]) - chosen:
                todo.append((d, code, i + 1, score))
        if len(todo) >= n:
            break
    rows = Table()
    results = {}
    for d in dict.fromkeys(t[0] for t in todo[:n]):
        results[d] = path.suggest_many([by_id[d].text], setting)[0]
    for d, key, rank, score in todo[:n]:
        res = results[d]
        found = next(
            (s for g in (res.codes, res.candidates, res.suppressed) for s in g
             if f"{s.system}:{s.code}" == key),
            None,
        )  # fmt: skip
        evidence = "; ".join(
            f"“{e.text}” ({e.section or 'no section'}, {e.assertion})"
            for e in (found.evidence if found is not None else [])[:3]
        )
        rows.append({"note": d, "code": key.split(":", 1)[1], "title": _title(path.kb, key),
                     "rank": rank, "score": score, "threshold": run.threshold,
                     "served as": found.status if found is not None else "not served",
                     "why suppressed": (found.reason or "") if found is not None else "",
                     "evidence": evidence or "(no mention: note-level signal only)"})  # fmt: skip
    return rows
