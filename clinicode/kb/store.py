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
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from clinicode.errors import ClinicodeError
from clinicode.kb.records import CodeRecord, SearchHit, SystemInfo, Term

SCHEMA_VERSION = "4"

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
_FID_BAND = 10**9

# How much a term source counts in search ranking (titles first, then the index).
_SOURCE_WEIGHT = {
    "title": 1.0,
    "description": 1.0,
    "index": 0.9,
    "inclusion": 0.85,
    "neoplasm": 0.85,
    "drug": 0.85,
    "eindex": 0.8,
    "synonym": 0.8,
}

# At most this many relaxed (one word less) queries per search.
_MAX_RELAXED = 6
_CODE_LIKE = re.compile(r"^[A-Za-z0-9]{1,3}(\.[A-Za-z0-9]{0,4})?$|^[A-Za-z0-9]{3,7}$")
_CODE_CHARS = re.compile(r"[0-9.]")
_WORD = re.compile(r"[A-Za-z0-9]+")
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
# Function words that carry no meaning for matching ("with" and "without" differ: keep the latter).
# "unspecified"/"NOS" add no specificity: "Hyperlipidemia, unspecified" is an exact match for
# "hyperlipidemia".
STOPWORDS = frozenset(
    "a an and as at by for from in into is of on or the to with nos nec unspecified".split()
)
_SUFFIXES = (
    "ations",
    "ation",
    "ically",
    "ness",
    "ions",
    "ion",
    "ive",
    "ies",
    "ic",
    "al",
    "ed",
    "ing",
    "es",
    "s",
    "y",
)


class KBError(ClinicodeError):
    """A knowledge-base problem the user can act on (missing build, wrong file ...)."""


def normalize_code(code: str, system: str | None = None) -> str:
    """Display form of a code: upper case, no spaces; ICD-10-CM gets its dot after the category."""
    c = code.strip().upper().replace(" ", "")
    if system == "ICD-10-CM" and len(c) > 3 and "." not in c and "-" not in c:
        c = c[:3] + "." + c[3:]
    return c


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light, deterministic stem: ``diabetes``/``diabetic`` -> ``diabet``, ``fractured`` ->
    ``fractur``; used for exact-key matching and for query coverage (not for FTS)."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) <= 4 or w.isdigit():
        return w
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 4:
            w = w[: -len(suf)]
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


@lru_cache(maxsize=100_000)
def content_words(text: str, *, drop_parens: bool = True) -> tuple[str, ...]:
    """Stemmed content words of ``text`` (non-essential parenthesised parts dropped)."""
    if drop_parens:
        text = _PARENS.sub(" ", text)
    return tuple(
        stem(w) for w in _WORD.findall(text.replace("'s", "")) if w.lower() not in STOPWORDS
    )


def term_key(text: str) -> str | None:
    """Order-free key of a term: ``"Diabetes, type 2, with, chronic kidney disease"`` and
    ``"type 2 diabetes with chronic kidney disease"`` share one key."""
    words = sorted(set(content_words(text)))
    return " ".join(words) if words else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class IndexEntry:
    """One main term or subterm of the Alphabetic Index (or a row of a table).

    ``code`` is the code as printed (``E11.2-``, ``C34.9-``); ``resolved`` is the KB record it
    maps to (``None`` when the code is unknown to the KB or absent). ``cells`` holds the table
    columns of the Neoplasm and Drug tables (``{"malignant primary": "C34.9-", ...}``).
    """

    id: int
    system: str
    source: str
    parent_id: int | None
    level: int
    term: str
    nonessential: str = ""
    code: str | None = None
    resolved: str | None = None
    see: str | None = None
    see_also: str | None = None
    manif: str | None = None
    cells: dict[str, str] = field(default_factory=dict)
    order: int = 0


