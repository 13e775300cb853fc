"""Load test of the HTTP API: N concurrent clients send CodiEsp dev notes to /v1/suggest.

Starts a server on 127.0.0.1 (a free port) in a subprocess, waits until /health/ready, runs the
load for a fixed time, and prints requests, errors, throughput and latency percentiles.

    python bench/bench_api_load.py                      # fake engine, 16 clients, 60 s, 2 workers
    python bench/bench_api_load.py --engine real        # clinicode.load() (the default pack)
    python bench/bench_api_load.py --clients 8 --duration 20 --workers 1

The fake engine (tests/serve/conftest.py) measures the service itself: auth, validation, the
audit writes and JSON; ``--engine real`` measures what a coder sees. Traffic goes to loopback
only, and the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_NOTES = REPO.parent / "shared" / "data" / "codiesp" / "dev" / "text_files_en"


def fake_app() -> Any:
    """uvicorn factory: the service with the test suite's fake engine (loaded by path)."""
    from repo_modules import load_repo_module

    from clinicode.kb import open_kb
    from clinicode.serve.app import create_app
    from clinicode.settings import get_settings

    fakes = load_repo_module("tests/serve/conftest.py", "clinicode_serve_fakes")
    settings = get_settings()
    return create_app(
        settings, engine_factory=lambda: fakes.FakeEngine(kb=open_kb(settings.kb_path))
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess on 127.0.0.1 with its own data dir and one bench API key."""

    def __init__(
        self,
        engine: str,
        workers: int,
        log_level: str = "warning",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        from clinicode.settings import Settings

        user = Settings()  # the caller's settings: where the KB and default pack are
        self.tmp = tempfile.TemporaryDirectory(prefix="clinicode-bench-")
        data = Path(self.tmp.name)
        if user.kb_path.exists():
            (data / "kb.sqlite").symlink_to(user.kb_path)
        if (user.data_dir / "cache").is_dir():  # the built NLP lexicon: no rebuild per run
            (data / "cache").symlink_to(user.data_dir / "cache")
            if user.integrity_key_path.is_file():  # the key that sealed it (else: rebuilt)
                (data / "integrity.key").symlink_to(user.integrity_key_path)
        self.key = "bench-" + secrets.token_hex(16)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICODE_")}
        env.update(
            CLINICODE_DATA_DIR=str(data),
            CLINICODE_API_KEYS=self.key,
            CLINICODE_ADMIN_API_KEYS=self.key,
            CLINICODE_MODEL_DIR=str(user.default_pack_dir),
            CLINICODE_LOG_LEVEL=log_level,
        )
        env.update(extra_env or {})
        if engine == "fake":
            cmd = [
                sys.executable, "-m", "uvicorn", "--factory", "bench_api_load:fake_app",
                "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(workers), "--log-level", log_level, "--no-access-log",
            ]  # fmt: skip
        else:
            cmd = [
                sys.executable, "-m", "clinicode.cli", "serve", "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", str(workers),
            ]  # fmt: skip
        self.log = data / "server.log"
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=fh, stderr=fh, start_new_session=True, cwd=REPO
            )

    def wait_ready(self, timeout: float) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited:\n{self.log.read_text()[-3000:]}")
            try:
                r = httpx.get(self.base + "/health/ready", timeout=2)
                if r.status_code == 200:
                    return time.monotonic() - t0
                if r.json().get("status") == "failed":
                    raise SystemExit(f"model failed to load: {r.json().get('reason')}")
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise SystemExit(f"server not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.tmp.cleanup()


def read_notes(folder: Path, limit: int | None = None) -> list[str]:
    files = sorted(folder.glob("*.txt"))[:limit]
    if not files:
        raise SystemExit(f"no notes in {folder} (CodiEsp dev text_files_en)")
    return [f.read_text(encoding="utf-8") for f in files]


async def run_load(
    base: str, key: str, notes: list[str], clients: int, duration: float, setting: str
) -> tuple[list[float], dict[str, int]]:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    deadline = time.monotonic() + duration
    counter = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": key}, timeout=120, limits=limits
    ) as client:

        async def worker() -> None:
            nonlocal counter
            while time.monotonic() < deadline:
                text = notes[counter % len(notes)]
                counter += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/suggest", json={"text": text, "setting": setting})
                    outcome = str(r.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                latencies.append(time.perf_counter() - t0)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, outcomes


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--engine", choices=("fake", "real"), default="fake")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--notes", type=Path, default=DEFAULT_NOTES)
    ap.add_argument("--setting", choices=("inpatient", "outpatient"), default="outpatient")
    ap.add_argument("--ready-timeout", type=float, default=600.0)
    args = ap.parse_args()

    notes = read_notes(args.notes)
    server = Server(args.engine, args.workers)
    try:
        ready_s = server.wait_ready(args.ready_timeout)
        # One warm-up request per worker, not counted.
        asyncio.run(run_load(server.base, server.key, notes[:4], args.workers, 0.5, args.setting))
        t0 = time.monotonic()
        lat, outcomes = asyncio.run(
            run_load(server.base, server.key, notes, args.clients, args.duration, args.setting)
        )
        wall = time.monotonic() - t0
    finally:
        server.stop()
    n = len(lat)
    ok = outcomes.get("200", 0)
    ms = [x * 1000 for x in lat]
    print(
        f"engine={args.engine} workers={args.workers} clients={args.clients} "
        f"duration={wall:.1f}s notes={len(notes)} (mean {statistics.mean(map(len, notes)):.0f} chars) "
        f"ready_after={ready_s:.1f}s cores={os.cpu_count()}"
    )
    print(f"requests={n} ok={ok} errors={n - ok} outcomes={outcomes}")
    print(f"throughput={ok / wall:.1f} req/s")
    print(
        f"latency_ms p50={pct(ms, 50):.1f} p95={pct(ms, 95):.1f} p99={pct(ms, 99):.1f} "
        f"max={max(ms, default=float('nan')):.1f}"
    )
    if n - ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
