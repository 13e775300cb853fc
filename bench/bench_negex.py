"""Assertion on negex-dev: negation P/R/F1, temporality and experiencer accuracy.

Usage: ``.venv/bin/python bench/bench_negex.py [--data PATH] [--speed]``

``--speed`` also times the assertion step alone inside the full NLP pipeline (needs the KB) on
the CodiEsp dev notes and the 50 longest MTSamples notes.

Systems:
  medspacy-baseline   medspaCy's ConText with its default English rules, as shipped
  ours/medspacy-rules our clinicode_assertion step with medspaCy's default rules (ablation)
  ours                our clinicode_assertion step with nlp/resources/context_rules.json

negex-dev is the only labeled assertion set, so it is split by report id (sha256 of a fixed
salt + id, see ``clinicode.nlp.assertion_eval.split_of``) into a tuning half and a held-out
half. The rules were developed by reading errors on the TUNING half only; the held-out half is
the honest figure. Bars: negation F1 >= 0.93 and >= the baseline; temporality accuracy >= 0.92.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from clinicode.nlp.assertion_eval import (
    BASELINE,
    GOLD_COLUMNS,
    Scores,
    predict,
    read_negex_tsv,
    score,
    split_of,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "negex" / "negex-dev.tsv"
SYSTEMS: tuple[tuple[str, str], ...] = (
    ("medspacy-baseline", BASELINE),
    ("ours/medspacy-rules", "medspacy_default"),
    ("ours", "clinicode"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--speed", action="store_true", help="also time the step in the pipeline")
    args = parser.parse_args()
    header, rows = read_negex_tsv(args.data)
    col = {h.lower(): i for i, h in enumerate(header)}
    missing = [c for c in ("report", *GOLD_COLUMNS) if c not in col]
    if missing:
        print(f"{args.data} lacks gold column(s) {missing}", file=sys.stderr)
        return 2
    gold = [(r[col["negation"]], r[col["temporality"]], r[col["experiencer"]]) for r in rows]
    halves = [split_of(r[col["report"]]) for r in rows]
    subsets = {
        "tune": [i for i, h in enumerate(halves) if h == "tune"],
        "heldout": [i for i, h in enumerate(halves) if h == "heldout"],
        "all": list(range(len(rows))),
    }
    n_reports = {k: len({rows[i][col["report"]] for i in v}) for k, v in subsets.items()}
    print(f"negex-dev: {len(rows)} sentences; rules developed on the TUNING half only")
    for k in ("tune", "heldout"):
        n_neg = sum(1 for i in subsets[k] if gold[i][0] == "Negated")
        print(f"  {k}: {len(subsets[k])} sentences, {n_reports[k]} reports, {n_neg} negated")
    for k, idx in subsets.items():
        recent = sum(1 for i in idx if gold[i][1] == "Recent") / len(idx)
        print(f"  answering Recent everywhere, temporality accuracy on {k}: {recent:.3f}")
    print()
    line = "{:<20} {:<8} {:>5} {:>7} {:>7} {:>7} {:>9} {:>9}"
    print(line.format("system", "split", "n", "neg P", "neg R", "neg F1", "temp acc", "exp acc"))
    print("-" * 80)
    pairs = [(r[col["sentence"]], r[col["concept"]]) for r in rows]
    for name, rules in SYSTEMS:
        t0 = time.perf_counter()
        preds = predict(pairs, rules=rules)
        ms = (time.perf_counter() - t0) * 1000 / len(rows)
        for split, idx in subsets.items():
            s: Scores = score([gold[i] for i in idx], [preds[i] for i in idx])
            print(
                line.format(
                    name,
                    split,
                    s.n,
                    f"{s.negation_precision:.3f}",
                    f"{s.negation_recall:.3f}",
                    f"{s.negation_f1:.3f}",
                    f"{s.temporality_accuracy:.3f}",
                    f"{s.experiencer_accuracy:.3f}",
                )
            )
        missing_concepts = sum(1 for p in preds if not p.concept_found)
        print(
            f"{'':<20} ({ms:.2f} ms/sentence incl. first load; concept not found in "
            f"{missing_concepts} sentence(s), all cues of the sentence used)"
        )
    if args.speed:
        speed(args.data.parents[1])
    return 0


def speed(data_root: Path) -> None:
    """Milliseconds of the clinicode_assertion step alone, per note, in the full pipeline."""
    import csv
    import statistics

    from clinicode.nlp.pipeline import load_pipeline

    pipe = load_pipeline()
    codiesp = [
        p.read_text(encoding="utf-8")
        for p in sorted((data_root / "codiesp" / "dev" / "text_files_en").glob("*.txt"))
    ]
    csv.field_size_limit(1 << 30)
    with (data_root / "mtsamples" / "mtsamples.csv").open(encoding="utf-8") as fh:
        notes = [r.get("transcription") or "" for r in csv.DictReader(fh)]
    longest = sorted(notes, key=lambda t: -len(t.split()))[:50]
    print()
    for name, texts in (("CodiEsp dev", codiesp), ("MTSamples 50 longest", longest)):
        ms: list[float] = []
        for text in texts:
            doc = pipe.nlp.make_doc(text)
            for step, proc in pipe.nlp.pipeline:
                t0 = time.perf_counter()
                doc = proc(doc)
                if step == "clinicode_assertion":
                    ms.append((time.perf_counter() - t0) * 1000)
        words = statistics.median(len(t.split()) for t in texts)
        print(
            f"assertion step, {name} ({len(texts)} notes, median {words:.0f} words): "
            f"median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms per note"
        )


if __name__ == "__main__":
    raise SystemExit(main())
