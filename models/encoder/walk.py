"""The Index walk: main term, then the subterms the note documents, then "see" references.

:func:`walk` starts from every main term that a mention names and returns the best walk: the
one whose path states the most of the note's words (weighted by where the note states them),
then the deepest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from clinicode.models.encoder.index_tree import IndexTree
from clinicode.models.encoder.words import (
    Context,
    keys,
    load_encoder_data,
    spelled_alike,
    word_keys,
)
from clinicode.nlp.mentions import acronym_words

# an Index path word, or one a reference implies, counts as stated in the mention's sentence
PATH_WEIGHT = 1.0


@dataclass
class Walk:
    """A walk of the Index: the entries taken, the keys they consumed and the code reached."""

    entries: list[int] = field(default_factory=list)
    consumed: set[str] = field(default_factory=set)
    score: float = 0.0
    code: str | None = None
    code_entry: int = -1
    hops: list[str] = field(default_factory=list)  # "see" references followed
    # positions in ``entries`` of the entries a subterm's "see" reference led to: the note
    # need not state their words ("Varicose, vein - see Varix": shown as "[Varix]")
    referred: set[int] = field(default_factory=set)
    # keys that led to a reference and were looked up again under it (coded by this walk)
    named: set[str] = field(default_factory=set)

    def describe(self, tree: IndexTree) -> str:
        names = [
            f"[{tree.term[i]}]" if n in self.referred else tree.term[i]
            for n, i in enumerate(self.entries)
        ]
        see = f" (see {'; '.join(self.hops)})" if self.hops else ""
        return "Index: " + ", ".join(names) + see


def main_terms(
    tree: IndexTree,
    mention_keys: list[str],
    words: Sequence[tuple[str, str]] = (),
    text: str | None = None,
) -> list[tuple[int, tuple[str, ...]]]:
    """The main terms whose words (one alternative) the mention states, with those keys.

    ``words`` are the mention's own (word, key) pairs: a main term whose word shares only a cut
    stem with the mention's ("Canities" for "canal") is not named by it. An acronym spelled
    like a word ("AIDS", "PIN") is named only where ``text``, the mention's, writes it in
    capitals ("hearing aids")."""
    have = set(mention_keys)
    out: dict[int, tuple[str, ...]] = {}
    for k in dict.fromkeys(mention_keys):
        for i in tree.mains.get(k, ()):
            if text is not None and _acronym_not_written(tree.term[i], text):
                continue
            for alt in tree.alts[i]:
                if alt and alt[0] == k and set(alt) <= have and _alike(tree.term[i], alt, words):
                    if len(alt) > len(out.get(i, ())):
                        out[i] = alt
    return list(out.items())


def _acronym_not_written(term: str, text: str) -> bool:
    """Whether ``term`` is an acronym spelled like a word that ``text`` does not write in
    capitals."""
    if not (term.isupper() and term.lower() in acronym_words()):
        return False
    return re.search(rf"\b{re.escape(term)}\b", text) is None


def _alike(term: str, alt: tuple[str, ...], words: Sequence[tuple[str, str]]) -> bool:
    """Whether each key of ``alt`` that both the term and the mention spell is spelled alike
    by one word of each (a key the mention reached through its normalized form passes)."""
    mine = word_keys(term)
    for k in alt:
        ours = [w for w, wk in words if wk == k]
        theirs = [w for w, wk in mine if wk == k]
        if ours and theirs and not any(spelled_alike(a, b) for a in ours for b in theirs):
            return False
    return True


def walk(
    tree: IndexTree,
    mention_keys: list[str],
    ctx: Context,
    words: Sequence[tuple[str, str]] = (),
    text: str | None = None,
) -> list[Walk]:
    """The walks for one mention, best first: the best one, then each other that codes more of
    the mention's own words ("DM2 with CKD stage 3b": Diabetes ... and Disease, kidney ...)."""
    walks: list[Walk] = []
    for entry, alt in main_terms(tree, mention_keys, words, text):
        w = Walk(entries=[entry], consumed=set(alt))
        w.score = sum(ctx.weight(k, note_wide=False) for k in alt)
        _descend(tree, w, ctx)
        if w.code is not None and text is not None:
            _specified_type(tree, w, text)
        if w.code is not None:
            walks.append(w)
    walks.sort(key=lambda w: (-w.score, -len(w.entries)))
    own = {k for k in mention_keys if ctx.local.get(k, 0.0) >= 2.0}
    kept: list[Walk] = []
    covered: set[str] = set()
    codes: set[str] = set()
    for w in walks:
        new = ((w.consumed | w.named) & own) - covered
        if w.code in codes or (kept and not new):
            continue
        kept.append(w)
        covered |= w.consumed | w.named
        codes.add(w.code or "")
    return kept


