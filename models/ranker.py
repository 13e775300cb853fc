"""The learned ranker: gradient-boosted trees over candidate features, calibrated.

:class:`GBDTRanker` follows scikit-learn's estimator API (hyperparameters in ``__init__``,
``fit`` returns self, learned state ends in ``_``). ``fit`` first produces out-of-fold scores
with notes kept whole in each fold (``groups``), fits an isotonic calibration map on them, then
fits the final trees on all rows; ``predict_proba`` returns calibrated probabilities, so a 0.8
reads as "about 80% of such codes are right" on data like the training data.

Persistence: the calibration map and configuration are JSON; the trees are one pickle file that
:mod:`models.pack` only reads after checking its SHA-256 against the pack manifest, and the same
trees as plain arrays (``ranker_flat.npz``, :class:`models.tree_predict.FlatTrees`). Scoring
uses the arrays: bit-identical scores without scikit-learn's per-tree calls, and a loaded pack
needs neither scikit-learn (seconds of start-up) nor the pickle, which is read only when
something asks for the scikit-learn model itself (``model_``).
"""

from __future__ import annotations

import itertools
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from clinicode.models.tree_predict import FlatTrees

FLAT_SUFFIX = "_flat.npz"  # after the ranker's file stem
FLAT_FILE = "ranker" + FLAT_SUFFIX


_controller: Any = None


