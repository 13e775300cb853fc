"""Where the served order loses MAP against the ranker's order, and why (CodiEsp dev, D).

    .venv/bin/python bench/bench_served_gap.py --model PACK [--data ../shared/data/codiesp/dev]
        [--setting outpatient] [--limit N]

Three orders of each note's diagnosis codes, all from one run of the scoring path:

1. ``ranker``: every candidate by calibrated score (what ``clinicode evaluate`` has reported);
2. ``codes first``: the layer's ``codes``, then every other code by the ranker's score (the
   effect of the layer's code-set decisions alone: combinations, refinements, drops);
3. ``served``: ``codes``, ``candidates``, ``suppressed``, exactly what ``suggest`` returns
   (adds the effect of demoting what the layer suppressed or dropped).

Then every gold code the ranker had in its top 10 but the served order ranks lower is counted by
what happened to it (its status and the guideline section of its last explanation line), which
says which part of the gap follows the Official Guidelines against CodiEsp's conventions
(negated, family, integral symptoms: the annotators coded them) and which part is the layer's
own error (a gold code replaced by a wrong combination code, say).
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CLINICODE_SHARED_DATA", REPO.parent / "shared" / "data"))


def _ap(gold: set[str], ranked: list[str]) -> float:
    hits, total = 0, 0.0
    for k, code in enumerate(dict.fromkeys(ranked), start=1):
        if code in gold:
            hits += 1
            total += hits / k
    return total / len(gold) if gold else 0.0


def _fate(s: object) -> str:
    status = getattr(s, "status", "?")
    lines = getattr(s, "explanation", [])
    rule = next((ln.split(":", 1)[0] for ln in reversed(lines) if ":" in ln), "no rule")
    reason = (getattr(s, "reason", None) or "").split(";")[0][:60]
    return f"{status:<10} {rule:<10} {reason}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=DATA / "codiesp" / "dev")
    ap.add_argument("--setting", default="outpatient")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()

    from clinicode.models.scoring import served_order
    from clinicode.training.data import load_codiesp
    from clinicode.training.evaluate import load_path

    path = load_path(args.model)
    notes = [n for n in load_codiesp(args.data) if n.codes_for("D")][: args.limit]
    maps: dict[str, list[float]] = {"ranker": [], "codes first": [], "served": []}
    fates: Counter[str] = Counter()
    moved = 0
    for note in notes:
        gold = set(note.codes_for("D"))
        (scored,) = path.score([note.text])
        ranked = path.suggestions(scored, ("ICD-10-CM",))
        groups = path.apply_guidelines(ranked, scored, args.setting, benchmark=False)
        result = path.result(scored, groups, args.setting, None)
        ranker = [k for k, _ in scored.ranker_order() if k.startswith("ICD-10-CM:")]
        codes = [f"{s.system}:{s.code}" for s in result.codes]
        served = served_order(result, ("ICD-10-CM",))
        maps["ranker"].append(_ap(gold, ranker))
        maps["codes first"].append(_ap(gold, codes + [k for k in ranker if k not in codes]))
        maps["served"].append(_ap(gold, served))
        by_key = {f"{s.system}:{s.code}": s for g in groups for s in g}
        for k in gold:
            if k in ranker[:10] and (k not in served or served.index(k) > ranker.index(k)):
                moved += 1
                fates[_fate(by_key[k]) if k in by_key else "absent"] += 1
    print(f"{path.info.version}, {len(notes)} CodiEsp notes with diagnoses, {args.setting}")
    for name, v in maps.items():
        print(f"  MAP {name:<12} {sum(v) / len(v):.4f}")
    print(f"gold codes in the ranker's top 10 that the served order ranks lower: {moved}")
    print("  count  status     rule       reason")
    for fate, n in fates.most_common(25):
        print(f"  {n:>5}  {fate}")


if __name__ == "__main__":
    main()
