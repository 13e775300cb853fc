"""Note store and audit trail: versioned note texts, and an append-only audit table of every
suggestion and coder decision, scoped by tenant.

SQLite under the data dir by default (WAL, ``synchronous=FULL``), or any SQLAlchemy URL
(PostgreSQL) through ``CLINICODE_DATABASE_URL``. A write returns only after its transaction has
committed, so an acknowledged feedback survives a crash of the server. Tables, guards and the
migration of older databases: :mod:`clinicode.serve.store_schema`.

The API other parts build on (the suggest and feedback services, the export, a work queue):

* :meth:`FeedbackStore.record_suggestions` stores a note and what the engine returned for it;
  :meth:`FeedbackStore.put_note` stores a note alone. Both return a :class:`NoteRef`: a note
  is addressed by ``(tenant, note_id, version)``. The same text again under an id is the same
  version; a different text is the next version; no text is ever replaced.
* :meth:`FeedbackStore.get_note`, :meth:`FeedbackStore.note_exists`,
  :meth:`FeedbackStore.iter_notes` read notes of one tenant (``version=None``: the latest).
* :meth:`FeedbackStore.find_suggestion`, :meth:`FeedbackStore.record_feedback`,
  :meth:`FeedbackStore.feedback_rows` and :meth:`FeedbackStore.export` for decisions; the
  export pairs each decision with the version of the text it was made on.
* :meth:`FeedbackStore.purge_texts` blanks texts older than a retention period.

This database holds patient data (the note texts, needed to export training data): it lives in
the user's own data dir and nothing here ever logs it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from clinicode.kb.validate import is_partial
from clinicode.schema import CodeSuggestion, SuggestResult

from .db import create_with_retries, open_engine
from .store_schema import (
    DEFAULT_TENANT,
    PG_GUARDS,
    SQLITE_GUARDS,
    audit,
    current_version,
    metadata,
    migrate,
    notes,
    set_version,
    text_sha256,
)

__all__ = [
    "DEFAULT_TENANT",
    "FeedbackRow",
    "FeedbackStore",
    "NoteRef",
    "StoredNote",
    "SuggestionRow",
    "retention_cutoff",
]


def _now() -> datetime:
    return datetime.now(UTC)


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    """The creation time before which note texts are past a retention of ``days`` days."""
    return (now or _now()) - timedelta(days=days)


@dataclass(frozen=True)
class NoteRef:
    """Where a stored note version lives; ``created`` is False when the text was already the
    latest version under this id."""

    tenant: str
    note_id: str
    version: int
    created: bool


@dataclass(frozen=True)
class StoredNote:
    """One version of a note. ``text`` is None once purged (``purged_at`` says when)."""

    tenant: str
    note_id: str
    version: int
    text: str | None
    text_sha256: str
    setting: str
    note_type: str | None
    created_at: datetime
    key_id: str
    code_sets: dict[str, str] = field(default_factory=dict)
    purged_at: datetime | None = None


@dataclass(frozen=True)
class SuggestionRow:
    suggestion_id: str
    note_id: str
    system: str
    code: str
    model_name: str
    model_version: str
    code_set_version: str
    tenant: str = DEFAULT_TENANT
    note_version: int = 1


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
    tenant: str = DEFAULT_TENANT
    note_version: int = 1


class FeedbackStore:
    """Thread-safe (a connection pool) and multi-process safe (SQLite WAL or a server DB)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine
        self.engine, self.is_sqlite = open_engine(url)
        self._init_lock = threading.Lock()
        self._ready = False

    def init(self) -> None:
        """Create or migrate the tables and their guards (idempotent, safe from several
        workers: the migration of an older database runs once, under a write lock)."""
        with self._init_lock:
            if self._ready:
                return
            create_with_retries(self._create)
            self._ready = True

    def _create(self) -> None:
        self._migrate()
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            if current_version(conn) is not None:
                set_version(conn)
            for stmt in SQLITE_GUARDS if self.is_sqlite else PG_GUARDS:
                conn.execute(text(stmt))

    def _migrate(self) -> None:
        if self.is_sqlite:
            with self.engine.connect() as raw:
                conn = raw.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # one migrating worker at a time
                try:
                    migrate(conn)
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
        else:
            with self.engine.begin() as conn:
                if current_version(conn) == 1:
                    conn.execute(text("LOCK TABLE notes IN ACCESS EXCLUSIVE MODE"))
                    migrate(conn)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    # -- writes ------------------------------------------------------------------------
    def put_note(
        self,
        *,
        note_id: str,
        text_: str,
        setting: str,
        note_type: str | None = None,
        key_id: str,
        tenant: str = DEFAULT_TENANT,
        code_sets: dict[str, str] | None = None,
    ) -> NoteRef:
        """Store a note: the same text as the latest version is that version; any other
        text becomes the next version. Returns once committed."""
        self.init()
        return self._write(
            lambda conn: self._put_note(
                conn, tenant, note_id, text_, setting, note_type, key_id, code_sets or {}
            )
        )

    def record_suggestions(
        self,
        *,
        note_id: str,
        text_: str,
        setting: str,
        note_type: str | None,
        key_id: str,
        result: SuggestResult,
        tenant: str = DEFAULT_TENANT,
    ) -> NoteRef:
        """The note (see :meth:`put_note`) and one audit row per code the engine returned,
        in one transaction; returns the note version the suggestions belong to."""
        self.init()
        at = _now()
        codes = [*result.codes, *result.candidates, *result.suppressed]

        def write(conn: Connection) -> NoteRef:
            ref = self._put_note(
                conn, tenant, note_id, text_, setting, note_type, key_id, result.code_sets
            )
            rows = [_suggestion_row(s, at=at, key_id=key_id, ref=ref, result=result) for s in codes]
            if rows:
                conn.execute(insert(audit), rows)
            return ref

        return self._write(write)

    def _write(self, fn: Any) -> Any:
        """``fn(conn)`` in a transaction, retried when a concurrent writer took the same
        note version first (the unique key refuses the second)."""
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    return fn(conn)
            except IntegrityError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _put_note(
        self,
        conn: Connection,
        tenant: str,
        note_id: str,
        text_: str,
        setting: str,
        note_type: str | None,
        key_id: str,
        code_sets: dict[str, str],
    ) -> NoteRef:
        digest = text_sha256(text_)
        latest = conn.execute(
            select(notes.c.version, notes.c.text_sha256, notes.c.purged_at)
            .where(notes.c.tenant == tenant, notes.c.note_id == note_id)
            .order_by(notes.c.version.desc())
            .limit(1)
        ).first()
        if latest is not None and latest[1] == digest and latest[2] is None:
            return NoteRef(tenant, note_id, int(latest[0]), created=False)
        version = 1 if latest is None else int(latest[0]) + 1
        conn.execute(
            insert(notes).values(
                tenant=tenant,
                note_id=note_id,
                version=version,
                text=text_,
                text_sha256=digest,
                setting=setting,
                note_type=note_type,
                created_at=_now(),
                key_id=key_id,
                code_sets=json.dumps(code_sets, sort_keys=True),
            )
        )
        return NoteRef(tenant, note_id, version, created=True)

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
        tenant: str = DEFAULT_TENANT,
        note_version: int | None = None,
    ) -> FeedbackRow:
        """Append one decision on ``note_version`` (default: the latest version of the note);
        returns after the commit."""
        self.init()
        if note_version is None:
            latest = self.get_note(tenant, note_id)
            note_version = latest.version if latest is not None else 1
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
            "tenant": tenant,
            "note_version": note_version,
        }
        with self.engine.begin() as conn:
            pk = conn.execute(insert(audit).values(**values)).inserted_primary_key
            assert pk is not None
            new_id = pk[0]
        return _feedback_row({"id": new_id, **values})

    def purge_texts(self, older_than: datetime) -> int:
        """Blank the text of every note version created before ``older_than`` (the retention
        period); the rows, their digests and the audit trail stay. Returns how many."""
        self.init()
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    update(notes)
                    .where(notes.c.created_at < older_than, notes.c.purged_at.is_(None))
                    .values(text="", purged_at=_now())
                ).rowcount
            )

    # -- reads -------------------------------------------------------------------------
    def note_exists(self, note_id: str, tenant: str = DEFAULT_TENANT) -> bool:
        return self.get_note(tenant, note_id) is not None

    def get_note(self, tenant: str, note_id: str, version: int | None = None) -> StoredNote | None:
        """One version of a note of ``tenant`` (``None``: the latest), or None."""
        self.init()
        q = select(notes).where(notes.c.tenant == tenant, notes.c.note_id == note_id)
        if version is not None:
            q = q.where(notes.c.version == version)
        q = q.order_by(notes.c.version.desc()).limit(1)
        with self.engine.connect() as conn:
            r = conn.execute(q).mappings().first()
        return None if r is None else _stored_note(r)

    def iter_notes(self, tenant: str, *, latest_only: bool = True) -> Iterator[StoredNote]:
        """The notes of ``tenant`` in the order they were first stored (each id's latest
        version, or every version)."""
        self.init()
        q = select(notes).where(notes.c.tenant == tenant)
        if latest_only:
            newest = (
                select(notes.c.note_id, func.max(notes.c.version).label("v"))
                .where(notes.c.tenant == tenant)
                .group_by(notes.c.note_id)
                .subquery()
            )
            q = q.join(
                newest, (notes.c.note_id == newest.c.note_id) & (notes.c.version == newest.c.v)
            )
        with self.engine.connect() as conn:
            for r in conn.execute(q.order_by(notes.c.id)).mappings():
                yield _stored_note(r)

    def find_suggestion(
        self,
        *,
        suggestion_id: str | None = None,
        note_id: str | None = None,
        code: str | None = None,
        system: str | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> SuggestionRow | None:
        """The latest suggestion row of ``tenant`` by id, or by (note, code[, system])."""
        self.init()
        q = select(audit).where(audit.c.kind == "suggestion", audit.c.tenant == tenant)
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
            tenant=r["tenant"],
            note_version=int(r["note_version"]),
        )

    def feedback_rows(self, tenant: str | None = None) -> Iterator[FeedbackRow]:
        """Every decision in order (of one tenant, or all)."""
        self.init()
        q = select(audit).where(audit.c.kind == "feedback")
        if tenant is not None:
            q = q.where(audit.c.tenant == tenant)
        with self.engine.connect() as conn:
            for r in conn.execute(q.order_by(audit.c.id)).mappings():
                yield _feedback_row(r)

    def count(self, kind: str) -> int:
        self.init()
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(audit).where(audit.c.kind == kind)
                ).scalar_one()
            )

    def export(self, tenant: str = DEFAULT_TENANT) -> Iterator[dict[str, Any]]:
        """One record per reviewed note version of ``tenant``: the text the decisions were made
        on, the coder's final code list and what the review says against the rest.

        ``{"id", "note_id", "version", "text", "codes", "partial_codes", "rejected",
        "unreviewed", "code_sets", "model_versions"}``. ``id`` is the note id for version 1 and ``<note_id>@v<version>``
        after it. Decisions are replayed in order per version: accept/add keep a code, modify
        replaces it by ``final_code`` (the replaced code counts as rejected), reject drops it;
        the latest action on a code wins. ``codes`` is the final code set (accepted, modified,
        added); ``rejected`` the codes the coder turned down, explicit negatives for training;
        ``unreviewed`` the codes the engine proposed (``suggested`` / ``needs_query``) that got
        no decision, neither positive nor negative. ``partial_codes`` are the partial
        ICD-10-PCS codes the coder confirmed (``clinicode.kb.validate.is_partial``): labels for
        training, never part of the reported ``codes``; a partial code the coder completed
        (``modify`` to a code that begins with it) is no rejection. ``code_sets`` are the code-set versions
        the note was coded with. A version whose text was purged is left out.
        """
        self.init()
        final: dict[tuple[str, int], dict[tuple[str, str], tuple[str, str] | None]] = {}
        models: dict[tuple[str, int], list[str]] = {}
        for fb in self.feedback_rows(tenant):
            per_note = final.setdefault((fb.note_id, fb.note_version), {})
            key = (fb.system, fb.code)
            if fb.action in ("accept", "add"):
                per_note[key] = key
            elif fb.action == "modify" and fb.final_code:
                per_note[key] = (fb.system, fb.final_code)
            elif fb.action == "reject":
                per_note[key] = None
            seen = models.setdefault((fb.note_id, fb.note_version), [])
            if fb.model_version not in seen:
                seen.append(fb.model_version)
        for (note_id, version), decisions in final.items():
            note = self.get_note(tenant, note_id, version)
            if note is None or note.text is None:
                continue
            final_set = list(dict.fromkeys(v for v in decisions.values() if v is not None))
            kept = set(final_set)
            codes = [k for k in final_set if not is_partial(*k)]
            partial = [k for k in final_set if is_partial(*k)]
            rejected = [
                k for k, v in decisions.items() if v != k and k not in kept and not _completes(k, v)
            ]
            proposed = self.proposed_codes(tenant, note_id, version)
            unreviewed = [k for k in proposed if k not in decisions and k not in kept]
            yield {
                "id": note_id if version == 1 else f"{note_id}@v{version}",
                "note_id": note_id,
                "version": version,
                "text": note.text,
                "codes": [{"system": s, "code": c} for s, c in codes],
                "partial_codes": [{"system": s, "code": c} for s, c in partial],
                "rejected": [{"system": s, "code": c} for s, c in rejected],
                "unreviewed": [{"system": s, "code": c} for s, c in unreviewed],
                "code_sets": note.code_sets,
                "model_versions": models.get((note_id, version), []),
            }

    def proposed_codes(self, tenant: str, note_id: str, version: int) -> list[tuple[str, str]]:
        """The codes the engine proposed for one note version (status ``suggested`` or
        ``needs_query``, every time it was suggested), in order."""
        self.init()
        q = (
            select(audit.c.system, audit.c.code)
            .where(
                audit.c.kind == "suggestion",
                audit.c.tenant == tenant,
                audit.c.note_id == note_id,
                audit.c.note_version == version,
                audit.c.status.in_(("suggested", "needs_query")),
            )
            .order_by(audit.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return list(dict.fromkeys((str(r[0]), str(r[1])) for r in rows))


def _suggestion_row(
    s: CodeSuggestion, *, at: datetime, key_id: str, ref: NoteRef, result: SuggestResult
) -> dict[str, Any]:
    return {
        "at": at,
        "kind": "suggestion",
        "key_id": key_id,
        "note_id": ref.note_id,
        "tenant": ref.tenant,
        "note_version": ref.version,
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


def _stored_note(r: Any) -> StoredNote:
    return StoredNote(
        tenant=r["tenant"],
        note_id=r["note_id"],
        version=int(r["version"]),
        text=None if r["purged_at"] is not None else r["text"],
        text_sha256=r["text_sha256"],
        setting=r["setting"],
        note_type=r["note_type"],
        created_at=r["created_at"],
        key_id=r["key_id"],
        code_sets=json.loads(r["code_sets"] or "{}"),
        purged_at=r["purged_at"],
    )


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
        tenant=r["tenant"],
        note_version=int(r["note_version"]),
    )


def _completes(partial: tuple[str, str], final: tuple[str, str] | None) -> bool:
    """``final`` completes the partial code ``partial`` (same system, begins with it)."""
    return (
        final is not None
        and is_partial(*partial)
        and final[0] == partial[0]
        and final[1].startswith(partial[1])
    )
