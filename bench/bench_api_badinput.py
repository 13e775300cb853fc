"""Bad input against a running server: every case must get a clear 4xx, never a 5xx; then a
schemathesis run over the OpenAPI spec, counting server errors (the bar: zero).

    python bench/bench_api_badinput.py                      # fake engine
    python bench/bench_api_badinput.py --engine real --max-examples 100

The bad-input cases are those of tests/serve/test_bad_input.py (loaded by path), sent over a
real socket to a real uvicorn here.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from bench_api_load import Server


def load_cases() -> list[tuple[str, str, str, dict[str, object], int]]:
    from repo_modules import load_repo_module

    mod = load_repo_module("tests/serve/test_bad_input.py", "clinicode_bad_input_cases")
    cases: list[tuple[str, str, str, dict[str, object], int]] = mod.CASES
    return cases


def run_cases(server: Server) -> int:
    bad = 0
    print(f"{'case':32} {'status':>6}  message")
    with httpx.Client(base_url=server.base, headers={"X-API-Key": server.key}, timeout=60) as c:
        for name, method, path, kwargs, expected in load_cases():
            r = c.request(method, path, **kwargs)  # type: ignore[arg-type]
            try:
                body = r.json()
                msg = body.get("message") or body.get("detail")
            except json.JSONDecodeError:
                msg = r.text[:80]
            msg = msg if isinstance(msg, str) else json.dumps(msg)
            flag = (
                ""
                if r.status_code == expected and 400 <= r.status_code < 500
                else "  <-- UNEXPECTED"
            )
            bad += bool(flag)
            print(f"{name:32} {r.status_code:>6}  {msg[:90]}{flag}")
    return bad


def run_schemathesis(server: Server, max_examples: int, max_time: int) -> int:
    exe = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not Path(exe).exists():
        print("schemathesis is not installed (pip install schemathesis): skipped")
        return 0
    cmd = [
        exe, "run", f"{server.base}/openapi.json",
        "--header", f"X-API-Key: {server.key}",
        "--checks", "not_a_server_error",
        "--max-examples", str(max_examples),
        "--max-time", str(max_time),
        "--phases", "examples,coverage,fuzzing",
        "--workers", "2",
        "--suppress-health-check", "all",
        "--no-color",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    text = out.stdout + out.stderr
    tail = "\n".join(text.strip().splitlines()[-25:])
    print(tail)
    server_errors = len(re.findall(r"Server error", text))
    print(f"schemathesis exit={out.returncode} server_error_reports={server_errors}")
    return out.returncode


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--engine", choices=("fake", "real"), default="fake")
    ap.add_argument("--max-examples", type=int, default=50)
    ap.add_argument("--max-time", type=int, default=240, help="schemathesis time budget (s)")
    args = ap.parse_args()
    server = Server(args.engine, workers=1, log_level="error")
    try:
        server.wait_ready(600)
        bad = run_cases(server)
        print(f"bad-input cases: {len(load_cases())}, unexpected responses: {bad}")
        rc = run_schemathesis(server, args.max_examples, args.max_time)
        log = server.log.read_text(errors="replace")
        print(f"server log lines with 'unexpected' (500s): {log.count('unexpected ')}")
    finally:
        server.stop()
    if bad or rc:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
