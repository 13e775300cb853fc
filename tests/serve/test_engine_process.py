"""Engine calls in child processes (serve/engine_process.py): the work runs in another process,
the worker answers /health/live while that process is busy, a deadline stops the child's
work, a child stuck past its deadline is killed and replaced, and a child that dies is
replaced with a 503 + Retry-After meanwhile."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
BODY = {"text": "Pneumonia.", "setting": "outpatient"}


@pytest.fixture
def make_client(settings: Any, user_key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from clinicode.serve.app import create_app
    from clinicode.serve.engine_process import ProcessEngineFactory

    monkeypatch.syspath_prepend(str(HERE))  # the spawned child imports procfake by name
    import procfake

    clients: list[Any] = []

    def make(busy_s: float = 60.0, grace_s: float = 5.0, **overrides: Any) -> Any:
        factory = ProcessEngineFactory(
            procfake.FakeFactory(busy_s), processes=1, kill_grace_s=grace_s, nice=0
        )
        app = create_app(
            settings.model_copy(update={"model_load_timeout_s": 120, **overrides}),
            engine_factory=factory,
        )
        client = TestClient(app)
        client.headers["X-API-Key"] = user_key
        clients.append(client)
        return client

    yield make
    for c in clients:  # ends the children of a test that failed midway
        engine = c.app.state.service.holder.engine
        if engine is not None:
            engine.close()


def _pid(response: Any) -> int:
    assert response.status_code == 200, response.text
    (warning,) = response.json()["warnings"]
    return int(warning.removeprefix("pid "))


def _until_ok(c: Any, body: dict[str, Any], timeout_s: float = 120.0) -> Any:
    end = time.monotonic() + timeout_s
    while True:
        r = c.post("/v1/suggest", json=body)
        if r.status_code == 200 or time.monotonic() > end:
            return r
        assert r.status_code == 503 and r.headers.get("Retry-After")
        time.sleep(0.5)


def test_engine_work_runs_in_another_process(make_client: Any) -> None:
    with make_client() as c:
        pid = _pid(c.post("/v1/suggest", json=BODY))
        assert pid != os.getpid()
        engine = c.app.state.service.holder.engine
        assert engine.pids == [pid]
        ready = c.get("/health/ready").json()
        assert ready["status"] == "ready" and ready["model"]["name"] == "fake-process-engine"
    assert not engine.pids  # the worker's shutdown ended its engine process


def test_live_answers_while_the_engine_process_is_busy(make_client: Any) -> None:
    with make_client(request_deadline_s=8.0) as c:
        _pid(c.post("/v1/suggest", json=BODY))  # loaded
        out: list[Any] = []
        busy = threading.Thread(
            target=lambda: out.append(c.post("/v1/suggest", json={**BODY, "text": "BUSY"}))
        )
        busy.start()
        time.sleep(0.5)
        live = c.get("/health/live")
        assert live.status_code == 200 and live.json() == {"status": "live"}
        assert busy.is_alive()  # answered while the child was still working on the note
        busy.join(30)
        assert out[0].status_code == 503 and "deadline" in out[0].json()["detail"]
        assert out[0].headers["Retry-After"]


def test_deadline_stops_the_child_which_then_serves_the_next_note(make_client: Any) -> None:
    with make_client(request_deadline_s=1.0) as c:
        first = _pid(c.post("/v1/suggest", json=BODY))
        r = c.post("/v1/suggest", json={**BODY, "text": "BUSY"})
        assert r.status_code == 503 and "deadline" in r.json()["detail"]
        assert _pid(c.post("/v1/suggest", json=BODY)) == first  # stopped, not killed


def test_a_child_stuck_past_its_deadline_is_killed_and_replaced(make_client: Any) -> None:
    with make_client(request_deadline_s=1.0, grace_s=1.0) as c:
        first = _pid(c.post("/v1/suggest", json=BODY))
        r = c.post("/v1/suggest", json={**BODY, "text": "STUCK"})
        assert r.status_code == 503 and r.headers["Retry-After"]  # at its deadline
        engine = c.app.state.service.holder.engine
        end = time.monotonic() + 30
        while engine.replaced == 0 and time.monotonic() < end:  # killed a grace period later
            time.sleep(0.1)
        assert engine.replaced == 1
        second = _pid(_until_ok(c, BODY))
        assert second != first and engine.pids == [second]


def test_a_child_that_dies_gets_503_with_retry_after_and_is_replaced(make_client: Any) -> None:
    with make_client(request_deadline_s=60.0) as c:
        first = _pid(c.post("/v1/suggest", json=BODY))
        r = c.post("/v1/suggest", json={**BODY, "text": "DIE"})
        assert r.status_code == 503 and r.headers["Retry-After"] == "10"
        assert "died" in r.json()["detail"]
        second = _pid(_until_ok(c, BODY))
        assert second != first
        assert c.app.state.service.holder.engine.pids == [second]
