"""GBDT ranker: estimator API, calibration, persistence only through checked packs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clinicode.models.ranker import GBDTRanker, expected_calibration_error, reliability


def _data(n: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    p = 1 / (1 + np.exp(-(2.0 * X[:, 0] - 1.0 * X[:, 1])))
    y = (rng.random(n) < p).astype(int)
    groups = np.arange(n) // 10
    return X, y, groups


def test_fit_returns_self_and_learns() -> None:
    X, y, g = _data()
    r = GBDTRanker(max_iter=25, random_state=0)
    assert r.fit(X, y, groups=g) is r
    assert hasattr(r, "model_") and hasattr(r, "calib_x_")
    probs = r.predict_proba(X)[:, 1]
    assert probs.shape == (len(y),)
    assert ((probs >= 0) & (probs <= 1)).all()
    # ranks positives above negatives much better than chance
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, probs) > 0.75


def test_out_of_fold_calibration_is_reasonable() -> None:
    X, y, g = _data(1500)
    r = GBDTRanker(max_iter=25, random_state=0).fit(X, y, groups=g)
    assert expected_calibration_error(r.oof_calibrated_, y) < 0.05
    table = reliability(r.oof_calibrated_, y)
    assert sum(row["n"] for row in table) == len(y)


def test_unfitted_and_single_class_errors() -> None:
    with pytest.raises(RuntimeError):
        GBDTRanker().predict_proba(np.zeros((1, 2)))
    with pytest.raises(ValueError):
        GBDTRanker().fit(np.zeros((4, 2)), np.zeros(4))


def test_load_requires_a_hash_checked_pack(tmp_path: Path) -> None:
    X, y, g = _data(300)
    r = GBDTRanker(max_iter=20).fit(X, y, groups=g)
    r.save(tmp_path)
    with pytest.raises(ValueError, match=r"models\.pack\.load"):
        GBDTRanker.load(tmp_path)
    again = GBDTRanker.load(tmp_path, trusted=True)
    np.testing.assert_allclose(again.predict_proba(X), r.predict_proba(X))


def test_routed_ranker_scores_routed_rows_by_their_rule_column(tmp_path: Path) -> None:
    from clinicode.models.ranker import RoutedRanker

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    base = GBDTRanker(max_iter=20, n_folds=2).fit(X, y)
    routed = RoutedRanker(base, n_base=3, route=3, score=4)
    rows = np.hstack([X[:4], np.asarray([[0, 0.1], [1, 0.8], [0, 0.5], [1, 0.3]])])
    p = routed.predict_proba(rows)[:, 1]
    # routed rows take their rule score; the others exactly what the base ranker gives
    assert p[1] == pytest.approx(0.8) and p[3] == pytest.approx(0.3)
    expected = base.predict_proba(X[[0, 2]])[:, 1]
    assert p[[0, 2]] == pytest.approx(expected)
    routed.save(tmp_path)
    again = RoutedRanker.load(tmp_path, trusted=True)
    assert again.predict_proba(rows)[:, 1] == pytest.approx(p)
    assert routed.predict_proba(np.zeros((0, 5))).shape == (0, 2)


def _task_rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns: x0, x1, is_dx, pcs_hit, pcs_score. Diagnosis rows are right when x0 > 0;
    procedure rows when x1 > 0 (their generator confidence says nothing)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 2] = (np.arange(n) % 3 != 0).astype(float)  # a third are procedure rows
    X[:, 3] = (X[:, 2] == 0).astype(float)
    X[:, 4] = rng.uniform(0.6, 0.9, size=n)
    y = np.where(X[:, 2] > 0, X[:, 0] > 0, X[:, 1] > 0).astype(int)
    return X, y, np.arange(n) // 10


def _task_ranker(min_positives: int = 30) -> object:
    from clinicode.models.ranker import TaskRanker

    def gbdt() -> GBDTRanker:
        return GBDTRanker(max_iter=30, n_folds=2)

    return TaskRanker(gbdt(), gbdt(), route=2, hit=3, score=4, min_positives=min_positives)


def test_task_ranker_learns_procedure_rows_apart_and_persists(tmp_path: Path) -> None:
    """Procedure rows (``is_dx`` 0) get their own trees, which learn what decides them
    (x1) although the diagnosis rows are decided by x0; saved and loaded it scores the same."""
    from sklearn.metrics import roc_auc_score

    from clinicode.models.ranker import TaskRanker

    X, y, g = _task_rows(900)
    r = _task_ranker().fit(X, y, groups=g)  # type: ignore[attr-defined]
    assert isinstance(r, TaskRanker) and r.px is not None
    px = X[:, 2] == 0
    p = r.predict_proba(X)[:, 1]
    assert roc_auc_score(y[px], p[px]) > 0.9 and roc_auc_score(y[~px], p[~px]) > 0.9
    assert roc_auc_score(y[px], r.oof_calibrated_[px]) > 0.8  # out of fold, for the threshold
    r.save(tmp_path)
    assert (tmp_path / "ranker_px.json").is_file() and (tmp_path / "ranker.json").is_file()
    again = TaskRanker.load(tmp_path, trusted=True)
    assert again.predict_proba(X)[:, 1] == pytest.approx(p)


def test_task_ranker_keeps_the_generator_confidence_without_procedure_labels(
    tmp_path: Path,
) -> None:
    """Too few procedure positives: no procedure trees; a PCS generator row scores its
    generator confidence and any other procedure row the diagnosis ranker's score, as the
    default pack's ``RoutedRanker`` does."""
    from clinicode.models.ranker import TaskRanker

    X, y, g = _task_rows(900)
    y[X[:, 2] == 0] = 0
    y[np.flatnonzero(X[:, 2] == 0)[:5]] = 1  # 5 positives < 30
    r = _task_ranker().fit(X, y, groups=g)  # type: ignore[attr-defined]
    assert r.px is None
    rows = X[:3].copy()
    rows[:, 2] = [0, 0, 1]
    rows[:, 3] = [1, 0, 0]
    p = r.predict_proba(rows)[:, 1]
    assert p[0] == pytest.approx(rows[0, 4])
    assert p[1:] == pytest.approx(r.dx.predict_proba(rows[1:])[:, 1])
    r.save(tmp_path)
    assert not (tmp_path / "ranker_px.json").exists()
    assert TaskRanker.load(tmp_path, trusted=True).predict_proba(rows)[:, 1] == pytest.approx(p)


def test_sample_weights_decide_how_much_rows_count() -> None:
    """Rows weighted (almost) zero barely move the trees: half the rows with flipped labels
    and a tiny weight leave the ranker ranking as the other half says."""
    from sklearn.metrics import roc_auc_score

    X, y, g = _data(1200)
    flipped = np.arange(len(y)) % 2 == 0
    y2 = np.where(flipped, 1 - y, y)
    w = np.where(flipped, 1e-3, 1.0)
    r = GBDTRanker(max_iter=25, random_state=0).fit(X, y2, groups=g, sample_weight=w)
    assert roc_auc_score(y, r.predict_proba(X)[:, 1]) > 0.75
    plain = GBDTRanker(max_iter=25, random_state=0).fit(X, y2, groups=g)
    assert roc_auc_score(y, plain.predict_proba(X)[:, 1]) < 0.65  # unweighted: confused
