"""The coder's work queue: encounters (one or several documents), their status and worksheet.

Its own table (``wq_encounters``) in the feedback database (SQLite under the data dir, or the
``CLINICODE_DATABASE_URL`` server), next to but apart from the audit tables of
:mod:`clinicode.serve.store`: an encounter refers to the note id its decisions are recorded
under, and the decisions themselves go to the append-only audit through the feedback service.
What is kept here is the coder's working state (decisions as shown, sequence, POA, queries,
where the coder was), rewritten whole on every change under a version number so that two tabs
cannot silently overwrite each other.

This table holds patient data (the documents' text): nothing here logs it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from .db import create_with_retries, open_engine

STATUSES = ("new", "in_progress", "queried", "coded")

metadata = MetaData()

encounters = Table(
    "wq_encounters",
    metadata,
    Column("encounter_id", String(128), primary_key=True),
    Column("note_id", String(128), nullable=False),
    Column("label", String(200), nullable=False, default=""),
    Column("setting", String(16), nullable=False),
    Column("encounter_date", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("coded_at", DateTime(timezone=True)),
    Column("key_id", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("documents", Text, nullable=False),  # JSON: [{note_type, title, start, end}]
    Column("result", Text, nullable=False),  # JSON: the SuggestResult
    Column("worksheet", Text, nullable=False),  # JSON: the coder's state
    Column("codes", Text, nullable=False, default=""),  # " E11.9 I10 " for the code filter
)
Index("wq_status_date", encounters.c.status, encounters.c.encounter_date)
Index("wq_coded_at", encounters.c.coded_at)


class Conflict(Exception):
    """The encounter changed since the version the caller read."""


@dataclass
class Encounter:
    encounter_id: str
    note_id: str
    label: str
    setting: str
    encounter_date: date
    status: str
    created_at: datetime
    updated_at: datetime
    coded_at: datetime | None
    key_id: str
    version: int
    text: str
    documents: list[dict[str, Any]]
    result: dict[str, Any]
    worksheet: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueFilter:
    status: tuple[str, ...] = ()
    setting: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    code: str | None = None
    label: str | None = None
    limit: int = 200


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:  # SQLite returns naive datetimes
        return dt.replace(tzinfo=UTC)
    return dt


def _codes_index(codes: list[str]) -> str:
    return " " + " ".join(dict.fromkeys(c.upper() for c in codes)) + " "


class WorkQueueStore:
    """Thread-safe (a connection pool); every write is one committed transaction."""

    def __init__(self, url: str) -> None:
        self.engine: Engine
        self.engine, self.is_sqlite = open_engine(url)
        self._lock = threading.Lock()
        self._ready = False

    def init(self) -> None:
        with self._lock:
            if self._ready:
                return
            create_with_retries(lambda: metadata.create_all(self.engine))
            self._ready = True

    def close(self) -> None:
        self.engine.dispose()

    # -- writes ------------------------------------------------------------------------
    def create(self, enc: Encounter, codes: list[str]) -> None:
        """Insert a new encounter; :class:`Conflict` if its id is taken."""
        self.init()
        row = _to_row(enc)
        row["codes"] = _codes_index(codes)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(encounters).values(**row))
        except IntegrityError:
            raise Conflict(f"encounter {enc.encounter_id!r} exists already") from None

    def save(self, enc: Encounter, codes: list[str], *, expected_version: int) -> Encounter:
        """Write the status and worksheet of ``enc`` if its stored version is still
        ``expected_version``; returns it with the new version. :class:`Conflict` otherwise."""
        self.init()
        now = _now()
        values = {
            "status": enc.status,
            "worksheet": json.dumps(enc.worksheet, ensure_ascii=False),
            "updated_at": now,
            "coded_at": enc.coded_at,
            "codes": _codes_index(codes),
            "version": expected_version + 1,
        }
        with self.engine.begin() as conn:
            n = conn.execute(
                update(encounters)
                .where(
                    encounters.c.encounter_id == enc.encounter_id,
                    encounters.c.version == expected_version,
                )
                .values(**values)
            ).rowcount
        if n != 1:
            raise Conflict(
                f"encounter {enc.encounter_id!r} changed since version {expected_version}: "
                "reload it and try again"
            )
        enc.version = expected_version + 1
        enc.updated_at = now
        return enc

    # -- reads -------------------------------------------------------------------------
    def get(self, encounter_id: str) -> Encounter | None:
        self.init()
        with self.engine.connect() as conn:
            r = (
                conn.execute(select(encounters).where(encounters.c.encounter_id == encounter_id))
                .mappings()
                .first()
            )
        return None if r is None else _from_row(r)

    def queue(self, f: QueueFilter) -> list[dict[str, Any]]:
        """Queue rows (no text, no result) matching ``f``, oldest encounter first."""
        self.init()
        c = encounters.c
        q = select(
            c.encounter_id,
            c.label,
            c.setting,
            c.encounter_date,
            c.status,
            c.updated_at,
            c.coded_at,
            c.codes,
            c.documents,
        )
        if f.status:
            q = q.where(c.status.in_(f.status))
        if f.setting:
            q = q.where(c.setting == f.setting)
        if f.date_from:
            q = q.where(c.encounter_date >= f.date_from)
        if f.date_to:
            q = q.where(c.encounter_date <= f.date_to)
        if f.code:
            q = q.where(c.codes.like(f"% {_escape(f.code.upper())}%", escape="\\"))
        if f.label:
            q = q.where(func.lower(c.label).like(f"%{_escape(f.label.lower())}%", escape="\\"))
        q = q.order_by(c.encounter_date, c.created_at).limit(f.limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            {
                "encounter_id": r["encounter_id"],
                "label": r["label"],
                "setting": r["setting"],
                "encounter_date": r["encounter_date"].isoformat(),
                "status": r["status"],
                "updated_at": _aware(r["updated_at"]),
                "coded_at": _aware(r["coded_at"]),
                "codes": r["codes"].split(),
                "documents": len(json.loads(r["documents"])),
            }
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        self.init()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(encounters.c.status, func.count()).group_by(encounters.c.status)
            ).all()
        out = dict.fromkeys(STATUSES, 0)
        out.update({str(s): int(n) for s, n in rows})
        return out

    def coded_between(self, start: datetime, end: datetime) -> list[Encounter]:
        """Coded encounters whose ``coded_at`` falls in ``[start, end)``."""
        self.init()
        c = encounters.c
        q = (
            select(encounters)
            .where(c.status == "coded", c.coded_at >= start, c.coded_at < end)
            .order_by(c.coded_at)
        )
        with self.engine.connect() as conn:
            return [_from_row(r) for r in conn.execute(q).mappings()]


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _to_row(enc: Encounter) -> dict[str, Any]:
    return {
        "encounter_id": enc.encounter_id,
        "note_id": enc.note_id,
        "label": enc.label,
        "setting": enc.setting,
        "encounter_date": enc.encounter_date,
        "status": enc.status,
        "created_at": enc.created_at,
        "updated_at": enc.updated_at,
        "coded_at": enc.coded_at,
        "key_id": enc.key_id,
        "version": enc.version,
        "text": enc.text,
        "documents": json.dumps(enc.documents, ensure_ascii=False),
        "result": json.dumps(enc.result, ensure_ascii=False),
        "worksheet": json.dumps(enc.worksheet, ensure_ascii=False),
    }


def _from_row(r: Any) -> Encounter:
    return Encounter(
        encounter_id=r["encounter_id"],
        note_id=r["note_id"],
        label=r["label"],
        setting=r["setting"],
        encounter_date=r["encounter_date"],
        status=r["status"],
        created_at=_aware(r["created_at"]) or _now(),
        updated_at=_aware(r["updated_at"]) or _now(),
        coded_at=_aware(r["coded_at"]),
        key_id=r["key_id"],
        version=int(r["version"]),
        text=r["text"],
        documents=json.loads(r["documents"]),
        result=json.loads(r["result"]),
        worksheet=json.loads(r["worksheet"]),
    )
