"""The engine: note text -> mentions -> candidates -> learned ranker -> guidelines -> result.

``clinicode.load(model_dir=None)`` returns an :class:`Engine` over a verified model pack
(``models.pack``); ``Engine.suggest(text)`` returns a :class:`clinicode.schema.SuggestResult`,
the same document ``clinicode suggest`` prints and ``POST /v1/suggest`` returns.

The scoring functions below (:func:`note_candidates`, :func:`score_candidates`) are shared with
``training/``, so what is evaluated is exactly what is served. Importing this module does no I/O.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from clinicode.errors import ClinicodeError, InputError
from clinicode.schema import (
    DIAGNOSIS_SYSTEMS,
    SYSTEMS,
    CodeSuggestion,
    Evidence,
    Mention,
    ModelInfo,
    SuggestResult,
)

SUPPRESS_ASSERTIONS = {
    "negated": "negated in the note",
    "family": "family history, not the patient's condition",
    "hypothetical": "hypothetical or planned, not documented as present",
}


@dataclass
class KBIndex:
    """Title and billable flag of every code of the loaded systems (read once per KB)."""

    titles: dict[tuple[str, str], str]
    billable: dict[tuple[str, str], bool]

    def title(self, system: str, code: str) -> str | None:
        return self.titles.get((system, code))

    def info(self, system: str, code: str) -> tuple[bool, bool] | None:
        b = self.billable.get((system, code))
        return None if b is None else (True, b)


# The engine a forked batch worker inherits (set in the parent just before its pool forks).
_FORK_ENGINE: Engine | None = None


def _worker_init() -> None:
    """Runs once in each forked batch worker: one BLAS/torch thread (the workers already use
    the cores) and the worker's own SQLite connections."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if _FORK_ENGINE is not None:
        _FORK_ENGINE.kb.after_fork()


def _worker_suggest(job: tuple[list[str], str, dict[str, Any]]) -> list[SuggestResult]:
    texts, setting, kwargs = job
    assert _FORK_ENGINE is not None, "batch worker started without an engine"
    return _FORK_ENGINE.suggest_many(texts, setting, workers=1, **kwargs)


_kb_index_lock = threading.Lock()
_kb_index_cache: dict[int, KBIndex] = {}


def kb_index(kb: Any) -> KBIndex:
    with _kb_index_lock:
        hit = _kb_index_cache.get(id(kb))
        if hit is not None:
            return hit
        titles: dict[tuple[str, str], str] = {}
        billable: dict[tuple[str, str], bool] = {}
        for info in kb.systems():
            for rec in kb.iter_codes(info.system):
                titles[(rec.system, rec.code)] = rec.title
                billable[(rec.system, rec.code)] = rec.billable
        idx = KBIndex(titles, billable)
        _kb_index_cache[id(kb)] = idx
        return idx


# --------------------------------------------------------------------------------------
# shared scoring path (engine and training)
# --------------------------------------------------------------------------------------
def phrase_fallback(text: str) -> list[Mention]:
    from clinicode.models.candidates import phrase_mentions

    return phrase_mentions(text)


