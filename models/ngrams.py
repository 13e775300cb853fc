"""The lexical generator's query side of scikit-learn's ``TfidfVectorizer``, without scikit-learn.

The lexical generator is fitted with ``TfidfVectorizer(analyzer="char_wb", lowercase=False,
sublinear_tf=True, dtype=float32)``. To answer queries it needs only the fitted vocabulary and
idf, the ``char_wb`` analyser and the row L2 normalisation. Importing scikit-learn for those
costs a loaded engine seconds of start-up (it pulls in SciPy's statistics and pandas), so a
loaded pack uses :class:`NgramVocabulary`, which makes the same n-grams and the same float32
values bit for bit (tests compare it with the vectorizer's ``transform``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from functools import partial

import numpy as np
import scipy.sparse as sp

_WHITE_SPACES = re.compile(r"\s\s+")  # as scikit-learn's ``_VectorizerMixin._white_spaces``


def char_wb_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """Character n-grams inside word boundaries, words padded with a space: scikit-learn's
    ``char_wb`` analyser for ``lowercase=False`` and no accent stripping (same order, so the
    same counts)."""
    text = _WHITE_SPACES.sub(" ", text)
    min_n, max_n = ngram_range
    out: list[str] = []
    for word in text.split():
        w = f" {word} "
        w_len = len(w)
        for n in range(min_n, max_n + 1):
            offset = 0
            out.append(w[offset : offset + n])
            while offset + n < w_len:
                offset += 1
                out.append(w[offset : offset + n])
            if offset == 0:  # a word shorter than n counts once
                break
    return out


class NgramVocabulary:
    """A fitted ``char_wb`` TF-IDF vectorizer's vocabulary, idf and analyser (what
    ``LexicalGenerator._query_matrix`` and ``save`` read of ``vectorizer_``)."""

    def __init__(
        self, vocabulary: dict[str, int], idf: np.ndarray, ngram_range: tuple[int, int]
    ) -> None:
        self.vocabulary_ = vocabulary
        self.idf_ = idf
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))

    def build_analyzer(self) -> Callable[[str], list[str]]:
        return partial(char_wb_ngrams, ngram_range=self.ngram_range)


def normalize_rows_l2(X: sp.csr_matrix) -> None:
    """Scale each row of a float32 CSR matrix to unit L2 norm in place, as scikit-learn's
    ``inplace_csr_row_normalize_l2`` does: the squares (float32) summed in a double in row
    order, rows of zeros left alone, each value divided by the root in double precision."""
    data = X.data
    if not len(data):
        return
    squares = (data * data).tolist()  # float32 products, as doubles
    bounds = X.indptr.tolist()
    sums = []
    for lo, hi in itertools.pairwise(bounds):
        total = 0.0
        for v in squares[lo:hi]:  # in row order, in a double
            total += v
        sums.append(total)
    roots = np.sqrt(np.asarray(sums, dtype=np.float64))  # correctly rounded, as C's sqrt
    roots[roots == 0.0] = 1.0  # a row of zeros stays as it is
    data[:] = (data.astype(np.float64) / np.repeat(roots, np.diff(X.indptr))).astype(data.dtype)
