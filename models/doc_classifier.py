"""Note-level multi-label classifier: which codes does a whole note carry, mention or not.

Word (1-2) and character (3-5, within words) TF-IDF of the note, then two scorers that share one
linear kernel ``K = X_train X^T`` (so the fitted state is small: the training matrix and one
``n_train x n_labels`` matrix, whatever the vocabulary size):

- kernel ridge regression, one closed-form solve for all labels at once (the dual form of a
  ridge-regularised linear classifier per code);
- k nearest training notes, each voting for its codes with weight ``similarity ** power``.

Scores of both are features of the learned ranker (``models.ranker``). Saved as JSON and ``.npy``
/ ``.npz`` under fixed names (no pickle); importing this module does no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FILES = (
    "doc_config.json",
    "doc_vocab.json",
    "doc_idf.npz",
    "doc_train.npz",
    "doc_alpha.npy",
    "doc_labels.npz",
)


def _vectorizers(max_char_features: int, vocab: dict[str, Any] | None = None) -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    word = TfidfVectorizer(
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
        stop_words="english",
        dtype=np.float32,
        vocabulary=None if vocab is None else vocab["word"],
    )
    char = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(3, 5),
        min_df=2,
        sublinear_tf=True,
        max_features=max_char_features,
        dtype=np.float32,
        vocabulary=None if vocab is None else vocab["char"],
    )
    return word, char


class DocClassifier:
    """Kernel ridge + kNN multi-label scorer over note TF-IDF (scikit-learn estimator style).

    ``fit(texts, labels)`` with ``labels`` a list of code keys per note (``"ICD-10-CM:E11.9"``).
    """

    def __init__(
        self,
        alpha: float = 0.1,
        k: int = 30,
        power: float = 3.0,
        max_char_features: int = 150_000,
    ) -> None:
        self.alpha = alpha
        self.k = k
        self.power = power
        self.max_char_features = max_char_features

    # -- fitting -------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[Sequence[str]]) -> DocClassifier:
        import scipy.sparse as sp

        if len(texts) != len(labels):
            raise ValueError("texts and labels differ in length")
        if len(texts) < 2:
            raise ValueError("the note classifier needs at least two labeled notes")
        self.word_, self.char_ = _vectorizers(self.max_char_features)
        self.word_.fit(texts)
        self.char_.fit(texts)
        self.X_ = self._transform(texts)
        self._X_t: Any = None  # caches of the previous fit
        self._Y_dense: np.ndarray | None = None
        self.classes_ = sorted({c for codes in labels for c in codes})
        index = {c: i for i, c in enumerate(self.classes_)}
        rows, cols = [], []
        for i, codes in enumerate(labels):
            for c in set(codes):
                rows.append(i)
                cols.append(index[c])
        self.Y_ = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(len(texts), len(self.classes_)),
        )
        self.prior_ = np.asarray(self.Y_.mean(axis=0)).ravel().astype(np.float32)
        K = (self.X_ @ self.X_.T).toarray().astype(np.float64)
        target = self.Y_.toarray() - self.prior_[None, :]
        self.dual_ = np.linalg.solve(K + self.alpha * np.eye(len(texts)), target).astype(np.float32)
        return self

    def _transform(self, texts: Sequence[str]) -> Any:
        import scipy.sparse as sp
        from sklearn.preprocessing import normalize

        x = sp.hstack([self.word_.transform(texts), self.char_.transform(texts)]).tocsr()
        return normalize(x).astype(np.float32)

    # -- scoring -------------------------------------------------------------------------
    def scores(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """``{"krr": (n, n_labels), "knn": (n, n_labels), "sim_max": (n,)}`` for new notes."""
        self._check()
        kernel = (self._transform(texts) @ self._train_t()).toarray()
        krr = kernel @ self.dual_ + self.prior_[None, :]
        k = min(self.k, kernel.shape[1])
        idx = np.argpartition(-kernel, k - 1, axis=1)[:, :k]
        weights = np.take_along_axis(kernel, idx, axis=1).clip(min=0) ** self.power
        knn = np.zeros_like(krr)
        Y = self._dense_labels()
        for i in range(len(texts)):
            denom = weights[i].sum() or 1.0
            knn[i] = (weights[i] @ Y[idx[i]]) / denom
        return {"krr": krr, "knn": knn, "sim_max": kernel.max(axis=1)}

    def _train_t(self) -> Any:
        """``X_.T`` as CSR, converted once: the product converted it on every call (~4 ms)."""
        xt: Any = getattr(self, "_X_t", None)
        if xt is None or xt.shape != (self.X_.shape[1], self.X_.shape[0]):
            xt = self.X_.T.tocsr()
            self._X_t = xt
        return xt

    def _dense_labels(self) -> np.ndarray:
        dense: np.ndarray | None = getattr(self, "_Y_dense", None)
        if dense is None:
            dense = self.Y_.toarray()
            self._Y_dense = dense
        return dense

    def top(self, texts: Sequence[str], n: int = 100) -> list[list[tuple[str, float, float]]]:
        """Top ``n`` labels per note by KRR + kNN: ``[(code_key, krr, knn), ...]``."""
        s = self.scores(texts)
        combined = s["krr"] + s["knn"]
        out = []
        for i in range(len(texts)):
            order = np.argsort(-combined[i])[:n]
            out.append(
                [(self.classes_[j], float(s["krr"][i, j]), float(s["knn"][i, j])) for j in order]
            )
        return out

    def _check(self) -> None:
        if not hasattr(self, "dual_"):
            raise RuntimeError("DocClassifier used before fit() or load()")

    # -- persistence ---------------------------------------------------------------------
    def save(self, directory: Path | str) -> list[Path]:
        import scipy.sparse as sp

        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        config = {
            "alpha": self.alpha,
            "k": self.k,
            "power": self.power,
            "max_char_features": self.max_char_features,
            "classes": self.classes_,
        }
        (d / "doc_config.json").write_text(json.dumps(config), encoding="utf-8")
        vocab = {
            "word": {t: int(i) for t, i in self.word_.vocabulary_.items()},
            "char": {t: int(i) for t, i in self.char_.vocabulary_.items()},
        }
        (d / "doc_vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        np.savez(d / "doc_idf.npz", word=self.word_.idf_, char=self.char_.idf_)
        sp.save_npz(d / "doc_train.npz", self.X_)
        np.save(d / "doc_alpha.npy", self.dual_)
        sp.save_npz(d / "doc_labels.npz", self.Y_)
        return [d / f for f in FILES]

    @classmethod
    def load(cls, directory: Path | str) -> DocClassifier:
        import scipy.sparse as sp

        d = Path(directory)
        config = json.loads((d / "doc_config.json").read_text(encoding="utf-8"))
        model = cls(
            alpha=config["alpha"],
            k=config["k"],
            power=config["power"],
            max_char_features=config["max_char_features"],
        )
        vocab = json.loads((d / "doc_vocab.json").read_text(encoding="utf-8"))
        model.word_, model.char_ = _vectorizers(model.max_char_features, vocab)
        with np.load(d / "doc_idf.npz", allow_pickle=False) as z:
            model.word_.idf_ = z["word"]
            model.char_.idf_ = z["char"]
        model.X_ = sp.load_npz(d / "doc_train.npz").tocsr()
        model.dual_ = np.load(d / "doc_alpha.npy", allow_pickle=False)
        model.Y_ = sp.load_npz(d / "doc_labels.npz").tocsr()
        model.classes_ = list(config["classes"])
        model.prior_ = np.asarray(model.Y_.mean(axis=0)).ravel().astype(np.float32)
        return model
