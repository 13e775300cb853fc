"""Guidelines layer bench: note-suite pass rate per guideline section, added latency, CodiEsp MAP.

    .venv/bin/python bench/bench_guidelines.py [--suite tests/regression/guideline_notes.yaml]
        [--codiesp ../shared/data/codiesp/dev] [--limit N] [--no-codiesp] [--model DIR]
    .venv/bin/python bench/bench_guidelines.py --heldout [--model DIR]

1. Runs every suite note end to end through ``clinicode.load().suggest(text, setting=...)`` and
   prints the pass rate per guideline section (and per specialty for the notes that have one),
   micro precision / recall of the ICD-10-CM ``codes`` against the notes' ``must`` codes (as
   for the held-out notes below; a dev note's ``must`` may not list every reportable code, so
   dev precision is a lower bound), and each failing case and why.
2. Over the CodiEsp dev notes (English), runs the engine's scoring path stage by stage
   (``engine.scoring``: ``score``, ``suggestions``, ``apply_guidelines``, ``result``), times the
   guidelines stage alone (median / p95 ms per note, wall and CPU), and compares diagnosis MAP
   of the ranker's order, the served order (codes, candidates, suppressed: what ``suggest``
   returns) and the layer's benchmark path (``benchmark=True``, ordered by ``rank``). Each order
   is computed from its own fresh suggestions, since the layer edits its input in place.
   Timings on a shared machine are noisy.
3. ``--heldout`` instead measures the held-out notes alone
   (``tests/regression/guideline_notes_heldout.yaml``, never run by the tests): pass rate per
   specialty and overall, and micro precision / recall of the ICD-10-CM ``codes`` against the
   notes' ``must`` codes (a ``must`` entry ending in "-" matches any code under it; every
   reportable diagnosis of a note is in its ``must``, so a code outside it counts against
   precision). It is a measurement: run it once per engine version and change nothing after
   reading it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _average_precision(gold: set[str], ranked: list[str]) -> float:
    seen: set[str] = set()
    hits, total, k = 0, 0.0, 0
    for code in ranked:
        if code in seen:
            continue
        seen.add(code)
        k += 1
        if code in gold:
            hits += 1
            total += hits / k
    return total / len(gold) if gold else 0.0


def _rank(s: Any) -> int:
    return int(s.rank)


def run_suite(engine: Any, suite: Path) -> None:
    from golden import suite_module

    suite_mod = suite_module()
    check_case, load_suite = suite_mod.check_case, suite_mod.load_suite

    cases = load_suite(suite)
    per: dict[str, list[bool]] = defaultdict(list)
    by_specialty: dict[str, list[bool]] = defaultdict(list)
    failures: list[str] = []
    counts = [0, 0, 0, 0]
    for case in cases:
        result = engine.suggest(case.text, setting=case.setting)
        fails = check_case(case, result)
        _count_vs_must(suite_mod, case, result, counts)
        per[case.section].append(not fails)
        if case.specialty:
            by_specialty[case.specialty].append(not fails)
        if fails:
            known = f" [known: {case.known_failure}]" if case.known_failure else ""
            failures.append(f"  {case.id} ({case.section}): {'; '.join(fails)}{known}")
    print(f"note suite: {len(cases)} notes (engine)")
    _print_rates("section", per, 14, total=".0%")
    if by_specialty:
        _print_rates("specialty", by_specialty, 22, note="  (notes with a specialty)")
    _print_vs_must(counts)
    if failures:
        print("failing cases:")
        print("\n".join(failures))


def _print_rates(
    label: str, groups: dict[str, list[bool]], width: int, *, total: str = "", note: str = ""
) -> None:
    """Pass count, size and rate of each group, then (with ``total``, its format) of all."""
    print(f"{label:<{width}} {'pass':>5} {'n':>4} {'rate':>6}{note}")
    for name in sorted(groups):
        ok = groups[name]
        print(f"{name:<{width}} {sum(ok):>5} {len(ok):>4} {sum(ok) / len(ok):>6.0%}")
    if total:
        every = [x for v in groups.values() for x in v]
        print(
            f"{'ALL':<{width}} {sum(every):>5} {len(every):>4} {sum(every) / len(every):>6{total}}"
        )


def run_heldout(engine: Any, suite: Path) -> None:
    """Pass rate per specialty and overall on the held-out notes, with micro precision and
    recall of the served ICD-10-CM ``codes`` against each note's ``must`` codes."""
    from golden import suite_module

    suite_mod = suite_module()
    cases = suite_mod.load_suite(suite)
    if not all(c.heldout for c in cases):
        raise SystemExit(f"{suite}: not a held-out file (every case must have heldout: true)")
    per: dict[str, list[bool]] = defaultdict(list)
    counts = [0, 0, 0, 0]
    failures: list[str] = []
    for case in cases:
        result = engine.suggest(case.text, setting=case.setting)
        fails = suite_mod.check_case(case, result)
        per[case.specialty or "(none)"].append(not fails)
        _count_vs_must(suite_mod, case, result, counts)
        if fails:
            failures.append(f"  {case.id} ({case.specialty}): {'; '.join(fails)}")
    print(f"held-out suite: {len(cases)} notes (engine), {suite.name}")
    _print_rates("specialty", per, 22, total=".1%")
    _print_vs_must(counts)
    if failures:
        print("failing cases:")
        print("\n".join(failures))


