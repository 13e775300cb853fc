"""Deadlines for engine work: a caller sets one, the scoring path checks it between stages.

    with within(Deadline.after(20.0)):
        engine.suggest(text)      # raises DeadlineExceeded at the next check past 20 s

The service runs engine calls in worker threads, each under its request's deadline; a request
whose client went away is cancelled the same way (``Deadline.cancel``). The check is a cheap
read of a context variable, so paths without a deadline (the CLI, training) pay nothing.
Importing this module does no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


class DeadlineExceeded(Exception):
    """The work ran past its deadline or was cancelled; its partial result is dropped."""


@dataclass
class Deadline:
    """A point in time (``time.monotonic``) after which work stops, or an explicit cancel."""

    at: float
    cancelled: bool = False
    reason: str = ""

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def cancel(self, reason: str) -> None:
        self.reason = reason
        self.cancelled = True

    def check(self) -> None:
        if self.cancelled:
            raise DeadlineExceeded(self.reason or "cancelled")
        if time.monotonic() > self.at:
            raise DeadlineExceeded("deadline passed")


_current: ContextVar[Deadline | None] = ContextVar("clinicode_deadline", default=None)


@contextmanager
def within(deadline: Deadline | None) -> Iterator[None]:
    """Run the block under ``deadline`` (None: no deadline)."""
    token = _current.set(deadline)
    try:
        yield
    finally:
        _current.reset(token)


def check_deadline() -> None:
    """Raise :class:`DeadlineExceeded` when the current deadline has passed or was cancelled."""
    d = _current.get()
    if d is not None:
        d.check()


def current_deadline() -> Deadline | None:
    """The deadline the current block runs under (None: none), to hand on to other processes."""
    return _current.get()
