"""Candidate recall of gold codes on CodiEsp (English), per generator and merged.

    .venv/bin/python bench/bench_candidates.py                      # dev, diagnoses (D)
    .venv/bin/python bench/bench_candidates.py --task P             # procedures (needs PCS)
    .venv/bin/python bench/bench_candidates.py --split train        # for tuning (never dev)
    .venv/bin/python bench/bench_candidates.py --generators lexical,structure --limit 50

Prints JSON: recall@10/@50/@100/@all of the gold (doc, code) pairs whose code exists in the KB,
the gold codes absent from the KB counted separately (with a prefix-match recall for them:
CodiEsp has codes like ``s02.5xx`` without the 7th character), the mean number of candidates,
per-note latency (median / p90 ms, each generator and merged; the merged figure includes the
phrase splitting) and peak resident memory. The fitted candidate index is cached under
``--cache`` (build time printed when it is built). Mentions are the mention-free phrases of
:func:`clinicode.models.candidates.phrase_mentions` unless ``--mentions nlp`` and the NLP
pipeline is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CLINICODE_SHARED_DATA", REPO.parent / "shared" / "data"))
PCS_ORDER = DATA / "pcs" / "icd10pcs_order_2026.txt"
KS = (10, 50, 100)


def read_gold(split: str, task: str) -> dict[str, list[str]]:
    gold: dict[str, list[str]] = defaultdict(list)
    path = DATA / "codiesp" / split / f"{split}{task}.tsv"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            doc, code = line.split("\t")[:2]
            if code not in gold[doc]:
                gold[doc].append(code.strip())
    return dict(gold)


def pcs_kb(base_kb: Path, workdir: Path) -> Path:
    """The base KB if it has ICD-10-PCS, else a temporary copy with PCS FY2026 imported
    through the project's importer."""
    from clinicode.kb import KnowledgeBase

    if KnowledgeBase(base_kb).system_info("ICD-10-PCS") is not None:
        return base_kb
    target = workdir / "kb_pcs.sqlite"
    shutil.copy(base_kb, target)
    try:
        from clinicode.kb.importers import run_import
    except ImportError as exc:
        raise SystemExit(
            f"no PCS importer in this checkout yet ({exc}); cannot bench --task P"
        ) from None
    run_import("pcs", PCS_ORDER, target)
    return target


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def recall_table(
    ranked: dict[str, list[str]], gold: dict[str, list[tuple[str, bool]]]
) -> dict[str, Any]:
    """Recall of the gold pairs whose code the KB knows at each K; for the others (CodiEsp
    spellings such as ``s02.5xx``), whether a top-50 candidate starts with their stem."""
    hits: dict[Any, int] = {k: 0 for k in (*KS, "all")}
    n_known = n_unknown = unknown_prefix_hits = 0
    n_cands = []
    for doc, codes in gold.items():
        cands = ranked.get(doc, [])
        n_cands.append(len(cands))
        pos: dict[str, int] = {}
        for i, c in enumerate(cands):
            pos.setdefault(c, i)
        low50 = [c.lower() for c in cands[:50]]
        for g, is_known in codes:
            if is_known:
                n_known += 1
                r = pos.get(g)
                if r is not None:
                    hits["all"] += 1
                    for k in KS:
                        hits[k] += int(r < k)
            else:
                n_unknown += 1
                stem = g.lower().rstrip("x").rstrip(".")
                unknown_prefix_hits += int(any(c.startswith(stem) for c in low50))
    out: dict[str, Any] = {f"recall@{k}": round(hits[k] / max(n_known, 1), 4) for k in KS}
    out["recall@all"] = round(hits["all"] / max(n_known, 1), 4)
    out["gold_pairs_in_kb"] = n_known
    out["gold_pairs_not_in_kb"] = n_unknown
    out["not_in_kb_prefix_recall@50"] = round(unknown_prefix_hits / max(n_unknown, 1), 4)
    out["mean_candidates"] = round(statistics.mean(n_cands), 1) if n_cands else 0
    return out


