"""The Alphabetic Index as an in-memory tree, derived from the KB (``kb.derived``).

Each entry keeps its printed term, the keys of its essential words per comma alternative
("calculus, stones in" -> ``[("calcul",), ("ston",)]``), the keys of its nonessential modifiers,
the code it resolves to, and its "see" reference. Main terms are found by the key of the first
word of each alternative ("Diabetes, diabetic" under ``diabet``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from clinicode.models.encoder.words import keys, load_encoder_data

ICD = "ICD-10-CM"
_PAREN = re.compile(r"\(([^()]*)\)")


def _alternatives(
    term: str, main: bool, data: dict[str, Any]
) -> tuple[list[tuple[str, ...]], frozenset[str]]:
    """The keys that must be stated for an entry (each alternative in full) and the keys that
    only add weight. A main term's later comma parts are other forms of its word ("Diabetes,
    diabetic") or qualifiers that must be stated ("Fracture, pathological"), except a default
    qualifier ("Fracture, traumatic"). A subterm's first part decides and the rest adds weight
    ("acute, subacute"; "calculus, stones in"; "hypnotic or anxiolytic"; another form of a
    one-word first part is an alternative to it: "respiration, respiratory"), except a later part
    of several words that is no list of alternatives: it names what the first part is of, and
    must be stated too ("test, human immunodeficiency virus" is an HIV test, not any test)."""
    raw = [(p, tuple(keys(p))) for p in term.split(",")]
    raw = [(text, ks) for text, ks in raw if ks]
    if not raw:
        return [], frozenset()
    parts = [ks for _, ks in raw]
    first, rest = parts[0], parts[1:]
    if not main:
        named = [ks for text, ks in raw[1:] if _names_what_of(text, ks, first, data)]
        optional = [ks for ks in rest if ks not in named]
        whole = tuple(dict.fromkeys([*first, *(k for ks in named for k in ks)]))
        # another form of a one-word first part is the same subterm ("respiration,
        # respiratory": "respiratory failure" states it though its key is not "respiration"'s)
        forms = [ks[0] for ks in optional if len(first) == 1 and len(ks) == 1]
        forms = [k for k in forms if k != first[0] and _same_word(k, first[0])]
        alts = [whole, *(tuple(dict.fromkeys([k, *whole[1:]])) for k in forms)]
        return alts, frozenset(k for ks in optional for k in ks)
    if len(raw) > 1 and _ALTERNATIVE_LIST.search(raw[-1][0]):
        return _listed(first, [t for t, _ in raw[1:]]), frozenset()
    qualifiers = [p for p in rest if not _same_word(p[0], first[0])]
    whole = tuple(dict.fromkeys([*first, *(k for p in qualifiers for k in p)]))
    alts = [whole]
    if qualifiers and term.lower().strip() in data["default_main_terms"]:
        alts.append(first)
    return alts, frozenset()


_ALTERNATIVE_LIST = re.compile(r"\b(?:or|and/or)\b", re.IGNORECASE)


def _listed(first: tuple[str, ...], items: list[str]) -> list[tuple[str, ...]]:
    """A main term that lists alternatives ("Intubation, difficult or failed", "Conversion
    hysteria, neurosis or reaction", "Poison ivy, oak, sumac or other plant dermatitis"): a
    one-word main term needs one listed qualifier; a longer one is stated as written or with
    one listed word in place of its last ("conversion reaction", "poison oak")."""
    listed = [ks for text in items for part in _ALTERNATIVE_LIST.split(text) if (ks := keys(part))]
    if len(first) == 1:
        return [tuple(dict.fromkeys([*first, *ks])) for ks in listed]
    return [first, *(tuple(dict.fromkeys([*first[:-1], *ks])) for ks in listed)]


# a comma part the Index qualifies as not elsewhere classifiable ("skin NEC")
_NEC_PART = re.compile(r"\bNEC\s*$")


def _names_what_of(
    text: str, ks: tuple[str, ...], first: tuple[str, ...], data: dict[str, Any]
) -> bool:
    """Whether a subterm's later comma part is an essential qualifier: two words or more that
    count, no list of alternatives ("prosthesis or plate"), no other form of the first part's
    word ("clumsiness, clumsy child") and no Index instruction ("as cause of disease
    classified elsewhere"). A part the Index marks NEC is one too, of any length ("Sinus,
    infected, skin NEC" is an infected sinus of the skin, not any infected sinus)."""
    if _ALTERNATIVE_LIST.search(text):
        return False
    if len(ks) < 2 and not (ks and _NEC_PART.search(text)):
        return False
    if text.strip().lower() in data["optional_subterm_parts"]:
        return False
    return not any(_same_word(k, first[0]) for k in ks)


def _same_word(a: str, b: str) -> bool:
    """Whether two keys are forms of one word whose suffixes the keys did not strip alike
    ("ulcer" and "ulcerat" of "Ulcer, ulcerated"; "asthm" and "asthmat")."""
    if a.startswith(b) or b.startswith(a):
        return True
    return len(a) >= 5 and len(b) >= 5 and a[:5] == b[:5]


@dataclass
class IndexTree:
    term: list[str] = field(default_factory=list)
    alts: list[list[tuple[str, ...]]] = field(default_factory=list)
    extra: list[frozenset[str]] = field(default_factory=list)
    nonessential: list[list[tuple[str, ...]]] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    children: list[list[int]] = field(default_factory=list)
    code: list[str | None] = field(default_factory=list)
    see: list[str | None] = field(default_factory=list)
    # "see also": where an entry gives no code of its own, the coder goes there
    see_also: list[str | None] = field(default_factory=list)
    connector: list[str] = field(default_factory=list)  # "note", "sentence" or ""
    negative: list[bool] = field(default_factory=list)
    default: list[bool] = field(default_factory=list)  # the default among negative subterms
    mains: dict[str, list[int]] = field(default_factory=dict)
    # main terms named only through a cue or a reference ("Status"): never a mention's own
    cue_mains: dict[str, list[int]] = field(default_factory=dict)
    # the Table of Neoplasms' codes by column (empty for the Alphabetic Index)
    columns: dict[str, list[str | None]] = field(default_factory=dict)
    # per entry, every key one of its alternatives (or a nonessential phrase) may start
    # with: filled as the walks ask (``option_keys``)
    _options: dict[int, frozenset[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.term)

    @classmethod
    def build(cls, kb: Any) -> IndexTree:
        """The ICD-10-CM Alphabetic Index of ``kb`` (empty when none is imported)."""
        return cls._grow(_entries(kb, "index", "resolved"))

    @classmethod
    def build_neoplasm(cls, kb: Any) -> IndexTree:
        """The Table of Neoplasms as a tree, without codes: each column's ("malignant primary",
        "malignant secondary", "carcinoma in situ", "benign", ...) are in ``columns``, and
        :meth:`column` gives the tree with one of them. A cell's trailing "-" is dropped
        (C50.1- -> C50.1, which the Tabular completes)."""
        rows = _entries(kb, "neoplasm", "cells")
        tree = cls._grow([(*row[:4], None, *row[5:]) for row in rows])
        cells = [json.loads(row[4] or "{}") for row in rows]
        for name in dict.fromkeys(k for c in cells for k in c):
            tree.columns[name] = [
                c[name].rstrip("-").rstrip(".") if c.get(name) else None for c in cells
            ]
        return tree

    def column(self, name: str) -> IndexTree:
        """This tree with the codes of one column of the table it was built from (the entries
        are shared, not copied)."""
        return replace(self, code=self.columns.get(name) or [None] * len(self.term))

    @classmethod
    def _grow(cls, rows: list[tuple[Any, ...]]) -> IndexTree:
        """A tree from ``(id, parent id, term, nonessential, code, see, see also)`` rows in Index order;
        a main term whose word is weak is named only through a cue or a reference."""
        tree = cls()
        data = load_encoder_data()
        weak = {k for w in data["weak_main_terms"] for k in keys(w)}
        pos: dict[int, int] = {}
        for entry_id, parent_id, term, nonessential, code, see, see_also in rows:
            i = len(tree.term)
            pos[entry_id] = i
            p = pos.get(parent_id, -1) if parent_id is not None else -1
            tree._add(term, nonessential, code, see, p, data)
            tree.see_also.append(see_also)
            if p >= 0:
                tree.children[p].append(i)
            else:
                for alt in tree.alts[i]:
                    if alt:
                        by = tree.cue_mains if alt[0] in weak else tree.mains
                        by.setdefault(alt[0], []).append(i)
        return tree

    def _add(
        self,
        term: str,
        nonessential: str,
        resolved: str | None,
        see: str | None,
        parent: int,
        data: dict[str, Any],
    ) -> None:
        low = term.lower().strip()
        conn = ""
        if low in data["connectors"]["note_wide"]:
            conn = "note"
        elif low in data["connectors"]["same_sentence"]:
            conn = "sentence"
        alts, extra = _alternatives(term, parent < 0, data)
        self.term.append(term)
        self.alts.append(alts)
        self.extra.append(extra)
        groups = [tuple(keys(g)) for g in _PAREN.findall(nonessential or "")]
        self.nonessential.append([g for g in groups if g])
        self.parent.append(parent)
        self.children.append([])
        self.code.append(resolved)
        self.see.append(see)
        self.connector.append(conn)
        self.negative.append(low.startswith(tuple(data["negative_prefixes"])))
        self.default.append(self.negative[-1] and low.startswith(tuple(data["default_prefixes"])))

    def option_keys(self, i: int) -> frozenset[str]:
        """The keys of entry ``i``'s alternatives and nonessential phrases: a note stating
        none of them states no option of the entry."""
        got = self._options.get(i)
        if got is None:
            ks = {k for alt in self.alts[i] for k in alt}
            ks.update(k for g in self.nonessential[i] if len(g) > 1 for k in g)
            got = self._options[i] = frozenset(ks)
        return got

    def path(self, i: int) -> list[int]:
        """The entries from the main term down to ``i``."""
        out = []
        while i >= 0:
            out.append(i)
            i = self.parent[i]
        return out[::-1]

    def code_of(self, i: int) -> tuple[str | None, int]:
        """The code of ``i`` or of its nearest ancestor that has one (and that entry)."""
        while i >= 0:
            if self.code[i]:
                return self.code[i], i
            i = self.parent[i]
        return None, -1

    def resolve_see(self, ref: str) -> int | None:
        """The entry a "see" reference names ("Calculus, gallbladder, with cholecystitis"):
        the longest main term its first parts spell, then its subterms."""
        # nonessential modifiers are no part of the name: "Encounter (for), adjustment (of)",
        # "Arteriosclerosis, coronary (artery)" name *Encounter, adjustment*, *..., coronary*
        parts = [b for p in ref.split(",") if (b := _bare(p))]
        if not parts or parts[0].lower() == "condition":
            return None
        first = keys(parts[0])
        mains = (
            list(dict.fromkeys(self.mains.get(first[0]) or self.cue_mains.get(first[0], [])))
            if first
            else []
        )
        for n in range(len(parts), 0, -1):
            name = ", ".join(parts[:n]).lower()
            hit = [i for i in mains if _spells(_bare(self.term[i]).lower(), name)]
            if n == 1 and len(hit) > 1:  # "Fracture, radius" means "Fracture, traumatic, radius"
                default = load_encoder_data()["default_main_terms"]
                hit = [i for i in hit if self.term[i].lower() in default] or hit
            if hit:
                cur = hit[0]
                for part in parts[n:]:
                    nxt = self._child_named(cur, part)
                    if nxt is None:
                        break
                    cur = nxt
                return cur
        return None

    def _child_named(self, i: int, part: str) -> int | None:
        low = part.lower()
        for c in self.children[i]:
            t = _bare(self.term[c]).lower()
            if t == low or t.startswith(low + " ") or t.startswith(low + ","):
                return c
        for c in self.children[i]:  # "with cholecystitis" printed as "with" > "cholecystitis"
            if self.connector[c] and low.startswith(self.term[c].lower() + " "):
                rest = low[len(self.term[c]) + 1 :]
                return self._child_named(c, rest) or c
        return None


def _bare(text: str) -> str:
    """An Index name without its parenthesised nonessential modifiers."""
    return " ".join(_PAREN.sub(" ", text).split())


def _spells(term: str, name: str) -> bool:
    return term == name or term.startswith((name + " ", name + ","))


def _entries(kb: Any, source: str, code_column: str) -> list[tuple[Any, ...]]:
    """The ICD-10-CM entries of one Index source in order, as ``(id, parent id, term,
    nonessential, <code_column>, see, see also)``."""
    rows: list[tuple[Any, ...]] = (
        kb._conn()
        .execute(
            f"SELECT id, parent_id, term, nonessential, {code_column}, see, see_also "
            "FROM index_entries "
            "WHERE source=? AND system=? ORDER BY ord",
            (source, ICD),
        )
        .fetchall()
    )
    return rows
