"""Load shedding: a bounded queue of engine calls per worker, deadlines, per-key rate limits.

* :class:`Admission` runs engine calls on this worker's own threads (never on the event loop;
  in process isolation those threads only wait on an engine process, serve/engine_process.py),
  at most ``engine_concurrency`` at once and ``max_queue`` waiting; a call beyond that, or
  one whose estimated wait passes ``max_wait_s``, gets 503 with Retry-After at once. Each call has a deadline (``request_deadline_s``): a call still
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
import contextlib
import math
import threading
import time
from collections import deque
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
_QUEUED_POLL_S = 0.5  # how often a queued call does
_EWMA = 0.2  # weight of the latest call in the moving average of seconds per note


def _busy(detail: str, retry_after: int) -> HTTPException:
    return HTTPException(503, detail, headers={"Retry-After": str(retry_after)})


def _call_within(deadline: Deadline, fn: Callable[[], T]) -> T:
    deadline.check()  # waited past the deadline, or the client left, before a thread was free
    with within(deadline):
        return fn()


class Admission:
    """This worker's engine calls: ``concurrency`` running, at most ``max_queue`` waiting, and
    none waiting whose estimated wait passes ``max_wait_s`` (or its own deadline).

    The estimate is the work queued and running ahead of a call, in notes, times the recent
    time per note (a moving average of finished calls), spread over ``concurrency``. A call
    refused for it gets 503 at once with a Retry-After of that estimate (at least
    ``retry_after_s``), so a client is told to come back rather than left past its timeout.
    """

    def __init__(
        self,
        concurrency: int,
        max_queue: int,
        retry_after_s: int,
        *,
        max_wait_s: float = 10.0,
    ) -> None:
        self.concurrency = concurrency
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self.max_wait_s = max_wait_s
        self.running = 0
        self.waiting = 0
        self.running_units = 0
        self.waiting_units = 0
        self.per_unit_s: float | None = None  # moving average of seconds per note
        self.shed = 0  # calls refused at once (queue full, or too long a wait)
        self.expired = 0  # calls that ran past their deadline
        self.dropped = 0  # calls whose client went away
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free = concurrency
        self._waiters: deque[asyncio.Future[None]] = deque()

    def _ensure(self) -> ThreadPoolExecutor:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.concurrency, thread_name_prefix="clinicode-engine"
                )
            if self._loop is not loop:  # slots belong to one event loop
                self._loop, self._free, self._waiters = loop, self.concurrency, deque()
            return self._executor

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def estimated_wait(self, units: int = 1) -> float:
        """Seconds until a call of ``units`` notes arriving now would finish (0.0 while no
        call has finished yet, or while a slot is free)."""
        if self.per_unit_s is None or (self._free > 0 and not self._waiters):
            return 0.0
        ahead = self.running_units + self.waiting_units
        return (ahead / self.concurrency + units) * self.per_unit_s

    def _refuse(self, units: int, deadline_s: float) -> HTTPException | None:
        busy = self._free <= 0 or bool(self._waiters)
        if not busy:
            return None
        state = f"{self.running} running, {self.waiting} waiting"
        if self.waiting >= self.max_queue:
            return _busy(
                f"the service is busy ({state}); retry after the delay in Retry-After",
                self._retry_after(),
            )
        wait = self.estimated_wait(units)
        if wait > min(self.max_wait_s, deadline_s):
            return _busy(
                f"the service is busy ({state}, about {wait:.0f} s of work ahead, more than "
                f"CLINICODE_MAX_WAIT_S {self.max_wait_s:g} s); retry after the delay in "
                "Retry-After",
                self._retry_after(wait),
            )
        return None

    def _retry_after(self, wait: float = 0.0) -> int:
        return max(self.retry_after_s, min(60, math.ceil(wait)))

    async def run(
        self, request: Request, fn: Callable[[], T], deadline_s: float, units: int = 1
    ) -> T:
        """``fn()`` on an engine thread under a deadline of ``deadline_s`` seconds; 503 with
        Retry-After at once when the queue is full or the wait would be too long, and when
        the deadline passes or the client leaves. ``units``: the notes ``fn`` codes."""
        executor = self._ensure()
        arrived = request.scope.get("state", {}).get("arrived", time.monotonic())
        deadline = Deadline(arrived + deadline_s)  # from the request's arrival
        refused = self._refuse(units, deadline_s)
        if refused is not None:
            self.shed += 1
            raise refused
        await self._acquire(request, deadline, deadline_s, units)
        self.running += 1
        self.running_units += units
        started = time.monotonic()
        fut = asyncio.get_running_loop().run_in_executor(executor, _call_within, deadline, fn)
        fut.add_done_callback(lambda f: self._finished(f, units, started))
        return await self._wait(request, fut, deadline, deadline_s)

    async def _acquire(
        self, request: Request, deadline: Deadline, deadline_s: float, units: int
    ) -> None:
        """A slot, in arrival order; gives up (503) past the deadline or when the client
        leaves meanwhile."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            if await request.is_disconnected():
                self._release()
                self.dropped += 1
                raise _busy("the client went away", self.retry_after_s)
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        self.waiting += 1
        self.waiting_units += units
        try:
            while not turn.done():
                left = deadline.remaining()
                if left <= 0:
                    self.expired += 1
                    raise self._expired(deadline_s)
                await asyncio.wait({turn}, timeout=min(_QUEUED_POLL_S, left))
                if not turn.done() and await request.is_disconnected():
                    self.dropped += 1
                    raise _busy("the client went away", self.retry_after_s)
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._release()  # granted just as we gave up: pass it on
            else:
                turn.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(turn)
            raise
        finally:
            self.waiting -= 1
            self.waiting_units -= units
        if await request.is_disconnected():
            self._release()
            self.dropped += 1
            raise _busy("the client went away", self.retry_after_s)

    def _release(self) -> None:
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1

    def _finished(self, fut: asyncio.Future[Any], units: int, started: float) -> None:
        self.running -= 1
        self.running_units -= units
        self._release()
        if fut.cancelled():
            return
        if fut.exception() is None:  # retrieved either way, so no error is logged as lost
            per_unit = (time.monotonic() - started) / max(units, 1)
            old = self.per_unit_s
            self.per_unit_s = per_unit if old is None else _EWMA * per_unit + (1 - _EWMA) * old

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
