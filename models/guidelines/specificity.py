"""Billable enforcement, specificity and provider queries (I.B.2, IV.F.1-3). Tables:
``specificity``, ``gestation`` (trimesters), ``queries``, ``generic_queries``."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from clinicode.kb.records import CodeRecord
from clinicode.schema import Query

from .combinations import combine_organisms
from .data import ICD, load_rules
from .layer import Guidelines
from .refinements import refine_codes
from .rules import rule
from .state import Item, NoteState, assertions_of, attributes_of, explain
from .use_additional import gestation_weeks


@lru_cache(maxsize=1)
def _axes() -> tuple[dict[str, re.Pattern[str]], dict[str, re.Pattern[str]]]:
    """Per axis: the title words that name it (lower case) and the value it takes in a title."""
    cfg = load_rules()["specificity"]
    words = {axis: re.compile(rx) for axis, rx in cfg["axis_words"].items()}
    values = {axis: re.compile(rx, re.I) for axis, rx in cfg["axis_values"].items()}
    return words, values


def _stem(title: str, axis: str) -> frozenset[str]:
    """A title's words without those of one axis: siblings that differ only on it match."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    axis_words = _axes()[0][axis]
    return frozenset(w for w in words if not axis_words.match(w))


def _axis_siblings(g: Guidelines, code: str) -> tuple[str | None, list[CodeRecord]]:
    """The axis an unspecified code leaves open (its billable siblings differ from it only on
    laterality, trimester or stage) and those siblings (from the code set: once per code)."""
    return g.memo("axis_siblings", code, lambda c: _find_axis_siblings(g, c))


def _find_axis_siblings(g: Guidelines, code: str) -> tuple[str | None, list[CodeRecord]]:
    rec = g.rec(code)
    if rec is None or not rec.parent or "unspecified" not in rec.title.lower():
        return None, []
    sibs = [r for r in g.billable_descendants(rec.parent) if r.code != code]
    for axis, value in _axes()[1].items():
        if value.search(rec.title):
            continue
        stem = _stem(rec.title, axis)
        same = [r for r in sibs if value.search(r.title) and _stem(r.title, axis) == stem]
        if same:
            return axis, same
    return None, []


def _axis_of(g: Guidelines, code: str) -> str | None:
    return _axis_siblings(g, code)[0]


def _trimester(weeks: int) -> str:
    for t in load_rules()["gestation"]["trimesters"]:
        if t["before_week"] is None or weeks < t["before_week"]:
            return str(t["name"])
    raise ValueError("the trimesters end without an open last one")


def _documented_axes(note: NoteState, item: Item, pool: list[CodeRecord]) -> list[tuple[str, str]]:
    """(title regex, why) for each axis value the mentions' attributes document."""
    in_title = load_rules()["specificity"]["attribute_in_title"]

    def pattern(axis: str, value: str) -> str:
        return str(in_title[axis]).replace("{value}", re.escape(value.lower()))

    attrs = attributes_of(note, item)
    words: list[tuple[str, str]] = []
    lat = attrs.get("laterality")
    if lat is not None:
        words.append((pattern("laterality", lat.value), f"laterality '{lat.text}'"))
    st = attrs.get("stage")
    if st is not None:
        words.append((pattern("stage", st.value), f"stage '{st.text}'"))
    tri = attrs.get("trimester")
    weeks = gestation_weeks(note) if any("trimester" in r.title for r in pool) else None
    if tri is not None:
        words.append((pattern("trimester", tri.value), f"trimester '{tri.text}'"))
    elif weeks is not None:
        n = weeks[0]
        t = _trimester(n)
        words.append((pattern("trimester", t), f"{n} weeks = {t} trimester (I.C.15.a.3)"))
    return words


def _attribute_target(
    g: Guidelines, note: NoteState, item: Item, pool: list[CodeRecord]
) -> tuple[str, str] | None:
    """A code in ``pool`` that the mentions' attributes (laterality, stage, trimester) select."""
    words = _documented_axes(note, item, pool)
    if not words:
        return None
    ignored = set(g.rules["specificity"]["ignored_title_words"])
    base = set(re.findall(r"\w+", g.title(item.s.code).lower())) - ignored
    best: tuple[int, str, str] | None = None
    for r in pool:
        t = r.title.lower()
        if (
            "unspecified" in t
            and r.code != item.s.code
            and not all(re.search(w, t) for w, _ in words[:1])
        ):
            continue
        hits = [why for w, why in words if re.search(w, t)]
        if not hits:
            continue
        overlap = len(base & set(re.findall(r"\w+", t))) + 10 * len(hits)
        if best is None or overlap > best[0]:
            best = (overlap, r.code, "; ".join(hits))
    return (best[1], best[2]) if best else None


