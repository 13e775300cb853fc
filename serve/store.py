"""Feedback store: note texts, and an append-only audit table of every suggestion and feedback.

SQLite under the data dir by default (WAL, ``synchronous=FULL``), or any SQLAlchemy URL
(PostgreSQL) through ``CLINICODE_DATABASE_URL``. A write returns only after its transaction has
committed, so an acknowledged feedback survives a crash of the server.

This database holds patient data (the note texts, needed to export training data): it lives in
the user's own data dir and nothing here ever logs it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from clinicode.schema import CodeSuggestion, SuggestResult

metadata = MetaData()

notes = Table(
    "notes",
    metadata,
    Column("note_id", String(128), primary_key=True),
    Column("text", Text, nullable=False),
    Column("setting", String(16), nullable=False),
    Column("note_type", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(32), nullable=False),
)

# One row per suggested/candidate/suppressed code returned, and one per feedback action.
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),  # suggestion | feedback
    Column("key_id", String(32), nullable=False),
    Column("note_id", String(128), nullable=False),
    Column("suggestion_id", String(128)),
    Column("system", String(16), nullable=False),
    Column("code", String(32), nullable=False),
    Column("status", String(16)),  # suggestion: suggested | needs_query | candidate | suppressed
    Column("score", Float),
    Column("rank", Integer),
    Column("action", String(16)),  # feedback: accept | reject | modify | add
    Column("final_code", String(32)),
    Column("reason", Text),
    Column("model_name", String(128), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("code_set_version", String(64), nullable=False),
)
Index("audit_suggestion", audit.c.suggestion_id)
Index("audit_note", audit.c.note_id, audit.c.kind)

_SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END",
]
_PG_APPEND_ONLY = [
    "CREATE OR REPLACE FUNCTION clinicode_audit_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit is append-only'; END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS audit_append_only ON audit",
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION clinicode_audit_append_only()",
]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SuggestionRow:
    suggestion_id: str
    note_id: str
    system: str
    code: str
    model_name: str
    model_version: str
    code_set_version: str


@dataclass(frozen=True)
class FeedbackRow:
    id: int
    at: datetime
    note_id: str
    suggestion_id: str | None
    system: str
    code: str
    action: str
    final_code: str | None
    reason: str | None
    model_version: str
    code_set_version: str


class FeedbackStore:
    """Thread-safe (a connection pool) and multi-process safe (SQLite WAL or a server DB)."""

    def __init__(self, url: str) -> None:
        self.url = url
        u = make_url(url)
        self.is_sqlite = u.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.is_sqlite:
            if u.database and u.database != ":memory:":
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._init_lock = threading.Lock()
        self._ready = False

    def init(self) -> None:
        """Create tables and the append-only triggers (idempotent, safe from several workers)."""
        with self._init_lock:
            if self._ready:
                return
            for attempt in range(5):
                try:
                    metadata.create_all(self.engine)
                    with self.engine.begin() as conn:
                        for stmt in _SQLITE_APPEND_ONLY if self.is_sqlite else _PG_APPEND_ONLY:
                            conn.execute(text(stmt))
                    break
                except (OperationalError, ProgrammingError, IntegrityError):
                    # Another worker created the same objects at the same moment.
                    if attempt == 4:
                        raise
            self._ready = True

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    # -- writes ------------------------------------------------------------------------
    def record_suggestions(
        self,
        *,
        note_id: str,
        text_: str,
        setting: str,
        note_type: str | None,
        key_id: str,
        result: SuggestResult,
    ) -> None:
        """The note text and one audit row per code the engine returned, in one transaction."""
        self.init()
        at = _now()
        rows = [
            _suggestion_row(s, at=at, key_id=key_id, note_id=note_id, result=result)
            for s in [*result.codes, *result.candidates, *result.suppressed]
        ]
        with self.engine.begin() as conn:
            self._upsert_note(conn, note_id, text_, setting, note_type, key_id, at)
            if rows:
                conn.execute(insert(audit), rows)

    def _upsert_note(
        self,
        conn: Any,
        note_id: str,
        text_: str,
        setting: str,
        note_type: str | None,
        key_id: str,
        at: datetime,
    ) -> None:
        values = {
            "text": text_,
            "setting": setting,
            "note_type": note_type,
            "created_at": at,
            "key_id": key_id,
        }
        updated = conn.execute(
            notes.update().where(notes.c.note_id == note_id).values(**values)
        ).rowcount
        if not updated:
            conn.execute(insert(notes).values(note_id=note_id, **values))

    def record_feedback(
        self,
        *,
        note_id: str,
        suggestion_id: str | None,
        system: str,
        code: str,
        action: str,
        final_code: str | None,
        reason: str | None,
        key_id: str,
        model_name: str,
        model_version: str,
        code_set_version: str,
    ) -> FeedbackRow:
        """Append one feedback row; returns after the commit."""
        self.init()
        at = _now()
        values = {
            "at": at,
            "kind": "feedback",
            "key_id": key_id,
            "note_id": note_id,
            "suggestion_id": suggestion_id,
            "system": system,
            "code": code,
            "action": action,
            "final_code": final_code,
            "reason": reason,
            "model_name": model_name,
            "model_version": model_version,
            "code_set_version": code_set_version,
        }
        with self.engine.begin() as conn:
            pk = conn.execute(insert(audit).values(**values)).inserted_primary_key
            assert pk is not None
            new_id = pk[0]
        return FeedbackRow(
            id=int(new_id),
            at=at,
            note_id=note_id,
            suggestion_id=suggestion_id,
            system=system,
            code=code,
            action=action,
            final_code=final_code,
            reason=reason,
            model_version=model_version,
            code_set_version=code_set_version,
        )

    # -- reads -------------------------------------------------------------------------
    def note_exists(self, note_id: str) -> bool:
        self.init()
        with self.engine.connect() as conn:
            return (
                conn.execute(select(notes.c.note_id).where(notes.c.note_id == note_id)).first()
                is not None
            )

    def find_suggestion(
        self,
        *,
        suggestion_id: str | None = None,
        note_id: str | None = None,
        code: str | None = None,
        system: str | None = None,
    ) -> SuggestionRow | None:
        """The latest suggestion row by id, or by (note, code[, system])."""
        self.init()
        q = select(audit).where(audit.c.kind == "suggestion")
        if suggestion_id is not None:
            q = q.where(audit.c.suggestion_id == suggestion_id)
        else:
            q = q.where(audit.c.note_id == note_id, audit.c.code == code)
            if system is not None:
                q = q.where(audit.c.system == system)
        q = q.order_by(audit.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            r = conn.execute(q).mappings().first()
        if r is None:
            return None
        return SuggestionRow(
            suggestion_id=r["suggestion_id"],
            note_id=r["note_id"],
            system=r["system"],
            code=r["code"],
            model_name=r["model_name"],
            model_version=r["model_version"],
            code_set_version=r["code_set_version"],
        )

    def feedback_rows(self) -> Iterator[FeedbackRow]:
        self.init()
        q = select(audit).where(audit.c.kind == "feedback").order_by(audit.c.id)
        with self.engine.connect() as conn:
            for r in conn.execute(q).mappings():
                yield _feedback_row(r)

    def count(self, kind: str) -> int:
        self.init()
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(audit).where(audit.c.kind == kind)
                ).scalar_one()
            )

    def export(self) -> Iterator[dict[str, Any]]:
        """One ``{"id","text","codes"}`` per reviewed note: the coder's final code list.

        Feedback is replayed in order per note: accept/add keep a code, modify replaces it by
        ``final_code``, reject drops it; the latest action on a code wins.
        """
        self.init()
        final: dict[str, dict[tuple[str, str], tuple[str, str] | None]] = {}
        for fb in self.feedback_rows():
            per_note = final.setdefault(fb.note_id, {})
            key = (fb.system, fb.code)
            if fb.action in ("accept", "add"):
                per_note[key] = key
            elif fb.action == "modify" and fb.final_code:
                per_note[key] = (fb.system, fb.final_code)
            elif fb.action == "reject":
                per_note[key] = None
        if not final:
            return
        with self.engine.connect() as conn:
            for note_id, decisions in final.items():
                row = conn.execute(select(notes.c.text).where(notes.c.note_id == note_id)).first()
                if row is None:
                    continue
                codes = list(dict.fromkeys(v for v in decisions.values() if v is not None))
                yield {
                    "id": note_id,
                    "text": row[0],
                    "codes": [{"system": s, "code": c} for s, c in codes],
                }


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _suggestion_row(
    s: CodeSuggestion, *, at: datetime, key_id: str, note_id: str, result: SuggestResult
) -> dict[str, Any]:
    return {
        "at": at,
        "kind": "suggestion",
        "key_id": key_id,
        "note_id": note_id,
        "suggestion_id": s.suggestion_id,
        "system": s.system,
        "code": s.code,
        "status": s.status,
        "score": s.score,
        "rank": s.rank,
        "reason": s.reason,
        "model_name": result.model.name,
        "model_version": result.model.version,
        "code_set_version": result.code_sets.get(s.system, "unknown"),
    }


def _feedback_row(r: Any) -> FeedbackRow:
    return FeedbackRow(
        id=int(r["id"]),
        at=r["at"],
        note_id=r["note_id"],
        suggestion_id=r["suggestion_id"],
        system=r["system"],
        code=r["code"],
        action=r["action"],
        final_code=r["final_code"],
        reason=r["reason"],
        model_version=r["model_version"],
        code_set_version=r["code_set_version"],
    )
