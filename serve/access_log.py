"""No query text in access logs: uvicorn's access log line (``"GET /v1/codes/search?q=... HTTP/1.1"
200``) is rewritten to the path alone, so what a coder searched for (which may quote a note)
never reaches a log file. Note text itself is only ever sent in request bodies, which are not
logged at all.

:func:`install` adds :class:`DropQueryFilter` to the ``uvicorn.access`` logger; the app factory
calls it in every worker (idempotent).
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


def strip_query(path: str) -> str:
    """``/v1/codes/search?q=chest+pain`` -> ``/v1/codes/search?…`` (the path stays)."""
    head, sep, _query = path.partition("?")
    return head + ("?…" if sep else "")


class DropQueryFilter(logging.Filter):
    """Rewrites the request line of uvicorn's access records: ``(client, method, path,
    http_version, status)``; other records pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], strip_query(args[2]), args[3], args[4])
        elif isinstance(record.msg, str) and "?" in record.msg and not args:
            record.msg = " ".join(
                strip_query(w) if w.startswith("/") else w for w in record.msg.split(" ")
            )
        return True


def install(logger_name: str = ACCESS_LOGGER) -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, DropQueryFilter) for f in logger.filters):
        logger.addFilter(DropQueryFilter())
