"""The ``encoder`` candidate generator: codes by Index walk and tabular descent, with paths.

It runs after the other generators (``uses_seeds``): for every mention it walks the Index
(when imported) and verifies the code in the Tabular; without an Index it descends instead from
the tabular category of the best seed codes with the words of their mentions.
Features (``enc_*``) tell the ranker how the code was reached; ``Candidate.paths`` carries the
path a coder reads as the explanation. The trees derive from the KB (cached on it), so the pack
stores only the hyperparameters.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clinicode.models.candidates import CandidatesError, load_config, save_config
from clinicode.models.encoder.index_tree import ICD, IndexTree
from clinicode.models.encoder.tabular import Step, TabularTree
from clinicode.models.encoder.walk import (
    PATH_WEIGHT,
    Walk,
    mention_keys,
    names_subterm,
    walk,
    walk_from,
)
from clinicode.models.encoder.words import (
    PHRASE_END,
    Context,
    keys,
    keys_without_durations,
    load_encoder_data,
    mention_context,
    note_keys,
    note_sides,
    with_note_side,
    word_keys,
)
from clinicode.models.types import Candidate
from clinicode.nlp.cues import negated_before
from clinicode.nlp.demographics import patient_demographics
from clinicode.schema import Mention

_PREFIX = "encoder"
_KINDS = frozenset({"condition", "finding"})
_PRESENT = ("present",)
_PHRASE_MAX = 120
_SIDE_LETTERS = {r"\bL\b": "left", r"\bR\b": "right"}


class EncoderGenerator:
    name = "encoder"
    uses_seeds = True
    PARAMS = ("max_seeds",)

    def __init__(self, *, max_seeds: int | None = None) -> None:
        self.max_seeds = (
            max_seeds if max_seeds is not None else int(load_encoder_data()["max_seeds"])
        )
        self.kb_: Any = None

    def fit(
        self, kb: Any, systems: Sequence[str] = (ICD,), *, progress: bool = False
    ) -> EncoderGenerator:
        self.systems_ = [s for s in systems if s == ICD]
        self.versions_ = {s: v for s, v in kb.versions().items() if s in self.systems_}
        self.kb_ = kb
        return self

    def trees(self) -> tuple[IndexTree, TabularTree]:
        if self.kb_ is None:
            raise CandidatesError("encoder candidate generator used before fit() or load()")
        return (
            self.kb_.derived("encoder_index_tree", IndexTree.build),
            TabularTree.of(self.kb_),
        )

    def warm_up(self) -> None:
        index, _ = self.trees()
        if len(index):
            for row in load_encoder_data()["neoplasm_columns"]:
                self._neoplasm_tree(str(row["column"]))

    def _neoplasm_tree(self, column: str) -> IndexTree:
        """The Table of Neoplasms with one column's codes (the table is read once per KB)."""
        return self.kb_.derived(
            f"encoder_neoplasm_{column}",
            lambda kb: kb.derived("encoder_neoplasm", IndexTree.build_neoplasm).column(column),
        )

    def generate(
        self, text: str, mentions: list[Mention], *, seeds: Sequence[Candidate] = ()
    ) -> list[Candidate]:
        if ICD not in self.systems_:
            return []
        index, tab = self.trees()
        weights = load_encoder_data()["weights"]
        note = note_keys(mentions, weights["note"])
        # the patient's sex is stated for every condition ("66M": the male breast of C50.12-)
        sex = patient_demographics(text).sex
        patient = {k: weights["sentence"] for k in keys(sex)} if sex else {}
        sided = note_sides(text)
        out: dict[str, Candidate] = _Found()
        contexts: dict[int, Context] = {}
        sentences = _Sentences(text, mentions)

        def context(mid: int) -> Context:
            if mid not in contexts:
                m = mentions[mid]
                ctx = mention_context(
                    text, m, sentences.near(mid), note, weights, sentences.keys_of(m)
                )
                for k, w in patient.items():
                    ctx.local.setdefault(k, w)
                with_note_side(ctx, sided, weights["sentence"])
                contexts[mid] = ctx
            return contexts[mid]

        if len(index):
            for mid, m in enumerate(mentions):
                if m.kind in _KINDS:
                    self._walk(index, tab, text, mid, m, context(mid), out)
                elif _cue_rows(m):
                    self._walks(
                        index,
                        tab,
                        mid,
                        m,
                        context(mid),
                        self._cue_walks(index, text, m, context(mid)),
                        out,
                    )
        # the seed descent is the encoder's path when no Index is imported; with one it only
        # repeated the structure generator's walk (CodiEsp train, 120 notes, default pack with
        # the Index: ranker MAP 0.266 with it, 0.274 without; bare KB: 0.225 with, 0.224 without)
        for code, mid in self._seeds(seeds, mentions) if not len(index) else ():
            self._descend(tab, code[:3], mid, context(mid), out)
        return sorted(out.values(), key=lambda c: -c.score)

    def _walk(
        self,
        index: IndexTree,
        tab: TabularTree,
        text: str,
        mid: int,
        m: Mention,
        ctx: Context,
        out: dict[str, Candidate],
    ) -> None:
        mk, words = mention_keys(m.text, m.normalized), word_keys(m.text)
        walks = walk(index, mk, ctx, words, m.text)
        self._walks(index, tab, mid, m, ctx, walks + self._cue_walks(index, text, m, ctx), out)
        if m.assertion == "present":
            # an Index subterm the note states ("Tumor, carcinoid") names what the table's
            # unspecified column would only guess at
            def indexed() -> bool:
                deep = any(len(w.entries) > 1 for w in walks)
                return deep or names_subterm(index, mk, ctx, words, m.text)

            self._neoplasm_walk(tab, text, mid, m, ctx, out, indexed=indexed)

    def _neoplasm_walk(
        self,
        tab: TabularTree,
        text: str,
        mid: int,
        m: Mention,
        ctx: Context,
        out: dict[str, Candidate],
        *,
        indexed: Callable[[], bool] = lambda: False,
    ) -> None:
        """A neoplasm the mention names by its behaviour ("carcinoma", "metastatic") is coded
        from the Table of Neoplasms by the site its own phrase states: "ductal carcinoma of the
        central portion of the L breast" -> Neoplasm, breast, central portion, malignant
        primary -> C50.1 -> (male) C50.12 -> (left) C50.122. No stated site, no walk. A column
        marked ``unless_indexed`` is not walked where the mention's Index walk went below its
        main term or the note states one of its subterms (``indexed``)."""
        head = text[m.sentence_start : m.start]  # "Metastatic carcinoma to the liver"
        lead = PHRASE_END.split(head)[-1] if head else ""
        found = _neoplasm_column(f"{lead} {m.text}")
        if found is None or (found[0].get("unless_indexed") and indexed()):
            return
        column, behaviour = str(found[0]["column"]), set(keys(found[1]))
        tree = self._neoplasm_tree(column)
        # the site is the mention's own ("breast cancer"), what its phrase writes before it
        # ("bladder tumors") or after it ("metastases to the liver"), never a site the sentence
        # names for another mention (a line the note wraps mid-phrase, "portion of the\nL
        # breast", does not end it)
        tail = PHRASE_END.split(text[m.end : m.end + _PHRASE_MAX], maxsplit=1)[0]
        phrase = f"{lead} {m.text} {tail}"
        site = Context(local={k: 2.0 for k in keys(phrase)})
        # the Tabular reads the side the phrase writes as a letter ("L breast") beside the
        # mention's context
        sides = {k: 2.0 for letter, k in _SIDE_LETTERS.items() if re.search(letter, phrase)}
        descent = Context(
            local={**site.local, **sides, **ctx.local}, note=ctx.note, pairs=ctx.pairs
        )
        for main in dict.fromkeys(i for ids in tree.mains.values() for i in ids):
            w = walk_from(tree, main, site)
            if w is not None:
                w.referred.add(0)  # "Neoplasm, neoplastic": the table, not the note's word
                w.hops.append(f"Neoplasm, by site, {column}")
                w.consumed |= behaviour  # the column codes the behaviour the mention names
                self._walks(tree, tab, mid, m, descent, [w], out)

    def _walks(
        self,
        index: IndexTree,
        tab: TabularTree,
        mid: int,
        m: Mention,
        ctx: Context,
        walks: list[Walk],
        out: dict[str, Candidate],
    ) -> None:
        mk = mention_keys(m.text, m.normalized)
        for rank, w in enumerate(walks):
            if w.code is not None and w.code in tab.title:
                self._code_walk(index, tab, mid, mk, ctx, w, rank, out)

    def _cue_walks(self, index: IndexTree, text: str, m: Mention, ctx: Context) -> list[Walk]:
        """Walks from the main terms that cues in the mention's sentence lead to."""
        out = []
        sentence = text[m.sentence_start : m.sentence_end]
        for row in _cue_rows(m):
            hit = re.search(row["cue"], sentence, re.I)
            if hit is None or negated_before(text, m.sentence_start + hit.start()):
                continue
            entry = index.resolve_see(row["main"])
            w = walk_from(index, entry, ctx) if entry is not None else None
            if w is not None:
                out.append(w)
        return out

    def _code_walk(
        self,
        index: IndexTree,
        tab: TabularTree,
        mid: int,
        mk: list[str],
        ctx: Context,
        w: Walk,
        rank: int,
        out: dict[str, Candidate],
    ) -> None:
        assert w.code is not None
        # the words of the references followed settle the code too: "Stasis, ulcer - see Varix,
        # leg, with, ulcer" is the Index's leg, which no "leg" in the note moves to I83.008
        settled = frozenset(w.consumed).union(*(keys(ref) for ref in w.hops))
        code, steps = tab.descend(w.code, _with_path(ctx, index, w), settled=settled)
        own = [k for k in mk if ctx.local.get(k, 0.0) >= 2.0]
        cover = len([k for k in own if k in w.consumed]) / max(len(own), 1)
        feats = {
            "enc_index": 1.0,
            "enc_first": float(rank == 0),
            "enc_cover": cover,
            "enc_score": w.score,
            "enc_depth": float(len(w.entries)),
            "enc_default": float(len(w.entries) == 1),
            "enc_unspec": float(any(s.why.startswith("the note does not") for s in steps)),
        }
        path = f"{w.describe(index)} -> {w.code}{_tabular(w.code, steps)}"
        _record(out, code, mid, feats, path, tab)

    def _descend(
        self, tab: TabularTree, category: str, mid: int, ctx: Context, out: dict[str, Candidate]
    ) -> None:
        if category not in tab.title:
            return
        code, steps = tab.descend(category, ctx)
        if not steps:
            return
        feats = {
            "enc_tabular": 1.0,
            "enc_unspec": float(any(s.why.startswith("the note does not") for s in steps)),
        }
        path = f"Tabular: {category} {tab.title[category]}" + "".join(
            f" -> {s.code} ({s.why})" for s in steps
        )
        _record(out, code, mid, feats, path, tab)

    def _seeds(self, seeds: Sequence[Candidate], mentions: list[Mention]) -> list[tuple[str, int]]:
        """(code, mention) pairs to descend from: each mention of a seed, as each may state
        more ("C. difficile colitis ... Dx: recurrent C. diff colitis": A04.71 by the second)."""
        out: list[tuple[str, int]] = []
        seen: set[tuple[str, int]] = set()
        for s in seeds:
            if s.system != ICD:
                continue
            for mid in s.mention_ids:
                if mid >= len(mentions) or (s.code[:3], mid) in seen:
                    continue
                seen.add((s.code[:3], mid))
                out.append((s.code, mid))
            if len(out) >= self.max_seeds:
                break
        return out[: self.max_seeds]

    def save(self, directory: Path | str) -> None:
        save_config(self, Path(directory), _PREFIX)

    @classmethod
    def load(cls, directory: Path | str, *, kb: Any = None) -> EncoderGenerator:
        gen, _ = load_config(cls, Path(directory), _PREFIX)
        if kb is None:
            raise CandidatesError("the encoder generator reads the KB's Index: load it with a KB")
        gen.kb_ = kb
        return gen