def _specified_type(tree: IndexTree, w: Walk, text: str) -> None:
    """Where the word right before the mention's head noun (the main term's word) states a
    type no subterm took, the walk ends on the entry's "specified (type) NEC" subterm
    (``not_a_type`` lists the words that state none)."""
    specified = [c for c in tree.children[w.entries[-1]] if _SPECIFIED.match(tree.term[c])]
    tokens = _WORD.findall(text)
    if not specified or len(tokens) < 2 or not tree.code_of(specified[0])[0]:
        return
    head, word = keys(tokens[-1]), keys(tokens[-2])
    if not head or not word or not set(head) & set(keys(tree.term[w.entries[0]])):
        return
    if word[0] in w.consumed or word[0] in w.named or word[0] in _not_a_type():
        return
    w.entries.append(specified[0])
    w.code, w.code_entry = tree.code_of(specified[0])


_SPECIFIED = re.compile(r"^specified(?: type)? NEC$", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=1)
def _not_a_type() -> frozenset[str]:
    return frozenset(k for w in load_encoder_data()["not_a_type"] for k in keys(str(w)))


def names_subterm(
    tree: IndexTree,
    mention_keys: list[str],
    ctx: Context,
    words: Sequence[tuple[str, str]] = (),
    text: str | None = None,
) -> bool:
    """Whether the note states a subterm of a main term the mention names, coded or not
    ("carcinoid tumor": Tumor, carcinoid, whose codes need its behaviour)."""
    return any(
        _stated_children(tree, entry, set(alt), ctx)
        for entry, alt in main_terms(tree, mention_keys, words, text)
    )


def walk_from(tree: IndexTree, entry: int, ctx: Context) -> Walk | None:
    """A walk from a given main term (one a cue leads to), if it goes below it."""
    w = Walk(entries=[entry])
    _descend(tree, w, ctx)
    return w if w.code is not None and len(w.entries) > 1 else None


def _descend(tree: IndexTree, w: Walk, ctx: Context) -> None:
    """Down the subterms the note states, through "see" references, to the code; a reference
    the entry ends on is followed and the walk goes on below its target ("Smoker - see
    Dependence, drug, nicotine": "cigarettes" then leads to F17.210)."""
    hops = int(load_encoder_data()["max_see_hops"])
    cur = w.entries[-1]
    while True:
        cur, hops, ctx = _down(tree, w, ctx, cur, hops)
        target = _end_reference(tree, w, cur, hops)
        if target is None:
            return
        hops -= 1
        cur = target


def _down(tree: IndexTree, w: Walk, ctx: Context, cur: int, hops: int) -> tuple[int, int, Context]:
    """The stated subterms below ``cur`` and the references among them, then the default
    children; sets the walk's code. Returns where it ended, the hops left and the context."""
    while True:
        step = _best_child(tree, cur, w.consumed, ctx)
        if step is None:
            break
        path, got, score = step
        w.entries.extend(path)
        w.consumed |= got
        w.score += score
        cur = path[-1]
        ref = tree.see[cur]
        if ref and not tree.code[cur] and hops > 0:
            target = tree.resolve_see(ref)
            if target is None or target in w.entries:
                break  # (a reference back to an entry taken: "Hypertension, chronic venous -
            hops -= 1  # see Hypertension, venous (chronic)" read as Hypertension again)
            w.hops.append(ref)
            cur = target
            w.referred.add(len(w.entries))
            w.entries.append(target)
            # "Ulcer, heel - see Ulcer, lower limb": the words that led to the reference are
            # looked up again under its target ("Ulcer, lower limb, heel")
            w.consumed -= got
            w.named |= got
            # "Insect, bite - see Bite, by site, superficial, insect": below the stated site,
            # the reference's own subterms
            then = _after_by_site(ref)
            if then:
                w.consumed -= set(then)
                ctx = replace(ctx, local={**{k: PATH_WEIGHT for k in then}, **ctx.local})
    default = _default_child(tree, cur)
    while default is not None:  # "Colitis, Clostridium difficile": its "not specified as
        w.entries.append(default)  # recurrent" A04.72, not the main term's K52.9
        cur = default
        default = _default_child(tree, cur)
    w.code, w.code_entry = tree.code_of(cur)
    return cur, hops, ctx


