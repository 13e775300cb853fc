"""SQLite-backed code-set knowledge base (no pickle; loads in milliseconds).

One file holds every code system the user has: ICD-10-CM built from the tabular XML shipped
in ``simple-icd-10-cm``, and whatever official files were imported (index, tables, PCS, HCPCS,
CPT). Codes are stored in their display form (``E11.22``, ``0DTJ4ZZ``, ``99213``).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from clinicode.errors import ClinicodeError
from clinicode.kb.records import CodeRecord, SearchHit, SystemInfo, Term

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS systems(
    system TEXT PRIMARY KEY, version TEXT NOT NULL, source TEXT NOT NULL,
    source_hash TEXT NOT NULL, imported_at TEXT NOT NULL,
    n_codes INTEGER NOT NULL, n_billable INTEGER NOT NULL, extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS codes(
    system TEXT NOT NULL, code TEXT NOT NULL, title TEXT NOT NULL, kind TEXT NOT NULL,
    billable INTEGER NOT NULL, parent TEXT, depth INTEGER NOT NULL, ord INTEGER NOT NULL,
    notes TEXT NOT NULL, seven_chr TEXT NOT NULL, description_source TEXT NOT NULL,
    PRIMARY KEY(system, code)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS codes_parent ON codes(system, parent);
CREATE TABLE IF NOT EXISTS terms(
    id INTEGER PRIMARY KEY, system TEXT NOT NULL, code TEXT NOT NULL,
    term TEXT NOT NULL, source TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS terms_code ON terms(system, code);
CREATE VIRTUAL TABLE IF NOT EXISTS terms_fts USING fts5(
    term, content='terms', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');
"""

# How much a term source counts in search ranking (titles first, then the index).
_SOURCE_WEIGHT = {
    "title": 1.0,
    "description": 1.0,
    "inclusion": 0.85,
    "index": 0.9,
    "neoplasm": 0.85,
    "drug": 0.85,
    "eindex": 0.8,
    "synonym": 0.8,
}

_CODE_LIKE = re.compile(r"^[A-Za-z0-9]{1,3}(\.[A-Za-z0-9]{0,4})?$|^[A-Za-z0-9]{3,7}$")
_WORD = re.compile(r"[A-Za-z0-9]+")


class KBError(ClinicodeError):
    """A knowledge-base problem the user can act on (missing build, wrong file ...)."""