class _Found(dict[str, Candidate]):
    """Candidates by code, with each one's mention ids also as a set: a note naming one
    condition thousands of times is recorded in linear time."""

    def __init__(self) -> None:
        super().__init__()
        self.mids: dict[str, set[int]] = {}


# Mentions of its sentence a mention's context reads at most: every one in a real note; the
# nearest this many in a hostile sentence holding thousands (bounded work per note).
MAX_CONTEXT_MENTIONS = 64


class _Sentences:
    """Each mention's sentence, read once: its keys, and the mentions inside it (in note
    order; the nearest ``MAX_CONTEXT_MENTIONS`` when it holds more)."""

    def __init__(self, text: str, mentions: Sequence[Mention]) -> None:
        self.text = text
        self.mentions = mentions
        self._order = sorted(range(len(mentions)), key=lambda i: mentions[i].start)
        self._starts = [mentions[i].start for i in self._order]
        self._inside: dict[tuple[int, int], list[int]] = {}
        self._keys: dict[tuple[int, int], list[str]] = {}

    def keys_of(self, m: Mention) -> list[str]:
        bounds = (m.sentence_start, m.sentence_end)
        if bounds not in self._keys:
            self._keys[bounds] = keys_without_durations(self.text[bounds[0] : bounds[1]])
        return self._keys[bounds]

    def near(self, mid: int) -> list[Mention]:
        m = self.mentions[mid]
        lo, hi = m.sentence_start, m.sentence_end
        inside = self._inside.get((lo, hi))
        if inside is None:
            a = bisect.bisect_left(self._starts, lo)
            b = bisect.bisect_left(self._starts, hi)
            inside = sorted(i for i in self._order[a:b] if self.mentions[i].end <= hi)
            self._inside[(lo, hi)] = inside
        if len(inside) > MAX_CONTEXT_MENTIONS:
            k = bisect.bisect_left(inside, mid)
            half = MAX_CONTEXT_MENTIONS // 2
            start = max(0, min(k - half, len(inside) - MAX_CONTEXT_MENTIONS))
            chosen = inside[start : start + MAX_CONTEXT_MENTIONS]
            if mid not in chosen:
                chosen = sorted([*chosen[1:], mid])
            return [self.mentions[i] for i in chosen]
        return [self.mentions[i] for i in inside]


