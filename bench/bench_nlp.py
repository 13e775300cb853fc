"""NLP pipeline figures: section coverage on MTSamples, speed per note, peak memory.

    .venv/bin/python bench/bench_nlp.py [--sections] [--speed] [--notes N]

Prints:
* the share of distinct MTSamples transcriptions in which an assessment / impression /
  diagnosis section (categories assessment, assessment_plan, impression, diagnoses) is found,
  and per-category shares;
* median and p90 milliseconds per note (wall clock, and CPU time of the thread, which a
  busy machine inflates less) over the CodiEsp dev notes (English) and over the
  longest MTSamples notes (~2,000 words), one note at a time (``pipe.extract``), after warm-up;
* the share of gold CodiEsp dev diagnosis categories found among the mention concepts;
* the peak resident memory of the process with the loaded pipeline (ru_maxrss) and the load time.

Timings depend on the machine and its load; run it on a quiet machine for reported figures.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CLINICODE_SHARED_DATA", REPO.parent / "shared" / "data"))
ASSESSMENT = {"assessment", "assessment_plan", "impression", "diagnoses"}


def _mtsamples() -> list[str]:
    path = DATA / "mtsamples" / "mtsamples.csv"
    if not path.exists():
        sys.exit(f"needs {path}")
    csv.field_size_limit(10_000_000)
    seen: dict[str, None] = {}
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            t = (row.get("transcription") or "").strip()
            if t:
                seen.setdefault(t, None)
    return list(seen)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_sections(pipe: object) -> None:
    from clinicode.nlp.sections import doc_sections

    notes = _mtsamples()
    nlp = pipe.nlp  # type: ignore[attr-defined]
    found: Counter[str] = Counter()
    n_assess = 0
    # Only the sectionizer is needed: run the other components off.
    names = [n for n in nlp.pipe_names if n != "clinicode_sectionizer"]
    with nlp.select_pipes(disable=names):
        for doc in nlp.pipe(notes, batch_size=64):
            cats = {s["category"] for s in doc_sections(doc) if s["category"]}
            found.update(cats)
            n_assess += bool(cats & ASSESSMENT)
    n = len(notes)
    print(f"MTSamples distinct notes: {n}")
    print(f"assessment/impression/diagnosis section found: {n_assess}/{n} = {n_assess / n:.3f}")
    for cat, c in found.most_common():
        print(f"  {cat:22s} {c / n:.3f}")


def _time(pipe: object, notes: list[str]) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for t in notes:
        t0, c0 = time.perf_counter(), time.thread_time()
        pipe.extract(t)  # type: ignore[attr-defined]
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    return wall, cpu


def _report(name: str, notes: list[str], times: tuple[list[float], list[float]]) -> None:
    wall, cpu = times
    words = [len(t.split()) for t in notes]
    q = statistics.quantiles(wall, n=10) if len(wall) >= 10 else [max(wall)] * 9
    print(
        f"{name}: {len(notes)} notes, median {statistics.median(words):.0f} words; "
        f"wall median {statistics.median(wall):.1f} ms, p90 {q[8]:.1f} ms, max {max(wall):.1f} ms; "
        f"CPU median {statistics.median(cpu):.1f} ms"
    )


def bench_speed(pipe: object, n_long: int) -> None:
    dev = sorted((DATA / "codiesp" / "dev" / "text_files_en").glob("*.txt"))
    if not dev:
        sys.exit("needs the CodiEsp dev notes")
    dev_notes = [p.read_text(encoding="utf-8") for p in dev]
    _time(pipe, dev_notes[:10])  # warm-up
    _report("CodiEsp dev", dev_notes, _time(pipe, dev_notes))
    long_notes = sorted(_mtsamples(), key=lambda t: -len(t.split()))[:n_long]
    _report("MTSamples longest", long_notes, _time(pipe, long_notes))
    two_k = [t for t in _mtsamples() if 1800 <= len(t.split()) <= 2200]
    if two_k:
        _report("MTSamples 1,800-2,200 words", two_k, _time(pipe, two_k))


def bench_coverage(pipe: object, split: str = "dev") -> None:
    """How many gold CodiEsp diagnosis codes have their 3-character category among the concepts
    of the note's mentions: an upper bound for a ranker that reads only these mentions."""
    root = DATA / "codiesp" / split
    gold: dict[str, set[str]] = {}
    for line in (root / f"{split}D.tsv").read_text(encoding="utf-8").splitlines():
        doc_id, code = line.split("\t")[:2]
        gold.setdefault(doc_id, set()).add(code.upper().split(".")[0][:3])
    ids = sorted(gold)
    notes = [(root / "text_files_en" / f"{i}.txt").read_text(encoding="utf-8") for i in ids]
    hit = total = n_mentions = 0
    for doc_id, mentions in zip(ids, pipe.extract_many(notes), strict=True):  # type: ignore[attr-defined]
        n_mentions += len(mentions)
        cats = {
            c.split(":", 1)[1].split(".")[0][:3]
            for m in mentions
            for c in m.concepts
            if c.startswith("ICD-10-CM:")
        }
        hit += len(gold[doc_id] & cats)
        total += len(gold[doc_id])
    print(
        f"CodiEsp {split}: {n_mentions / len(ids):.1f} mentions per note; gold diagnosis categories "
        f"found among mention concepts: {hit}/{total} = {hit / total:.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sections", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--coverage", action="store_true")
    ap.add_argument("--notes", type=int, default=50, help="how many of the longest MTSamples")
    args = ap.parse_args()
    both = not (args.sections or args.speed or args.coverage)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    from clinicode.nlp import load_pipeline

    pipe = load_pipeline()
    print(f"pipeline loaded in {time.perf_counter() - t0:.1f} s: {', '.join(pipe.nlp.pipe_names)}")
    print(f"peak RSS before load {rss0:.0f} MB, after load {_rss_mb():.0f} MB")
    if both or args.sections:
        bench_sections(pipe)
    if both or args.speed:
        bench_speed(pipe, args.notes)
    if both or args.coverage:
        bench_coverage(pipe, "train")
        bench_coverage(pipe, "dev")
    print(f"peak RSS at the end {_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