def note_candidates(
    texts: Sequence[str],
    mentions: Sequence[list[Mention]],
    *,
    doc: Any,
    candidates: Any,
    prior: dict[str, float],
    kb: Any,
    systems: Sequence[str],
    doc_top_n: int = 60,
    max_generated: int = 120,
    doc_top: Sequence[Sequence[tuple[str, float, float]]] | None = None,
    doc_sims: Sequence[float] | None = None,
    generated: Sequence[Sequence[Any]] | None = None,
) -> list[Any]:
    """Feature dicts of every candidate code of each note (``models.features.NoteCandidates``).

    ``doc_top``/``doc_sims``/``generated`` may be given precomputed (training uses out-of-fold
    note-classifier scores); otherwise they come from ``doc`` and ``candidates``.
    """
    from clinicode.models.features import category_scores, collect

    n = len(texts)
    if doc_top is None:
        if doc is not None:
            s = doc.scores(list(texts))
            combined = s["krr"] + s["knn"]
            doc_top, doc_sims = [], []
            for i in range(n):
                order = np.argsort(-combined[i])[:doc_top_n]
                doc_top.append(
                    [(doc.classes_[j], float(s["krr"][i, j]), float(s["knn"][i, j])) for j in order]
                )
                doc_sims.append(float(s["sim_max"][i]))
        else:
            doc_top, doc_sims = [[] for _ in range(n)], [0.0] * n
    if generated is None:
        if candidates is not None:
            generated = [
                candidates.generate(t, list(m), max_candidates=max_generated)
                for t, m in zip(texts, mentions, strict=True)
            ]
        else:
            generated = [[] for _ in range(n)]
    idx = kb_index(kb)
    spans = [
        [(m.start, m.end) for m in candidates.mentions_for(t, list(ms))]
        if candidates is not None
        else []
        for t, ms in zip(texts, mentions, strict=True)
    ]
    out = []
    for i in range(n):
        top = list(doc_top[i])
        out.append(
            collect(
                top,
                category_scores(top),
                float(doc_sims[i]) if doc_sims is not None else 0.0,
                generated[i],
                prior=prior,
                kb_info=idx.info,
                systems=systems,
                note_text=texts[i],
                title_of=idx.title,
                mention_spans=spans[i],
            )
        )
    return out


def score_candidates(
    ranker: Any, feature_names: Sequence[str], notes: Sequence[Any]
) -> list[np.ndarray]:
    """Calibrated probabilities for each note's candidate keys (one array per note)."""
    from clinicode.models.features import vectorize

    rows = [f for nc in notes for f in nc.feats]
    if not rows:
        return [np.zeros(0) for _ in notes]
    probs = ranker.predict_proba(vectorize(rows, feature_names))[:, 1]
    out, pos = [], 0
    for nc in notes:
        out.append(probs[pos : pos + len(nc.keys)])
        pos += len(nc.keys)
    return out


# --------------------------------------------------------------------------------------
# engine
# --------------------------------------------------------------------------------------
def _suggestion_id(text_digest: str, system: str, code: str, model_version: str) -> str:
    raw = f"{text_digest}|{system}|{code}|{model_version}".encode()
    return hashlib.sha256(raw).hexdigest()[:20]