def _neoplasm_column(text: str) -> tuple[dict[str, Any], str] | None:
    """The ``neoplasm_columns`` row whose words a mention's words name, with those words."""
    for row in load_encoder_data()["neoplasm_columns"]:
        hit = re.search(row["words"], text, re.I)
        if hit is not None:
            return dict(row), hit.group(0)
    return None


def _cue_rows(m: Mention) -> list[dict[str, Any]]:
    """The cue rows that apply to a mention of its kind and assertion (by default a present
    condition or finding)."""
    return [
        row
        for row in load_encoder_data()["cue_main_terms"]
        if m.kind in row.get("kinds", _KINDS) and m.assertion in row.get("assertions", _PRESENT)
    ]


def _tabular(start: str, steps: list[Step]) -> str:
    if not steps:
        return ""
    return "; Tabular: " + start + "".join(f" -> {s.code} ({s.why})" for s in steps)


def _record(
    out: dict[str, Candidate],
    code: str,
    mid: int,
    feats: dict[str, float],
    path: str,
    tab: TabularTree,
) -> None:
    if not tab.billable.get(code, False):
        feats = {**feats, "enc_nonbillable": 1.0}
    c = out.get(code)
    if c is None:
        c = out[code] = Candidate(system=ICD, code=code, sources={"encoder"})
    mids = out.mids.setdefault(code, set()) if isinstance(out, _Found) else None
    if (mid not in mids) if mids is not None else (mid not in c.mention_ids):
        if mids is not None:
            mids.add(mid)
        c.mention_ids.append(mid)
    for k, v in feats.items():
        c.features[k] = max(c.features.get(k, 0.0), v)
    c.features["enc_hit"] = 1.0
    if path not in c.paths:
        c.paths.append(path)
    c.score = max(c.score, c.features.get("enc_cover", 0.5))


def _with_path(ctx: Context, index: IndexTree, w: Walk) -> Context:
    """``ctx`` with the words of the Index path taken, at sentence weight where the note's own
    are not stronger: the Tabular is verified for the entry the coder followed ("Cellulitis,
    ankle, lower limb -> L03.11-": L03.115 *right lower limb*, not L03.111 *right axilla*
    for "right ankle cellulitis")."""
    path = [k for i in w.entries for k in keys(index.term[i])]
    if not path:
        return ctx
    local = dict.fromkeys(path, PATH_WEIGHT)
    local.update({k: max(v, local.get(k, 0.0)) for k, v in ctx.local.items()})
    return Context(local=local, note=ctx.note, pairs=ctx.pairs | set(itertools.pairwise(path)))
