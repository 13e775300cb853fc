"""Lexical candidates: character 3-gram TF-IDF nearest neighbours over every KB term.

The scikit-learn ``TfidfVectorizer`` (``char_wb`` 3-grams, sublinear tf, as scispaCy's
candidate generator uses) is fitted on the unique normalised KB terms; the L2-normalised term
matrix is kept transposed (n-grams x terms, CSR) so one sparse product scores every mention of
a note against every term at once. Saved as ``lexical_vocab.json``, ``lexical_idf.npy``,
``lexical_matrix.npz`` and the term table (no pickle).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from clinicode.models.candidates import (
    CandidatesError,
    TermTable,
    _require,
    finish_candidates,
    load_config,
    record_hit,
    save_config,
)
from clinicode.models.ngrams import NgramVocabulary, normalize_rows_l2
from clinicode.models.phrases import query_strings
from clinicode.models.types import Candidate
from clinicode.schema import Mention

# distinct phrases whose search hits a lexical generator remembers (at most ~12 MB)
_MAX_CACHED_QUERIES = 10_000
_PREFIX = "lexical"


class LexicalGenerator:
    """Character n-gram TF-IDF cosine neighbours of each mention among the KB terms."""

    name = "lexical"
    uses_seeds = False
    PARAMS = (
        "top_k",
        "min_score",
        "ngram_range",
        "sources",
        "collapse_seventh",
        "max_df",
        "shortlist",
    )  # hyperparameters, saved and restored by save_config / load_config

    def __init__(
        self,
        *,
        top_k: int = 10,
        min_score: float = 0.35,
        ngram_range: tuple[int, int] = (3, 3),
        sources: Sequence[str] | None = None,
        collapse_seventh: bool = True,
        max_df: int = 1500,
        shortlist: int = 64,
    ) -> None:
        self.top_k = top_k
        self.min_score = min_score
        self.ngram_range = tuple(ngram_range)
        self.sources = list(sources) if sources is not None else None
        self.collapse_seventh = collapse_seventh
        self.max_df = max_df
        self.shortlist = shortlist

    # -- fitting -----------------------------------------------------------------------
    def _vectorizer(self, vocabulary: dict[str, int] | None = None) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=self.ngram_range,
            lowercase=False,  # texts are normalised already
            sublinear_tf=True,
            dtype=np.float32,
            vocabulary=vocabulary,
        )

    def fit(
        self, kb: Any, systems: Sequence[str] = ("ICD-10-CM",), *, progress: bool = False
    ) -> LexicalGenerator:
        self.systems_ = list(systems)
        self.terms_ = TermTable.from_kb(
            kb, systems, sources=self.sources, collapse_seventh=self.collapse_seventh
        )
        self.versions_ = {s: v for s, v in kb.versions().items() if s in systems}
        vec = self._vectorizer()
        matrix = vec.fit_transform(self.terms_.texts)
        self.vectorizer_ = vec
        self._set_matrix(sp.csr_matrix(matrix.T, dtype=np.float32))
        return self

    def _set_matrix(self, matrix_t: sp.csr_matrix) -> None:
        self.matrix_t_ = matrix_t  # n-grams x terms
        self.matrix_ = matrix_t.T.tocsr()  # terms x n-grams
        self.df_ = np.diff(matrix_t.indptr)
        # query -> search hits, derived from the matrix (so reset with it): notes name the same
        # conditions again and again (of 100 CodiEsp dev notes' distinct phrases, 61 % had been
        # searched for an earlier note); bounded, emptied when full
        self._hits: dict[str, list[tuple[int, float]]] = {}
        self._analyze: Any = None  # the vectorizer's analyser, built on first use

    # -- generation --------------------------------------------------------------------
    def search(
        self, queries: Sequence[str], top_k: int | None = None
    ) -> list[list[tuple[int, float]]]:
        """For each query, the best ``(term_row, cosine)`` pairs, best first.

        Two stages for speed: the query's rarer n-grams (document frequency at most
        ``max_df``) shortlist ``shortlist`` terms with one sparse product over the note, then
        the shortlisted terms get their exact cosine with the full query vector.
        """
        k = top_k or self.top_k
        if not queries:
            return []
        q = self._query_matrix(list(queries))
        pruned = q.copy()
        common = self.df_[pruned.indices] > self.max_df
        counts = np.diff(pruned.indptr)
        row_of = np.repeat(np.arange(len(counts)), counts)
        kept_per_row = np.bincount(row_of[~common], minlength=len(counts))
        keep_all_rows = np.repeat(kept_per_row == 0, counts)  # only common n-grams: keep them
        pruned.data = np.where(common & ~keep_all_rows, 0.0, pruned.data).astype(np.float32)
        pruned.eliminate_zeros()
        partial = (pruned @ self.matrix_t_).tocsr()
        n_short = max(self.shortlist, k)
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        for i in range(partial.shape[0]):
            lo, hi = partial.indptr[i], partial.indptr[i + 1]
            idx = partial.indices[lo:hi]
            if hi - lo > n_short:
                idx = idx[np.argpartition(-partial.data[lo:hi], n_short)[:n_short]]
            rows.append(np.full(len(idx), i, dtype=np.int64))
            cols.append(idx)
        row_ids = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        term_ids = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        # exact cosines of every shortlisted (query, term) pair in one vectorised product
        exact = np.asarray(self.matrix_[term_ids].multiply(q[row_ids]).sum(axis=1)).ravel()
        out: list[list[tuple[int, float]]] = []
        bounds = np.searchsorted(row_ids, np.arange(len(queries) + 1))
        for i in range(len(queries)):
            lo, hi = bounds[i], bounds[i + 1]
            sc = exact[lo:hi]
            order = np.argsort(-sc, kind="stable")[:k]
            # compared in float64, as a float32 scalar is against a Python float (an array
            # would round the bound to float32 first)
            order = order[sc[order].astype(np.float64) >= self.min_score]
            out.append(list(zip(term_ids[lo + order].tolist(), sc[order].tolist(), strict=True)))
        return out

    def _query_matrix(self, queries: list[str]) -> sp.csr_matrix:
        """``self.vectorizer_.transform(queries)`` (rows with sorted indices) without the
        per-call checks of scikit-learn, which cost ten times the arithmetic on a note's
        phrases: the same analyser and counts, then the same float32 steps (sublinear tf,
        idf, l2 norm) as ``TfidfTransformer.transform``."""
        vec = self.vectorizer_
        analyze = self._analyze
        if analyze is None:
            analyze = self._analyze = vec.build_analyzer()
        vocab = vec.vocabulary_
        indices: list[int] = []
        counts: list[int] = []
        indptr = [0]
        for q in queries:
            found: dict[int, int] = {}
            for gram in analyze(q):
                j = vocab.get(gram)
                if j is not None:
                    found[j] = found.get(j, 0) + 1
            for j in sorted(found):
                indices.append(j)
                counts.append(found[j])
            indptr.append(len(indices))
        X = sp.csr_matrix(
            (
                np.asarray(counts, dtype=np.float32),
                np.asarray(indices, dtype=np.int32),
                np.asarray(indptr, dtype=np.int32),
            ),
            shape=(len(queries), len(vocab)),
        )
        np.log(X.data, X.data)  # sublinear tf
        X.data += 1.0
        X.data *= vec.idf_[X.indices]
        normalize_rows_l2(X)
        return X

    def generate(
        self, text: str, mentions: list[Mention], *, seeds: Sequence[Candidate] = ()
    ) -> list[Candidate]:
        self._check_fitted()
        queries, mentions = query_strings(text, mentions)
        found = self._search_cached(list(dict.fromkeys(queries)))  # each phrase once
        hits = [found[q] for q in queries]
        by_code: dict[str, Candidate] = {}
        seen: dict[str, set[int]] = {}
        for mid, (query, row_hits) in enumerate(zip(queries, hits, strict=True)):
            for rank, (row, score) in enumerate(row_hits):
                term = self.terms_.texts[row]
                for key, source, exact_form in self.terms_.entries(row):
                    f = record_hit(by_code, key, self.name, "lex", mid, rank, score, seen)
                    if query == term:
                        f["exact"] = 1.0
                        if exact_form:
                            f["exact_as_written"] = 1.0
                    f[f"lex_src_{source}"] = max(f.get(f"lex_src_{source}", 0.0), score)
        return finish_candidates(by_code, "lex")

    def _search_cached(self, queries: list[str]) -> dict[str, list[tuple[int, float]]]:
        """:meth:`search` of each query at the default ``top_k``, remembered per query."""
        cache = self._hits
        found = {q: hits for q in queries if (hits := cache.get(q)) is not None}
        missing = [q for q in queries if q not in found]
        if missing:
            new = dict(zip(missing, self.search(missing), strict=True))
            found.update(new)
            if len(cache) + len(new) > _MAX_CACHED_QUERIES:
                cache.clear()
            if len(new) <= _MAX_CACHED_QUERIES:
                cache.update(new)
        return found

    def _check_fitted(self) -> None:
        if not hasattr(self, "matrix_t_"):
            raise CandidatesError("lexical candidate generator used before fit() or load()")

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: Path | str) -> None:
        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.terms_.save(d, _PREFIX)
        vocab = {k: int(v) for k, v in self.vectorizer_.vocabulary_.items()}
        save_config(self, d, _PREFIX)
        (d / f"{_PREFIX}_vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        np.save(d / f"{_PREFIX}_idf.npy", self.vectorizer_.idf_.astype(np.float32))
        sp.save_npz(d / f"{_PREFIX}_matrix.npz", self.matrix_t_, compressed=False)

    @classmethod
    def load(cls, directory: Path | str, *, kb: Any = None) -> LexicalGenerator:
        d = Path(directory)
        gen, _ = load_config(cls, d, _PREFIX)
        gen.terms_ = TermTable.load(d, _PREFIX)
        vocab = json.loads(_require(d / f"{_PREFIX}_vocab.json").read_text(encoding="utf-8"))
        idf = np.load(_require(d / f"{_PREFIX}_idf.npy"), allow_pickle=False)
        # the vectorizer's query side only: a loaded pack needs no scikit-learn (start-up time)
        gen.vectorizer_ = NgramVocabulary(vocab, idf, gen.ngram_range)
        gen._set_matrix(sp.load_npz(_require(d / f"{_PREFIX}_matrix.npz")).tocsr())
        if gen.matrix_t_.shape != (len(vocab), len(gen.terms_.texts)):
            raise CandidatesError(f"{d}: lexical matrix does not match its vocabulary and terms")
        return gen
