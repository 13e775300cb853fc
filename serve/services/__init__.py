"""What the routes do, without HTTP: checks, engine calls and recording. A request that cannot be
done as asked raises :class:`Refused`, which the app turns into ``{"detail": ...}`` with its status.
"""

from __future__ import annotations


class Refused(Exception):
    """The request cannot be done as asked; the message says why and what to do instead."""

    status = 422

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(Refused):
    """What the request refers to does not exist."""

    status = 404


class TooLarge(Refused):
    """The request is over a configured limit."""

    status = 413


class Conflict(Refused):
    """The request contradicts what is stored (ids that disagree, a changed code set)."""

    status = 409
