"""Schemathesis over the OpenAPI spec against a live server: no generated request gets a 5xx.

A short run for CI (a few examples per operation); ``bench/bench_api_badinput.py`` runs a
longer one. Skips where schemathesis is not installed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_schemathesis_finds_no_server_error(settings: Any, engine: Any, admin_key: str) -> None:
    exe = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not Path(exe).exists():
        pytest.skip("needs the schemathesis package")
    import uvicorn

    from clinicode.serve.app import create_app

    port = _free_port()
    app = create_app(settings, engine_factory=lambda: engine)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not srv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.started
        cmd = [
            exe, "run", f"http://127.0.0.1:{port}/openapi.json",
            "--header", f"X-API-Key: {admin_key}",
            "--checks", "not_a_server_error",
            "--max-examples", "5", "--max-time", "30",
            "--phases", "examples,coverage,fuzzing",
            "--suppress-health-check", "all", "--no-color",
            "--generation-deterministic",
        ]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-4000:]
    assert "Server error" not in report
    operations = sum(
        1
        for methods in app.openapi()["paths"].values()
        for m in methods
        if m in ("get", "post", "put", "patch", "delete")
    )
    assert f"Tested: {operations}" in report  # every operation was exercised