def _count_vs_must(suite_mod: Any, case: Any, result: Any, counts: list[int]) -> None:
    """Adds one case to ``counts`` = [served codes in must, served codes, must codes served,
    must codes] (ICD-10-CM ``codes`` only; a must entry ending in "-" matches any code under
    it)."""
    got = [s.code for s in result.codes if s.system == "ICD-10-CM"]
    counts[0] += sum(any(suite_mod.matches(m, c) for m in case.must) for c in got)
    counts[1] += len(got)
    counts[2] += sum(any(suite_mod.matches(m, c) for c in got) for m in case.must)
    counts[3] += len(case.must)


def _print_vs_must(counts: list[int]) -> None:
    tp_codes, n_codes, hit_must, n_must = counts
    precision = tp_codes / n_codes if n_codes else 0.0
    recall = hit_must / n_must if n_must else 0.0
    print(
        f"codes vs must: precision {precision:.3f} ({tp_codes}/{n_codes} served codes), "
        f"recall {recall:.3f} ({hit_must}/{n_must} must codes)"
    )


def _gold(folder: Path) -> dict[str, set[str]]:
    gold: dict[str, set[str]] = defaultdict(set)
    for line in (folder / f"{folder.name}D.tsv").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            doc, code = line.split("\t")[:2]
            gold[doc].add(code.strip().upper())
    return gold


def _dx(keys: list[str]) -> list[str]:
    return [k.split(":", 1)[1].upper() for k in keys if k.startswith("ICD-10-CM:")]


def run_codiesp(engine: Any, folder: Path, limit: int | None) -> None:
    """Times the guidelines stage alone and compares diagnosis MAP of three orders, each from
    its own fresh copy of the ranked suggestions (the layer edits its input in place)."""
    from clinicode.models.scoring import served_order

    path = engine.scoring
    path.warm_up()
    gold = _gold(folder)
    times: list[float] = []
    cpu: list[float] = []
    maps: dict[str, list[float]] = defaultdict(list)
    texts = sorted((folder / "text_files_en").glob("*.txt"))[:limit]
    for doc_path in texts:
        (scored,) = path.score([doc_path.read_text(encoding="utf-8")])
        ranked = path.suggestions(scored, path.systems)
        t0, c0 = time.perf_counter(), time.process_time()
        groups = path.apply_guidelines(ranked, scored, "inpatient", benchmark=False)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        doc = doc_path.stem
        if doc not in gold:
            continue
        served = served_order(path.result(scored, groups, "inpatient", None))
        fresh = path.suggestions(scored, path.systems)
        codes, cands, _ = path.apply_guidelines(fresh, scored, "inpatient", benchmark=True)
        bench = [f"{s.system}:{s.code}" for s in sorted(codes + cands, key=_rank)]
        ranker = [k for k, _ in scored.ranker_order()]
        maps["ranker order (no layer)"].append(_average_precision(gold[doc], _dx(ranker)))
        maps["served (codes, cands, suppr.)"].append(_average_precision(gold[doc], _dx(served)))
        maps["layer benchmark=True"].append(_average_precision(gold[doc], _dx(bench)))
    times.sort()
    cpu.sort()
    print(f"codiesp dev ({len(texts)} notes, inpatient):")
    print(
        f"  guidelines stage ms/note: median {statistics.median(times):.2f}, "
        f"p95 {times[int(0.95 * (len(times) - 1))]:.2f} (noisy on a shared machine); "
        f"CPU median {statistics.median(cpu):.2f}"
    )
    for k, v in maps.items():
        print(f"  MAP {k:<30} {sum(v) / len(v):.4f}  (over {len(v)} gold notes)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", type=Path, default=REPO / "tests/regression/guideline_notes.yaml")
    ap.add_argument("--codiesp", type=Path, default=REPO.parent / "shared/data/codiesp/dev")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--no-codiesp", action="store_true")
    ap.add_argument("--model", type=Path, default=None, help="model pack dir (default pack)")
    ap.add_argument(
        "--heldout",
        nargs="?",
        type=Path,
        const=REPO / "tests/regression/guideline_notes_heldout.yaml",
        default=None,
        help="measure the held-out suite only (optionally its path); no dev suite, no CodiEsp",
    )
    args = ap.parse_args(argv)
    import clinicode

    try:
        engine = clinicode.load(args.model)
    except Exception as exc:  # no engine module or no model pack yet
        print(f"cannot load the engine ({type(exc).__name__}: {exc}); nothing to bench")
        return 2
    if args.heldout is not None:
        run_heldout(engine, args.heldout)
        return 0
    run_suite(engine, args.suite)
    if not args.no_codiesp:
        if (args.codiesp / "text_files_en").is_dir():
            run_codiesp(engine, args.codiesp, args.limit)
        else:
            print(f"codiesp: {args.codiesp} not found, skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
