"""``clinicode batch`` throughput and memory, one machine and Spark local mode, 1 and 2 cores.

    .venv/bin/python bench/bench_batch.py [--notes 2751] [--engines local,spark] [--workers 2,1]
        [--model DIR] [--kb FILE]

Writes the CodiEsp background notes (``../shared/data/codiesp/background``, 2,751 English notes)
as JSONL, then runs ``clinicode batch`` once per engine and worker count as a subprocess pinned
to that many cores (``taskset``), into a fresh output. For each run it prints the wall time of
the whole command (start, pack load, JVM and Spark workers included), notes/s over that wall
time, the run's own notes/s (its report: after the pack load for the local engine, from the
Spark session's start for Spark), and the peak, sampled every 0.2 s, of the resident set size
summed over the command and all its child processes (forked workers, the JVM, Spark's Python
workers) and of the proportional set size (shared pages counted once), and the CPU seconds of
the process tree by process name (``java`` vs ``python``; on a shared machine the CPU time per
note moves far less than the wall time). The load average is printed with each run, and the
issue's bars last (``BAR`` lines): wall-clock figures are only as good as the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_engine import pss_kb  # bench/ is the script's sys.path[0]

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CLINICODE_SHARED_DATA", REPO.parent / "shared" / "data"))


class TreeMemory:
    """Samples the summed RSS and PSS of a process and its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_mb = 0.0
        self.peak_pss_mb = 0.0
        self.peak_procs = 0
        self._cpu: dict[int, tuple[str, float]] = {}  # pid: (name, CPU seconds last sampled)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            rss = pss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    self._cpu[p.pid] = (p.name(), t.user + t.system)
                except psutil.Error:
                    continue
                pss += pss_kb(p.pid) * 1024
            self.peak_rss_mb = max(self.peak_rss_mb, rss / 2**20)
            self.peak_pss_mb = max(self.peak_pss_mb, pss / 2**20)
            self.peak_procs = max(self.peak_procs, len(procs))
            self._stop.wait(0.2)

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds (user + system) of every process of the tree, summed by process name,
        each as last sampled (up to 0.2 s short; a process that lived under 0.2 s is missed)."""
        out: dict[str, float] = {}
        for name, sec in self._cpu.values():
            out[name] = round(out.get(name, 0.0) + sec, 1)
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _write_input(path: Path, n: int) -> int:
    files = sorted((DATA / "codiesp" / "background" / "text_files_en").glob("*.txt"))[:n]
    if not files:
        sys.exit(f"no notes under {DATA / 'codiesp' / 'background'}")
    with path.open("w", encoding="utf-8") as fh:
        for f in files:
            fh.write(json.dumps({"id": f.stem, "text": f.read_text(encoding="utf-8")}) + "\n")
    return len(files)


def _run(
    args: argparse.Namespace, engine: str, workers: int, inp: Path, work: Path, n: int
) -> dict:
    out = work / f"{engine}-{workers}.jsonl"
    cmd = [str(Path(sys.executable).with_name("clinicode")), "batch", str(inp), str(out)]
    cmd += ["--engine", engine, "--workers", str(workers), "--no-progress"]
    if args.model:
        cmd += ["--model", str(args.model)]
    if args.kb:
        cmd += ["--kb", str(args.kb)]
    if shutil.which("taskset") and (os.cpu_count() or 1) >= workers:
        cmd = ["taskset", "-c", ",".join(str(i) for i in range(workers)), *cmd]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mem = TreeMemory(proc.pid)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    mem.stop()
    cpu = mem.cpu_s()
    if proc.returncode != 0:
        return {"engine": engine, "workers": workers, "error": stderr[-1500:]}
    report = json.loads(stdout.strip().splitlines()[-1])
    return {
        "engine": engine,
        "cores": workers,
        "notes": n,
        "coded": report["coded"],
        "wall_s": round(wall, 1),
        "notes_per_s_wall": round(n / wall, 2),
        "notes_per_s_run": report["notes_per_s"],
        "cpu_s_all_processes": round(sum(cpu.values()), 1),
        "cpu_s_by_process_name": cpu,
        "cpu_ms_per_note": round(sum(cpu.values()) * 1000 / n, 1),
        "peak_rss_mb_all_processes": round(mem.peak_rss_mb),
        "peak_pss_mb_all_processes": round(mem.peak_pss_mb),
        "max_processes": mem.peak_procs,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        **{k: v for k, v in report.items() if k in ("engine_loads", "spark_tasks")},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--notes", type=int, default=2751)
    ap.add_argument("--engines", default="local,spark")
    ap.add_argument("--workers", default="2,1")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--kb", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        work = Path(tmp)
        inp = work / "background.jsonl"
        n = _write_input(inp, args.notes)
        results = []
        for w in (int(x) for x in args.workers.split(",")):
            for engine in args.engines.split(","):
                res = _run(args, engine, w, inp, work, n)
                print(json.dumps(res), flush=True)
                results.append(res)
        _print_bars(results)


def _print_bars(results: list[dict]) -> None:
    """The issue's bars, each with its figure and the load average it was measured under."""
    by = {(r["engine"], r.get("cores")): r for r in results if "error" not in r}
    bars: list[str] = []
    local2, spark2 = by.get(("local", 2)), by.get(("spark", 2))
    if local2:
        rate, rss = local2["notes_per_s_wall"], local2["peak_rss_mb_all_processes"]
        load = local2["load_avg_before"][0]
        bars.append(
            f"local, 2 workers: {rate} notes/s over the wall time (bar >= 45): "
            f"{'met' if rate >= 45 else 'MISSED'} (1-min load before: {load})"
        )
        bars.append(
            f"local, 2 workers: peak RSS summed over all processes {rss} MB "
            f"(bar <= 2048): {'met' if rss <= 2048 else 'MISSED'}"
        )
    for cores in (1, 2):
        local, spark = by.get(("local", cores)), by.get(("spark", cores))
        if local and spark:
            ratio = round(spark["notes_per_s_wall"] / local["notes_per_s_wall"], 3)
            print(json.dumps({"cores": cores, "spark_over_local_wall": ratio}))
            if cores == 2:
                bars.append(
                    f"spark / local notes/s on 2 cores: {ratio} (bar >= 0.70): "
                    f"{'met' if ratio >= 0.7 else 'MISSED'}"
                )
    if spark2 and local2:
        bars.append(
            "load averages (1 min) before local / spark: "
            f"{local2['load_avg_before'][0]} / {spark2['load_avg_before'][0]}; "
            "wall-clock figures on a shared machine are only as good as these"
        )
    for line in bars:
        print("BAR " + line)


if __name__ == "__main__":
    main()
