"""The SQL engine the service's stores share (feedback store, work queue): one way to open a
database URL, with SQLite in WAL mode and a busy timeout, and one way to create tables that
several workers may create at the same moment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError


def open_engine(url: str) -> tuple[Engine, bool]:
    """An engine for ``url`` (a SQLite file's folder is created) and whether it is SQLite."""
    u = make_url(url)
    is_sqlite = u.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if is_sqlite:
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine, is_sqlite


def create_with_retries(create: Callable[[], None], attempts: int = 5) -> None:
    """Run ``create``; another worker creating the same objects at the same moment makes it
    fail now and then, so it is retried (the last failure is raised)."""
    for attempt in range(attempts):
        try:
            create()
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == attempts - 1:
                raise


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