class Engine:
    """A loaded model pack with its NLP pipeline and code sets. Thread-safe for ``suggest``."""

    def __init__(self, pack: Any, kb: Any, *, pack_dir: Path | None = None) -> None:
        self.pack = pack
        self.kb = kb
        self.pack_dir = pack_dir
        self._nlp: Any = None
        self._nlp_error: str | None = None
        self._guidelines: Any = None
        self._lock = threading.Lock()
        self._pool: Any = None
        self._pool_size = 0
        self.feature_names: list[str] = list(pack.config["feature_names"])
        self.systems: tuple[str, ...] = tuple(pack.config.get("systems", SYSTEMS))

    # -- contract ------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.pack.name, version=self.pack.version, threshold=self.pack.threshold
        )

    @property
    def code_sets(self) -> dict[str, str]:
        versions: dict[str, str] = self.kb.versions()
        return versions

    def warm_up(self) -> None:
        """Load the NLP pipeline and the guideline layer now rather than on the first note."""
        self._pipeline()
        self._layer()

    def suggest(
        self,
        text: str,
        setting: str = "outpatient",
        *,
        systems: Sequence[str] | None = None,
        top_k: int | None = None,
        note_type: str | None = None,
        benchmark: bool = False,
    ) -> SuggestResult:
        return self.suggest_many(
            [text], setting, systems=systems, top_k=top_k, note_type=note_type, benchmark=benchmark
        )[0]

    def suggest_many(
        self,
        texts: Sequence[str],
        setting: str = "outpatient",
        *,
        systems: Sequence[str] | None = None,
        top_k: int | None = None,
        note_type: str | None = None,
        benchmark: bool = False,
        workers: int = 1,
    ) -> list[SuggestResult]:
        """Suggestions for a batch of notes (mentions and note classifier run batched).

        ``workers`` > 1 spreads a batch over that many forked worker processes (POSIX only),
        each holding a copy-on-write view of this engine: for offline batches on several cores.
        The pool is kept for later calls; :meth:`close` ends it. Results are identical.
        """
        t0 = time.perf_counter()
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise InputError("the note text is empty")
        if setting not in ("inpatient", "outpatient"):
            raise InputError(f"setting must be inpatient or outpatient, not {setting!r}")
        wanted = tuple(systems) if systems else SYSTEMS
        unknown = [s for s in wanted if s not in SYSTEMS]
        if unknown:
            raise InputError(
                f"unknown code system {unknown[0]!r}; choose from {', '.join(SYSTEMS)}"
            )
        if top_k is not None and top_k < 1:
            raise InputError("top_k must be at least 1")
        if workers < 1:
            raise InputError("workers must be at least 1")
        if workers > 1 and len(texts) > 1:
            kwargs = {
                "systems": systems,
                "top_k": top_k,
                "note_type": note_type,
                "benchmark": benchmark,
            }
            return self._suggest_parallel(texts, setting, workers, kwargs)
        mentions, warnings = self._mentions(texts)
        per_note = self._score(texts, mentions)
        out = []
        for text, ments, (keys, probs, nc, evid_mentions) in zip(
            texts, mentions, per_note, strict=True
        ):
            result = self._result(
                text, ments, keys, probs, nc, evid_mentions, setting, wanted, top_k, benchmark
            )
            result.warnings.extend(warnings)
            out.append(result)
        elapsed = (time.perf_counter() - t0) * 1000 / max(len(texts), 1)
        for r in out:
            r.elapsed_ms = round(elapsed, 2)
        return out

    def _suggest_parallel(
        self,
        texts: list[str],
        setting: str,
        workers: int,
        kwargs: dict[str, Any],
    ) -> list[SuggestResult]:
        import multiprocessing as mp

        global _FORK_ENGINE
        if "fork" not in mp.get_all_start_methods():
            raise InputError("workers > 1 needs the fork start method (Linux or macOS)")
        with self._lock:
            if self._pool is None or self._pool_size != workers:
                if self._pool is not None:
                    self._pool.terminate()
                self.warm_up()  # the workers inherit the loaded NLP pipeline and layer
                _FORK_ENGINE = self
                self._pool = mp.get_context("fork").Pool(workers, initializer=_worker_init)
                self._pool_size = workers
            pool = self._pool
        size = max(1, -(-len(texts) // (workers * 2)))  # two chunks per worker, in order
        jobs = [(texts[i : i + size], setting, kwargs) for i in range(0, len(texts), size)]
        return [r for chunk in pool.map(_worker_suggest, jobs) for r in chunk]

    def close(self) -> None:
        """End the batch worker processes, if any were started."""
        with self._lock:
            if self._pool is not None:
                self._pool.terminate()
                self._pool.join()
                self._pool = None
                self._pool_size = 0

    # -- stages --------------------------------------------------------------------------
    def _pipeline(self) -> Any:
        if self._nlp is None and self._nlp_error is None:
            with self._lock:
                if self._nlp is None and self._nlp_error is None:
                    try:
                        from clinicode.nlp import load_pipeline

                        self._nlp = load_pipeline(self.kb)
                    except (ImportError, AttributeError) as exc:
                        self._nlp_error = f"NLP pipeline unavailable ({type(exc).__name__})"
        return self._nlp

    def _layer(self) -> Any:
        if self._guidelines is None:
            from clinicode.models import registry

            try:
                layer_cls = registry.get("guidelines", "official")
            except ImportError:
                return None
            with self._lock:
                if self._guidelines is None:
                    self._guidelines = layer_cls(self.kb)
        return self._guidelines

    def _mentions(self, texts: list[str]) -> tuple[list[list[Mention]], list[str]]:
        nlp = self._pipeline()
        if nlp is None:
            return [[] for _ in texts], [f"{self._nlp_error}: phrases used instead of mentions"]
        if len(texts) > 1 and hasattr(nlp, "extract_many"):
            return nlp.extract_many(texts), []
        return [nlp.extract(t) for t in texts], []

    def _score(
        self, texts: list[str], mentions: list[list[Mention]]
    ) -> list[tuple[list[str], np.ndarray, Any, list[Mention]]]:
        cfg = self.pack.config
        evid = [m if m else phrase_fallback(t) for t, m in zip(texts, mentions, strict=True)]
        notes = note_candidates(
            texts,
            evid,
            doc=self.pack.doc,
            candidates=self.pack.candidates,
            prior=self.pack.prior,
            kb=self.kb,
            systems=self.systems,
            doc_top_n=int(cfg.get("doc_top_n", 60)),
            max_generated=int(cfg.get("max_generated", 120)),
        )
        probs = score_candidates(self.pack.ranker, self.feature_names, notes)
        return [(nc.keys, p, nc, e) for nc, p, e in zip(notes, probs, evid, strict=True)]

    def _result(
        self,
        text: str,
        mentions: list[Mention],
        keys: list[str],
        probs: np.ndarray,
        nc: Any,
        evid_mentions: list[Mention],
        setting: str,
        systems: tuple[str, ...],
        top_k: int | None,
        benchmark: bool,
    ) -> SuggestResult:
        idx = kb_index(self.kb)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        threshold = self.pack.threshold
        order = np.argsort(-probs, kind="stable")
        ranked: list[CodeSuggestion] = []
        # one Evidence per mention, shared by the codes it supports (Evidence is never mutated)
        evidence_of: dict[int, Evidence] = {}
        for j in order:
            key = keys[j]
            system, code = key.split(":", 1)
            if system not in systems:
                continue
            title = idx.titles.get((system, code))
            cand = nc.candidates.get(key)
            evidence = []
            if cand is not None:
                for mid in cand.mention_ids:
                    if 0 <= mid < len(evid_mentions):
                        ev = evidence_of.get(mid)
                        if ev is None:
                            m = evid_mentions[mid]
                            ev = evidence_of[mid] = Evidence(
                                start=m.start,
                                end=m.end,
                                text=m.text,
                                section=m.section,
                                assertion=m.assertion,
                            )
                        evidence.append(ev)
            explanation = []
            f = nc.feats[j]
            if f.get("has_doc"):
                explanation.append("note classifier: codes of similar labeled notes")
            if f.get("has_gen"):
                explanation.append(
                    f"matched in the note ({', '.join(sorted(cand.sources)) if cand else 'terms'})"
                )
            ranked.append(
                CodeSuggestion(
                    suggestion_id=_suggestion_id(digest, system, code, self.pack.version),
                    system=system,
                    code=code,
                    title=title if title is not None else f"{code} (not in the loaded code set)",
                    billable=idx.billable.get((system, code), False) if title else False,
                    score=float(min(max(probs[j], 0.0), 1.0)),
                    evidence=evidence,
                    explanation=explanation,
                )
            )
        layer = self._layer()
        if layer is not None:
            dx = [s for s in ranked if s.system in DIAGNOSIS_SYSTEMS]
            px = [s for s in ranked if s.system not in DIAGNOSIS_SYSTEMS]
            res = layer.apply(
                dx,
                mentions,
                text=text,
                setting=setting,
                threshold=threshold,
                benchmark=benchmark,
                copy=False,  # ``ranked`` was built for this call only
            )
            codes, cands, suppressed = list(res.codes), list(res.candidates), list(res.suppressed)
            for s in px:
                if s.score >= threshold:
                    s.status = "suggested"
                    codes.append(s)
                else:
                    s.status = "candidate"
                    cands.append(s)
        else:
            codes, cands, suppressed = self._split(ranked, threshold, benchmark)
        for group in (codes, cands, suppressed):
            for s in group:
                if not s.suggestion_id:
                    s.suggestion_id = _suggestion_id(digest, s.system, s.code, self.pack.version)
        codes = _rank_per_system(codes, keep_order=layer is not None)
        cands = _rank_per_system(cands, keep_order=layer is not None)
        suppressed = _rank_per_system(suppressed, keep_order=layer is not None)
        if top_k is not None:
            cands = _top_per_system(cands, top_k)
        return SuggestResult(
            model=self.info,
            code_sets=self.code_sets,
            setting=setting,  # type: ignore[arg-type]
            codes=codes,
            candidates=cands,
            suppressed=suppressed,
            mentions=mentions,
        )

    @staticmethod
    def _split(
        ranked: list[CodeSuggestion], threshold: float, benchmark: bool
    ) -> tuple[list[CodeSuggestion], list[CodeSuggestion], list[CodeSuggestion]]:
        """Threshold split used when no guidelines layer is installed."""
        codes, cands, suppressed = [], [], []
        for s in ranked:
            assertions = {e.assertion for e in s.evidence}
            bad = assertions and all(a in SUPPRESS_ASSERTIONS for a in assertions)
            if bad:
                reason = SUPPRESS_ASSERTIONS[sorted(assertions)[0]]
                s.status, s.reason = "suppressed", reason
                if benchmark:
                    s.score *= 0.5
                    cands.append(s)
                else:
                    suppressed.append(s)
            elif s.score >= threshold and (s.billable or s.system not in DIAGNOSIS_SYSTEMS):
                s.status = "suggested"
                codes.append(s)
            else:
                s.status = "candidate"
                cands.append(s)
        if benchmark:
            cands.sort(key=lambda s: -s.score)
        return codes, cands, suppressed


def _rank_per_system(items: list[CodeSuggestion], *, keep_order: bool) -> list[CodeSuggestion]:
    """Order by system (SYSTEMS order) then score (or the layer's order); rank within system."""
    sys_order = {s: i for i, s in enumerate(SYSTEMS)}
    if keep_order:
        items = sorted(items, key=lambda s: sys_order.get(s.system, 99))
    else:
        items = sorted(items, key=lambda s: (sys_order.get(s.system, 99), -s.score))
    counters: dict[str, int] = {}
    for s in items:
        counters[s.system] = counters.get(s.system, 0) + 1
        s.rank = counters[s.system]
    return items


def _top_per_system(items: list[CodeSuggestion], k: int) -> list[CodeSuggestion]:
    return [s for s in items if s.rank <= k]


# --------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------
def _resolve_dir(model_dir: Any) -> Path:
    from clinicode.settings import get_settings

    if model_dir is not None:
        return Path(model_dir).expanduser()
    return get_settings().default_pack_dir


@lru_cache(maxsize=4)
def _load_cached(path: str, kb_path: str | None) -> Engine:
    from clinicode.kb import open_kb
    from clinicode.models import pack as pack_mod

    kb = open_kb(Path(kb_path) if kb_path else None)
    p = Path(path)
    if not (p / pack_mod.MANIFEST).is_file():
        raise ClinicodeError(
            f"no model pack at {p}; run `clinicode setup` (or `make install`) to build the "
            "default pack, or pass --model DIR"
        )
    return Engine(pack_mod.load(p, kb=kb), kb, pack_dir=p)


def load(model_dir: Any = None, *, kb_path: Any = None, cache: bool = True) -> Engine:
    """An :class:`Engine` for the pack in ``model_dir`` (default: the settings' default pack)."""
    path = _resolve_dir(model_dir).resolve()
    kb = str(Path(kb_path).resolve()) if kb_path is not None else None
    if cache:
        return _load_cached(str(path), kb)
    _load_cached.cache_clear()
    return _load_cached(str(path), kb)
