"""Load shedding: queue full -> 503, deadline -> 503, rate limit -> 429 (each with Retry-After),
a client gone -> its work dropped, and /health/live answering while the engine is busy."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from clinicode.deadline import Deadline, DeadlineExceeded, check_deadline, within


class BlockingEngine:
    """The fake engine, whose ``suggest`` waits until released (or ``timeout_s`` passes)."""

    def __init__(self, inner: Any, timeout_s: float = 30.0) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.entered = threading.Event()
        self.timeout_s = timeout_s
        self.calls = 0

    def __getattr__(self, name: str) -> Any:  # info, code_sets, kb, suggest_many
        return getattr(self.inner, name)

    def suggest(self, text: str, *args: Any, **kw: Any) -> Any:
        self.calls += 1
        self.entered.set()
        self.release.wait(self.timeout_s)
        check_deadline()  # as the scoring path does between stages
        return self.inner.suggest(text, *args, **kw)


@pytest.fixture
def make_client(settings: Any, user_key: str) -> Any:
    from fastapi.testclient import TestClient

    from clinicode.serve.app import create_app

    def make(engine: Any, **overrides: Any) -> Any:
        app = create_app(settings.model_copy(update=overrides), engine_factory=lambda: engine)
        client = TestClient(app)
        client.headers["X-API-Key"] = user_key
        return client

    return make


@pytest.fixture
def blocking(engine: Any) -> Iterator[BlockingEngine]:
    held = BlockingEngine(engine)
    yield held
    held.release.set()


def _in_thread(client: Any, body: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(client.post("/v1/suggest", json=body)))
    t.start()
    return t, out


BODY = {"text": "Pneumonia.", "setting": "outpatient"}


def test_queue_full_gives_503_with_retry_after_at_once(make_client: Any, blocking: Any) -> None:
    with make_client(blocking, max_queue=0, engine_concurrency=1, retry_after_s=7) as c:
        first, out = _in_thread(c, BODY)
        assert blocking.entered.wait(10)
        r = c.post("/v1/suggest", json=BODY)
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "7"
        assert "busy" in r.json()["detail"]
        assert blocking.calls == 1  # the refused note never reached the engine
        blocking.release.set()
        first.join(10)
        assert out[0].status_code == 200


def test_a_wait_past_max_wait_is_refused_at_once_with_its_estimate(
    make_client: Any, blocking: Any
) -> None:
    with make_client(blocking, max_wait_s=5, engine_concurrency=1, retry_after_s=2) as c:
        adm = c.app.state.service.admission
        first, out = _in_thread(c, BODY)
        assert blocking.entered.wait(10)
        adm.per_unit_s = 10.0  # as if recent notes took 10 s each
        r = c.post("/v1/suggest", json=BODY)
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "20"  # the one running, then this one
        assert "CLINICODE_MAX_WAIT_S" in r.json()["detail"]
        assert blocking.calls == 1 and adm.shed == 1
        adm.per_unit_s = 0.1  # a short wait is queued, not refused
        second, out2 = _in_thread(c, BODY)
        time.sleep(0.3)
        assert adm.waiting == 1
        blocking.release.set()
        first.join(10)
        second.join(10)
        assert out[0].status_code == 200 and out2[0].status_code == 200
        assert blocking.calls == 2


def test_a_wait_past_the_request_deadline_is_refused_at_once(
    make_client: Any, blocking: Any
) -> None:
    with make_client(blocking, max_wait_s=600, request_deadline_s=3) as c:
        first, _ = _in_thread(c, BODY)
        assert blocking.entered.wait(10)
        c.app.state.service.admission.per_unit_s = 2.0  # 4 s of work > the 3 s deadline
        r = c.post("/v1/suggest", json=BODY)
        assert r.status_code == 503 and "work ahead" in r.json()["detail"]
        assert blocking.calls == 1
        blocking.release.set()
        first.join(10)


def test_live_answers_while_every_engine_slot_is_busy(make_client: Any, blocking: Any) -> None:
    from clinicode.serve.routes import health

    assert inspect.iscoroutinefunction(health.live)
    with make_client(blocking, engine_concurrency=1) as c:
        first, _ = _in_thread(c, BODY)
        assert blocking.entered.wait(10)
        r = c.get("/health/live")
        assert r.status_code == 200 and r.json() == {"status": "live"}
        assert not blocking.release.is_set()  # answered while the engine was still held
        blocking.release.set()
        first.join(10)


def test_deadline_gives_503_with_retry_after(make_client: Any, blocking: Any) -> None:
    with make_client(blocking, request_deadline_s=0.3, retry_after_s=3) as c:
        r = c.post("/v1/suggest", json=BODY)
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "3"
        assert "deadline" in r.json()["detail"]
        blocking.release.set()


def test_rate_limit_gives_429_with_retry_after(make_client: Any, engine: Any) -> None:
    with make_client(engine, rate_limit_per_minute=2) as c:
        assert [c.get("/v1/me").status_code for _ in range(2)] == [200, 200]
        r = c.get("/v1/me")
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert "rate limit" in r.json()["detail"]
        assert c.get("/health/live").status_code == 200  # not a /v1 route: never limited


def test_rate_limit_is_per_key(make_client: Any, engine: Any, admin_key: str) -> None:
    with make_client(engine, rate_limit_per_minute=1) as c:
        assert c.get("/v1/me").status_code == 200
        assert c.get("/v1/me").status_code == 429
        assert c.get("/v1/me", headers={"X-API-Key": admin_key}).status_code == 200


def test_rate_limiter_refills_over_time() -> None:
    from clinicode.serve.admission import RateLimiter

    lim = RateLimiter(per_minute=60, burst=1)
    assert lim.take("k", now=100.0) == 0.0
    assert lim.take("k", now=100.0) == pytest.approx(1.0)
    assert lim.take("k", now=101.0) == 0.0
    assert not RateLimiter(0).enabled


class _GoneRequest:
    scope: ClassVar[dict[str, Any]] = {}

    async def is_disconnected(self) -> bool:
        return True


def test_work_for_a_client_that_left_is_dropped() -> None:
    from fastapi import HTTPException

    from clinicode.serve.admission import Admission

    calls: list[int] = []
    adm = Admission(concurrency=1, max_queue=4, retry_after_s=1)

    async def go() -> None:
        await adm.run(_GoneRequest(), lambda: calls.append(1), 5.0)  # type: ignore[arg-type]

    with pytest.raises(HTTPException) as exc:
        asyncio.run(go())
    adm.close()
    assert exc.value.status_code == 503
    assert calls == [] and adm.dropped == 1


def test_deadline_check_raises_past_the_deadline_or_when_cancelled() -> None:
    check_deadline()  # no deadline: nothing happens
    with within(Deadline.after(60)):
        check_deadline()
    with within(Deadline.after(-1)), pytest.raises(DeadlineExceeded):
        check_deadline()
    d = Deadline.after(60)
    d.cancel("client disconnected")
    with within(d), pytest.raises(DeadlineExceeded, match="client disconnected"):
        check_deadline()
