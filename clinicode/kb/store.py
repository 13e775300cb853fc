"""SQLite-backed code-set knowledge base (no pickle; loads in milliseconds).

One file holds every code system the user has: ICD-10-CM built from the tabular XML shipped
in ``simple-icd-10-cm``, the built-in CPT starter set, and whatever official files were imported
(Alphabetic Index, Neoplasm/Drug tables, External cause index, ICD-10-PCS, HCPCS, licensed CPT).
Codes are stored in their display form (``E11.22``, ``0DTJ4ZZ``, ``99213``).

Tables:

* ``systems``: one row per code system with its version (``SystemInfo``).
* ``codes``: every code record (chapter ... billable code, PCS table headers, HCPCS modifiers).
* ``terms``: phrases that name a code (titles, inclusion terms, index paths ...), each with a
  normalised ``key`` (sorted content words, non-essential modifiers dropped) for exact matching,
  and a contentless FTS5 index (``terms_fts``, columns ``term`` and ``sys``: system and
  billability tokens). Its rowid ``fid`` puts the term's number of content words in front
  (``words * 10**9 + id``), so a match scan in rowid order meets the shortest terms first and
  can stop early: search stays fast however common the query words are.
* ``index_entries``: the tree of the ICD-10-CM Alphabetic Index and the tables (one row per
  main term or subterm: ``parent_id``, ``level``, ``term``, ``nonessential``, ``code`` as printed,
  the resolved KB ``resolved`` code, ``see``, ``see_also``, ``manif``, table ``cells``), read
  with :meth:`KnowledgeBase.index_lookup` and :meth:`KnowledgeBase.index_children`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from clinicode.kb.records import CodeRecord, IndexEntry, KBError, SystemInfo, Term
from clinicode.kb.search import SearchMixin
from clinicode.kb.text import STOPWORDS, content_words, normalize_code, stem, term_key
from clinicode.kb.write import WriteMixin, _fts_ids

__all__ = [
    "SCHEMA_VERSION",
    "STOPWORDS",
    "CodeIndex",
    "IndexEntry",
    "KBError",
    "KnowledgeBase",
    "content_words",
    "needs_upgrade",
    "normalize_code",
    "stem",
    "term_key",
]

SCHEMA_VERSION = "4"
T = TypeVar("T")

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
    term TEXT NOT NULL, source TEXT NOT NULL, key TEXT, fid INTEGER, fsys TEXT);
CREATE INDEX IF NOT EXISTS terms_code ON terms(system, code);
{FTS}
CREATE TABLE IF NOT EXISTS index_entries(
    id INTEGER PRIMARY KEY, system TEXT NOT NULL, source TEXT NOT NULL,
    parent_id INTEGER, level INTEGER NOT NULL, term TEXT NOT NULL, term_lc TEXT NOT NULL,
    nonessential TEXT NOT NULL DEFAULT '', code TEXT, resolved TEXT, see TEXT, see_also TEXT,
    manif TEXT, cells TEXT NOT NULL DEFAULT '{}', ord INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS index_entries_parent ON index_entries(source, parent_id, term_lc);
CREATE INDEX IF NOT EXISTS index_entries_resolved ON index_entries(system, resolved);
"""
_FTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS terms_fts USING fts5("
    "term, sys, content='', tokenize='porter unicode61 remove_diacritics 2');"
)
_SCHEMA = _SCHEMA.replace("{FTS}", _FTS)
_POST_SCHEMA = """
CREATE INDEX IF NOT EXISTS terms_key ON terms(key);
CREATE UNIQUE INDEX IF NOT EXISTS terms_fid ON terms(fid);
"""


class CodeIndex:
    """Title and billable flag of every code of the loaded systems, in memory."""

    def __init__(
        self, titles: dict[tuple[str, str], str], billable: dict[tuple[str, str], bool]
    ) -> None:
        self.titles = titles
        self.billable = billable

    @classmethod
    def build(cls, kb: KnowledgeBase) -> CodeIndex:
        titles: dict[tuple[str, str], str] = {}
        billable: dict[tuple[str, str], bool] = {}
        for info in kb.systems():
            for rec in kb.iter_codes(info.system):
                titles[(rec.system, rec.code)] = rec.title
                billable[(rec.system, rec.code)] = rec.billable
        return cls(titles, billable)

    def title(self, system: str, code: str) -> str | None:
        return self.titles.get((system, code))

    def info(self, system: str, code: str) -> tuple[bool, bool] | None:
        """``(exists, billable)`` of a code, or None when the KB lacks it."""
        b = self.billable.get((system, code))
        return None if b is None else (True, b)


