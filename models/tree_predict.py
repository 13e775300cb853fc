"""Raw scores of a fitted scikit-learn ``HistGradientBoostingClassifier``, all trees at once.

scikit-learn walks the trees one by one, each through its own compiled call; on the hundred
or so candidate rows of one note that is a few milliseconds of per-call overhead, most of a
note's ranking time. :class:`FlatTrees` lays every tree's nodes end to end and walks the rows
through all trees together, level by level, with the same comparisons (a missing value goes
where the node says; otherwise ``x <= threshold`` goes left) and the same float64 sums in the
same order (the baseline, then each tree's leaf value in turn), so the raw scores are
bit-identical to ``model._raw_predict``. Models it cannot reproduce exactly (categorical splits,
more than one tree per iteration) give ``None`` from :meth:`FlatTrees.build`, and the caller
keeps scikit-learn's own path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class FlatTrees:
    """Every tree's nodes in one set of arrays (global node indices)."""

    roots: np.ndarray  # (n_trees,) index of each tree's root
    feature: np.ndarray
    threshold: np.ndarray
    missing_right: np.ndarray  # a missing value goes right
    children: np.ndarray  # node k's left child at 2k, right child at 2k + 1
    is_leaf: np.ndarray
    value: np.ndarray
    baseline: float
    n_features: int

    @classmethod
    def build(cls, model: Any) -> FlatTrees | None:
        """The flat form of a fitted binary ``HistGradientBoostingClassifier``, or None when its
        scores could not be reproduced exactly (a model of another shape)."""
        try:
            predictors = model._predictors
            baseline = np.asarray(model._baseline_prediction, dtype=np.float64)
            n_features = int(model.n_features_in_)
            preprocessed = model._preprocessor is not None
        except AttributeError:
            return None
        if preprocessed or baseline.size != 1 or any(len(it) != 1 for it in predictors):
            return None
        nodes = [it[0].nodes for it in predictors]
        if not nodes or any(n["is_categorical"].any() for n in nodes):
            return None
        offsets = np.cumsum([0, *(len(n) for n in nodes[:-1])]).astype(np.int64)
        allnodes = np.concatenate(nodes)
        shift = np.repeat(offsets, [len(n) for n in nodes])
        return cls(
            roots=offsets,
            feature=allnodes["feature_idx"].astype(np.int64),
            threshold=allnodes["num_threshold"].astype(np.float64),
            missing_right=~allnodes["missing_go_to_left"].astype(bool),
            children=np.stack(
                [
                    allnodes["left"].astype(np.int64) + shift,
                    allnodes["right"].astype(np.int64) + shift,
                ],
                axis=1,
            ).reshape(-1),
            is_leaf=allnodes["is_leaf"].astype(bool),
            value=allnodes["value"].astype(np.float64),
            baseline=float(baseline.reshape(-1)[0]),
            n_features=n_features,
        )

    def raw(self, X: np.ndarray) -> np.ndarray:
        """``model._raw_predict(X)[:, 0]``, bit for bit (``X``: rows by features)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got shape {X.shape}")
        n, t = X.shape[0], len(self.roots)
        flat = X.reshape(-1)
        node = np.tile(self.roots, n)  # row-major: row i's trees at i*t ... i*t + t - 1
        at_row = np.repeat(np.arange(n, dtype=np.int64) * self.n_features, t)
        active = np.flatnonzero(~self.is_leaf[node])
        missing = bool(np.isnan(flat).any())  # rows seldom lack a value: skip that test then
        while active.size:
            at = node[active]
            x = flat[at_row[active] + self.feature[at]]
            # right when not x <= threshold; a missing value (NaN) where its node sends it
            right = x > self.threshold[at]
            if missing:
                right |= np.isnan(x) & self.missing_right[at]
            nxt = self.children[2 * at + right]
            node[active] = nxt
            active = active[~self.is_leaf[nxt]]
        leaf_values = self.value[node].reshape(n, t)
        out = np.zeros(n, dtype=np.float64)
        out += self.baseline
        for j in range(t):  # tree by tree, as scikit-learn adds them
            out += leaf_values[:, j]
        return out

    _ARRAYS: ClassVar[tuple[str, ...]] = (
        "roots",
        "feature",
        "threshold",
        "missing_right",
        "children",
        "is_leaf",
        "value",
    )

    def save(self, path: Path) -> None:
        """One ``.npz`` of plain arrays (no pickle)."""
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        header = np.array([self.baseline], dtype=np.float64)
        with path.open("wb") as fh:
            np.savez(fh, baseline=header, n_features=np.array([self.n_features]), **arrays)

    @classmethod
    def load(cls, path: Path) -> FlatTrees:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in cls._ARRAYS}
            baseline, n_features = float(z["baseline"][0]), int(z["n_features"][0])
        return cls(**arrays, baseline=baseline, n_features=n_features)