def normalize_code(code: str, system: str | None = None) -> str:
    """Display form of a code: upper case, no spaces; ICD-10-CM gets its dot after the category."""
    c = code.strip().upper().replace(" ", "")
    if system == "ICD-10-CM" and len(c) > 3 and "." not in c and "-" not in c:
        c = c[:3] + "." + c[3:]
    return c


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KnowledgeBase:
    """Read (and, for builders and importers, write) access to the code sets.

    Thread-safe for reads: each thread gets its own SQLite connection.
    """

    def __init__(self, path: Path | str, *, readonly: bool = True) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._local = threading.local()
        if readonly and not self.path.exists():
            raise KBError(
                f"code-set knowledge base not found at {self.path}; run `clinicode codes build`"
            )

    # -- connections -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.readonly:
                uri = f"file:{self.path}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False)
                conn.executescript(_SCHEMA)
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', ?)",
                    (SCHEMA_VERSION,),
                )
                conn.commit()
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- systems -----------------------------------------------------------------------
    def systems(self) -> list[SystemInfo]:
        rows = self._conn().execute("SELECT * FROM systems ORDER BY system").fetchall()
        return [
            SystemInfo(
                system=r["system"],
                version=r["version"],
                source=r["source"],
                source_hash=r["source_hash"],
                imported_at=r["imported_at"],
                n_codes=r["n_codes"],
                n_billable=r["n_billable"],
                extra=json.loads(r["extra"]),
            )
            for r in rows
        ]

    def system_info(self, system: str) -> SystemInfo | None:
        for info in self.systems():
            if info.system == system:
                return info
        return None

    def versions(self) -> dict[str, str]:
        """``{"ICD-10-CM": "ICD-10-CM FY2026", ...}`` for every loaded system."""
        return {s.system: s.version for s in self.systems()}

    # -- lookups -----------------------------------------------------------------------
    def _row_to_record(self, r: sqlite3.Row) -> CodeRecord:
        return CodeRecord(
            system=r["system"],
            code=r["code"],
            title=r["title"],
            kind=r["kind"],
            billable=bool(r["billable"]),
            parent=r["parent"],
            depth=r["depth"],
            notes=json.loads(r["notes"]),
            seven_chr=json.loads(r["seven_chr"]),
            description_source=r["description_source"],
            order=r["ord"],
        )

    def get(self, code: str, system: str | None = None) -> CodeRecord | None:
        """The record for ``code`` (any common spelling: ``e1122``, ``E11.22``)."""
        systems = [system] if system else [s.system for s in self.systems()]
        conn = self._conn()
        for sys_name in systems:
            for form in dict.fromkeys((normalize_code(code, sys_name), normalize_code(code))):
                r = conn.execute(
                    "SELECT * FROM codes WHERE system=? AND code=?", (sys_name, form)
                ).fetchone()
                if r is not None:
                    return self._row_to_record(r)
        return None

    def find_systems(self, code: str) -> list[str]:
        return [s.system for s in self.systems() if self.get(code, s.system) is not None]

    def children(self, code: str, system: str) -> list[CodeRecord]:
        rows = self._conn().execute(
            "SELECT * FROM codes WHERE system=? AND parent=? ORDER BY ord", (system, code)
        )
        return [self._row_to_record(r) for r in rows]

    def ancestors(self, code: str, system: str) -> list[CodeRecord]:
        """Parents from the nearest up to the chapter."""
        out: list[CodeRecord] = []
        rec = self.get(code, system)
        seen = set()
        while rec is not None and rec.parent and rec.parent not in seen:
            seen.add(rec.parent)
            rec = self.get(rec.parent, system)
            if rec is not None:
                out.append(rec)
        return out

    def effective_notes(self, code: str, system: str) -> dict[str, list[tuple[str, str]]]:
        """Instructional notes that apply to ``code``: its own and its ancestors'.

        Returns ``{kind: [(from_code, note), ...]}`` from the nearest level outwards.
        """
        rec = self.get(code, system)
        if rec is None:
            return {}
        out: dict[str, list[tuple[str, str]]] = {}
        for node in [rec, *self.ancestors(code, system)]:
            for kind, notes in node.notes.items():
                out.setdefault(kind, []).extend((node.code, n) for n in notes)
        return out

    def iter_codes(self, system: str, *, billable_only: bool = False) -> Iterator[CodeRecord]:
        sql = "SELECT * FROM codes WHERE system=?"
        if billable_only:
            sql += " AND billable=1"
        for r in self._conn().execute(sql + " ORDER BY ord", (system,)):
            yield self._row_to_record(r)

    def count(self, system: str, *, billable_only: bool = False) -> int:
        sql = "SELECT COUNT(*) FROM codes WHERE system=?" + (
            " AND billable=1" if billable_only else ""
        )
        return int(self._conn().execute(sql, (system,)).fetchone()[0])

    def titles(self, system: str) -> dict[str, str]:
        rows = self._conn().execute("SELECT code, title FROM codes WHERE system=?", (system,))
        return {r[0]: r[1] for r in rows}

    def iter_terms(
        self, systems: Iterable[str] | None = None, sources: Iterable[str] | None = None
    ) -> Iterator[Term]:
        sql = "SELECT system, code, term, source FROM terms"
        where, args = [], []
        if systems is not None:
            s = list(systems)
            where.append(f"system IN ({','.join('?' * len(s))})")
            args.extend(s)
        if sources is not None:
            src = list(sources)
            where.append(f"source IN ({','.join('?' * len(src))})")
            args.extend(src)
        if where:
            sql += " WHERE " + " AND ".join(where)
        for r in self._conn().execute(sql + " ORDER BY id", args):
            yield Term(system=r[0], code=r[1], text=r[2], source=r[3])

    def terms_for(self, code: str, system: str) -> list[Term]:
        rows = self._conn().execute(
            "SELECT system, code, term, source FROM terms WHERE system=? AND code=? ORDER BY id",
            (system, code),
        )
        return [Term(system=r[0], code=r[1], text=r[2], source=r[3]) for r in rows]

    # -- search ------------------------------------------------------------------------
    def search(
        self,
        text: str,
        *,
        systems: Iterable[str] | None = None,
        limit: int = 20,
        billable_only: bool = False,
    ) -> list[SearchHit]:
        """Ranked text search over titles, inclusion terms and index terms (and exact codes)."""
        text = text.strip()
        if not text:
            return []
        sys_filter = list(systems) if systems is not None else None
        hits: dict[tuple[str, str], SearchHit] = {}
        if _CODE_LIKE.match(text):
            for sys_name in sys_filter or [s.system for s in self.systems()]:
                rec = self.get(text, sys_name)
                if rec is not None:
                    hits[(rec.system, rec.code)] = SearchHit(
                        rec.system, rec.code, rec.title, rec.billable, 100.0, rec.code, "code"
                    )
        words = [w.lower() for w in _WORD.findall(text)]
        if words:
            for match_all in (True, False):
                query = (" AND " if match_all else " OR ").join(f'"{w}"*' for w in words)
                self._fts(query, sys_filter, limit, billable_only, hits, len(words))
                if len(hits) >= limit:
                    break
        ranked = sorted(hits.values(), key=lambda h: (-h.score, h.code))
        return ranked[:limit]

    def _fts(
        self,
        query: str,
        systems: list[str] | None,
        limit: int,
        billable_only: bool,
        hits: dict[tuple[str, str], SearchHit],
        n_words: int,
    ) -> None:
        sql = (
            "SELECT t.system, t.code, t.term, t.source, c.title, c.billable, bm25(terms_fts) AS r "
            "FROM terms_fts JOIN terms t ON t.id = terms_fts.rowid "
            "JOIN codes c ON c.system = t.system AND c.code = t.code "
            "WHERE terms_fts MATCH ?"
        )
        args: list[object] = [query]
        if systems:
            sql += f" AND t.system IN ({','.join('?' * len(systems))})"
            args.extend(systems)
        if billable_only:
            sql += " AND c.billable = 1"
        sql += " ORDER BY r LIMIT ?"
        args.append(limit * 8)
        for r in self._conn().execute(sql, args):
            term = r["term"]
            # bm25 is negative-better; shorter terms that cover the query read as better.
            score = -float(r["r"]) * _SOURCE_WEIGHT.get(r["source"], 0.8)
            score += 2.0 * n_words / max(len(_WORD.findall(term)), 1)
            if r["billable"]:
                score += 0.1
            key = (r["system"], r["code"])
            prev = hits.get(key)
            if prev is None or score > prev.score:
                hits[key] = SearchHit(
                    r["system"],
                    r["code"],
                    r["title"],
                    bool(r["billable"]),
                    score,
                    term,
                    r["source"],
                )

    # -- writing (builders and importers) ----------------------------------------------
    def replace_system(
        self,
        info: SystemInfo,
        records: Iterable[CodeRecord],
        terms: Iterable[Term] = (),
    ) -> SystemInfo:
        """Atomically replace every code and term of ``info.system``."""
        if self.readonly:
            raise KBError("knowledge base opened read-only")
        conn = self._conn()
        with conn:
            conn.execute("DELETE FROM codes WHERE system=?", (info.system,))
            self._delete_terms(conn, info.system, None)
            n_codes = n_billable = 0
            batch: list[tuple[object, ...]] = []
            for i, rec in enumerate(records):
                n_codes += 1
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
        info_extra: dict[str, str] | None = None,
    ) -> int:
        """Replace the terms of one ``source`` (say, the Alphabetic Index) for ``system``."""
        if self.readonly:
            raise KBError("knowledge base opened read-only")
        conn = self._conn()
        with conn:
            self._delete_terms(conn, system, source)
            n = self._insert_terms(conn, terms)
            if info_extra:
                row = conn.execute("SELECT extra FROM systems WHERE system=?", (system,)).fetchone()
                if row is not None:
                    extra = json.loads(row[0])
                    extra.update(info_extra)
                    conn.execute(
                        "UPDATE systems SET extra=? WHERE system=?", (json.dumps(extra), system)
                    )
        return n

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
        # external-content FTS5: delete rows from the index with the 'delete' command
        conn.execute(
            "INSERT INTO terms_fts(terms_fts, rowid, term) "
            f"SELECT 'delete', id, term FROM terms WHERE {where}",
            args,
        )
        conn.execute(f"DELETE FROM terms WHERE {where}", args)

    @staticmethod
    def _insert_terms(conn: sqlite3.Connection, terms: Iterable[Term]) -> int:
        start = conn.execute("SELECT COALESCE(MAX(id), 0) FROM terms").fetchone()[0]
        rows = [(start + i + 1, t.system, t.code, t.text, t.source) for i, t in enumerate(terms)]
        conn.executemany("INSERT INTO terms VALUES(?,?,?,?,?)", rows)
        conn.executemany(
            "INSERT INTO terms_fts(rowid, term) VALUES(?, ?)", [(r[0], r[3]) for r in rows]
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
