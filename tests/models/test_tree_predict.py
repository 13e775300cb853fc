"""FlatTrees: the ranker's trees as arrays give scikit-learn's scores bit for bit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clinicode.models.ranker import FLAT_FILE, GBDTRanker
from clinicode.models.tree_predict import FlatTrees


def _data(seed: int, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[:, 3] = rng.integers(0, 3, size=n)  # ties on thresholds
    X[rng.random(size=(n, 6)) < 0.1] = np.nan  # missing values: both directions get learned
    y = ((np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 3]) > 0.5) ^ (rng.random(n) < 0.1)).astype(
        np.int8
    )
    return X, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_raw_scores_are_scikit_learns_bit_for_bit(seed: int) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = _data(seed)
    model = HistGradientBoostingClassifier(max_iter=60, random_state=seed).fit(X, y)
    flat = FlatTrees.build(model)
    assert flat is not None
    assert (~flat.missing_right).any() and flat.missing_right.any()
    X_new, _ = _data(seed + 100, n=300)
    X_new[:5] = np.inf
    want = model._raw_predict(X_new)[:, 0]
    assert np.array_equal(flat.raw(X_new), want)
    full = np.nan_to_num(X_new, posinf=np.inf)  # no missing value: the test for it is skipped
    assert np.array_equal(flat.raw(full), model._raw_predict(full)[:, 0])
    with pytest.raises(ValueError, match="features"):
        flat.raw(X_new[:, :4])


def test_models_it_cannot_reproduce_are_refused() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = _data(3)
    X[:, 3] = np.nan_to_num(X[:, 3])
    cat = [False, False, False, True, False, False]
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features=cat).fit(X, y)
    assert FlatTrees.build(model) is None
    assert FlatTrees.build(object()) is None


def test_ranker_scores_through_the_arrays_and_saves_them(tmp_path: Path) -> None:
    X, y = _data(4)
    r = GBDTRanker(max_iter=40, n_folds=2).fit(X, y)
    want = r.model_.predict_proba(X)[:, 1]
    assert np.array_equal(r.decision_function(X), want)
    files = r.save(tmp_path)
    assert tmp_path / FLAT_FILE in files
    loaded = GBDTRanker.load(tmp_path, trusted=True)
    assert "model_" not in loaded.__dict__  # the pickle waits until asked for
    assert np.array_equal(loaded.predict_proba(X), r.predict_proba(X))
    (tmp_path / FLAT_FILE).unlink()  # a pack saved before the flat file: built from the pickle
    old = GBDTRanker.load(tmp_path, trusted=True)
    assert np.array_equal(old.predict_proba(X), r.predict_proba(X))
    assert "model_" in old.__dict__


def test_a_loaded_ranker_scores_without_scikit_learn(tmp_path: Path) -> None:
    X, y = _data(5)
    GBDTRanker(max_iter=20, n_folds=2).fit(X, y).save(tmp_path)
    np.save(tmp_path / "X.npy", X)
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from clinicode.models.ranker import GBDTRanker\n"
        f"d = Path({str(tmp_path)!r})\n"
        "r = GBDTRanker.load(d, trusted=True)\n"
        "r.predict_proba(np.load(d / 'X.npy'))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'pandas')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
