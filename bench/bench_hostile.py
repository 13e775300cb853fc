"""Hostile inputs and overload against a running server (issue 13, failures 1 and 2).

Starts the real service on 127.0.0.1 (a free port, a temporary data dir; the caller's KB, NLP
cache and default pack) in a subprocess, then:

1. sends each hostile note to ``/v1/suggest`` one at a time and prints its status, latency,
   response size and warnings, with ``/health/live`` polled every 50 ms meanwhile (p50, p99,
   max) and a short note sent alongside (how long it waited behind the hostile one);
   then a 200,000-character realistic note (MTSamples transcriptions back to back);
2. runs N clients for a fixed time against ``/v1/suggest`` with CodiEsp dev notes and a client
   timeout, with ``/health/live`` polled meanwhile: requests, outcomes, timeouts, whether
   every non-200 was a 429/503 with Retry-After, and the live latency percentiles.

    python bench/bench_hostile.py                        # hostile inputs, then 256 and 64 clients
    python bench/bench_hostile.py --skip-load            # hostile inputs only
    python bench/bench_hostile.py --skip-hostile --loads 256 --duration 60

Bars (issue 13): each hostile note <= 2 s (or 413/422/503 at once) with live < 100 ms; the
realistic 200,000-character note <= 3 s; 256 clients: 0 timeouts at 30 s, every non-200 a
429/503 with Retry-After, live p99 < 100 ms; 64 clients: 0 errors. Timings depend on the
machine's cores and load: the script prints ``os.cpu_count()`` and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from bench_api_load import DEFAULT_NOTES, Server, pct, read_notes  # noqa: E402

MTSAMPLES = BENCH_DIR.parent.parent / "shared" / "data" / "mtsamples" / "mtsamples.csv"
SHORT_NOTE = (
    "72 yo M with HTN and type 2 diabetes presents with productive cough and fever; "
    "CXR shows RLL pneumonia."
)


def hostile_notes() -> list[tuple[str, str]]:
    return [
        ('")" * 20000', ")" * 20000),
        ('"😀" * 200000', "😀" * 200000),
        ('"no pneumonia. " * 1000', "no pneumonia. " * 1000),
        ('"pneumonia " * 20000', "pneumonia " * 20000),
        ('"diabetes," * 22000', "diabetes," * 22000),
        ('"\'s" * 100000', "'s" * 100000),
        ('"a " * 100000', "a " * 100000),
    ]


def realistic_note(chars: int = 200_000) -> str | None:
    if not MTSAMPLES.is_file():
        return None
    out: list[str] = []
    size = 0
    with MTSAMPLES.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            t = (row.get("transcription") or "").strip()
            if not t:
                continue
            if size + len(t) + 2 > chars:
                break
            out.append(t)
            size += len(t) + 2
    return "\n\n".join(out)


class LiveProbe:
    """Polls ``/health/live`` every ``every`` seconds until stopped; latencies in ms."""

    def __init__(self, base: str, every: float = 0.05) -> None:
        self.base = base
        self.every = every
        self.ms: list[float] = []
        self.failures = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    r = await client.get("/health/live")
                    if r.status_code != 200:
                        self.failures += 1
                except httpx.HTTPError:
                    self.failures += 1
                self.ms.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(self.every)

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> str:
        if not self.ms:
            return "live: no probes"
        return (
            f"live n={len(self.ms)} p50={pct(self.ms, 50):.1f}ms p99={pct(self.ms, 99):.1f}ms "
            f"max={max(self.ms):.1f}ms failures={self.failures}"
        )


def _probe_alone(base: str, every: float, seconds: float, out: Any) -> None:
    """A :class:`LiveProbe` in a process of its own for ``seconds`` (its latencies to ``out``):
    a probe on the load client's own event loop also measures that loop, busy with hundreds
    of connections."""

    async def go() -> None:
        probe = LiveProbe(base, every)
        task = asyncio.create_task(probe.run())
        await asyncio.sleep(seconds)
        probe.stop()
        await task
        out.send((probe.ms, probe.failures))

    asyncio.run(go())


async def post_note(
    client: httpx.AsyncClient, text: str, timeout: float
) -> tuple[str, float, int, dict[str, Any]]:
    t0 = time.perf_counter()
    try:
        r = await client.post(
            "/v1/suggest", json={"text": text, "setting": "outpatient"}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        return type(exc).__name__, time.perf_counter() - t0, 0, {}
    info: dict[str, Any] = {"retry_after": r.headers.get("retry-after")}
    if r.status_code == 200:
        info["warnings"] = r.json().get("warnings", [])
    else:
        info["detail"] = str(r.json().get("detail", ""))[:120]
    return str(r.status_code), time.perf_counter() - t0, len(r.content), info


async def hostile(base: str, key: str, timeout: float) -> None:
    notes = hostile_notes()
    real = realistic_note()
    if real is not None:
        notes.append((f"MTSamples realistic ({len(real)} chars)", real))
    else:
        print(f"warning: {MTSAMPLES} absent, realistic note skipped", file=sys.stderr)
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        for label, text in notes:
            probe = LiveProbe(base)
            probe_task = asyncio.create_task(probe.run())
            main = asyncio.create_task(post_note(client, text, timeout))
            await asyncio.sleep(0.2)  # the short note arrives while the hostile one runs
            short = await post_note(client, SHORT_NOTE, timeout)
            status, secs, size, info = await main
            probe.stop()
            await probe_task
            print(
                f"{label:38s} chars={len(text):7d} status={status} {secs:6.2f}s "
                f"bytes={size:9d} retry_after={info.get('retry_after')} | {probe.summary()} | "
                f"short note {short[0]} {short[1]:.2f}s | load_avg_1m={os.getloadavg()[0]:.1f}"
            )
            for w in info.get("warnings", []):
                print(f"{'':40s}warning: {w}")
            if "detail" in info:
                print(f"{'':40s}detail: {info['detail']}")


async def load(
    base: str, key: str, notes: list[str], clients: int, duration: float, timeout: float
) -> None:
    outcomes: dict[str, int] = {}
    lat: list[float] = []
    bad: dict[str, int] = {}  # non-200 answers other than 429/503 with Retry-After
    end = time.monotonic() + duration
    counter = 0
    probe = LiveProbe(base, every=0.1)
    probe_task = asyncio.create_task(probe.run())
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    alone = ctx.Process(target=_probe_alone, args=(base, 0.1, duration, sender), daemon=True)
    alone.start()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": key}, timeout=timeout, limits=limits
    ) as client:

        async def worker() -> None:
            nonlocal counter
            while time.monotonic() < end:
                text = notes[counter % len(notes)]
                counter += 1
                t0 = time.perf_counter()
                try:  # the client timeout bounds the whole request, not each read
                    r = await asyncio.wait_for(
                        client.post("/v1/suggest", json={"text": text, "setting": "outpatient"}),
                        timeout,
                    )
                    outcome = str(r.status_code)
                    if r.status_code != 200 and not (
                        r.status_code in (429, 503) and r.headers.get("retry-after")
                    ):
                        bad[outcome] = bad.get(outcome, 0) + 1
                except (httpx.TimeoutException, TimeoutError):
                    outcome = "timeout"
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                lat.append(time.perf_counter() - t0)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if outcome in ("429", "503"):  # as a client should: wait, then retry
                    await asyncio.sleep(float(r.headers.get("retry-after") or 1))

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.monotonic() - t0
    probe.stop()
    await probe_task
    ms = [x * 1000 for x in lat]
    n = len(lat)
    ok = outcomes.get("200", 0)
    print(
        f"clients={clients} duration={wall:.1f}s requests={n} ok={ok} "
        f"throughput={ok / wall:.1f} req/s outcomes={dict(sorted(outcomes.items()))}"
    )
    print(
        f"  latency_ms p50={pct(ms, 50):.0f} p95={pct(ms, 95):.0f} p99={pct(ms, 99):.0f} "
        f"max={max(ms, default=float('nan')):.0f}; timeouts={outcomes.get('timeout', 0)}; "
        f"non-200 without 429/503+Retry-After={sum(bad.values())} {bad or ''}"
    )
    own = LiveProbe(base)
    if receiver.poll(60):
        own.ms, own.failures = receiver.recv()
    alone.join(10)
    print(f"  {own.summary()} (probe in its own process); load_avg_1m={os.getloadavg()[0]:.1f}")
    print(f"  {probe.summary()} (probe on the load client's event loop)")


def settle(base: str, timeout: float) -> float:
    """Until 20 readiness probes in a row are 200 (every worker has loaded); seconds waited."""
    t0 = time.monotonic()
    streak = 0
    while streak < 20 and time.monotonic() - t0 < timeout:
        try:
            ok = httpx.get(base + "/health/ready", timeout=5).status_code == 200
        except httpx.HTTPError:
            ok = False
        streak = streak + 1 if ok else 0
        time.sleep(0.1 if ok else 1.0)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=30.0, help="client timeout (s)")
    ap.add_argument("--loads", default="256,64", help="client counts of the load runs")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--notes", type=Path, default=DEFAULT_NOTES)
    ap.add_argument("--skip-hostile", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--ready-timeout", type=float, default=900.0)
    ap.add_argument(
        "--env", action="append", default=[], help="extra server setting, NAME=VALUE (repeat)"
    )
    args = ap.parse_args()
    extra = dict(e.split("=", 1) for e in args.env)
    server = Server("real", args.workers, extra_env=extra)
    try:
        ready = server.wait_ready(args.ready_timeout)
        ready += settle(server.base, args.ready_timeout)
        load1 = os.getloadavg()[0]
        print(
            f"server ready after {ready:.1f}s; workers={args.workers} cores={os.cpu_count()} "
            f"load_avg_1m={load1:.1f} settings={extra or 'defaults'}"
        )
        if not args.skip_hostile:
            asyncio.run(hostile(server.base, server.key, args.timeout))
        if not args.skip_load:
            notes = read_notes(args.notes)
            for clients in (int(c) for c in args.loads.split(",") if c):
                asyncio.run(
                    load(server.base, server.key, notes, clients, args.duration, args.timeout)
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
