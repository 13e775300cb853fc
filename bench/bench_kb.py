"""Benchmark the code-set knowledge base: build/import times, open, lookup and search latency.

Builds a KB in a temporary folder (ICD-10-CM + CPT starter set, then the Alphabetic Index CSV,
the Neoplasm/Drug/External-cause tables, ICD-10-PCS and HCPCS from ../shared/data when present)
and prints timings (median and p95) and counts. Run: ``.venv/bin/python bench/bench_kb.py``
(``--kb PATH`` reuses an existing KB instead of building one; ``--repeat N`` search passes).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLINICODE_SHARED_DATA", REPO.parent / "shared" / "data"))

IMPORTS = [
    ("index", "icd10cm-index-2025/ICD10CM_2025_Index.csv"),
    ("neoplasm", "icd10cm-tables-2025/icd-10-cm-neoplasm-2025.xml"),
    ("drug", "icd10cm-tables-2025/icd-10-cm-drug-2025.xml"),
    ("eindex", "icd10cm-tables-2025/icd-10-cm-eindex-2025.xml"),
    ("pcs", "pcs/icd10pcs_order_2026.txt"),
    ("hcpcs", "hcpcs-2025/HCPC2025_OCT_ANWEB.csv"),
]

# Realistic coder queries: diagnoses, procedures, supplies, code spellings.
QUERIES = [
    "hypertension",
    "essential hypertension",
    "type 2 diabetes with chronic kidney disease",
    "type 2 diabetes mellitus without complications",
    "diabetic neuropathy",
    "heart failure",
    "acute on chronic systolic heart failure",
    "atrial fibrillation",
    "acute myocardial infarction",
    "chronic obstructive pulmonary disease with exacerbation",
    "decompensated COPD",
    "asthma",
    "pneumonia",
    "community acquired pneumonia",
    "urinary tract infection",
    "sepsis",
    "acute kidney injury",
    "chronic kidney disease stage 3",
    "hyperlipidemia",
    "hypothyroidism",
    "major depressive disorder recurrent",
    "generalized anxiety disorder",
    "low back pain",
    "osteoarthritis of knee",
    "fracture of femur",
    "closed fracture of left distal radius",
    "obesity",
    "morbid obesity BMI 40",
    "gastroesophageal reflux disease",
    "iron deficiency anemia",
    "lung cancer",
    "Neoplasm, lung, malignant primary",
    "breast cancer",
    "aspirin poisoning accidental",
    "adverse effect of insulin",
    "fall from ladder",
    "migraine",
    "dementia",
    "cellulitis of leg",
    "pregnancy",
    "colonoscopy with biopsy",
    "chest x-ray",
    "office visit established patient",
    "laparoscopic cholecystectomy",
    "knee replacement",
    "appendectomy",
    "wheelchair",
    "E11.22",
    "e1122",
    "I50.9",
    "99213",
    "0DTJ4ZZ",
    "J1100",
]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def fmt(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.3f} ms, p95 {pct(values, 95):.3f} ms (n={len(values)})"
    )


def build(path: Path) -> None:
    from clinicode.kb import build_icd10cm
    from clinicode.kb.importers import run_import

    t = time.perf_counter()
    info = build_icd10cm(path)
    print(f"build ICD-10-CM {info.version} + CPT starter: {time.perf_counter() - t:.2f} s")
    for kind, rel in IMPORTS:
        src = SHARED / rel
        if not src.exists():
            print(f"import {kind}: skipped ({src} absent)")
            continue
        t = time.perf_counter()
        report = run_import(kind, src, path)
        print(
            f"import {kind}: {time.perf_counter() - t:.2f} s  {report['version']}  {report['counts']}"
        )


def open_time(path: Path) -> float:
    """Seconds for a fresh process to import clinicode.kb, open the KB and do one lookup."""
    code = (
        "import time; t=time.perf_counter(); from clinicode.kb import open_kb; "
        f"kb=open_kb({str(path)!r}); kb.get('E11.22'); print(time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kb", type=Path, default=None, help="use this KB instead of building one")
    ap.add_argument("--repeat", type=int, default=3, help="search passes over the query list")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.kb or Path(tmp) / "kb.sqlite"
        if args.kb is None:
            build(path)
        from clinicode.kb import open_kb

        opens = [open_time(path) * 1000 for _ in range(3)]
        print(f"open (fresh process, import + open + first lookup): {fmt(opens)}")
        kb = open_kb(path)
        for s in kb.systems():
            extra = {
                k: v for k, v in s.extra.items() if k in ("index", "neoplasm", "drug", "eindex")
            }
            print(
                f"  {s.system} {s.version}: {s.n_codes} codes, {s.n_billable} billable {extra or ''}"
            )
        n_terms = sum(1 for _ in kb.iter_terms())
        print(
            f"  terms: {n_terms}; index entries: "
            + ", ".join(
                f"{src}={kb.index_count(src)}" for src in ("index", "neoplasm", "drug", "eindex")
            )
        )

        rng = random.Random(0)
        codes = [r.code for r in kb.iter_codes("ICD-10-CM", billable_only=True)]
        sample = rng.sample(codes, 2000)
        for c in sample[:100]:
            kb.get(c)
        lookups = []
        for c in sample:
            t = time.perf_counter()
            kb.get(c)
            lookups.append((time.perf_counter() - t) * 1000)
        print(f"lookup kb.get(code) without system: {fmt(lookups)}")
        lookups = []
        for c in sample:
            t = time.perf_counter()
            kb.get(c, "ICD-10-CM")
            lookups.append((time.perf_counter() - t) * 1000)
        print(f"lookup kb.get(code, 'ICD-10-CM'):   {fmt(lookups)}")

        first: list[float] = []
        for q in QUERIES:
            t = time.perf_counter()
            kb.search(q, limit=20)
            first.append((time.perf_counter() - t) * 1000)
        print(f"search, first pass over {len(QUERIES)} queries (cold caches): {fmt(first)}")
        per_query: dict[str, list[float]] = {q: [] for q in QUERIES}
        cpu_query: dict[str, list[float]] = {q: [] for q in QUERIES}
        for _ in range(args.repeat):
            for q in QUERIES:
                t, c = time.perf_counter(), time.process_time()
                kb.search(q, limit=20)
                per_query[q].append((time.perf_counter() - t) * 1000)
                cpu_query[q].append((time.process_time() - c) * 1000)
        medians = [statistics.median(v) for v in per_query.values()]
        print(f"search, per-query median of {args.repeat} warm passes: {fmt(medians)}")
        cpu = [statistics.median(v) for v in cpu_query.values()]
        print(f"  same, CPU time of this process (less sensitive to a busy machine): {fmt(cpu)}")
        print(f"  load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        slow = sorted(per_query.items(), key=lambda kv: -statistics.median(kv[1]))[:5]
        print("  slowest: " + "; ".join(f"{q!r} {statistics.median(v):.1f} ms" for q, v in slow))
        print("top hit per query:")
        for q in QUERIES:
            hits = kb.search(q, limit=3)
            top = f"{hits[0].system} {hits[0].code} {hits[0].title[:60]!r}" if hits else "-"
            print(f"  {q!r:58} -> {top}")


if __name__ == "__main__":
    main()