def _end_reference(tree: IndexTree, w: Walk, cur: int, hops: int) -> int | None:
    """The target of the reference the walk ended on, once appended to it (None when there is
    none to follow)."""
    # an entry without a code of its own says "see" (a main term: "Consumption - see
    # Tuberculosis") or "see also" under its own main term ("Palsy, seventh nerve - see also
    # Palsy, facial": G51.0, not Palsy's G83.9). A "see also" to another main term is not
    # followed: "Fever, intermittent - see also Malaria" is no malaria a note names as a fever
    ref = tree.see[cur] if w.code is None else None
    also = ref is None and len(w.entries) > 1 and not tree.code[cur] and not tree.see[cur]
    if also:
        ref = tree.see_also[cur]
    if not ref or hops <= 0:
        return None
    target = tree.resolve_see(ref)
    if also and target is not None and tree.path(target)[0] != tree.path(cur)[0]:
        target = None
    if target is None or not tree.code_of(target)[0] or target in w.entries:
        return None  # (an entry already taken: a reference back to where the walk has been)
    w.hops.append(ref)
    if len(w.entries) > 1:  # a subterm's reference, not a one-word main term's
        w.referred.add(len(w.entries))
    w.entries.append(target)
    w.code, w.code_entry = tree.code_of(target)
    return target


def _default_child(tree: IndexTree, i: int) -> int | None:
    """Where entry ``i`` gives no code of its own, its first subterm that is the Index's default
    when no subterm is documented ("not specified as recurrent", "without ...":
    ``default_prefixes``); None where ``i`` has a code, a "see" reference (the reference is the
    instruction) or no such subterm."""
    if tree.code[i] or tree.see[i]:
        return None
    return next((c for c in tree.children[i] if tree.default[c] and not tree.connector[c]), None)


def _best_child(
    tree: IndexTree, i: int, consumed: set[str], ctx: Context, *, depth: int = 4
) -> tuple[list[int], set[str], float] | None:
    """The child of ``i`` (through a connector when one links it) that the note states best.
    Where the Index repeats that child's words deeper under another stated child ("calf,
    right, with exposed fat layer" beside "right, with exposed fat layer"), the path that
    states both wins (looking ``depth`` steps ahead)."""
    # a child the Index marks NEC is for what no other names: where another states as much,
    # that one ("hallux valgus deformity": Hallux, valgus, not Hallux, deformity NEC)
    found = sorted(_stated_children(tree, i, consumed, ctx), key=lambda f: _nec(tree, f[0][-1]))
    greedy = max(found, key=lambda f: f[2], default=None)
    if greedy is None or len(found) < 2:
        return greedy
    best, best_total = greedy, -1.0
    for f in found:
        score, got = _ahead(tree, f, consumed, ctx, depth - 1)
        if f is not greedy and not greedy[1] <= f[1] | got:
            continue  # a path that leaves the best-stated child's words unstated
        if f[2] + score > best_total:
            best, best_total = f, f[2] + score
    return best


def _ahead(
    tree: IndexTree,
    f: tuple[list[int], set[str], float],
    consumed: set[str],
    ctx: Context,
    depth: int,
) -> tuple[float, set[str]]:
    """What the note states of the best path below the step ``f``: weight and keys."""
    below = _stated_children(tree, f[0][-1], consumed | f[1], ctx)
    best: tuple[float, set[str]] = (0.0, set())
    for b in below:
        more = _ahead(tree, b, consumed | f[1], ctx, depth - 1) if depth > 0 else (0.0, set())
        if b[2] + more[0] > best[0]:
            best = (b[2] + more[0], b[1] | more[1])
    return best