class KnowledgeBase:
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

    # -- search ------------------------------------------------------------------------
    def search(
        self,
        text: str,
        *,
        systems: Iterable[str] | None = None,
        limit: int = 20,
        billable_only: bool = False,
    ) -> list[SearchHit]:
        """Ranked text search over titles, inclusion terms and index terms (and exact codes).

        Order: exact code, then codes starting with the query (``E11.2``), then terms by how
        well they cover the query and the query covers them (an exact match of all content
        words, in any order, first), the term source (title > index > inclusion) and
        billability. Non-essential modifiers in parentheses do not count against a term.
        """
        text = text.strip()
        if not text or limit <= 0:
            return []
        sys_filter = list(systems) if systems is not None else None
        names = sys_filter or self._system_names()
        hits: dict[tuple[str, str], SearchHit] = {}
        if _CODE_LIKE.match(text) and (_CODE_CHARS.search(text) or len(text) <= 7):
            self._code_hits(text, names, limit, billable_only, hits)
        if hits and any(ch.isdigit() for ch in text):
            # a code (or the start of one) was asked for: its family, not word matches
            return sorted(hits.values(), key=lambda h: (-h.score, len(h.code), h.code))[:limit]
        q_words = list(content_words(text, drop_parens=False))
        if not q_words:
            q_words = [stem(w) for w in _WORD.findall(text)]
        if q_words:
            key = " ".join(sorted(set(q_words)))
            rows = self._exact_rows(key, sys_filter, billable_only, limit * 4)
            rows += self._fts_rows(
                text, q_words, sys_filter, billable_only, limit, len(hits) + len(rows)
            )
            self._score_rows(rows, q_words, hits)
        ranked = sorted(hits.values(), key=lambda h: (-h.score, len(h.code), h.code))
        return ranked[:limit]

    def _code_hits(
        self,
        text: str,
        systems: list[str],
        limit: int,
        billable_only: bool,
        hits: dict[tuple[str, str], SearchHit],
    ) -> None:
        conn = self._conn()
        for sys_name in systems:
            rec = self.get(text, sys_name)
            if rec is not None and (rec.billable or not billable_only):
                hits[(rec.system, rec.code)] = SearchHit(
                    rec.system, rec.code, rec.title, rec.billable, 100.0, rec.code, "code"
                )
            prefix = normalize_code(text, sys_name).rstrip(".")
            if len(prefix) < 3:
                continue
            sql = (
                "SELECT code, title, billable FROM codes WHERE system=? AND code>? AND code<?"
                + (" AND billable=1" if billable_only else "")
                + " ORDER BY length(code), code LIMIT ?"
            )
            for r in conn.execute(sql, (sys_name, prefix, prefix + "\uffff", limit)):
                key = (sys_name, r[0])
                if key not in hits:
                    score = 90.0 - len(r[0])
                    hits[key] = SearchHit(sys_name, r[0], r[1], bool(r[2]), score, r[0], "code")

    def _exact_rows(
        self, key: str, systems: list[str] | None, billable_only: bool, cap: int
    ) -> list[sqlite3.Row]:
        sql = (
            "SELECT t.id, t.system, t.code, t.term, t.source, c.title, c.billable "
            "FROM terms t JOIN codes c ON c.system = t.system AND c.code = t.code "
            "WHERE t.key = ?"
        )
        args: list[object] = [key]
        if systems:
            sql += f" AND t.system IN ({','.join('?' * len(systems))})"
            args.extend(systems)
        if billable_only:
            sql += " AND c.billable = 1"
        args.append(cap)
        try:
            return self._conn().execute(sql + " LIMIT ?", args).fetchall()
        except sqlite3.OperationalError:  # a schema-1 KB without keys (read-only, not upgraded)
            return []

    def _fts_rows(
        self,
        text: str,
        q_words: list[str],
        systems: list[str] | None,
        billable_only: bool,
        limit: int,
        have: int,
    ) -> list[sqlite3.Row]:
        raw = [w.lower() for w in _WORD.findall(text)]
        words = [w for w in raw if w not in STOPWORDS] or raw
        words = list(dict.fromkeys(words))[:12]
        # prefix-match the last word (type-ahead) when it looks unfinished
        quoted = [f'"{w}"' for w in words]
        if len(words[-1]) >= 3 and not text.endswith(" "):
            quoted[-1] += "*"
        want = max(limit * 4, 50)
        out: list[sqlite3.Row] = []
        seen: set[int] = set()
        codes: set[tuple[str, str]] = set()

        def run(query: str) -> None:
            for r in self._fts(query, systems, billable_only, want):
                if r["id"] not in seen:
                    seen.add(r["id"])
                    out.append(r)
                    codes.add((r["system"], r["code"]))

        run(" AND ".join(quoted))
        if len(quoted) > 1 and len(codes) + have < limit:
            # relax: the query less one word, each in turn
            for i in range(min(len(quoted), _MAX_RELAXED)):
                run(" AND ".join(q for j, q in enumerate(quoted) if j != i))
                if len(codes) + have >= limit:
                    break
        if len(codes) + have == 0 and len(quoted) > 1:  # last resort: any of the words
            run(" OR ".join(quoted))
        return out

    def _fts(
        self, query: str, systems: list[str] | None, billable_only: bool, cap: int
    ) -> list[sqlite3.Row]:
        """Up to ``cap`` terms matching ``query``, fewest content words first."""
        match = f"term : ({query})"
        if systems:
            match += " AND sys : (" + " OR ".join(_sys_token(s) for s in systems) + ")"
        if billable_only:
            match += " AND sys : b1"
        sql = (
            "SELECT t.id, t.system, t.code, t.term, t.source, c.title, c.billable FROM "
            "(SELECT rowid AS fid FROM terms_fts WHERE terms_fts MATCH ? ORDER BY rowid LIMIT ?) f "
            "JOIN terms t ON t.fid = f.fid "
            "JOIN codes c ON c.system = t.system AND c.code = t.code ORDER BY f.fid"
        )
        try:
            return self._conn().execute(sql, (match, cap)).fetchall()
        except sqlite3.OperationalError as exc:  # an FTS syntax problem: treat as no match
            if "fts5" in str(exc).lower() or "syntax" in str(exc).lower():
                return []
            raise

    @staticmethod
    def _score_rows(
        rows: list[sqlite3.Row], q_words: list[str], hits: dict[tuple[str, str], SearchHit]
    ) -> None:
        q = set(q_words)
        last = q_words[-1]
        for r in rows:
            term = r["term"]
            core = set(content_words(term))
            every = core | set(content_words(term, drop_parens=False))
            matched = len(q & every)
            if last not in every and len(last) >= 3 and any(w.startswith(last) for w in every):
                matched += 1
            if matched == 0:
                continue
            coverage = matched / len(q)
            precision = min(len(q & core) / max(len(core), 1), 1.0)
            score = 10.0 * coverage + 5.0 * precision
            if q == core:
                score += 5.0  # exactly the query's content words (in any order)
            score += _SOURCE_WEIGHT.get(r["source"], 0.8)
            if r["billable"]:
                score += 0.5
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
    def _writable(self) -> sqlite3.Connection:
        if self.readonly:
            raise KBError("knowledge base opened read-only")
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
        info_extra: dict[str, str] | None = None,
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
        info_extra: dict[str, str] | None = None,
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
    def _update_extra(conn: sqlite3.Connection, system: str, info_extra: dict[str, str]) -> None:
        row = conn.execute("SELECT extra FROM systems WHERE system=?", (system,)).fetchone()
        if row is not None:
            extra = json.loads(row[0])
            extra.update(info_extra)
            conn.execute("UPDATE systems SET extra=? WHERE system=?", (json.dumps(extra), system))

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
