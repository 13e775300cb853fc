""" "Use additional code" notes whose code the Tabular List itself chooses (I.B.7): the site,
laterality and severity of an ulcer (L97.- beside E11.621 or I83.01-) are the words of the
ulcer's own sentence, read by the encoder's tabular descent from each referenced subcategory.
Table: ``tabular_refs`` (per referenced category, the cue of the mention that the code
describes)."""

from __future__ import annotations

from dataclasses import dataclass

from clinicode.models.encoder.tabular import TabularTree
from clinicode.models.encoder.words import (
    Context,
    keys,
    load_encoder_data,
    mention_context,
    note_keys,
)
from clinicode.schema import Evidence, Mention

from .data import compile_cue
from .layer import Guidelines
from .state import Item, NoteState


def _described(note: NoteState, cue: str) -> list[Mention]:
    """The present mentions whose words match ``cue`` ("ulcer of right heel")."""
    pattern = compile_cue(cue)
    return [m for m in note.mentions if m.assertion == "present" and pattern.search(m.text)]


def _with_sentence_attributes(
    ctx: Context, m: Mention, note: NoteState, weights: dict[str, float]
) -> Context:
    """``ctx`` with the attributes of the other present mentions of ``m``'s sentence: the "L"
    of "ulcer plantar L great toe" is the toe's laterality, and the ulcer's."""
    for other in note.mentions:
        inside = other.start >= m.sentence_start and other.end <= m.sentence_end
        if other is m or not inside or other.assertion != "present":
            continue
        for a in other.attributes:
            for k in keys(a.value):
                ctx.local[k] = max(ctx.local.get(k, 0.0), weights["sentence"])
    return ctx


@dataclass
class Descent:
    """A billable code reached from a referenced subcategory, and how."""

    code: str
    start: str  # the referenced subcategory it was reached from ("L97.4")
    path: list[str]
    stated: int  # how many of its words the context states


def best_descent(tree: TabularTree, refs: list[str], ctx: Context) -> Descent | None:
    """The billable code under one of ``refs`` ("L97.4-", "L97.-") whose words the context
    states most (the referenced subcategory's own words, then each step's), with its path."""
    best: Descent | None = None
    for start in _starts(refs):
        if start not in tree.title:
            continue
        code, steps = tree.descend(start, ctx)
        if not tree.billable.get(code, False):
            continue
        own = tree.stated(start, ctx)
        stated = len(own) + sum(1 for s in steps if s.why.startswith("states"))
        path = [f"{start} ({'states ' + ', '.join(own) if own else 'referenced'})"]
        path += [f"{s.code} ({s.why})" for s in steps]
        if best is None or stated > best.stated:
            best = Descent(code, start, path, stated)
    return best


def _drop_less_specific(
    g: Guidelines, note: NoteState, tree: TabularTree, code: str, start: str
) -> None:
    """Kept codes under the same referenced subcategory whose title leaves unspecified what
    the sentence states (L97.509 "unspecified foot ... unspecified severity" beside L97.521)."""
    for it in list(note.kept()):
        other = it.s.code
        if other != code and other.startswith(start) and tree.unspecified(other):
            g.drop(it, "I.B.7", f"{code} states what {other} leaves unspecified")


def _starts(refs: list[str]) -> tuple[str, ...]:
    """The codes ``refs`` ("L97.4-", "L97.-") name, as code prefixes ("L97.4", "L97")."""
    return tuple(ref.rstrip("-").rstrip(".") for ref in refs)


def _specific_kept(note: NoteState, tree: TabularTree, refs: list[str]) -> bool:
    """Whether a kept code under one of ``refs`` already names what it describes (its title
    leaves nothing unspecified): the note's own words coded it, nothing is left to refine."""
    starts = _starts(refs)
    return any(
        it.s.code.startswith(starts) and not tree.unspecified(it.s.code) for it in note.kept()
    )


def _indexed_candidate(
    note: NoteState, tree: TabularTree, refs: list[str], described: list[Mention]
) -> Item | None:
    """The best-scored candidate under one of ``refs`` that the encoder reached by an Index
    path from a described mention's words, billable and naming its site ("Ulcer, leg,
    [lower limb], calf, right, with, exposed fat layer" L97.212), if any: the Index walk
    reads the ulcer's own words where a tabular descent from L97 reads only "leg"."""
    starts = _starts(refs)
    spans = [(m.start, m.end) for m in described]
    found = [
        it
        for it in note.items.values()
        if it.fate == "candidate"
        and it.s.code.startswith(starts)
        and tree.billable.get(it.s.code, False)
        and not tree.unspecified(it.s.code)
        and any(x.startswith("Index: ") for x in it.s.explanation)
        and any(lo < e.end and e.start < hi for e in it.s.evidence for lo, hi in spans)
    ]
    return max(found, key=lambda it: it.s.score, default=None)


def resolve_tabular(g: Guidelines, note: NoteState, owner: Item, refs: list[str]) -> bool:
    """The referenced code that a described mention's sentence states most, by tabular
    descent; on a tie, a mention of its own ("ulcer of the R calf") over the owner's evidence
    ("varicose veins of R leg with ulcer")."""
    rows = [r for r in g.rules["tabular_refs"] if any(ref.startswith(r["refs"]) for ref in refs)]
    if not rows:
        return False
    tree = TabularTree.of(g.kb)
    weights = load_encoder_data()["weights"]
    wide = note_keys(note.mentions, weights["note"])
    owned = {(e.start, e.end) for e in owner.s.evidence}
    for row in rows:
        mine = [ref for ref in refs if ref.startswith(row["refs"])]
        if _specific_kept(note, tree, mine):
            continue  # the pair is already there ("ulcer of the R calf" coded L97.21-)
        described = _described(note, row["cue"])
        indexed = _indexed_candidate(note, tree, mine, described)
        if indexed is not None:  # the Index walk of the described words reached it
            added = g.add(
                note,
                indexed.s.code,
                section="I.B.7",
                message=f"use additional code with {owner.s.code}: {row['what']} "
                f"({next(x for x in indexed.s.explanation if x.startswith('Index: '))})",
                evidence=list(indexed.s.evidence),
                score=owner.s.score,
            )
            return added is not None
        best: tuple[tuple[int, bool], Descent, Mention] | None = None
        for m in described:
            ctx = _with_sentence_attributes(
                mention_context(note.text, m, note.mentions, wide, weights), m, note, weights
            )
            got = best_descent(tree, mine, ctx)
            if got is None or got.stated < int(row.get("min_stated", 1)):
                continue
            rank = (got.stated, (m.start, m.end) not in owned)
            if best is None or rank > best[0]:
                best = (rank, got, m)
        if best is None:
            continue
        _, chosen, m = best
        _drop_less_specific(g, note, tree, chosen.code, chosen.start)
        added = g.add(
            note,
            chosen.code,
            section="I.B.7",
            message=f"use additional code with {owner.s.code}: {row['what']} "
            f"(Tabular: {' -> '.join(chosen.path)})",
            evidence=[Evidence(start=m.start, end=m.end, text=m.text)],
            score=owner.s.score,
        )
        return added is not None
    return False