def _stated_children(
    tree: IndexTree, i: int, consumed: set[str], ctx: Context
) -> list[tuple[list[int], set[str], float]]:
    """Each child of ``i`` the note states (through a connector when one links it), with the
    keys it consumes and their weight."""
    found: list[tuple[list[int], set[str], float]] = []
    for c in tree.children[i]:
        if tree.connector[c]:
            note_wide = tree.connector[c] == "note"
            for g in tree.children[c]:
                got = _match(tree, g, consumed, ctx, note_wide=note_wide)
                if got is not None:
                    found.append(([c, g], got[0], got[1]))
            continue
        got = _match(tree, c, consumed, ctx, note_wide=False)
        if got is not None:
            found.append(([c], got[0], got[1]))
    return found


def _match(
    tree: IndexTree, c: int, consumed: set[str], ctx: Context, *, note_wide: bool
) -> tuple[set[str], float] | None:
    """The keys and weight with which the note states entry ``c`` (None: it does not): all the
    words of one alternative (or its first word and at least half of the others, for that
    share), else of one nonessential modifier (at three quarters), plus a
    quarter for each other nonessential word and a half for each optional part's word."""
    if tree.negative[c]:
        return None
    opts = tree.option_keys(c)  # most children state nothing: ask the sets first
    if opts.isdisjoint(ctx.local) and (not note_wide or opts.isdisjoint(ctx.note)):
        return None
    best: tuple[set[str], float] | None = None
    options = [(a, 1.0) for a in tree.alts[c]]
    options += [(g, 0.75) for g in tree.nonessential[c] if len(g) > 1]  # "(E. coli)"
    for alt, factor in options:
        new = [k for k in alt if k not in consumed]
        if not new:
            continue
        weights = [ctx.weight(k, note_wide=note_wide) for k in new]
        stated = sum(1 for x in weights if x)
        # the first word and half of the others: "brain stem" needs "stem", though not a
        # generic noun ("distal end(s)": "distal radius" states it)
        generic = (
            sum(1 for k, x in zip(new, weights, strict=True) if not x and k in _generic())
            if stated < len(new)
            else 0
        )
        if not ctx.spells(alt) or not weights[0] or (stated - 1) * 2 < len(new) - 1 - generic:
            continue
        if stated < len(new) and (
            len(new) < 2
            or any(k[0].isdigit() for k in alt)  # a number is stated exactly or not at all
            or all(len(k) < 4 for k, x in zip(new, weights, strict=True) if x)
        ):  # a part of a phrase is stated by a word, not a letter ("O:" of "O'nyong-nyong")
            continue  # nor by a stem cut to three letters ("pre" of "presented": pre-menstrual)
        got = {k for k, x in zip(new, weights, strict=True) if x}
        # a phrase stated in part ("distal" of "distal end(s)") counts for the part it states
        score = sum(weights) * factor * (stated / len(new))
        for group in tree.nonessential[c]:
            for k in group:
                if k not in consumed and k not in got and ctx.weight(k, note_wide=False):
                    got.add(k)
                    score += ctx.weight(k, note_wide=False) * 0.25
        for k in tree.extra[c]:
            if k not in consumed and k not in got and ctx.weight(k, note_wide=False):
                got.add(k)
                score += ctx.weight(k, note_wide=False) * 0.5
        if best is None or score > best[1]:
            best = (got, score)
    return best


def mention_keys(text: str, normalized: str) -> list[str]:
    """The keys a mention names (its words, then its normalized form's)."""
    return list(dict.fromkeys([*keys(text), *keys(normalized)]))


@lru_cache(maxsize=1)
def _generic() -> frozenset[str]:
    """Keys of the nouns a subterm's phrase may leave unstated (``generic_nouns``)."""
    return frozenset(k for w in load_encoder_data()["generic_nouns"] for k in keys(str(w)))


_NEC = re.compile(r"\bNEC\b")


def _nec(tree: IndexTree, i: int) -> bool:
    return bool(_NEC.search(tree.term[i]))


_BY_SITE = re.compile(r",\s*by site\s*,", re.IGNORECASE)


def _after_by_site(ref: str) -> list[str]:
    """The keys of a reference's subterms after its "by site" (none without one)."""
    parts = _BY_SITE.split(ref, maxsplit=1)
    return keys(parts[1]) if len(parts) == 2 else []
