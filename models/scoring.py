"""The one scoring path: what ``Engine.suggest`` serves and what training and evaluation measure.

    note text -> mentions (``clinicode.nlp``) -> candidates (``models.candidates``) -> features
    (``models.features``) -> ranker (calibrated) -> ranked suggestions with evidence
    -> guidelines layer (``models.guidelines``) -> final order (codes, candidates, suppressed)

Each stage is a method of :class:`ScoringPath` callable on its own (benches time and ablate
them); :meth:`ScoringPath.suggest_many` chains them. The stages over precomputed inputs
(candidates with their feature rows, ranker scores), which training also calls with out-of-fold
note-classifier scores, are in ``models.candidate_rows``.

Two orders of one note's codes are measured (``clinicode evaluate --order``):

* **ranker**: every candidate code by calibrated score (:meth:`ScoringPath.ranker_order`);
* **served**: exactly what a coder sees, ``codes`` then ``candidates`` then ``suppressed``
  (:func:`served_order`).

Importing this module does no I/O.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

from clinicode.deadline import check_deadline
from clinicode.gcpause import gc_paused
from clinicode.models.candidate_rows import evidence_mentions, note_candidates, score_candidates
from clinicode.schema import (
    DIAGNOSIS_SYSTEMS,
    SYSTEMS,
    CodeSuggestion,
    Evidence,
    Mention,
    ModelInfo,
    SuggestResult,
)

if TYPE_CHECKING:
    from clinicode.kb import KnowledgeBase
    from clinicode.models.features import NoteCandidates
    from clinicode.models.pack import ModelPack
    from clinicode.models.types import Candidate, GuidelinesLayer, RuleCoder

T = TypeVar("T")


class MentionExtractor(Protocol):
    """The NLP pipeline as the scoring path uses it (``clinicode.nlp.ClinicalPipeline``)."""

    def extract(self, text: str) -> list[Mention]: ...

    def extract_many(self, texts: Sequence[str]) -> list[list[Mention]]: ...


# Evidence spans listed per code at most (a note repeating one word 20,000 times would otherwise
# list them all under each of its codes); ``ScoringPath(max_evidence=...)`` or the pack's
# ``config["max_evidence_per_code"]`` changes it.
MAX_EVIDENCE_PER_CODE = 20
# Raw-text phrases read at most when the NLP found no mention (a note of unknown words).
MAX_PHRASES = 3000


# -- one note after the ranker ----------------------------------------------------------------
@dataclass
class Scored:
    """One note after the ranker: its mentions, candidates and calibrated scores."""

    text: str
    mentions: list[Mention]  # the NLP's (what the guidelines layer reads)
    evidence: list[Mention]  # what ``Candidate.mention_ids`` index (mentions or phrases)
    candidates: NoteCandidates
    probs: np.ndarray
    limits: set[str] = field(default_factory=set)  # bounds on work that bit (result warnings)

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the note text: part of every suggestion id of this note."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def ranker_order(self) -> list[tuple[str, float]]:
        """``[(system:code, score), ...]`` by calibrated score (ties in candidate order)."""
        order = np.argsort(-self.probs, kind="stable")
        return [(self.candidates.keys[j], float(self.probs[j])) for j in order]


def suggestion_id(text_digest: str, system: str, code: str, model_version: str) -> str:
    raw = f"{text_digest}|{system}|{code}|{model_version}".encode()
    return hashlib.sha256(raw).hexdigest()[:20]


def served_order(result: SuggestResult, systems: Sequence[str] | None = None) -> list[str]:
    """Exactly the order a coder is served: ``codes``, then ``candidates``, then ``suppressed``
    (each as the result lists them), as ``system:code`` keys, first occurrence only."""
    seen: dict[str, None] = {}
    for group in (result.codes, result.candidates, result.suppressed):
        for s in group:
            if systems is None or s.system in systems:
                seen.setdefault(f"{s.system}:{s.code}", None)
    return list(seen)


# -- the path ---------------------------------------------------------------------------------
class ScoringPath:
    """A model pack over a knowledge base, with its NLP pipeline and guidelines layer.

    Thread-safe: the lazily loaded NLP pipeline and layer are built once under a lock.
    ``nlp`` and ``guidelines`` may be given (tests, plug-ins); otherwise the NLP pipeline comes
    from ``clinicode.nlp`` and the layer from ``models.registry`` (``guidelines``/``official``).
    """

    def __init__(
        self,
        pack: ModelPack,
        kb: KnowledgeBase,
        *,
        nlp: MentionExtractor | None = None,
        guidelines: GuidelinesLayer | None = None,
        guidelines_name: str = "official",
        max_evidence: int | None = None,
    ) -> None:
        self.pack = pack
        self.kb = kb
        self.feature_names: list[str] = list(pack.config["feature_names"])
        self.systems: tuple[str, ...] = tuple(pack.config.get("systems", SYSTEMS))
        self._nlp = nlp
        self._nlp_error: str | None = None
        self._layer = guidelines
        self._layer_name = guidelines_name
        self._rule_coders: list[RuleCoder] | None = None
        self._lock = threading.Lock()
        self.max_evidence = max(
            1,
            max_evidence
            if max_evidence is not None
            else int(pack.config.get("max_evidence_per_code", MAX_EVIDENCE_PER_CODE)),
        )

    # -- components -------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.pack.name, version=self.pack.version, threshold=self.pack.threshold
        )

    def _once(self, attr: str, build: Callable[[], T]) -> T:
        with self._lock:
            if getattr(self, attr) is None:
                setattr(self, attr, build())
            value: T = getattr(self, attr)
            return value

    def nlp(self) -> MentionExtractor | None:
        """The NLP pipeline, or None (with a warning on every result) where it is not installed."""
        if self._nlp is None and self._nlp_error is None:
            try:
                from clinicode.nlp import load_pipeline

                self._once("_nlp", lambda: load_pipeline(self.kb))
            except ImportError as exc:  # an optional NLP dependency is missing, not a bug
                self._nlp_error = f"NLP pipeline unavailable ({type(exc).__name__})"
        return self._nlp

    def guidelines(self) -> GuidelinesLayer:
        """The guidelines layer (``models.registry`` kind ``guidelines``)."""
        if self._layer is None:
            from clinicode.models import registry

            layer_cls = registry.get("guidelines", self._layer_name)
            self._once("_layer", lambda: layer_cls(self.kb))
        assert self._layer is not None
        return self._layer

    def rule_coders(self) -> list[RuleCoder]:
        """The rule coders (``models.registry`` kind ``rule_coder``) whose systems the KB holds:
        those named by the pack's ``config["rule_coders"]``, else every registered one."""
        if self._rule_coders is None:
            from clinicode.models import registry

            names = self.pack.config.get("rule_coders", registry.names("rule_coder"))
            loaded = set(self.kb.versions())

            def build() -> list[RuleCoder]:
                coders = [registry.get("rule_coder", n)(self.kb) for n in names]
                return [c for c in coders if loaded.intersection(c.systems)]

            self._once("_rule_coders", build)
        assert self._rule_coders is not None
        return self._rule_coders

    def warm_up(self) -> None:
        """Load the NLP pipeline, the guidelines layer and the rule coders now rather than on
        the first note (the garbage collector paused: all of it lives as long as the path)."""
        with gc_paused():
            self.nlp()
            warm = getattr(self.guidelines(), "warm_up", None)
            if callable(warm):
                warm()
            for coder in self.rule_coders():
                warm_coder = getattr(coder, "warm_up", None)
                if callable(warm_coder):
                    warm_coder()
            self.kb.code_index()
            if self.pack.candidates is not None:
                self.pack.candidates.warm_up()

    def warnings(self) -> list[str]:
        """What every result must say about how it was made (a missing NLP pipeline)."""
        if self._nlp_error is None:
            return []
        return [f"{self._nlp_error}: phrases used instead of mentions"]

    # -- stages -----------------------------------------------------------------------------
    def mentions(self, texts: Sequence[str]) -> tuple[list[list[Mention]], list[str]]:
        """Stage 1: the NLP's mentions of each note, and the warnings for every result."""
        nlp = self.nlp()
        if nlp is None:
            return [[] for _ in texts], self.warnings()
        if len(texts) > 1:
            return nlp.extract_many(list(texts)), []
        return [nlp.extract(t) for t in texts], []

    def mentions_checked(self, texts: Sequence[str]) -> tuple[list[list[Mention]], list[list[str]]]:
        """Stage 1 with each note's own warnings: the path's, plus what the NLP's bounds on work
        per note cut short in it (``NlpConfig.max_mentions`` ...)."""
        nlp = self.nlp()
        checked = getattr(nlp, "extract_checked", None)
        if nlp is None or checked is None:
            mentions, common = self.mentions(texts)
            return mentions, [list(common) for _ in texts]
        pairs = checked(list(texts))
        return [m for m, _ in pairs], [list(w) for _, w in pairs]

    def candidates(
        self, texts: Sequence[str], evidence: Sequence[list[Mention]]
    ) -> list[NoteCandidates]:
        """Stages 2-3: candidate codes with their feature rows."""
        cfg = self.pack.config
        return note_candidates(
            texts,
            evidence,
            doc=self.pack.doc,
            candidates=self.pack.candidates,
            prior=self.pack.prior,
            kb=self.kb,
            systems=self.systems,
            doc_top_n=int(cfg.get("doc_top_n", 60)),
            max_generated=int(cfg.get("max_generated", 120)),
            needed=self.feature_names,
        )

    def rank(self, notes: Sequence[NoteCandidates]) -> list[np.ndarray]:
        """Stage 4: calibrated scores of each note's candidates."""
        return score_candidates(self.pack.ranker, self.feature_names, notes)

    def score(
        self, texts: Sequence[str], mentions: Sequence[list[Mention]] | None = None
    ) -> list[Scored]:
        """Stages 1-4 for a batch of notes (``mentions`` when already extracted)."""
        if mentions is None:
            mentions = self.mentions(texts)[0]
        check_deadline()
        evid = evidence_mentions(texts, mentions)
        limits: list[set[str]] = [set() for _ in texts]
        for i, e in enumerate(evid):
            if len(e) > MAX_PHRASES and not mentions[i]:
                evid[i] = e[:MAX_PHRASES]
                limits[i].add(
                    f"the note gave {len(e)} phrases and no mentions; the first {MAX_PHRASES} "
                    "were read"
                )
        notes = self.candidates(texts, evid)
        check_deadline()
        probs = self.rank(notes)
        return [
            Scored(t, list(m), e, nc, p, lim)
            for t, m, e, nc, p, lim in zip(texts, mentions, evid, notes, probs, limits, strict=True)
        ]

    def ranker_order(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """The ranker's order of each note's codes (no guidelines): ``clinicode evaluate``'s
        ``--order ranker`` figure."""
        return [s.ranker_order() for s in self.score(texts)]

    def suggestions(self, scored: Scored, systems: Sequence[str]) -> list[CodeSuggestion]:
        """Stage 5: ranked suggestions of ``systems`` with their evidence and explanation."""
        idx = self.kb.code_index()
        nc = scored.candidates
        evidence_of: dict[int, Evidence] = {}  # one Evidence per mention, shared (never mutated)
        ranked: list[CodeSuggestion] = []
        cap = self.max_evidence
        for j in np.argsort(-scored.probs, kind="stable"):
            system, code = nc.keys[j].split(":", 1)
            if system not in systems:
                continue
            title = idx.title(system, code) or _partial_title(idx.title, system, code)
            cand = nc.candidates.get(nc.keys[j])
            ids = cand.mention_ids if cand is not None else []
            if len(ids) > cap:
                scored.limits.add(
                    f"codes with more than {cap} evidence spans list the first {cap} "
                    "(max_evidence_per_code)"
                )
            ranked.append(
                CodeSuggestion(
                    suggestion_id=suggestion_id(scored.digest, system, code, self.pack.version),
                    system=system,
                    code=code,
                    title=title if title is not None else f"{code} (not in the loaded code set)",
                    billable=idx.billable.get((system, code), False) if title else False,
                    score=float(min(max(scored.probs[j], 0.0), 1.0)),
                    evidence=_evidence(ids[:cap], scored.evidence, evidence_of),
                    explanation=_explanation(nc.feats[j], cand),
                )
            )
        return ranked

    def apply_guidelines(
        self,
        ranked: list[CodeSuggestion],
        scored: Scored,
        setting: str,
        *,
        benchmark: bool,
        systems: Sequence[str] = SYSTEMS,
    ) -> tuple[list[CodeSuggestion], list[CodeSuggestion], list[CodeSuggestion]]:
        """Stage 6: the guidelines layer decides the diagnosis code set; the rule coders' codes
        of ``systems`` join it, and the ranker's other procedure codes are split at the pack's
        threshold. Changes ``ranked``'s suggestions in place."""
        threshold = self.pack.threshold
        dx = [s for s in ranked if s.system in DIAGNOSIS_SYSTEMS]
        px = [s for s in ranked if s.system not in DIAGNOSIS_SYSTEMS]
        res = self.guidelines().apply(
            dx,
            scored.mentions,
            text=scored.text,
            setting=setting,
            threshold=threshold,
            benchmark=benchmark,
            copy=False,  # ``ranked`` was built for this call only
        )
        codes, cands, suppressed = list(res.codes), list(res.candidates), list(res.suppressed)
        ruled = self.rule_codes(scored, setting, systems)
        for s in ruled:
            s.suggestion_id = suggestion_id(scored.digest, s.system, s.code, self.pack.version)
            codes.append(s)
        taken = {(s.system, s.code) for s in ruled}
        for s in px:
            if (s.system, s.code) in taken:
                continue
            # a code the note documents only in part (a PCS code's first four characters) is
            # never a suggested code: it lists as a candidate for the coder to complete; and
            # ICD-10-PCS is the inpatient facility's code set (outpatient: candidates only)
            chosen = (
                s.score >= threshold
                and not _partial(s.system, s.code)
                and (s.system != "ICD-10-PCS" or setting == "inpatient")
            )
            s.status = "suggested" if chosen else "candidate"
            (codes if chosen else cands).append(s)
        return codes, cands, suppressed

    def rule_codes(
        self, scored: Scored, setting: str, systems: Sequence[str] = SYSTEMS
    ) -> list[CodeSuggestion]:
        """Stage 6b: the rule coders' codes of ``systems`` (procedures, the visit level), each
        with its evidence and path; the first coder to give a code keeps it, and a coder of none
        of ``systems`` is not run. Modifier 25 then goes on an E/M code billed with a same-day
        procedure (``rule_cpt.add_modifier_25``)."""
        from clinicode.models.rule_cpt import add_modifier_25

        wanted = set(systems) - set(DIAGNOSIS_SYSTEMS)
        out: dict[tuple[str, str], CodeSuggestion] = {}
        for coder in self.rule_coders():
            if not wanted.intersection(coder.systems):
                continue
            for s in coder.code(scored.text, scored.mentions, setting=setting):
                if s.system in wanted:
                    out.setdefault((s.system, s.code), s)
        return add_modifier_25(list(out.values()))

    def result(
        self,
        scored: Scored,
        groups: tuple[list[CodeSuggestion], list[CodeSuggestion], list[CodeSuggestion]],
        setting: str,
        top_k: int | None,
    ) -> SuggestResult:
        """Stage 7: the final order (by system, the layer's order within it) and ranks."""
        for group in groups:
            for s in group:
                if not s.suggestion_id:
                    s.suggestion_id = suggestion_id(
                        scored.digest, s.system, s.code, self.pack.version
                    )
        codes, cands, suppressed = (_rank_per_system(g) for g in groups)
        if top_k is not None:
            cands = [s for s in cands if s.rank <= top_k]
        return SuggestResult(
            model=self.info,
            code_sets=self.kb.versions(),
            setting=setting,  # type: ignore[arg-type]
            codes=codes,
            candidates=cands,
            suppressed=suppressed,
            mentions=scored.mentions,
        )

    def suggest_many(
        self,
        texts: Sequence[str],
        setting: str = "outpatient",
        *,
        systems: Sequence[str] = SYSTEMS,
        top_k: int | None = None,
        benchmark: bool = False,
        scored: Sequence[Scored] | None = None,
    ) -> list[SuggestResult]:
        """Every stage for a batch of notes (inputs already validated by the caller);
        ``scored`` when stages 1-4 already ran (evaluation scores both orders from one pass)."""
        note_limits: list[list[str]] = [[] for _ in texts]
        if scored is None:
            mentions, note_limits = self.mentions_checked(texts)
            scored = self.score(texts, mentions)
        out = []
        for sc, limits in zip(scored, note_limits, strict=True):
            check_deadline()
            ranked = self.suggestions(sc, systems)
            groups = self.apply_guidelines(
                ranked, sc, setting, benchmark=benchmark, systems=systems
            )
            result = self.result(sc, groups, setting, top_k)
            result.warnings.extend(self.warnings())
            result.warnings.extend(w for w in limits if w not in result.warnings)
            result.warnings.extend(sorted(sc.limits))
            out.append(result)
        return out


def _partial(system: str, code: str) -> bool:
    return system == "ICD-10-PCS" and len(code) < 7


def _partial_title(
    title_of: Callable[[str, str], str | None], system: str, code: str
) -> str | None:
    """The title of a partial ICD-10-PCS code: its table's, and how much of it is known."""
    if not _partial(system, code):
        return None
    title = title_of(system, code[:3])
    if not title:
        return None
    return f"{title} (first {len(code)} characters; the note documents no more)"


def _evidence(
    ids: Sequence[int], mentions: Sequence[Mention], cache: dict[int, Evidence]
) -> list[Evidence]:
    out = []
    for mid in ids:
        if 0 <= mid < len(mentions):
            ev = cache.get(mid)
            if ev is None:
                m = mentions[mid]
                ev = cache[mid] = Evidence(
                    start=m.start, end=m.end, text=m.text, section=m.section, assertion=m.assertion
                )
            out.append(ev)
    return out


def _explanation(feats: dict[str, float], cand: Candidate | None) -> list[str]:
    out = list(cand.paths) if cand is not None else []
    if feats.get("has_doc"):
        out.append("note classifier: codes of similar labeled notes")
    if feats.get("has_gen"):
        out.append(f"matched in the note ({', '.join(sorted(cand.sources)) if cand else 'terms'})")
    return out


def _rank_per_system(items: list[CodeSuggestion]) -> list[CodeSuggestion]:
    """Order by system (``SYSTEMS`` order), keeping the layer's order within a system; number
    the codes of each system from 1."""
    sys_order = {s: i for i, s in enumerate(SYSTEMS)}
    items = sorted(items, key=lambda s: sys_order.get(s.system, 99))
    counters: dict[str, int] = {}
    for s in items:
        counters[s.system] = counters.get(s.system, 0) + 1
        s.rank = counters[s.system]
    return items
