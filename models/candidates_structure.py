"""Structure candidates: the code hierarchy around what the other generators found.

For the best seed codes of a note (from ``lexical`` / ``dense``, see
:class:`clinicode.models.candidates.CandidatePipeline`) this adds

- the parent (a category the note may only support in general),
- the children of a non-billable seed, and the siblings of a seed, whose title agrees with the
  attributes of the mentions behind it (laterality, acuity, severity, stage, diabetes type,
  episode of care) better than the seed's own title does: "right femur" picks ``S72.001`` over
  ``S72.009``;
- the 7th-character code for the episode of care (initial ``A`` / subsequent ``D`` / sequela
  ``S``; initial when the note does not say), for seeds whose children carry one;
- codes the NLP already linked to a mention (``Mention.concepts``, ``"SYSTEM:CODE"``).

The attribute patterns, name and value aliases and the episode's 7th characters are data
(``models/resources/structure.yaml``).

It keeps its own compact copy of the code tree (``structure_tree.json``: codes, titles, kinds,
billable flags, parent indices), taken from the knowledge base at ``fit``, so a note costs no
database round trip; ``load`` checks that the KB (when given) holds the same code-set versions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from clinicode.kb.store import normalize_code
from clinicode.models.candidates import (
    CandidatesError,
    _require,
    load_config,
    save_config,
)
from clinicode.models.phrases import phrase_mentions
from clinicode.models.resources import load_resource
from clinicode.models.types import Candidate
from clinicode.schema import Mention

_PREFIX = "structure"

_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5"}


class _Tables(NamedTuple):
    """The attribute knowledge of ``models/resources/structure.yaml``, compiled."""

    mention: dict[str, re.Pattern[str]]  # name -> regex over a mention (in reading order)
    title: dict[str, re.Pattern[str]]  # name -> regex over a lowercased title, where it differs
    names: dict[str, str]  # NLP attribute name -> ours
    values: dict[str, dict[str, str]]  # name -> spelling -> value
    episode_char: dict[str, str]  # episode of care -> 7th character
    unspecified_side: re.Pattern[str]


@lru_cache(maxsize=1)
def _data() -> _Tables:
    d = load_resource("structure.yaml")
    return _Tables(
        mention={str(k): re.compile(v, re.I) for k, v in d["mention_attributes"].items()},
        title={str(k): re.compile(v) for k, v in d["title_attributes"].items()},
        names={str(k): str(v) for k, v in d["attribute_aliases"].items()},
        values={
            str(k): {str(a): str(b) for a, b in v.items()} for k, v in d["value_aliases"].items()
        },
        episode_char={str(k): str(v) for k, v in d["episode_characters"].items()},
        unspecified_side=re.compile(d["unspecified_side"]),
    )


def mention_attributes(
    mention: Mention,
    text: str = "",
    sentence_cache: dict[tuple[int, int], re.Match[str] | None] | None = None,
) -> dict[str, str]:
    """Normalised attributes of a mention: the NLP's, else read from the mention's words.

    The episode of care is also read from the mention's sentence (it is rarely inside the span);
    ``sentence_cache`` (one per note) reads each sentence once, however many mentions it holds.
    """
    tables = _data()
    attrs: dict[str, str] = {}
    for a in mention.attributes:
        name = tables.names.get(a.name.lower(), a.name.lower())
        attrs[name] = _norm_value(name, a.value)
    for name, pat in tables.mention.items():
        if name in attrs:
            continue
        m = pat.search(mention.text)
        if (
            m is None
            and name == "episode"
            and text
            and mention.sentence_end > mention.sentence_start
        ):
            bounds = (mention.sentence_start, mention.sentence_end)
            if sentence_cache is None or bounds not in sentence_cache:
                m = pat.search(text[bounds[0] : bounds[1]])
                if sentence_cache is not None:
                    sentence_cache[bounds] = m
            else:
                m = sentence_cache[bounds]
        if m is not None:
            attrs[name] = _norm_value(name, m.group(1))
    return attrs


def _norm_value(name: str, value: str) -> str:
    v = value.strip().lower()
    if name in ("stage", "diabetes_type"):
        v = _ROMAN.get(v, v)
    return _data().values.get(name, {}).get(v, v)


def title_agreement(title: str, attrs: dict[str, str]) -> float:
    """How well a code title agrees with the attributes: +1 per value it states, -1 per
    conflicting value it states, -0.5 for an "unspecified" title when the note specifies."""
    tables = _data()
    t = title.lower()
    score = 0.0
    for name, value in attrs.items():
        if name == "episode":
            continue
        own = tables.title.get(name)
        pat = tables.mention.get(name)
        if own is not None:
            found = own.findall(t)
        elif pat is not None:
            found = [f.lower() for f in pat.findall(t)]
        else:
            found = [value] if value and re.search(rf"\b{re.escape(value)}\b", t) else []
        if value in found:
            score += 1.0
        elif found:
            score -= 1.0
        elif name == "laterality" and tables.unspecified_side.search(t):
            score -= 0.5
    return score


class Node(NamedTuple):
    system: str
    code: str
    title: str
    kind: str
    billable: bool
    parent: str | None


class _Collector:
    """The candidates of one note as the structure generator finds them, and the attributes
    of each mention (read once)."""

    def __init__(self, source: str, text: str, mentions: Sequence[Mention]) -> None:
        self.source = source
        self.text = text
        self.mentions = mentions
        self.out: dict[tuple[str, str], Candidate] = {}
        self._attrs: dict[int, dict[str, str]] = {}
        self._sentences: dict[tuple[int, int], re.Match[str] | None] = {}
        self._mids: dict[tuple[str, str], set[int]] = {}  # mention_ids of each code, as a set

    def attrs_of(self, mids: Sequence[int]) -> dict[str, str]:
        merged: dict[str, str] = {}
        for mid in mids:
            if mid not in self._attrs:
                self._attrs[mid] = mention_attributes(
                    self.mentions[mid], self.text, self._sentences
                )
            for k, v in self._attrs[mid].items():
                merged.setdefault(k, v)
        return merged

    def add(
        self, system: str, code: str, mids: Sequence[int], score: float, **flags: float
    ) -> None:
        key = (system, code)
        c = self.out.get(key)
        if c is None:
            c = self.out[key] = Candidate(system=system, code=code, sources={self.source})
        have = self._mids.setdefault(key, set())
        for mid in mids:
            if mid not in have:
                have.add(mid)
                c.mention_ids.append(mid)
        c.features["struct_score"] = max(c.features.get("struct_score", 0.0), score)
        for f, v in flags.items():
            c.features[f] = max(c.features.get(f, v), v)
        c.score = c.features["struct_score"]


class StructureGenerator:
    """Parents, attribute-matched children and siblings, 7th characters, NLP-linked codes."""

    name = "structure"
    uses_seeds = True  # walks the code tree around what the other generators proposed
    PARAMS = (
        "max_seeds",
        "max_children",
        "parent_weight",
        "child_weight",
        "seventh_weight",
    )  # hyperparameters, saved and restored by save_config / load_config

    def __init__(
        self,
        *,
        max_seeds: int = 60,
        max_children: int = 3,
        parent_weight: float = 0.8,
        child_weight: float = 0.75,
        seventh_weight: float = 0.9,
    ) -> None:
        self.max_seeds = max_seeds
        self.max_children = max_children
        self.parent_weight = parent_weight
        self.child_weight = child_weight
        self.seventh_weight = seventh_weight

    def fit(
        self, kb: Any, systems: Sequence[str] = ("ICD-10-CM",), *, progress: bool = False
    ) -> StructureGenerator:
        self.systems_ = list(systems)
        self.versions_ = {s: v for s, v in kb.versions().items() if s in systems}
        nodes = [
            Node(rec.system, rec.code, rec.title, rec.kind, rec.billable, rec.parent)
            for system in systems
            for rec in kb.iter_codes(system)
        ]
        self._set_tree(nodes)
        return self

    def _set_tree(self, nodes: list[Node]) -> None:
        self.nodes_ = nodes
        self.index_ = {(n.system, n.code): i for i, n in enumerate(nodes)}
        kids: dict[tuple[str, str], list[Node]] = {}
        for n in nodes:  # KB order, so children come in tabular order
            if n.parent is not None:
                kids.setdefault((n.system, n.parent), []).append(n)
        self.children_ = kids

    def _get(self, code: str, system: str) -> Node | None:
        i = self.index_.get((system, code))
        if i is None:
            i = self.index_.get((system, normalize_code(code, system)))
        return None if i is None else self.nodes_[i]

    def _children(self, code: str, system: str) -> list[Node]:
        return self.children_.get((system, code), [])

    # -- generation --------------------------------------------------------------------
    def generate(
        self, text: str, mentions: list[Mention], *, seeds: Sequence[Candidate] = ()
    ) -> list[Candidate]:
        if not hasattr(self, "nodes_"):
            raise CandidatesError("structure candidate generator used before fit() or load()")
        col = _Collector(self.name, text, mentions or phrase_mentions(text))
        linked: dict[tuple[str, str], list[int]] = {}  # the NLP's codes, with their mentions
        nodes: dict[str, Node | None] = {}
        for mid, m in enumerate(col.mentions):
            for concept in m.concepts:
                if concept not in nodes:
                    system, _, code = concept.partition(":")
                    ok = code and system in self.systems_
                    nodes[concept] = self._get(code, system) if ok else None
                node = nodes[concept]
                if node is not None:
                    linked.setdefault((node.system, node.code), []).append(mid)
        for (system, code), mids in linked.items():  # once per code, not per mention
            col.add(system, code, mids, 1.0, concept_match=1.0)
        seen: set[tuple[str, str]] = set()
        for seed in list(seeds or [])[: self.max_seeds]:
            if seed.system not in self.systems_ or (seed.system, seed.code) in seen:
                continue
            seen.add((seed.system, seed.code))
            rec = self._get(seed.code, seed.system)
            if rec is not None:
                self._expand(col, seed, rec)
        return sorted(col.out.values(), key=lambda c: -c.score)

    def _expand(self, col: _Collector, seed: Candidate, rec: Node) -> None:
        """The parent, the 7th-character child, and the children or siblings whose titles the
        note's attributes agree with, of one seed code."""
        base = max(
            seed.score,
            max(seed.features.get(k, 0.0) for k in ("lex_max", "dense_max", "struct_score")),
        )
        mids = seed.mention_ids
        attrs = col.attrs_of(mids)
        episode = attrs.get("episode", "initial")
        if rec.parent:
            parent = self._get(rec.parent, seed.system)
            if parent is not None and parent.kind in ("category", "subcategory", "code"):
                col.add(
                    seed.system, parent.code, mids, base * self.parent_weight, struct_parent=1.0
                )
        own = title_agreement(rec.title, attrs) if attrs else 0.0
        children = list(self._children(rec.code, seed.system))
        seventh = [c for c in children if _is_seventh(rec.code, c.code)]
        if seventh:
            self._add_seventh(col.add, seed.system, seventh, mids, base, episode, attrs)
            children = []
        pool = [(c, "struct_child") for c in children if not rec.billable]
        if attrs and rec.parent:
            pool += [
                (s, "struct_sibling")
                for s in self._children(rec.parent, seed.system)
                if s.code != rec.code and not _is_seventh(rec.parent, s.code)
            ]
        scored = []
        for node, kind in pool:
            agree = title_agreement(node.title, attrs) if attrs else 0.0
            if kind == "struct_sibling" and agree <= own:
                continue
            scored.append((agree, node.billable, node.code, node, kind))
        for agree, _billable, _code, node, kind in _choose(scored)[: self.max_children]:
            score = base * self.child_weight * (1.0 + 0.1 * max(agree, -2.0))
            col.add(seed.system, node.code, mids, score, **{kind: 1.0, "struct_attr_agree": agree})
            grand = [
                c for c in self._children(node.code, seed.system) if _is_seventh(node.code, c.code)
            ]
            if grand:
                self._add_seventh(col.add, seed.system, grand, mids, score, episode, attrs)

    def _add_seventh(
        self,
        add: Any,
        system: str,
        options: Sequence[Any],
        mids: Sequence[int],
        base: float,
        episode: str,
        attrs: dict[str, str],
    ) -> None:
        """The 7th-character child for the episode of care (fractures: closed, routine healing)."""
        want = _data().episode_char.get(episode, "A")
        matching = [c for c in options if c.code[-1] == want]
        if not matching:
            return
        best = matching[0]  # KB order: "A" before "B" (closed before open fracture)
        add(
            system,
            best.code,
            mids,
            base * self.seventh_weight,
            struct_seventh=1.0,
            struct_episode_stated=float("episode" in attrs),
        )

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: Path | str) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_config(self, d, _PREFIX)
        (d / f"{_PREFIX}_tree.json").write_text(
            json.dumps({"fields": list(Node._fields), "nodes": [list(n) for n in self.nodes_]}),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, directory: Path | str, *, kb: Any = None) -> StructureGenerator:
        d = Path(directory)
        gen, cfg = load_config(cls, d, _PREFIX)
        if kb is not None:
            have = kb.versions()
            for system, version in cfg["code_sets"].items():
                if have.get(system) != version:
                    raise CandidatesError(
                        f"the model pack was built on {system} {version} but the knowledge base "
                        f"holds {have.get(system, 'no ' + system)}; rebuild the pack or the KB"
                    )
        tree = json.loads(_require(d / f"{_PREFIX}_tree.json").read_text(encoding="utf-8"))
        if tree.get("fields") != list(Node._fields):
            raise CandidatesError(f"{d}: structure tree has unexpected fields; rebuild it")
        gen._set_tree([Node(*row) for row in tree["nodes"]])
        return gen


def _choose(
    scored: list[tuple[float, bool, str, Node, str]],
) -> list[tuple[float, bool, str, Node, str]]:
    """The children / siblings worth proposing: those that agree best with the mention when
    any agrees, else the "unspecified" default child, else all (in tabular order)."""
    if not scored:
        return []
    best = max(t[0] for t in scored)
    if best > 0:
        return [t for t in scored if t[0] == best]
    default = [t for t in scored if t[4] == "struct_child" and "unspecified" in t[3].title.lower()]
    return default or [t for t in scored if t[4] == "struct_child"]


def _is_seventh(parent_code: str, child_code: str) -> bool:
    """``child_code`` is ``parent_code`` plus placeholder ``X``es and a 7th character
    (``S72.001`` -> ``S72.001A``, ``T14.90`` -> ``T14.90XA``)."""
    p = parent_code.replace(".", "")
    c = child_code.replace(".", "")
    return len(c) == 7 and len(p) < 7 and c.startswith(p) and set(c[len(p) : -1]) <= {"X"}
