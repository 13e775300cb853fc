"""Guidelines layer bench: note-suite pass rate per guideline section, added latency, CodiEsp MAP.

    .venv/bin/python bench/bench_guidelines.py [--suite tests/regression/guideline_notes.yaml]
        [--codiesp ../shared/data/codiesp/dev] [--limit N] [--no-codiesp] [--proxy] [--model DIR]

1. Runs every suite note end to end through ``clinicode.load().suggest(text, setting=...)`` and
   prints the pass rate per guideline section, with each failing case and why.
2. Over the CodiEsp dev notes (English), captures what the engine hands its guidelines layer
   (the ranked codes and the mentions), then times ``Guidelines.apply`` alone on that input
   (median / p95 ms per note, wall and CPU) and compares diagnosis MAP of the ranker's order with
   the layer's benchmark path (``benchmark=True``, ranked by ``rank``: suppressed codes demoted)
   and with the normal path (codes, then candidates). Timings on a shared machine are noisy.

``--proxy`` (until the engine exists): the same latency and MAP comparison with a stand-in for
the ranker, the NLP pipeline's mentions with their KB concepts as candidates (score falls with
the concept's rank in the mention). It measures the layer on realistic input sizes; its MAP is
not the engine's.
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
    failures: list[str] = []
    for case in cases:
        fails = check_case(case, engine.suggest(case.text, setting=case.setting))
        per[case.section].append(not fails)
        if fails:
            known = f" [known: {case.known_failure}]" if case.known_failure else ""
            failures.append(f"  {case.id} ({case.section}): {'; '.join(fails)}{known}")
    kind = "PROXY ranker, not the engine" if isinstance(engine, _ProxyEngine) else "engine"
    print(f"note suite: {len(cases)} notes ({kind})")
    print(f"{'section':<14} {'pass':>5} {'n':>4} {'rate':>6}")
    for sec in sorted(per):
        ok = per[sec]
        print(f"{sec:<14} {sum(ok):>5} {len(ok):>4} {sum(ok) / len(ok):>6.0%}")
    total = [x for v in per.values() for x in v]
    print(f"{'ALL':<14} {sum(total):>5} {len(total):>4} {sum(total) / len(total):>6.0%}")
    if failures:
        print("failing cases:")
        print("\n".join(failures))


class _ProxyEngine:
    """``suggest`` with the NLP pipeline, the proxy ranker and the guidelines layer (no pack)."""

    def __init__(self) -> None:
        from clinicode.kb import open_kb
        from clinicode.models.guidelines import Guidelines
        from clinicode.nlp.pipeline import load_pipeline

        self.kb = open_kb()
        self.pipe = load_pipeline()
        self.layer = Guidelines(self.kb)

    def suggest(self, text: str, setting: str = "outpatient") -> Any:
        mentions = self.pipe.extract(text)
        ranked = proxy_ranked(mentions, self.kb)
        return self.layer.apply(ranked, mentions, text=text, setting=setting, threshold=0.5)


def _find_layer(engine: Any) -> tuple[Any, str] | None:
    from clinicode.models.types import GuidelinesLayer

    for name, value in vars(engine).items():
        if isinstance(value, GuidelinesLayer):
            return value, name
    return None


def run_codiesp(engine: Any, folder: Path, limit: int | None) -> None:
    from clinicode.models.guidelines import Guidelines

    getattr(engine, "warm_up", lambda: None)()
    found = _find_layer(engine)
    if found is None:
        print("codiesp: the engine holds no GuidelinesLayer attribute; cannot capture its input")
        return
    layer, name = found
    captured: list[dict[str, Any]] = []
    original = layer.apply

    def capture(ranked: Any, mentions: Any, **kw: Any) -> Any:
        captured.append({"ranked": ranked, "mentions": mentions, **kw})
        return original(ranked, mentions, **kw)

    setattr(layer, "apply", capture)  # noqa: B010 - instance-level wrap for the bench only
    texts = sorted((folder / "text_files_en").glob("*.txt"))[:limit]
    gold: dict[str, set[str]] = defaultdict(set)
    for line in (folder / f"{folder.name}D.tsv").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            doc, code = line.split("\t")[:2]
            gold[doc].add(code.strip().upper())
    inputs: list[tuple[str, dict[str, Any]]] = []
    try:
        for path in texts:
            captured.clear()
            engine.suggest(path.read_text(encoding="utf-8"), setting="inpatient")
            if captured:
                inputs.append((path.stem, captured[-1]))
    finally:
        setattr(layer, "apply", original)  # noqa: B010
    if not inputs:
        print("codiesp: the engine never called its guidelines layer")
        return
    g = layer if isinstance(layer, Guidelines) else Guidelines(engine_kb(engine, layer))
    times: list[float] = []
    cpu: list[float] = []
    maps: dict[str, list[float]] = defaultdict(list)
    for doc, inp in inputs:
        kw = {k: v for k, v in inp.items() if k not in ("ranked", "mentions", "benchmark")}
        ranked, mentions = inp["ranked"], inp["mentions"]
        t0, c0 = time.perf_counter(), time.process_time()
        g.apply(ranked, mentions, **kw, benchmark=True)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        if doc not in gold:
            continue
        bench = g.apply(ranked, mentions, **kw, benchmark=True)
        normal = g.apply(ranked, mentions, **kw, benchmark=False)

        def dx(items: list[Any]) -> list[str]:
            return [s.code.upper() for s in items if s.system == "ICD-10-CM"]

        maps["ranker order (no layer)"].append(_average_precision(gold[doc], dx(ranked)))
        maps["layer benchmark=True"].append(
            _average_precision(gold[doc], dx(sorted(bench.codes + bench.candidates, key=_rank)))
        )
        maps["layer benchmark=True, list"].append(
            _average_precision(gold[doc], dx(bench.codes + bench.candidates))
        )
        maps["layer benchmark=False"].append(
            _average_precision(gold[doc], dx(normal.codes + normal.candidates))
        )
    times.sort()
    cpu.sort()
    print(f"codiesp dev ({len(inputs)} notes, layer attribute engine.{name}):")
    print(
        f"  layer latency ms/note: median {statistics.median(times):.2f}, "
        f"p95 {times[int(0.95 * (len(times) - 1))]:.2f} (noisy on a shared machine); CPU median {statistics.median(cpu):.2f}"
    )
    for k, v in maps.items():
        print(f"  MAP {k:<26} {sum(v) / len(v):.4f}  (over {len(v)} gold notes)")


def proxy_ranked(mentions: list[Any], kb: Any) -> list[Any]:
    """Stand-in ranker output: every ICD-10-CM concept of every mention, scored by its rank."""
    from clinicode.schema import CodeSuggestion, Evidence

    best: dict[str, Any] = {}
    for m in mentions:
        icd = [c.split(":", 1)[1] for c in m.concepts if c.startswith("ICD-10-CM:")]
        for i, code in enumerate(icd):
            score = max(0.05, 0.9 - 0.15 * i)
            ev = Evidence(
                start=m.start, end=m.end, text=m.text, section=m.section, assertion=m.assertion
            )
            prev = best.get(code)
            if prev is None or prev.score < score:
                rec = kb.get(code, "ICD-10-CM")
                best[code] = CodeSuggestion(
                    system="ICD-10-CM",
                    code=code,
                    title=rec.title if rec else code,
                    billable=bool(rec and rec.billable),
                    score=score,
                    evidence=[ev],
                )
            elif prev.score == score:
                prev.evidence.append(ev)
    return sorted(best.values(), key=lambda s: -s.score)


def run_proxy(folder: Path, limit: int | None) -> None:
    from clinicode.kb import open_kb
    from clinicode.models.guidelines import Guidelines
    from clinicode.nlp.pipeline import load_pipeline

    kb = open_kb()
    pipe = load_pipeline()
    g = Guidelines(kb)
    gold: dict[str, set[str]] = defaultdict(set)
    for line in (folder / f"{folder.name}D.tsv").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            doc, code = line.split("\t")[:2]
            gold[doc].add(code.strip().upper())
    times: list[float] = []
    cpu: list[float] = []
    sizes: list[int] = []
    inputs: list[tuple[Any, Any, dict[str, Any]]] = []
    maps: dict[str, list[float]] = defaultdict(list)
    texts = sorted((folder / "text_files_en").glob("*.txt"))[:limit]
    for path in texts:
        text = path.read_text(encoding="utf-8")
        mentions = pipe.extract(text)
        ranked = proxy_ranked(mentions, kb)
        sizes.append(len(ranked))
        kw = {"text": text, "setting": "inpatient", "threshold": 0.5}
        t0, c0 = time.perf_counter(), time.process_time()
        bench = g.apply(ranked, mentions, **kw, benchmark=True)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        normal = g.apply(ranked, mentions, **kw, benchmark=False)
        inputs.append((ranked, mentions, kw))
        if path.stem not in gold:
            continue

        def dx(items: list[Any]) -> list[str]:
            return [s.code.upper() for s in items]

        maps["proxy ranking (no layer)"].append(_average_precision(gold[path.stem], dx(ranked)))
        maps["layer benchmark=True"].append(
            _average_precision(
                gold[path.stem], dx(sorted(bench.codes + bench.candidates, key=_rank))
            )
        )
        maps["layer benchmark=True, list"].append(
            _average_precision(gold[path.stem], dx(bench.codes + bench.candidates))
        )
        maps["layer benchmark=False"].append(
            _average_precision(gold[path.stem], dx(normal.codes + normal.candidates))
        )
    times.sort()
    cpu.sort()
    print(f"proxy input (NLP concepts as ranked codes, NOT the engine) on {len(times)} notes,")
    print(f"  median {statistics.median(sizes):.0f} ranked codes per note")
    print(
        f"  layer latency ms/note: median {statistics.median(times):.2f}, "
        f"p95 {times[int(0.95 * (len(times) - 1))]:.2f} (first notes fill the KB caches; noisy); CPU median {statistics.median(cpu):.2f}"
    )
    warm_wall, warm_cpu = [], []
    for ranked, mentions, kw in inputs:  # a long-running engine: KB lookups already cached
        t0, c0 = time.perf_counter(), time.process_time()
        g.apply(ranked, mentions, **kw, benchmark=True)
        warm_wall.append((time.perf_counter() - t0) * 1000)
        warm_cpu.append((time.process_time() - c0) * 1000)
    print(
        f"  second pass (warm caches): median {statistics.median(warm_wall):.2f} ms wall, "
        f"{statistics.median(warm_cpu):.2f} ms CPU"
    )
    for k, v in maps.items():
        print(f"  MAP {k:<26} {sum(v) / len(v):.4f}  (over {len(v)} gold notes)")


def engine_kb(engine: Any, layer: Any) -> Any:
    kb = getattr(layer, "kb", None) or getattr(engine, "kb", None)
    if kb is None:
        from clinicode.kb import open_kb

        kb = open_kb()
    return kb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", type=Path, default=REPO / "tests/regression/guideline_notes.yaml")
    ap.add_argument("--codiesp", type=Path, default=REPO.parent / "shared/data/codiesp/dev")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--no-codiesp", action="store_true")
    ap.add_argument("--model", type=Path, default=None, help="model pack dir (default pack)")
    ap.add_argument("--proxy", action="store_true", help="NLP-concept stand-in for the ranker")
    args = ap.parse_args(argv)
    if args.proxy:
        run_suite(_ProxyEngine(), args.suite)
        run_proxy(args.codiesp, args.limit)
        return 0
    import clinicode

    try:
        engine = clinicode.load(args.model)
    except Exception as exc:  # no engine module or no model pack yet
        print(f"cannot load the engine ({type(exc).__name__}: {exc}); nothing to bench")
        return 2
    run_suite(engine, args.suite)
    if not args.no_codiesp:
        if (args.codiesp / "text_files_en").is_dir():
            run_codiesp(engine, args.codiesp, args.limit)
        else:
            print(f"codiesp: {args.codiesp} not found, skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
