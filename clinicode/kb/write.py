"""Writing the knowledge base: builders and importers replace whole systems atomically.

:class:`WriteMixin` is part of :class:`clinicode.kb.store.KnowledgeBase`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from clinicode.kb.records import CodeRecord, IndexEntry, KBError, SystemInfo, Term
from clinicode.kb.text import content_words, term_key

_FID_BAND = 10**9


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class WriteMixin:
    """Write methods of the knowledge base (the store supplies the connection)."""

    readonly: bool

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _forget_derived(self) -> None:
        raise NotImplementedError

    def _writable(self) -> sqlite3.Connection:
        if self.readonly:
            raise KBError("knowledge base opened read-only")
        self._forget_derived()  # what was derived from the old content is stale now
        return self._conn()

    def replace_system(
        self,
        info: SystemInfo,
        records: Iterable[CodeRecord],
        terms: Iterable[Term] = (),
    ) -> SystemInfo:
        """Atomically replace every code, term and index entry of ``info.system``.

        ``n_codes`` counts every record except HCPCS modifiers (kind ``modifier``).
        """
        conn = self._writable()
        with conn:
            conn.execute("DELETE FROM codes WHERE system=?", (info.system,))
            conn.execute("DELETE FROM index_entries WHERE system=?", (info.system,))
            self._delete_terms(conn, info.system, None)
            n_codes = n_billable = 0
            batch: list[tuple[object, ...]] = []
            for i, rec in enumerate(records):
                n_codes += int(rec.kind != "modifier")
                n_billable += int(rec.billable)
                batch.append(
                    (
                        rec.system,
                        rec.code,
                        rec.title,
                        rec.kind,
                        int(rec.billable),
                        rec.parent,
                        rec.depth,
                        rec.order or i,
                        json.dumps(rec.notes),
                        json.dumps(rec.seven_chr),
                        rec.description_source,
                    )
                )
                if len(batch) >= 5000:
                    conn.executemany("INSERT INTO codes VALUES(?,?,?,?,?,?,?,?,?,?,?)", batch)
                    batch.clear()
            if batch:
                conn.executemany("INSERT INTO codes VALUES(?,?,?,?,?,?,?,?,?,?,?)", batch)
            self._insert_terms(conn, terms)
            info.n_codes, info.n_billable = n_codes, n_billable
            info.imported_at = info.imported_at or _now()
            self._write_info(conn, info)
        return info

    def replace_terms(
        self,
        system: str,
        source: str,
        terms: Iterable[Term],
        info_extra: dict[str, str | None] | None = None,
    ) -> int:
        """Replace the terms of one ``source`` (say, the Alphabetic Index) for ``system``."""
        conn = self._writable()
        with conn:
            self._delete_terms(conn, system, source)
            n = self._insert_terms(conn, terms)
            if info_extra:
                self._update_extra(conn, system, info_extra)
        return n

    def replace_index(
        self,
        system: str,
        source: str,
        entries: Sequence[IndexEntry],
        terms: Iterable[Term],
        info_extra: dict[str, str | None] | None = None,
    ) -> int:
        """Atomically replace the index tree and the terms of ``source`` (``index``,
        ``neoplasm``, ``drug``, ``eindex``) for ``system``; entry ids are assigned here
        (``parent_id`` values refer to positions in ``entries``, see the importers)."""
        conn = self._writable()
        with conn:
            conn.execute("DELETE FROM index_entries WHERE system=? AND source=?", (system, source))
            start = conn.execute("SELECT COALESCE(MAX(id), 0) FROM index_entries").fetchone()[0]
            rows = [
                (
                    start + e.id,
                    system,
                    source,
                    None if e.parent_id is None else start + e.parent_id,
                    e.level,
                    e.term,
                    " ".join(e.term.lower().split()),
                    e.nonessential,
                    e.code,
                    e.resolved,
                    e.see,
                    e.see_also,
                    e.manif,
                    json.dumps(e.cells),
                    e.order,
                )
                for e in entries
            ]
            conn.executemany(
                "INSERT INTO index_entries VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows
            )
            self._delete_terms(conn, system, source)
            n = self._insert_terms(conn, terms)
            if info_extra:
                self._update_extra(conn, system, info_extra)
        return n

    @staticmethod
    def _update_extra(
        conn: sqlite3.Connection, system: str, info_extra: dict[str, str | None]
    ) -> None:
        """Merge ``info_extra`` into the system's ``extra``; a ``None`` value removes the key."""
        row = conn.execute("SELECT extra FROM systems WHERE system=?", (system,)).fetchone()
        if row is not None:
            extra = json.loads(row[0])
            for key, value in info_extra.items():
                if value is None:
                    extra.pop(key, None)
                else:
                    extra[key] = value
            conn.execute("UPDATE systems SET extra=? WHERE system=?", (json.dumps(extra), system))

    def replace_meta(
        self, key: str, value: str, *, system: str, info_extra: dict[str, str | None]
    ) -> None:
        """Store ``value`` under the meta ``key`` and merge ``info_extra`` into ``system``'s
        ``extra``, in one transaction (an importer's data that is not codes or terms)."""
        conn = self._writable()
        with conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))
            self._update_extra(conn, system, info_extra)

    def set_meta(self, key: str, value: str) -> None:
        conn = self._conn()
        with conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        try:
            row = self._conn().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else str(row[0])

    @staticmethod
    def _delete_terms(conn: sqlite3.Connection, system: str, source: str | None) -> None:
        where = "system=?" + (" AND source=?" if source else "")
        args = (system, source) if source else (system,)
        # contentless FTS5: remove rows with the 'delete' command and the indexed values
        conn.execute(
            "INSERT INTO terms_fts(terms_fts, rowid, term, sys) "
            f"SELECT 'delete', fid, term, fsys FROM terms WHERE {where}",
            args,
        )
        conn.execute(f"DELETE FROM terms WHERE {where}", args)

    @staticmethod
    def _insert_terms(conn: sqlite3.Connection, terms: Iterable[Term]) -> int:
        start = conn.execute("SELECT COALESCE(MAX(id), 0) FROM terms").fetchone()[0]
        billable: dict[str, dict[str, bool]] = {}
        rows = []
        for i, t in enumerate(terms):
            if t.system not in billable:
                billable[t.system] = {
                    r[0]: bool(r[1])
                    for r in conn.execute(
                        "SELECT code, billable FROM codes WHERE system=?", (t.system,)
                    )
                }
            tid = start + i + 1
            fid, fsys = _fts_ids(tid, t.text, t.system, billable[t.system].get(t.code, False))
            rows.append((tid, t.system, t.code, t.text, t.source, term_key(t.text), fid, fsys))
        conn.executemany("INSERT INTO terms VALUES(?,?,?,?,?,?,?,?)", rows)
        conn.executemany(
            "INSERT INTO terms_fts(rowid, term, sys) VALUES(?, ?, ?)",
            [(r[6], r[3], r[7]) for r in rows],
        )
        return len(rows)

    @staticmethod
    def _write_info(conn: sqlite3.Connection, info: SystemInfo) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO systems VALUES(?,?,?,?,?,?,?,?)",
            (
                info.system,
                info.version,
                info.source,
                info.source_hash,
                info.imported_at,
                info.n_codes,
                info.n_billable,
                json.dumps(info.extra),
            ),
        )


def _sys_token(system: str) -> str:
    return "s" + re.sub(r"[^a-z0-9]", "", system.lower())


def _fts_ids(tid: int, text: str, system: str, billable: bool) -> tuple[int, str]:
    """(FTS rowid, ``sys`` column) of a term: shorter terms get smaller rowids."""
    band = min(len(set(content_words(text))), 99)
    return band * _FID_BAND + tid, f"{_sys_token(system)} b{int(billable)}"
