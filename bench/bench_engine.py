"""Engine speed and memory on CodiEsp dev notes (English), after load.

    .venv/bin/python bench/bench_engine.py [--model DIR] [--notes 100] [--threads 2] [--workers 2]

Prints JSON: pack load seconds (``clinicode.load`` with a cold cache, NLP and guidelines warmed
separately), median / p90 ``suggest`` latency per note end to end (NLP included), batch
throughput of ``suggest_many`` (notes/s) in one process and with ``--workers`` forked worker
processes (batches of 16 either way), peak resident memory of the main process (MB) and the
proportional set size of the main process and its workers together (shared pages counted once). Pin cores with
``taskset -c 0,1`` to measure "2 cores". The ``cpu`` figures (process CPU time, all threads) show what the
engine costs when the machine is shared and wall-clock figures are inflated by other jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CLINICODE_SHARED_DATA", REPO.parent / "shared" / "data"))


def pss_kb(pid: int) -> int:
    """Proportional set size of a process (shared pages split between their users), in kB."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--notes", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--workers", type=int, default=2, help="worker processes for the second batch run"
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    import clinicode
    from clinicode.gcpause import freeze_long_lived

    files = sorted((DATA / "codiesp" / "dev" / "text_files_en").glob("*.txt"))[: args.notes]
    texts = [f.read_text(encoding="utf-8") for f in files]
    t0 = time.perf_counter()
    engine = clinicode.load(args.model)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine.warm_up()
    engine.suggest(texts[0])
    warm_s = time.perf_counter() - t0
    freeze_long_lived()  # as the server's engine process and the batch workers do
    lat, cpu = [], []
    for t in texts:
        t1, c1 = time.perf_counter(), time.process_time()
        engine.suggest(t)
        lat.append((time.perf_counter() - t1) * 1000)
        cpu.append((time.process_time() - c1) * 1000)
    t1, c1 = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), 16):
        engine.suggest_many(texts[i : i + 16])
    batch_s = time.perf_counter() - t1
    batch_cpu_s = time.process_time() - c1
    engine.suggest_many(texts[:16], workers=args.workers)  # starts the pool (forks once)
    t1 = time.perf_counter()
    for i in range(0, len(texts), 16):
        engine.suggest_many(texts[i : i + 16], workers=args.workers)
    workers_s = time.perf_counter() - t1
    pids = [os.getpid(), *[p.pid for p in getattr(engine._pool, "_pool", [])]]
    pss_mb = sum(pss_kb(pid) for pid in pids) / 1024
    engine.close()
    print(
        json.dumps(
            {
                "model": engine.info.model_dump(),
                "notes": len(texts),
                "pack_load_s": round(load_s, 2),
                "warm_up_s (NLP pipeline, guidelines, first note)": round(warm_s, 2),
                "median_ms": round(statistics.median(lat), 1),
                "p90_ms": round(sorted(lat)[int(0.9 * len(lat)) - 1], 1),
                "batch_notes_per_s": round(len(texts) / batch_s, 1),
                f"batch_notes_per_s_{args.workers}_workers": round(len(texts) / workers_s, 1),
                f"pss_mb_parent_and_{args.workers}_workers": round(pss_mb, 1),
                "median_cpu_ms": round(statistics.median(cpu), 1),
                "batch_cpu_ms_per_note": round(batch_cpu_s * 1000 / len(texts), 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
