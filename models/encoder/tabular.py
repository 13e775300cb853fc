"""The Tabular List as an in-memory tree, and the descent to the billable code.

From a category or subcategory the descent picks, level by level, the child whose
distinguishing words (its title's words that its parent's title lacks) the note states best;
where the note states none, it takes the unspecified child, else the initial-encounter 7th
character, and says so in the path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from clinicode.models.encoder.index_tree import ICD
from clinicode.models.encoder.words import (
    Context,
    absent_keys,
    keys,
    load_encoder_data,
    side_keys,
)


@dataclass
class Step:
    """One step of a path: the code reached and why."""

    code: str
    why: str


@dataclass
class TabularTree:
    title: dict[str, str] = field(default_factory=dict)
    billable: dict[str, bool] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)
    own_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (code, kind) -> keys of what the title says is absent or left open, read once per title
    phrase_keys: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, kb: Any) -> TabularTree:
        rows = (
            kb._conn()
            .execute(
                "SELECT code, title, billable, parent FROM codes WHERE system=? ORDER BY ord",
                (ICD,),
            )
            .fetchall()
        )
        tree = cls()
        for code, title, billable, parent in rows:
            tree.title[code] = title
            tree.billable[code] = bool(billable)
            if parent:
                tree.children.setdefault(parent, []).append(code)
                tree.parent[code] = parent
        return tree

    @classmethod
    def of(cls, kb: Any) -> TabularTree:
        """The tree of ``kb``'s tabular, built once per KB object (``kb.derived``)."""
        tree: TabularTree = kb.derived("encoder_tabular_tree", cls.build)
        return tree

    def distinct_keys(self, code: str, parent: str) -> tuple[str, ...]:
        """The keys of ``code``'s title that its parent's title lacks."""
        got = self.own_keys.get(code)
        if got is None:
            mine = keys(self.title.get(code, ""))
            theirs = set(keys(self.title.get(parent, "")))
            got = self.own_keys[code] = tuple(dict.fromkeys(k for k in mine if k not in theirs))
        return got

    def descend(
        self, code: str, ctx: Context, *, settled: frozenset[str] = frozenset(), limit: int = 6
    ) -> tuple[str, list[Step]]:
        """The billable code under ``code`` that the note supports, and the steps taken.
        ``settled``: the words the Index path consumed to reach ``code``; they do not move an
        unspecified code to a sibling ("Varix, leg, right, with, ulcer" I83.019 is the
        Index's code for a right leg's ulcer of unspecified site, not I83.018 "... other part
        of lower leg" by the "leg" it was reached with)."""
        steps: list[Step] = []
        for _ in range(limit):
            if self.billable.get(code, False) or not self.children.get(code):
                break
            nxt, why = self._choose(code, ctx)
            if nxt is None:
                break
            steps.append(Step(nxt, why))
            code = nxt
        open_ctx = ctx
        if settled:  # most descents come from no Index path: no copy for them
            open_ctx = replace(ctx, local={k: v for k, v in ctx.local.items() if k not in settled})
        better = self._stated_sibling(code, open_ctx)
        if better is not None:
            steps.append(Step(better, "states " + ", ".join(self.stated(better, open_ctx))))
            code = better
        return code, steps

    def _stated_sibling(self, code: str, ctx: Context) -> str | None:
        """A sibling of an unspecified code whose distinguishing words the note states
        (H66.90 "unspecified ear" -> H66.92 for "left ear")."""
        words = load_encoder_data()["unspecified_words"]
        parent = self.parent.get(code)
        if parent is None or not any(w in self.title.get(code, "").lower() for w in words):
            return None
        nxt, why = self._choose(parent, ctx)
        if nxt is None or nxt == code or not why.startswith("states"):
            return None
        return nxt if self.billable.get(nxt, False) else None

    def stated(self, code: str, ctx: Context) -> list[str]:
        """The words of ``code``'s title beyond its parent's that the context states."""
        parent = self.parent.get(code, "")
        return [k for k in self.distinct_keys(code, parent) if ctx.weight(k, note_wide=False)]

    def _choose(self, code: str, ctx: Context) -> tuple[str | None, str]:
        kids = [c for c in self.children[code] if not self._conflicts(c, code, ctx)]
        best: tuple[float, int, int] | None = None
        chosen, stated = None, []
        for c in kids:
            ks = self.distinct_keys(c, code)
            left_open = self._absent_keys(c, "open_phrases")
            got = [k for k in ks if ctx.weight(k, note_wide=False) and k not in left_open]
            if not got or not self._numbers_as_written(c, got, ctx):
                continue
            if ks[0] not in got and 2 * len(got) < len(ks):
                continue  # one word of a long title ("brain" of "... with death due to brain
                # injury prior to regaining consciousness") does not state it
            if any(k[:1].isdigit() for k in ks if k not in got):
                continue  # a number decides this child and the note states another
            if any(k in side_keys() for k in ks if k not in got):
                continue  # a side is never assumed ("lower" of L03.115 *right lower limb*)
            score = sum(ctx.weight(k, note_wide=False) for k in got)
            # ties: fewer words the note does not state, then the unspecified child over "other"
            rank = (score, -(len(ks) - len(got)), int(self.unspecified(c)))
            if best is None or rank > best:
                best, chosen, stated = rank, c, got
        if chosen is not None:
            return chosen, "states " + ", ".join(stated)
        return self._default(kids)

    def _numbers_as_written(self, code: str, got: list[str], ctx: Context) -> bool:
        """Whether each stated number of the title follows the word before it in the note, as
        in the title ("stage 2", not the "2" of "type 2")."""
        ks = keys(self.title.get(code, ""))
        return all(
            (ks[i - 1], k) in ctx.pairs
            for i, k in enumerate(ks)
            if i and k in got and k[:1].isdigit()
        )

    def unspecified(self, code: str) -> bool:
        """Whether ``code``'s title says it leaves something unspecified."""
        words = load_encoder_data()["unspecified_words"]
        return any(w in self.title.get(code, "").lower() for w in words)

    def _conflicts(self, child: str, parent: str, ctx: Context) -> bool:
        """Whether ``child`` names a word whose exclusive alternative the note states."""
        ks = set(self.distinct_keys(child, parent))
        for group in _exclusive():
            named = ks & group
            if named and not any(ctx.weight(k, note_wide=False) for k in named):
                if any(ctx.weight(k, note_wide=False) for k in group - named):
                    return True
        # "without perforation or abscess" where the note states "perforated"
        return any(ctx.weight(k, note_wide=False) for k in self._absent_keys(child))

    def left_open_beside(self, code: str) -> bool:
        """Whether ``code`` says "without" what a sibling leaves open: K35.200 "without
        perforation or abscess" beside K35.209 "unspecified as to perforation" is the code
        of a note that says the appendix did not perforate, not of one that is silent."""
        absent = self._absent_keys(code)
        sibs = self.children.get(self.parent.get(code, ""), []) if absent else []
        return any(absent & self._absent_keys(s, "open_phrases") for s in sibs if s != code)

    def _absent_keys(self, code: str, kind: str = "absent") -> frozenset[str]:
        """The keys of what ``code``'s title says is absent ("without perforation or abscess":
        ``words.absent_keys``), or with ``kind="open_phrases"`` leaves open (up to a "with" or
        a comma)."""
        got = self.phrase_keys.get((code, kind))
        if got is None:
            title = self.title.get(code, "")
            if kind == "absent":
                got = absent_keys(title)
            else:
                words = load_encoder_data()[kind]
                low = title.lower()
                found = re.findall(rf"\b(?:{'|'.join(words)})\s+((?:(?!\bwith\b)[^,])*)", low)
                got = frozenset(k for part in found for k in keys(part))
            self.phrase_keys[(code, kind)] = got
        return got

    def _says_absent(self, code: str, data: dict[str, Any]) -> bool:
        """Whether ``code``'s title beyond its parent's says "without" something, or begins
        as the Index's defaults do ("..., not specified as recurrent": ``default_prefixes``)."""
        title, parent = self.title.get(code, ""), self.title.get(self.parent.get(code, ""), "")
        rest = title[len(parent) :] if parent and title.startswith(parent) else title
        rest = rest.lower().replace(",", " ")
        if rest.strip().startswith(tuple(data["default_prefixes"])):
            return True
        return any(w in rest.split() for w in data["absent"]["starts"])

    def _default(self, kids: list[str]) -> tuple[str | None, str]:
        """The unspecified child (the one whose title ends so, else any), else the
        initial-encounter 7th character."""
        data = load_encoder_data()
        words = data["unspecified_words"]
        unspec = [c for c in kids if any(w in self.title.get(c, "").lower() for w in words)]
        unspec.sort(key=lambda c: (not self.title[c].lower().endswith(tuple(words)), c[-1] != "9"))
        if unspec:
            return unspec[0], "the note does not say which: unspecified"
        absent = [c for c in kids if self._says_absent(c, data)]
        if len(absent) == 1:
            return absent[0], "the note does not document what the other codes name"
        for c in kids:
            if len(c.replace(".", "")) == 7 and c[-1] in data["initial_seventh"]:
                return c, "7th character: initial encounter (the note does not say otherwise)"
        return None, ""


@lru_cache(maxsize=1)
def _exclusive() -> list[frozenset[str]]:
    return [
        frozenset(k for w in group for k in keys(w)) for group in load_encoder_data()["exclusive"]
    ]
