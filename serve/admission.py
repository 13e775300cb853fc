"""Load shedding: a bounded queue of engine calls per worker, deadlines, per-key rate limits.

* :class:`Admission` runs engine calls on this worker's own threads (never on the event loop),
  at most ``engine_concurrency`` at once and ``max_queue`` waiting; a call beyond that gets
  503 with Retry-After at once. Each call has a deadline (``request_deadline_s``): a call still
  waiting or running past it answers 503 with Retry-After, and the engine stops at its next
  stage (``clinicode.deadline``). A call whose client went away is dropped, before it starts
  or at the engine's next stage.
* :class:`RateLimitMiddleware` holds each key to ``rate_limit_per_minute`` requests on the
  ``/v1`` routes (a token bucket of ``rate_limit_burst``): over it, 429 with Retry-After.

So ``/health/live`` (async, no engine, no thread) answers at once however busy the engine is.
Counts are per worker process.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from clinicode.deadline import Deadline, DeadlineExceeded, within

from .middleware import json_response

if TYPE_CHECKING:
    from .deps import Service

T = TypeVar("T")

_POLL_S = 0.1  # how often a running call looks for its client having gone away


def _busy(detail: str, retry_after: int) -> HTTPException:
    return HTTPException(503, detail, headers={"Retry-After": str(retry_after)})


def _call_within(deadline: Deadline, fn: Callable[[], T]) -> T:
    deadline.check()  # waited past the deadline, or the client left, before a thread was free
    with within(deadline):
        return fn()


class Admission:
    """This worker's engine calls: ``concurrency`` running, ``max_queue`` waiting, no more."""

    def __init__(self, concurrency: int, max_queue: int, retry_after_s: int) -> None:
        self.concurrency = concurrency
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self.running = 0
        self.waiting = 0
        self.shed = 0  # calls refused at once (queue full)
        self.expired = 0  # calls that ran past their deadline
        self.dropped = 0  # calls whose client went away
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _ensure(self) -> tuple[ThreadPoolExecutor, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.concurrency, thread_name_prefix="clinicode-engine"
                )
            if self._slots is None or self._loop is not loop:  # one per event loop
                self._slots, self._loop = asyncio.Semaphore(self.concurrency), loop
            return self._executor, self._slots

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor, self._slots = None, None

    async def run(self, request: Request, fn: Callable[[], T], deadline_s: float) -> T:
        """``fn()`` on an engine thread under a deadline of ``deadline_s`` seconds; 503 with
        Retry-After when the queue is full, when the deadline passes or the client leaves."""
        executor, slots = self._ensure()
        arrived = request.scope.get("state", {}).get("arrived", time.monotonic())
        deadline = Deadline(arrived + deadline_s)  # from the request's arrival
        if slots.locked() and self.waiting >= self.max_queue:
            self.shed += 1
            raise _busy(
                f"the service is busy ({self.running} running, {self.waiting} waiting); "
                "retry after the delay in Retry-After",
                self.retry_after_s,
            )
        self.waiting += 1
        try:
            await asyncio.wait_for(slots.acquire(), timeout=max(deadline.remaining(), 0.0))
        except TimeoutError:
            self.expired += 1
            raise self._expired(deadline_s) from None
        finally:
            self.waiting -= 1
        if await request.is_disconnected():
            slots.release()
            self.dropped += 1
            raise _busy("the client went away", self.retry_after_s)
        self.running += 1
        fut = asyncio.get_running_loop().run_in_executor(executor, _call_within, deadline, fn)
        fut.add_done_callback(lambda f: self._finished(f, slots))
        return await self._wait(request, fut, deadline, deadline_s)

    def _finished(self, fut: asyncio.Future[Any], slots: asyncio.Semaphore) -> None:
        self.running -= 1
        slots.release()
        if not fut.cancelled():
            fut.exception()  # retrieved, so an abandoned call's error is not logged as lost

    async def _wait(
        self, request: Request, fut: asyncio.Future[T], deadline: Deadline, deadline_s: float
    ) -> T:
        while True:
            timeout = min(_POLL_S, max(deadline.remaining(), 0.0))
            done, _ = await asyncio.wait({fut}, timeout=timeout)
            if done:
                try:
                    return fut.result()
                except DeadlineExceeded:
                    self.expired += 1
                    raise self._expired(deadline_s) from None
            if deadline.remaining() <= 0:
                deadline.cancel("deadline passed")
                self.expired += 1
                raise self._expired(deadline_s)
            if await request.is_disconnected():
                deadline.cancel("client disconnected")
                self.dropped += 1
                raise _busy("the client went away", self.retry_after_s)

    def _expired(self, deadline_s: float) -> HTTPException:
        return _busy(
            f"the request did not finish within its deadline of {deadline_s:g} s "
            "(CLINICODE_REQUEST_DEADLINE_S); retry later or send a shorter note",
            self.retry_after_s,
        )


class RateLimiter:
    """A token bucket per key: ``per_minute`` tokens a minute, up to ``burst`` saved."""

    def __init__(self, per_minute: int, burst: int = 0) -> None:
        self.per_minute = per_minute
        self.capacity = float(burst or max(1, per_minute))
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, updated)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, key_id: str, now: float | None = None) -> float:
        """0.0 when the request may go; else the seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, updated = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - updated) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.rate


class RateLimitMiddleware:
    """429 with Retry-After for a key over its rate (runs after the key is verified)."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.svc = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.svc.rate_limiter
        if scope["type"] == "http" and limiter.enabled and scope["path"].startswith("/v1/"):
            key = scope.get("state", {}).get("api_key")
            wait = limiter.take(key.id) if key is not None else 0.0
            if wait > 0:
                await json_response(
                    429,
                    f"rate limit of {limiter.per_minute} requests a minute for this key "
                    "(CLINICODE_RATE_LIMIT_PER_MINUTE); retry after the delay in Retry-After",
                    {"Retry-After": str(max(1, math.ceil(wait)))},
                )(scope, receive, send)
                return
        await self.app(scope, receive, send)
