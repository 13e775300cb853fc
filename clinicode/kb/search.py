"""Ranked text search over the knowledge base's titles, inclusion and index terms.

:class:`SearchMixin` is part of :class:`clinicode.kb.store.KnowledgeBase`; it reads the
``codes``, ``terms`` and ``terms_fts`` tables through the store's connection.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable

from clinicode.kb.records import CodeRecord, SearchHit
from clinicode.kb.text import _WORD, STOPWORDS, content_words, normalize_code, stem
from clinicode.kb.write import _sys_token

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


class SearchMixin:
    """Search methods of the knowledge base (the store supplies the connection and lookups)."""

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _system_names(self) -> list[str]:
        raise NotImplementedError

    def get(self, code: str, system: str | None = None) -> CodeRecord | None:
        raise NotImplementedError

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