def _both_sides(g: Guidelines, note: NoteState, item: Item, pool: list[CodeRecord]) -> bool:
    """I.B.13: a condition documented as bilateral where the classification has no bilateral
    code is coded once for the right side and once for the left."""
    lat = attributes_of(note, item).get("laterality")
    if lat is None or lat.value != "bilateral":
        return False
    side = _axes()[1]["laterality"]
    named = [(r.code, {s.lower() for s in side.findall(r.title)}) for r in pool]
    if any("bilateral" in sides for _, sides in named):
        return False  # the specific bilateral code is chosen by the attributes
    right = [c for c, sides in named if "right" in sides]
    left = [c for c, sides in named if "left" in sides]
    if len(right) != 1 or len(left) != 1:
        return False
    why = f"laterality '{lat.text}' and no bilateral code: right and left coded"
    g.replace(note, [item], right[0], "I.B.13", why)
    g.add(
        note, left[0], section="I.B.13", message=why, evidence=item.s.evidence, score=item.s.score
    )
    return True


def _query_for(g: Guidelines, code: str, axis: str | None) -> Query | None:
    q = g.rules["queries"].get(code)
    if q is not None:
        return Query(axis=q["axis"], question=q["question"]) if q.get("question") else None
    if axis is None:
        return None
    tmpl = g.rules["generic_queries"].get(axis)
    return Query(axis=axis, question=tmpl.format(title=g.title(code))) if tmpl else None


def _supported(note: NoteState, item: Item) -> bool:
    """The note supports a code when it is present and either the ranker scored it at the
    threshold or the NLP matched one of its own terms in its evidence (a child the structure
    generator merely listed under a category is not supported)."""
    if "present" not in assertions_of(item.s, note.mentions):
        return False
    if item.s.score >= note.threshold:
        return True
    key = f"{item.s.system}:{item.s.code}"
    return any(
        key in m.concepts
        for e in item.s.evidence
        for m in note.mentions
        if m.start < e.end and e.start < m.end
    )


@rule("billable_specificity")
def rule_billable_specificity(g: Guidelines, note: NoteState) -> None:
    """Non-billable codes never reach ``codes``; unspecified codes get a more specific one the
    note supports, else a provider query (I.B.2, IV.F.1-3). A code put in place of a category
    gets the same check (N18.3 -> N18.30 -> query 3a or 3b), after the refinement and organism
    steps have run on it again."""
    seen: set[str] = set()
    for _ in range(3):
        todo = [it for it in note.kept() if it.s.code not in seen]
        if not todo:
            return
        seen.update(it.s.code for it in todo)
        refine_codes(g, note)  # a code put in place of a category may refine further
        combine_organisms(g, note)
        for item in [it for it in todo if it.fate == "keep"]:
            rec = g.rec(item.s.code)
            if rec is None:
                continue
            if not rec.billable:
                _non_billable(g, note, item, rec)
            else:
                _unspecified(g, note, item, rec)


def _non_billable(g: Guidelines, note: NoteState, item: Item, rec: CodeRecord) -> None:
    """A category: the ranker's best-supported billable child, else one the attributes
    select, else kept out of the code set with a query."""
    code = item.s.code
    pool = g.billable_descendants(code)
    ranked_child = [
        note.items[(ICD, r.code)]
        for r in pool
        if (ICD, r.code) in note.items
        and note.items[(ICD, r.code)].fate in ("candidate", "keep")
        and _supported(note, note.items[(ICD, r.code)])
    ]
    if ranked_child:
        best = max(ranked_child, key=lambda it: it.s.score)
        g.replace(
            note,
            [item],
            best.s.code,
            "I.B.2",
            f"{code} is a non-billable category; the ranker's best-supported "
            f"billable code below it is {best.s.code}",
        )
        return
    tgt = _attribute_target(g, note, item, pool)
    if tgt is not None:
        g.replace(
            note, [item], tgt[0], "I.B.2", f"{code} is a non-billable category; documented {tgt[1]}"
        )
        return
    axis = _axis_of(g, pool[0].code) if pool else None
    item.fate = "candidate"
    item.s.status = "needs_query"
    item.s.query = _query_for(g, code, axis) or Query(
        axis=axis or "specificity",
        question=f"{rec.title}: more detail is needed to choose a billable code "
        f"({len(pool)} options).",
    )
    explain(
        item,
        "I.B.2",
        "non-billable category kept out of the code set until "
        "the documentation supports a billable code",
    )


def _unspecified(g: Guidelines, note: NoteState, item: Item, rec: CodeRecord) -> None:
    """A billable code leaving an axis open: a sibling the attributes select, else a query."""
    code = item.s.code
    axis = _axis_of(g, code)
    q: Any = g.rules["queries"].get(code)
    if axis is None and q is None:
        return
    if axis == "laterality" and _both_sides(g, note, item, _axis_siblings(g, code)[1]):
        return
    if axis is not None and rec.parent:
        tgt = _attribute_target(g, note, item, _axis_siblings(g, code)[1])
        if tgt is not None and tgt[0] != code:
            g.replace(note, [item], tgt[0], "I.B.2", f"more specific code: documented {tgt[1]}")
            return
    query = _query_for(g, code, axis)
    if query is not None:
        item.s.status = "needs_query"
        item.s.query = query
        explain(
            item,
            "I.B.2/IV.F.3",
            f"unspecified code kept; {query.axis} not documented, query the provider",
        )
