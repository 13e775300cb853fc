"""SIGKILL the server (``clinicode serve``, 2 workers) during a burst of feedback writes: every
write it acknowledged (201) is in the database after a restart."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

N_NOTES = 40
N_CLIENTS = 8
# The line on which `clinicode serve` prints a newly created key (indented, nothing else on it).
KEY_LINE = re.compile(r"^\s+(ck_\S+)\s*$", re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICODE_")}
    env["CLINICODE_DATA_DIR"] = str(data)
    env["CLINICODE_MODEL_DIR"] = str(data / "no-pack")  # the engine is not needed here
    cmd = [sys.executable, "-m", "clinicode.cli", "serve", "--port", str(port), "--workers", "2"]
    with log.open("ab") as fh:
        return subprocess.Popen(cmd, env=env, stdout=fh, stderr=fh, start_new_session=True)


def _wait_live(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(base + "/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server did not start:\n{log.read_text()[-3000:]}")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def test_acknowledged_feedback_survives_sigkill(tmp_path: Path, kb_path: Path, engine: Any) -> None:
    from clinicode.serve.store import FeedbackStore
    from clinicode.settings import Settings

    data = tmp_path / "data"
    data.mkdir()
    (data / "kb.sqlite").symlink_to(kb_path)
    settings = Settings(data_dir=data)
    # Notes the engine coded earlier (so feedback can refer to them by note id and code).
    store = FeedbackStore(settings.resolved_database_url)
    for i in range(N_NOTES):
        text = f"Note {i}: type 2 diabetes mellitus and hypertension."
        store.record_suggestions(
            note_id=f"note-{i}",
            text_=text,
            setting="outpatient",
            note_type=None,
            key_id="seed",
            result=engine.suggest(text),
        )
    store.close()

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    proc = _start(data, port, log)
    try:
        _wait_live(base, proc, log)
        m = KEY_LINE.search(log.read_text())
        assert m, "first run must print the new API key"
        key = m.group(1)
        assert key not in settings.api_keys_file.read_text()  # only its hash is stored

        acked: list[tuple[int, str, str]] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def client(worker: int) -> None:
            with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=5) as c:
                j = 0
                while not stop.is_set():
                    note = f"note-{(worker * 7 + j) % N_NOTES}"
                    action = "accept" if j % 2 == 0 else "reject"
                    j += 1
                    try:
                        r = c.post(
                            "/v1/feedback",
                            json={"note_id": note, "code": "E11.9", "action": action},
                        )
                    except httpx.HTTPError:
                        return  # the server died under us: this write was never acknowledged
                    if r.status_code == 201:
                        with lock:
                            acked.append((r.json()["feedback_id"], note, action))
                    else:
                        with lock:
                            errors.append(f"{r.status_code}: {r.text}")

        threads = [threading.Thread(target=client, args=(w,)) for w in range(N_CLIENTS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        _kill(proc)  # mid-burst: the clients are still sending
        stop.set()
        for t in threads:
            t.join(timeout=10)
        assert not errors, errors[:5]
        assert len(acked) >= 50, "the burst was too small to test anything"
    finally:
        if proc.poll() is None:
            _kill(proc)

    # Restart: no new key is printed, the old one works, every acknowledged row is there.
    log.write_text("")
    proc = _start(data, port, log)
    try:
        _wait_live(base, proc, log)
        assert not KEY_LINE.search(log.read_text()), "a restart must not print a new key"
        r = httpx.get(base + "/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()["role"] == "admin"
        store = FeedbackStore(settings.resolved_database_url)
        rows = {fb.id: (fb.note_id, fb.action) for fb in store.feedback_rows()}
        store.close()
        missing = [a for a in acked if rows.get(a[0]) != (a[1], a[2])]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged writes lost"
    finally:
        _kill(proc)