def _threadpools() -> Any:
    """One threadpoolctl controller per process: building one scans the loaded libraries
    (about 10 ms), which ``threadpool_limits`` did on every call."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


class GBDTRanker:
    """HistGradientBoostingClassifier + isotonic calibration on out-of-fold scores."""

    registry_name = "gbdt"  # its name in ``models.registry`` (recorded in pack manifests)
    model_: Any  # learned state (set by ``fit``, or unpickled on first use after ``load``)
    flat_: FlatTrees | None
    _pickled: bytes

    def __init__(
        self,
        max_iter: int = 300,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 1.0,
        n_folds: int = 4,
        random_state: int = 0,
        feature_names: list[str] | None = None,
        monotonic: dict[str, int] | None = None,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.n_folds = n_folds
        self.random_state = random_state
        self.feature_names = feature_names
        self.monotonic = monotonic

    def _trees(self) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        cst = None
        if self.monotonic and self.feature_names:
            cst = [int(self.monotonic.get(n, 0)) for n in self.feature_names]
        return HistGradientBoostingClassifier(
            monotonic_cst=cst,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            random_state=self.random_state,
        )

    def fit(self, X: Any, y: Any, groups: Any = None, sample_weight: Any = None) -> GBDTRanker:
        """``sample_weight``: how much each row counts in the trees and the calibration map
        (None: all alike)."""
        from sklearn.isotonic import IsotonicRegression
        from sklearn.model_selection import GroupKFold

        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.int8)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if len(np.unique(y)) < 2:
            raise ValueError("the ranker needs both positive and negative examples")
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        oof = np.zeros(len(y), dtype=np.float64)
        n_folds = min(self.n_folds, len(np.unique(groups)))
        for tr, te in GroupKFold(n_splits=n_folds).split(X, y, groups):
            if len(np.unique(y[tr])) < 2:
                oof[te] = y[tr].mean()
                continue
            trees = self._trees().fit(X[tr], y[tr], sample_weight=None if w is None else w[tr])
            oof[te] = trees.predict_proba(X[te])[:, 1]
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(oof, y, sample_weight=w)
        self.calib_x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.calib_y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        self.oof_raw_ = oof
        self.oof_calibrated_ = self._calibrate(oof)
        self.model_ = self._trees().fit(X, y, sample_weight=w)
        self.flat_ = FlatTrees.build(self.model_)
        self.n_features_in_ = X.shape[1]
        return self

    def __getattr__(self, name: str) -> Any:
        # a loaded ranker unpickles its scikit-learn model only when something asks for it
        pickled = self.__dict__.get("_pickled")
        if name == "model_" and pickled is not None:
            self.model_ = pickle.loads(pickled)
            del self.__dict__["_pickled"]
            return self.model_
        if name == "flat_" and ("model_" in self.__dict__ or pickled is not None):
            self.flat_ = FlatTrees.build(self.model_)  # a pack saved before the flat file
            return self.flat_
        raise AttributeError(name)

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        return np.interp(raw, self.calib_x_, self.calib_y_)

    def decision_function(self, X: Any) -> np.ndarray:
        self._check()
        X = np.asarray(X, dtype=np.float32)
        flat = self.flat_
        if flat is not None:  # the same scores as the model's predict_proba, bit for bit
            from scipy.special import expit  # what scikit-learn's logit link calls

            return np.asarray(expit(flat.raw(X)))
        # per-note batches are small: OpenMP start-up per tree costs far more than it saves
        with _threadpools().limit(limits=1, user_api="openmp"):
            return np.asarray(self.model_.predict_proba(X)[:, 1])

    def predict_proba(self, X: Any) -> np.ndarray:
        raw = self.decision_function(X)
        # isotonic steps tie many codes; the raw score breaks ties so ranks stay informative
        p = self._calibrate(raw) + 1e-6 * raw
        p = np.clip(p, 0.0, 1.0)
        return np.stack([1.0 - p, p], axis=1)

    def _check(self) -> None:
        if "model_" not in self.__dict__ and "_pickled" not in self.__dict__:
            raise RuntimeError("GBDTRanker used before fit() or load()")

    # -- persistence ---------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "min_samples_leaf": self.min_samples_leaf,
            "l2_regularization": self.l2_regularization,
            "n_folds": self.n_folds,
            "random_state": self.random_state,
            "feature_names": self.feature_names,
            "monotonic": self.monotonic,
        }

    def save(self, directory: Path | str, stem: str = "ranker") -> list[Path]:
        """``{stem}.json``, ``{stem}_trees.pkl`` and ``{stem}_flat.npz`` in ``directory``."""
        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {
            "params": self.get_params(),
            "calib_x": self.calib_x_.tolist(),
            "calib_y": self.calib_y_.tolist(),
            "n_features_in": int(self.n_features_in_),
        }
        (d / f"{stem}.json").write_text(json.dumps(state), encoding="utf-8")
        (d / f"{stem}_trees.pkl").write_bytes(pickle.dumps(self.model_, protocol=5))
        written = [d / f"{stem}.json", d / f"{stem}_trees.pkl"]
        if self.flat_ is not None:
            self.flat_.save(d / f"{stem}{FLAT_SUFFIX}")
            written.append(d / f"{stem}{FLAT_SUFFIX}")
        return written

    @classmethod
    def load(
        cls, directory: Path | str, *, trusted: bool = False, stem: str = "ranker"
    ) -> GBDTRanker:
        """Read a saved ranker. ``trusted`` must be True: the caller (``models.pack.load``) has
        checked the pickle's hash against the manifest; nothing else may unpickle it."""
        if not trusted:
            raise ValueError("load rankers through models.pack.load, which checks file hashes")
        d = Path(directory)
        state = json.loads((d / f"{stem}.json").read_text(encoding="utf-8"))
        model = cls(**state["params"])
        model.calib_x_ = np.asarray(state["calib_x"], dtype=np.float64)
        model.calib_y_ = np.asarray(state["calib_y"], dtype=np.float64)
        model.n_features_in_ = int(state["n_features_in"])
        model._pickled = (d / f"{stem}_trees.pkl").read_bytes()  # checked; unpickled if asked
        if (d / f"{stem}{FLAT_SUFFIX}").is_file():
            model.flat_ = FlatTrees.load(d / f"{stem}{FLAT_SUFFIX}")
        return model


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Reliability table: per probability bin, mean predicted vs. observed positive rate."""
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    out = []
    edges = np.linspace(0.0, 1.0, bins + 1)
    for lo, hi in itertools.pairwise(edges):
        mask = (probs >= lo) & ((probs < hi) if hi < 1.0 else (probs <= hi))
        if mask.sum() == 0:
            continue
        out.append(
            {
                "bin": f"{lo:.1f}-{hi:.1f}",
                "n": int(mask.sum()),
                "mean_predicted": float(probs[mask].mean()),
                "observed": float(y[mask].mean()),
            }
        )
    return out


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    table = reliability(probs, y, bins)
    n = sum(r["n"] for r in table) or 1
    return float(sum(r["n"] * abs(r["mean_predicted"] - r["observed"]) for r in table) / n)


def fixed_or_learned(
    X: np.ndarray, fixed: np.ndarray, score: int | None, learned: Any
) -> np.ndarray:
    """Rows in ``fixed`` take their ``score`` column (a rule's documented confidence, clipped
    to [0, 1]); the others ``learned(rows)[:, 1]`` (a ranker's ``predict_proba``)."""
    p = np.zeros(len(X), dtype=np.float64)
    if (~fixed).any():
        p[~fixed] = learned(X[~fixed])[:, 1]
    if fixed.any():
        assert score is not None  # a row is only fixed where there is a score column
        p[fixed] = np.clip(X[fixed, score], 0.0, 1.0)
    return p


class RoutedRanker:
    """A learned ranker for most rows, and a fixed rule score for the rows of one source.

    The default pack learns from synthetic diagnosis notes only: it has no labeled procedure
    notes to learn how far to trust the ICD-10-PCS generator's codes. Rows whose ``route``
    column is set (``pcs_hit``) take the generator's own documented confidence (the ``score``
    column, ``pcs_score``: a fully documented code 0.9, ... a guessed no-contrast code 0.6;
    see ``models.pcs.candidates``) instead of the learned ranker's; every other row is scored
    by ``base`` on its first ``n_base`` columns, exactly as a pack without the route.
    """

    registry_name = "routed"
    FILE = "ranker_routes.json"

    def __init__(self, base: GBDTRanker, n_base: int, route: int, score: int) -> None:
        self.base = base
        self.n_base = n_base
        self.route = route
        self.score = score

    def fit(self, X: Any, y: Any, **kwargs: Any) -> RoutedRanker:
        X = np.asarray(X, dtype=np.float32)
        keep = X[:, self.route] <= 0
        groups = kwargs.get("groups")
        self.base.fit(
            X[keep, : self.n_base],
            np.asarray(y)[keep],
            groups=None if groups is None else np.asarray(groups)[keep],
        )
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        routed = X[:, self.route] > 0 if len(X) else np.zeros(0, dtype=bool)
        p = fixed_or_learned(
            X, routed, self.score, lambda rows: self.base.predict_proba(rows[:, : self.n_base])
        )
        return np.stack([1.0 - p, p], axis=1)

    def save(self, directory: Path | str) -> list[Path]:
        d = Path(directory)
        paths = self.base.save(d)
        state = {"n_base": self.n_base, "route": self.route, "score": self.score}
        (d / self.FILE).write_text(json.dumps(state), encoding="utf-8")
        return [*paths, d / self.FILE]

    @classmethod
    def load(cls, directory: Path | str, *, trusted: bool = False) -> RoutedRanker:
        d = Path(directory)
        base = GBDTRanker.load(d, trusted=trusted)
        state = json.loads((d / cls.FILE).read_text(encoding="utf-8"))
        return cls(base, int(state["n_base"]), int(state["route"]), int(state["score"]))


class TaskRanker:
    """One learned ranker for the diagnosis rows and one for the procedure rows.

    A pack retrained on coders' decisions (``clinicode train --base``) has procedure labels
    next to many more diagnosis rows (the new notes' and the base's synthetic notes'): one set
    of trees over both spends its splits on diagnoses, and the procedure order (the P task's
    MAP) is what it learns least. Here the rows whose ``route`` column (``is_dx``) is set go
    to ``dx``, the others to ``px``, each fitted and calibrated on its own rows; the generator
    confidence of an ICD-10-PCS candidate (``score``, ``pcs_score``) is one of ``px``'s
    features. Where the training rows hold fewer than ``min_positives`` procedure positives
    (a review of diagnoses only), no ``px`` is fitted and procedure rows are scored as the
    default pack scores them (:class:`RoutedRanker`): a PCS generator row (``hit`` column set)
    takes its generator confidence, any other procedure row the diagnosis ranker's score.
    """

    registry_name = "by_task"
    FILE = "ranker_tasks.json"
    PX_STEM = "ranker_px"

    def __init__(
        self,
        dx: GBDTRanker,
        px: GBDTRanker | None,
        route: int,
        hit: int | None = None,
        score: int | None = None,
        min_positives: int = 30,
    ) -> None:
        self.dx = dx
        self.px = px
        self.route = route
        self.hit = hit
        self.score = score
        self.min_positives = min_positives

    @property
    def feature_names(self) -> list[str] | None:
        return self.dx.feature_names

    def _is_dx(self, X: np.ndarray) -> np.ndarray:
        return X[:, self.route] > 0 if len(X) else np.zeros(0, dtype=bool)

    def fit(self, X: Any, y: Any, groups: Any = None, sample_weight: Any = None) -> TaskRanker:
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.int8)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        dx = self._is_dx(X)
        self.dx.fit(X[dx], y[dx], groups=groups[dx], sample_weight=w[dx])
        oof = np.zeros(len(y), dtype=np.float64)
        oof[dx] = self.dx.oof_calibrated_
        px = ~dx
        yp, gp = y[px], groups[px]
        enough = int(yp.sum()) >= self.min_positives and int((yp == 0).sum()) > 0
        if self.px is not None and enough and len(np.unique(gp)) >= 2:
            self.px.fit(X[px], yp, groups=gp, sample_weight=w[px])
            oof[px] = self.px.oof_calibrated_
        else:
            self.px = None
            oof[px] = self._fallback(X[px])
        self.oof_calibrated_ = oof
        return self

    def _fallback(self, X: np.ndarray) -> np.ndarray:
        """Procedure rows without a procedure ranker: as :class:`RoutedRanker` scores them."""
        fixed = (
            X[:, self.hit] > 0
            if self.hit is not None and self.score is not None and len(X)
            else np.zeros(len(X), dtype=bool)
        )
        return fixed_or_learned(X, fixed, self.score, self.dx.predict_proba)

    def predict_proba(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        p = np.zeros(len(X), dtype=np.float64)
        dx = self._is_dx(X)
        if dx.any():
            p[dx] = self.dx.predict_proba(X[dx])[:, 1]
        if (~dx).any():
            rows = X[~dx]
            p[~dx] = self.px.predict_proba(rows)[:, 1] if self.px else self._fallback(rows)
        return np.stack([1.0 - p, p], axis=1)

    def save(self, directory: Path | str) -> list[Path]:
        d = Path(directory)
        paths = self.dx.save(d)
        if self.px is not None:
            paths += self.px.save(d, stem=self.PX_STEM)
        state = {
            "route": self.route,
            "hit": self.hit,
            "score": self.score,
            "min_positives": self.min_positives,
            "px": self.px is not None,
        }
        (d / self.FILE).write_text(json.dumps(state), encoding="utf-8")
        return [*paths, d / self.FILE]

    @classmethod
    def load(cls, directory: Path | str, *, trusted: bool = False) -> TaskRanker:
        d = Path(directory)
        state = json.loads((d / cls.FILE).read_text(encoding="utf-8"))
        dx = GBDTRanker.load(d, trusted=trusted)
        px = GBDTRanker.load(d, trusted=trusted, stem=cls.PX_STEM) if state["px"] else None
        return cls(
            dx, px, int(state["route"]), state["hit"], state["score"], int(state["min_positives"])
        )
