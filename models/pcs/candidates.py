"""ICD-10-PCS candidates for the ranker (``models.registry`` candidate generator ``pcs``).

The lexical generators index ICD-10-CM terms only, so without this generator a pack's PCS
codes come from its note classifier alone. Two sources, both reading the note's words and
proposing only codes (or code prefixes) of the imported PCS tables:

* **the PCS builder** (:mod:`.builder`) on the note's procedure statements: the built code when
  every axis is documented, and its first four characters (section, body system, root
  operation, body part) always, since an approach or device the note does not state leaves
  only those four known;
* **imaging** (section B): a word naming an imaging type (CT, MRI, ultrasound, X-ray,
  fluoroscopy; ``models/resources/pcs_imaging.yaml``) and, near it in its sentence, the words
  of a body part as the PCS imaging titles name it ("CT of the abdomen and pelvis" ->
  ``BW21``). The seven-character code when the table leaves one (a chest X-ray is
  ``BW03ZZZ``), else the four characters the note documents and the no-contrast code beside
  them (the ranker learns which one coders report).

Each candidate carries ``pcs_*`` features saying which source and what kind of code it is; the
ranker decides. Nothing is fitted: the generator reads the knowledge base it is loaded with.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from clinicode.models.pcs.tables import SYSTEM, PcsTables
from clinicode.models.resources import load_resource
from clinicode.models.types import Candidate
from clinicode.schema import Mention

_FILE = "pcs_config.json"
_TITLE = re.compile(r"^(?P<type>.+?) of (?P<part>.+?)(?: using | with |, |$)")
_WORD = re.compile(r"[a-z][a-z]+")
_SIDES = {"left": "left", "right": "right", "bilateral": "bilateral"}
_SIDE_WORDS = {"left": "left", "right": "right", "bilateral": "bilateral", "both": "bilateral"}
_DROP = frozenset({"and", "of", "the", "s", "other", "single", "multiple", "whole"})
_STEM = 5
_SENTENCE = re.compile(r"[^.\n;]+")


def _stem(word: str) -> str:
    return word[:_STEM]


@dataclass(frozen=True)
class ImagingPart:
    """A body part of one imaging type, as the PCS titles name it."""

    type_value: str
    name: str
    stems: frozenset[str]
    side: str | None
    prefixes: tuple[str, ...]


@dataclass
class Imaging:
    """The imaging words (from the resource) and body parts (from the KB's titles), and the
    named procedures: each set of words is one regex scanned once per note (a named group per
    type value or per word)."""

    types: re.Pattern[str]  # group "t<value>" per imaging type
    parts: dict[str, list[ImagingPart]]  # type value -> parts
    synonyms: dict[str, tuple[str, ...]]
    window: int
    named: re.Pattern[str] | None  # group "n<i>" per word pattern
    named_codes: list[list[str]]  # codes (or 4-character prefixes) of each word pattern


def _whole_words(alternatives: list[str]) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9])(?:{'|'.join(alternatives)})(?![A-Za-z0-9])")


def _part_stems(name: str) -> tuple[frozenset[str], str | None]:
    words = _WORD.findall(name.lower())
    side = next((_SIDES[w] for w in words if w in _SIDES), None)
    stems = frozenset(_stem(w) for w in words if w not in _SIDES and w not in _DROP)
    return stems, side


@lru_cache(maxsize=1)
def _contrast() -> re.Pattern[str]:
    """Words that make an imaging study one with contrast (``contrast`` in pcs_imaging.yaml)."""
    alts = "|".join(str(w) for w in load_resource("pcs_imaging.yaml")["contrast"])
    return re.compile(rf"\b(?:{alts})\b", re.I)


def build_imaging(tables: PcsTables) -> Imaging:
    """The imaging index of the PCS codes in ``tables`` (section B)."""
    res = load_resource("pcs_imaging.yaml")
    labels = {v: str(spec["label"]) for v, spec in res["types"].items()}
    alts = []
    for value, spec in res["types"].items():
        words = "|".join(spec.get("terms") or [])
        cased = "|".join(spec.get("cased") or [])
        inner = "|".join(a for a in (f"(?i:{words})" if words else "", cased) if a)
        alts.append(f"(?P<t{value}>{inner})")
    types = _whole_words(alts)
    by_part: dict[tuple[str, str], set[str]] = defaultdict(set)
    for table, codes in tables.by_table.items():
        if table[0] != "B" or table[2] not in labels:
            continue
        for code in codes:
            m = _TITLE.match(tables.title(code))
            if m and m.group("type") == labels[table[2]]:
                by_part[(table[2], m.group("part"))].add(code[:4])
    parts: dict[str, list[ImagingPart]] = defaultdict(list)
    for (tv, name), prefixes in sorted(by_part.items()):
        stems, side = _part_stems(name)
        if stems:
            parts[tv].append(ImagingPart(tv, name, stems, side, tuple(sorted(prefixes))))
    synonyms = {
        str(k).lower(): tuple(_stem(w) for w in str(v).lower().split())
        for k, v in res.get("synonyms", {}).items()
    }
    codes_of: dict[str, list[str]] = {}
    for code, words in res.get("named", {}).items():
        code = str(code)
        known = tables.valid(code) if len(code) == 7 else bool(tables.completions(_fixed(code)))
        for w in words if known else []:
            codes_of.setdefault(str(w), []).append(code)
    named_words = list(codes_of)
    named = (
        _whole_words([f"(?P<n{i}>(?i:{w}))" for i, w in enumerate(named_words)])
        if named_words
        else None
    )
    window = int(res.get("window", 80))
    return Imaging(types, dict(parts), synonyms, window, named, [codes_of[w] for w in named_words])


def _fixed(prefix: str) -> dict[int, str]:
    return {i + 1: ch for i, ch in enumerate(prefix)}


class PcsGenerator:
    """Proposes ICD-10-PCS codes and prefixes from procedure statements and imaging words."""

    name = "pcs"
    uses_seeds = False
    capped = False  # merged apart from the diagnosis generators (``CandidatePipeline``)
    # its pre-ranking score: how directly the note names the code
    weights: ClassVar[dict[str, float]] = {"pcs_score": 1.0}
    PARAMS: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.kb: Any = None
        self.systems_: list[str] = [SYSTEM]
        self.versions_: dict[str, str] = {}

    # -- protocol ------------------------------------------------------------------------
    def fit(self, kb: Any, systems: Sequence[str] = (), *, progress: bool = False) -> PcsGenerator:
        self.kb = kb
        self.versions_ = {s: v for s, v in kb.versions().items() if s == SYSTEM}
        return self

    def save(self, directory: Path | str) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cfg = {"format_version": 1, "systems": self.systems_, "code_sets": self.versions_}
        (d / _FILE).write_text(json.dumps(cfg, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path | str, *, kb: Any = None) -> PcsGenerator:
        from clinicode.models.candidates import CandidatesError

        path = Path(directory) / _FILE
        if not path.is_file():
            raise CandidatesError(f"candidate index file missing: {path}")
        cfg = json.loads(path.read_text(encoding="utf-8"))
        gen = cls()
        gen.kb = kb
        gen.versions_ = dict(cfg.get("code_sets", {}))
        return gen

    # -- generation ----------------------------------------------------------------------
    def _tables(self) -> PcsTables | None:
        if self.kb is None:
            return None
        tables = PcsTables.from_kb(self.kb)
        return tables if tables else None

    def _imaging(self, tables: PcsTables) -> Imaging:
        imaging: Imaging = self.kb.derived("pcs_imaging", lambda _kb: build_imaging(tables))
        return imaging

    def generate(
        self, text: str, mentions: list[Mention], *, seeds: Sequence[Candidate] = ()
    ) -> list[Candidate]:
        tables = self._tables()
        if tables is None:
            return []
        out: dict[str, Candidate] = {}
        self._from_builder(text, mentions, out)
        self._from_imaging(text, mentions, tables, out)
        self._from_named(text, mentions, tables, out)
        for c in out.values():
            c.features["pcs_hit"] = 1.0
            c.features["pcs_full"] = float(len(c.code) == 7)
        return sorted(out.values(), key=lambda c: (-c.features.get("pcs_score", 0.0), c.code))

    def _add(
        self, out: dict[str, Candidate], code: str, feats: dict[str, float], mids: list[int]
    ) -> None:
        c = out.get(code)
        if c is None:
            c = out[code] = Candidate(system=SYSTEM, code=code, sources={self.name})
        for k, v in feats.items():
            c.features[k] = max(c.features.get(k, v), v)
        for m in mids:
            if m not in c.mention_ids:
                c.mention_ids.append(m)

    def _from_builder(self, text: str, mentions: list[Mention], out: dict[str, Candidate]) -> None:
        from clinicode.models.pcs.coder import PcsCoder

        coder: PcsCoder = self.kb.derived("pcs_coder", PcsCoder)
        for b in coder.build(text, mentions):
            mids = _mention_ids(mentions, b.statement.start, b.statement.end)
            heading = float(b.statement.source == "heading")
            base = {"pcs_builder": 1.0, "pcs_heading": heading}
            if not b.missing:
                self._add(out, b.code, {**base, "pcs_documented": 1.0, "pcs_score": 0.9}, mids)
            self._add(
                out,
                b.code[:4],
                {**base, "pcs_prefix": 1.0, "pcs_missing": float(len(b.missing)), "pcs_score": 0.8},
                mids,
            )

    def _from_named(
        self, text: str, mentions: list[Mention], tables: PcsTables, out: dict[str, Candidate]
    ) -> None:
        img = self._imaging(tables)
        if img.named is None:
            return
        spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for m in img.named.finditer(text):
            for code in img.named_codes[int(str(m.lastgroup)[1:])]:
                spans[code].append(m.span())
        for code, found in spans.items():
            mids = [i for a, b in found for i in _mention_ids(mentions, a, b)]
            feats = {"pcs_named": 1.0, "pcs_named_count": float(len(found)), "pcs_score": 0.7}
            if len(code) < 7:
                feats["pcs_prefix"] = 1.0
            self._add(out, code, feats, mids)

    def _from_imaging(
        self, text: str, mentions: list[Mention], tables: PcsTables, out: dict[str, Candidate]
    ) -> None:
        img = self._imaging(tables)
        by_sentence: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
        bounds = [(m.start(), m.end()) for m in _SENTENCE.finditer(text)]
        starts = [a for a, _ in bounds]
        for m in img.types.finditer(text):
            k = bisect_right(starts, m.start()) - 1
            if k >= 0 and m.end() <= bounds[k][1]:
                by_sentence[k].append((m.start(), m.end(), str(m.lastgroup)[1:]))
        for k, hits in by_sentence.items():
            lo, hi = bounds[k]
            # each type word reads its body part up to the neighbouring type words
            # ("chest X-ray and CT of the abdomen": the CT is of the abdomen)
            for i, (start, end, tv) in enumerate(hits):
                a = max(lo, start - img.window, hits[i - 1][1] if i else lo)
                b = min(hi, end + img.window)
                if i + 1 < len(hits):
                    b = min(b, hits[i + 1][0])
                self._imaging_hits(img, tv, text[a:b], a, b, mentions, tables, out)

    def _imaging_hits(
        self,
        img: Imaging,
        tv: str,
        window: str,
        start: int,
        end: int,
        mentions: list[Mention],
        tables: PcsTables,
        out: dict[str, Candidate],
    ) -> None:
        words = _WORD.findall(window.lower())
        stems: set[str] = set()
        sides: set[str] = set()
        for w in words:
            stems.update(img.synonyms.get(w, (_stem(w),)))
            if w in _SIDE_WORDS:
                sides.add(_SIDE_WORDS[w])
        found = [p for p in img.parts.get(tv, []) if p.stems <= stems]
        found = [
            p
            for p in found
            if p.side is None or p.side in sides or (p.side == "bilateral" and not sides)
        ]
        if not found:
            return
        # the most specific names: drop one whose words another found name contains
        best = [p for p in found if not any(p.stems < q.stems for q in found)]
        contrast = float(_contrast().search(window) is not None)
        mids = _mention_ids(mentions, start, end)
        for p in best:
            size = float(len(p.stems))
            for prefix in p.prefixes:
                codes = tables.completions(_fixed(prefix))
                feats = {"pcs_imaging": 1.0, "pcs_img_words": size, "pcs_contrast": contrast}
                if len(codes) == 1:
                    self._add(out, codes[0], {**feats, "pcs_single": 1.0, "pcs_score": 0.85}, mids)
                    continue
                self._add(out, prefix, {**feats, "pcs_prefix": 1.0, "pcs_score": 0.8}, mids)
                if prefix + "ZZZ" in codes:
                    self._add(
                        out,
                        prefix + "ZZZ",
                        {**feats, "pcs_nocontrast": 1.0, "pcs_score": 0.6},
                        mids,
                    )


def _mention_ids(mentions: Sequence[Mention], start: int, end: int) -> list[int]:
    return [i for i, m in enumerate(mentions) if m.start < end and m.end > start]