class KnowledgeBase(SearchMixin, WriteMixin):
    """Read (and, for builders and importers, write) access to the code sets.

    Thread-safe for reads: each thread gets its own SQLite connection.

    Alphabetic Index structure (after ``clinicode codes import index ...``): the ranking model
    can walk the index tree, e.g. the "with" subterms of a main term::

        dm = kb.index_lookup(["Diabetes", "type 2", "with"])
        for sub in kb.index_children(dm.id):   # "chronic kidney disease" -> E11.22, ...
            print(sub.term, sub.resolved)

    ``kb.index_entries_for_code("E11.22")`` lists the entries that lead to a code.
    """

    def __init__(self, path: Path | str, *, readonly: bool = True) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._local = threading.local()
        self._systems_cache: list[SystemInfo] | None = None
        self._derived: dict[str, Any] = {}  # built from the content (see ``derived``)
        self._derived_lock = threading.RLock()  # a builder may read another derived value
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
                _migrate(conn)
                conn.executescript(_SCHEMA + _POST_SCHEMA)
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)",
                    (SCHEMA_VERSION,),
                )
                conn.commit()
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def after_fork(self) -> None:
        """In a forked child: forget the parent's connections (an SQLite connection must not
        cross a fork); the next query opens this process's own."""
        self._local = threading.local()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def schema_version(self) -> str | None:
        return self.get_meta("schema_version")

    # -- systems -----------------------------------------------------------------------
    def systems(self) -> list[SystemInfo]:
        if self.readonly and self._systems_cache is not None:
            return list(self._systems_cache)
        rows = self._conn().execute("SELECT * FROM systems ORDER BY system").fetchall()
        out = [
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
        if self.readonly:
            self._systems_cache = out
        return list(out)

    def _system_names(self) -> list[str]:
        return [s.system for s in self.systems()]

    def system_info(self, system: str) -> SystemInfo | None:
        for info in self.systems():
            if info.system == system:
                return info
        return None

    def versions(self) -> dict[str, str]:
        """``{"ICD-10-CM": "FY2026", "CPT": "...", ...}`` for every loaded system."""
        return {s.system: s.version for s in self.systems()}

    def content_fingerprint(self) -> str:
        """A short hash that changes whenever the code sets or their terms change (an imported
        Alphabetic Index or drug table, a new release): it keys what is built from the terms,
        such as the candidate index and the default model pack."""
        systems = [
            [s.system, s.version, s.source_hash, s.n_codes, sorted(s.extra.items())]
            for s in self.systems()
        ]
        counts = self._conn().execute(
            "SELECT system, source, COUNT(*) FROM terms GROUP BY system, source "
            "ORDER BY system, source"
        )
        payload = json.dumps([systems, [list(r) for r in counts]], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def derived(self, name: str, build: Callable[[KnowledgeBase], T]) -> T:
        """``build(self)``, computed once and kept on this object until its content changes.

        What is derived from the code sets (a title index, the guidelines' sorted code list)
        belongs to the KB it came from: a write through this object forgets it, and a new KB
        object starts empty, so a cache can never outlive or confuse its source.
        """
        with self._derived_lock:
            if name not in self._derived:
                self._derived[name] = build(self)
            value: T = self._derived[name]
            return value

    def _forget_derived(self) -> None:
        with self._derived_lock:
            self._derived.clear()
        self._systems_cache = None

    def code_index(self) -> CodeIndex:
        """Title and billable flag of every code of every loaded system (built once)."""
        return self.derived("code_index", CodeIndex.build)

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
        systems = [system] if system else self._system_names()
        conn = self._conn()
        for sys_name in systems:
            for form in dict.fromkeys((normalize_code(code, sys_name), normalize_code(code))):
                r = conn.execute(
                    "SELECT * FROM codes WHERE system=? AND code=?", (sys_name, form)
                ).fetchone()
                if r is not None:
                    return self._row_to_record(r)
        return None

    def get_many(self, codes: Iterable[str], system: str) -> dict[str, CodeRecord]:
        """``{code: self.get(code, system)}`` for each of ``codes`` the code set has, from one
        query per 500 codes instead of one per code (a note's hundred candidate codes)."""
        wanted = {c: normalize_code(c, system) for c in dict.fromkeys(codes)}
        by_form: dict[str, CodeRecord] = {}
        forms = list(dict.fromkeys(wanted.values()))
        conn = self._conn()
        for i in range(0, len(forms), 500):
            chunk = forms[i : i + 500]
            rows = conn.execute(
                f"SELECT * FROM codes WHERE system=? AND code IN ({','.join('?' * len(chunk))})",
                (system, *chunk),
            )
            for r in rows:
                by_form[r["code"]] = self._row_to_record(r)
        out: dict[str, CodeRecord] = {}
        for code, form in wanted.items():
            rec = by_form.get(form)
            if rec is None:
                rec = self.get(code, system)  # the other spellings ``get`` tries
            if rec is not None:
                out[code] = rec
        return out

    def find_systems(self, code: str) -> list[str]:
        return [s for s in self._system_names() if self.get(code, s) is not None]

    def children(self, code: str, system: str) -> list[CodeRecord]:
        rows = self._conn().execute(
            "SELECT * FROM codes INDEXED BY codes_parent WHERE system=? AND parent=? ORDER BY ord",
            (system, code),
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

    def count(self, system: str, *, billable_only: bool = False, kind: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM codes WHERE system=?" + (
            " AND billable=1" if billable_only else ""
        )
        args: list[object] = [system]
        if kind is not None:
            sql += " AND kind=?"
            args.append(kind)
        return int(self._conn().execute(sql, args).fetchone()[0])

    def codes_under(self, system: str, prefix: str, *, limit: int = 3) -> list[str]:
        """Up to ``limit`` billable codes of ``system`` that begin with ``prefix`` (exact
        characters: ``0DTJ`` -> ``0DTJ0ZZ``, ``0DTJ4ZZ`` ...), in code order."""
        rows = self._conn().execute(
            "SELECT code FROM codes WHERE system=? AND code>=? AND code<? AND billable=1 "
            "ORDER BY code LIMIT ?",
            (system, prefix, prefix + "\uffff", limit),
        )
        return [r[0] for r in rows]

    def titles(self, system: str) -> dict[str, str]:
        rows = self._conn().execute("SELECT code, title FROM codes WHERE system=?", (system,))
        return {r[0]: r[1] for r in rows}

    def billable_map(self, system: str) -> dict[str, bool]:
        """``{code: billable}`` for every code of ``system``."""
        rows = self._conn().execute("SELECT code, billable FROM codes WHERE system=?", (system,))
        return {r[0]: bool(r[1]) for r in rows}

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

    # -- the Alphabetic Index tree ---------------------------------------------------
    @staticmethod
    def _row_to_entry(r: sqlite3.Row) -> IndexEntry:
        return IndexEntry(
            id=r["id"],
            system=r["system"],
            source=r["source"],
            parent_id=r["parent_id"],
            level=r["level"],
            term=r["term"],
            nonessential=r["nonessential"],
            code=r["code"],
            resolved=r["resolved"],
            see=r["see"],
            see_also=r["see_also"],
            manif=r["manif"],
            cells=json.loads(r["cells"]),
            order=r["ord"],
        )

    def index_entry(self, entry_id: int) -> IndexEntry | None:
        r = self._conn().execute("SELECT * FROM index_entries WHERE id=?", (entry_id,)).fetchone()
        return None if r is None else self._row_to_entry(r)

    def index_children(self, entry_id: int | None, *, source: str = "index") -> list[IndexEntry]:
        """Subterms of an index entry in printed order (``None``: the main terms of ``source``)."""
        if entry_id is None:
            sql = "SELECT * FROM index_entries WHERE source=? AND parent_id IS NULL ORDER BY ord"
            rows = self._conn().execute(sql, (source,))
        else:
            sql = "SELECT * FROM index_entries WHERE parent_id=? ORDER BY ord"
            rows = self._conn().execute(sql, (entry_id,))
        return [self._row_to_entry(r) for r in rows]

    def index_find(
        self, term: str, *, parent_id: int | None = None, source: str = "index"
    ) -> list[IndexEntry]:
        """Entries titled ``term`` (case-insensitive; a main term matches any of its comma
        spellings, e.g. ``Diabetes`` finds ``Diabetes, diabetic``) under ``parent_id``."""
        t = " ".join(term.lower().split())
        if parent_id is None:
            sql = (
                "SELECT * FROM index_entries WHERE source=? AND parent_id IS NULL "
                "AND (term_lc=? OR term_lc LIKE ?) ORDER BY ord"
            )
            rows = self._conn().execute(sql, (source, t, t.replace("%", "") + ",%")).fetchall()
        else:
            sql = "SELECT * FROM index_entries WHERE source=? AND parent_id=? AND term_lc=?"
            rows = self._conn().execute(sql + " ORDER BY ord", (source, parent_id, t)).fetchall()
        return [self._row_to_entry(r) for r in rows]

    def index_lookup(self, path: Sequence[str], *, source: str = "index") -> IndexEntry | None:
        """Walk an index path (``["Diabetes", "type 2", "with", "chronic kidney disease"]``)."""
        entry: IndexEntry | None = None
        for part in path:
            found = self.index_find(part, parent_id=entry.id if entry else None, source=source)
            if not found:
                return None
            entry = found[0]
        return entry

    def index_path(self, entry_id: int) -> list[IndexEntry]:
        """The entry and its ancestors, main term first."""
        out: list[IndexEntry] = []
        cur = self.index_entry(entry_id)
        while cur is not None:
            out.append(cur)
            cur = self.index_entry(cur.parent_id) if cur.parent_id is not None else None
        return out[::-1]

    def index_entries_for_code(
        self, code: str, system: str = "ICD-10-CM", *, limit: int = 50
    ) -> list[IndexEntry]:
        rows = self._conn().execute(
            "SELECT * FROM index_entries WHERE system=? AND resolved=? ORDER BY ord LIMIT ?",
            (system, normalize_code(code, system), limit),
        )
        return [self._row_to_entry(r) for r in rows]

    def index_count(self, source: str = "index") -> int:
        sql = "SELECT COUNT(*) FROM index_entries WHERE source=?"
        return int(self._conn().execute(sql, (source,)).fetchone()[0])


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring an older KB up to date in place: (re)compute the term keys and rebuild the FTS
    index in the current layout whenever the schema version changed."""
    cols = [r[1] for r in conn.execute("PRAGMA table_info(terms)")]
    if not cols:
        return
    row = None
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.OperationalError:
        pass
    if row is not None and row[0] == SCHEMA_VERSION:
        return
    with conn:
        for col in ("key", "fid", "fsys"):
            if col not in cols:
                conn.execute(
                    f"ALTER TABLE terms ADD COLUMN {col} {'INTEGER' if col == 'fid' else 'TEXT'}"
                )
        conn.execute("DROP INDEX IF EXISTS terms_fid")
        conn.execute("DROP TABLE IF EXISTS terms_vocab")
        conn.execute("DROP TABLE IF EXISTS terms_fts")
        conn.execute(_FTS)
        billable = {
            (r[0], r[1]): bool(r[2])
            for r in conn.execute("SELECT system, code, billable FROM codes")
        }
        updates = []
        for tid, system, code, text in conn.execute("SELECT id, system, code, term FROM terms"):
            fid, fsys = _fts_ids(tid, text, system, billable.get((system, code), False))
            updates.append((term_key(text), fid, fsys, tid))
        conn.executemany("UPDATE terms SET key=?, fid=?, fsys=? WHERE id=?", updates)
        conn.execute("INSERT INTO terms_fts(rowid, term, sys) SELECT fid, term, fsys FROM terms")


def needs_upgrade(path: Path) -> bool:
    """True when the KB at ``path`` was written by an older schema."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return True
    return row is None or row[0] != SCHEMA_VERSION
