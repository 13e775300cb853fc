"""Tables of the feedback store, their append-only guards, and the migration of older databases.

Schema version 2 (this module's ``SCHEMA_VERSION``):

* ``notes``: one row per *version* of a note, keyed ``(tenant, note_id, version)``. A text sent
  again under the same id is a new version when it differs from the latest one; a version's text
  never changes (a trigger refuses it), except that the retention purge blanks it (``text = ''``
  and ``purged_at`` set). Rows are never deleted.
* ``audit``: one row per suggested/candidate/suppressed code and per coder decision, each
  stamped with its ``tenant`` and the ``note_version`` it was made on; no row changes or goes.
* ``store_meta``: ``schema_version``.

Version 1 (before tenants and versions: ``notes.note_id`` was the primary key and a second text
overwrote the first) is migrated in place by :func:`migrate`: each note becomes version 1 of
tenant ``default``, audit rows gain ``tenant = 'default'`` and ``note_version = 1``; no row is
lost. The migration runs in one transaction, under a write lock, so several workers starting
at once migrate once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)

SCHEMA_VERSION = 2
DEFAULT_TENANT = "default"

metadata = MetaData()

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("note_id", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("text_sha256", String(64), nullable=False),
    Column("setting", String(16), nullable=False),
    Column("note_type", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("code_sets", Text, nullable=False, server_default="{}"),
    Column("purged_at", DateTime(timezone=True)),
    UniqueConstraint("tenant", "note_id", "version", name="notes_version_unique"),
)
Index("notes_created", notes.c.created_at)

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
    Column("tenant", String(64), nullable=False, server_default=DEFAULT_TENANT),
    Column("note_version", Integer, nullable=False, server_default="1"),
)
Index("audit_suggestion", audit.c.suggestion_id)
Index("audit_note", audit.c.note_id, audit.c.kind)
Index("audit_tenant_note", audit.c.tenant, audit.c.note_id, audit.c.kind)

# The version-1 notes table, renamed during the migration (read only by ``migrate``).
_notes_v1 = Table(
    "notes_v1",
    MetaData(),
    Column("note_id", String(128), primary_key=True),
    Column("text", Text, nullable=False),
    Column("setting", String(16), nullable=False),
    Column("note_type", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(32), nullable=False),
)

# A version's text may only be blanked (the retention purge); its identity never changes.
_NOTES_GUARD = (
    "NEW.tenant <> OLD.tenant OR NEW.note_id <> OLD.note_id OR NEW.version <> OLD.version "
    "OR NEW.text_sha256 <> OLD.text_sha256 OR (NEW.text <> OLD.text AND NEW.text <> '')"
)
SQLITE_GUARDS = [
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END",
    f"CREATE TRIGGER IF NOT EXISTS notes_immutable BEFORE UPDATE ON notes WHEN {_NOTES_GUARD} "
    "BEGIN SELECT RAISE(ABORT, 'a note version is immutable (only the purge blanks it)'); END",
    "CREATE TRIGGER IF NOT EXISTS notes_no_delete BEFORE DELETE ON notes "
    "BEGIN SELECT RAISE(ABORT, 'notes are append-only'); END",
]
PG_GUARDS = [
    "CREATE OR REPLACE FUNCTION clinicode_audit_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit is append-only'; END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS audit_append_only ON audit",
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION clinicode_audit_append_only()",
    "CREATE OR REPLACE FUNCTION clinicode_notes_guard() RETURNS trigger AS $$ BEGIN "
    "IF TG_OP = 'DELETE' THEN RAISE EXCEPTION 'notes are append-only'; END IF; "
    f"IF {_NOTES_GUARD} THEN RAISE EXCEPTION 'a note version is immutable'; END IF; "
    "RETURN NEW; END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS notes_guard ON notes",
    "CREATE TRIGGER notes_guard BEFORE UPDATE OR DELETE ON notes "
    "FOR EACH ROW EXECUTE FUNCTION clinicode_notes_guard()",
]


def text_sha256(text_: str) -> str:
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


def current_version(conn: Connection) -> int | None:
    """The schema version of the database behind ``conn``: None when empty, 1 for the layout
    before versions and tenants, else what ``store_meta`` says."""
    tables = set(inspect(conn).get_table_names())
    if "notes" not in tables:
        return None
    if "store_meta" in tables:
        row = conn.execute(
            select(store_meta.c.value).where(store_meta.c.key == "schema_version")
        ).first()
        if row is not None:
            return int(row[0])
    cols = {c["name"] for c in inspect(conn).get_columns("notes")}
    return SCHEMA_VERSION if "version" in cols else 1


def migrate(conn: Connection) -> bool:
    """Bring a version-1 database to the current schema inside the caller's transaction;
    returns whether anything was done."""
    if current_version(conn) != 1:
        return False
    conn.execute(text("ALTER TABLE notes RENAME TO notes_v1"))
    for col in (
        f"tenant VARCHAR(64) NOT NULL DEFAULT '{DEFAULT_TENANT}'",
        "note_version INTEGER NOT NULL DEFAULT 1",
    ):
        conn.execute(text(f"ALTER TABLE audit ADD COLUMN {col}"))
    metadata.create_all(conn, tables=[notes, store_meta])
    Index("audit_tenant_note", audit.c.tenant, audit.c.note_id, audit.c.kind).create(
        conn, checkfirst=True
    )
    rows = [_v1_row(conn, dict(r)) for r in conn.execute(select(_notes_v1)).mappings().all()]
    if rows:
        conn.execute(notes.insert(), rows)
    conn.execute(text("DROP TABLE notes_v1"))
    set_version(conn)
    return True


def set_version(conn: Connection) -> None:
    conn.execute(store_meta.delete().where(store_meta.c.key == "schema_version"))
    conn.execute(store_meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))


def _v1_row(conn: Connection, r: dict[str, Any]) -> dict[str, Any]:
    sets = conn.execute(
        select(audit.c.system, audit.c.code_set_version)
        .where(audit.c.note_id == r["note_id"], audit.c.kind == "suggestion")
        .distinct()
    ).all()
    return {
        "tenant": DEFAULT_TENANT,
        "note_id": r["note_id"],
        "version": 1,
        "text": r["text"],
        "text_sha256": text_sha256(r["text"]),
        "setting": r["setting"],
        "note_type": r["note_type"],
        "created_at": r["created_at"],
        "key_id": r["key_id"],
        "code_sets": json.dumps(dict(sorted(sets)), sort_keys=True),
    }