def fit_weights(
    rows: list[tuple[str, str, dict[str, float]]],
    gold: dict[str, list[tuple[str, bool]]],
    docs: list[str],
) -> dict[str, Any]:
    """Logistic regression of "gold code" on the merged features (first 60% of the notes);
    recall@K on the other 40% with the current ``SCORE_WEIGHTS`` and with the fitted ones."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from clinicode.models.candidates import score_weights

    feats = sorted(
        {
            k
            for _, _, f in rows
            for k in f
            if not k.startswith(("section_", "assert_", "lex_src_")) and not k.endswith("_min_rank")
        }
    )
    X = np.array([[f.get(k, 0.0) for k in feats] for _, _, f in rows])
    gold_sets = {d: {c for c, known in cs if known} for d, cs in gold.items()}
    y = np.array([code in gold_sets[d] for d, code, _ in rows])
    fit_docs = set(docs[: int(len(docs) * 0.6)])
    is_fit = np.array([d in fit_docs for d, _, _ in rows])
    model = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced")
    model.fit(X[is_fit], y[is_fit])
    weights = {k: round(float(w), 3) for k, w in zip(feats, model.coef_[0], strict=True)}

    def held_out_recall(score: Any) -> dict[str, float]:
        ranked: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for (d, code, _), sc, fit in zip(rows, score, is_fit, strict=True):
            if not fit:
                ranked[d].append((-float(sc), code))
        per_doc = {d: [c for _, c in sorted(v)] for d, v in ranked.items()}
        held = {d: cs for d, cs in gold.items() if d not in fit_docs}
        t = recall_table(per_doc, held)
        return {k: v for k, v in t.items() if k.startswith("recall@")}

    present = {g for _, _, f in rows for g in ("dense",) if f.get(f"src_{g}")}
    sw = score_weights(present | {"lexical"})
    current = X @ np.array([sw.get(k, 0.0) for k in feats])
    return {
        "weights": dict(sorted(weights.items(), key=lambda kv: -abs(kv[1]))),
        "held_out_recall_current": held_out_recall(current),
        "held_out_recall_fitted": held_out_recall(X @ model.coef_[0]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--split", default="dev", choices=["dev", "train"])
    ap.add_argument("--task", default="D", choices=["D", "P"])
    ap.add_argument("--generators", default="lexical,dense,structure")
    ap.add_argument("--kb", type=Path, default=None, help="KB file (default: the user's KB)")
    ap.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "clinicode-bench-candidates"
    )
    ap.add_argument("--rebuild", action="store_true", help="refit even if the cache exists")
    ap.add_argument("--limit", type=int, default=0, help="only the first N notes")
    ap.add_argument(
        "--mentions",
        default="phrases",
        choices=["phrases", "nlp", "nlp+phrases"],
        help="raw-text phrases, the NLP pipeline's mentions, or both",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads at query time")
    ap.add_argument("--max-candidates", type=int, default=200)
    ap.add_argument(
        "--fit-weights",
        action="store_true",
        help="(train only) fit the pre-ranking weights by logistic regression on the first 60%% "
        "of the notes, print them and the recall on the other 40%%",
    )
    args = ap.parse_args(argv)
    if args.fit_weights and args.split != "train":
        print("--fit-weights only on --split train (never tune on dev)", file=sys.stderr)
        return 2

    from clinicode.kb import KnowledgeBase, default_kb_path
    from clinicode.models.candidates import CandidatePipeline, merge, score_weights

    text_dir = DATA / "codiesp" / args.split / "text_files_en"
    if not text_dir.is_dir():
        print(f"needs {text_dir}", file=sys.stderr)
        return 2
    system = "ICD-10-CM" if args.task == "D" else "ICD-10-PCS"
    base_kb = args.kb or default_kb_path()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cands-"))
    kb_file = base_kb if args.task == "D" else pcs_kb(base_kb, workdir)
    kb = KnowledgeBase(kb_file)
    systems = [system]
    gens = [g for g in args.generators.split(",") if g]
    cache = args.cache / f"{Path(kb_file).stem}-{system}-{'-'.join(gens)}"
    report: dict[str, Any] = {
        "split": args.split,
        "task": args.task,
        "system": system,
        "code_sets": kb.versions(),
        "mentions": args.mentions,
        "generators": gens,
    }

    t0 = time.perf_counter()
    if cache.is_dir() and not args.rebuild:
        pipe = CandidatePipeline.load(cache, kb=kb)
        report["index"] = {"loaded_from": str(cache), "load_s": round(time.perf_counter() - t0, 2)}
    else:
        conf: dict[str, dict[str, Any]] = {"dense": {"num_threads": args.threads}}
        pipe = CandidatePipeline(gens, config=conf, max_candidates=args.max_candidates)
        build: dict[str, float] = {}
        pipe.generators_ = {}
        from clinicode.models.candidates import get_generator

        for name in gens:
            t = time.perf_counter()
            gen = get_generator(name, **conf.get(name, {}))
            if name == "dense":
                gen.fit(kb, systems=systems, progress=True)
            else:
                gen.fit(kb, systems=systems)
            pipe.generators_[name] = gen
            build[f"{name}_fit_s"] = round(time.perf_counter() - t, 1)
        pipe.save(cache)
        t = time.perf_counter()
        pipe = CandidatePipeline.load(cache, kb=kb)
        build["load_s"] = round(time.perf_counter() - t, 2)
        build["peak_rss_mb_after_build"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        report["index"] = build
    report["index"]["size_mb"] = round(sum(p.stat().st_size for p in cache.iterdir()) / 2**20, 1)
    if "dense" in pipe.generators_:
        pipe.generators_["dense"].num_threads = args.threads

    nlp = None
    pipe.phrases = "always" if args.mentions == "nlp+phrases" else "fallback"
    if args.mentions != "phrases":
        from clinicode.nlp import load_pipeline

        nlp = load_pipeline(kb=kb)

    gold_all = read_gold(args.split, args.task)
    docs = sorted(p.stem for p in text_dir.glob("*.txt"))
    if args.limit:
        docs = docs[: args.limit]
    gold: dict[str, list[tuple[str, bool]]] = {}
    for d in docs:
        pairs = []
        for raw in gold_all.get(d, []):
            rec = kb.get(raw, system)
            pairs.append((rec.code, True) if rec is not None else (raw, False))
        gold[d] = pairs

    ranked: dict[str, dict[str, list[str]]] = defaultdict(dict)
    times: dict[str, list[float]] = defaultdict(list)
    n_mentions = []
    rows: list[tuple[str, str, dict[str, float]]] = []
    weights = score_weights(pipe.generators_)
    # warm up (encoder load, caches) outside the timings
    pipe.generate("Type 2 diabetes mellitus with chronic kidney disease stage 3.", [])
    for doc in docs:
        text = (text_dir / f"{doc}.txt").read_text(encoding="utf-8")
        t_all = time.perf_counter()
        mentions = nlp.extract(text) if nlp is not None else []
        mentions = pipe.mentions_for(text, mentions)
        n_mentions.append(len(mentions))
        results: dict[str, list[Any]] = {}
        for name, gen in pipe.generators_.items():
            if name == "structure":
                continue
            t = time.perf_counter()
            results[name] = gen.generate(text, mentions)
            times[name].append((time.perf_counter() - t) * 1000)
        if "structure" in pipe.generators_:
            t = time.perf_counter()
            seeds = merge(results, mentions, text_length=len(text), weights=weights)
            results["structure"] = pipe.generators_["structure"].generate(
                text, mentions, seeds=seeds
            )
            times["structure"].append((time.perf_counter() - t) * 1000)
        merged = merge(results, mentions, text_length=len(text), max_candidates=args.max_candidates)
        times["merged_total"].append((time.perf_counter() - t_all) * 1000)
        for name, cands in results.items():
            ranked[name][doc] = [c.code for c in cands if c.system == system]
        ranked["merged"][doc] = [c.code for c in merged if c.system == system]

    for name, per_doc in ranked.items():
        report[name] = recall_table(per_doc, gold)
    report["notes"] = len(docs)
    report["mean_mentions_per_note"] = round(statistics.mean(n_mentions), 1) if n_mentions else 0
    report["latency_ms"] = {
        k: {"median": round(statistics.median(v), 1), "p90": round(percentile(v, 0.9), 1)}
        for k, v in times.items()
    }
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if args.fit_weights:
        report["fit_weights"] = fit_weights(rows, gold, docs)
    print(json.dumps(report, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
